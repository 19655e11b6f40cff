"""GridHawkes: kernels against the O(N^2) reference, M-step fixed points, recovery on simulated data."""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pandas as pd
import pytest
from h3.api import numpy_int as h3i
from naive_hawkes import hawkes_naive, predict_naive, ring_counts_in_grid, ring_matrix

import riskgrid as rg
from riskgrid.errors import ConvergenceWarning, LeakageError, NotFittedError
from riskgrid.kernels.hawkes import build_streams, hawkes_estep, spread_to_neighbours
from riskgrid.models import GridHawkes, make_model

CENTER = (41.85, -87.65)


# --------------------------------------------------------------------------- helpers
def _holey_grid(R_disk=3, drop=5, seed=0):
    """A small H3 patch with a few cells removed, so some rings leave the grid."""
    c = h3i.latlng_to_cell(*CENTER, 9)
    cells = np.asarray(h3i.grid_disk(c, R_disk), dtype=np.uint64)
    rng = np.random.default_rng(seed)
    keep = np.ones(cells.size, bool)
    keep[rng.choice(np.arange(1, cells.size), drop, replace=False)] = False
    return rg.HexGrid(cells[keep], 9)


def _kernel_stats(t, cell, typ, grid, R, mu, theta, omega, w, wt=None, lag=0.0, own=0.0):
    """Run build_streams + hawkes_estep directly on arrays (events sorted by (cell, time))."""
    wt = np.ones(t.size) if wt is None else np.asarray(wt, dtype=np.float64)
    n_cells = len(grid)
    K = theta.shape[0]
    order = np.lexsort((t, cell))
    ts, cs, ks = t[order], cell[order], typ[order].astype(np.int64)
    counts = np.bincount(cs, minlength=n_cells)
    cell_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    nb_ptr, nb_idx, nb_ring = (np.ascontiguousarray(a, dtype=np.int64) for a in grid.neighbours(R))
    wts = np.ascontiguousarray(wt[order])
    sp, st, sc, sw = build_streams(ts, ks, wts, cell_ptr, nb_ptr, nb_idx, nb_ring, K)
    chunk_ptr = np.array([0, n_cells // 3, n_cells // 2, n_cells], dtype=np.int64)
    nch = chunk_ptr.size - 1
    lam = np.empty(t.size)
    mu_num = np.zeros((n_cells, K))
    trig = np.zeros((nch, R + 1, K, K))
    dtn = np.zeros(nch)
    ll = np.zeros(nch)
    pbg = np.empty(t.size)
    hawkes_estep(cell_ptr, ks, wts, sp, st, sc, sw, chunk_ptr, np.ascontiguousarray(mu.T), theta, omega, w,
                 float(lag), float(own), lam, pbg, mu_num, trig, dtn, ll)
    lam_orig = np.empty_like(lam)
    lam_orig[order] = lam
    pbg_orig = np.empty_like(pbg)
    pbg_orig[order] = pbg
    return dict(lam=lam_orig, p_bg=pbg_orig, mu_num=mu_num.T, trig=trig.sum(0), dt_num=dtn.sum(), sum_log=ll.sum())


def _sim(**kw):
    kw.setdefault("start", "2015-01-01")  # long simulations stay inside the accepted years
    df = rg.simulate(**kw)
    # simulations of up to 4000 days from 2024 run past the default year window (1970..next year)
    return df, rg.EventSet.from_frame(df, category="category", year_range=(1970, 2100))


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))) if a.size else 0.0


# --------------------------------------------------------------------------- kernels vs reference
@pytest.mark.parametrize("R", [0, 1, 2])
@pytest.mark.parametrize("seed", [1, 2])
def test_estep_matches_naive_reference(R, seed):
    grid = _holey_grid(seed=seed)
    rng = np.random.default_rng(seed)
    n, K = 260, 2
    # clustered cells (some empty), times on a coarse lattice so ties are frequent
    cell = rng.choice(len(grid), n, p=rng.dirichlet(np.ones(len(grid)) * 0.5))
    t = np.round(rng.uniform(0, 40, n) * 4) / 4
    t[:20] = 12.5  # a big tie group
    typ = rng.integers(0, K, n)
    mu = rng.uniform(0.001, 0.05, (K, len(grid)))
    theta = rng.uniform(0.05, 0.5, (K, K))
    omega = 0.6
    w = rng.uniform(0.01, 0.3, R + 1)
    got = _kernel_stats(t, cell, typ, grid, R, mu, theta, omega, w)
    D = ring_matrix(grid.cells, R)
    n_in = ring_counts_in_grid(grid.cells, R)
    ref = hawkes_naive(t, cell, typ, D, n_in, mu, theta, omega, w, t0=-1.0, T=41.0)
    assert _rel(got["lam"], ref["lam"]) < 1e-9
    assert np.allclose(got["mu_num"], ref["mu_num"], rtol=1e-9, atol=1e-12)
    assert np.allclose(got["trig"], ref["trig"], rtol=1e-9, atol=1e-12)
    assert _rel(got["dt_num"], ref["dt_num"]) < 1e-9
    assert _rel(got["sum_log"], ref["sum_log"]) < 1e-9
    # the neighbour counts the model uses are the ones h3 gives
    nb_ptr, _, nb_ring = grid.neighbours(R)
    owner = np.repeat(np.arange(len(grid)), np.diff(nb_ptr))
    n_in_model = np.zeros_like(n_in)
    np.add.at(n_in_model, (owner, nb_ring), 1)
    assert np.array_equal(n_in_model, n_in)


def test_ties_do_not_trigger_each_other():
    grid = _holey_grid(drop=0)
    centre = int(grid.index_of([h3i.latlng_to_cell(*CENTER, 9)])[0])
    ring1 = int(grid.index_of([h3i.grid_ring(int(grid.cells[centre]), 1)[0]])[0])
    t = np.array([1.0, 1.0, 1.0, 2.0])
    cell = np.array([centre, centre, ring1, centre])
    typ = np.zeros(4, np.int64)
    mu = np.full((1, len(grid)), 0.1)
    got = _kernel_stats(t, cell, typ, grid, 1, mu, np.array([[0.5]]), 1.0, np.array([0.4, 0.1]))
    assert np.allclose(got["lam"][:3], 0.1)  # simultaneous events see nothing
    expected = 0.1 + 0.5 * np.exp(-1.0) * (2 * 0.4 + 0.1)  # two same-cell parents, one next door
    assert got["lam"][3] == pytest.approx(expected, rel=1e-12)


def test_empty_and_single_event_cells():
    grid = _holey_grid(drop=0)
    t = np.array([3.0])
    cell = np.array([5])
    got = _kernel_stats(t, cell, np.zeros(1, np.int64), grid, 1, np.full((1, len(grid)), 0.2),
                        np.array([[0.3]]), 0.5, np.array([0.5, 0.05]))
    assert got["lam"][0] == pytest.approx(0.2)
    assert got["mu_num"].sum() == pytest.approx(1.0)
    assert got["trig"].sum() == 0.0


def test_spread_to_neighbours_matches_dense():
    grid = _holey_grid()
    R = 2
    D = ring_matrix(grid.cells, R)
    rng = np.random.default_rng(3)
    vals = rng.random((len(grid), 2))
    w = np.array([0.3, 0.08, 0.02])
    got = spread_to_neighbours(vals, *[np.ascontiguousarray(a) for a in grid.neighbours(R)], w)
    W = np.where(D >= 0, w[np.maximum(D, 0)], 0.0)
    assert np.allclose(got, W @ vals, rtol=1e-12)


