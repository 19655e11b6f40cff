"""Patrol zones: small connected groups of hexagons that capture the most forecast risk.

:func:`select_zones` has two modes.

``mode="compact"`` (default): zones a patrol can cover.
    Each zone is a *connected* set of at most ``max_cells`` cells (connected
    through shared hexagon edges) whose **cell centroids** are pairwise at
    most ``max_diameter_m`` metres apart (great-circle distance; the ground
    extent of the zone is about one hexagon width, ``2 x edge length``, more).
    Zone 1 is the exact best such set over the grid: the connected set with
    the largest captured risk, found by an exhaustive branch-and-bound search
    (:func:`riskgrid.kernels.zones.best_compact_set`; ties go to fewer cells,
    then to the smallest cell indices). Every cell within ``min_gap_rings``
    grid steps of the zone then becomes unavailable, and zone 2 is the exact
    best set among the cells left, and so on up to ``n_zones`` zones or until
    no cell with positive risk is left. Each zone is optimal given the zones
    before it; the set of zones as a whole is a greedy choice (choosing k
    zones jointly is a maximum-coverage problem, NP-hard in general; greedy
    selection is the usual approximation). Should the search budget
    ``max_nodes`` run out, the best set found so far is used and the zone is
    marked ``exact=False``.

``mode="greedy"``: the older "hotspot growing" rule, kept for comparison.
    1. *Seed*: the highest-risk cell still available (ties: lowest cell index).
    2. *Grow*: repeatedly add the highest-risk available cell among the ring-1
       H3 neighbours of the zone's cells (ties: lowest cell index), until the
       zone has ``max_cells`` cells or no neighbour with positive risk is left.
    3. *Separate*: as above. It has no diameter limit and tends to produce
       strings one cell wide along a street of high risk.

**Separation** (both modes): for two cells ``a``, ``b`` of different zones
the H3 grid distance is ``> min_gap_rings``, i.e. at least ``min_gap_rings``
cells lie between the zones (``min_gap_rings=0`` lets zones touch but not
overlap).

**Numbering**: zones are numbered 1..n (as people count) in selection order,
in :class:`Zone`, :attr:`ZoneSet.cell_zone` (0 = no zone), the frames and the
GeoJSON. Zone 1 captures the most risk.

Every zone reports its cells, area (km²), diameter (m, between centroids),
expected events (the summed forecast), captured share, and the gap to the
same number of best cells taken with no connectivity, diameter or spacing
constraint (an upper bound for any zone of that size; H3 cells of one
resolution differ in area by a few percent at most within a city, so the
same number of cells is the same area to that precision).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import h3
import numpy as np
import pandas as pd
from h3.api import numpy_int as h3i

from .geo import EARTH_RADIUS_M, haversine_m, oriented_ring
from .grid import HexGrid
from .kernels.zones import best_compact_set
from .metrics import rank_cells, risk_values

__all__ = ["Zone", "ZoneSet", "select_zones", "zones_metric", "default_max_diameter_m", "ZONE_MODES"]

#: the values ``select_zones(mode=...)`` accepts
ZONE_MODES = ("compact", "greedy")


@dataclass(frozen=True)
class Zone:
    """One patrol zone.

    Attributes
    ----------
    cells : ndarray of int64
        Indices into ``grid.cells``: in rank order (highest risk first) in
        compact mode, in the order they were added (seed first) in greedy mode.
    h3 : tuple of str
        The H3 ids of those cells.
    risk : float
        Forecast risk captured by the zone (expected events in the window).
    number : int
        Zone number, 1-based (as shown on every product).
    area_km2 : float
        Summed area of the cells, km².
    diameter_m : float
        Largest great-circle distance between two cell centroids, metres
        (0 for one cell).
    share : float
        ``risk`` / total risk of the grid.
    best_same_area_share : float
        Share captured by the ``len(cells)`` highest-risk cells of the grid,
        with no connectivity, diameter or spacing constraint.
    exact : bool
        True when the zone is the proven best set given the zones before it
        (compact mode; always False in greedy mode).
    risk_lo, risk_hi : float
        Central interval of the zone's *total* count (events; NaN until
        :meth:`ZoneSet.with_interval` sets it): from the model's zone-level
        interval (the sum of the cells' quantiles is not the quantile of
        the sum).
    p_any : float
        Probability of at least one event in the zone in the window (NaN until set).
    """

    cells: np.ndarray
    h3: tuple
    risk: float
    number: int = 0
    area_km2: float = float("nan")
    diameter_m: float = float("nan")
    share: float = float("nan")
    best_same_area_share: float = float("nan")
    exact: bool = False
    risk_lo: float = float("nan")
    risk_hi: float = float("nan")
    p_any: float = float("nan")

    def __len__(self) -> int:
        return int(self.cells.size)

    @property
    def gap_share(self) -> float:
        """``best_same_area_share - share``: risk share lost to the zone constraints."""
        return float(self.best_same_area_share - self.share)


@dataclass(frozen=True)
class ZoneSet:
    """The result of :func:`select_zones`.

    Attributes
    ----------
    zones : list of Zone
        In selection order; ``zones[k].number == k + 1``.
    total_risk : float
        Sum of the risk over the grid.
    captured_risk : float
        Risk inside all zones.
    captured_share : float
        ``captured_risk / total_risk`` (0 when the total is 0).
    best_unconstrained_share : float
        Share captured by the ``n_cells`` highest-risk cells, ignoring
        connectivity, diameter and spacing (upper bound for the same area).
    params : dict
        ``mode``, ``n_zones``, ``max_cells``, ``min_gap_rings`` and, in
        compact mode, ``max_diameter_m`` used.
    n_grid_cells : int
        Number of cells of the grid.
    interval_level, interval_method : float, str or None
        Level and method of the zones' intervals (``Zone.risk_lo`` ...);
        ``None`` when they have none (see :meth:`with_interval`).
    """

    zones: list
    total_risk: float
    captured_risk: float
    captured_share: float
    best_unconstrained_share: float
    params: dict = field(default_factory=dict)
    n_grid_cells: int = 0
    interval_level: float | None = None
    interval_method: str | None = None

    def with_interval(self, lo, hi, p_any, level: float, method: str) -> "ZoneSet":
        """A copy whose zones carry the interval of their total count and ``P(at least one event)``.

        Parameters
        ----------
        lo, hi, p_any : sequence of float
            One value per zone, zone ``k`` at position ``k - 1`` (as the
            ``zone_lo``, ``zone_hi``, ``zone_p_any`` of a model's
            ``predict_interval(..., zones=zoneset.cell_zone - 1)``).
        level : float
            Probability of the central interval, in (0, 1).
        method : str
            How it was computed (e.g. ``"poisson"``, the forward simulation).
        """
        lo, hi, pa = (np.asarray(v, dtype=np.float64).ravel() for v in (lo, hi, p_any))
        n = len(self.zones)
        if not lo.size == hi.size == pa.size == n:
            raise ValueError(f"need one interval per zone ({n}), got {lo.size}, {hi.size}, {pa.size}")
        if not 0 < float(level) < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        if (lo > hi).any() or (pa < 0).any() or (pa > 1).any():
            raise ValueError("need lo <= hi and 0 <= p_any <= 1 for every zone")
        zones = [replace(z, risk_lo=float(a), risk_hi=float(b), p_any=float(p)) for z, a, b, p in zip(self.zones, lo, hi, pa)]
        return replace(self, zones=zones, interval_level=float(level), interval_method=str(method))

    def __len__(self) -> int:
        return len(self.zones)

    @property
    def n_cells(self) -> int:
        """Number of cells in all zones together."""
        return int(sum(len(z) for z in self.zones))

    @property
    def gap_share(self) -> float:
        """``best_unconstrained_share - captured_share``."""
        return float(self.best_unconstrained_share - self.captured_share)

    @property
    def area_km2(self) -> float:
        """Area of all zones together, km²."""
        return float(sum(z.area_km2 for z in self.zones))

    @property
    def cell_zone(self) -> np.ndarray:
        """Zone number (1-based) of every grid cell, 0 outside every zone (int64)."""
        out = np.zeros(self.n_grid_cells, dtype=np.int64)
        for z in self.zones:
            out[z.cells] = z.number
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per zone: ``zone`` (1-based), ``n_cells``, ``area_km2``, ``diameter_m``,
        ``expected_events`` (with :meth:`with_interval`: then ``expected_events_lo``,
        ``expected_events_hi``, ``p_any``), ``share``, ``best_same_area_share``, ``gap_share``, ``exact``,
        ``lat``/``lon`` (mean of the cell centres, degrees) and ``h3`` (space-separated ids)."""
        rows = []
        for z in self.zones:
            lat, lon = _zone_centre(z)
            rows.append({
                "zone": z.number, "n_cells": len(z), "area_km2": z.area_km2, "diameter_m": z.diameter_m,
                "expected_events": z.risk, "share": z.share, "best_same_area_share": z.best_same_area_share,
                "gap_share": z.gap_share, "exact": z.exact, "lat": lat, "lon": lon, "h3": " ".join(z.h3),
                "expected_events_lo": z.risk_lo, "expected_events_hi": z.risk_hi, "p_any": z.p_any,
            })
        cols = ["zone", "n_cells", "area_km2", "diameter_m", "expected_events", "share", "best_same_area_share",
                "gap_share", "exact", "lat", "lon", "h3"]
        if self.interval_level is not None:
            cols[5:5] = ["expected_events_lo", "expected_events_hi", "p_any"]
        return pd.DataFrame(rows, columns=cols)

    def cells_frame(self, risk=None) -> pd.DataFrame:
        """One row per zone cell: ``zone`` (1-based), ``cell`` (grid index), ``h3`` and, when the
        forecast ``risk`` is given (as for :func:`select_zones`), ``risk`` and ``rank`` (1 = highest
        risk of the grid)."""
        rows = {"zone": [], "cell": [], "h3": []}
        for z in self.zones:
            rows["zone"] += [z.number] * len(z)
            rows["cell"] += z.cells.tolist()
            rows["h3"] += list(z.h3)
        df = pd.DataFrame({"zone": np.asarray(rows["zone"], dtype=np.int64), "cell": np.asarray(rows["cell"], dtype=np.int64),
                           "h3": pd.Series(rows["h3"], dtype=object)})
        if risk is not None:
            r = risk_values(risk, self.n_grid_cells)
            rank = np.empty(r.size, dtype=np.int64)
            rank[rank_cells(r)] = np.arange(1, r.size + 1)
            df["risk"] = r[df["cell"].to_numpy()]
            df["rank"] = rank[df["cell"].to_numpy()]
        return df

    def to_dict(self) -> dict:
        """JSON-ready summary (no geometry); zones numbered 1..n."""
        return {
            "params": dict(self.params),
            "n_zones": len(self.zones),
            "n_cells": self.n_cells,
            "area_km2": self.area_km2,
            "total_risk": float(self.total_risk),
            "captured_risk": float(self.captured_risk),
            "captured_share": float(self.captured_share),
            "best_unconstrained_share": float(self.best_unconstrained_share),
            "gap_share": self.gap_share,
            "zones": [
                {"zone": z.number, "n_cells": len(z), "area_km2": float(z.area_km2), "diameter_m": float(z.diameter_m),
                 "risk": float(z.risk), **self._interval_props(z), "share": float(z.share),
                 "best_same_area_share": float(z.best_same_area_share), "gap_share": z.gap_share,
                 "exact": bool(z.exact), "h3": list(z.h3)}
                for z in self.zones
            ],
            **({"interval_level": self.interval_level, "interval_method": self.interval_method}
               if self.interval_level is not None else {}),
        }

    def _interval_props(self, z: Zone) -> dict:
        """``risk_lo``, ``risk_hi``, ``p_any`` of a zone when the set has an interval, else nothing."""
        if self.interval_level is None:
            return {}
        return {"risk_lo": float(z.risk_lo), "risk_hi": float(z.risk_hi), "p_any": float(z.p_any)}

    def to_geojson(self, metadata: dict | None = None, zone_properties: dict | None = None) -> dict:
        """FeatureCollection with one Feature per zone (RFC 7946).

        The geometry is the merged outline of the zone's cells (Polygon, or
        MultiPolygon should cells only touch at a vertex), lon/lat order,
        closed rings, counter-clockwise exteriors and clockwise holes.
        Properties: ``zone`` (1-based), ``n_cells``, ``area_km2``,
        ``diameter_m``, ``risk`` (expected events), with an interval
        (:meth:`with_interval`) ``risk_lo``, ``risk_hi`` (its bounds,
        events), ``p_any`` (probability of at least one event),
        ``interval_level`` and ``interval_method``, then ``share`` (of the
        total risk), ``best_same_area_share``, ``gap_share`` and the ``h3`` ids.

        Parameters
        ----------
        metadata : dict, optional
            JSON-ready values copied into every Feature's properties (after
            the zone's own, which they may not override) and kept as the
            foreign member ``"riskgrid"`` of the collection; meant for the
            forecast window, horizon, units and model, so that a web map
            loading the file can tell a 4-day count from a daily rate.
        zone_properties : dict, optional
            Zone number (1-based) -> JSON-ready values for that zone only (e.g.
            the explanation summary: background share, top categories, number
            and dates of the driving events); they may not override the
            zone's own properties.
        """
        metadata = dict(metadata or {})
        zone_properties = {int(k): dict(v) for k, v in (zone_properties or {}).items()}
        unknown = sorted(set(zone_properties) - {int(z.number) for z in self.zones})
        if unknown:
            raise ValueError(f"zone_properties names zones {unknown} that do not exist (zones are 1..{len(self.zones)})")
        feats = []
        for z in self.zones:
            geom = _normalise_geometry(h3.cells_to_geo(list(z.h3)))
            props = {
                "zone": int(z.number),
                "n_cells": len(z),
                "area_km2": float(z.area_km2),
                "diameter_m": float(z.diameter_m),
                "risk": float(z.risk),
                **self._interval_props(z),
                "share": float(z.share),
                "best_same_area_share": float(z.best_same_area_share),
                "gap_share": float(z.gap_share),
                "h3": list(z.h3),
            }
            if self.interval_level is not None:
                props.update(interval_level=float(self.interval_level), interval_method=str(self.interval_method))
            own = zone_properties.get(int(z.number), {})
            clash = sorted((set(props) & set(metadata)) | (set(props) & set(own)))
            if clash:
                raise ValueError(f"metadata may not override the zone properties {clash}")
            props.update(own)
            props.update(metadata)
            feats.append({"type": "Feature", "geometry": geom, "properties": props})
        out = {"type": "FeatureCollection", "features": feats}
        if metadata:
            out["riskgrid"] = metadata
        return out


