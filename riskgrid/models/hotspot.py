"""Baseline hotspot models (the maps analysts already use).

* :class:`CountHotspot` - past counts per cell.
* :class:`KDEHotspot` - retrospective kernel density at the cell centres.
* :class:`ProspectiveHotspot` - Bowers, Johnson & Pease (2004) prospective
  weight sum over H3 rings and whole weeks.

All three return **expected events per cell** in the forecast window, so the
held-out Poisson likelihood of a backtest can compare them with the
self-exciting models. None of them needs (or implements) warm starts: their
fits are single passes over the events.
"""

from __future__ import annotations


import numpy as np

from ..kernels.hotspot import (
    KERNEL_GAUSSIAN,
    KERNEL_QUARTIC,
    cell_week_scores,
    kde_density,
    ring_weighted_sum,
)
from ._base import RiskModel, check_int, check_number

__all__ = ["CountHotspot", "KDEHotspot", "ProspectiveHotspot"]

_KERNELS = {"gaussian": KERNEL_GAUSSIAN, "quartic": KERNEL_QUARTIC}
#: Gaussian kernels are truncated at this many bandwidths (mass beyond: exp(-8) = 0.03 %).
GAUSSIAN_CUTOFF_BANDWIDTHS = 4.0
#: memory guard for the KDE hash grid (number of square bins)
_MAX_BINS = 4_000_000


class CountHotspot(RiskModel):
    """Past counts per cell: the "naive" hotspot map.

    The forecast for a cell is its count in the last ``window_days`` days
    before the end of the fit window, scaled to a rate (events/day) and
    multiplied by the horizon: expected events in ``[start, start + horizon)``.

    Parameters
    ----------
    window_days : float or None
        Length of the look-back window in days (``None``: all training data).
    """

    model_name = "CountHotspot"

    def __init__(self, window_days: float | None = 365.0):
        self.window_days = window_days

    def _fit(self, events, grid, cell, end_days):
        use, self.window_used_days_ = _training_window(self.window_days, events, cell, end_days)
        self.counts_ = np.bincount(cell[use], weights=events.weight[use], minlength=len(grid)).astype(float)
        self.rate_ = self.counts_ / self.window_used_days_  # events/day per cell

    def _predict(self, start_days, horizon_days):
        return self.rate_ * horizon_days

    def _explain_parts(self, s, H, cells):
        """All background: each window event counts ``weight / window_days * H`` in its own cell."""
        ev = self.training_events_
        cell = self.grid_.assign(ev)
        use, span = _training_window(self.window_days, ev, cell, self.fit_end_)
        return _explain_own_cell(cells, cell, use, ev.weight / span * H, "background")


def _explain_own_cell(cells, cell, use, value, part):
    """Parts where each used event contributes ``value`` to its own cell only."""
    from .explain import concat_parts

    rows, total = [], np.zeros(cells.size)
    for j, c in enumerate(cells):
        idx = np.flatnonzero(use & (cell == c))
        total[j] = float(value[idx].sum())
        rows.append((j, idx, value[idx], part))
    zero = np.zeros(cells.size)
    return concat_parts(total, zero, rows) if part == "background" else concat_parts(zero, total, rows)


def _training_window(window_days, events, cell, end_days):
    """Events in the grid and in ``[end - window_days, end)`` (all when ``None``) and the window's length in days."""
    check_number("window_days", window_days, allow_none=True, unit="days")
    if window_days is None:
        use, span = cell >= 0, end_days - float(events.t[0])
    else:
        use, span = (cell >= 0) & (events.t >= end_days - float(window_days)), float(window_days)
    return use, max(span, 1e-9)