def test_per_type_estep_equals_the_general_one():
    """Issue 17: a diagonal theta runs on the per-type layout (1 sum per ring instead of K); same statistics."""
    from riskgrid.models.grid_hawkes import _Prepared

    grid = _holey_grid(seed=4)
    rng = np.random.default_rng(4)
    n, K, R = 400, 3, 2
    t = np.round(rng.uniform(0, 40, n) * 4) / 4
    cell = rng.choice(len(grid), n)
    typ = rng.integers(0, K, n)
    wt = rng.integers(1, 3, n).astype(float)
    m = GridHawkes(spillover_rings=R)
    nb, n_in = m._neighbourhood(grid)
    mu = rng.uniform(0.001, 0.05, (len(grid), K))
    w = rng.uniform(0.01, 0.3, R + 1)
    for lag in (0.0, 0.3):
        P = _Prepared(t, cell, typ, wt, len(grid), K, -1.0, nb, n_in)
        fast = m._estep(P, mu, np.eye(K) * 0.4, 0.7, w, lag)
        th = np.eye(K) * 0.4
        th[0, 1] = 1e-300  # not diagonal: the general path
        slow = m._estep(P, mu, th, 0.7, w, lag)
        assert np.allclose(fast[0], slow[0], rtol=1e-12, atol=0)
        assert np.allclose(fast[1], slow[1], rtol=1e-12, atol=1e-300)
        assert np.allclose(fast[2], slow[2], rtol=1e-12, atol=1e-12)
        assert fast[3] == pytest.approx(slow[3], rel=1e-12) and fast[4] == pytest.approx(slow[4], rel=1e-12)


def test_gamma_log_prior_matches_numpy():
    """The EM objective's prior term: the fused kernel against the numpy expression it replaced, with counts at
    the 1e-300 floor, tiny and large prior means and any thread count."""
    from scipy.special import gammaln

    from riskgrid.kernels.hawkes import gamma_log_prior

    rng = np.random.default_rng(7)
    mu = np.concatenate([rng.gamma(0.5, 0.01, 4000), [0.0, 1e-320, 5.0]])
    m = np.concatenate([rng.gamma(0.5, 2.0, 4000) + 1e-6, [3.0, 0.5, 1e4]])
    for nu in (1e-3, 0.23, 40.0):
        for window in (1.0, 730.0):
            a = nu * m
            x = np.maximum(mu * window, 1e-300)
            ref = float(np.sum(a * np.log(x) - nu * x + (a + 1.0) * np.log(nu) - gammaln(a + 1.0)))
            got = gamma_log_prior(mu, m, nu, window)
            assert got == pytest.approx(ref, rel=1e-12)
            numba.set_num_threads(1)
            try:
                assert gamma_log_prior(mu, m, nu, window) == got  # fixed chunks: bit for bit
            finally:
                numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_background_smoothing_kernels_match_references():
    """ring_sums, the background counts' variances, the (expected) negative-binomial marginal and its derivatives,
    and the Newton optimum of nu."""
    from naive_hawkes import background_count_variance_naive, best_log_nu_naive, nb_marginal_naive
    from scipy.special import digamma, polygamma

    from riskgrid.kernels.hawkes import (_digamma_trigamma, _tetragamma_pentagamma, background_count_variance,
                                         nb_marginal_terms, ring_sums)
    from riskgrid.models.grid_hawkes import _Smoother

    x = np.concatenate([np.geomspace(1e-9, 1e4, 300), [5.999999, 6.0, 6.000001, 9.999999, 10.0, 10.000001]])
    got = np.array([_digamma_trigamma(v) for v in x])
    assert np.allclose(got[:, 0], digamma(x), rtol=1e-10, atol=1e-10)
    assert np.allclose(got[:, 1], polygamma(1, x), rtol=1e-10, atol=0)
    got = np.array([_tetragamma_pentagamma(v) for v in x])
    assert np.allclose(got[:, 0], polygamma(2, x), rtol=1e-10, atol=0)
    assert np.allclose(got[:, 1], polygamma(3, x), rtol=1e-10, atol=0)
    rng = np.random.default_rng(2)
    B = rng.gamma(0.5, 2.0, 500) + 1e-3
    m = rng.gamma(0.8, 1.5, 500) + 1e-4
    V0 = np.zeros_like(B)
    V = rng.random(500) * np.minimum(B, 2.0) * (rng.random(500) < 0.7)  # some counts known exactly (V = 0)
    for nu in (1e-3, 0.4, 7.0, 2e3):
        for var in (V0, V):
            v, d1, d2 = nb_marginal_naive(B, m, nu, var)
            assert nb_marginal_terms(B, var, m, nu, False)[0] == pytest.approx(v, rel=1e-11)
            _, g1, g2 = nb_marginal_terms(B, var, m, nu, True)
            assert g1 == pytest.approx(d1, rel=1e-8, abs=1e-8 * np.abs(m).sum()) and g2 == pytest.approx(d2, rel=1e-7)
    # the counts' variances, on (cell, time)-ordered events with weights and types
    n_cells, K = 40, 3
    cell = np.sort(rng.integers(0, n_cells, 900))
    cell_ptr = np.searchsorted(cell, np.arange(n_cells + 1)).astype(np.int64)
    typ, wt = rng.integers(0, K, 900), rng.choice([1.0, 2.0, 0.5], 900)
    mu = rng.gamma(1.0, 0.01, (n_cells, K))
    lam = mu[cell, typ] + rng.gamma(0.5, 0.02, 900) * (rng.random(900) < 0.8)
    p = mu[cell, typ] / lam
    p[::97] = 0.0  # an event of zero intensity (responsibility 0) contributes nothing
    got = np.zeros((n_cells, K))
    background_count_variance(cell_ptr, typ, wt, p, got)
    assert np.allclose(got, background_count_variance_naive(cell, typ, wt, p, n_cells, K), rtol=1e-12, atol=0)
    grid = _holey_grid(R_disk=6, drop=8, seed=5)
    vals = rng.gamma(0.7, 3.0, (len(grid), 2)) * (rng.random((len(grid), 2)) < 0.6)  # many zero counts
    nb_ptr, nb_idx, nb_ring = (np.ascontiguousarray(a, dtype=np.int64) for a in grid.neighbours(3))
    D = ring_matrix(grid.cells, 3)
    ref = np.stack([(D == r).astype(float) @ vals for r in range(4)], axis=1)
    assert np.allclose(ring_sums(vals, nb_ptr, nb_idx, nb_ring, 3), ref, rtol=1e-12, atol=0)
    sm = _Smoother(grid, len(grid))
    means, nu, s = sm.fit(vals)
    # the chosen neighbourhood and strength are scipy's bounded optimum, by ring
    cands = []
    for k, mk in enumerate(sm.prior_mean(vals), start=1):
        z = best_log_nu_naive(vals[mk > 0], mk[mk > 0])
        cands.append((nb_marginal_naive(vals[mk > 0], mk[mk > 0], np.exp(z))[0], k, z))
    best = max(cands)
    assert s == best[1] and np.log(nu) == pytest.approx(best[2], abs=1e-6)
    # with the counts' variances: the same, on the expected marginal; dispersion the counts may hide lowers nu
    var = vals * rng.random(vals.shape) * 0.5
    means_v, nu_v, s_v = _Smoother(grid, len(grid)).fit(vals, V=var)
    cands = []
    for k, mk in enumerate(sm.prior_mean(vals), start=1):
        ok = mk > 0
        z = best_log_nu_naive(vals[ok], mk[ok], V=var[ok])
        cands.append((nb_marginal_naive(vals[ok], mk[ok], np.exp(z), var[ok])[0], k, z))
    best = max(cands)
    assert s_v == best[1] and np.log(nu_v) == pytest.approx(best[2], abs=1e-6)
    assert nu_v < nu
    # a flat marginal (Poisson counts, no over-dispersion) ends at the upper bound exactly
    flat = np.full((len(grid), 1), 3.0)
    assert _Smoother(grid, len(grid)).fit(flat)[1] == pytest.approx(np.exp(8.0), rel=1e-12)