def _zone_centre(z: Zone) -> tuple[float, float]:
    ll = np.array([h3.cell_to_latlng(c) for c in z.h3], dtype=float).reshape(-1, 2)
    if ll.shape[0] == 0:
        return float("nan"), float("nan")
    return float(ll[:, 0].mean()), float(ll[:, 1].mean())


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


def default_max_diameter_m(grid: HexGrid) -> float:
    """Default ``max_diameter_m``: 2.1 x the median distance between neighbouring cell centroids.

    A cell and its ring of six neighbours (centroid diameter 2 spacings) fits;
    a straight line of four cells (3 spacings) does not. At H3 resolution 9
    this is about 745 m between centroids in Chicago and 725 m in New York (a 7-cell
    disk then measures about 1.1 km edge to edge). A grid with no two
    neighbouring cells gets 2.1 x sqrt(3) x the average edge length of its
    resolution.
    """
    indptr, indices, _ = grid.neighbours(1)
    lat, lon = grid.centroids_latlon
    src = np.repeat(np.arange(len(grid)), np.diff(indptr))
    keep = indices != src
    if keep.any():
        d = haversine_m(lat[src[keep]], lon[src[keep]], lat[indices[keep]], lon[indices[keep]])
        spacing = float(np.median(d))
    else:
        spacing = math.sqrt(3.0) * grid.edge_length_m
    return 2.1 * spacing


