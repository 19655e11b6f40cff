"""Patrol zones: small connected groups of hexagons that capture the most forecast risk.

:func:`select_zones` grows zones greedily from the highest-risk cells:

1. *Seed*: the highest-risk cell still available (ties: lowest cell index).
2. *Grow*: repeatedly add the highest-risk available cell among the ring-1
   H3 neighbours of the zone's cells (ties: lowest cell index), until the
   zone has ``max_cells`` cells or no neighbour with positive risk is left.
   Zones are therefore connected through shared hexagon edges.
3. *Separate*: every cell within ``min_gap_rings`` grid steps of the zone's
   cells (the zone included) becomes unavailable.

Steps 1-3 repeat until ``n_zones`` zones exist or no cell with positive risk
is left. **Separation**: for two cells ``a``, ``b`` of different zones the H3
grid distance is ``> min_gap_rings``, i.e. at least ``min_gap_rings`` cells
lie between the zones (``min_gap_rings=0`` lets zones touch but not overlap).

The greedy rule is the usual "hotspot growing" heuristic; it is not an
exact optimum of the (NP-hard) connected maximum-coverage problem. The
result reports the captured share of the total risk beside the share that
the same number of best cells would capture with no connectivity or spacing
constraint (an upper bound for any zoning of that total area).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h3
import numpy as np
from h3.api import numpy_int as h3i

from .geo import oriented_ring
from .grid import HexGrid
from .metrics import rank_cells, risk_values

__all__ = ["Zone", "ZoneSet", "select_zones", "zones_metric"]


@dataclass(frozen=True)
class Zone:
    """One patrol zone.

    Attributes
    ----------
    cells : ndarray of int64
        Indices into ``grid.cells``, in the order they were added (seed first).
    h3 : tuple of str
        The H3 ids of those cells.
    risk : float
        Forecast risk captured by the zone (expected events in the window).
    """

    cells: np.ndarray
    h3: tuple
    risk: float

    def __len__(self) -> int:
        return int(self.cells.size)


@dataclass(frozen=True)
class ZoneSet:
    """The result of :func:`select_zones`.

    Attributes
    ----------
    zones : list of Zone
        In selection order (the first holds the highest-risk cell).
    total_risk : float
        Sum of the risk over the grid.
    captured_risk : float
        Risk inside all zones.
    captured_share : float
        ``captured_risk / total_risk`` (0 when the total is 0).
    best_unconstrained_share : float
        Share captured by the ``n_cells`` highest-risk cells, ignoring
        connectivity and spacing (upper bound for the same area).
    params : dict
        ``n_zones``, ``max_cells``, ``min_gap_rings`` used.
    """

    zones: list
    total_risk: float
    captured_risk: float
    captured_share: float
    best_unconstrained_share: float
    params: dict = field(default_factory=dict)
    n_grid_cells: int = 0

    def __len__(self) -> int:
        return len(self.zones)

    @property
    def n_cells(self) -> int:
        """Number of cells in all zones together."""
        return int(sum(len(z) for z in self.zones))

    @property
    def cell_zone(self) -> np.ndarray:
        """Zone number (0-based) of every grid cell, -1 outside every zone (int64)."""
        out = np.full(self.n_grid_cells, -1, dtype=np.int64)
        for k, z in enumerate(self.zones):
            out[z.cells] = k
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary (no geometry)."""
        return {
            "params": dict(self.params),
            "n_zones": len(self.zones),
            "n_cells": self.n_cells,
            "total_risk": float(self.total_risk),
            "captured_risk": float(self.captured_risk),
            "captured_share": float(self.captured_share),
            "best_unconstrained_share": float(self.best_unconstrained_share),
            "zones": [
                {"zone": k, "n_cells": len(z), "risk": float(z.risk), "h3": list(z.h3)} for k, z in enumerate(self.zones)
            ],
        }

    def to_geojson(self) -> dict:
        """FeatureCollection with one Feature per zone (RFC 7946).

        The geometry is the merged outline of the zone's cells (Polygon, or
        MultiPolygon should cells only touch at a vertex), lon/lat order,
        closed rings, counter-clockwise exteriors and clockwise holes.
        Properties: ``zone``, ``n_cells``, ``risk``, ``share`` (of the total
        risk) and the ``h3`` ids.
        """
        feats = []
        for k, z in enumerate(self.zones):
            geom = _normalise_geometry(h3.cells_to_geo(list(z.h3)))
            share = z.risk / self.total_risk if self.total_risk > 0 else 0.0
            feats.append(
                {
                    "type": "Feature",
                    "geometry": geom,
                    "properties": {
                        "zone": k,
                        "n_cells": len(z),
                        "risk": float(z.risk),
                        "share": float(share),
                        "h3": list(z.h3),
                    },
                }
            )
        return {"type": "FeatureCollection", "features": feats}


def _normalise_geometry(geo: dict) -> dict:
    """Closed rings, CCW exterior, CW holes, plain lists (RFC 7946 §3.1.6)."""
    if geo["type"] == "Polygon":
        polys = [geo["coordinates"]]
    else:
        polys = list(geo["coordinates"])
    out = [[oriented_ring(rings[0], True)] + [oriented_ring(r, False) for r in rings[1:]] for rings in polys]
    if len(out) == 1:
        return {"type": "Polygon", "coordinates": out[0]}
    return {"type": "MultiPolygon", "coordinates": out}