def test_held_smoothing_neighbourhood_gives_the_same_fit(monkeypatch):
    """Issue 17: holding the background's neighbourhood between checks changes the fit only within the EM tolerance."""
    df, ev = _sim(n_days=200, background_rate=15, theta=0.3, omega=0.2, sigma_m=200, seed=3, extent_m=8000)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=2)
    fast = GridHawkes(spillover_rings=1).fit(ev, grid)
    monkeypatch.setattr(GridHawkes, "_hold_smoothing_rings", False)
    every = GridHawkes(spillover_rings=1).fit(ev, grid)
    assert fast.converged_ and every.converged_
    assert fast.background_smoothing_rings_ == every.background_smoothing_rings_
    assert fast.log_likelihood_ == pytest.approx(every.log_likelihood_, rel=1e-6)
    for a in ("theta_", "omega_", "background_prior_strength_"):
        assert getattr(fast, a) == pytest.approx(getattr(every, a), rel=1e-3)
    assert np.allclose(fast.mu_, every.mu_, rtol=1e-3, atol=1e-3 * fast.mu_.mean())


def test_start_value_kernels_match_numpy_references():
    from naive_hawkes import gap_mixture_naive, trigger_sum_em_naive

    from riskgrid.kernels.hawkes import gap_mixture_em, trigger_sum_em

    rng = np.random.default_rng(7)
    g = np.where(rng.random(3000) < 0.3, rng.exponential(0.05, 3000), rng.exponential(5.0, 3000))
    r = rng.uniform(0.1, 0.3, g.size)
    b = r * np.exp(-r * g)
    for n_iter, rtol in ((15, 0.0), (500, 1e-9)):
        lam, k = gap_mixture_em(g, b, 1.0, 0.3, n_iter, rtol)
        lam_ref, k_ref = gap_mixture_naive(g, b, 1.0, 0.3, n_iter, rtol)
        assert k == k_ref and lam == pytest.approx(lam_ref, rel=1e-10)
    n_ct = 40
    ct = rng.integers(0, n_ct, 2000)
    gs = rng.exponential(0.5, 2000) * (rng.random(2000) < 0.7)
    wt = rng.integers(1, 3, 2000).astype(float)
    mu, th, ll = trigger_sum_em(gs, ct, wt, 900.0, 100.0, n_ct, 0.5, 60, 0.0)
    mu_r, th_r, ll_r = trigger_sum_em_naive(gs, ct, wt, 900.0, 100.0, n_ct, 0.5, 60)
    assert np.allclose(mu, mu_r, rtol=1e-10) and th == pytest.approx(th_r, rel=1e-10) and ll == pytest.approx(ll_r, rel=1e-12)


@pytest.mark.parametrize("lag", [0.0, 0.02])
def test_one_cell_kernels_match_references(lag):
    """The one-cell trigger sums equal the general E-step's (bit for bit) and a plain double loop; the one-cell
    Newton fit maximises the naive 1-D log-likelihood (ties and a minimum lag included)."""
    from naive_hawkes import hawkes_1d_loglik_naive
    from scipy.optimize import minimize

    from riskgrid.kernels.hawkes import one_cell_mle, one_cell_trigger_sums
    from riskgrid.models.grid_hawkes import _Prepared

    rng = np.random.default_rng(11)
    t = np.sort(np.round(rng.random(1500) * 60.0, 2))  # rounded: ties
    wt = rng.integers(1, 3, t.size).astype(float)
    omega = 0.8
    g = one_cell_trigger_sums(t, wt, omega, lag)
    dt = t[:, None] - t[None, :] - lag
    ok = (t[None, :] + lag < t[:, None]) if lag > 0 else (t[:, None] > t[None, :])
    ref = omega * np.sum(np.where(ok, wt[None, :] * np.exp(-omega * np.where(ok, dt, 0.0)), 0.0), axis=1)
    assert np.allclose(g, ref, rtol=1e-10, atol=1e-300)
    one = np.zeros(t.size, dtype=np.int64)
    P = _Prepared(t, one, one, wt, 1, 1, 0.0, (np.array([0, 1]), np.array([0]), np.array([0])), np.ones((1, 1)))
    g_e = GridHawkes(spillover_rings=0)._estep(P, np.zeros((1, 1)), np.eye(1), omega, np.ones(1), lag)[0]
    assert np.array_equal(g, g_e)
    if lag == 0.0:  # the Newton fit against a generic optimiser on the plain 1-D likelihood (unit weights, no ties)
        t1 = np.sort(rng.random(1500) * 60.0)
        T = 60.0
        g1 = one_cell_trigger_sums(t1, np.ones(t1.size), omega, 0.0)
        C = float(np.sum(-np.expm1(-omega * (T - t1))))
        mu, th, ll = one_cell_mle(g1, np.ones(t1.size), C, T, 10.0, 0.3, 200, 1e-13)
        res = minimize(lambda p: -hawkes_1d_loglik_naive(t1, T, p[0], p[1], omega), [mu * 1.2, 0.3],
                       method="L-BFGS-B", bounds=[(1e-6, None), (0.0, None)], options={"ftol": 1e-15, "gtol": 1e-10})
        assert ll == pytest.approx(hawkes_1d_loglik_naive(t1, T, mu, th, omega), rel=1e-12)
        assert ll >= -res.fun - 1e-8 * abs(res.fun)


# --------------------------------------------------------------------------- model on small data
@pytest.fixture(scope="module")
def small_two_type():
    df, ev = _sim(n_days=60, background_rate=6, omega=0.5, sigma_m=100, extent_m=2500, n_hotspots=2, seed=11,
                  categories=["A", "B"], cross_excitation=np.array([[0.35, 0.25], [0.0, 0.35]]))
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=0)
    return df, ev, grid


def _naive_fitted(model, ev, grid, t0, T):
    cell = grid.assign(ev)
    ok = (cell >= 0) & (ev.t >= t0) & (ev.t < T)
    R = model.spillover_rings
    D = ring_matrix(grid.cells, R)
    n_in = ring_counts_in_grid(grid.cells, R)
    K = len(model.categories_)
    th = model.theta_ if np.ndim(model.theta_) == 2 else np.eye(K) * model.theta_
    return ev.t[ok], cell[ok], ev.codes[ok], D, n_in, th