def _check_int(name, v, lo):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


def select_zones(risk, grid: HexGrid, n_zones: int = 4, max_cells: int = 7, min_gap_rings: int = 1, *,
                 mode: str = "compact", max_diameter_m: float | None = None, max_nodes: int = 2_000_000) -> ZoneSet:
    """Patrol zones: up to ``n_zones`` connected, separated groups of cells capturing the most risk.

    Parameters
    ----------
    risk : xarray.DataArray or ndarray
        Forecast per grid cell (expected events in the window); a
        ``category`` dimension / 2-D array is summed over categories. Zones
        are chosen on this (the target risk when one is defined).
    grid : HexGrid
        The grid the risk is defined on.
    n_zones : int
        Maximum number of zones (default 4).
    max_cells : int
        Maximum cells per zone (7 = a cell and its ring at most).
    min_gap_rings : int
        Cells of different zones are more than ``min_gap_rings`` H3 grid
        steps apart (at least ``min_gap_rings`` cells between zones).
    mode : {"compact", "greedy"}
        ``"compact"`` (default): each zone is the best connected set within
        ``max_diameter_m``; ``"greedy"``: the older hotspot-growing rule
        (see the module docstring).
    max_diameter_m : float, optional
        Compact mode: largest great-circle distance between two cell
        **centroids** of a zone, metres (the ground extent is about one
        hexagon width more). Default :func:`default_max_diameter_m` (about
        740 m at resolution 9). Ignored in greedy mode.
    max_nodes : int
        Compact mode: search budget per zone (sets examined); when it runs
        out the best set found is used and the zone has ``exact=False``.

    Returns
    -------
    ZoneSet
        Zones numbered 1..n (cells, H3 ids, expected events, area, diameter,
        share, gap to the unconstrained best), captured share, best
        unconstrained share for the same number of cells, ``to_geojson()``,
        ``to_frame()``.

    Notes
    -----
    Deterministic (ties: fewer cells, then lowest cell indices; greedy mode:
    lowest cell index), no zone is made of zero risk only, and zones stop
    when no cell with positive risk is left.

    Examples
    --------
    >>> zs = select_zones(risk, grid, n_zones=4, max_cells=7, min_gap_rings=1)  # doctest: +SKIP
    >>> zs.to_frame()[["zone", "area_km2", "diameter_m", "expected_events", "gap_share"]]  # doctest: +SKIP
    """
    _check_int("n_zones", n_zones, 0)
    _check_int("max_cells", max_cells, 1)
    _check_int("min_gap_rings", min_gap_rings, 0)
    _check_int("max_nodes", max_nodes, 1)
    if mode not in ZONE_MODES:
        raise ValueError(f"mode must be one of {ZONE_MODES}, got {mode!r}")
    r = risk_values(risk, len(grid))
    if mode == "compact" and (r < 0).any():
        bad = np.flatnonzero(r < 0)
        raise ValueError(f"risk must be >= 0 (expected events); {bad.size} negative value(s), at cells {bad[:5].tolist()}")
    params = {"mode": mode, "n_zones": int(n_zones), "max_cells": int(max_cells), "min_gap_rings": int(min_gap_rings)}
    order = rank_cells(r)
    if mode == "greedy":
        groups = _greedy_groups(r, grid, order, n_zones, max_cells, min_gap_rings)
        exact = [False] * len(groups)
    else:
        if max_diameter_m is None:
            max_diameter_m = default_max_diameter_m(grid)
        if isinstance(max_diameter_m, bool) or not isinstance(max_diameter_m, (int, float, np.integer, np.floating)) \
                or not math.isfinite(max_diameter_m) or max_diameter_m < 0:
            raise ValueError(f"max_diameter_m must be a finite number of metres >= 0, got {max_diameter_m!r}")
        params["max_diameter_m"] = float(max_diameter_m)
        groups, exact = _compact_groups(r, grid, order, n_zones, max_cells, min_gap_rings, float(max_diameter_m),
                                        int(max_nodes))
    return _zone_set(r, grid, order, groups, exact, params)


