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


def naive_connected_sets(adjacent, candidates, max_cells):
    """Every connected subset (frozenset) of ``candidates`` with at most ``max_cells`` members.

    ``adjacent[i, j]`` is True for ring-1 neighbours. Grows sets one neighbour
    at a time from every single cell; obviously complete, exponentially slow.
    """
    cand = set(int(i) for i in candidates)
    level = {frozenset([i]) for i in cand}
    out = set(level)
    for _ in range(max_cells - 1):
        nxt = set()
        for s in level:
            for i in s:
                for j in cand:
                    if j not in s and adjacent[i, j]:
                        nxt.add(s | {j})
        out |= nxt
        level = nxt
    return out


def naive_best_compact_set(risk, dist_m, adjacent, available, max_cells, max_diameter_m):
    """The best connected set of available cells under the size and diameter limits, by exhaustion.

    Best = largest summed risk, then fewer cells, then the smallest sorted
    index tuple. Returns a sorted list of indices ([] when nothing has
    positive risk).
    """
    r = np.asarray(risk, dtype=float)
    best, best_key = [], None
    for s in naive_connected_sets(adjacent, np.flatnonzero(available), max_cells):
        members = sorted(s)
        if len(members) > 1 and dist_m[np.ix_(members, members)].max() > max_diameter_m:
            continue
        key = (-sum(r[i] for i in members), len(members), tuple(members))
        if best_key is None or key < best_key:
            best, best_key = members, key
    if best_key is None or -best_key[0] <= 0:
        return []
    return best


def naive_select_compact(risk, cells, lat, lon, n_zones, max_cells, min_gap_rings, max_diameter_m):
    """Compact zones: repeatedly the exhaustive best set among the cells left, then block its gap.

    Returns a list of sorted index lists.
    """
    from riskgrid.geo import haversine_m

    gd = grid_distance_matrix(cells)
    adjacent = gd == 1
    dist_m = haversine_m(np.asarray(lat)[:, None], np.asarray(lon)[:, None], np.asarray(lat)[None, :], np.asarray(lon)[None, :])
    available = np.ones(len(cells), dtype=bool)
    zones = []
    for _ in range(n_zones):
        z = naive_best_compact_set(risk, dist_m, adjacent, available, max_cells, max_diameter_m)
        if not z:
            break
        zones.append(z)
        for j in range(len(cells)):
            if gd[j, z].min() <= min_gap_rings:
                available[j] = False
    return zones