@pytest.mark.parametrize("cross", [False, True])
def test_fit_loglik_matches_naive_and_is_a_local_maximum(small_two_type, cross):
    df, ev, grid = small_two_type
    # per-cell MLE background (a plain likelihood maximum), default one-incident lag of 60 minutes
    m = GridHawkes(spillover_rings=1, cross_excitation=cross, tol=1e-13, max_iter=3000, background="cell").fit(ev, grid)
    assert m.converged_
    t, cell, typ, D, n_in, th = _naive_fitted(m, ev, grid, m.fit_start_, m.fit_end_ + 1e-9)
    T, t0 = m.fit_end_, m.fit_start_
    lag = m.min_lag_minutes / 1440.0
    assert lag > 0

    def ll(mu=m.mu_, theta=th, omega=m.omega_, w=m.w_):
        return hawkes_naive(t, cell, typ, D, n_in, mu, theta, omega, w, t0, T, lag=lag)["loglik"]

    best = ll()
    assert best == pytest.approx(m.log_likelihood_, rel=1e-9)
    # EM with acceleration never lets the log-likelihood go down
    assert np.all(np.diff(m.log_likelihood_history_) > -1e-9 * abs(best))
    eps = 2e-3
    for f in (1 - eps, 1 + eps):
        assert ll(theta=th * f) <= best + 1e-9 * abs(best)
        assert ll(omega=m.omega_ * f) <= best + 1e-9 * abs(best)
        assert ll(mu=m.mu_ * f) <= best + 1e-9 * abs(best)
        w2 = m.w_.copy()
        w2[0] *= f
        scale = w2[0] + 6 * w2[1]
        assert ll(w=w2 / scale, theta=th * scale) <= best + 1e-9 * abs(best)
        if cross:
            for k in range(2):
                for l in range(2):
                    th2 = th.copy()
                    th2[k, l] *= f
                    assert ll(theta=th2) <= best + 1e-9 * abs(best)


def test_mstep_fixed_points_match_closed_forms(small_two_type):
    """At convergence the parameters reproduce the closed-form M-step from the naive responsibilities.

    Edge-corrected: theta w_r = P_r / sum_i n_in(c_i, r) (1 - e^{-omega (T - t_i)}) (so theta =
    sum p_trig / sum_i m_i (1 - e^{-omega (T - t_i)})) and omega = P / (sum p dt + theta sum_i m_i
    (T - t_i) e^{-omega (T - t_i)}) (Lewis & Mohler); without correction theta = P / N and
    omega = P / sum p dt (Mohler et al. 2015).
    """
    df, ev, grid = small_two_type
    for edge in (True, False):
        m = GridHawkes(spillover_rings=1, edge_correction=edge, tol=1e-14, max_iter=5000, background="cell",
                       min_lag_minutes=0).fit(ev, grid)
        assert m.theta_ > 0.1
        t, cell, typ, D, n_in, th = _naive_fitted(m, ev, grid, m.fit_start_, m.fit_end_ + 1e-9)
        ref = hawkes_naive(t, cell, typ, D, n_in, m.mu_, th, m.omega_, m.w_, m.fit_start_, m.fit_end_)
        P_r = ref["trig"].sum(axis=(1, 2))
        tau = m.fit_end_ - t
        if edge:
            E = 1 - np.exp(-m.omega_ * tau)
            m_i = (n_in @ m.w_)[cell]
            assert np.allclose(m.theta_ * m.w_ * (E @ n_in[cell]), P_r, rtol=1e-6)
            assert m.theta_ == pytest.approx(P_r.sum() / np.sum(m_i * E), rel=1e-6)
            corr = m.theta_ * np.sum(m_i * tau * np.exp(-m.omega_ * tau))
        else:
            assert m.theta_ == pytest.approx(P_r.sum() / t.size, rel=1e-6)
            assert np.allclose(m.theta_ * m.w_ * t.size * np.array([1, 6]), P_r, rtol=1e-6)
            corr = 0.0
        assert m.omega_ == pytest.approx(P_r.sum() / (ref["dt_num"] + corr), rel=1e-6)
        assert np.allclose(m.mu_, ref["mu_num"] / (m.fit_end_ - m.fit_start_), rtol=1e-6, atol=1e-12)


def test_predict_and_score_match_naive(small_two_type):
    df, ev, grid = small_two_type
    end = ev.t[0] + 45.0
    m = GridHawkes(spillover_rings=1, cross_excitation=True, min_lag_minutes=90).fit(ev, grid, end=end)
    lag = 90 / 1440.0
    t, cell, typ, D, n_in, th = _naive_fitted(m, ev, grid, m.fit_start_, end)
    start, h = end + 2.0, 3.5
    risk = m.predict(start, horizon_days=h)
    ref = predict_naive(t, cell, typ, D, m.mu_, th, m.omega_, m.w_, start, h, lag=lag)
    # the one-incident lag reaches into the forecast: starting right at the last event
    start2 = float(t.max())
    ref2 = predict_naive(t, cell, typ, D, m.mu_, th, m.omega_, m.w_, start2, 0.03, lag=lag)
    assert np.allclose(m.predict(start2, horizon_days=0.03).values, ref2, rtol=1e-10)
    assert risk.dims == ("category", "cell")
    assert list(risk.category.values) == ["A", "B"]
    assert np.allclose(risk.values, ref, rtol=1e-10)
    assert risk.attrs["model"] == "GridHawkes" and "omega_per_day" in risk.attrs
    # held-out log-likelihood: naive intensities over train + test, integral over [end, last test event];
    # the smoothed background is positive in every cell, so every held-out event counts
    assert (m.mu_ > 0).all()
    c_all = grid.assign(ev)
    ok = (c_all >= 0) & (ev.t >= m.fit_start_)
    test_ev = rg.EventSet.from_frame(ev.to_frame()[ok & (ev.t >= end)], category="category")
    sc = m.score(test_ev)
    assert np.isfinite(sc)
    ta, ca, ka = ev.t[ok], c_all[ok], ev.codes[ok]
    b = ta.max()
    full = hawkes_naive(ta, ca, ka, D, n_in, m.mu_, th, m.omega_, m.w_, m.fit_start_, b, lag=lag)
    is_test = ta >= end
    m_cell = n_in @ m.w_
    f = np.exp(-m.omega_ * np.maximum(end - ta - lag, 0)) - np.exp(-m.omega_ * np.maximum(b - ta - lag, 0))
    integral = m.mu_.sum() * (b - end) + np.sum(th.sum(1)[ka] * m_cell[ca] * f)
    expected = (np.log(full["lam"][is_test]).sum() - integral) / is_test.sum()
    assert sc == pytest.approx(expected, rel=1e-9)


def test_results_do_not_depend_on_thread_count(small_two_type):
    df, ev, grid = small_two_type
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = GridHawkes(spillover_rings=1, cross_excitation=True).fit(ev, grid)
        numba.set_num_threads(max(2, before))
        b = GridHawkes(spillover_rings=1, cross_excitation=True).fit(ev, grid)
    finally:
        numba.set_num_threads(before)
    assert a.log_likelihood_ == b.log_likelihood_
    assert np.array_equal(a.theta_, b.theta_) and np.array_equal(a.mu_, b.mu_)