def _greedy_groups(r, grid, order, n_zones, max_cells, min_gap_rings) -> list:
    n = len(grid)
    available = np.ones(n, dtype=bool)
    ptr = 0
    groups = []
    while len(groups) < n_zones:
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
        groups.append(cells)
    return groups


def _compact_groups(r, grid, order, n_zones, max_cells, min_gap_rings, max_diameter_m, max_nodes):
    n = len(grid)
    available = np.ones(n, dtype=bool)
    indptr, indices, _ = grid.neighbours(1)
    lat, lon = grid.centroids_latlon
    lat_rad, lon_rad = np.radians(lat), np.radians(lon)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    groups, exact = [], []
    while len(groups) < n_zones:
        cells, best, _, complete = best_compact_set(
            r, lat_rad, lon_rad, np.ascontiguousarray(indptr), np.ascontiguousarray(indices), order, available,
            int(max_cells), float(max_diameter_m), EARTH_RADIUS_M, int(max_nodes))
        if cells.size == 0 or not best > 0:
            break
        cells = cells[np.argsort(rank[cells])]  # rank order: highest risk first
        available[_disk_indices(grid, cells, int(min_gap_rings))] = False
        available[cells] = False
        groups.append(cells.astype(np.int64))
        exact.append(bool(complete))
    return groups, exact


