"""The H3 study area: :class:`HexGrid`.

Cells are kept as sorted ``uint64`` H3 ids; strings appear only at the edges
(GeoJSON, output files, ``repr``).
"""

from __future__ import annotations

import itertools
import uuid
from functools import cached_property

import h3
import numpy as np
import pandas as pd
from h3.api import basic_int as _h3b
from h3.api import numpy_int as h3i

from .events import EventSet
from .kernels.spatial import dilate_ij_table, hex_ring_csr, lattice_cells
from .geo import EARTH_RADIUS_M, LocalProjection, load_geojson, load_polygons, oriented_ring, polygon_area_m2

__all__ = [
    "HexGrid",
    "latlng_to_cells",
    "estimate_cells_from_events",
    "estimate_cells_in_polygons",
    "DEFAULT_MAX_CELLS",
    "DEFAULT_MAX_BUFFER_RINGS",
    "DEFAULT_MAX_PAIRS",
]

#: Largest grid built by default, cells. Measured (tracemalloc, 99,556 cells at
#: resolution 10): a HexGrid with centroids, areas, outlines and 1-ring neighbours
#: peaks at 1.6 kB per cell, 3.4 kB with the GeoJSON export, before any model
#: array or raster; 1e6 cells thus take ~3.4 GB and leave room on a 24 GB machine
#: for the fit (per-cell, per-category arrays) and the raster. Resolution 12 over
#: Chicago's bounding box (~4.9 million cells) is refused; resolution 11 (~0.7 million) is not.
DEFAULT_MAX_CELLS = 1_000_000
#: Largest ``buffer_rings`` accepted by default (50 rings: ~17 km at resolution 9).
DEFAULT_MAX_BUFFER_RINGS = 50
#: Largest number of (cell, neighbour) pairs :meth:`HexGrid.neighbours` lists by default
#: (two int64 arrays: 16 bytes a pair, 1.5 GiB): 1e6 cells with 2 rings (19 per cell) fit.
DEFAULT_MAX_PAIRS = 100_000_000
#: h3-py's compiled ``latlng_to_cell`` (its public ``basic_int`` function is a thin Python
#: wrapper around it that returns the same int; calling it directly saves a third of the time)
_latlng_to_cell = getattr(getattr(h3, "_cy", None), "latlng_to_cell", None) or _h3b.latlng_to_cell
_local_ij_to_cell = getattr(getattr(h3, "_cy", None), "local_ij_to_cell", None) or _h3b.local_ij_to_cell
#: Largest error (hexagon spacings) of the fitted map from the local metric frame to
#: H3 local IJ coordinates, at the cell centres, for :meth:`HexGrid.assign` to use it
LATTICE_MAX_RESIDUAL = 1e-3
#: Points closer than this many times the map's error (plus 1e-9 spacings) to a cell
#: boundary are assigned by h3 itself
LATTICE_SAFETY = 20.0
#: the 12 base cells (resolution 0) that are pentagons
_PENTAGON_BASE_CELLS = frozenset(h3.get_base_cell_number(p) for p in h3.get_pentagons(0))


