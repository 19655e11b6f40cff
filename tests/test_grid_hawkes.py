"""GridHawkes: kernels against the O(N^2) reference, M-step fixed points, recovery on simulated data."""

from __future__ import annotations


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


def _kernel_stats(t, cell, typ, grid, R, mu, theta, omega, w):
    """Run build_streams + hawkes_estep directly on arrays (events sorted by (cell, time))."""
    n_cells = len(grid)
    K = theta.shape[0]
    order = np.lexsort((t, cell))
    ts, cs, ks = t[order], cell[order], typ[order].astype(np.int64)
    counts = np.bincount(cs, minlength=n_cells)
    cell_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    nb_ptr, nb_idx, nb_ring = (np.ascontiguousarray(a, dtype=np.int64) for a in grid.neighbours(R))
    sp, st, sc = build_streams(ts, ks, cell_ptr, nb_ptr, nb_idx, nb_ring, K)
    chunk_ptr = np.array([0, n_cells // 3, n_cells // 2, n_cells], dtype=np.int64)
    nch = chunk_ptr.size - 1
    lam = np.empty(t.size)
    mu_num = np.zeros((n_cells, K))
    trig = np.zeros((nch, R + 1, K, K))
    dtn = np.zeros(nch)
    ll = np.zeros(nch)
    hawkes_estep(cell_ptr, ks, sp, st, sc, chunk_ptr, np.ascontiguousarray(mu.T), theta, omega, w,
                 lam, mu_num, trig, dtn, ll)
    lam_orig = np.empty_like(lam)
    lam_orig[order] = lam
    return dict(lam=lam_orig, mu_num=mu_num.T, trig=trig.sum(0), dt_num=dtn.sum(), sum_log=ll.sum())


def _sim(**kw):
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
    m = GridHawkes(spillover_rings=1, cross_excitation=cross, tol=1e-13, max_iter=3000).fit(ev, grid)
    assert m.converged_
    t, cell, typ, D, n_in, th = _naive_fitted(m, ev, grid, m.fit_start_, m.fit_end_ + 1e-9)
    T, t0 = m.fit_end_, m.fit_start_

    def ll(mu=m.mu_, theta=th, omega=m.omega_, w=m.w_):
        return hawkes_naive(t, cell, typ, D, n_in, mu, theta, omega, w, t0, T)["loglik"]

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
        m = GridHawkes(spillover_rings=1, edge_correction=edge, tol=1e-14, max_iter=5000).fit(ev, grid)
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
    m = GridHawkes(spillover_rings=1, cross_excitation=True).fit(ev, grid, end=end)
    t, cell, typ, D, n_in, th = _naive_fitted(m, ev, grid, m.fit_start_, end)
    start, h = end + 2.0, 3.5
    risk = m.predict(start, horizon_days=h)
    ref = predict_naive(t, cell, typ, D, m.mu_, th, m.omega_, m.w_, start, h)
    assert risk.dims == ("category", "cell")
    assert list(risk.category.values) == ["A", "B"]
    assert np.allclose(risk.values, ref, rtol=1e-10)
    assert risk.attrs["model"] == "GridHawkes" and "omega_per_day" in risk.attrs
    # held-out log-likelihood: naive intensities over train + test, integral over [end, last test event]
    # held-out events in cells with a training background (elsewhere lambda can be 0: score -inf)
    c_all = grid.assign(ev)
    seen = np.zeros(len(grid), bool)
    seen[cell] = True
    ok = (c_all >= 0) & (ev.t >= m.fit_start_) & ((ev.t < end) | seen[np.maximum(c_all, 0)])
    test_ev = rg.EventSet.from_frame(ev.to_frame()[ok & (ev.t >= end)], category="category")
    sc = m.score(test_ev)
    assert np.isfinite(sc)
    ta, ca, ka = ev.t[ok], c_all[ok], ev.codes[ok]
    b = ta.max()
    full = hawkes_naive(ta, ca, ka, D, n_in, m.mu_, th, m.omega_, m.w_, m.fit_start_, b)
    is_test = ta >= end
    m_cell = n_in @ m.w_
    f = np.exp(-m.omega_ * np.maximum(end - ta, 0)) - np.exp(-m.omega_ * (b - ta))
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
        m = GridHawkes(spillover_rings=0).fit(ev2, grid2)
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
