"""Per-cell forecasting features at many origins: the panel of :class:`FeatureForecaster`.

:class:`FeatureSpec` says which features; :func:`build_features` turns events
and a grid into a ``(n_origins, n_cells, n_features)`` array with one name per
feature, using only events strictly before each origin (the kernels of
:mod:`riskgrid.kernels.features`); :func:`panel_labels` gives the counts in
``[origin, origin + horizon)``.

Features (rates are events per day; "target" is the sum of the target
categories, each indicator category gets its own columns):

* ``target_cnt_<w>d_r<k>`` - target events in the last ``w`` days in the cell
  (``r0``) or in H3 ring ``k`` around it, divided by the window length
  actually observed (a window reaching before the first event of the data is
  shortened, so early origins are not biased low);
* ``target_dec_<tau>d`` (and ``_r1``: the cell plus ring 1) - exponentially
  decayed counts with e-folding time ``tau`` days (near-repeat memory);
* ``target_kde_<h>m_<w>d`` - Gaussian kernel smoothing (bandwidth ``h``
  metres, over cell centroids, truncated at 3 h) of the last ``w`` days'
  counts, as expected events per cell per day;
* ``target_pkde_<h>m_<w>d`` - the exact point kernel density (Gaussian,
  bandwidth ``h`` metres, truncated at 4 h) of the last ``w`` days' events
  at each cell centroid times the cell's area (what KDEHotspot maps), per
  day; events keep their own coordinates, so it sees sub-cell positions;
* ``target_eb_<w>d`` - the last ``w`` days' count of each cell shrunk toward
  the mean of its ring neighbourhood, ``(n + nu m) / (1 + nu)`` per day, with
  the strength ``nu`` and the neighbourhood (1-4 rings) chosen at each origin
  by the negative-binomial marginal likelihood of all cells' counts (the
  empirical-Bayes estimator of GridHawkes' smoothed background; on sparse
  events the strongest single ranking of the baselines);
* ``<indicator>_cnt_<w>d_r<k>`` - the same counts for each indicator;
* ``doy_sin``, ``doy_cos``, ``dow_sin``, ``dow_cos`` - calendar position of the
  middle of the forecast window (local wall clock of the data);
* ``log_area_km2`` - the cell's area;
* optional static covariates (a per-cell table keyed by H3 id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..events import EventSet
from ..grid import HexGrid
from ._hawkes_data import _Smoother
from .hotspot import GAUSSIAN_CUTOFF_BANDWIDTHS
from ..kernels.features import decayed_sums, future_sums, spread_cells, window_sums

__all__ = ["FeatureSpec", "CellEvents", "build_features", "panel_labels", "gaussian_cell_map"]

#: a Gaussian kernel over centroids is truncated at this many bandwidths
KDE_CUTOFF_BANDWIDTHS = 3.0
#: at most this many H3 rings are used for one Gaussian kernel
KDE_MAX_RINGS = 12


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to build (all lengths in days, distances in metres)."""

    windows_days: tuple = (7.0, 28.0, 91.0, 365.0, math.inf)
    ring_windows_days: tuple = (28.0, 365.0)
    rings: int = 2
    decay_days: tuple = (3.0, 14.0, 60.0)
    kde_bandwidths_m: tuple = ()  # empty: 0.75, 1.5 and 3 cell spacings of the grid
    kde_windows_days: tuple = (28.0, 365.0)
    point_kde_bandwidths_m: tuple = ()  # empty: 0.5 and 1 cell spacing of the grid
    point_kde_windows_days: tuple = (365.0, math.inf)
    indicator_windows_days: tuple = (28.0, 365.0)
    shrunk_windows_days: tuple = (math.inf,)
    calendar: bool = True


class CellEvents:
    """Events of some categories grouped by grid cell (CSR, time-sorted in each cell)."""

    def __init__(self, t: np.ndarray, cell: np.ndarray, weight: np.ndarray, n_cells: int):
        inside = cell >= 0
        t, cell, weight = t[inside], cell[inside], weight[inside]
        order = np.lexsort((t, cell))
        self.t = np.ascontiguousarray(t[order], dtype=np.float64)
        self.w = np.ascontiguousarray(weight[order], dtype=np.float64)
        self.ptr = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(np.bincount(cell, minlength=n_cells), out=self.ptr[1:])
        self.cumw = np.concatenate([[0.0], np.cumsum(self.w)])

    def windows(self, origins: np.ndarray, windows_days) -> np.ndarray:
        return window_sums(self.ptr, self.t, self.cumw, origins, np.asarray(windows_days, dtype=np.float64))

    def decayed(self, origins: np.ndarray, taus) -> np.ndarray:
        return decayed_sums(self.ptr, self.t, self.w, origins, np.asarray(taus, dtype=np.float64))

    def future(self, origins: np.ndarray, horizon_days: float) -> np.ndarray:
        return future_sums(self.ptr, self.t, self.cumw, origins, float(horizon_days))


