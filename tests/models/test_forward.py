"""Forward simulation of GridHawkes (forecast intervals): kernel vs a plain-Python reference, seeds,
thread counts, and the calibration of the intervals on data simulated from known parameters."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from h3.api import numpy_int as h3i
from naive_forward import simulate_forward_naive
from naive_hawkes import predict_naive, ring_matrix

import riskgrid as rg
from riskgrid.kernels.forward import simulate_grid_forward
from riskgrid.models import GridHawkes
from riskgrid.models.uncertainty import (
    crps_poisson,
    crps_samples,
    poisson_interval,
    randomized_coverage,
    sample_interval,
    zone_sums,
)

CENTER = (41.85, -87.65)


def _grid(R_disk=2, drop=3, seed=0):
    c = h3i.latlng_to_cell(*CENTER, 9)
    cells = np.asarray(h3i.grid_disk(c, R_disk), dtype=np.uint64)
    keep = np.ones(cells.size, bool)
    keep[np.random.default_rng(seed).choice(np.arange(1, cells.size), drop, replace=False)] = False
    return rg.HexGrid(cells[keep], 9)


def _setup(seed=0):
    grid = _grid()
    rng = np.random.default_rng(seed)
    n_cells, K, R = len(grid), 2, 1
    mu = rng.uniform(0.01, 0.08, (n_cells, K))
    theta = np.array([[0.3, 0.15], [0.05, 0.35]])
    w = np.array([0.4, 0.1])
    omega, lag = 0.7, 0.05
    n_h = 40
    h_t = np.sort(rng.uniform(0.0, 10.0, n_h))
    h_c = rng.integers(0, n_cells, n_h)
    h_k = rng.integers(0, K, n_h)
    h_w = rng.choice([1.0, 2.0], n_h)
    return grid, mu, theta, w, omega, lag, R, (h_t, h_c, h_k, h_w)


def _kernel(grid, mu, theta, w, omega, lag, R, hist, start, H, seeds):
    h_t, h_c, h_k, h_w = hist
    nb_ptr, nb_idx, nb_ring = (np.ascontiguousarray(a, dtype=np.int64) for a in grid.neighbours(R))
    owner = np.repeat(np.arange(len(grid)), np.diff(nb_ptr))
    m_cell = np.bincount(owner, weights=w[nb_ring], minlength=len(grid))
    src = h_t + lag
    share = np.exp(-omega * np.maximum(start - src, 0)) - np.exp(-omega * np.maximum(start + H - src, 0))
    mean = h_w * theta.sum(1)[h_k] * m_cell[h_c] * share
    return simulate_grid_forward(seeds, mu, theta, omega, lag, nb_ptr, nb_idx, nb_ring, w, h_c.astype(np.int64),
                                 h_k.astype(np.int64), mean, np.maximum(start, src), src, start, H)


def test_kernel_matches_naive_reference_in_distribution():
    grid, mu, theta, w, omega, lag, R, hist = _setup()
    start, H = 10.02, 4.0
    n = 3000
    got = _kernel(grid, mu, theta, w, omega, lag, R, hist, start, H, np.arange(n, dtype=np.int64))
    D = ring_matrix(grid.cells, R)
    rng = np.random.default_rng(1)
    ref = np.array([simulate_forward_naive(rng, mu, theta, omega, lag, D, w, *hist, start, H) for _ in range(n)])
    # the analytic mean of the process (the model's point forecast)
    h_t, h_c, h_k, h_w = hist
    exact_first = predict_naive(h_t, h_c, h_k, D, mu.T, theta, omega, w, start, H, wt=h_w, lag=lag)
    assert got.shape == (n, 2, len(grid))
    for sims in (got, ref):
        se = sims.std(axis=0) / np.sqrt(n) + 1e-3
        # the simulations include later generations, so their mean is above the first-generation mean
        assert np.all(sims.mean(axis=0) > exact_first - 5 * se)
    se = np.sqrt(got.var(axis=0) / n + ref.var(axis=0) / n) + 1e-3
    assert np.all(np.abs(got.mean(axis=0) - ref.mean(axis=0)) < 5 * se)
    tot_g, tot_r = got.sum(axis=(1, 2)), ref.sum(axis=(1, 2))
    assert tot_g.mean() == pytest.approx(tot_r.mean(), rel=0.05)
    assert tot_g.var() == pytest.approx(tot_r.var(), rel=0.15)
    p_g, p_r = (got.sum(1) > 0).mean(0), (ref.sum(1) > 0).mean(0)
    assert np.all(np.abs(p_g - p_r) < 0.05)


def test_kernel_deterministic_for_seed_and_thread_count():
    grid, mu, theta, w, omega, lag, R, hist = _setup(seed=3)
    seeds = np.arange(200, dtype=np.int64) * 7919
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = _kernel(grid, mu, theta, w, omega, lag, R, hist, 10.5, 7.0, seeds)
        numba.set_num_threads(max(2, before))
        b = _kernel(grid, mu, theta, w, omega, lag, R, hist, 10.5, 7.0, seeds)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(a, b)
    c = _kernel(grid, mu, theta, w, omega, lag, R, hist, 10.5, 7.0, seeds + 1)
    assert not np.array_equal(a, c)


def test_uncertainty_helpers():
    lo, hi, p = poisson_interval([0.0, 0.5, 20.0], level=0.9)
    assert lo.tolist() == [0, 0, 13] and hi.tolist() == [0, 2, 28]
    assert p[1] == pytest.approx(1 - np.exp(-0.5))
    with pytest.raises(ValueError, match="level"):
        poisson_interval([1.0], level=1.5)
    x = np.random.default_rng(0).poisson(5.0, (20000, 4))
    mean, lo, hi, pa = sample_interval(x, 0.9)
    assert np.allclose(mean, 5.0, rtol=0.02) and (lo == 2).all() and (hi == 9).all()
    assert np.allclose(pa, 1 - np.exp(-5.0), atol=0.01)
    assert zone_sums(np.ones((2, 4)), [0, 1, 1, -1]).tolist() == [[1, 2], [1, 2]]
    # CRPS of samples agrees with the exact Poisson CRPS
    y = np.array([0, 2, 5, 9])
    assert np.allclose(crps_samples(x, y), crps_poisson(np.full(4, 5.0), y), rtol=0.03)
    # a calibrated Poisson forecast has randomized coverage = level
    from scipy import stats
    m = np.random.default_rng(1).uniform(0.05, 3, 40000)
    yy = np.random.default_rng(2).poisson(m)
    cov = randomized_coverage(yy, stats.poisson.cdf(yy - 1, m), stats.poisson.cdf(yy, m), 0.9, seed=3)
    assert cov == pytest.approx(0.9, abs=0.006)


@pytest.fixture(scope="module")
def weekly_fit():
    df = rg.simulate(n_days=500, background_rate=12, theta=0.4, omega=0.3, sigma_m=1, seed=17)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    end = ev.t[0] + 360.0
    m = GridHawkes(spillover_rings=0, min_lag_minutes=0).fit(ev, grid, end=end)
    return ev, grid, m, end


def test_interval_calibration_on_simulated_weeks(weekly_fit):
    """20 weekly forecasts after the fit, conditioned on the events so far: the randomized coverage of
    the 90 % and 50 % intervals over every cell and week is 88-92 % and 48-52 %."""
    ev, grid, m, end = weekly_fit
    cell = grid.assign(ev)
    covered = {0.9: [], 0.5: []}
    n_out = 0
    for wk in range(20):
        s = end + 7.0 * wk
        hist = ev.between(end, s) if wk else None
        samples = m.simulate_forecast(s, 7.0, n_sims=400, seed=wk, events=hist).sum(axis=1)
        inside = (ev.t >= s) & (ev.t < s + 7.0) & (cell >= 0)
        y = np.bincount(cell[inside], minlength=len(grid)).astype(float)
        below = (samples < y[None, :]).mean(axis=0)
        at = (samples <= y[None, :]).mean(axis=0)
        for lev in covered:
            covered[lev].append(randomized_coverage(y, below, at, lev, seed=100 + wk) * y.size)
        n_out += y.size
    assert 0.88 <= sum(covered[0.9]) / n_out <= 0.92
    assert 0.48 <= sum(covered[0.5]) / n_out <= 0.52


def test_predict_interval_dataset_and_zones(weekly_fit):
    ev, grid, m, end = weekly_fit
    zones = np.arange(len(grid)) % 5
    ds = m.predict_interval(horizon_days=7, level=0.9, n_sims=500, seed=1, zones=zones)
    assert set(ds.data_vars) >= {"risk", "risk_lo", "risk_hi", "p_any", "zone_risk", "zone_lo", "zone_hi", "zone_p_any"}
    assert np.allclose(ds.risk.values, m.predict(horizon_days=7).values)
    assert (ds.risk_lo <= ds.risk_hi).all() and ((ds.p_any >= 0) & (ds.p_any <= 1)).all()
    assert ds.zone_risk.size == 5 and (ds.zone_lo <= ds.zone_risk + 1e-9).all() and (ds.zone_hi >= ds.zone_lo).all()
    again = m.predict_interval(horizon_days=7, level=0.9, n_sims=500, seed=1, zones=zones)
    assert ds.identical(again)
    with pytest.raises(ValueError, match="n_sims"):
        m.predict_interval(n_sims=0)
    with pytest.raises(rg.errors.LeakageError):
        m.simulate_forecast(end - 3.0, 7.0)


# ----------------------------------------------------------------------------------------------------------------
# the default (Poisson) interval of the count models, and the calibration helpers of the backtests


@pytest.fixture(scope="module")
def small_events():
    df = rg.simulate(n_days=120, background_rate=6, theta=0.3, omega=0.3, sigma_m=50, seed=5)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    return ev, grid


@pytest.mark.parametrize("name", ["CountHotspot", "KDEHotspot", "ProspectiveHotspot"])
def test_poisson_predict_interval_of_count_models(small_events, name):
    from scipy import stats

    ev, grid = small_events
    m = rg.models.make_model(name).fit(ev, grid)
    risk = m.predict(horizon_days=7)
    r = risk.sum("category").values if risk.ndim == 2 else risk.values
    zones = np.where(np.arange(len(grid)) % 4 == 3, -1, np.arange(len(grid)) % 3)
    ds = m.predict_interval(horizon_days=7, level=0.8, zones=zones)
    assert ds.attrs["interval_method"] == "poisson" and ds.attrs["interval_level"] == 0.8
    assert ds.attrs["model"] == name and ds.attrs["horizon_days"] == 7.0
    np.testing.assert_array_equal(ds.risk.values, r)
    # naive: scipy's Poisson quantiles cell by cell
    for i in range(0, len(grid), max(1, len(grid) // 25)):
        lo = stats.poisson.ppf(0.1, r[i]) if r[i] > 0 else 0.0
        hi = stats.poisson.ppf(0.9, r[i]) if r[i] > 0 else 0.0
        assert (ds.risk_lo.values[i], ds.risk_hi.values[i]) == (lo, hi)
        assert ds.p_any.values[i] == pytest.approx(1 - np.exp(-r[i]), rel=1e-12)
    # zone interval = Poisson interval of the zone's summed mean (not the sum of the cells' quantiles)
    for z in range(3):
        mz = r[zones == z].sum()
        assert ds.zone_risk.values[z] == pytest.approx(mz, rel=1e-12)
        assert ds.zone_lo.values[z] == stats.poisson.ppf(0.1, mz)
        assert ds.zone_hi.values[z] == stats.poisson.ppf(0.9, mz)
        assert ds.zone_p_any.values[z] == pytest.approx(1 - np.exp(-mz), rel=1e-12)
    assert ds.zone_hi.values.sum() < ds.risk_hi.values[zones >= 0].sum()  # quantiles do not add up


def test_predict_interval_refuses_score_models(small_events):
    ev, grid = small_events
    m = rg.models.make_model("NearRepeat").fit(ev, grid)
    with pytest.raises(TypeError, match="score"):
        m.predict_interval(horizon_days=7)


def test_count_calibration_matches_naive(small_events):
    from scipy import stats

    from riskgrid.models.uncertainty import count_calibration, forecast_samples

    rng = np.random.default_rng(4)
    mean = rng.uniform(0.0, 2.0, 300)
    y = rng.poisson(mean).astype(float)
    out = count_calibration(y, mean=mean, levels=(0.5, 0.9), seed=7)
    v = np.random.default_rng(7).random(y.size)  # naive randomized PIT
    u = np.array([stats.poisson.cdf(k - 1, m) + vv * stats.poisson.pmf(k, m) for k, m, vv in zip(y, mean, v)])
    assert out[0.5] == np.mean((u >= 0.25) & (u <= 0.75))
    assert out[0.9] == np.mean((u >= 0.05) & (u <= 0.95))
    naive_crps = [sum((stats.poisson.cdf(k, m) - (yy <= k)) ** 2 for k in range(60)) for yy, m in zip(y, mean)]
    assert out["crps"] == pytest.approx(np.mean(naive_crps), rel=1e-9)
    x = rng.poisson(mean[None, :], (200, mean.size)).astype(float)
    s = count_calibration(y, samples=x, levels=(0.9,), seed=7)
    u2 = np.array([np.mean(x[:, i] < y[i]) + v[i] * np.mean(x[:, i] == y[i]) for i in range(y.size)])
    assert s[0.9] == np.mean((u2 >= 0.05) & (u2 <= 0.95))
    naive_s = [np.mean(np.abs(x[:, i] - y[i])) - 0.5 * np.mean(np.abs(x[:, i][:, None] - x[:, i][None, :]))
               for i in range(y.size)]
    assert s["crps"] == pytest.approx(np.mean(naive_s), rel=1e-9)
    with pytest.raises(ValueError, match="exactly one"):
        count_calibration(y)
    ev, grid = small_events
    assert forecast_samples(rg.models.make_model("CountHotspot").fit(ev, grid), None, 7.0, 10) is None


def test_forecast_samples_of_gridhawkes_sum_the_target_categories(weekly_fit):
    from riskgrid.models.uncertainty import forecast_samples

    ev, grid, m, end = weekly_fit
    x = forecast_samples(m, None, 7.0, 30, seed=3)
    full = m.simulate_forecast(None, 7.0, n_sims=30, seed=3)
    assert x.shape == (30, len(grid))
    np.testing.assert_array_equal(x, full.sum(axis=1))
