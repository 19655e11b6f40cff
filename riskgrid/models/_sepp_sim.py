"""Forward simulation and start values of :class:`riskgrid.models.SEPP`.

* :class:`SEPPSimulation`: the fitted model's simulated futures
  (:meth:`~SEPPSimulation.simulate_forecast`) and the forecast interval built on
  them (:meth:`~SEPPSimulation.predict_interval`), mixed into ``SEPP``; it
  reads the fitted attributes (``theta_``, ``max_days_``, the background's
  sample masses, the training events) and calls
  :func:`riskgrid.kernels.simulate.simulate_sepp_forward`.
* :func:`start_values`: the data-driven start of the exp-gauss EM from close
  pairs of events.

Both were part of :mod:`riskgrid.models.sepp`, which re-exports the names.
"""

from __future__ import annotations

import math

import numpy as np

from ..events import EventSet
from ..kernels.simulate import simulate_sepp_forward
from ..kernels.spatial import build_hash_grid
from . import sepp as _sepp  # candidate_pairs (circular: used at call time only)
from .uncertainty import SimulatedInterval, simulation_setup

__all__ = ["SEPPSimulation", "start_values"]


def _mixture_profile(v, bg, comp, scales):
    """Profile MLE of a two-part mixture ``(1 - pi) bg(v) + pi comp(v; scale)`` over a grid of scales.

    ``bg``: background density at ``v`` (array); ``comp(v, scale)``: the
    component density. For each scale, ``pi`` maximises the (concave)
    log-likelihood by safeguarded Newton steps. Returns ``(scale, pi)`` of the
    best grid point.
    """
    best = (-np.inf, scales[0], 0.0)
    for sc in scales:
        with np.errstate(over="ignore", under="ignore"):
            e = comp(v, sc)
        d = e - bg
        pi = 0.5
        for _ in range(30):
            m = bg + pi * d
            g1 = float(np.sum(d / m))
            g2 = -float(np.sum((d / m) ** 2))
            step = -g1 / g2 if g2 < 0 else 0.0
            new = min(max(pi + step, 1e-6), 1.0 - 1e-6)
            done = abs(new - pi) < 1e-9
            pi = new
            if done:
                break
        ll = float(np.sum(np.log(bg + pi * d)))
        if ll > best[0]:
            best = (ll, sc, pi)
    return best[1], best[2]