def ring_map(grid: HexGrid, k: int):
    """CSR map summing the cells at H3 distance exactly ``k`` (weights 1)."""
    indptr, indices, ring = grid.neighbours(k)
    keep = ring == k
    row = np.repeat(np.arange(len(grid)), np.diff(indptr))
    ptr = np.zeros(len(grid) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[keep], minlength=len(grid)), out=ptr[1:])
    return ptr, np.ascontiguousarray(indices[keep]), np.ones(int(keep.sum()))


def cell_spacing_m(grid: HexGrid) -> float:
    """Distance between neighbouring cell centroids (metres): sqrt(3) x the mean edge length."""
    return math.sqrt(3.0) * grid.edge_length_m


def gaussian_cell_map(grid: HexGrid, bandwidth_m: float):
    """CSR map of a Gaussian kernel over centroids: ``w = area_c exp(-d^2/2h^2) / (2 pi h^2)``.

    Applied to per-cell counts it gives the kernel density at each centroid
    times the cell's area (expected events in the cell), with events placed at
    their cell's centroid (binned KDE). Truncated at
    :data:`KDE_CUTOFF_BANDWIDTHS` bandwidths (at most :data:`KDE_MAX_RINGS` rings).
    """
    h = float(bandwidth_m)
    k = min(KDE_MAX_RINGS, max(1, math.ceil(KDE_CUTOFF_BANDWIDTHS * h / cell_spacing_m(grid))))
    indptr, indices, _ = grid.neighbours(k)
    x, y = grid.centroids_xy
    row = np.repeat(np.arange(len(grid)), np.diff(indptr))
    d2 = (x[row] - x[indices]) ** 2 + (y[row] - y[indices]) ** 2
    w = grid.area_m2[row] * np.exp(-d2 / (2 * h * h)) / (2 * math.pi * h * h)
    w[d2 > (KDE_CUTOFF_BANDWIDTHS * h) ** 2] = 0.0
    return np.asarray(indptr), np.ascontiguousarray(indices), w


def point_kde_pairs(xy, cell: np.ndarray, grid: HexGrid, bandwidth_m: float):
    """Every (event, cell) pair within the Gaussian kernel's reach, with the kernel mass of the pair.

    Returns ``(event_index, cell_index, weight)`` with ``weight = area_c
    exp(-d^2/2h^2) / (2 pi h^2)`` for the distance ``d`` (metres) from the
    event to the centroid of cell ``c``, kept where ``d <= 4 h`` (KDEHotspot's
    truncation, :data:`~riskgrid.models.hotspot.GAUSSIAN_CUTOFF_BANDWIDTHS`): summing the
    weights of a window's events per cell gives the exact kernel density at
    the centroid times the cell's area. Candidate cells are the H3 rings
    around the event's own cell that can reach ``3 h`` (events outside the
    grid have no pairs).
    """
    x, y = xy
    h = float(bandwidth_m)
    cut = GAUSSIAN_CUTOFF_BANDWIDTHS * h
    k = min(KDE_MAX_RINGS, math.ceil(cut / cell_spacing_m(grid)) + 1)
    indptr, indices, _ = grid.neighbours(k)
    ev = np.flatnonzero(cell >= 0)
    n_nb = np.diff(indptr)[cell[ev]]
    e_idx = np.repeat(ev, n_nb)
    starts = np.repeat(indptr[cell[ev]], n_nb)
    offs = np.arange(e_idx.size) - np.repeat(np.cumsum(n_nb) - n_nb, n_nb)
    c_idx = indices[starts + offs]
    cx, cy = grid.centroids_xy
    d2 = (x[e_idx] - cx[c_idx]) ** 2 + (y[e_idx] - cy[c_idx]) ** 2
    keep = d2 <= cut * cut
    w = grid.area_m2[c_idx[keep]] * np.exp(-d2[keep] / (2 * h * h)) / (2 * math.pi * h * h)
    return e_idx[keep], np.ascontiguousarray(c_idx[keep], dtype=np.int64), w