def test_window_outside_events_and_api(small_two_type):
    df, ev, grid = small_two_type
    inner = rg.HexGrid(grid.cells[: len(grid) // 2], 9)
    m = make_model("GridHawkes", spillover_rings=1, time_window_days=20.0).fit(ev, inner, end=ev.t[0] + 50)
    cell = inner.assign(ev.between(None, ev.t[0] + 50))
    assert m.n_outside_ == int((cell < 0).sum()) > 0
    assert m.fit_start_ == pytest.approx(ev.t[0] + 30)
    in_window = ev.between(ev.t[0] + 30, ev.t[0] + 50)
    assert m.n_events_used_ == int((inner.assign(in_window) >= 0).sum())
    assert m.mu_.shape == (2, len(inner)) and np.ndim(m.theta_) == 0
    assert m.w_[0] + 6 * m.w_[1] == pytest.approx(1.0)
    assert m.get_params()["time_window_days"] == 20.0
    with pytest.raises(LeakageError):
        m.predict(ev.t[0] + 40)
    with pytest.raises(NotFittedError):
        GridHawkes().predict()
    for bad in (dict(spillover_rings=-1), dict(spillover_rings=1.5), dict(tol=0), dict(max_iter=0),
                dict(time_window_days=-3), dict(cross_excitation="yes")):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=name):
            GridHawkes(**bad).fit(ev, grid)


def test_warns_when_not_converged_or_explosive():
    df, ev = _sim(n_days=60, background_rate=5, sigma_m=1, extent_m=2000, seed=4)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GridHawkes(spillover_rings=0, max_iter=2).fit(ev, grid)
    # an accelerating sequence in one cell (t_k = 30 (1 - 0.97^k) days): the intensity keeps
    # growing with the count, an explosive fit
    t = 30 * (1 - 0.97 ** np.arange(150))
    burst = pd.DataFrame({"timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(t, unit="D"),
                          "lat": CENTER[0], "lon": CENTER[1]})
    ev2 = rg.EventSet.from_frame(burst)
    grid2 = rg.HexGrid.from_events(ev2, resolution=9, buffer_rings=0)
    with pytest.warns(ConvergenceWarning, match="branching ratio"):
        m = GridHawkes(spillover_rings=0, min_lag_minutes=0).fit(ev2, grid2)
    assert m.branching_ratio_ >= 1


# --------------------------------------------------------------------------- parameter recovery
def test_recovery_triggering_within_cell():
    """(a) sigma 1 m: spillover_rings=0 (Mohler 2015) recovers theta and omega within 10 %.

    A long window (2000 days at 10 events/day) keeps the small-sample bias of the
    per-cell background MLE (it absorbs clustering, lowering theta) below ~4 %.
    """
    df, ev = _sim(n_days=2000, background_rate=10, theta=0.3, omega=0.2, sigma_m=1, seed=1)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    m = GridHawkes(spillover_rings=0).fit(ev, grid)
    assert m.converged_
    assert m.theta_ == pytest.approx(0.3, rel=0.10)
    assert m.omega_ == pytest.approx(0.2, rel=0.10)
    # background: total rate within 10 % of the simulated 10 events/day
    assert m.mu_.sum() == pytest.approx(10.0, rel=0.10)


def test_recovery_with_spillover_across_cells():
    """(b) sigma = 200 m ~ the res-9 edge: rings=2 recovers theta within 15 %, rings=0 loses most of it."""
    df, ev = _sim(n_days=2000, background_rate=10, theta=0.3, omega=0.2, sigma_m=200, seed=2)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=2)
    m0 = GridHawkes(spillover_rings=0).fit(ev, grid)
    m2 = GridHawkes(spillover_rings=2).fit(ev, grid)
    assert m2.theta_ == pytest.approx(0.3, rel=0.15)
    assert m2.omega_ == pytest.approx(0.2, rel=0.15)
    assert m0.theta_ < 0.6 * 0.3  # the per-cell model misses triggering across edges
    # most offspring land in rings 0-1, a little in ring 2
    prof = m2.spillover_profile_
    assert prof.sum() == pytest.approx(1.0) and prof[2] < prof[1] and prof[0] > 0.1


def test_recovery_cross_excitation_zero_pattern():
    """(c) only A excites B: the fitted matrix is [[~0, 0.4], [~0, ~0]]."""
    df, ev = _sim(n_days=2000, background_rate=10, sigma_m=1, seed=5, categories=["A", "B"],
                  cross_excitation=np.array([[0.0, 0.4], [0.0, 0.0]]))
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    m = GridHawkes(spillover_rings=0, cross_excitation=True).fit(ev, grid)
    th = m.theta_
    assert th.shape == (2, 2)
    assert th[0, 1] == pytest.approx(0.4, rel=0.15)
    assert th[0, 0] < 0.03 and th[1, 0] < 0.03 and th[1, 1] < 0.03
    assert m.omega_ == pytest.approx(0.2, rel=0.15)
    assert m.predict(horizon_days=7).dims == ("category", "cell")


# --------------------------------------------------------------------------- weights, one-incident lag
@pytest.mark.parametrize("own", [0.0, 0.02, 1.0])  # 1.0: most events' own share exceeds the rate (the floor)
@pytest.mark.parametrize("lag", [0.0, 0.3])
@pytest.mark.parametrize("R", [0, 2])
def test_estep_with_weights_and_lag_matches_naive(R, lag, own):
    grid = _holey_grid(seed=3)
    rng = np.random.default_rng(7 + R)
    n, K = 240, 2
    cell = rng.choice(len(grid), n, p=rng.dirichlet(np.ones(len(grid)) * 0.5))
    t = np.round(rng.uniform(0, 30, n) * 8) / 8  # lags of exactly 0.125 k days: ties and pairs at the lag
    typ = rng.integers(0, K, n)
    wt = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0], n)
    mu = rng.uniform(0.001, 0.05, (K, len(grid)))
    theta = rng.uniform(0.05, 0.5, (K, K))
    w = rng.uniform(0.01, 0.3, R + 1)
    got = _kernel_stats(t, cell, typ, grid, R, mu, theta, 0.8, w, wt=wt, lag=lag, own=own)
    D = ring_matrix(grid.cells, R)
    n_in = ring_counts_in_grid(grid.cells, R)
    ref = hawkes_naive(t, cell, typ, D, n_in, mu, theta, 0.8, w, t0=-1.0, T=31.0, wt=wt, lag=lag, own=own)
    assert _rel(got["lam"], ref["lam"]) < 1e-9
    assert np.allclose(got["p_bg"], ref["p_bg"], rtol=1e-9, atol=1e-15)
    if own > 0:  # the own share lowers the background each event sees
        plain = hawkes_naive(t, cell, typ, D, n_in, mu, theta, 0.8, w, t0=-1.0, T=31.0, wt=wt, lag=lag)
        has = wt > 0
        assert (got["lam"][has] < plain["lam"][has]).all()
    assert np.allclose(got["mu_num"], ref["mu_num"], rtol=1e-9, atol=1e-12)
    assert np.allclose(got["trig"], ref["trig"], rtol=1e-9, atol=1e-12)
    assert _rel(got["dt_num"], ref["dt_num"]) < 1e-9
    assert _rel(got["sum_log"], ref["sum_log"]) < 1e-9


def _weighted(df, wt):
    out = df.copy()
    out["w"] = wt
    return out


