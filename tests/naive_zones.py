"""Slow, obvious reference for riskgrid.zones (tests only)."""

import h3
import numpy as np


def grid_distance_matrix(cells):
    """Pairwise H3 grid distances (int64) between uint64 cells; slow, O(n^2) h3 calls."""
    ids = [h3.int_to_str(int(c)) for c in cells]
    n = len(ids)
    d = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = h3.grid_distance(ids[i], ids[j])
    return d


def naive_select_zones(risk, cells, n_zones, max_cells, min_gap_rings):
    """The greedy rule of select_zones written with a full distance matrix.

    Returns a list of lists of cell indices (in the order they were added).
    """
    r = np.asarray(risk, dtype=float)
    dist = grid_distance_matrix(cells)
    n = r.size
    available = np.ones(n, dtype=bool)
    zones = []
    key = lambda i: (-r[i], i)  # noqa: E731 - highest risk, then lowest index
    for _ in range(n_zones):
        cand = [i for i in range(n) if available[i] and r[i] > 0]
        if not cand:
            break
        zone = [min(cand, key=key)]
        while len(zone) < max_cells:
            nbrs = [j for j in range(n) if available[j] and j not in zone and dist[j, zone].min() == 1]
            if not nbrs:
                break
            best = min(nbrs, key=key)
            if r[best] <= 0:
                break
            zone.append(best)
        for j in range(n):
            if dist[j, zone].min() <= min_gap_rings:
                available[j] = False
        zones.append(zone)
    return zones