def start_values(t, x, y, max_days, max_distance_m, min_sigma_m, n_events=50_000, n_pairs=100_000):
    """Data-driven start ``(theta, omega, sigma)`` of the exp-gauss EM from close pairs of events.

    On a square block of about ``n_events`` events around the median place,
    the candidate pairs within ``max_days`` and ``max_distance_m`` are found;
    their time lags are fitted (profile likelihood over mean delays from
    ``3 max_days`` down to ``1e-7 max_days``, 8 per decade) as a mixture of
    background pairs (density ``∝ S - u`` on ``[0, max_days]``, ``S`` the
    block's time span) and triggered pairs (exponential of rate ``omega``
    truncated at ``max_days``); the distances of pairs closer in time than
    ``2 / omega`` as background (density ``2 d / R²``) plus a Rayleigh of scale
    ``sigma`` (truncated at ``R``), over ``sigma`` from ``R`` down to
    ``R / 1000``. With ``p`` = triggered pairs per event / the kernel's mass
    inside the window (ancestor-descendant pairs: ``theta / (1 - theta)`` per
    event), ``theta = p / (1 + p)``, clipped to [0.05, 0.9]; the pairs' mean
    lag spans ``1 / (1 - theta)`` generations on average, so ``omega`` is the
    fitted rate times ``1 / (1 - theta)`` and ``sigma`` the fitted scale
    times ``sqrt(1 - theta)`` (at least ``min_sigma_m``). Works whatever the time scale
    (minutes to months), in one pass over at most ``n_pairs`` sampled pairs.
    """
    n = t.size
    if n > n_events:
        cx, cy = float(np.median(x)), float(np.median(y))
        d = np.maximum(np.abs(x - cx), np.abs(y - cy))
        half = float(np.partition(d, n_events - 1)[n_events - 1])
        sel = d <= half
        t, x, y = t[sel], x[sel], y[sel]
    span = float(t[-1] - t[0])
    md = float(min(max_days, span)) if span > 0 else float(max_days)
    mr = float(max_distance_m)
    indptr, dt, r2 = _sepp.candidate_pairs(t, x, y, md, mr)
    n_all = int(indptr[-1])
    if n_all < 20 or not span > 0:
        return None
    rng = np.random.default_rng(0)
    take = rng.choice(n_all, n_pairs, replace=False) if n_all > n_pairs else np.arange(n_all)
    u, r = dt[take], np.sqrt(r2[take])
    S = max(span, md)
    bg_u = (S - u) / (S * md - 0.5 * md * md)

    def exp_trunc(v, delay):
        w = 1.0 / delay
        return w * np.exp(-w * v) / -math.expm1(-w * md)

    delay, pi_u = _mixture_profile(u, bg_u, exp_trunc, 3.0 * md * 10.0 ** (-np.arange(0, 61) / 8.0))
    omega = 1.0 / delay
    # distances of pairs close in time; pairs at one point (block-level data) have zero density under both
    # parts and say only "closer than the location precision": left out
    close = (u <= min(md, 2.0 * delay)) & (r >= 1.0)
    rc = r[close] if close.sum() >= 10 else r[r >= 1.0]
    if rc.size < 10:
        return None

    def rayleigh_trunc(v, sg):
        return v / (sg * sg) * np.exp(-0.5 * (v / sg) ** 2) / -math.expm1(-0.5 * (mr / sg) ** 2)

    sigma, _ = _mixture_profile(rc, 2.0 * rc / (mr * mr), rayleigh_trunc, mr * 10.0 ** (-np.arange(0, 25) / 8.0))
    mass = -math.expm1(-omega * md) * -math.expm1(-0.5 * (mr / sigma) ** 2)
    # triggered pairs per event: ancestor-descendant pairs, theta + theta² + ... = theta / (1 - theta)
    per_event = pi_u * n_all / (t.size * mass)
    theta = float(np.clip(per_event / (1.0 + per_event), 0.05, 0.9))
    # an ancestor k generations back is k delays away; over those pairs E[k] = 1 / (1 - theta), so the pairs'
    # mean lag overstates the mean delay by that factor, and their displacement variance sigma² by the same
    omega = omega / (1.0 - theta)
    sigma = max(float(sigma) * math.sqrt(1.0 - theta), float(min_sigma_m))
    return theta, float(omega), sigma