def _diameter_m(lat, lon, cells) -> float:
    if cells.size < 2:
        return 0.0
    la, lo = lat[cells], lon[cells]
    d = haversine_m(la[:, None], lo[:, None], la[None, :], lo[None, :])
    return float(d.max())


def _zone_set(r, grid, order, groups, exact, params) -> ZoneSet:
    total = float(r.sum())
    lat, lon = grid.centroids_latlon
    area = grid.area_m2
    top_cum = np.concatenate([[0.0], np.cumsum(r[order])])
    zones = []
    for k, (cells, ex) in enumerate(zip(groups, exact)):
        risk_k = float(r[cells].sum())
        zones.append(Zone(
            cells=cells, h3=tuple(h3.int_to_str(int(grid.cells[i])) for i in cells), risk=risk_k, number=k + 1,
            area_km2=float(area[cells].sum() / 1e6), diameter_m=_diameter_m(lat, lon, cells),
            share=risk_k / total if total > 0 else 0.0,
            best_same_area_share=float(top_cum[cells.size] / total) if total > 0 else 0.0, exact=ex))
    captured = float(sum(z.risk for z in zones))
    n_cells = int(sum(len(z) for z in zones))
    best = float(top_cum[n_cells])
    return ZoneSet(
        zones=zones,
        total_risk=total,
        captured_risk=captured,
        captured_share=captured / total if total > 0 else 0.0,
        best_unconstrained_share=best / total if total > 0 else 0.0,
        params=params,
        n_grid_cells=len(grid),
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
        ``n_zones``, ``max_cells``, ``min_gap_rings``, ``mode``,
        ``max_diameter_m`` for :func:`select_zones`.

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