class KDEHotspot(RiskModel):
    """Retrospective kernel density estimate evaluated at the cell centres.

    The events of the last ``window_days`` days before the end of the fit
    window (in the grid) are smoothed with a fixed-bandwidth 2-D kernel; the
    density at each cell centre (events/m²) times the cell's area (m²) divided
    by the window length gives a rate in events/day per cell, multiplied by
    the horizon for the expected count in ``[start, start + horizon_days)``.
    The forecast does not depend on ``start`` (a retrospective map).

    Mass that the kernels put outside the grid is lost, so the map sums to a
    little less than the window's event rate near the edges of the study area.

    Parameters
    ----------
    bandwidth_m : float
        Kernel bandwidth in metres: the Gaussian's standard deviation, or the
        quartic kernel's radius of support.
    window_days : float or None
        Look-back window in days (``None``: all training data).
    kernel : {"gaussian", "quartic"}
        ``"gaussian"``: ``exp(-r²/2h²)/(2πh²)`` truncated at
        :data:`GAUSSIAN_CUTOFF_BANDWIDTHS` ``* h``; ``"quartic"`` (biweight):
        ``3/(πh²)(1 - r²/h²)²`` for ``r < h``.

    Attributes
    ----------
    density_ : ndarray (n_cells,)
        Weighted kernel density at the cell centres, events per m² over the window.
    rate_ : ndarray (n_cells,)
        Expected events per day per cell.

    References
    ----------
    Chainey, S., Tompson, L. & Uhlig, S. (2008). The utility of hotspot
    mapping for predicting spatial patterns of crime. *Security Journal* 21.

    Examples
    --------
    >>> m = KDEHotspot(bandwidth_m=200, window_days=365).fit(events, grid, end="2017-06-01")  # doctest: +SKIP
    >>> risk = m.predict("2017-06-01", horizon_days=7)  # doctest: +SKIP
    """

    model_name = "KDEHotspot"

    def __init__(self, bandwidth_m: float = 200.0, window_days: float | None = 365.0, kernel: str = "gaussian"):
        self.bandwidth_m = bandwidth_m
        self.window_days = window_days
        self.kernel = kernel

    def _fit(self, events, grid, cell, end_days):
        check_number("bandwidth_m", self.bandwidth_m, unit="metres")
        if self.kernel not in _KERNELS:
            raise ValueError(f"kernel must be one of {sorted(_KERNELS)}, got {self.kernel!r}")
        self.kernel_code_ = _KERNELS[self.kernel]
        h = float(self.bandwidth_m)
        self.cutoff_m_ = h * GAUSSIAN_CUTOFF_BANDWIDTHS if self.kernel == "gaussian" else h
        use, self.window_used_days_ = _training_window(self.window_days, events, cell, end_days)
        x, y = events.xy(grid.projection)
        qx, qy = grid.centroids_xy
        self.density_ = kde_density(
            np.ascontiguousarray(x[use]),
            np.ascontiguousarray(y[use]),
            np.ascontiguousarray(events.weight[use]),
            np.ascontiguousarray(qx, dtype=np.float64),
            np.ascontiguousarray(qy, dtype=np.float64),
            h,
            self.kernel_code_,
            float(self.cutoff_m_),
            _MAX_BINS,
        )
        self.n_window_events_ = int(use.sum())
        self.rate_ = self.density_ * grid.area_m2 / self.window_used_days_

    def _predict(self, start_days, horizon_days):
        return self.rate_ * horizon_days

    def _explain_parts(self, s, H, cells):
        """All background: each window event's kernel mass at the cell centre x area / window_days x H."""
        from .explain import concat_parts

        ev, grid = self.training_events_, self.grid_
        cell = grid.assign(ev)
        use, span = _training_window(self.window_days, ev, cell, self.fit_end_)
        idx = np.flatnonzero(use)
        x, y = ev.xy(grid.projection)
        qx, qy = grid.centroids_xy
        h, area = float(self.bandwidth_m), grid.area_m2
        total, rows = np.zeros(cells.size), []
        for j, c in enumerate(cells):
            r2 = (x[idx] - qx[c]) ** 2 + (y[idx] - qy[c]) ** 2
            if self.kernel == "gaussian":
                k = np.exp(-0.5 * r2 / (h * h)) / (2.0 * np.pi * h * h)
            else:
                u = r2 / (h * h)
                k = np.where(u < 1.0, 3.0 / (np.pi * h * h) * (1.0 - u) ** 2, 0.0)
            k = np.where(r2 <= self.cutoff_m_ ** 2, k, 0.0)
            val = ev.weight[idx] * k * area[c] / span * H
            total[j] = float(val.sum())
            rows.append((j, idx, val, "background"))
        return concat_parts(total, np.zeros(cells.size), rows)


