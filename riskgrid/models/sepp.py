"""Continuous space-time self-exciting point process (Mohler et al. 2011), fitted by EM.

The conditional intensity (events / day / m²) is

    lambda(x, y, t) = mu(x, y) + sum_{t_i < t} g(x - x_i, y - y_i, t - t_i)

with a background ``mu`` that is a weighted Gaussian kernel density estimate of
the events (weights: their background probabilities), normalised over the
study area, and a triggering kernel ``g`` that is either

* ``"exp-gauss"``: ``theta * omega * exp(-omega dt) * N2(0, sigma²)(dx, dy)``
  (closed-form M-step, with the Lewis & Mohler edge correction in time), or
* ``"histogram"``: piecewise constant in time-lag bins and distance rings
  (model-independent stochastic declustering, Marsan & Lengliné 2008).

Scaling to 10^6 events: the trigger is truncated at ``max_days`` and
``max_distance_m``; candidate parents are found once per truncation with a
spatial hash and stored as CSR arrays of time lags and squared distances
(float32: 8 bytes per pair, 12 with event weights; the histogram trigger's
bins of each pair computed once per truncation); every E-step is a parallel
pass over those pairs, and EM is accelerated by SQUAREM from start values
estimated on close pairs (:func:`start_values`); the
background KDE (Gaussian cut at 4 bandwidths) is evaluated either exactly with
a spatial hash (O(N × neighbours)) or binned on a raster (O(N + pixels)),
whichever is cheaper, and its normalising constant is O(N) per iteration.

References
----------
Mohler, Short, Brantingham, Schoenberg & Tita (2011). Self-exciting point
process modeling of crime. JASA 106(493), 100-108.
Marsan & Lengliné (2008). Extending earthquakes' reach through cascading.
Science 319, 1076-1079.
Lewis & Mohler (2011). A nonparametric EM algorithm for multiscale Hawkes
processes. Journal of Nonparametric Statistics.
Wand (1994). Fast computation of multivariate kernel estimators. JCGS 3(4).

Why one long module (~1,200 lines): one estimator with two triggering kernels
(parametric and histogram), their EM steps, the staged truncation and the
seasonal background share the candidate pairs and state of one fit; the
Numba work lives in :mod:`riskgrid.kernels.sepp`, the forward simulation and
the start values in :mod:`riskgrid.models._sepp_sim` (names re-exported here). Moving the background KDE
into the shared KDE kernel is planned.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
from h3.api import numpy_int as h3i

from .._runtime import threads_for_work as _threads
from ..errors import ConvergenceWarning
from ..events import EventSet
from ..kernels import sepp as K
from ..kernels.spatial import build_hash_grid
from ..bands import check_band_edges
from ..seasonal import DAY_NAMES, MONTH_NAMES, Calendar, check_seasonality, seasonal_factor
from ._base import THETA_COLLAPSED, RiskModel, check_int, check_number
from ._sepp_sim import SEPPSimulation, _mixture_profile, start_values  # noqa: F401 (public names kept here)

__all__ = ["SEPP"]

log = logging.getLogger(__name__)

_TRIGGERS = ("exp-gauss", "histogram")
_BACKGROUNDS = ("kde",)
#: initial truncation when max_days / max_distance_m are None (days, metres)
_INIT_MAX_DAYS = 30.0
_INIT_MAX_DISTANCE_M = 500.0
#: truncation derived from the fitted scale: n_days_scale / omega and n_sigma * sigma
_DAYS_SCALE = 10.0
_SIGMA_SCALE = 5.0
#: bounds of a derived truncation (days, metres): near-repeat triggering lives within weeks and a few
#: hundred metres; a wider window lets the trigger absorb slow background variation (a fitted delay of
#: years on block-level data)
_MAX_DERIVED_DAYS = 60.0
_MAX_DERIVED_DISTANCE_M = 2000.0
#: largest acceptable truncated trigger mass
_MASS_TOL = 1e-3
#: raster step of the binned KDE is bandwidth / _KDE_OVERSAMPLE (at most _KDE_MAX_PIXELS pixels)
_KDE_OVERSAMPLE = 4.0
_KDE_MAX_PIXELS = 1 << 23
_KDE_TRUNCATE = 4.0  # Gaussian kernel cut at 4 bandwidths
#: refuse to allocate more than this for candidate pairs
_MAX_PAIR_BYTES = 6e9
#: storage of the pairs' lags and squared distances in fits: float32 (8 bytes per pair). Rounding to a
#: relative 2^-24 (6e-8) changes each trigger value exp(-omega dt - r2 / 2 sigma²) by at most
#: (omega dt + r2 / 2 sigma²) * 6e-8 (below 1e-6 inside the derived truncation, where omega dt <= 10 and
#: r2 / 2 sigma² <= 12.5), and the fitted parameters by the same order (tests: 1e-5 relative)
_PAIR_DTYPE = np.float32
_N_FOLDS = 5
#: parameters must also move by less than this factor times tol (relative) per iteration
_PARAM_TOL_FACTOR = 100.0


def _n_chunks(n: int) -> int:
    return int(max(1, min(n, 1024)))


# --------------------------------------------------------------------------- #
# helpers shared by fit / predict / score
# --------------------------------------------------------------------------- #
class _Hash:
    """Spatial hash of points in buckets of side >= ``cell_m`` metres."""

    def __init__(self, x, y, cell_m):
        span = max(float(np.ptp(x)), float(np.ptp(y)), 1.0)
        cell = float(cell_m) if np.isfinite(cell_m) else span * 1.01  # no truncation: one bucket
        # at most ~4M buckets (larger buckets stay exact, only slower)
        self.order, self.start, self.x0, self.y0, self.cell, self.nx, self.ny = build_hash_grid(x, y, cell, 1 << 22)

    def args(self):
        return self.order, self.start, self.x0, self.y0, self.cell, self.nx, self.ny


def candidate_pairs(t, x, y, max_days, max_distance_m, j_first=0, parents=False, dtype=np.float64):
    """CSR candidate parents ``(indptr, dt, r2)`` of events ``j >= j_first`` (see the kernel); with
    ``parents`` also the parent index of every pair (int32), for weighted fits. ``dtype``: storage of
    ``dt`` and ``r2`` (the fit uses float32, :data:`_PAIR_DTYPE`)."""
    h = _Hash(x, y, max_distance_m)
    per_pair = 2 * np.dtype(dtype).itemsize + (4 if parents else 0)
    max_pairs = int(_MAX_PAIR_BYTES // per_pair)
    order, start, _, _, _, nx, ny = h.args()
    args = (t, x, y, order, start, nx, ny, float(max_days), float(max_distance_m) ** 2, int(j_first))
    with _threads(30.0 * t.size):
        indptr = K.candidate_counts(*args)
        if indptr[-1] <= max_pairs:  # allocated here: NumPy backs large arrays with huge pages (fewer page faults)
            m = int(indptr[-1])
            dt, r2 = np.empty(m, dtype=dtype), np.empty(m, dtype=dtype)
            par = np.empty(m if parents else 0, dtype=np.int32)
            K.candidate_fill(*args, indptr, dt, r2, par)
    if indptr[-1] > max_pairs:
        # a parameter problem (the truncation is too wide for the data), not a machine problem
        raise ValueError(
            f"{int(indptr[-1]):,} candidate parent pairs (max_days={max_days:g}, "
            f"max_distance_m={max_distance_m:g}) would need {indptr[-1] * per_pair / 1e9:.1f} GB "
            f"(limit {_MAX_PAIR_BYTES / 1e9:g} GB); pass smaller max_days / max_distance_m"
        )
    return (indptr, dt, r2, par) if parents else (indptr, dt, r2)


class _Raster:
    """Square raster for the binned Gaussian KDE of bandwidth ``h`` (metres).

    Linear binning, separable convolution with a Gaussian of variance
    ``h² - step²/3`` (linear binning and bilinear interpolation each add about
    ``step²/6`` of variance per axis; removing it keeps the effective
    bandwidth at ``h``) and bilinear interpolation (Wand 1994).
    """

    def __init__(self, x, y, h, oversample=_KDE_OVERSAMPLE):
        self.h = float(h)
        margin = _KDE_TRUNCATE * h
        lo_x, hi_x = float(x.min()) - margin, float(x.max()) + margin
        lo_y, hi_y = float(y.min()) - margin, float(y.max()) + margin
        step = h / oversample
        npix = ((hi_x - lo_x) / step + 2) * ((hi_y - lo_y) / step + 2)
        if npix > _KDE_MAX_PIXELS:
            step *= math.sqrt(npix / _KDE_MAX_PIXELS)
            log.info("KDE raster step raised to %.1f m (bandwidth %.1f m) to stay under %d pixels", step, h, _KDE_MAX_PIXELS)
        self.step = step
        self.x0, self.y0 = lo_x - step, lo_y - step
        self.nx = int(math.ceil((hi_x - self.x0) / step)) + 2
        self.ny = int(math.ceil((hi_y - self.y0) / step)) + 2
        s2 = max(h * h - step * step / 3.0, 0.25 * h * h)
        s = math.sqrt(s2)
        m = int(math.ceil(_KDE_TRUNCATE * h / step))
        u = np.arange(-m, m + 1) * step
        self.taps = np.exp(-0.5 * u * u / s2) / (math.sqrt(2 * math.pi) * s)

    def density(self, x, y, w):
        """Raster of ``sum_i w_i * N2(0, h²)(p - (x_i, y_i))`` (weight per m²)."""
        grid = K.bin_linear(x, y, w, self.x0, self.y0, self.step, self.nx, self.ny)
        return K.convolve_separable(grid, self.taps)

    def at(self, raster, px, py):
        return K.interp_bilinear(raster, self.x0, self.y0, self.step, px, py)


class _KDE:
    """Gaussian KDE ``sum_i w_i N2(0, h²)(p - s_i)`` truncated at 4 h, from fixed sources ``s``.

    Evaluated either exactly (spatial hash over sources, O(points × sources
    within 4 h)) or on a :class:`_Raster` (O(sources + pixels × taps)),
    whichever the cost estimate says is cheaper; both give the same values up
    to the raster's discretisation (about 1e-3 relative).
    """

    def __init__(self, sx, sy, h, n_eval, oversample=_KDE_OVERSAMPLE):
        self.sx, self.sy, self.h = sx, sy, float(h)
        self.raster_grid = _Raster(sx, sy, h, oversample)
        r = self.raster_grid
        area = max((float(sx.max()) - float(sx.min())) * (float(sy.max()) - float(sy.min())), (2 * h) ** 2)
        # rough costs in raster multiply-adds (measured: one scanned source ≈ 40 of them)
        cost_exact = 40.0 * n_eval * (1.0 + sx.size * 9.0 * (_KDE_TRUNCATE * h) ** 2 / area)
        cost_raster = 2.0 * r.nx * r.ny * r.taps.size + 10.0 * (n_eval + sx.size)
        self.exact = cost_exact < cost_raster
        self.cost = min(cost_exact, cost_raster)
        if self.exact:
            self.hash = _Hash(sx, sy, _KDE_TRUNCATE * h)
        self.w = None
        self.raster = None

    def set_weights(self, w):
        """Use source weights ``w`` for the following :meth:`at` calls."""
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        if not self.exact:
            self.raster = self.raster_grid.density(self.sx, self.sy, self.w)
        return self

    def at(self, px, py):
        """KDE value at points (weight per m²); 0 beyond 4 h of every source."""
        px = np.ascontiguousarray(px, dtype=np.float64)
        py = np.ascontiguousarray(py, dtype=np.float64)
        if self.exact:
            return K.trigger_at_points(
                px, py, self.sx, self.sy, self.w, *self.hash.args(), (_KDE_TRUNCATE * self.h) ** 2,
                self.h, np.zeros(2), np.zeros(1), True,
            )
        return self.raster_grid.at(self.raster, px, py)


def _in_area_mass(x, y, h, samples, oversample=_KDE_OVERSAMPLE):
    """Mass of each event's Gaussian kernel (sd ``h`` m, cut at 4 h) inside the study area.

    ``M_i = sum_p w_p N2(0, h²)(p - (x_i, y_i))`` over the cell sample points
    ``p`` (quadrature weights ``w_p`` in m²): the transpose of the KDE, so the
    normalising constant of a weighted KDE is ``sum_i weight_i M_i`` at O(N)
    per EM iteration.
    """
    px, py, pw, _ = samples
    kde = _KDE(px, py, h, n_eval=x.size, oversample=oversample)
    with _threads(kde.cost):
        return kde.set_weights(pw).at(x, y)


def cell_samples(grid, cache: dict | None = None):
    """Sample points of every grid cell: the centroids of its children two H3 resolutions finer.

    Returns ``(px, py, weight_m2, cell_index)``: every cell's children (49 at
    resolution + 2; fewer levels when the grid is finer than 13) each carry
    ``area / n_children`` m², so ``sum weight * f(p)`` approximates the
    integral of ``f`` over the cell (midpoint rule on a 49-point hexagonal
    lattice). ``cache``: a dict kept by the caller (a SEPP instance keeps one
    per grid, so backtests that refit on the same grid sample it once); no
    module-level state.
    """
    if cache is not None and cache.get("grid") is grid:
        return cache["samples"]
    res = min(grid.resolution + 2, 15)
    lats, lons, ws, idx = [], [], [], []
    areas = grid.area_m2
    for c, cell in enumerate(grid.cells):
        ch = h3i.cell_to_children(int(cell), res) if res > grid.resolution else np.array([cell], dtype=np.uint64)
        ll = np.array([h3i.cell_to_latlng(int(k)) for k in ch])
        lats.append(ll[:, 0])
        lons.append(ll[:, 1])
        ws.append(np.full(len(ch), areas[c] / len(ch)))
        idx.append(np.full(len(ch), c, dtype=np.int64))
    px, py = grid.projection.forward(np.concatenate(lats), np.concatenate(lons))
    out = (np.ascontiguousarray(px), np.ascontiguousarray(py), np.concatenate(ws), np.concatenate(idx))
    for a in out:
        a.flags.writeable = False
    if cache is not None:  # grids are immutable; backtests refit on the same grid
        cache["grid"], cache["samples"] = grid, out
    return out


def _time_exposure(tau, edges, wt=None):
    """``E[b] = sum_i wt_i |[e_b, e_{b+1}) ∩ [0, tau_i]|`` in days (histogram edge correction)."""
    lo, width = edges[:-1], np.diff(edges)
    out = np.empty(lo.size)
    for b in range(lo.size):
        v = np.clip(tau - lo[b], 0.0, width[b])
        out[b] = v.sum() if wt is None else float(np.dot(wt, v))
    return out


def _hist_cdf(rate_time, edges, u):
    """Integral of the piecewise-constant ``rate_time`` from 0 to ``u`` (vectorised)."""
    u = np.clip(u, 0.0, edges[-1])
    cum = np.concatenate([[0.0], np.cumsum(rate_time * np.diff(edges))])
    b = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, rate_time.size - 1)
    return cum[b] + rate_time[b] * (u - edges[b])


def _edge_sums(tau_asc, omega, w_asc=None, curvature=False):
    """``A = sum w (1 - exp(-omega tau))`` and ``B = sum w tau exp(-omega tau)`` over ``tau`` (ascending).

    ``w_asc``: event weights in the same order (``None``: all 1). Terms with
    ``omega tau > 60`` contribute ``w`` to ``A`` and nothing to ``B`` (below
    1e-26 each), so only the recent suffix of events is visited (Numba,
    :func:`riskgrid.kernels.sepp.edge_sums`; within 1e-15 relative of NumPy's
    ``expm1`` and ``exp``). With ``curvature`` also ``C = sum w tau²
    exp(-omega tau) = -B'(omega)``.
    """
    k = int(np.searchsorted(tau_asc, 60.0 / omega, side="right"))
    w = np.zeros(0) if w_asc is None else w_asc
    a, b, c = K.edge_sums(tau_asc, float(omega), w, k)
    A = (float(tau_asc.size - k) if w_asc is None else float(np.sum(w_asc[k:]))) + a
    return (A, b, c) if curvature else (A, b)


def _solve_omega(s0, s1, tau_asc, omega, w_asc=None):
    """Edge-corrected M-step for omega: root of ``h(w) = s0/w - s1 - s0 B(w)/A(w)`` (Lewis & Mohler 2011).

    ``A(w) = sum(1 - exp(-w tau))``, ``B(w) = sum(tau exp(-w tau)) = A'(w)``,
    ``C = -B'``. Newton steps from the current value (``h' = -s0/w² + s0 (C A
    + B²) / A²``), a fixed-point step ``w <- s0 / (s1 + s0 B/A)`` instead
    whenever Newton's is not a decreasing-slope step to a positive value;
    stops when the step is below 1e-12 relative (about 4 evaluations of the
    sums from an EM step's start, against 7 for the fixed point alone).
    Returns ``(omega, A(omega))``, ``A`` at the last step's end by its
    first-order expansion ``A + B * step`` (error of order step², below 1e-20 relative).
    """
    for _ in range(50):
        a, b, c = _edge_sums(tau_asc, omega, w_asc, curvature=True)
        fixed = s0 / (s1 + s0 * b / a)
        h = s0 / omega - s1 - s0 * b / a
        dh = -s0 / (omega * omega) + s0 * (c * a + b * b) / (a * a)
        new = omega - h / dh if dh < 0 else fixed
        if not (math.isfinite(new) and new > 0):
            new = fixed
        done = abs(new - omega) <= 1e-12 * omega
        step, omega = new - omega, new
        if done:
            return omega, a + b * step
    return omega, _edge_sums(tau_asc, omega, w_asc)[0]


def _check_edges(value, upper, name, unit):
    """Bin edges from an int (equal bins on [0, upper]) or an explicit increasing sequence from 0."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} must be >= 1 bins, got {value}")
        return np.linspace(0.0, upper, int(value) + 1)
    edges = check_band_edges(value, name, unit)  # numbers, non-negative, strictly increasing
    if edges[0] != 0 or not np.isfinite(edges[-1]):
        raise ValueError(f"{name} must be an int or finite edges ({unit}) starting at 0, got {edges.tolist()}")
    return edges