def _disk_indices(grid: HexGrid, cells: np.ndarray, k: int) -> np.ndarray:
    """Grid indices of every cell within ``k`` rings of the given grid cells."""
    if k <= 0:
        return np.asarray(cells, dtype=np.int64)
    ids = np.unique(np.concatenate([np.asarray(h3i.grid_disk(int(grid.cells[i]), k), dtype=np.uint64) for i in cells]))
    pos = grid.index_of(ids)
    return pos[pos >= 0]


def select_zones(risk, grid: HexGrid, n_zones: int = 4, max_cells: int = 7, min_gap_rings: int = 1) -> ZoneSet:
    """Greedy patrol zones: up to ``n_zones`` connected, separated groups of cells.

    Parameters
    ----------
    risk : xarray.DataArray or ndarray
        Forecast per grid cell (expected events in the window); a
        ``category`` dimension / 2-D array is summed over categories.
    grid : HexGrid
        The grid the risk is defined on.
    n_zones : int
        Maximum number of zones.
    max_cells : int
        Maximum cells per zone (7 = a cell and its ring at most).
    min_gap_rings : int
        Cells of different zones are more than ``min_gap_rings`` H3 grid
        steps apart (at least ``min_gap_rings`` cells between zones).

    Returns
    -------
    ZoneSet
        Zones (cell indices, H3 ids, risk), captured share, best
        unconstrained share for the same number of cells, ``to_geojson()``.

    Notes
    -----
    Greedy growth (see the module docstring); deterministic: ties go to the
    lowest cell index. Zones stop growing when only zero-risk neighbours are
    left, and no zone is seeded on a zero-risk cell.

    Examples
    --------
    >>> zs = select_zones(risk, grid, n_zones=4, max_cells=7, min_gap_rings=1)  # doctest: +SKIP
    >>> zs.captured_share, zs.best_unconstrained_share                             # doctest: +SKIP
    """
    for name, v, lo in (("n_zones", n_zones, 0), ("max_cells", max_cells, 1), ("min_gap_rings", min_gap_rings, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    r = risk_values(risk, len(grid))
    n = len(grid)
    available = np.ones(n, dtype=bool)
    # cells sorted by decreasing risk, ties by index: seeds are taken in this order
    order = rank_cells(r)
    ptr = 0
    zones: list[Zone] = []
    while len(zones) < n_zones:
        while ptr < n and not available[order[ptr]]:
            ptr += 1
        if ptr >= n or r[order[ptr]] <= 0:
            break
        seed = int(order[ptr])
        members = [seed]
        in_zone = {seed}
        frontier: set[int] = set()
        while True:
            for nb in _disk_indices(grid, np.array([members[-1]]), 1).tolist():
                if nb not in in_zone and available[nb]:
                    frontier.add(nb)
            if len(members) >= max_cells or not frontier:
                break
            best = min(frontier, key=lambda i: (-r[i], i))
            if r[best] <= 0:
                break
            frontier.discard(best)
            members.append(best)
            in_zone.add(best)
        cells = np.asarray(members, dtype=np.int64)
        available[_disk_indices(grid, cells, int(min_gap_rings))] = False
        available[cells] = False
        zones.append(Zone(cells=cells, h3=tuple(h3.int_to_str(int(grid.cells[i])) for i in cells), risk=float(r[cells].sum())))

    total = float(r.sum())
    captured = float(sum(z.risk for z in zones))
    n_cells = int(sum(len(z) for z in zones))
    best = float(r[order[:n_cells]].sum())
    return ZoneSet(
        zones=zones,
        total_risk=total,
        captured_risk=captured,
        captured_share=captured / total if total > 0 else 0.0,
        best_unconstrained_share=best / total if total > 0 else 0.0,
        params={"n_zones": int(n_zones), "max_cells": int(max_cells), "min_gap_rings": int(min_gap_rings)},
        n_grid_cells=n,
    )


def zones_metric(risk_values, observed_counts, grid: HexGrid, **zone_params) -> float:
    """Share of the next window's events that fall inside the zones chosen from a forecast.

    Parameters
    ----------
    risk_values : array or DataArray
        Forecast per cell (what the zones are chosen from).
    observed_counts : array of float
        Events per cell observed in the forecast window (same grid order).
    grid : HexGrid
    **zone_params
        ``n_zones``, ``max_cells``, ``min_gap_rings`` for :func:`select_zones`.

    Returns
    -------
    float
        Events in the zones / all events in the grid (NaN when no event was
        observed).
    """
    obs = np.asarray(observed_counts, dtype=np.float64)
    if obs.shape != (len(grid),):
        raise ValueError(f"observed_counts must have one value per grid cell ({len(grid)}), got shape {obs.shape}")
    total = float(obs.sum())
    if total <= 0:
        return float("nan")
    zs = select_zones(risk_values, grid, **zone_params)
    inside = np.concatenate([z.cells for z in zs.zones]) if zs.zones else np.zeros(0, dtype=np.int64)
    return float(obs[inside].sum() / total)