def test_integer_weights_equal_duplicated_events_and_unit_weights_are_bitwise(small_two_type):
    df, ev, grid = small_two_type
    rng = np.random.default_rng(0)
    k = rng.integers(1, 4, len(df))
    ev_w = rg.EventSet.from_frame(_weighted(df, k), category="category", weight="w")
    ev_dup = rg.EventSet.from_frame(df.loc[df.index.repeat(k)].reset_index(drop=True), category="category",
                                    keep_duplicates=True)  # copies on purpose (duplicates are rejected by default)
    a = GridHawkes(spillover_rings=1, tol=1e-12, max_iter=2000).fit(ev_w, grid)
    b = GridHawkes(spillover_rings=1, tol=1e-12, max_iter=2000).fit(ev_dup, grid)
    assert a.theta_ == pytest.approx(b.theta_, rel=1e-6)
    assert a.omega_ == pytest.approx(b.omega_, rel=1e-6)
    assert np.allclose(a.mu_, b.mu_, rtol=1e-5)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-9)
    assert np.allclose(a.predict(horizon_days=7).values, b.predict(horizon_days=7).values, rtol=1e-5)
    # the weights matter: the unweighted fit differs
    c = GridHawkes(spillover_rings=1, tol=1e-12, max_iter=2000).fit(ev, grid)
    assert abs(c.log_likelihood_ - a.log_likelihood_) > 1.0
    # weight 1 everywhere is the unweighted fit, bit for bit
    ev_1 = rg.EventSet.from_frame(_weighted(df, 1.0), category="category", weight="w")
    for bg in ("cell", "smoothed"):
        u = GridHawkes(spillover_rings=1, background=bg).fit(ev, grid)
        v = GridHawkes(spillover_rings=1, background=bg).fit(ev_1, grid)
        assert u.log_likelihood_ == v.log_likelihood_ and u.theta_ == v.theta_ and u.omega_ == v.omega_
        assert np.array_equal(u.mu_, v.mu_)


def test_min_lag_separates_duplicate_records():
    """Copies of one incident a few minutes apart: with the lag they no longer look like triggering."""
    df, ev = _sim(n_days=300, background_rate=8, theta=0.0001, omega=0.2, sigma_m=1, seed=21)
    rng = np.random.default_rng(1)
    dup = df.sample(frac=0.4, random_state=1).copy()
    dup["timestamp"] = dup["timestamp"] + pd.to_timedelta(rng.uniform(1, 20, len(dup)), unit="min")
    both = pd.concat([df, dup]).sort_values("timestamp").reset_index(drop=True)
    ev2 = rg.EventSet.from_frame(both, category="category")
    grid = rg.HexGrid.from_events(ev2, resolution=9, buffer_rings=1)
    naive = GridHawkes(spillover_rings=0, min_lag_minutes=0).fit(ev2, grid)
    assert naive.theta_ > 0.2 and 1 / naive.omega_ < 0.05  # the copies look like triggering within minutes
    with pytest.warns(ConvergenceWarning, match="collapsed"):
        m = GridHawkes(spillover_rings=0, min_lag_minutes=30).fit(ev2, grid)
    assert m.theta_ < 0.02


# --------------------------------------------------------------------------- smoothed background
def test_smoothed_background_is_positive_and_score_finite_on_empty_cells():
    df, ev = _sim(n_days=120, background_rate=6, theta=0.3, omega=0.3, sigma_m=100, seed=8)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=3)
    end = ev.t[0] + 90
    m = GridHawkes(spillover_rings=1).fit(ev, grid, end=end)
    counts = np.bincount(grid.assign(ev.between(None, end)), minlength=len(grid))
    assert (counts == 0).sum() > 100  # many empty cells
    assert (m.mu_ > 0).all() and np.isfinite(m.mu_).all()
    risk = m.predict(horizon_days=7).values
    assert np.isfinite(risk).all() and (risk > 0).all()
    # empty training cells get at least a share of the grid-wide background
    assert risk[counts == 0].min() > 1e-3 * risk.mean()
    # held-out events in cells without training events (where the per-cell MLE gives -inf)
    held = ev.between(end, None)
    hc = grid.assign(held)
    assert (counts[hc[hc >= 0]] == 0).any()
    assert np.isfinite(m.score(ev))
    cell_mle = GridHawkes(spillover_rings=1, background="cell").fit(ev, grid, end=end)
    assert (cell_mle.mu_ == 0).any()
    assert m.score(ev) > cell_mle.score(ev)
    assert 1 <= m.background_smoothing_rings_ <= 4 and m.background_prior_strength_ > 0


@pytest.mark.parametrize("sigma_m, R", [(1, 0), (200, 2)])
@pytest.mark.parametrize("seed", [4, 11])
def test_recovery_one_year_few_events_per_cell(sigma_m, R, seed):
    """Issue 13: 365 days, 10 background events/day (~20 in all) over 10 km, res 9 (5-7 events per cell),
    theta 0.5, omega 0.5/day, offspring in the parent's cell or displaced 200 m (2 rings).

    Measured on seeds 1-16 (the test runs two): within the cell theta -4.5..+0.1 %, omega -7.3..+6.0 %, all 16
    within 10 %; at 200 m theta -4.1..+5.5 %, omega -12.1..+6.6 %, 15 of 16 (seed 2: omega -12 %). The per-cell
    MLE background absorbs more of the clustering (theta -6..-17 %)."""
    df, ev = _sim(n_days=365, background_rate=10, theta=0.5, omega=0.5, sigma_m=sigma_m, seed=seed)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=R + 1)
    assert len(ev) / len(grid) < 8
    m = GridHawkes(spillover_rings=R).fit(ev, grid)
    assert m.converged_
    assert m.theta_ == pytest.approx(0.5, rel=0.10)
    assert m.omega_ == pytest.approx(0.5, rel=0.10)
    cell_mle = GridHawkes(spillover_rings=R, background="cell").fit(ev, grid)
    assert cell_mle.theta_ < m.theta_ < 0.5 * 1.1  # the per-cell MLE absorbs more of the clustering


@pytest.mark.parametrize("sigma_m, R", [(1, 0), (200, 2)])
@pytest.mark.parametrize("seed", [2, 3])
def test_recovery_issue_setting_slow_triggering(sigma_m, R, seed):
    """Issue 13's own setting: 365 days, ~20 events/day (10 background), res 9, theta 0.5, omega 0.1/day (mean
    delay 10 days), offspring in the parent's cell or displaced 200 m (2 rings): theta and omega within 10 %.

    Measured on seeds 1-16 (the test runs two): within the cell theta -3.1..+7.4 % (mean +2.3), omega -5.7..+7.4 %,
    16 of 16 within 10 %; at 200 m theta -7.4..+12.4 % (mean -0.5), omega -15..+9.7 % (mean +0.1), 14 of 16 (seed 1:
    omega -15 %, seed 9: theta +12 %). With each event's own expected background count counted in full
    (``background_self_weight=1``, the plain EM of before) the background absorbed the slow clusters at 200 m:
    theta -22.6..+0.3 % (mean -14 %), omega +15 % on average, 4 of 16 within 10 %."""
    df, ev = _sim(n_days=365, background_rate=10, theta=0.5, omega=0.1, sigma_m=sigma_m, seed=seed)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=R + 1)
    assert 15 < len(ev) / 365 < 25 and len(ev) / len(grid) < 8
    m = GridHawkes(spillover_rings=R).fit(ev, grid)
    assert m.converged_
    assert m.theta_ == pytest.approx(0.5, rel=0.10)
    assert m.omega_ == pytest.approx(0.1, rel=0.10)
    if R:
        plain = GridHawkes(spillover_rings=R, background_self_weight=1.0).fit(ev, grid)
        assert plain.theta_ < m.theta_  # the plain EM background absorbs part of the clusters