# --------------------------------------------------------------------------- #
class SEPP(SEPPSimulation, RiskModel):
    """Continuous space-time self-exciting point process (Mohler et al. 2011).

    ``lambda(x, y, t) = mu(x, y) + sum_{t_i < t} g(x - x_i, y - y_i, t - t_i)``
    in events / day / m², fitted by expectation-maximisation over candidate
    parent pairs (Numba, parallel over events; memory O(N × mean candidates)).

    Parameters
    ----------
    trigger : {"exp-gauss", "histogram"}
        ``"exp-gauss"``: ``g = theta * omega * exp(-omega dt) * N2(0, sigma²)``
        with closed-form M-steps: ``theta`` and ``omega`` with the Lewis &
        Mohler edge correction for the end of the window, ``sigma² = sum p r² /
        (2 sum p)``. ``"histogram"``: ``g = r(dt) * s(dist)``, ``r``
        piecewise constant on ``time_bins`` (events / day, integrating to the
        branching ratio, edge-corrected by the exposure of each bin) and ``s``
        piecewise constant on the distance rings ``distance_bins`` (per m²,
        integrating to 1 over the disk); Marsan & Lengliné (2008) stochastic
        declustering, started from an exp-gauss fit.
    background : {"kde"}
        ``mu(x, y) = (N_bg / T) * f(x, y)``: ``f`` a fixed-bandwidth Gaussian
        KDE of the events weighted by their background probabilities,
        normalised so that it integrates to 1 over the grid's cells (the
        integral is taken on each cell's resolution + 2 children centroids, so
        kernel mass falling outside the study area is not counted: boundary
        correction); ``N_bg`` the expected number of background events and
        ``T`` the fit window (days). The Gaussian is cut at 4 bandwidths and
        evaluated exactly through a spatial hash, or by linear binning on a
        raster of step ``bandwidth / 4`` (Wand 1994; about 1e-3 relative
        error), whichever costs less.
    bandwidth_m : float, optional
        KDE bandwidth (metres). ``None``: chosen at the start of the fit by
        5-fold cross-validation over contiguous time blocks (held-out
        log-density of the unweighted KDE; time blocks keep near-repeat
        siblings out of the validation fold) over ``h_scott × 2^k``
        (``k = -2..0``, extended while the best is at an end, ``-6 <= k <= 3``)
        then ``2^(±1/2)`` around the best; ``h_scott = sd × N^(-1/6)``.
    max_distance_m, max_days : float, optional
        Truncation of the trigger: parents farther than ``max_distance_m``
        metres or earlier than ``max_days`` days contribute nothing. ``None``:
        derived from the fitted scale, ``5 sigma`` and ``10 / omega``, bounded
        by 60 days and 2,000 m: EM starts at the truncation of the start values
        (``10 / omega``, ``5 sigma``, at most 30 days / 500 m) and the truncation
        follows the fitted scale (pairs rebuilt while it moves by more than
        2 %, at most 6 times) before the final convergence. The bounds keep
        the trigger a near-repeat effect: on block-level police data an
        unbounded window let it absorb slow background variation (NYC
        shootings: theta 0.90 with a mean delay of 3,310 days). A triggering
        that collapses (theta < 0.01, the threshold of GridHawkes) raises a
        :class:`~riskgrid.ConvergenceWarning`: on NYC shootings from 2013 the
        start values from close pairs point to hours and the fit ends at
        theta 0.0015 with a 53-minute mean delay (2006-2017: theta 0.027, 15.5
        days, sigma 50 m).
        After the fit, the truncated mass ``exp(-omega max_days) +
        exp(-max_d² / 2 sigma²)`` is checked and a
        :class:`~riskgrid.ConvergenceWarning` is raised above 1e-3. For the
        histogram trigger they are the outer bin edges.
    seasonality : {None, "day_of_week", "month", "day_of_week+month"}
        Multiplies the background by calendar factors:
        ``mu(x, y, t) = (N_bg / T) f(x, y) F[day_of_week(t), month(t)]`` with
        ``F = a[day] × b[month]`` normalised to mean 1 over the fit window (so
        ``background_rate_`` stays the mean background events/day). The
        factors are fitted in the same M-step as the KDE, from the background
        probabilities (closed form; iterative proportional fitting when both).
        Phases use the data's wall clock (local midnights for time-zone-aware
        data, see :mod:`riskgrid.seasonal`). ``"day_of_week"`` needs a fit
        window of at least 7 days and ``"month"`` one touching all 12 months.
        Matters most for short horizons (the nightly 1-day forecast); over a
        whole week the day-of-week factors average out.
    max_iter : int
        Maximum number of EM iterations (per truncation stage).
    tol : float
        Convergence when, between two iterations, the log-likelihood changes
        by less than ``tol`` relative and the parameters (theta, omega, sigma
        and the expected number of background events) by less than
        ``100 * tol`` relative.
    time_bins : int or sequence of float
        Histogram trigger only: number of equal time-lag bins on
        ``[0, max_days]`` or explicit edges in days starting at 0.
    distance_bins : int or sequence of float
        Histogram trigger only: number of equal-width distance rings on
        ``[0, max_distance_m]`` or explicit edges in metres starting at 0.
    min_sigma_m : float, default 50
        Exp-gauss: lower bound of sigma (metres). Police data place many
        events on the same block-level point, and the Gaussian likelihood is
        unbounded as sigma -> 0 when pairs share coordinates; the bound stands
        for the location precision (block-level: tens of metres).
    warm_start : bool, default False
        Start EM from the previous fit of this instance (walk-forward
        backtests refit one live instance per origin): its theta, omega, sigma
        and truncation, and its background probabilities for the events the
        two windows share, instead of the start values from close pairs and
        the staged truncation from 30 days / 500 m. The exp-gauss EM then
        converges to the cold fit's fixed point within the EM tolerance where
        there is one (tested); where the likelihood has several optima (NYC
        shootings: a second one at theta 0.05-0.07 with an 11-18 day delay) a
        warm chain can stay in the one it is in. Used only when the settings
        and the grid size are the same (``warm_start_used_``).

    Attributes
    ----------
    theta_ : float
        Branching ratio (mean number of direct offspring per event).
    omega_ : float
        Exp-gauss: decay rate per day (mean delay ``1 / omega_`` days).
    sigma_m_ : float
        Exp-gauss: sd of the offspring displacement per axis, metres.
    trigger_time_edges_, trigger_time_profile_ : ndarray
        Histogram: bin edges (days) and ``theta × delay density`` (per day).
    trigger_distance_edges_, trigger_distance_profile_ : ndarray
        Histogram: ring edges (metres) and the displacement density (per m²).
    bandwidth_m_ : float
        KDE bandwidth used (metres).
    background_rate_ : float
        Expected background events per day over the study area.
    background_probability_ : ndarray
        Per event of the fitted EventSet: probability of being a background
        event (declustering); NaN for events outside the grid.
    log_likelihood_ : float
        Log-likelihood of the fitted model (intensity in events / day / m²).
    n_iter_ : int
        EM iterations done (all stages; E-steps, with SQUAREM's extrapolated states counted).
    start_values_ : tuple of float
        ``(theta, omega, sigma)`` EM started from: estimated on close pairs of
        events (:func:`start_values`; any time scale, minutes to months), or
        the fixed ``(0.5, 10 / 30 days, 100 m)`` when that estimate is not
        possible (fewer than 20 close pairs).
    converged_ : bool
    warm_start_used_ : bool
        Whether EM started from the previous fit (``warm_start=True``).
    max_days_, max_distance_m_ : float
        Truncation used in the final stage.
    truncated_mass_ : float
        Trigger mass beyond the truncation (exp-gauss; 0 for histogram).
    n_pairs_ : int
        Candidate parent pairs in the final stage.
    day_of_week_factor_, month_factor_ : pandas.Series
        Fitted background multipliers by day of the week (Mon..Sun) and month
        (Jan..Dec), each with mean 1 over the fit window; all ones for a
        factor not in ``seasonality``.

    Notes
    -----
    Event weights (``EventSet.weight``) are multiplicities: an event of
    weight ``k`` counts ``k`` times as a parent (in the intensity, the
    compensator and the forecast), as a child (in the log-likelihood and the
    M-step statistics) and in the background KDE; integer weights give the
    fit on duplicated events, weights 1 today's fit bit for bit (the
    unweighted kernels run). The trigger's spatial
    kernel is not corrected for the study-area boundary (as in Mohler 2011 and
    hpHawkes), only the background is.

    Examples
    --------
    >>> df = rg.simulate(n_days=200, background_rate=10, theta=0.4, seed=1)  # doctest: +SKIP
    >>> ev = rg.EventSet.from_frame(df); grid = rg.HexGrid.from_events(ev)  # doctest: +SKIP
    >>> m = SEPP().fit(ev, grid); m.theta_, 1 / m.omega_, m.sigma_m_       # doctest: +SKIP
    >>> risk = m.predict(horizon_days=7)                                    # doctest: +SKIP
    """

    model_name = "SEPP"
    #: start EM from values estimated on close pairs (False: the fixed start of 0.5, 10 / 30 days, 100 m)
    _data_start = True
    #: SEPP's own forward simulation and simulated interval (code in riskgrid.models._sepp_sim; bound here so
    #: they are SEPP's methods, not the base class's Poisson interval)
    simulate_forecast = SEPPSimulation.simulate_forecast
    predict_interval = SEPPSimulation.predict_interval

    def __init__(
        self,
        trigger: str = "exp-gauss",
        background: str = "kde",
        bandwidth_m: float | None = None,
        max_distance_m: float | None = None,
        max_days: float | None = None,
        max_iter: int = 100,
        tol: float = 1e-6,
        time_bins=12,
        distance_bins=10,
        min_sigma_m: float = 50.0,
        seasonality: str | None = None,
        warm_start: bool = False,
    ):
        self.trigger = trigger
        self.background = background
        self.bandwidth_m = bandwidth_m
        self.max_distance_m = max_distance_m
        self.max_days = max_days
        self.max_iter = max_iter
        self.tol = tol
        self.time_bins = time_bins
        self.distance_bins = distance_bins
        self.min_sigma_m = min_sigma_m
        self.seasonality = seasonality
        self.warm_start = warm_start

    # ------------------------------------------------------------ validation
    def _validate(self):
        if self.trigger not in _TRIGGERS:
            raise ValueError(f"trigger must be one of {_TRIGGERS}, got {self.trigger!r}")
        if self.background not in _BACKGROUNDS:
            raise ValueError(f"background must be one of {_BACKGROUNDS}, got {self.background!r}")
        check_seasonality(self.seasonality)
        check_number("min_sigma_m", self.min_sigma_m, unit="metres")
        for name, unit in (("bandwidth_m", "metres"), ("max_distance_m", "metres"), ("max_days", "days")):
            check_number(name, getattr(self, name), allow_none=True, unit=unit)
        check_int("max_iter", self.max_iter, 1)
        check_number("tol", self.tol, inclusive=True)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}")

    # -------------------------------------------------------------------- fit
    def _fit(self, events: EventSet, grid, cell, end_days):
        self._validate()
        self._pairs = None
        self._em_last = None
        inside = cell >= 0
        if not inside.any():
            raise ValueError("no event inside the grid: nothing to fit")
        x_all, y_all = events.xy(grid.projection)
        t = np.ascontiguousarray(events.t[inside])
        x = np.ascontiguousarray(x_all[inside])
        y = np.ascontiguousarray(y_all[inside])
        T0, T = float(t[0]), float(end_days)
        if not T > T0:
            raise ValueError(f"the fit window is empty: first event at day {T0}, end at day {T}")
        spread_m = float(max(np.ptp(x), np.ptp(y))) if x.size else 0.0
        if x.size < 2 or spread_m < 1.0:
            raise ValueError(
                f"SEPP needs events at more than one place: the {x.size} event(s) of the fit window lie within "
                f"{spread_m:.2g} m of each other, so no spatial kernel can be estimated; use CountHotspot or "
                "GridHawkes (cell counts) for such data, or check the coordinates"
            )
        self._t, self._x, self._y = t, x, y
        wt = np.ascontiguousarray(events.weight[inside], dtype=np.float64)
        # unit weights take the unweighted kernels: today's fits bit for bit
        self._wt = None if np.all(wt == 1.0) else wt
        self._w_asc = None if self._wt is None else np.ascontiguousarray(wt[::-1])
        self._T0, self._T = T0, T
        self._span = T - T0
        self._tau = T - t  # days from each event to the end of the window
        self._tau_asc = np.ascontiguousarray(self._tau[::-1])
        self._init_seasonal(events.local_tz)
        if not hasattr(self, "_samples_cache"):
            self._samples_cache = {}
        self._samples = cell_samples(grid, self._samples_cache)
        self._n_cells = len(grid)

        self.bandwidth_m_ = float(self.bandwidth_m) if self.bandwidth_m is not None else self._select_bandwidth()
        self._kde = _KDE(x, y, self.bandwidth_m_, n_eval=x.size)
        self._mass = _in_area_mass(x, y, self.bandwidth_m_, self._samples)
        self.n_iter_ = 0
        self.converged_ = False

        self._cell_fit = np.asarray(cell)
        if self.trigger == "exp-gauss":
            state, md, mr = self._fit_expgauss_staged()
            self._finish_expgauss(state, md, mr)
        elif self.max_days is not None and self.max_distance_m is not None:
            self._fit_histogram(None, float(self.max_days), float(self.max_distance_m))
        else:  # truncation from an exp-gauss pre-fit, which also starts the histogram EM
            state, md, mr = self._fit_expgauss_staged()
            self._fit_histogram(state, md, mr)
        self._pairs = None  # candidate pairs can be large; predict / score rebuild what they need
        self._em_last = None

    def _fit_expgauss_staged(self):
        """Exp-gauss EM; a derived truncation (``None``) follows the fitted scale.

        Start at the truncation of the start values (:func:`start_values`), at
        most 30 days / 500 m; while ``10 / omega`` or ``5 sigma`` differ from
        the truncation in use by more than 2 %, rebuild the pairs and continue
        EM at a loose tolerance (at most 6 times); then converge at ``tol``.
        """
        user_md, user_mr = self.max_days, self.max_distance_m
        derived = user_md is None or user_mr is None
        md = float(user_md) if user_md is not None else min(_INIT_MAX_DAYS, self._span)
        mr = float(user_mr) if user_mr is not None else _INIT_MAX_DISTANCE_M
        state = {"theta": 0.5, "omega": _DAYS_SCALE / md, "sigma": mr / _SIGMA_SCALE, "w": self._weights(0.5)}
        warm = self._warm_start_state()
        self.warm_start_used_ = warm is not None
        if self._data_start and warm is None:
            probe_md = float(user_md) if user_md is not None else min(_MAX_DERIVED_DAYS, self._span)
            sv = start_values(self._t, self._x, self._y, probe_md, mr, self.min_sigma_m)
            if sv is not None:
                th, om, sg = sv
                state = {"theta": th, "omega": om, "sigma": sg, "w": self._weights(1.0 - th)}
                # the first truncation follows the start values but stays within the old initial one (pair memory);
                # the stages below widen it when the fit asks for more
                if user_md is None:
                    md = min(_DAYS_SCALE / om, self._span, _INIT_MAX_DAYS)
                if user_mr is None:
                    mr = min(_SIGMA_SCALE * sg, _INIT_MAX_DISTANCE_M)
                log.info("SEPP start values from close pairs: theta %.3g, mean delay %.4g days, sigma %.1f m", th, 1 / om, sg)
        if warm is not None:  # the previous fit's parameters, truncation and background probabilities
            state, (md, mr) = warm[0], (warm[1] if derived else (md, mr))
        self.start_values_ = (state["theta"], state["omega"], state["sigma"])
        if derived:
            state = self._em("exp-gauss", state, md, mr, final=False)
            for _ in range(6):
                new_md = float(user_md) if user_md is not None else min(_DAYS_SCALE / state["omega"], self._span, _MAX_DERIVED_DAYS)
                new_mr = float(user_mr) if user_mr is not None else min(_SIGMA_SCALE * state["sigma"], _MAX_DERIVED_DISTANCE_M)
                if abs(new_md / md - 1) <= 0.02 and abs(new_mr / mr - 1) <= 0.02:
                    break
                md, mr = new_md, new_mr
                state = self._em("exp-gauss", state, md, mr, final=False)
        state = self._em("exp-gauss", state, md, mr, final=True)
        if self.warm_start:
            self._warm = (self._warm_key(), state["theta"], state["omega"], state["sigma"], md, mr, self._t, self._x,
                          self._y, state["p_bg"])
        return state, md, mr

    def _warm_key(self):
        return (self.trigger, self.background, self.bandwidth_m, self.max_days, self.max_distance_m,
                self.min_sigma_m, self.seasonality, self._n_cells, self._wt is None)

    def _warm_start_state(self):
        """``(state, (max_days, max_distance_m))`` from the previous fit (``warm_start=True``), or ``None``.

        The exp-gauss parameters and truncation are the previous fit's; the
        background probabilities of the events both windows share (the new
        window's events from its start up to the previous end, matched in time
        and place) are the previous fit's, the other events start at
        ``1 - theta``.
        """
        warm = getattr(self, "_warm", None)
        if not self.warm_start or warm is None or warm[0] != self._warm_key():
            return None
        _, th, om, sg, md, mr, t0, x0, y0, p0 = warm
        p = np.full(self._t.size, 1.0 - th)
        i0 = int(np.searchsorted(t0, self._t[0], side="left"))
        L = min(t0.size - i0, self._t.size)
        if L > 0 and (np.array_equal(t0[i0:i0 + L], self._t[:L]) and np.array_equal(x0[i0:i0 + L], self._x[:L])
                      and np.array_equal(y0[i0:i0 + L], self._y[:L])):
            p[:L] = p0[i0:i0 + L]
        return {"theta": th, "omega": om, "sigma": sg, "w": self._weights(p)}, (md, mr)

    def _get_pairs(self, max_days, max_d):
        """Candidate pairs for a truncation, reused while it does not change (old ones freed first)."""
        key = (float(max_days), float(max_d))
        if getattr(self, "_pairs", None) is not None and self._pairs[0] == key:
            return self._pairs[1]
        self._pairs = None
        pairs = candidate_pairs(self._t, self._x, self._y, max_days, max_d, parents=self._wt is not None, dtype=_PAIR_DTYPE)
        self._pairs = (key, pairs)
        return pairs

    def _weights(self, p):
        """Background weights of the events: ``p`` (probability, scalar or per event) times the event weights."""
        p = np.full(self._t.size, p) if np.ndim(p) == 0 else p
        return p if self._wt is None else p * self._wt

    @staticmethod
    def _estep(kind, pairs, mu, wt, *args):
        """E-step over candidate pairs (``pairs`` holds the parents when weighted, ``wt``; ``None``: unweighted).

        Exp-gauss: ``args = (theta, omega, sigma, n_chunks)``. Histogram:
        ``args = (rate, bins, density, n_chunks)`` with ``bins = (bt, bs)``
        from :func:`riskgrid.kernels.sepp.pair_bins` (computed once per truncation).
        """
        if wt is None:
            indptr, dt, r2 = pairs[:3]
            par, w = np.zeros(0, dtype=np.int32), np.zeros(0)
        else:
            indptr, dt, r2, par = pairs
            w = wt
        if kind == "exp-gauss":
            return K.estep_expgauss(indptr, dt, r2, par, w, mu, *args)
        rate, (bt, bs), dens, nch = args
        return K.estep_histogram(indptr, bt, bs, par, w, mu, rate, dens, nch)

    @staticmethod
    def _pair_bins(pairs, t_edges, r2_edges):
        """Time bin and distance ring of every pair (int16), once per truncation."""
        if t_edges.size > 32768 or r2_edges.size > 32768:
            raise ValueError("time_bins and distance_bins must each have at most 32,767 bins")
        dt, r2 = pairs[1], pairs[2]
        with _threads(10.0 * dt.size):
            return K.pair_bins(dt, r2, np.ascontiguousarray(t_edges, dtype=np.float64),
                               np.ascontiguousarray(r2_edges, dtype=np.float64), _n_chunks(dt.size))

    def _finish_expgauss(self, state, md, mr):
        self.theta_ = state["theta"]
        self.omega_ = state["omega"]
        self.sigma_m_ = state["sigma"]
        self.max_days_, self.max_distance_m_ = md, mr
        self.truncated_mass_ = float(math.exp(-self.omega_ * md) + math.exp(-mr * mr / (2 * self.sigma_m_**2)))
        if self.theta_ < THETA_COLLAPSED:
            warnings.warn(
                f"SEPP triggering collapsed (theta {self.theta_:.2g} < {THETA_COLLAPSED:g}, mean delay "
                f"{1.0 / self.omega_:.3g} days): no self-excitation found within max_days={md:g} and "
                f"max_distance_m={mr:g}; the forecast is the background alone. Check riskgrid.knox for space-time "
                "clustering and pass max_days / max_distance_m from its profile (or fit a longer history)",
                ConvergenceWarning,
                stacklevel=4,
            )
        if self.truncated_mass_ > _MASS_TOL:
            warnings.warn(
                f"SEPP: trigger mass beyond the truncation is {self.truncated_mass_:.2g} > {_MASS_TOL:g} "
                f"(max_days={md:g} vs 1/omega={1 / self.omega_:.3g} days; max_distance_m={mr:g} vs "
                f"sigma={self.sigma_m_:.3g} m); pass larger max_days / max_distance_m",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._store_common(state)

    def _fit_histogram(self, state, md, mr):
        t_edges = _check_edges(self.time_bins, md, "time_bins", "days")
        d_edges = _check_edges(self.distance_bins, mr, "distance_bins", "metres")
        md, mr = float(t_edges[-1]), float(d_edges[-1])
        ring_area = math.pi * np.diff(d_edges**2)
        if state is None:
            rate = np.full(t_edges.size - 1, 0.5 / md)
            dens = np.full(d_edges.size - 1, 1.0 / (math.pi * mr * mr))
            w = self._weights(0.5)
        else:  # start from the exp-gauss fit
            th, om, sg = state["theta"], state["omega"], state["sigma"]
            rate = th * -np.diff(np.exp(-om * t_edges)) / np.diff(t_edges)
            dens = -np.diff(np.exp(-(d_edges**2) / (2 * sg * sg))) / ring_area
            dens = np.maximum(dens, 1e-300)
            rate = np.maximum(rate, 1e-300)
            w = state["w"]
        st = {"rate": rate, "dens": dens, "t_edges": t_edges, "d_edges": d_edges, "ring_area": ring_area, "w": w}
        st = self._em("histogram", st, md, mr)
        self.trigger_time_edges_ = t_edges
        self.trigger_time_profile_ = st["rate"]
        self.trigger_distance_edges_ = d_edges
        self.trigger_distance_profile_ = st["dens"]
        self.theta_ = float(np.sum(st["rate"] * np.diff(t_edges)))
        self.max_days_, self.max_distance_m_ = md, mr
        self.truncated_mass_ = 0.0
        self._store_common(st)

    def _store_common(self, st):
        n_all = self._cell_fit.size
        bgp = np.full(n_all, np.nan)
        bgp[self._cell_fit >= 0] = st["p_bg"]
        self.background_probability_ = bgp
        self.background_rate_ = float(st["n_bg"] / self._span)
        self.log_likelihood_ = float(st["ll"])
        self._mu_events = st["mu"]
        self._bg_norm = st["Z"]
        self.day_of_week_factor_ = pd.Series(self._F_dow.copy(), index=pd.Index(DAY_NAMES, name="day_of_week"), name="factor")
        self.month_factor_ = pd.Series(self._F_month.copy(), index=pd.Index(MONTH_NAMES, name="month"), name="factor")
        # per-cell integral of the normalised background density (dimensionless, sums to 1)
        px, py, pw, pc = self._samples
        with _threads(self._kde.cost + 10.0 * px.size):
            self._kde.set_weights(st["w_mu"])
            # the same floor as the likelihood's background: no cell of the grid gets exactly zero
            f = np.maximum(self._kde.at(px, py) / self._bg_norm, 1e-12 / float(pw.sum()))
        self._bg_sample_mass = pw * f
        self._bg_cell_mass = np.bincount(pc, weights=self._bg_sample_mass, minlength=self._n_cells)

    # ------------------------------------------------------------ background
    def _background(self, w):
        """Background intensity at the events for weights ``w`` (events / day / m²)."""
        pw = self._samples[2]
        self._kde.set_weights(w)
        Z = float(np.dot(w, self._mass))
        n_bg = float(w.sum())
        dens = self._kde.at(self._x, self._y) / Z
        floor = 1e-12 / float(pw.sum())
        mu = (n_bg / self._span) * np.maximum(dens, floor)
        if self._seasonal:
            W = np.bincount(self._phase, weights=w, minlength=84).reshape(7, 12)
            self._F, self._F_dow, self._F_month = seasonal_factor(W, self._exposure_fit, *self._seasonal_kinds)
            mu *= self._F.ravel()[self._phase]
        return mu, Z, n_bg

    # -------------------------------------------------------------- seasonal
    def _init_seasonal(self, tz):
        use_dow, use_month = check_seasonality(self.seasonality)
        self._seasonal = use_dow or use_month
        self._seasonal_kinds = (use_dow, use_month)
        self._calendar = Calendar(tz)
        self._F, self._F_dow, self._F_month = np.ones((7, 12)), np.ones(7), np.ones(12)
        if not self._seasonal:
            return
        E = self._calendar.exposure(self._T0, self._T)
        self._exposure_fit = E
        if use_dow and not (E.sum(axis=1) > 0).all():
            raise ValueError(
                f"seasonality={self.seasonality!r} needs a fit window covering every day of the week; "
                f"it spans {self._span:.3g} days"
            )
        if use_month and not (E.sum(axis=0) > 0).all():
            missing = [MONTH_NAMES[m] for m in np.flatnonzero(E.sum(axis=0) == 0)]
            raise ValueError(
                f"seasonality={self.seasonality!r} needs a fit window touching all 12 months; "
                f"it spans {self._span:.3g} days and misses {', '.join(missing)}"
            )
        dow, month = self._calendar.phases(self._t)
        self._phase = dow * 12 + month

    def _background_integral(self, a, b):
        """``∫_a^b F(t) dt`` (days): the calendar-weighted length of ``[a, b)``."""
        if not self._seasonal:
            return max(float(b) - float(a), 0.0)
        return float(np.sum(self._F * self._calendar.exposure(float(a), float(b))))

    def _select_bandwidth(self):
        t, x, y = self._t, self._x, self._y
        px, py, pw, _ = self._samples
        n = t.size
        sd = math.sqrt(0.5 * (np.var(x) + np.var(y)))
        h_scott = max(sd * n ** (-1.0 / 6.0), 1.0)
        fold = np.minimum((_N_FOLDS * (t - self._T0) / self._span).astype(np.int64), _N_FOLDS - 1)
        area = float(pw.sum())

        def cv(h):  # a coarser raster (step h/2, about 1 % error) is enough to rank bandwidths
            kde = _KDE(x, y, h, n_eval=n, oversample=2.0)
            mass = _in_area_mass(x, y, h, self._samples, oversample=2.0)  # picks its own thread count
            s = 0.0
            for f in range(_N_FOLDS):
                held = fold == f
                if not held.any() or held.all():
                    continue
                w = (~held).astype(np.float64)
                with _threads(kde.cost):
                    kde.set_weights(w)
                    v = kde.at(x[held], y[held])
                v = v / float(np.dot(w, mass))
                s += float(np.sum(np.log(np.maximum(v, 1e-3 / area))))
            return s

        # coarse search on h_scott * 2^k from k = -2..0, extended while the best is at an end
        ks = {k: cv(h_scott * 2.0**k) for k in (-2, -1, 0)}
        while True:
            kb = max(ks, key=ks.get)
            if kb == min(ks) and kb > -6:
                ks[kb - 1] = cv(h_scott * 2.0 ** (kb - 1))
            elif kb == max(ks) and kb < 3:
                ks[kb + 1] = cv(h_scott * 2.0 ** (kb + 1))
            else:
                break
        scores = {h_scott * 2.0**k: v for k, v in ks.items()}
        best = max(scores, key=scores.get)
        for h in (best / math.sqrt(2), best * math.sqrt(2)):
            scores[h] = cv(h)
        best = max(scores, key=scores.get)
        self.bandwidth_cv_scores_ = dict(sorted(scores.items()))
        log.info("SEPP bandwidth by time-block CV: %.1f m (Scott %.1f m)", best, h_scott)
        return float(best)

    # -------------------------------------------------------------------- EM
    def _em(self, kind, st, max_days, max_d, final=True):
        """EM iterations at one truncation; ``st`` holds the parameters and background weights ``w``.

        The exp-gauss EM is accelerated by SQUAREM (Varadhan & Roland 2008,
        scheme S3) unless the class attribute ``_accelerate`` is false: from ``x0``, two EM maps give
        ``x1, x2``; the step ``x' = x0 - 2 a r + a² v`` (``r = x1 - x0``,
        ``v = x2 - 2 x1 + x0``, ``a = -|r| / |v|`` clamped to ``[-50, -1]``,
        on ``log theta, log omega, log sigma`` (histogram: log rates and
        densities) and the background weights) is kept when its fixed-point
        residual ``|F(x') - x'|`` is at most ``|x2 - x1|``, else EM continues
        from ``x2``. (The residual, not the log-likelihood, guards the step:
        with the KDE background the EM map is not a likelihood ascent, and
        its fixed point is what both variants converge to.) Convergence is
        judged on plain EM steps only (``x0 -> x1`` and ``x' -> F(x')``), with
        the same criterion as without acceleration.
        """
        n = self._t.size
        pairs = self._get_pairs(max_days, max_d)
        self.n_pairs_ = int(pairs[0][-1])
        log.info("SEPP %s: %d candidate pairs (%.1f per event), max_days=%g, max_distance_m=%g", kind, self.n_pairs_, self.n_pairs_ / n, max_days, max_d)
        ctx = {"nch": _n_chunks(n), "work": 4.0 * (self.n_pairs_ + n) + self._kde.cost, "pairs": pairs}
        if kind == "histogram":
            ctx["exposure"] = _time_exposure(self._tau, st["t_edges"], self._wt)
            ctx["bins"] = self._pair_bins(pairs, st["t_edges"], st["d_edges"] ** 2)
        converged = False
        change = np.inf
        tol = self.tol if final else max(self.tol, 1e-4)  # intermediate stages only need the scale
        accelerate = bool(self._accelerate) and kind == "exp-gauss"  # histogram: SQUAREM did not help (plain EM)
        prev = None  # (ll, params) of the state whose EM map is the current state; None after an extrapolation
        phase = 0  # 0: x0, 1: x1 = F(x0), 2: x' (extrapolated)
        x = st
        last = getattr(self, "_em_last", None)
        for it in range(int(self.max_iter)):
            if it == 0 and last is not None and last[0] is x and last[1] == (kind, float(max_days), float(max_d)):
                nxt = last[2]  # the previous stage ended on this state at this truncation: its EM map is known
            else:
                nxt = self._em_map(kind, x, ctx)
            params = self._em_params(kind, x)
            if prev is not None:
                change = abs(x["ll"] - prev[0]) / abs(x["ll"])
                p_change = float(np.max(np.abs(params - prev[1]) / np.maximum(np.abs(prev[1]), 1e-300)))
                if change <= tol and p_change <= _PARAM_TOL_FACTOR * tol:
                    converged = True
                    break
            if it == self.max_iter - 1:
                break
            if not accelerate:
                prev, x = (x["ll"], params), nxt
                continue
            if phase == 0:
                x0, x1 = x, nxt
                prev, x, phase = (x["ll"], params), nxt, 1
            elif phase == 1:
                x2 = nxt
                xe, res1 = self._squarem_step(kind, x0, x1, x2)
                if xe is None:  # no usable step: plain EM
                    prev, x, phase = (x["ll"], params), x2, 0
                else:
                    ll1, p1 = x["ll"], params
                    prev, x, phase = None, xe, 2
            else:
                res_e = float(np.linalg.norm(self._squarem_vector(kind, nxt) - self._squarem_vector(kind, x)))
                if res_e <= res1:  # keep the extrapolation (closer to the fixed point); EM from its map
                    prev, x = (x["ll"], params), nxt
                else:  # worse than x1: EM from x2 = F(x1)
                    prev, x = (ll1, p1), x2
                phase = 0
        st = x
        self._em_last = (x, (kind, float(max_days), float(max_d)), nxt)
        self.converged_ = converged
        log.info("SEPP %s: %d EM iterations at max_days=%g, max_distance_m=%g (theta %.4g, log-likelihood %.6f)",
                 kind, it + 1, max_days, max_d, st.get("theta", float("nan")), st["ll"])
        if final and not converged:
            warnings.warn(
                f"SEPP ({kind}) EM did not converge in {self.max_iter} iterations "
                f"(last relative log-likelihood change {change:.2g} > tol={self.tol:g})",
                ConvergenceWarning,
                stacklevel=4,
            )
        return st

    #: SQUAREM acceleration of EM (False: plain EM, for comparisons)
    _accelerate = True

    def _em_map(self, kind, st, ctx):
        """E-step at the state ``st`` (stores ``ll``, ``p_bg``, ``mu``, ``Z``, ``n_bg`` in it), then the M-step:
        returns the next state (a new dict)."""
        n = self._t.size
        pairs = ctx["pairs"]
        with _threads(ctx["work"]):
            mu, Z, n_bg = self._background(st["w"])
            if kind == "exp-gauss":
                lam, p_bg, S = self._estep(kind, pairs, mu, self._wt, st["theta"], st["omega"], st["sigma"], ctx["nch"])
                A = st.get("A")  # the M-step's A(omega) (same function, same arguments): not recomputed
                if A is None:
                    A = _edge_sums(self._tau_asc, st["omega"], self._w_asc)[0]
                comp = st["theta"] * A
            else:
                lam, p_bg, S_t, S_s = self._estep(kind, pairs, mu, self._wt, st["rate"], ctx["bins"], st["dens"], ctx["nch"])
                comp = float(np.dot(st["rate"], ctx["exposure"]))
        log_lam = np.log(lam)
        ll = (float(np.sum(log_lam)) if self._wt is None else float(np.dot(self._wt, log_lam))) - n_bg - comp
        st.update(p_bg=p_bg, mu=mu, w_mu=st["w"], Z=Z, n_bg=n_bg, ll=ll)
        self.n_iter_ += 1
        log.debug("SEPP EM (%s) iteration %d: log-likelihood %.6f", kind, self.n_iter_, ll)
        nxt = {k: v for k, v in st.items() if k not in ("p_bg", "mu", "w_mu", "Z", "n_bg", "ll", "A")}
        nxt["w"] = self._weights(p_bg)
        if kind == "exp-gauss":
            s0, s1, s2 = float(S[0]), float(S[1]), float(S[2])
            if s0 > 1e-12 * n:
                nxt["omega"], nxt["A"] = _solve_omega(s0, s1, self._tau_asc, st["omega"], self._w_asc)
                nxt["theta"] = s0 / nxt["A"]
                nxt["sigma"] = max(math.sqrt(s2 / (2.0 * s0)), float(self.min_sigma_m))
            else:
                nxt["theta"] = 0.0
        else:
            exposure = ctx["exposure"]
            s_total = float(S_s.sum())
            nxt["rate"] = np.where(exposure > 0, S_t / np.maximum(exposure, 1e-300), 0.0)
            if s_total > 0:
                nxt["dens"] = S_s / (s_total * st["ring_area"])
        return nxt

    @staticmethod
    def _em_params(kind, st):
        """Parameters compared between EM steps (convergence): theta, omega, sigma, N_bg (histogram: theta, N_bg)."""
        if kind == "exp-gauss":
            return np.array([st["theta"], st["omega"], st["sigma"], st["n_bg"]])
        return np.array([float(np.sum(st["rate"] * np.diff(st["t_edges"]))), st["n_bg"]])

    def _squarem_vector(self, kind, st):
        if kind == "exp-gauss":
            head = np.log([st["theta"], st["omega"], st["sigma"]])
        else:
            head = np.log(np.concatenate([np.maximum(st["rate"], 1e-300), np.maximum(st["dens"], 1e-300)]))
        return np.concatenate([head, st["w"]])

    def _squarem_step(self, kind, x0, x1, x2):
        """The SQUAREM S3 extrapolation from three successive EM states, projected to valid values, and the
        residual ``|x2 - x1|``; ``(None, None)`` when it cannot be taken (a collapsed or non-finite state, or no
        movement)."""
        if kind == "exp-gauss" and min(x0["theta"], x1["theta"], x2["theta"]) <= 0.0:
            return None, None
        v0, v1, v2 = (self._squarem_vector(kind, s) for s in (x0, x1, x2))
        r = v1 - v0
        v = v2 - v1 - r
        nr, nv = float(np.linalg.norm(r)), float(np.linalg.norm(v))
        if not (np.isfinite(nr) and np.isfinite(nv)) or nv == 0.0 or nr == 0.0:
            return None, None
        a = min(max(-nr / nv, -50.0), -1.0)
        z = v0 - 2.0 * a * r + a * a * v
        if not np.all(np.isfinite(z)):
            return None, None
        out = {k: val for k, val in x2.items() if k not in ("p_bg", "mu", "w_mu", "Z", "n_bg", "ll", "A")}
        k = 3 if kind == "exp-gauss" else x0["rate"].size + x0["dens"].size
        cap = self._wt if self._wt is not None else 1.0
        out["w"] = np.clip(z[k:], 0.0, cap)
        if kind == "exp-gauss":
            out["theta"], out["omega"] = math.exp(z[0]), math.exp(z[1])
            out["sigma"] = max(math.exp(z[2]), float(self.min_sigma_m))
        else:
            nt = x0["rate"].size
            out["rate"] = np.exp(z[:nt])
            dens = np.exp(z[nt:k])
            out["dens"] = dens / float(np.sum(dens * out["ring_area"]))
        return out, float(np.linalg.norm(v2 - v1))

    # ---------------------------------------------------------------- predict
    def _time_integral(self, a, b):
        """Integral of the trigger's time kernel (times theta) over lags ``[a, b]`` (days, arrays)."""
        if self.trigger == "exp-gauss":
            lo = np.clip(a, 0.0, self.max_days_)
            hi = np.clip(b, 0.0, self.max_days_)
            return self.theta_ * (np.exp(-self.omega_ * lo) - np.exp(-self.omega_ * hi))
        return _hist_cdf(self.trigger_time_profile_, self.trigger_time_edges_, b) - _hist_cdf(
            self.trigger_time_profile_, self.trigger_time_edges_, a
        )

    def _trigger_mass_per_cell(self, weights, ex, ey):
        """``sum_i weights_i * ∫_cell s(p - e_i) dp`` per cell (cell children as quadrature points)."""
        px, py, pw, pc = self._samples
        keep = weights > 0
        if not keep.any():
            return np.zeros(self._n_cells)
        ex, ey, ew = np.ascontiguousarray(ex[keep]), np.ascontiguousarray(ey[keep]), np.ascontiguousarray(weights[keep])
        h = _Hash(ex, ey, self.max_distance_m_)
        gaussian = self.trigger == "exp-gauss"
        sigma = self.sigma_m_ if gaussian else 1.0
        r2_edges = self.trigger_distance_edges_**2 if not gaussian else np.zeros(2)
        dens = self.trigger_distance_profile_ if not gaussian else np.zeros(1)
        with _threads(20.0 * px.size + 20.0 * ex.size):
            vals = K.trigger_at_points(px, py, ex, ey, ew, *h.args(), self.max_distance_m_**2, sigma, r2_edges, dens, gaussian)
        return np.bincount(pc, weights=pw * vals, minlength=self._n_cells)

    def _predict(self, start_days, horizon_days):
        return self._mean_given_history(float(start_days), float(horizon_days), self._t, self._x, self._y, self._wt)

    def _mean_given_history(self, s, H, t, x, y, wt):
        """Expected events per cell in ``[s, s + H)`` given history ``(t, x, y, wt)``: background plus the
        history's direct offspring (offspring of events inside the window are not counted)."""
        bg = self.background_rate_ * self._background_integral(s, s + H) * self._bg_cell_mass
        lag0 = s - t
        recent = lag0 < self.max_days_
        w = self._time_integral(lag0[recent], lag0[recent] + H)
        if wt is not None:
            w = w * wt[recent]
        trig = self._trigger_mass_per_cell(w, x[recent], y[recent])
        return bg + trig

    def _output_attrs(self):
        out = {
            "theta": float(self.theta_),
            "bandwidth_m": float(self.bandwidth_m_),
            "background_rate_per_day": float(self.background_rate_),
            "max_days": float(self.max_days_),
            "max_distance_m": float(self.max_distance_m_),
            "log_likelihood": float(self.log_likelihood_),
        }
        if self.trigger == "exp-gauss":
            out.update(omega_per_day=float(self.omega_), sigma_m=float(self.sigma_m_))
        if self.seasonality is not None:
            out["seasonality"] = str(self.seasonality)
        return out

    # ------------------------------------------------------------------ score
    def score(self, events: EventSet, end=None) -> float:
        """Held-out log-likelihood per event (nats / event, intensity per day per m²).

        Uses the events of ``events`` in ``[fit end, end)`` that fall inside
        the grid (``end`` defaults to just after the last of them), with the
        fitted parameters and the training events as history:
        ``(sum_j log lambda(x_j, y_j, t_j) - ∫∫∫ lambda) / n``, the integral
        taken over the study area and the held-out window (trigger mass is
        not boundary-corrected in space).
        """
        self._check_fitted()
        if not isinstance(events, EventSet):
            raise TypeError(f"events must be an EventSet, got {type(events).__name__}")
        cell = self.grid_.assign(events)
        T = self._T
        T2 = float(events.to_days(end)) if end is not None else None
        keep = (cell >= 0) & (events.t >= T)
        if T2 is not None:
            keep &= events.t < T2
        if not keep.any():
            raise ValueError(f"no held-out event inside the grid at or after the end of the fit window (day {T:g})")
        xn, yn = events.xy(self.grid_.projection)
        tn, xn, yn, wn = events.t[keep], xn[keep], yn[keep], events.weight[keep]
        if T2 is None:
            T2 = float(tn[-1]) + 1e-9
        n0 = self._t.size
        t = np.concatenate([self._t, tn])
        x = np.concatenate([self._x, xn])
        y = np.concatenate([self._y, yn])
        weighted = self._wt is not None or not np.all(wn == 1.0)
        wt = np.concatenate([self._wt if self._wt is not None else np.ones(n0), wn]) if weighted else None
        pairs = candidate_pairs(t, x, y, self.max_days_, self.max_distance_m_, j_first=n0, parents=weighted)
        mu = np.ones(t.size)
        mu[n0:] = self.background_rate_ * np.maximum(self._kde.at(xn, yn) / self._bg_norm, 1e-12 / float(self._samples[2].sum()))
        if self._seasonal:
            dow, month = self._calendar.phases(tn)
            mu[n0:] *= self._F[dow, month]
        nch = _n_chunks(t.size)
        if self.trigger == "exp-gauss":
            lam = self._estep("exp-gauss", pairs, mu, wt, self.theta_, self.omega_, self.sigma_m_, nch)[0]
        else:
            bins = self._pair_bins(pairs, self.trigger_time_edges_, self.trigger_distance_edges_**2)
            lam = self._estep("histogram", pairs, mu, wt, self.trigger_time_profile_, bins, self.trigger_distance_profile_,
                              nch)[0]
        if not weighted:
            comp = self.background_rate_ * self._background_integral(T, T2) + float(np.sum(self._time_integral(np.maximum(T - t, 0.0), T2 - t)))
            return float((np.sum(np.log(lam[n0:])) - comp) / tn.size)
        comp = self.background_rate_ * self._background_integral(T, T2) + float(
            np.dot(wt, self._time_integral(np.maximum(T - t, 0.0), T2 - t)))
        return float((np.dot(wn, np.log(lam[n0:])) - comp) / float(wn.sum()))

    # ------------------------------------------------------------ explanation
    def _explain_parts(self, s, H, cells):
        """Background integral and each recent event's trigger mass over each of ``cells`` (same quadrature as predict)."""
        from .explain import concat_parts

        s, H = float(s), float(H)
        bg_all = self.background_rate_ * self._background_integral(s, s + H) * self._bg_cell_mass
        hist = np.flatnonzero(np.asarray(self._cell_fit) >= 0)  # positions of self._t in training_events_
        lag0 = s - self._t
        recent = np.flatnonzero(lag0 < self.max_days_)
        w = self._time_integral(lag0[recent], lag0[recent] + H)
        if self._wt is not None:
            w = w * self._wt[recent]
        live = w > 0
        recent, w = recent[live], w[live]
        ex, ey = self._x[recent], self._y[recent]
        px, py, pw, pc = self._samples
        order = np.argsort(pc, kind="stable")
        ptr = np.searchsorted(pc[order], np.arange(self._n_cells + 1))
        max_d2 = self.max_distance_m_ ** 2
        gaussian = self.trigger == "exp-gauss"
        triggered = np.zeros(cells.size)
        rows = []
        for j, c in enumerate(cells):
            q = order[ptr[c]:ptr[c + 1]]
            if q.size == 0 or recent.size == 0:
                continue
            qx, qy, qw = px[q], py[q], pw[q]
            reach = self.max_distance_m_ + float(np.max(np.hypot(qx - qx.mean(), qy - qy.mean())))
            near = np.flatnonzero(np.hypot(ex - qx.mean(), ey - qy.mean()) <= reach)
            if near.size == 0:
                continue
            d2 = (qx[:, None] - ex[near][None, :]) ** 2 + (qy[:, None] - ey[near][None, :]) ** 2
            if gaussian:
                sig2 = self.sigma_m_ ** 2
                dens = np.exp(-0.5 * d2 / sig2) / (2.0 * np.pi * sig2)
            else:
                edges = self.trigger_distance_edges_ ** 2
                b = np.clip(np.searchsorted(edges, d2, side="right") - 1, 0, edges.size - 2)
                dens = np.asarray(self.trigger_distance_profile_)[b]
            dens = np.where(d2 <= max_d2, dens, 0.0)
            val = w[near] * (qw @ dens)
            triggered[j] = float(val.sum())
            rows.append((j, hist[recent[near]], val, "triggered"))
        return concat_parts(bg_all[cells], triggered, rows)
