"""Grid Hawkes / ETAS model on H3 cells with neighbour spill-over and cross-type excitation.

The estimator's EM steps, data-driven start values, convergence diagnostics and
forward simulation share the fitted state of one instance and live here; the
prepared event streams and the empirical-Bayes background smoothing are in
:mod:`riskgrid.models._hawkes_data`, the Numba work in
:mod:`riskgrid.kernels.hawkes` and :mod:`riskgrid.kernels.forward`.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from .._runtime import threads_for_work
from ..errors import ConvergenceWarning
from ..events import EventSet
from ..kernels.forward import simulate_grid_forward
from ..kernels.hawkes import (background_count_variance, cell_trigger_sums, gamma_log_prior, hawkes_estep, one_cell_mle,
                              one_cell_trigger_sums, spread_to_neighbours, trigger_sum_em)
from ._base import THETA_COLLAPSED, RiskModel, check_int, check_number
from ._hawkes_data import (_LOG_NU_BOUNDS, _Prepared, _ring_sizes, _Smoother, _estep_work, gap_mixture_rate,
                           time_resolution_days)
from .uncertainty import SimulatedInterval, simulation_setup

__all__ = ["GridHawkes"]

log = logging.getLogger(__name__)

#: largest change (log scale) of one parameter in a SQUAREM extrapolation
_MAX_LOG_STEP = float(np.log(4.0))
_BACKGROUNDS = ("smoothed", "cell")
#: most event categories a fit accepts: work and memory grow with categories x categories (cross-excitation)
#: and categories x cells (backgrounds); 1,500 categories ran for over 10 minutes on a 1,000-cell grid
MAX_CATEGORIES = 100
#: convergence also needs theta and omega to move by less than this times tol (relative) per step and,
#: for the smoothed background's map (not an ascent), its relative fixed-point residual below it
_RESIDUAL_FACTOR = 100.0
#: SQUAREM moves every parameter with one step length when there are at most this many (one cell)
_FEW_PARAMS = 8
#: a prior strength within this factor of its upper bound is the smoothed background's runaway (warning)
_NU_RUNAWAY = 0.99
#: EM steps on the trigger sums (omega fixed) before a start candidate is scored
_START_STEPS = 100
#: ... of which this many rank the candidates (the best two then get all of them)
_START_RANK_STEPS = 20
#: ... stopped earlier when theta and the total background change by less than this (relative)
_START_RTOL = 1e-6
#: most events the start candidates are scored on (an even stride through the occupied cells beyond)
_START_MAX_EVENTS = 250_000
#: a warm start is checked against the data-driven start when their decay rates differ by more than this factor
_WARM_CHECK_LOG_RATIO = float(np.log(3.0))


def _param_change(p, q):
    """Largest relative change of theta and omega between two parameter tuples.

    Theta's change is taken relative to at least ``THETA_COLLAPSED`` (a theta
    vanishing geometrically does not keep EM going).
    """
    a = np.append(np.ravel(p[1]), p[2])
    b = np.append(np.ravel(q[1]), q[2])
    floor = np.full(a.size, 1e-12)
    floor[:-1] = THETA_COLLAPSED
    return float(np.max(np.abs(b - a) / np.maximum(np.abs(a), floor)))


def _residual(p, F, n_full):
    """Relative fixed-point residual of an EM map, ``F = F(p)``, per parameter block.

    Backgrounds and the spill-over profile by their total absolute change
    (a share vanishing geometrically does not keep it up), theta and omega
    relatively.
    """
    mu, th, om, w, nu = p
    mu2, th2, om2, w2, nu2 = F
    th, th2 = np.ravel(th), np.ravel(th2)
    parts = (
        float(np.sum(np.abs(mu2 - mu)) / max(float(np.sum(mu)), 1e-300)),
        float(np.sum(np.abs(th2 - th)) / max(float(np.sum(th)), THETA_COLLAPSED)),
        abs(om2 - om) / om,
        float(np.sum(n_full * np.abs(np.asarray(w2) - np.asarray(w)))),
        abs(nu2 - nu) / nu if nu > 0 else 0.0,  # the smoothed background's prior strength
    )
    return float(np.sqrt(sum(x * x for x in parts)))


class GridHawkes(SimulatedInterval, RiskModel):
    r"""Self-exciting (Hawkes / ETAS) model on H3 cells, fitted by EM.

    The intensity of type-``l`` events in cell ``c`` (events/day) is

    .. math::

        \lambda_{c,l}(t) = \mu_{c,l} + \sum_{i:\,t_i<t,\ r(c,c_i)\le R}
            \theta_{k_i,l}\,\omega e^{-\omega (t-t_i)}\, w_{r(c,c_i)}

    where ``r`` is the H3 grid (ring) distance between the event's cell and
    ``c``, ``omega`` (per day) the decay rate of the exponential delay
    kernel, and ``w`` a non-parametric spill-over profile: ``w[r]`` is the
    share of an event's offspring falling in *one* given cell of ring ``r``
    (``w[0] + sum_r 6 r w[r] = 1``, so ``theta`` is the mean number of
    offspring). With ``spillover_rings=0`` this is exactly the grid model of
    Mohler et al. (2015) used by PredPol; with more rings triggering across
    cell edges (near-repeat victimisation next door) is no longer lost, which
    otherwise biases ``theta`` towards 0.

    Parameters
    ----------
    spillover_rings : int, default 1
        ``R``, the number of H3 rings an event can trigger into (0 = own cell only).
        For an isotropic Gaussian displacement of sd ``sigma`` metres,
        ``R = ceil(3 sigma / (sqrt(3) * edge))`` rings (``edge`` the cell edge
        length; neighbouring centres are ``sqrt(3) * edge`` apart) hold all but
        about 0.5 % of the offspring: at res 9 (edge ~201 m) 1 ring for 100 m
        (0.3 % beyond), 2 rings for 200 m (0.3 % beyond; 9 % beyond ring 1),
        3 rings for 300 m (0.5 % beyond). Offspring beyond ``R`` count as background.
    cross_excitation : bool, default False
        ``False``: each type excites only its own type, with one scalar
        ``theta`` (and the same ``omega`` and ``w``) shared by all types,
        i.e. ``theta_{k,l} = theta * [k == l]``. ``True``: a full ``K x K``
        matrix, ``theta_[k, l]`` = mean number of type-``l`` children of a
        type-``k`` event.
    edge_correction : bool, default True
        ``True``: the compensator is exact, in time (offspring after the end
        ``T`` of the window are not expected in it; Lewis & Mohler) and in
        space (the part of an event's spill-over ring that lies outside the
        grid is lost, so an event of cell ``c`` only expects
        ``theta * m_c`` in-grid offspring with
        ``m_c = sum_r n_in(c, r) w[r] <= 1``, ``n_in(c, r)`` the number of
        its ring-``r`` cells in the grid). ``False``: the M-step of Mohler
        et al. (2015), as if every offspring were observed (``m_c = 1``, no
        time correction); it underestimates ``theta`` for short windows.
    max_iter : int, default 500
        Maximum number of EM iterations (EM maps evaluated). Most fits stop
        within 100-200; with the smoothed background some sparse fits need up
        to ~300 (one simulated year, ~20 events/day: median 118-148, at most
        302 over 48 fits).
    tol : float, default 1e-6
        Stop when the relative change of the log-likelihood (plus log prior
        with the smoothed background), increased by the Aitken estimate of
        the change still to come when successive changes shrink
        geometrically, is below ``tol`` and theta and omega move by less than
        ``100 tol`` (relative) in an iteration.
    time_window_days : float, optional
        Use only the last ``time_window_days`` days before the end of the
        fit window (e.g. 365 for a sliding yearly refit).
    background : {"smoothed", "cell"}, default "smoothed"
        ``"cell"``: one free background rate per cell and type (the MLE of
        Mohler et al. 2015); a cell without training events gets ``mu = 0``
        and, on short windows with few events per cell, the backgrounds
        absorb part of the clustering (``theta`` biased low). ``"smoothed"``:
        empirical-Bayes shrinkage. Each cell's background count
        ``Lambda_c = mu_c T`` has a gamma prior (shape ``nu m_c + 1``, rate
        ``nu``) whose mean ``m_c`` is the mean expected background count
        ``B`` of the cells in rings ``1..S`` around ``c`` (plus one
        pseudo-cell at the grid-wide mean, so ``m_c > 0`` everywhere); ``nu``
        (pseudo-windows) and ``S`` (1..4 rings) are chosen in every EM step by
        maximising the negative-binomial marginal likelihood of the ``B_c``
        given their neighbours' (the amount of smoothing is data-driven:
        ``nu`` large = flat background, small = per-cell rates). The M-step is
        the posterior mode ``mu_c = (B_c + nu m_c) / ((1 + nu) T)``. The EM
        map and the objective (log-likelihood plus log prior) are functions of
        the parameters alone, so warm and cold starts reach the same fixed
        point. Every cell of the grid has a positive background, so
        :meth:`score` and :meth:`predict` are finite everywhere. ``nu`` is
        fitted to the counts' expected values *and* variances (with the means
        alone EM could run to ``nu``'s upper bound, a flat background and theta
        +55..+70 %); a ``background_prior_strength_`` at ``exp(8)`` is flagged
        by a warning. See ``background_self_weight`` for the E-step.
    min_lag_minutes : float, default 180
        One-incident rule: an event can trigger only events more than
        ``min_lag_minutes`` minutes after it (the delay kernel is an
        exponential shifted by this lag, so ``theta`` stays the mean number of
        offspring and the mean delay is ``min_lag + 1 / omega``). Police
        records list several offences of one incident at the same place
        minutes to hours apart (and round times to the hour); without the
        rule those pairs are counted as triggering and the fitted delay
        collapses to hours. On Chicago's 2016 records (all offences, 267,227
        events, res 9, one ring) the fitted mean delay is 1.7 h with no lag,
        2.0 h with 15 minutes and 3.2 h with 60 minutes (the records of one
        incident reach past the hour), and 41 h (theta 0.017) with 180
        minutes, hence the default. ``0``: pairs at any positive lag trigger
        (ties never do).
    warm_start : bool, default False
        When ``True`` and the model was fitted before on the same grid,
        categories and settings, EM starts from the previous fit's parameters
        instead of the data-driven start (scikit-learn convention); a
        walk-forward backtest refitting one model at successive origins then
        needs fewer EM steps per origin. The likelihood can have several
        modes: on Chicago burglary (365-day windows, weekly origins) one at a
        mean delay of ~3 days (omega ~0.3/day) and one of a few hours (~6/day),
        the better one changing between origins, and a warm chain stayed in
        the worse one for two months. So a warm fit also computes the
        data-driven start and, when its decay rate differs from the warm
        optimum's by more than a factor 3, runs EM from it too and keeps the
        fit with the higher log-likelihood (``warm_start_used_`` says which).
        Where the fixed point is unique the result equals a cold start within
        the EM tolerance. The smoothed background's EM map can also have
        several fixed points at one time scale; a warm fit may then end at
        another one than a cold fit (this is not checked; in the tests the
        warm one had the higher log-likelihood).
    background_self_weight : float in [0, 1], default 0.5
        With the smoothed background: the weight of an event's own expected
        background count in the background rate it sees in the E-step.
        ``mu_c`` counts each event's background responsibility ``p``;
        with weight 1 (the plain EM of earlier versions) an event of a cluster
        raises the very rate that then explains it, and with a few events per
        cell the backgrounds absorb slow clusters: on one simulated year at
        ~20 events/day, 200 m displacement, theta 0.5 and omega 0.1/day,
        theta came out 14 % low and omega 15 % high on average (16 seeds).
        With weight 0 the event sees its cell's rate without its own count
        (the conditional of a collapsed Gibbs sampler, the rates integrated
        over their gamma prior); that errs the other way (theta +16 %,
        omega -13 % in the same setting, 8 seeds), as the prior's shrinkage is
        then the only thing holding the background up. The default counts it
        at one half, the midpoint of the two (not fitted to a setting): theta
        -0.5 % and omega +0.1 % on average there; over eight simulated
        settings (theta 0.3-0.5, omega 0.1-1/day, 7.5-20 background
        events/day, in the cell and at 200 m; README, Grid Hawkes model) the
        average theta is within 3 % of the truth in seven and -6 % in the
        eighth, the average omega within 4 % in all. Only the EM update
        uses it: ``mu_``, :meth:`predict`, :meth:`score` and
        ``log_likelihood_`` are the model's own. Ignored with
        ``background="cell"`` (the per-cell MLE).

    Attributes
    ----------
    mu_ : ndarray (K, n_cells)
        Background rate of each type in each cell, events/day.
    theta_ : float or ndarray (K, K)
        Mean number of offspring (scalar when ``cross_excitation=False``).
    omega_ : float
        Decay rate of the delay kernel, per day (mean delay ``1/omega_`` days).
    w_ : ndarray (R + 1,)
        Spill-over weight of one cell at ring ``r`` (``w_[0] + sum 6 r w_[r] = 1``).
    spillover_profile_ : ndarray (R + 1,)
        Share of offspring landing in each whole ring, ``(1, 6, 12, ...) * w_``.
    branching_ratio_ : float
        Mean offspring per event (spectral radius of ``theta_`` with cross
        excitation); must be < 1 for a stable process.
    log_likelihood_ : float
        Exact log-likelihood of the fitted model on the training window
        (always with the exact, edge-corrected compensator).
    log_likelihood_history_ : ndarray
        Log-likelihood at the start parameters and after every EM iteration.
    n_iter_ : int
        Number of EM iterations run.
    converged_ : bool
        Whether the relative change fell below ``tol``.
    window_days_ : float
        Length of the training window used, days.
    n_events_used_ : int
        Events inside the grid and the window that the model was fitted on.
    background_smoothing_rings_ : int
        ``S``, rings of the neighbourhood the background is shrunk towards
        (``background="smoothed"``; 0 for ``"cell"``).
    background_prior_strength_ : float
        ``nu`` of the gamma prior (pseudo-windows; 0 for ``"cell"``).
    time_resolution_days_ : float
        Resolution of the training timestamps (days): the coarsest of 1 day,
        1 hour, 15, 5 and 1 minutes and 1 second of which at least 95 % of
        them are multiples (0 when finer).
    warm_start_used_ : bool
        Whether the fit kept came from the previous fit's parameters (``warm_start=True``).
    start_omega_ : float
        Decay rate EM started from (data-driven: best of a log-spaced
        profile, per day).
    background_probability_ : ndarray (n_events_used_,)
        Posterior probability that each of those events (in time order) is a
        background event rather than triggered (stochastic declustering).

    Notes
    -----
    One EM iteration costs O(N x cells in a neighbourhood x K) time (see
    :mod:`riskgrid.kernels.hawkes`) and O(N) memory. The M-step is closed
    form: ``mu = sum p_bg / T``; ``theta * w[r]`` is the ratio of the trigger
    responsibilities at ring ``r`` to the expected number of in-grid,
    in-window ring-``r`` cell-offspring (exact joint maximiser for scalar
    ``theta``; a conditional maximisation cycle for the ``K x K`` case);
    ``omega`` by the edge-corrected formula of Lewis & Mohler
    ``omega = sum p / (sum p dt + sum_i theta m_i (T - t_i) e^{-omega (T - t_i)})``.
    EM steps are accelerated by SQUAREM extrapolation (Varadhan & Roland 2008)
    in log-parameters, safeguarded per parameter and accepted only when the
    log-likelihood does not drop (``n_iter_`` counts EM maps evaluated).
    Event weights (``EventSet.weight``) are multiplicities: an event of
    weight ``k`` counts as ``k`` simultaneous events, as a child (in the
    log-likelihood and the background counts) and as a parent (in the
    intensity and the compensator); integer weights give the fit on the
    duplicated events, weights 1 the unweighted fit bit for bit. Ties in time
    do not trigger each other.

    Start values come from the data: the decay rate is the best of a
    log-spaced profile (one candidate per decade between ``3 / window`` and the
    timestamp resolution, plus the fast rate of a two-exponential mixture of
    the gaps between successive events of a cell, refined by half decades),
    each candidate scored by the profile log-likelihood of the own-cell model
    (one kernel pass, then a short EM on the trigger sums), so EM starts
    within a factor of about 2 of the time scale whether it is minutes or
    months.

    With ``background="cell"`` the per-cell backgrounds are many nuisance
    parameters: on short windows with few events per cell their MLE absorbs
    part of the clustering and ``theta_`` is biased low (theta = 0.3: ~0.25
    on one year at ~20 events per cell); a cell (and type) with no training
    event has ``mu = 0`` and :meth:`score` may be ``-inf``. The default
    smoothed background, with each event's own count weighted by
    ``background_self_weight``, removes most of that bias. A
    :class:`~riskgrid.ConvergenceWarning` says when EM did not converge, when
    the process is explosive, when triggering collapsed (``theta < 0.01``)
    and when the fitted delay is shorter than the timestamp resolution.

    References
    ----------
    Mohler, G. O. et al. (2015). Randomized controlled field trials of
    predictive policing. JASA 110(512), 1399-1411.
    Lewis, E. & Mohler, G. (2011). A nonparametric EM algorithm for multiscale
    Hawkes processes. Journal of Nonparametric Statistics.
    Varadhan, R. & Roland, C. (2008). Simple and globally convergent methods
    for accelerating the convergence of any EM algorithm. Scand. J. Stat. 35.

    Examples
    --------
    >>> import riskgrid as rg
    >>> from riskgrid.models import GridHawkes
    >>> df = rg.simulate(n_days=100, background_rate=20, sigma_m=150, seed=1)
    >>> ev = rg.EventSet.from_frame(df, category="category")
    >>> grid = rg.HexGrid.from_events(ev, resolution=9)
    >>> model = GridHawkes(spillover_rings=1).fit(ev, grid)
    >>> risk = model.predict(horizon_days=7)   # expected events per cell next week
    """

    model_name = "GridHawkes"

    @property
    def uses_indicators(self) -> bool:
        """With cross-excitation, indicator categories may excite the target ones (see ``RiskModel.fit``)."""
        return bool(self.cross_excitation)

    def __init__(
        self,
        spillover_rings: int = 1,
        cross_excitation: bool = False,
        edge_correction: bool = True,
        max_iter: int = 500,
        tol: float = 1e-6,
        time_window_days: float | None = None,
        background: str = "smoothed",
        min_lag_minutes: float = 180.0,
        warm_start: bool = False,
        background_self_weight: float = 0.5,
    ):
        self.spillover_rings = spillover_rings
        self.cross_excitation = cross_excitation
        self.edge_correction = edge_correction
        self.max_iter = max_iter
        self.tol = tol
        self.time_window_days = time_window_days
        self.background = background
        self.min_lag_minutes = min_lag_minutes
        self.warm_start = warm_start
        self.background_self_weight = background_self_weight

    # ------------------------------------------------------------ validation
    def _check_params(self):
        check_int("spillover_rings", self.spillover_rings, 0, 10, "H3 rings")
        for name in ("cross_excitation", "edge_correction", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_int("max_iter", self.max_iter, 1)
        check_number("tol", self.tol)
        check_number("time_window_days", self.time_window_days, allow_none=True, unit="days")
        if check_number("background_self_weight", self.background_self_weight, 0.0, inclusive=True) > 1.0:
            raise ValueError(f"background_self_weight must be in [0, 1], got {self.background_self_weight!r}")
        if self.background not in _BACKGROUNDS:
            raise ValueError(f"background must be one of {_BACKGROUNDS}, got {self.background!r}")
        check_number("min_lag_minutes", self.min_lag_minutes, inclusive=True, unit="minutes")

    # ------------------------------------------------------------------ core
    def _neighbourhood(self, grid, R=None):
        R = int(self.spillover_rings) if R is None else R
        nb = grid.neighbours(R)
        nb_ptr, nb_idx, nb_ring = (np.ascontiguousarray(a, dtype=np.int64) for a in nb)
        n_cells = len(grid)
        owner = np.repeat(np.arange(n_cells), np.diff(nb_ptr))
        n_in = np.zeros((n_cells, R + 1))
        np.add.at(n_in, (owner, nb_ring), 1.0)
        return (nb_ptr, nb_idx, nb_ring), n_in

    def _theta_matrix(self, theta, K):
        return np.ascontiguousarray(theta if np.ndim(theta) == 2 else np.eye(K) * float(theta), dtype=np.float64)

    def _estep(self, P: _Prepared, mu_ck, theta_kk, omega, w, lag, own=0.0, pbg=None):
        """E-step sums (:func:`~riskgrid.kernels.hawkes.hawkes_estep`) → ``(lam, mu_num, trig, dt_num, sum_log)``.

        ``own``: the kernel's own-share rate (0: the plain E-step); ``pbg`` (N,),
        optional: receives each event's background responsibility (kernel order).
        """
        N = len(P)
        K = theta_kk.shape[0]
        pbg = np.empty(N) if pbg is None else pbg
        if K > 1 and np.array_equal(theta_kk, np.eye(K) * theta_kk[0, 0]):
            return self._estep_per_type(P, mu_ck, float(theta_kk[0, 0]), omega, w, lag, own, pbg)
        nch = P.chunk_ptr.size - 1
        lam = np.empty(N)
        mu_num = np.zeros((P.n_cells, K))
        trig = np.zeros((nch, w.size, K, K))
        dtn = np.zeros(nch)
        ll = np.zeros(nch)
        with threads_for_work(_estep_work(P.stream_t.size, N, w.size * K)):
            hawkes_estep(P.cell_ptr, P.typ, P.wt, P.stream_ptr, P.stream_t, P.stream_code, P.stream_w, P.chunk_ptr,
                         np.ascontiguousarray(mu_ck), theta_kk, float(omega), np.ascontiguousarray(w), float(lag),
                         float(own), lam, pbg, mu_num, trig, dtn, ll)
        return lam, mu_num, trig.sum(axis=0), float(dtn.sum()), float(ll.sum())

    @staticmethod
    def _estep_per_type(P: _Prepared, mu_ck, theta, omega, w, lag, own, pbg):
        """:meth:`_estep` for ``theta_kk = theta * I``, on the per-type layout (same sums, ``1 / K`` of the work)."""
        order, cell_ptr, typ, wt, (sp, st, sc, sw), chunk_ptr, chunk_type = P.per_type_layout()
        N, K, n = len(P), P.K, P.n_cells
        nch = chunk_ptr.size - 1
        lam_v = np.empty(N)
        pbg_v = np.empty(N)
        mu_num = np.zeros((n * K, 1))
        trig_v = np.zeros((nch, w.size, 1, 1))
        dtn = np.zeros(nch)
        ll = np.zeros(nch)
        with threads_for_work(_estep_work(st.size, N, w.size)):
            hawkes_estep(cell_ptr, typ, wt, sp, st, sc, sw, chunk_ptr,
                         np.ascontiguousarray(np.asarray(mu_ck).T.reshape(n * K, 1)), np.full((1, 1), theta),
                         float(omega), np.ascontiguousarray(w), float(lag), float(own), lam_v, pbg_v, mu_num, trig_v,
                         dtn, ll)
        lam = np.empty(N)
        lam[order] = lam_v
        pbg[order] = pbg_v
        trig = np.zeros((w.size, K, K))
        for h in range(nch):  # fixed order: the same sums for any thread count
            trig[:, chunk_type[h], chunk_type[h]] += trig_v[h, :, 0, 0]
        return lam, mu_num.reshape(K, n).T.copy(), trig, float(dtn.sum()), float(ll.sum())

    @staticmethod
    def _own_cell_trigger_sums(P: _Prepared, omega, lag):
        """Every event's trigger sum from the earlier events of its own cell and type (the start values' model).

        Equal, bit for bit, to :meth:`_estep`'s intensities at ``mu = 0``, ``theta = I`` on the ring-0
        neighbourhood, without the general kernel's (ring, type) book-keeping.
        """
        if P.K == 1:  # events already in (cell, time) order
            order, cell_ptr, t, wt = None, P.cell_ptr, P.t, P.wt
        else:  # (type, cell, time) order
            order, cell_ptr = P.per_type_order()
            t, wt = np.ascontiguousarray(P.t[order]), np.ascontiguousarray(P.wt[order])
        with threads_for_work(_estep_work(len(P), len(P), 1)):
            g_v = cell_trigger_sums(t, wt, cell_ptr, float(omega), float(lag))
        if order is None:
            return g_v
        g = np.empty(len(P))
        g[order] = g_v
        return g

    @staticmethod
    def _compensator_from(P, mu_ck, theta_kk, w, per, window):
        """Integral of the intensity; ``per[c, k]`` sums each event's in-window share of its offspring."""
        m_cell = P.n_in @ w  # in-grid spill-over mass per source cell
        row = theta_kk.sum(axis=1)  # expected offspring (all types) per parent type
        return float(mu_ck.sum() * window + np.sum(per * m_cell[:, None] * row[None, :]))

    # ------------------------------------------------------------------- fit
    def _fit(self, events: EventSet, grid, cell, end_days):
        self._check_params()
        R = int(self.spillover_rings)
        cross = bool(self.cross_excitation)
        K = len(self.categories_)
        if K > MAX_CATEGORIES:
            raise ValueError(
                f"GridHawkes fits one intensity per category and cell: {K} categories is more than it accepts "
                f"({MAX_CATEGORIES}; cost grows with categories x categories and categories x cells). Choose the "
                "categories to model ([events] categories / target / indicators) or group labels before fitting"
            )
        n_cells = len(grid)
        keep = cell >= 0
        t0 = float(events.t[keep].min()) if keep.any() else end_days
        if self.time_window_days is not None:
            t0 = max(t0, end_days - float(self.time_window_days))
            keep &= events.t >= t0
        if not keep.any():
            raise ValueError("no event inside the grid and the training window; check grid, end and time_window_days")
        window = end_days - t0
        if not window > 0:
            raise ValueError(
                f"the training window has length {window} days; fit needs events spread over a positive time span"
            )
        lag = float(self.min_lag_minutes) / 1440.0
        self.fit_start_ = t0
        self.window_days_ = float(window)
        nb, n_in = self._neighbourhood(grid)
        P = _Prepared(events.t[keep], cell[keep], events.codes[keep], events.weight[keep], n_cells, K, t0, nb, n_in)
        self.n_events_used_ = len(P)
        self.time_resolution_days_ = time_resolution_days(P.t_abs)
        # one cell has no neighbours to borrow from: its MLE is the only sensible background
        smooth = _Smoother(grid, n_cells) if self.background == "smoothed" and n_cells > 1 else None
        ctx = dict(P=P, tau=np.maximum(window - P.t - lag, 0.0), window=window, n_full=_ring_sizes(R), cross=cross,
                   K=K, lag=lag, smooth=smooth, prior=None, nb0=self._neighbourhood(grid, 0)[0])


        warm = getattr(self, "_warm", None)
        key = (n_cells, K, R, cross, self.background, lag, id(grid))
        runs = []
        if self.warm_start and warm is not None and warm[0] == key:
            self.start_omega_ = float(warm[1][2])
            runs.append(self._run_em(warm[1], ctx, smooth) + (True,))
            # the likelihood can have several modes in omega (Chicago burglary: ~0.3/day and ~6/day, the
            # better one changing between weekly origins): when the data-driven start points to another
            # time scale than the warm optimum, EM also runs from it and the better fit is kept
            cold = self._start_values(ctx)
            if abs(math.log(float(cold[2]) / float(runs[0][0][2]))) > _WARM_CHECK_LOG_RATIO:
                runs.append(self._run_em(cold, ctx, smooth) + (False,))
        else:
            params = self._start_values(ctx)
            self.start_omega_ = float(params[2])
            runs.append(self._run_em(params, ctx, smooth) + (False,))
        best = max(runs, key=lambda r: r[6])
        params, history, n_iter, converged, change, ctx["prior"], _, self.warm_start_used_ = best
        n_iter = sum(r[2] for r in runs)

        mu, theta, omega, w, _ = params
        th = self._theta_matrix(theta, K)
        self._plain_ll, _, lam = self._em_map(params, ctx, mstep=False)
        self.mu_ = mu.T.copy()
        self.theta_ = float(theta) if not cross else np.asarray(theta, dtype=float)
        self.omega_ = float(omega)
        self.w_ = np.asarray(w, dtype=float)
        self.spillover_profile_ = self.w_ * ctx["n_full"]
        self.branching_ratio_ = float(np.max(np.abs(np.linalg.eigvals(th)))) if cross else float(theta)
        self.log_likelihood_ = float(self._plain_ll)
        self.log_likelihood_history_ = np.asarray(history)
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        if ctx["prior"] is not None:
            self.background_prior_strength_ = float(ctx["prior"][1])
            self.background_smoothing_rings_ = int(ctx["prior"][2])
        else:
            self.background_prior_strength_, self.background_smoothing_rings_ = 0.0, 0
        pbg = np.empty(len(P))
        with np.errstate(invalid="ignore", divide="ignore"):
            pbg[P.order] = np.where(lam > 0, mu[P.cell, P.typ] / np.where(lam > 0, lam, 1.0), 1.0)
        self.background_probability_ = pbg
        self._P = P  # training history, for predict and score
        self._lag = lag
        self._warm = (key, params)
        if not converged:
            warnings.warn(
                f"GridHawkes EM did not converge in max_iter={self.max_iter} iterations "
                f"(last relative log-likelihood change {change:.3g} > tol={self.tol}); "
                "increase max_iter or tol",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.branching_ratio_ >= 1:
            warnings.warn(
                f"GridHawkes branching ratio {self.branching_ratio_:.3f} >= 1: the fitted process is "
                "explosive (non-stationary); forecasts will grow without bound",
                ConvergenceWarning,
                stacklevel=3,
            )
        elif self.branching_ratio_ < THETA_COLLAPSED:
            warnings.warn(
                f"GridHawkes triggering collapsed (branching ratio {self.branching_ratio_:.2g} < {THETA_COLLAPSED:g}): "
                "no self-excitation found at this grid scale, the forecast is the background alone. Try "
                "spillover_rings=2 or 3 (offspring landing in neighbouring cells), a coarser grid resolution or "
                "a longer time_window_days; riskgrid.knox tells whether the data cluster in space and time at all",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.background_prior_strength_ >= _NU_RUNAWAY * math.exp(_LOG_NU_BOUNDS[1]):
            warnings.warn(
                f"GridHawkes smoothed background: the prior strength reached its bound "
                f"(nu {self.background_prior_strength_:.3g}): the background counts show no over-dispersion around "
                "their neighbourhood's mean, so every cell's background is that mean. If the background varies from "
                "cell to cell, the triggering absorbs the variation (theta too high, omega too low). Compare with "
                "background='cell' and with the held-out score of both "
                "(riskgrid.backtest) before using theta and omega",
                ConvergenceWarning,
                stacklevel=3,
            )
        res = self.time_resolution_days_
        if self.branching_ratio_ >= THETA_COLLAPSED and res > 0 and 1.0 / self.omega_ < res:
            warnings.warn(
                f"GridHawkes fitted mean delay {1440.0 / self.omega_:.3g} minutes (beyond min_lag_minutes="
                f"{self.min_lag_minutes:g}) is shorter than the timestamps' resolution ({res * 1440:g} minutes): "
                "the triggering is likely records of one incident or rounded times; raise min_lag_minutes "
                f"(e.g. to {max(2 * res * 1440, 60):g}) or merge duplicate records into weighted events",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _run_em(self, params, ctx, smooth):
        """EM (SQUAREM-accelerated; the exact profile for one cell and type) from ``params``.

        Returns ``(params, history, n_iter, converged, change, prior, log-likelihood)``.
        """
        P, K, R = ctx["P"], ctx["K"], ctx["n_full"].size - 1
        one_cell = self._one_cell_profile and P.n_cells == 1 and K == 1 and R == 0 and self.edge_correction
        if one_cell:
            # one cell, one type: the profile likelihood in omega, exactly (see _fit_one_cell)
            params, n_evals, ll_start = self._fit_one_cell(params, ctx)
        ll, nxt, lam = self._em_map(params, ctx)
        # the smoothed background's neighbourhood (rings) is chosen at the start and held while EM
        # runs (nu is refitted in every step); at convergence it is chosen again at the fixed point and
        # EM goes on if it changed, so the result is a fixed point of the map with the choice inside
        hold = smooth is not None and self._hold_smoothing_rings
        ctx["smooth_rings"] = ctx["prior"][2] if hold else None
        n_checks = 0
        history = [ll]
        n_iter = 0
        converged = False
        change = np.inf
        if one_cell:
            history, n_iter, converged, change = [ll_start, ll], n_evals, True, 0.0
        max_iter = 0 if converged else int(self.max_iter)
        step_max = 4.0  # SQUAREM's adaptive bound on the extrapolation step
        prev_params = params
        d_prev = np.inf
        while n_iter < max_iter:
            if not self._accelerate or max_iter - n_iter < 3:
                params, (ll_new, nxt, lam) = nxt, self._em_map(nxt, ctx)
                n_iter += 1
            else:
                # SQUAREM (Varadhan & Roland 2008, scheme S3) in log-parameters:
                # two EM steps, one extrapolated point, kept only if it beats the second step
                p1 = nxt
                ll1, p2, lam1 = self._em_map(p1, ctx)
                ll2, F2, lam2 = self._em_map(p2, ctx)
                n_iter += 2
                pe, at_max = self._extrapolate(params, p1, p2, ctx, step_max)
                accepted = False
                if pe is not None:
                    lle, Fe, lame = self._em_map(pe, ctx)
                    n_iter += 1
                    # plain EM increases the likelihood: keep the point only if it does too; the
                    # smoothed background's map (prior refitted in every step) is a fixed-point
                    # iteration, not an ascent: keep the point if its fixed-point residual is below
                    # the one at the start of the cycle
                    better = (lle >= ll2) if smooth is None else (
                        _residual(pe, Fe, ctx["n_full"]) <= _residual(params, p1, ctx["n_full"]))
                    if np.isfinite(lle) and better:
                        params, ll_new, nxt, lam = pe, lle, Fe, lame
                        accepted = True
                if not accepted:
                    params, ll_new, nxt, lam = p2, ll2, F2, lam2
                    step_max = max(1.0, step_max / 4.0)
                elif at_max:
                    step_max *= 4.0
            history.append(ll_new)
            # relative change plus, when the steps shrink geometrically (ratio rho), the Aitken
            # estimate of what is still to come, d rho / (1 - rho): a slow crawl along a ridge is
            # not taken for convergence
            d = abs(ll_new - ll)
            rho = d / d_prev if 0 < d < d_prev else 0.0
            d_prev = d
            change = (d + d * rho / (1.0 - rho)) / max(abs(ll), 1e-300)
            p_change = _param_change(prev_params, params)
            prev_params = params
            log.debug("GridHawkes EM step %d: log-likelihood %.6f (relative change %.3g)", n_iter, ll_new, change)
            ll = ll_new
            if (change < self.tol and p_change < _RESIDUAL_FACTOR * self.tol
                    and (smooth is None or _residual(params, nxt, ctx["n_full"]) < _RESIDUAL_FACTOR * self.tol)):
                if hold and n_checks < 3:
                    held = ctx["smooth_rings"]
                    ctx["smooth_rings"] = None
                    ll_c, nxt_c, lam_c = self._em_map(params, ctx)
                    n_iter += 1
                    n_checks += 1
                    ctx["smooth_rings"] = ctx["prior"][2]
                    if ctx["prior"][2] != held:  # another neighbourhood fits better here: go on with it
                        ll, nxt, lam, d_prev = ll_c, nxt_c, lam_c, np.inf
                        continue
                converged = True
                break

        ll_plain = self._em_map(params, ctx, mstep=False)[0]
        return params, history, n_iter, converged, change, ctx["prior"], ll_plain

    def _fit_one_cell(self, params, ctx):
        """One cell and one type (a one-dimensional Hawkes process): maximise the profile likelihood in omega.

        For a fixed ``omega`` the log-likelihood is concave in ``(mu, theta)``;
        :func:`~riskgrid.kernels.hawkes.one_cell_mle` maximises it by Newton's
        method after one kernel pass for the trigger sums. Brent's method
        (bounded) then maximises that profile over ``log omega`` within half a
        decade of the start value (moved on while the maximum is at an end),
        to 1e-7 in ``log omega`` (the log-likelihood then within ~1e-12 of
        its maximum). EM on a flat ridge between theta and omega needs hundreds of
        steps for the same accuracy (issue 13). Returns ``(params, kernel
        passes, log-likelihood at the start)``.
        """
        from scipy.optimize import minimize_scalar

        P, window, lag = ctx["P"], ctx["window"], ctx["lag"]
        mu0, theta0, omega0 = params[:3]
        state = {"mu": float(np.ravel(mu0)[0]) or len(P) / (2.0 * window), "theta": float(theta0), "n": 0}
        vals = {}

        def neg_profile(z):
            if z in vals:
                return vals[z][0]
            omega = math.exp(z)
            g = one_cell_trigger_sums(P.t, P.wt, omega, lag)
            C = float(np.dot(P.wt, -np.expm1(-omega * ctx["tau"])))
            mu, theta, ll = one_cell_mle(g, P.wt, C, window, state["mu"], max(state["theta"], 1e-3), 200, 1e-13)
            state["n"] += 1
            if np.isfinite(ll):
                state["mu"], state["theta"] = mu, theta
            vals[z] = (-ll if np.isfinite(ll) else np.inf, mu, theta)
            return vals[z][0]

        z0 = math.log(float(omega0))
        ll_start = -neg_profile(z0)
        half = 0.5 * math.log(10.0)
        for _ in range(8):
            lo, hi = z0 - half, z0 + half
            res = minimize_scalar(neg_profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
            z0 = float(res.x)
            if min(z0 - lo, hi - z0) > 1e-6:
                break
        best = min(vals, key=lambda z: vals[z][0])
        _, mu, theta = vals[best]
        return (np.full((1, 1), mu), float(theta), math.exp(best), np.ones(1), 0.0), state["n"], ll_start

    def _start_values(self, ctx):
        """Data-driven start values: the decay rate with the best profile likelihood of the own-cell model.

        Candidates for ``omega`` (per day): one per decade between
        ``3 / window`` and ``1 / max(time resolution, 10 s)``, plus the rate of
        the fast component of the gaps between successive events of a cell
        (:func:`gap_mixture_rate`), then the half decades around the best.
        Each is scored by the profile log-likelihood of the own-cell model
        (ring 0, a scalar theta, per-cell backgrounds) at that ``omega``: one
        kernel pass gives every event's trigger sum, after which theta and the
        backgrounds are fitted by a short EM on those sums alone
        (:func:`~riskgrid.kernels.hawkes.trigger_sum_em`, O(N) per step). EM starts from the best candidate's ``omega``,
        theta (at least 0.5 when triggering can reach other cells) and a
        uniform spill-over. Beyond ``_START_MAX_EVENTS`` events the candidates
        are scored on an even stride through the occupied cells (the own-cell
        model's cells are independent given theta and omega) and the best one
        is fitted once more on every event. Candidates are ranked after
        ``_START_RANK_STEPS`` EM steps on the trigger sums and the best two are
        fitted with up to ``_START_STEPS``.
        """
        P, window, K, R = ctx["P"], ctx["window"], ctx["K"], ctx["n_full"].size - 1
        lo = 3.0 / window
        hi = max(1.0 / max(self.time_resolution_days_, 10.0 / 86400.0), 10.0 * lo)
        own = P.own_cell_view(ctx["nb0"], P.n_in[:, :1]) if R > 0 else P
        n_ct = P.n_cells * K
        # many events: the candidates are scored on the events of an even stride through the occupied cells
        # (the own-cell model's cells are independent given theta and omega), the best one once on all
        sub = own
        if len(own) > _START_MAX_EVENTS and P.n_cells > 1:
            occupied = np.flatnonzero(np.diff(own.cell_ptr))
            keep_cell = np.zeros(P.n_cells, dtype=bool)
            keep_cell[occupied[::-(-len(own) // _START_MAX_EVENTS)]] = True
            k = keep_cell[own.cell]
            sub = _Prepared(own.t_abs[k], own.cell[k], own.typ[k], own.wt[k], P.n_cells, K, P.t0, ctx["nb0"],
                            P.n_in[:, :1], streams=False)
        cands = {}

        def fit_at(data, omega, steps):
            g = self._own_cell_trigger_sums(data, omega, ctx["lag"])  # per event, own cell and type
            C = float(np.dot(data.wt, -np.expm1(-omega * np.maximum(window - data.t - ctx["lag"], 0.0))))
            if n_ct == 1:  # one cell and type: the exact profile (Newton), as in _fit_one_cell
                mu, theta, ll = one_cell_mle(g, data.wt, C, window, float(data.wt.sum()) / (2.0 * window), 0.5, 200,
                                             1e-13)
                mu = np.full(1, mu)
            else:
                mu, theta, ll = trigger_sum_em(g, data.cell_type, data.wt, C, window, n_ct, 0.5, steps, _START_RTOL)
            return (ll if np.isfinite(ll) else -np.inf), (mu.reshape(P.n_cells, K), theta, omega)

        def score(omega):
            omega = float(np.clip(omega, lo, hi))
            key = round(math.log10(omega), 6)
            if key not in cands:
                cands[key] = fit_at(sub, omega, _START_RANK_STEPS)
            return cands[key][0]

        for e in np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            score(10.0**e)
        gap = gap_mixture_rate(sub.t, sub.cell, sub.wt, ctx["lag"], window)
        if np.isfinite(gap):
            score(gap)
        best = max(cands, key=lambda k: cands[k][0])
        for e in (best - 0.5, best + 0.5):
            score(10.0**e)
        if n_ct == 1:  # the exact one-cell profile: the ranking is final
            _, (mu, th, omega) = max(cands.values(), key=lambda v: v[0])
        else:  # ranked after _START_RANK_STEPS EM steps on the trigger sums: the best two fitted in full
            top = sorted(cands.values(), key=lambda v: v[0], reverse=True)[:2]
            _, (mu, th, omega) = max((fit_at(own, v[1][2], _START_STEPS) for v in top), key=lambda v: v[0])
        if R > 0:  # the own-cell fit holds only part of the triggering
            th = max(th, 0.5)
        th = min(max(th, 0.05), 0.95)
        theta = np.full((K, K), th / K) if ctx["cross"] else th
        w = np.full(R + 1, 1.0 / ctx["n_full"].sum())
        # the prior strength of the smoothed background (the E-step's own share depends on it): a neutral
        # start, fitted by the first update
        return mu, theta, omega, w, (1.0 if ctx["smooth"] is not None else 0.0)

    #: SQUAREM acceleration of the EM iterations (class switch, for tests and comparisons)
    _accelerate = True
    #: hold the smoothed background's neighbourhood while EM runs, checked again at convergence
    #: (``False``: chosen in every step; class switch, for tests and comparisons)
    _hold_smoothing_rings = True
    #: one cell and one type: the exact profile likelihood instead of EM (class switch, for comparisons)
    _one_cell_profile = True

    def _em_map(self, params, ctx, mstep=True):
        """E-step at ``params`` → (objective at params, EM update, intensities).

        ``params`` is ``(mu, theta, omega, w, nu)``; ``nu``, the smoothed
        background's prior strength of the previous update (0 with
        ``background="cell"``), sets the E-step's own share
        (:meth:`_own_share_rate`), and the update carries the newly fitted one.
        The objective is the log-likelihood with those E-step intensities
        (exact when the own share is 0), plus with the smoothed background the
        log gamma prior of the backgrounds at the current hyper-parameters
        ``ctx["prior"]``. ``mstep=False``: the exact log-likelihood, no update.
        """
        P, tau, window, K = ctx["P"], ctx["tau"], ctx["window"], ctx["K"]
        mu, theta, omega, w, nu_p = params
        th = self._theta_matrix(theta, K)
        # with the smoothed background and background_self_weight < 1, each event sees its cell's
        # background with its own expected background count partly taken out (own > 0); the objective is
        # then the log-likelihood with those intensities (the plain one with mstep=False)
        own = self._own_share_rate(nu_p, ctx) if mstep else 0.0
        pbg = np.empty(len(P))
        lam, mu_num, trig, dtn, sum_log = self._estep(P, mu, th, omega, w, ctx["lag"], own, pbg)
        decay = np.exp(-omega * tau)  # share of each event's offspring still to come at T
        per_edge = P.per_cell_type(1.0 - decay)  # in-window share of offspring, summed per (cell, type)
        ll = sum_log - self._compensator_from(P, mu, th, w, per_edge, window)
        if not mstep:
            return ll, None, lam
        if ctx["smooth"] is not None:
            # empirical-Bayes prior from the expected background counts at these parameters (so the
            # objective and the EM map are functions of the parameters alone), and the log gamma
            # (shape nu m + 1, rate nu) density of the background counts mu T
            var = np.zeros_like(mu_num)  # the counts' variances: their dispersion enters the marginal
            background_count_variance(P.cell_ptr, P.typ, P.wt, pbg, var)
            with threads_for_work(ctx["smooth"].work(mu_num.shape[1])):
                m, nu, rings = ctx["smooth"].fit(mu_num, ctx.get("smooth_rings"), var, warm=True)
            ctx["prior"] = (m, nu, rings)
            ll += gamma_log_prior(np.ascontiguousarray(mu, dtype=np.float64).ravel(),
                                  np.ascontiguousarray(m, dtype=np.float64).ravel(), float(nu), float(window))
        new = self._mstep(P, mu_num, trig, dtn, theta, omega, w, tau, decay, per_edge, window, ctx["n_full"],
                          ctx["cross"], K)
        if ctx["smooth"] is not None:  # posterior mode of the backgrounds, and the prior strength
            new = ((mu_num + nu * m) / ((1.0 + nu) * window),) + tuple(new[1:]) + (float(nu),)
        else:
            new = tuple(new) + (0.0,)
        return ll, new, lam

    def _own_share_rate(self, nu, ctx) -> float:
        """The E-step's own-share rate (:func:`~riskgrid.kernels.hawkes.hawkes_estep`'s ``own``), events/day.

        With the smoothed background a cell's rate is ``(B + nu m) / ((1 + nu) T)``,
        so one unit of an event's background responsibility adds ``1 / ((1 + nu) T)``
        to it; the event sees ``background_self_weight`` of that. ``nu`` is the
        parameters' own (the prior strength of the previous update), so the EM map
        stays a function of the parameters alone. 0 with ``background="cell"``.
        """
        if ctx["smooth"] is None:
            return 0.0
        return (1.0 - float(self.background_self_weight)) / ((1.0 + float(nu)) * ctx["window"])

    @staticmethod
    def _extrapolate(p0, p1, p2, ctx, step_max):
        """SQUAREM S3 point from three successive EM iterates, in log space.

        Returns ``(params, hit_bound)``; params is ``None`` if degenerate.
        """
        def pack(p):
            mu, theta, omega, w, nu = p
            return np.concatenate([np.ravel(mu), np.ravel(theta), [omega], np.ravel(w), [nu]])

        x0, x1, x2 = pack(p0), pack(p1), pack(p2)
        pos = (x0 > 0) & (x1 > 0) & (x2 > 0)
        if not pos.any():
            return None, False
        l0, l1, l2 = np.log(x0[pos]), np.log(x1[pos]), np.log(x2[pos])
        r = l1 - l0
        v = l2 - 2 * l1 + l0
        nv = np.sqrt(np.sum(v * v))
        if not nv > 0:
            return None, False
        alpha = -np.sqrt(np.sum(r * r)) / nv
        at_max = alpha <= -step_max
        alpha = min(max(alpha, -step_max), -1.0)
        # per-parameter safeguard: a parameter converging geometrically (r, v of
        # opposite signs) is not pushed past its own Aitken limit l0 - r^2 / v;
        # one that is not (r v >= 0) takes the plain EM value (alpha = -1)
        conv = r * v < 0
        cap = np.where(conv, np.minimum(r / np.where(conv, v, 1.0), -1.0), -1.0)
        # (the smoothed background's map couples every cell's background: they move together)
        a_i = np.maximum(alpha, cap) if ctx["smooth"] is None else np.full_like(r, alpha)
        # and no parameter still in a transient moves by more than a factor 4 beyond the EM value
        le = np.clip(l0 - 2 * a_i * r + a_i * a_i * v, l2 - _MAX_LOG_STEP, l2 + _MAX_LOG_STEP)
        xe = x2.copy()
        xe[pos] = np.exp(le)
        if not np.all(np.isfinite(xe)):
            return None, False
        mu, theta, omega, w, nu = p2
        n_mu, n_th = np.size(mu), np.size(theta)
        mu_e = xe[:n_mu].reshape(np.shape(mu))
        th_e = xe[n_mu:n_mu + n_th].reshape(np.shape(theta)) if np.ndim(theta) else float(xe[n_mu])
        om_e = float(xe[n_mu + n_th])
        w_e = xe[n_mu + n_th + 1:-1]
        scale = float(ctx["n_full"] @ w_e)  # theta * w is what the likelihood sees: renormalise w
        return (mu_e, th_e * scale, om_e, w_e / scale, float(xe[-1])), at_max

    def _mstep(self, P, mu_num, trig, dtn, theta, omega, w, tau, decay, per_edge, window, n_full, cross, K):
        """Closed-form (conditional) maximisation given the E-step statistics.

        ``decay = exp(-omega * tau)`` at the current ``omega``; ``per_edge =
        P.per_cell_type(1 - decay)``.
        """
        mu = mu_num / window
        p_total = float(trig.sum())
        if p_total <= 0:
            return mu, (np.zeros((K, K)) if cross else 0.0), omega, w
        # A[k, r] = expected number of in-window offspring cells at ring r of the
        # type-k events, per unit of theta * w[r]
        if self.edge_correction:
            A = per_edge.T @ P.n_in  # (K, R+1)
        else:
            n_k = np.bincount(P.typ, weights=P.wt, minlength=K).astype(float)
            A = n_k[:, None] * n_full[None, :]
        P_r = trig.sum(axis=(1, 2))  # responsibilities per ring
        if not cross:
            denom = A.sum(axis=0)
            beta = np.where(denom > 0, P_r / np.where(denom > 0, denom, 1.0), 0.0)  # theta * w_r
            theta_new = float(n_full @ beta)
            w_new = beta / theta_new
            row = np.full(K, theta_new)
        else:
            P_kl = trig.sum(axis=0)  # (K, K)
            w_new = np.asarray(w, dtype=float).copy()
            th = np.asarray(theta, dtype=float).copy()
            for _ in range(50):
                d_k = A @ w_new
                th = np.where(d_k[:, None] > 0, P_kl / np.where(d_k > 0, d_k, 1.0)[:, None], 0.0)
                d_r = th.sum(axis=1) @ A
                w_upd = np.where(d_r > 0, P_r / np.where(d_r > 0, d_r, 1.0), 0.0)
                scale = float(n_full @ w_upd)
                w_upd /= scale
                th *= scale
                done = np.max(np.abs(w_upd - w_new)) <= 1e-12 * max(np.max(w_new), 1e-300)
                w_new = w_upd
                if done:
                    break
            theta_new = th
            row = th.sum(axis=1)
        if self.edge_correction:
            m_cell = P.n_in @ w_new
            corr = float(np.sum(P.per_cell_type(tau * decay) * m_cell[:, None] * row[None, :]))
        else:
            corr = 0.0
        omega_new = p_total / (dtn + corr) if dtn + corr > 0 else omega
        return mu, theta_new, omega_new, w_new

    # --------------------------------------------------------------- predict
    def _predict(self, start_days, horizon_days):
        P = self._P
        K = len(self.categories_)
        th = self._theta_matrix(self.theta_, K)
        s = start_days - P.t0
        src = P.t + self._lag  # offspring of each event come after src
        f = np.exp(-self.omega_ * np.maximum(s - src, 0.0)) - np.exp(-self.omega_ * np.maximum(s + horizon_days - src, 0.0))
        G = P.per_cell_type(f)
        spread = spread_to_neighbours(G, P.nb_ptr, P.nb_idx, P.nb_ring, self.w_)  # (n_cells, K) per source type
        out = self.mu_ * horizon_days + (spread @ th).T  # (K, n_cells)
        return out[0] if K == 1 else out

    # ------------------------------------------------------- forecast uncertainty
    def _history(self, events):
        """Training history, plus ``events`` (in the grid, at or after the fit end) when given."""
        P = self._P
        t, c, k, w = P.t_abs, P.cell, P.typ, P.wt
        if events is None:
            return t, c, k, w
        if not isinstance(events, EventSet):
            raise TypeError(f"events must be an EventSet or None, got {type(events).__name__}")
        cell = self.grid_.assign(events)
        sel = (cell >= 0) & (events.t >= self.fit_end_)
        unknown = sorted(set(events.categories[i] for i in np.unique(events.codes[sel])) - set(self.categories_))
        if unknown:
            raise ValueError(f"events have categories {unknown} that the model was not fitted on {list(self.categories_)}")
        remap = np.array([self.categories_.index(x) if x in self.categories_ else -1 for x in events.categories])
        return (np.concatenate([t, events.t[sel]]), np.concatenate([c, cell[sel]]),
                np.concatenate([k, remap[events.codes[sel]]]), np.concatenate([w, events.weight[sel]]))

    def simulate_forecast(self, start=None, horizon_days: float = 7.0, n_sims: int = 1000, seed=None, events=None):
        """Simulated counts per (simulation, category, cell) in ``[start, start + horizon_days)``.

        Draws ``n_sims`` futures of the fitted branching process given the
        history (the training events, plus ``events`` after the fit window
        when given: the model is conditioned on them without refitting), with
        :func:`riskgrid.kernels.forward.simulate_grid_forward` (Numba, parallel
        over simulations, the same result for any thread count under a seed).

        Parameters
        ----------
        start : timestamp or float, optional
            Start of the window (default: the end of the fit window); not
            before the last history event.
        horizon_days : float
            Window length, days.
        n_sims : int
            Number of simulated futures.
        seed : int, optional
            Seed (``numpy.random.default_rng`` draws one seed per simulation).
        events : EventSet, optional
            Events after the fit window to condition on.

        Returns
        -------
        ndarray (n_sims, n_categories, n_cells) of int32 counts
        """
        self._check_fitted()
        t, c, k, wt = self._history(events)
        s, H, seeds = simulation_setup(self, start, horizon_days, n_sims, seed, t)
        K = len(self.categories_)
        th = self._theta_matrix(self.theta_, K)
        P = self._P
        omega, lag = float(self.omega_), float(self._lag)
        src = t + lag
        share = np.exp(-omega * np.maximum(s - src, 0.0)) - np.exp(-omega * np.maximum(s + H - src, 0.0))
        m_cell = P.n_in @ self.w_
        mean = wt * th.sum(axis=1)[k] * m_cell[c] * share
        keep = mean > 1e-12
        return simulate_grid_forward(
            seeds, np.ascontiguousarray(self.mu_.T), th, omega, lag, P.nb_ptr, P.nb_idx, P.nb_ring,
            np.ascontiguousarray(self.w_, dtype=np.float64), np.ascontiguousarray(c[keep]), np.ascontiguousarray(k[keep]),
            np.ascontiguousarray(mean[keep]), np.ascontiguousarray(np.maximum(s, src[keep])),
            np.ascontiguousarray(src[keep]), s, H,
        )

    def _simulated_total(self, samples):
        """Simulated counts per (simulation, cell) summed over the forecast categories (:class:`SimulatedInterval`).

        Row by row into one int64 array: a fancy-indexed copy of every target row first cost seconds on
        Chicago's 33 categories x 500 simulations.
        """
        tot = np.zeros((samples.shape[0], samples.shape[2]), dtype=np.int64)
        for r in self._target_total_rows():
            tot += samples[:, r, :]
        return tot

    def _mean_given_events(self, risk, s, H, events):
        """``risk`` (:meth:`predict`'s) with the expected counts per cell, summed over the forecast categories,
        given the training events plus ``events`` (:class:`SimulatedInterval`)."""
        t, c, k, wt = self._history(events)
        K = len(self.categories_)
        th = self._theta_matrix(self.theta_, K)
        P = self._P
        src = t + self._lag
        f = wt * (np.exp(-self.omega_ * np.maximum(s - src, 0.0)) - np.exp(-self.omega_ * np.maximum(s + H - src, 0.0)))
        G = np.bincount(c * K + k, weights=f, minlength=P.n_cells * K).reshape(P.n_cells, K)
        spread = spread_to_neighbours(G, P.nb_ptr, P.nb_idx, P.nb_ring, self.w_)
        vals = (self.mu_ * H + (spread @ th).T)[self._target_total_rows()].sum(axis=0)
        if risk.ndim == 2:
            risk = risk.sum("category", keep_attrs=True)
        return risk.copy(data=vals)

    def _output_attrs(self) -> dict:
        th = self.theta_
        return {
            "theta": th if np.ndim(th) == 0 else str(np.round(np.asarray(th), 6).tolist()),
            "omega_per_day": self.omega_,
            "spillover_weights": str(np.round(self.w_, 8).tolist()),
            "branching_ratio": self.branching_ratio_,
            "log_likelihood": self.log_likelihood_,
            "mu_units": "events/day",
            "background": self.background,
            "background_prior_strength": self.background_prior_strength_,
            "min_lag_minutes": float(self.min_lag_minutes),
        }

    # ----------------------------------------------------------------- score
    def score(self, events: EventSet, end=None) -> float:
        """Held-out log-likelihood per event.

        The held-out events are those of ``events`` inside the grid at or
        after the end of the fit window (earlier ones are ignored, so the
        full EventSet may be passed). The intensity at each held-out event is
        conditioned on the training events and on all earlier held-out events;
        the integral of the intensity over every cell and type on
        ``[fit end, end]`` is subtracted, and the total is divided by the
        number of held-out events.

        Parameters
        ----------
        events : EventSet
            Events after the fit window; categories are matched by label.
        end : timestamp or float, optional
            End of the evaluation window (default: the last held-out event).

        Returns
        -------
        float
            Log-likelihood per held-out event (higher is better); ``-inf`` when a
            held-out event falls where the fitted intensity is zero (a cell and
            type without training events and without recent events nearby).
        """
        self._check_fitted()
        if not isinstance(events, EventSet):
            raise TypeError(f"events must be an EventSet, got {type(events).__name__}")
        P0 = self._P
        T_fit = self.fit_end_
        cell = self.grid_.assign(events)
        sel = (cell >= 0) & (events.t >= T_fit)
        if end is not None:
            end_days = events.to_days(end)
            sel &= events.t < end_days
        if not sel.any():
            raise ValueError("no held-out event inside the grid at or after the end of the fit window")
        unknown = sorted(set(events.categories[c] for c in np.unique(events.codes[sel])) - set(self.categories_))
        if unknown:
            raise ValueError(f"events have categories {unknown} that the model was not fitted on {list(self.categories_)}")
        remap = np.array([self.categories_.index(c) if c in self.categories_ else -1 for c in events.categories])
        t_new = events.t[sel]
        end_days = float(t_new.max()) if end is None else end_days
        t_all = np.concatenate([P0.t_abs, t_new])
        c_all = np.concatenate([P0.cell, cell[sel]])
        k_all = np.concatenate([P0.typ, remap[events.codes[sel]]])
        w_all = np.concatenate([P0.wt, events.weight[sel]])
        is_new = np.concatenate([np.zeros(len(P0), bool), np.ones(t_new.size, bool)])
        P = _Prepared(t_all, c_all, k_all, w_all, P0.n_cells, P0.K, P0.t0, (P0.nb_ptr, P0.nb_idx, P0.nb_ring), P0.n_in)
        K = len(self.categories_)
        th = self._theta_matrix(self.theta_, K)
        lam, *_ = self._estep(P, self.mu_.T, th, self.omega_, self.w_, self._lag)
        new_sorted = is_new[P.order]
        with np.errstate(divide="ignore", invalid="ignore"):  # zero intensity (no background, no trigger) -> -inf
            sum_log = float(np.sum(P.wt[new_sorted] * np.log(lam[new_sorted])))
        a, b = T_fit - P.t0, end_days - P.t0
        # each event's share of offspring falling in [a, b) (events trigger from t + lag on)
        src = P.t + self._lag
        f = np.exp(-self.omega_ * np.maximum(a - src, 0.0)) - np.exp(-self.omega_ * np.maximum(b - src, 0.0))
        integral = self._compensator_from(P, self.mu_.T, th, self.w_, P.per_cell_type(f), b - a)
        return (sum_log - integral) / float(P.wt[new_sorted].sum())

    # ------------------------------------------------------------ explanation
    def _history_positions(self) -> np.ndarray:
        """Position in ``training_events_`` of each event of the fitted history (the kernel's sorted order)."""
        P, ev = self._P, self.training_events_
        cell = self.grid_.assign(ev)
        keep = (cell >= 0) & (ev.t >= self.fit_start_)
        pos = np.flatnonzero(keep)[np.lexsort((ev.t[keep], cell[keep]))]
        if pos.size != len(P) or not (np.array_equal(ev.t[pos], P.t_abs) and np.array_equal(cell[pos], P.cell)):
            raise RuntimeError("GridHawkes.explain could not match the fitted history to the training events")
        return pos

    def _explain_parts(self, s, H, cells):
        """Background ``mu * H`` and each history event's expected offspring in each of ``cells`` (target categories summed)."""
        from .explain import concat_parts

        P = self._P
        K = len(self.categories_)
        rows_t = self._target_total_rows()
        th_to_target = self._theta_matrix(self.theta_, K)[:, rows_t].sum(axis=1)  # (source type,)
        src = P.t + self._lag
        s_rel = s - P.t0
        f = np.exp(-self.omega_ * np.maximum(s_rel - src, 0.0)) - np.exp(-self.omega_ * np.maximum(s_rel + H - src, 0.0))
        per_event = P.wt * f * th_to_target[P.typ]
        hist = self._history_positions()
        background = self.mu_[rows_t][:, cells].sum(axis=0) * H
        triggered = np.zeros(cells.size)
        rows = []
        for j, c in enumerate(cells):
            for q in range(P.nb_ptr[c], P.nb_ptr[c + 1]):
                n, ring = P.nb_idx[q], P.nb_ring[q]
                a, b = P.cell_ptr[n], P.cell_ptr[n + 1]
                if b == a:
                    continue
                val = self.w_[ring] * per_event[a:b]
                triggered[j] += float(val.sum())
                rows.append((j, hist[a:b], val, "triggered"))
        return concat_parts(background, triggered, rows)