@pytest.mark.parametrize("seed, theta, omega, rate", [(5, 0.3, 0.2, 15.0), (1, 0.5, 0.1, 20.0), (4, 0.5, 0.5, 10.0)])
def test_smoothed_background_does_not_run_away(seed, theta, omega, rate):
    """Issue 13: with the prior strength nu chosen by the marginal of the expected background counts alone
    (their variances left out), EM had an attracting fixed point with nu at its bound, a flat background and
    theta absorbing the spatial variation: theta +70 % / omega -27 % at seed 5 (theta 0.3), +55..+64 % /
    -17..-31 % on 8 of 8 seeds at theta 0.5, omega 0.1, 20/day, and 3 of 6 seeds at omega 0.5. The expected
    marginal (with the counts' Poisson-binomial variances) has no such fixed point on any of 160 fits (5 settings
    of theta, omega and rate, within the cell and 200 m, 16 seeds each: nu 0.68-2.2)."""
    df, ev = _sim(n_days=365, background_rate=rate, theta=theta, omega=omega, sigma_m=200, seed=seed)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        m = GridHawkes(spillover_rings=2).fit(ev, grid)
    assert not [w for w in seen if "prior strength" in str(w.message)]
    assert 0.3 < m.background_prior_strength_ < 5.0
    assert 0.6 * theta < m.theta_ < 1.1 * theta


@pytest.mark.parametrize("theta, omega, rate", [(0.5, 0.1, 20.0), (0.3, 0.2, 15.0)])
def test_slow_triggering_with_displacement_unbiased_over_seeds(theta, omega, rate):
    """Issue 13: 365 days, 200 m displacement (2 rings), mean delays of 5-10 days, res 9: averaged over seeds 1-8
    theta and omega come back without bias (within 5 %), where the plain EM (``background_self_weight=1``)
    is biased low in theta (its background absorbs the slow clusters) and high in omega.

    Measured on seeds 1-16: theta 0.5, omega 0.1, 20/day: theta mean -2.0 % (-10.6..+8.0), omega -0.9 %
    (-7.9..+7.9), 15 of 16 within 10 % on both; plain EM theta -18.5 % (-28.7..-6.6), omega +16 %, none within
    10 %. Theta 0.3, omega 0.2, 15/day: theta -1.6 % (-10.8..+14.8), omega +1.2 % (-19.7..+23.4), 9 of 16 within
    10 % (weaker triggering: a wider spread, not a bias); plain EM theta -18 %, omega +21 %, none within 10 %."""
    new, plain = [], []
    for seed in range(1, 9):
        df, ev = _sim(n_days=365, background_rate=rate, theta=theta, omega=omega, sigma_m=200, seed=seed)
        grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fit that stops at max_iter still counts
            m = GridHawkes(spillover_rings=2).fit(ev, grid)
            p = GridHawkes(spillover_rings=2, background_self_weight=1.0).fit(ev, grid)
        new.append((m.theta_ / theta, m.omega_ / omega))
        plain.append((p.theta_ / theta, p.omega_ / omega))
    new, plain = np.mean(new, axis=0), np.mean(plain, axis=0)
    assert new[0] == pytest.approx(1.0, abs=0.05) and new[1] == pytest.approx(1.0, abs=0.05)
    assert plain[0] < 0.9 and plain[1] > 1.1


def test_recovery_dense_hotspot_city():
    """The benchmark city's settings at 10^5 events (80 per cell): theta against the share of offspring landing
    within one ring of their parent's cell (counted from the simulation), 150 m displacement, 1 ring.

    Measured on seeds 1-3: theta -9.3 / -13.2 / -12.6 %, omega +18 / +12 / +28 % (the test runs seed 1); with the
    plain EM (``background_self_weight=1``) theta was -29 / -34 / -32 % and omega +37..+51 %. So within 15 %, not
    yet within 10 % on every seed (README, Grid Hawkes model)."""
    df, ev = _sim(n_days=365, background_rate=100_000 / 365 * 0.7, theta=0.3, omega=0.2, sigma_m=150,
                  extent_m=10_000, seed=1)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    cell = grid.assign(ev)
    child = df["parent"].to_numpy() >= 0
    parent = df["parent"].to_numpy()[child]
    ids = np.asarray(grid.cells, dtype=np.uint64)
    near = np.array([h3i.grid_distance(a, b) <= 1 for a, b in zip(ids[cell[child]], ids[cell[parent]])])
    theta_within_ring = child.mean() * near.mean()
    assert 0.28 < theta_within_ring < 0.3  # ~97 % of the offspring
    m = GridHawkes(spillover_rings=1).fit(ev, grid)
    assert m.theta_ == pytest.approx(theta_within_ring, rel=0.15)
    assert m.omega_ == pytest.approx(0.2, rel=0.25)


def test_prior_strength_at_its_bound_is_flagged(monkeypatch):
    """A fit whose prior strength nu ends at its upper bound (every cell's background its neighbourhood's mean)
    raises a ConvergenceWarning naming it; the same fit with the usual bound does not. The bound is lowered
    here to put nu on it: on simulated data the expected marginal no longer drives nu there."""
    from riskgrid.models import _hawkes_data, grid_hawkes

    df, ev = _sim(n_days=365, background_rate=10.0, theta=0.5, omega=0.5, sigma_m=200, seed=4)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        m = GridHawkes(spillover_rings=2).fit(ev, grid)
    assert not [w for w in seen if "prior strength" in str(w.message)]
    assert m.background_prior_strength_ > np.exp(-0.5)
    for mod in (_hawkes_data, grid_hawkes):
        monkeypatch.setattr(mod, "_LOG_NU_BOUNDS", (-7.0, -0.5))
    with pytest.warns(ConvergenceWarning, match="prior strength reached its bound"):
        m = GridHawkes(spillover_rings=2).fit(ev, grid)
    assert m.background_prior_strength_ == pytest.approx(np.exp(-0.5), rel=1e-6)


# --------------------------------------------------------------------------- start values, warm start
def _one_cell(n_days, rate, theta, omega, seed):
    df, ev = _sim(n_days=n_days, background_rate=rate, theta=theta, omega=omega, sigma_m=0, extent_m=1,
                  n_hotspots=0, seed=seed)
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=0)
    assert len(grid) == 1
    return ev, grid


@pytest.mark.parametrize("omega, n_days, rate", [(96.0, 6.0, 1000.0), (0.1, 2000.0, 3.0)])
def test_one_cell_converges_from_any_time_scale(omega, n_days, rate):
    """15-minute and 10-day triggering scales (issue 13): with defaults the one-cell fit is within 1e-6 (relative
    log-likelihood) of a tight independent reference: scipy's L-BFGS-B on the exact 1-D likelihood, started at the
    truth. (Plain EM from the same start stopped 4.8e-6 short at the 10-day scale on a flat theta/omega ridge.)"""
    from naive_hawkes import hawkes_1d_loglik_naive
    from scipy.optimize import minimize

    ev, grid = _one_cell(n_days, rate, 0.5, omega, seed=5)
    m = GridHawkes(spillover_rings=0, min_lag_minutes=0).fit(ev, grid)
    assert m.converged_ and m.n_iter_ < 60
    assert m.start_omega_ == pytest.approx(omega, rel=1.0)  # the start is within a factor 2 of the truth
    t = np.sort(ev.t) - m.fit_start_
    T = m.window_days_
    nll = lambda x: -hawkes_1d_loglik_naive(t, T, *np.exp(x))  # noqa: E731
    ref = minimize(nll, np.log([rate, 0.5, omega]), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-9})
    ll_ref = -ref.fun
    assert hawkes_1d_loglik_naive(t, T, float(m.mu_[0, 0]), m.theta_, m.omega_) == pytest.approx(m.log_likelihood_,
                                                                                                   rel=1e-10)
    assert m.log_likelihood_ >= ll_ref - 1e-6 * abs(ll_ref)
    assert m.omega_ == pytest.approx(omega, rel=0.2) and m.theta_ == pytest.approx(0.5, rel=0.15)