class ProspectiveHotspot(RiskModel):
    """Prospective hotspotting (Bowers, Johnson & Pease 2004) on H3 rings.

    The score of cell ``c`` for a forecast starting at ``start`` is

    .. math:: w_c = \\sum_i \\frac{1}{1 + d_i} \\cdot \\frac{1}{1 + t_i}

    over the training events ``i`` with ``d_i <= bandwidth_rings`` and
    ``t_i < window_weeks``, where ``d_i`` is the H3 grid distance (rings)
    between ``c`` and the event's cell and ``t_i = floor((start - time_i) / 7)``
    the number of **whole weeks** elapsed before ``start`` (computed at predict
    time, so a model fitted once ranks later starts correctly). Event weights
    multiply the terms.

    Scores are not counts; to give expected events the map is rescaled to sum
    to the recent event rate times the horizon: ``risk_c = w_c / sum(w) *
    N_recent / (7 * window_weeks) * horizon_days``, with ``N_recent`` the
    weighted number of in-grid training events in the ``window_weeks`` weeks
    before the end of the fit window. (A uniform tiny floor is not added; cells
    with no recent event nearby have risk 0.)

    Parameters
    ----------
    bandwidth_rings : int
        Largest H3 grid distance (rings) an event reaches (0 = own cell only).
        At resolution 9 one ring is about 350 m between centres, so the
        literature's 400 m corresponds to 1 ring.
    window_weeks : int
        Events at least this many whole weeks old are ignored (Bowers et al.:
        risk elevated for up to about two months, i.e. 8 weeks).
    distance : {"rings"}
        How ``d`` is measured; only H3 rings for now (validated at fit).

    References
    ----------
    Bowers, K. J., Johnson, S. D. & Pease, K. (2004). Prospective hot-spotting:
    the future of crime mapping? *British Journal of Criminology* 44(5), 641-658.
    The weight follows open_cp's reconstruction (``open_cp/prohotspot.py``).
    """

    model_name = "ProspectiveHotspot"

    def __init__(self, bandwidth_rings: int = 1, window_weeks: int = 8, distance: str = "rings"):
        self.bandwidth_rings = bandwidth_rings
        self.window_weeks = window_weeks
        self.distance = distance

    def _fit(self, events, grid, cell, end_days):
        k = check_int("bandwidth_rings", self.bandwidth_rings, 0, unit="H3 rings")
        w = check_int("window_weeks", self.window_weeks, 1, unit="weeks")
        if self.distance != "rings":
            raise ValueError(f"distance must be 'rings' (H3 grid distance), got {self.distance!r}")
        self.neighbours_ = grid.neighbours(int(k))
        # events older than the window at the end of the fit are older still at any later start
        keep = (cell >= 0) & (events.t >= end_days - 7.0 * int(w))
        self.event_t_ = np.ascontiguousarray(events.t[keep])
        self.event_cell_ = np.ascontiguousarray(cell[keep], dtype=np.int64)
        self.event_weight_ = np.ascontiguousarray(events.weight[keep])
        self.recent_rate_ = float(self.event_weight_.sum()) / (7.0 * int(w))  # events/day

    def scores(self, start) -> np.ndarray:
        """Raw prospective weights ``w_c`` (dimensionless) for a forecast starting at ``start``."""
        return self._scores(self._start_days(start))

    def _scores(self, start_days: float) -> np.ndarray:
        age = np.floor((start_days - self.event_t_) / 7.0).astype(np.int64)
        s = cell_week_scores(self.event_cell_, age, self.event_weight_, len(self.grid_), int(self.window_weeks))
        indptr, indices, ring = self.neighbours_
        return ring_weighted_sum(s, indptr, indices, ring, int(self.bandwidth_rings))

    def _predict(self, start_days, horizon_days):
        w = self._scores(start_days)
        total = w.sum()
        if total <= 0:
            return np.zeros_like(w)
        return w / total * self.recent_rate_ * horizon_days

    def _explain_parts(self, s, H, cells):
        """All recent (triggered): each event's ``weight / (1 + rings) / (1 + weeks)``, rescaled like predict."""
        from .explain import concat_parts

        ev, grid = self.training_events_, self.grid_
        cell = grid.assign(ev)
        w = int(self.window_weeks)
        idx = np.flatnonzero((cell >= 0) & (ev.t >= self.fit_end_ - 7.0 * w))
        age = np.floor((s - ev.t[idx]) / 7.0).astype(np.int64)
        live = (age >= 0) & (age < w)
        idx, age = idx[live], age[live]
        total_score = float(self._scores(s).sum())
        scale = self.recent_rate_ * H / total_score if total_score > 0 else 0.0
        indptr, indices, ring = self.neighbours_
        total, rows = np.zeros(cells.size), []
        for j, c in enumerate(cells):
            d = np.full(len(grid), -1, dtype=np.int64)
            d[indices[indptr[c]:indptr[c + 1]]] = ring[indptr[c]:indptr[c + 1]]
            dist = d[cell[idx]]
            near = dist >= 0
            val = ev.weight[idx[near]] / (1.0 + dist[near]) / (1.0 + age[near]) * scale
            total[j] = float(val.sum())
            rows.append((j, idx[near], val, "triggered"))
        return concat_parts(np.zeros(cells.size), total, rows)