def _label(x: float) -> str:
    return "all" if math.isinf(x) else f"{x:g}"


#: look-back windows (days) up to _RECENT_DAYS are "the past two weeks" in a feature's family, from _YEAR_DAYS "the past year"
_RECENT_DAYS, _YEAR_DAYS = 14.0, 365.0


def target_family(days: float) -> str:
    """The family of a target feature that looks back ``days`` (its window, or a decayed count's e-folding time).

    Up to 14 days: ``"incidents of the forecast types in the past two
    weeks"``; under a year: ``"... in the past weeks to months"``; a year or
    more (and all history, ``inf``): ``"... in the past year and longer"``.
    These are the words a zone's explanation names
    (:meth:`~riskgrid.models.FeatureForecaster.feature_group_effects`).
    """
    if days <= _RECENT_DAYS:
        return "incidents of the forecast types in the past two weeks"
    return ("incidents of the forecast types in the past weeks to months" if days < _YEAR_DAYS
            else "incidents of the forecast types in the past year and longer")


def _spread(values: np.ndarray, cmap) -> np.ndarray:
    """Apply a CSR cell map to an ``(..., n_cells)`` array."""
    shape = values.shape
    out = spread_cells(np.ascontiguousarray(values.reshape(-1, shape[-1])), *cmap)
    return out.reshape(shape)