@pytest.mark.parametrize("lag", [0.0, 0.05])
@pytest.mark.parametrize("two_types", [False, True])
def test_own_cell_trigger_sums_equal_the_general_estep(small_two_type, lag, two_types):
    """The start values' own-cell trigger sums (per cell and type, one recursion each) equal the general E-step's
    intensities at mu = 0, theta = I on the ring-0 neighbourhood bit for bit, for any number of threads."""
    from riskgrid.models.grid_hawkes import _Prepared

    df, ev, grid = small_two_type
    cell = grid.assign(ev)
    ok = cell >= 0
    K = 2 if two_types else 1
    typ = ev.codes[ok] if two_types else np.zeros(ok.sum(), dtype=np.int64)
    wt = np.random.default_rng(3).integers(1, 3, ok.sum()).astype(float)
    m = GridHawkes(spillover_rings=0)
    nb = m._neighbourhood(grid, 0)
    P = _Prepared(np.round(ev.t[ok], 2), cell[ok], typ, wt, len(grid), K, float(ev.t.min()), nb[0], nb[1])
    ref = m._estep(P, np.zeros((len(grid), K)), np.eye(K), 0.7, np.ones(1), lag)[0]
    for n_threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(n_threads)
        try:
            assert np.array_equal(m._own_cell_trigger_sums(P, 0.7, lag), ref)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("R", [0, 1])
def test_cheaper_start_values_reach_the_same_fit(small_two_type, monkeypatch, R):
    """Issue 17: ranking the start candidates after a few EM steps and, beyond a size, on a stride of cells changes
    only where EM starts: the fit equals the one from the full ranking on every event within the EM tolerance."""
    import riskgrid.models.grid_hawkes as gh

    df, ev, grid = small_two_type
    kw = dict(spillover_rings=R, tol=1e-10, max_iter=1000)
    fits = {}
    for label, rank, most in (("default", gh._START_RANK_STEPS, gh._START_MAX_EVENTS),
                              ("full ranking", gh._START_STEPS, 10**9), ("stride of cells", 5, 300)):
        monkeypatch.setattr(gh, "_START_RANK_STEPS", rank)
        monkeypatch.setattr(gh, "_START_MAX_EVENTS", most)
        fits[label] = GridHawkes(**kw).fit(ev, grid)
    assert len(ev) > 300  # the stride case scored its candidates on a subset
    ref = fits["full ranking"]
    for label in ("default", "stride of cells"):
        m = fits[label]
        assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-8), label
        assert m.theta_ == pytest.approx(ref.theta_, rel=1e-3) and m.omega_ == pytest.approx(ref.omega_, rel=1e-3)
        assert np.allclose(m.predict(horizon_days=7).values, ref.predict(horizon_days=7).values, rtol=1e-3)


def test_warm_start_matches_cold_start(small_two_type):
    """A warm start from the previous window's fit ends at the cold fit's fixed point. On this two-type example
    the smoothed background's prior moves slowly along a ridge, so to tol 1e-9 the warm fit needs as many or more
    EM steps than the cold one (202-421 against 181, by the first window's end); the 52-origin backtest
    benchmark records what warm starts save in practice."""
    df, ev, grid = small_two_type
    e1, e2 = ev.t[0] + 45, ev.t[0] + 52
    warm = GridHawkes(spillover_rings=1, warm_start=True, tol=1e-9, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the first window's fit need not converge
        warm.fit(ev, grid, end=e1)
    warm.fit(ev, grid, end=e2)
    cold = GridHawkes(spillover_rings=1, tol=1e-9, max_iter=1000).fit(ev, grid, end=e2)
    assert warm.converged_ and cold.converged_ and warm.warm_start_used_
    # same fixed point: the likelihood within the EM tolerance, the parameters much closer than 1e-4
    assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-8)
    assert warm.theta_ == pytest.approx(cold.theta_, rel=1e-4)
    assert warm.omega_ == pytest.approx(cold.omega_, rel=1e-4)
    assert np.allclose(warm.predict(horizon_days=7).values, cold.predict(horizon_days=7).values, rtol=1e-4)
    for bad in (dict(background="kde"), dict(min_lag_minutes=-1), dict(warm_start="yes"),
                dict(background_self_weight=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            GridHawkes(**bad).fit(ev, grid)


def test_warm_started_walk_forward_never_worse_than_cold_and_escapes_a_wrong_time_scale(small_two_type):
    """Issue 13: across several origins a warm-started walk-forward reaches the cold fit's log-likelihood or a
    better one. The smoothed background's EM map can have several fixed points (here at the second and third
    origins: theta 0.18 warm, 0.31 cold, the warm one 24 log-likelihood units better), so warm and cold starts
    need not agree; where the fixed point is unique they agree within the EM tolerance. A warm start stuck at
    another time scale (Chicago burglary: modes at ~0.3/day and ~6/day) is caught by the check against the
    data-driven start, and the better fit is kept."""
    df, ev, grid = small_two_type
    warm = GridHawkes(spillover_rings=1, warm_start=True, tol=1e-9, max_iter=500)
    n_same = 0
    for i, end in enumerate(ev.t[0] + np.arange(36.0, 60.0, 6.0)):
        warm.fit(ev, grid, end=end)
        cold = GridHawkes(spillover_rings=1, tol=1e-9, max_iter=500).fit(ev, grid, end=end)
        assert warm.warm_start_used_ == (i > 0) and not cold.warm_start_used_
        assert warm.log_likelihood_ >= cold.log_likelihood_ - 1e-8 * abs(cold.log_likelihood_)
        if warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-8):
            n_same += 1
            assert warm.theta_ == pytest.approx(cold.theta_, rel=1e-3)
            assert warm.omega_ == pytest.approx(cold.omega_, rel=1e-3)
    assert n_same >= 2
    # the previous optimum at a wrong time scale (x 100) and one EM step: the data-driven start wins
    key, (mu, theta, omega, w, nu) = warm._warm
    warm._warm = (key, (mu, theta, omega * 100.0, w, nu))
    warm.set_params(max_iter=1)
    with pytest.warns(ConvergenceWarning):
        warm.fit(ev, grid, end=end)
    assert not warm.warm_start_used_ and warm.omega_ < 10 * cold.omega_


def test_too_many_categories_refused_before_any_work():
    """Issue 15: thousands of categories ran out of memory / time; now refused up front, naming the settings."""
    import riskgrid as rg
    from riskgrid.models import GridHawkes
    from riskgrid.models.grid_hawkes import MAX_CATEGORIES

    df = rg.simulate(n_days=30, background_rate=20, seed=1, start="2020-01-01")
    df["category"] = [f"c{i % (MAX_CATEGORIES + 1)}" for i in range(len(df))]
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=9)
    with pytest.raises(ValueError, match=r"categories is more than it accepts.*target"):
        GridHawkes().fit(ev, grid)