def latlng_to_cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cell (uint64) of every point, exactly as ``h3.latlng_to_cell`` computes it.

    h3-py has no array version, so the call (about 0.5 µs of C) is made once
    per *distinct* (lat, lon) pair (police data repeat block-level points a
    lot); the distinct pairs are found with a hash table (``pandas.factorize``
    on ``lat + i·lon``, O(n)), not a sort.
    A NaN coordinate raises h3's ``H3LatLngDomainError``.
    """
    lat = np.ascontiguousarray(lat, dtype=np.float64).ravel()
    lon = np.ascontiguousarray(lon, dtype=np.float64).ravel()
    if lat.size == 0:
        return np.zeros(0, dtype=np.uint64)
    z = np.empty(lat.size, dtype=np.complex128)
    z.real, z.imag = lat, lon
    codes, uniq = pd.factorize(z, sort=False, use_na_sentinel=False)
    cells = np.fromiter(
        map(_latlng_to_cell, uniq.real.tolist(), uniq.imag.tolist(), itertools.repeat(int(resolution), uniq.size)),
        dtype=np.uint64,
        count=uniq.size,
    )
    return cells[codes]


#: :func:`_event_cells` decides points on a lattice fitted to this many sampled points
#: (above four times as many points; below, h3 is called for every distinct point)
EVENT_SAMPLE = 4096


def _event_cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """:func:`latlng_to_cells` for many points, with one h3 call per distinct *cell* for most of them.

    A sample of :data:`EVENT_SAMPLE` points (evenly spaced in the given
    order) is assigned by h3; the sampled cells' lattice map
    (:meth:`HexGrid._lattice_map`) then places every point with the same
    margin rule as :meth:`HexGrid.assign`, where its lattice cell lies within
    2 rings of a sampled cell; each distinct lattice cell found is turned
    into its H3 id by ``local_ij_to_cell``; every other point goes through
    h3. Equal to :func:`latlng_to_cells` (tests on random and near-edge points).
    """
    lat = np.ascontiguousarray(lat, dtype=np.float64).ravel()
    lon = np.ascontiguousarray(lon, dtype=np.float64).ravel()
    n = lat.size
    if n < 4 * EVENT_SAMPLE or not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        return latlng_to_cells(lat, lon, resolution)
    pick = np.linspace(0, n - 1, EVENT_SAMPLE).astype(np.int64)
    sample = HexGrid(np.unique(latlng_to_cells(lat[pick], lon[pick], resolution)), resolution)
    lattice = sample._lattice_map()
    if lattice is None:
        return latlng_to_cells(lat, lon, resolution)
    li = np.empty(n, dtype=np.int64)
    lj = np.empty(n, dtype=np.int64)
    x, y = sample._lattice_frame(lat, lon)
    where = lattice_cells(x, y, *lattice, li, lj)
    ci, cj, _ = sample._local_ij()
    near, imin, jmin, w, hgt = dilate_ij_table(ci, cj, 2)
    ok = where != -2
    ii, jj = li - imin, lj - jmin
    inside = ok & (ii >= 0) & (ii < w) & (jj >= 0) & (jj < hgt)
    ok &= inside
    ok[inside] &= near[ii[inside] * hgt + jj[inside]] == 1
    cells = np.empty(n, dtype=np.uint64)
    dec = np.flatnonzero(ok)
    if dec.size:
        key = ii[dec] * hgt + jj[dec]
        uniq, inv = np.unique(key, return_inverse=True)
        anchor = int(sample.cells[sample.cells.size // 2])  # the anchor of sample._local_ij()
        f = _local_ij_to_cell
        try:
            ids = np.array([f(anchor, int(k // hgt) + imin, int(k % hgt) + jmin) for k in uniq.tolist()], dtype=np.uint64)
        except (h3.H3BaseException, ValueError):
            return latlng_to_cells(lat, lon, resolution)
        cells[dec] = ids[inv.ravel()]
    rest = np.flatnonzero(~ok)
    if rest.size:
        cells[rest] = latlng_to_cells(lat[rest], lon[rest], resolution)
    return cells


def _check_count(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _disk_size(k: int) -> int:
    """Cells in an H3 disk of radius ``k`` (hexagons): 3k(k+1) + 1."""
    return 3 * k * (k + 1) + 1


def estimate_cells_from_events(lat, lon, resolution: int, buffer_rings: int, n_base: int | None = None) -> int:
    """Upper estimate of the cells of ``HexGrid.from_events`` before building it.

    The smaller of two bounds: every event cell's full disk
    (``n_base × (3k(k+1) + 1)``, ``n_base`` the distinct event cells, counted
    when not given) and the cells that fit in the events' bounding box widened
    by ``k`` ring spacings (√3 × the average edge length) on every side, plus
    one ring of slack, divided by the average cell area. Cheap: no cell is
    enumerated.
    """
    resolution = _check_resolution(resolution)
    k = _check_count("buffer_rings", buffer_rings)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if n_base is None:
        n_base = int(np.unique(latlng_to_cells(lat, lon, resolution)).size)
    by_disks = n_base * _disk_size(k)
    spacing = np.sqrt(3.0) * float(h3.average_hexagon_edge_length(resolution, unit="m"))
    pad = (k + 1) * spacing
    lat0 = np.radians(np.clip(np.abs(lat).max(), 0.0, 89.0))
    height = np.radians(lat.max() - lat.min()) * EARTH_RADIUS_M + 2 * pad
    width = np.radians(lon.max() - lon.min()) * EARTH_RADIUS_M * np.cos(lat0 if lat.min() * lat.max() > 0 else 0.0)
    width = width + 2 * pad
    by_box = height * width / float(h3.average_hexagon_area(resolution, unit="m^2"))
    return int(min(by_disks, np.ceil(by_box)))


def estimate_cells_in_polygons(polygons, resolution: int) -> int:
    """Estimate of the cells of ``HexGrid.from_geojson``: polygon area / average cell area at ``resolution``.

    ``polygons`` as returned by :func:`riskgrid.geo.load_polygons`. Cheap: no cell is enumerated.
    """
    resolution = _check_resolution(resolution)
    return int(np.ceil(polygon_area_m2(polygons) / float(h3.average_hexagon_area(resolution, unit="m^2"))))


def _dilate(cells: np.ndarray, rings: int) -> np.ndarray:
    """``cells`` plus every cell within ``rings`` grid steps (the union of ``grid_disk(c, rings)``).

    On a flat part of the grid (see :meth:`HexGrid._local_ij`: no pentagon
    within ``rings + 2`` rings) the disks are drawn on local IJ coordinates
    and each cell of the result named by ``local_ij_to_cell`` (one C call per
    cell); elsewhere, or if h3 refuses a coordinate, grown ring by ring from
    the frontier with ``grid_disk``.
    """
    if cells.size:
        res = int((int(cells[0]) >> 52) & 15)
        g = HexGrid(cells, res)
        lij = g._local_ij()
        if lij is not None and lij[2] > rings + 2:
            table, imin, jmin, w, hgt = dilate_ij_table(lij[0], lij[1], int(rings))
            ii, jj = np.divmod(np.flatnonzero(table), hgt)
            anchor = int(g.cells[g.cells.size // 2])  # the anchor of _local_ij()
            f = _local_ij_to_cell
            try:
                out = np.fromiter(
                    map(f, itertools.repeat(anchor, ii.size), (ii + imin).tolist(), (jj + jmin).tolist()),
                    dtype=np.uint64, count=ii.size,
                )
            except (h3.H3BaseException, ValueError):
                out = None
            if out is not None:
                return np.unique(out)
    seen = set(cells.tolist())
    frontier = list(seen)
    disk = h3i.grid_disk
    for _ in range(rings):
        new = set()
        for c in frontier:
            new.update(disk(c, 1).tolist())
        new -= seen
        seen |= new
        frontier = list(new)
    return np.unique(np.fromiter(seen, dtype=np.uint64, count=len(seen)))


def _check_resolution(resolution) -> int:
    if not isinstance(resolution, (int, np.integer)) or not 0 <= int(resolution) <= 15:
        raise ValueError(f"H3 resolution must be an integer in 0..15, got {resolution!r}")
    return int(resolution)


class HexGrid:
    """A set of H3 cells at one resolution: the study area of a model.

    Build with :meth:`from_events`, :meth:`from_geojson` or :meth:`from_cells`.

    Attributes
    ----------
    cells : ndarray of uint64
        Sorted H3 cell ids.
    resolution : int
        H3 resolution (9 ≈ 0.105 km² cells, 201 m edge).
    projection : LocalProjection
        Local metric frame centred on the grid (metres).
    """

    def __init__(self, cells, resolution: int):
        cells = np.unique(np.asarray(cells, dtype=np.uint64))
        if cells.size == 0:
            raise ValueError("a HexGrid needs at least one cell")
        res = np.unique((cells >> np.uint64(52)) & np.uint64(15))  # H3 index bits 52-55: the resolution
        if res.tolist() != [resolution]:
            raise ValueError(f"cells have resolution(s) {res.tolist()}, expected {resolution}")
        cells.flags.writeable = False
        self.cells = cells
        self.resolution = int(resolution)
        self._neighbours: dict[int, tuple] = {}
        self._rings = None  # boundaries_lonlat(), built on first use
        self._lij = None  # _local_ij(): None before, False when unavailable
        self._lattice = None  # _lattice_map(): None before, False when unavailable
        self._vertices = None
        # identifies this (immutable) grid in EventSet's memo of assignments, across processes too
        self._token = uuid.uuid4().hex

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_cells(cls, cells, resolution: int | None = None) -> "HexGrid":
        """Grid from H3 ids (ints, uint64 or hex strings)."""
        cells = list(cells)
        if cells and isinstance(cells[0], str):
            cells = [h3.str_to_int(c) for c in cells]
        arr = np.asarray(cells, dtype=np.uint64)
        if arr.size == 0:
            raise ValueError("a HexGrid needs at least one cell")
        if resolution is None:
            resolution = int(h3i.get_resolution(arr[0]))
        return cls(arr, _check_resolution(resolution))

    @classmethod
    def from_events(
        cls,
        events: EventSet,
        resolution: int = 9,
        buffer_rings: int = 1,
        max_cells: int = DEFAULT_MAX_CELLS,
        max_buffer_rings: int = DEFAULT_MAX_BUFFER_RINGS,
    ) -> "HexGrid":
        """Every cell holding an event, plus ``buffer_rings`` rings around them.

        The size is checked before any cell is enumerated (see
        :func:`estimate_cells_from_events`): more than ``max_buffer_rings``
        rings, or an estimated grid above ``max_cells`` cells, raises a
        ``ValueError`` naming the setting and the estimate. The rings are
        grown one at a time from the frontier (the same cells as the union of
        ``grid_disk(c, buffer_rings)`` over the event cells, at a cost that
        follows the size of the result, not ``events × rings²``).

        Parameters
        ----------
        events : EventSet
            Accepted events only: the grid never extends to rejected rows.
        resolution : int
            H3 resolution, 0..15.
        buffer_rings : int
            Rings of cells added around the event cells, >= 0.
        max_cells : int
            Largest grid accepted, cells (default sized for a 24 GB machine,
            see :data:`DEFAULT_MAX_CELLS`).
        max_buffer_rings : int
            Largest ``buffer_rings`` accepted.
        """
        resolution = _check_resolution(resolution)
        buffer_rings = _check_count("buffer_rings", buffer_rings)
        max_cells = _check_count("max_cells", max_cells, minimum=1)
        max_buffer_rings = _check_count("max_buffer_rings", max_buffer_rings)
        if buffer_rings > max_buffer_rings:
            raise ValueError(
                f"buffer_rings={buffer_rings} is above max_buffer_rings={max_buffer_rings} "
                f"({buffer_rings} rings of {2 * float(h3.average_hexagon_edge_length(resolution, unit='km')) * 0.866:.3g} km "
                f"at resolution {resolution}); lower buffer_rings, or raise max_buffer_rings if it is intended"
            )
        if len(events) == 0:
            raise ValueError("cannot build a grid from an empty EventSet")
        event_cells = _event_cells(events.lat, events.lon, resolution)
        base = np.unique(event_cells)
        estimate = estimate_cells_from_events(events.lat, events.lon, resolution, buffer_rings, n_base=base.size)
        if estimate > max_cells:
            raise ValueError(
                f"the grid would have about {estimate:,} cells ({base.size:,} event cells at resolution {resolution} "
                f"with buffer_rings={buffer_rings}), above max_cells={max_cells:,}; use a coarser resolution, "
                f"fewer buffer_rings, or raise max_cells"
            )
        if buffer_rings:
            base = _dilate(base, buffer_rings)
        grid = cls(base, resolution)
        grid._remember(events, grid.index_of(event_cells))  # the events' assignment comes for free
        return grid

    @classmethod
    def from_geojson(cls, geojson, resolution: int = 9, max_cells: int = DEFAULT_MAX_CELLS) -> "HexGrid":
        """Cells whose centres lie in a GeoJSON Polygon/MultiPolygon (holes respected).

        ``geojson`` is a dict (geometry, Feature or FeatureCollection), a JSON
        string or a path. Coordinates are lon/lat (RFC 7946). The number of
        cells is estimated from the polygons' area on the sphere before any
        cell is enumerated (see :func:`estimate_cells_in_polygons`); above
        ``max_cells`` a ``ValueError`` names the setting and the estimate.
        """
        resolution = _check_resolution(resolution)
        max_cells = _check_count("max_cells", max_cells, minimum=1)
        geoms = load_geojson(geojson)
        estimate = estimate_cells_in_polygons(load_polygons(geoms), resolution)
        if estimate > max_cells:
            raise ValueError(
                f"the polygon would hold about {estimate:,} cells at resolution {resolution}, above "
                f"max_cells={max_cells:,}; use a coarser resolution, or raise max_cells"
            )
        cells = [np.asarray(h3i.geo_to_cells(g, resolution), dtype=np.uint64) for g in geoms]
        cells = np.unique(np.concatenate(cells)) if cells else np.zeros(0, np.uint64)
        if cells.size == 0:
            raise ValueError(f"the polygon contains no H3 cell centre at resolution {resolution}; use a finer resolution")
        return cls(cells, resolution)

    # -------------------------------------------------------------- properties
    def __len__(self) -> int:
        return int(self.cells.size)

    def __repr__(self) -> str:
        return f"HexGrid({len(self)} cells, resolution {self.resolution}, {self.area_m2.sum() / 1e6:.2f} km²)"

    @cached_property
    def cell_ids(self) -> np.ndarray:
        """H3 ids as strings (for output files), exactly ``h3.int_to_str``; read-only, built once.

        Formatted from the integers without a call per cell: a cell id has
        the mode bit 59 set, so it is always 15 lowercase hex digits.
        """
        c = self.cells
        if int(c.min()) < (1 << 59) or int(c.max()) >= (1 << 60):
            ids = np.array([h3.int_to_str(int(x)) for x in c.tolist()])
        else:
            shifts = np.arange(56, -1, -4, dtype=np.uint64)  # 15 nibbles, most significant first
            nib = ((c[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.uint8)
            ids = np.frombuffer(np.frombuffer(b"0123456789abcdef", np.uint8)[nib].tobytes(), dtype="S15").astype(str)
        ids.flags.writeable = False
        return ids

    @cached_property
    def centroids_latlon(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres ``(lat, lon)`` in degrees."""
        f = _h3b.cell_to_latlng
        ll = np.array([f(c) for c in self.cells.tolist()], dtype=float).reshape(-1, 2)
        return ll[:, 0].copy(), ll[:, 1].copy()

    @cached_property
    def projection(self) -> LocalProjection:
        lat, lon = self.centroids_latlon
        return LocalProjection.centred_on(lat, lon)

    @cached_property
    def centroids_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres in metres on :attr:`projection`."""
        return self.projection.forward(*self.centroids_latlon)

    @cached_property
    def area_m2(self) -> np.ndarray:
        """Exact area of each cell in square metres."""
        f = _h3b.cell_area
        return np.array([f(c, unit="m^2") for c in self.cells.tolist()], dtype=float)

    @property
    def edge_length_m(self) -> float:
        """Average hexagon edge length at this resolution, metres."""
        return float(h3.average_hexagon_edge_length(self.resolution, unit="m"))

    # -------------------------------------------------------------- operations
    def index_of(self, cells) -> np.ndarray:
        """Position of each H3 id in :attr:`cells` (int64, -1 when not in the grid)."""
        cells = np.asarray(cells, dtype=np.uint64)
        pos = np.searchsorted(self.cells, cells)
        pos = np.minimum(pos, self.cells.size - 1)
        return np.where(self.cells[pos] == cells, pos, -1).astype(np.int64)

    def assign(self, events_or_lat, lon=None) -> np.ndarray:
        """Cell index (int64 into :attr:`cells`, -1 outside the grid) of every event.

        Accepts an :class:`EventSet` or two arrays ``(lat, lon)`` in degrees.
        The result for an EventSet is read-only (memoised, see above).
        """
        if isinstance(events_or_lat, EventSet):
            # EventSets are immutable: the assignment is memoised on the set (and
            # sliced along by between/select), so repeated fits on windows of the
            # same events (backtests) do not call H3 again.
            memo = events_or_lat._cells_cache
            if self._token not in memo:
                self._remember(events_or_lat, self._assign_points(events_or_lat.lat, events_or_lat.lon))
            return memo[self._token]
        else:
            lat = events_or_lat
            if lon is None:
                raise TypeError("assign(lat, lon) needs both arrays")
        return self._assign_points(lat, lon)

    def _assign_points(self, lat, lon) -> np.ndarray:
        """Grid position of every point (-1 outside): the fitted IJ lattice where it is sure, h3 elsewhere.

        Equal to ``index_of(latlng_to_cells(lat, lon, resolution))`` (tests
        compare on random and near-edge points of several cities): points
        the lattice map cannot decide with a margin of
        :data:`LATTICE_SAFETY` × its error, and every point when no map could
        be fitted, go through h3.
        """
        lat = np.ascontiguousarray(lat, dtype=np.float64).ravel()
        lon = np.ascontiguousarray(lon, dtype=np.float64).ravel()
        lattice = self._lattice_map() if lat.size >= 1000 and np.isfinite(lat).all() and np.isfinite(lon).all() else None
        if lattice is None:
            return self.index_of(latlng_to_cells(lat, lon, self.resolution))
        x, y = self._lattice_frame(lat, lon)
        none = np.zeros(0, dtype=np.int64)
        out = lattice_cells(x, y, *lattice, none, none)
        ask = np.flatnonzero(out == -2)
        if ask.size:
            out[ask] = self.index_of(latlng_to_cells(lat[ask], lon[ask], self.resolution))
        return out

    def _lattice_frame(self, lat, lon):
        """Cheap local plane of the lattice map: ``((lon - lon0) cos(lat0), lat - lat0)`` in degrees (lon wrapped).

        Only the fitted map uses it (its cubic terms absorb the distortion);
        distances in metres come from :attr:`projection`.
        """
        p = self.projection
        dlon = (np.asarray(lon, dtype=np.float64) - p.lon0 + 180.0) % 360.0 - 180.0
        return (np.ascontiguousarray(dlon * np.cos(np.radians(p.lat0))),
                np.ascontiguousarray(np.asarray(lat, dtype=np.float64) - p.lat0))

    def _lattice_map(self):
        """Arguments of :func:`~riskgrid.kernels.spatial.lattice_cells` after the grid, or ``None``.

        A cubic polynomial map from :attr:`projection` metres to H3 local IJ
        coordinates, least-squares fitted on the cell centres; refused when
        the IJ lattice is not flat (pentagon within 10 rings, or no local IJ),
        the grid has fewer than 50 cells, or the map misses a centre by more
        than :data:`LATTICE_MAX_RESIDUAL` hexagon spacings (e.g. a grid
        across two icosahedron faces, where the projection folds).
        """
        if getattr(self, "_lattice", None) is not None:  # getattr: grids pickled before this attribute existed
            return self._lattice or None
        self._lattice = False
        lij = self._local_ij()
        if lij is None or lij[2] <= 10 or len(self) < 50:
            return None
        ci, cj = lij[0], lij[1]
        box = (int(ci.max() - ci.min()) + 1) * (int(cj.max() - cj.min()) + 1)
        if box > 32 * ci.size + (1 << 20):
            return None
        x, y = self._lattice_frame(*self.centroids_latlon)
        sx, sy = float(x.mean()), float(y.mean())
        scale = max(float(np.abs(x - sx).max()), float(np.abs(y - sy).max()), 1.0)
        a, b = (x - sx) / scale, (y - sy) / scale
        basis = np.stack([np.ones_like(a), a, b, a * a, a * b, b * b, a * a * a, a * a * b, a * b * b, b * b * b], axis=1)
        # normal equations of the 10-term fit (a few microseconds; lstsq's LAPACK call costs
        # milliseconds with a busy BLAS thread pool); the residual check below guards the result
        coef = np.linalg.solve(basis.T @ basis, basis.T @ np.c_[ci, cj].astype(float))
        fu, fv = (basis @ coef).T
        du, dv = fu - ci, fv - cj
        resid = float(np.sqrt((du - 0.5 * dv) ** 2 + 0.75 * dv**2).max())  # hexagonal metric, spacing 1
        if not resid <= LATTICE_MAX_RESIDUAL:
            return None
        imin, jmin = int(ci.min()), int(cj.min())
        w, hgt = int(ci.max()) - imin + 1, int(cj.max()) - jmin + 1
        table = np.full(w * hgt, -1, dtype=np.int64)
        table[(ci - imin) * hgt + (cj - jmin)] = np.arange(ci.size)
        # beyond the outermost centres by more than a cell's radius (degrees of latitude)
        pad = 3.0 * self.edge_length_m / (EARTH_RADIUS_M * np.radians(1.0)) / max(np.cos(np.radians(self.projection.lat0)), 0.05)
        self._lattice = (
            sx, sy, scale, np.ascontiguousarray(coef[:, 0]), np.ascontiguousarray(coef[:, 1]), table, imin, jmin, w, hgt,
            LATTICE_SAFETY * resid + 1e-9,
            float(x.min()) - pad, float(x.max()) + pad, float(y.min()) - pad, float(y.max()) + pad,
        )
        return self._lattice

    def _remember(self, events: EventSet, cells: np.ndarray) -> None:
        """Store ``cells`` (this grid's index of every event) in the EventSet's memo (4 grids at most)."""
        memo = events._cells_cache
        if self._token not in memo and len(memo) >= 4:
            memo.pop(next(iter(memo)))
        cells.flags.writeable = False
        memo[self._token] = cells

    def neighbours(self, k: int = 1, max_pairs: int = DEFAULT_MAX_PAIRS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cells within ``k`` rings of each cell, as CSR arrays.

        Returns ``(indptr, indices, ring)``: for cell ``i`` the neighbours are
        ``indices[indptr[i]:indptr[i+1]]`` (indices into :attr:`cells`, only
        cells that are in the grid, the cell itself first at ring 0) and
        ``ring`` holds their H3 grid distance (0..k). int64 arrays.

        The number of (cell, neighbour) pairs is bounded before any work by
        ``len(grid) × (3k(k+1) + 1)``; above ``max_pairs`` (16 bytes a pair)
        a ``ValueError`` names ``k``, the estimate and the setting.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be an integer >= 0, got {k!r}")
        k = int(k)
        if k in self._neighbours:
            return self._neighbours[k]
        max_pairs = _check_count("max_pairs", max_pairs, minimum=1)
        bound = len(self) * _disk_size(k)
        if bound > max_pairs:
            raise ValueError(
                f"neighbours within k={k} rings of {len(self):,} cells: up to {bound:,} cell pairs "
                f"(~{bound * 16 / 2**30:.1f} GiB), above max_pairs={max_pairs:,}; use fewer rings "
                f"(e.g. a smaller spillover_rings), a coarser grid, or raise max_pairs"
            )
        out = self._neighbours_local_ij(k)
        if out is None:
            out = self._neighbours_h3(k)
        for a in out:
            a.flags.writeable = False
        self._neighbours[k] = out
        return out

    def _neighbours_local_ij(self, k: int):
        """:meth:`neighbours` from H3 local IJ coordinates (one C call per cell, the rest in Numba).

        Valid where the IJ lattice is flat: no cell of the grid in a pentagon
        base cell and no pentagon of this resolution within ``2k + 2`` rings
        of the grid. Returns ``None`` (the caller then walks the rings with
        h3) when that does not hold, when h3 cannot give local IJ coordinates
        for some cell (too far from the anchor), or when the IJ bounding box
        is far larger than the grid. Tested against ``h3.grid_ring`` on every
        cell of several cities and resolutions.
        """
        lij = self._local_ij()
        if lij is None or lij[2] <= 2 * k + 2:
            return None
        ci, cj = lij[0], lij[1]
        box = (int(ci.max() - ci.min()) + 1 + 2 * k) * (int(cj.max() - cj.min()) + 1 + 2 * k)
        if box > 32 * ci.size + (1 << 20):
            return None
        return hex_ring_csr(ci, cj, int(k))

    def _local_ij(self):
        """H3 local IJ coordinates ``(ci, cj, pentagon_rings)`` of every cell against the middle cell, or ``None``.

        ``None`` when a cell lies in a pentagon base cell or h3 cannot give
        coordinates for some cell (too far from the anchor). ``pentagon_rings``
        is the smallest grid distance (rings, in IJ) from a cell of the grid to
        a pentagon of this resolution (``inf`` when none is in reach). One h3
        call per cell, once per grid.
        """
        if getattr(self, "_lij", None) is not None:  # getattr: grids pickled before this attribute existed
            return self._lij or None
        self._lij = False
        cells = self.cells
        base = np.unique((cells >> np.uint64(45)) & np.uint64(127))  # H3 index bits 45-51: the base cell
        if set(base.tolist()) & _PENTAGON_BASE_CELLS:
            return None
        anchor = int(cells[cells.size // 2])
        f = _h3b.cell_to_local_ij
        try:
            ij = np.array([f(anchor, c) for c in cells.tolist()], dtype=np.int64).reshape(-1, 2)
        except (h3.H3BaseException, ValueError):
            return None
        ci, cj = np.ascontiguousarray(ij[:, 0]), np.ascontiguousarray(ij[:, 1])
        ci.flags.writeable = cj.flags.writeable = False
        pent = np.inf
        for p in h3.get_pentagons(self.resolution):
            try:
                pi, pj = f(anchor, h3.str_to_int(p) if isinstance(p, str) else int(p))
            except (h3.H3BaseException, ValueError):
                continue  # too far to be given IJ coordinates: far from the grid
            di, dj = ci - pi, cj - pj
            pent = min(pent, float((np.maximum(np.maximum(di, dj), 0) - np.minimum(np.minimum(di, dj), 0)).min()))
        self._lij = (ci, cj, pent)
        return self._lij

    def _neighbours_h3(self, k: int):
        """:meth:`neighbours` by walking ``h3.grid_ring`` around every cell (any grid, pentagons included)."""
        indptr = np.zeros(self.cells.size + 1, dtype=np.int64)
        idx_parts, ring_parts = [], []
        for i, c in enumerate(self.cells):
            c = int(c)
            ids, rings = [], []
            for r in range(k + 1):
                ring_cells = [c] if r == 0 else h3i.grid_ring(c, r)
                pos = self.index_of(np.asarray(ring_cells, dtype=np.uint64))
                pos = np.sort(pos[pos >= 0])
                ids.append(pos)
                rings.append(np.full(pos.size, r, dtype=np.int64))
            ids = np.concatenate(ids)
            idx_parts.append(ids)
            ring_parts.append(np.concatenate(rings))
            indptr[i + 1] = indptr[i] + ids.size
        return indptr, np.concatenate(idx_parts).astype(np.int64), np.concatenate(ring_parts)

    def boundaries_lonlat(self) -> list[list[list[float]]]:
        """Closed, counter-clockwise exterior ring of each cell in (lon, lat) order.

        Built once per grid (every export needs it) and shared: treat as read-only.
        """
        if self._rings is not None:
            return self._rings
        # what oriented_ring(ccw=True) gives for each boundary, done on all rings of one vertex count at once
        bounds = [h3i.cell_to_boundary(c) for c in self.cells.tolist()]
        rings, arrays = [None] * len(bounds), [None] * len(bounds)
        lengths = np.fromiter((len(b) for b in bounds), dtype=np.int64, count=len(bounds))
        for n in np.unique(lengths).tolist():
            idx = np.flatnonzero(lengths == n).tolist()
            pts = np.array([bounds[i] for i in idx], dtype=np.float64).reshape(len(idx), n, 2)[:, :, ::-1]
            ring = np.concatenate([pts, pts[:, :1]], axis=1)  # (lon, lat), closed
            x, y = ring[..., 0], ring[..., 1]
            ccw = np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1) > 0
            ring[~ccw] = ring[~ccw, ::-1]
            is_open = ~(pts[:, 0] == pts[:, -1]).all(axis=1)
            as_lists = ring.tolist()
            for j, i in enumerate(idx):
                if is_open[j]:
                    rings[i], arrays[i] = as_lists[j], ring[j]
                else:  # a boundary h3 already closed (never seen): the general rule
                    rings[i] = oriented_ring([(lng, lat) for lat, lng in bounds[i]], ccw=True)
                    arrays[i] = np.asarray(rings[i], dtype=np.float64)
        self._rings = rings
        self._vertices = np.concatenate(arrays) if arrays else np.zeros((0, 2))
        self._vertices.flags.writeable = False
        return rings

    @property
    def vertices_lonlat(self) -> np.ndarray:
        """Every vertex of :meth:`boundaries_lonlat` as one (n, 2) array of (lon, lat) degrees (read-only use)."""
        if self._vertices is None:
            self.boundaries_lonlat()
        return self._vertices

    def to_geojson(self, properties: dict | None = None) -> dict:
        """FeatureCollection of the cells (RFC 7946: lon/lat, closed CCW rings).

        ``properties`` maps a name to an array of per-cell values to attach.
        """
        properties = properties or {}
        feats = []
        ids = self.cell_ids
        for i, ring in enumerate(self.boundaries_lonlat()):
            props = {"h3": str(ids[i])}
            for name, values in properties.items():
                v = values[i]
                props[name] = v.item() if hasattr(v, "item") else v
            feats.append(
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}, "properties": props}
            )
        return {"type": "FeatureCollection", "features": feats}