def build_features(
    events: EventSet,
    cell: np.ndarray,
    grid: HexGrid,
    origins: np.ndarray,
    horizon_days: float,
    target_codes: np.ndarray,
    indicator_codes: np.ndarray,
    spec: FeatureSpec,
    data_start: float,
    covariates: np.ndarray | None = None,
    covariate_names: tuple = (),
    cache: dict | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Features ``(n_origins, n_cells, n_features)`` at ``origins`` (days, ascending), their names and families.

    A feature's family (what a zone's explanation names) is recorded where the
    column is made: the target features by the time scale they look at
    (:func:`target_family`), every column of one indicator category together
    (``"<label> incidents"``), ``"calendar"``, ``"cell area"`` and
    ``"covariates"``.

    Only events with ``t < origin`` enter a row (the kernels cut at the
    origin). ``data_start`` (days) is where the observed history begins: a
    look-back window reaching before it is divided by its observed length.
    ``cache`` (a dict kept by the caller, one per event set) holds grid maps
    and the target events' point-KDE pairs between calls.
    """
    origins = np.ascontiguousarray(origins, dtype=np.float64)
    n_cells = len(grid)
    cache = {} if cache is None else cache
    cols: list[np.ndarray] = []
    names: list[str] = []
    families: list[str] = []

    def add(block: np.ndarray, name: str, family: str):
        cols.append(block)
        names.append(name)
        families.append(family)

    def cmap(key, make):
        if key not in cache:
            cache[key] = make()
        return cache[key]

    is_target = np.isin(events.codes, target_codes)
    tgt = CellEvents(events.t[is_target], cell[is_target], events.weight[is_target], n_cells)

    def span(w):  # observed length of each origin's window (days), (n_origins, 1)
        return np.maximum(np.minimum(w, origins - data_start), 1.0)[:, None]

    win = tgt.windows(origins, spec.windows_days)
    for i, w in enumerate(spec.windows_days):
        add(win[i] / span(w), f"target_cnt_{_label(w)}d_r0", target_family(w))
    rw = tgt.windows(origins, spec.ring_windows_days)
    for k in range(1, spec.rings + 1):
        spread = _spread(rw, cmap(("ring", k), lambda k=k: ring_map(grid, k)))
        for i, w in enumerate(spec.ring_windows_days):
            add(spread[i] / span(w), f"target_cnt_{_label(w)}d_r{k}", target_family(w))
    if spec.decay_days:
        dec = tgt.decayed(origins, spec.decay_days)
        ring1 = _spread(dec, cmap(("ring", 1), lambda: ring_map(grid, 1)))
        for i, tau in enumerate(spec.decay_days):
            add(dec[i], f"target_dec_{tau:g}d", target_family(tau))
            add(dec[i] + ring1[i], f"target_dec_{tau:g}d_r1", target_family(tau))
    bandwidths = spec.kde_bandwidths_m or tuple(round(f * cell_spacing_m(grid)) for f in (0.75, 1.5, 3.0))
    if bandwidths and spec.kde_windows_days:
        kw = tgt.windows(origins, spec.kde_windows_days)
        for h in bandwidths:
            sm = _spread(kw, cmap(("kde", float(h)), lambda h=h: gaussian_cell_map(grid, h)))
            for i, w in enumerate(spec.kde_windows_days):
                add(sm[i] / span(w), f"target_kde_{h:g}m_{_label(w)}d", target_family(w))
    pbw = spec.point_kde_bandwidths_m or tuple(round(f * cell_spacing_m(grid)) for f in (0.5, 1.0))
    if pbw and spec.point_kde_windows_days:
        # pairs of the target events only (the indicators have no point KDE): indices into the target events
        tgt_idx = np.flatnonzero(is_target)
        key = tuple(int(c) for c in np.sort(target_codes))
        xy = cmap(("target_xy", key), lambda: tuple(v[tgt_idx] for v in events.xy(grid.projection)))
        for h in pbw:
            pairs = cmap(("pkde", float(h), key), lambda h=h: point_kde_pairs(xy, cell[tgt_idx], grid, float(h)))
            e = tgt_idx[pairs[0]]
            pk = CellEvents(events.t[e], pairs[1], events.weight[e] * pairs[2], n_cells)
            pw = pk.windows(origins, spec.point_kde_windows_days)
            for i, w in enumerate(spec.point_kde_windows_days):
                add(pw[i] / span(w), f"target_pkde_{h:g}m_{_label(w)}d", target_family(w))
    if spec.shrunk_windows_days:
        smoother = cmap("smoother", lambda: _Smoother(grid, n_cells))
        sw = tgt.windows(origins, spec.shrunk_windows_days)
        for i, w in enumerate(spec.shrunk_windows_days):
            shrunk = np.stack([smoother.shrink(sw[i, o][:, None])[:, 0] for o in range(origins.size)])
            add(shrunk / span(w), f"target_eb_{_label(w)}d", target_family(w))
    ring1_map = cmap(("ring", 1), lambda: ring_map(grid, 1))
    for code in indicator_codes if spec.indicator_windows_days else ():
        sel = events.codes == code
        ind = CellEvents(events.t[sel], cell[sel], events.weight[sel], n_cells)
        iw = ind.windows(origins, spec.indicator_windows_days)
        r1 = _spread(iw, ring1_map)
        label = events.categories[int(code)]
        for i, w in enumerate(spec.indicator_windows_days):
            add(iw[i] / span(w), f"{label}_cnt_{_label(w)}d_r0", f"{label} incidents")
            add((iw[i] + r1[i]) / span(w), f"{label}_cnt_{_label(w)}d_r1", f"{label} incidents")
    if spec.calendar:
        mid = EventSet.origin + pd.to_timedelta(origins + horizon_days / 2.0, unit="D")
        doy = (mid.day_of_year.to_numpy() - 1 + mid.hour.to_numpy() / 24.0) / 365.25
        dow = (mid.day_of_week.to_numpy() + mid.hour.to_numpy() / 24.0) / 7.0
        for nm, v in (("doy_sin", np.sin(2 * np.pi * doy)), ("doy_cos", np.cos(2 * np.pi * doy)),
                      ("dow_sin", np.sin(2 * np.pi * dow)), ("dow_cos", np.cos(2 * np.pi * dow))):
            add(np.repeat(v[:, None], n_cells, axis=1), nm, "calendar")
    add(np.broadcast_to(np.log(grid.area_m2 / 1e6), (origins.size, n_cells)), "log_area_km2", "cell area")
    if covariates is not None:
        for j, nm in enumerate(covariate_names):
            add(np.broadcast_to(covariates[:, j], (origins.size, n_cells)), f"cov_{nm}", "covariates")
    return np.stack(cols, axis=-1), names, families


def panel_labels(events: EventSet, cell: np.ndarray, n_cells: int, origins: np.ndarray, horizon_days: float,
                 target_codes: np.ndarray) -> np.ndarray:
    """Target counts per (origin, cell) in ``[origin, origin + horizon_days)``."""
    is_target = np.isin(events.codes, target_codes)
    tgt = CellEvents(events.t[is_target], cell[is_target], events.weight[is_target], n_cells)
    return tgt.future(np.ascontiguousarray(origins, dtype=np.float64), horizon_days)