class SEPPSimulation(SimulatedInterval):
    """Forward simulation of a fitted SEPP (mixed into :class:`riskgrid.models.SEPP`)."""

    def _history(self, events):
        """History ``(t, x, y, wt)``: the training events plus ``events`` in the grid at or after the fit end."""
        t, x, y = self._t, self._x, self._y
        wt = self._wt
        if events is None:
            return t, x, y, wt
        if not isinstance(events, EventSet):
            raise TypeError(f"events must be an EventSet or None, got {type(events).__name__}")
        cell = self.grid_.assign(events)
        sel = (cell >= 0) & (events.t >= self.fit_end_)
        xn, yn = events.xy(self.grid_.projection)
        wn = events.weight[sel]
        w_all = None
        if wt is not None or not np.all(wn == 1.0):
            w_all = np.concatenate([wt if wt is not None else np.ones(t.size), wn])
        return np.concatenate([t, events.t[sel]]), np.concatenate([x, xn[sel]]), np.concatenate([y, yn[sel]]), w_all

    def _background_time_segments(self, a, b):
        """Edges (days) of pieces of ``[a, b)`` with a constant calendar factor, and their cumulative share
        of the background (last entry 1)."""
        if not self._seasonal:
            return np.array([a, b]), np.array([1.0])
        cal = self._calendar
        wa, wb = cal.wall(np.array([a, b]))
        day = np.arange(int(np.floor(wa)), int(np.ceil(wb)) + 1, dtype=np.int64)
        edges = np.clip(cal._unwall_days(day), a, b)
        dow, month = cal._phases_of_days(day[:-1])
        wgt = self._F[dow, month] * np.diff(edges)
        keep = np.diff(edges) > 0
        edges = np.append(edges[:-1][keep], b)
        cum = np.cumsum(wgt[keep])
        return np.ascontiguousarray(edges), np.ascontiguousarray(cum / cum[-1])

    def _trigger_tables(self):
        """Kernel arguments of the fitted trigger: ``kind, theta, omega, sigma, max_days, max_d2, t_edges, t_cum,
        d_edges2, d_cum`` (see :func:`riskgrid.kernels.simulate.simulate_sepp_forward`)."""
        md, mr = float(self.max_days_), float(self.max_distance_m_)
        if self.trigger == "exp-gauss":
            z = np.zeros(2)
            return 0, float(self.theta_), float(self.omega_), float(self.sigma_m_), md, mr * mr, z, z, z, z
        te = np.ascontiguousarray(self.trigger_time_edges_, dtype=np.float64)
        t_cum = np.concatenate([[0.0], np.cumsum(self.trigger_time_profile_ * np.diff(te))])
        de2 = np.ascontiguousarray(self.trigger_distance_edges_, dtype=np.float64) ** 2
        d_cum = np.cumsum(self.trigger_distance_profile_ * math.pi * np.diff(de2))
        return 1, float(t_cum[-1]), 1.0, 1.0, md, mr * mr, te, t_cum, de2, d_cum

    def simulate_forecast(self, start=None, horizon_days: float = 7.0, n_sims: int = 1000, seed=None, events=None,
                          cascade: bool = True):
        """Simulated counts per (simulation, cell) in ``[start, start + horizon_days)``.

        Draws ``n_sims`` futures of the fitted branching process given the
        history (the training events, plus ``events`` after the fit window
        when given: the model is conditioned on them without refitting) with
        :func:`riskgrid.kernels.simulate.simulate_sepp_forward` (Numba,
        parallel over simulations, the same result for any thread count under
        a seed): background events from the fitted KDE background (times by
        the calendar factors when ``seasonality`` is set) at the cells' sample
        points (resolution + 2 children, the points :meth:`predict`
        integrates over), the still-to-come offspring of the history, then
        offspring of offspring, with the fitted (truncated) trigger. A
        simulated point is counted in the cell of its nearest sample point;
        points off the grid are dropped with their descendants.

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
        cascade : bool
            ``False``: only background events and direct offspring of the
            history (no offspring of simulated events): the process whose
            mean :meth:`predict` gives exactly (a check); ``True`` (default)
            the full process, whose mean is larger by the offspring born and
            landing inside the window.

        Returns
        -------
        ndarray (n_sims, n_cells)
            Events per cell in each simulated future.
        """
        self._check_fitted()
        t, x, y, wt = self._history(events)
        s, H, seeds = simulation_setup(self, start, horizon_days, n_sims, seed, t)
        px, py, pw, pc = self._samples
        # history: expected direct offspring inside the window (and within max_days)
        lag0 = s - t
        recent = np.flatnonzero(lag0 < self.max_days_)
        h_mean = self._time_integral(lag0[recent], lag0[recent] + H)
        if wt is not None:
            h_mean = h_mean * wt[recent]
        keep = recent[h_mean > 0]
        h_mean = np.ascontiguousarray(h_mean[h_mean > 0])
        # background: expected count and where it falls (cumulative over the sample points)
        bg_mean = float(self.background_rate_ * self._background_integral(s, s + H) * self._bg_cell_mass.sum())
        smp_cum = np.cumsum(self._bg_sample_mass)
        smp_cum /= smp_cum[-1]
        seg_edges, seg_cum = self._background_time_segments(s, s + H)
        # nearest-sample lookup: a point is inside a child cell when within its circumradius
        edge_m = math.sqrt(2.0 * float(pw.max()) / (3.0 * math.sqrt(3.0)))
        snap = 1.05 * edge_m
        order, cstart, hx0, hy0, hcell, hnx, hny = build_hash_grid(px, py, snap, 1 << 22)
        return simulate_sepp_forward(
            seeds, s, H, bg_mean, seg_edges, seg_cum, px, py, np.ascontiguousarray(smp_cum), np.ascontiguousarray(pc),
            order, cstart, hx0, hy0, hcell, hnx, hny, snap * snap,
            np.ascontiguousarray(t[keep]), np.ascontiguousarray(x[keep]), np.ascontiguousarray(y[keep]), h_mean,
            *self._trigger_tables(), int(self._n_cells), -1 if cascade else 0,
        )

    @staticmethod
    def _simulated_total(samples):
        """Simulated counts per (simulation, cell) (:class:`~riskgrid.models.uncertainty.SimulatedInterval`)."""
        return samples

    def _mean_given_events(self, risk, s, H, events):
        """``risk`` (:meth:`predict`'s) with the expected counts per cell given the training events plus ``events``
        (:class:`~riskgrid.models.uncertainty.SimulatedInterval`)."""
        return risk.copy(data=self._mean_given_history(s, H, *self._history(events)))
