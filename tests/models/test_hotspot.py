"""Baseline hotspot models and their kernels (against tests/naive_hotspot.py)."""

import numpy as np
import pandas as pd
import pytest
from h3.api import numpy_int as h3i

import riskgrid as rg
from riskgrid.geo import LocalProjection
from riskgrid.kernels.hotspot import cell_week_scores, kde_density, ring_weighted_sum
from riskgrid.models import CountHotspot, KDEHotspot, ProspectiveHotspot, available_models, make_model

import naive_hotspot as nh


# ----------------------------------------------------------------- kernels
@pytest.mark.parametrize("kind,cut_h", [(0, 4.0), (1, 1.0), (0, 1.5)])
@pytest.mark.parametrize("max_bins", [4_000_000, 7])
def test_kde_kernel_matches_naive_random(rng, kind, cut_h, max_bins):
    n, m, h = 400, 250, 150.0
    ex, ey = rng.uniform(0, 3000, (2, n))
    ex[:50] = ex[0]  # many events at one point (ties)
    ey[:50] = ey[0]
    ew = rng.uniform(0, 3, n)
    qx, qy = rng.uniform(-800, 3800, (2, m))  # some queries outside the events' extent
    qx[0], qy[0] = ex[0], ey[0]
    got = kde_density(ex, ey, ew, qx, qy, h, kind, h * cut_h, max_bins)
    ref = nh.kde_density(ex, ey, ew, qx, qy, h, kind, h * cut_h)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-18)
    assert (got > 0).any() and (got == 0).any()


def test_kde_kernel_edge_cases():
    ex = np.array([0.0, 100.0])
    ey = np.zeros(2)
    ew = np.ones(2)
    # a query exactly at the cutoff from the second event is kept (r <= cutoff)
    qx = np.array([200.0, 1e6])
    qy = np.zeros(2)
    got = kde_density(ex, ey, ew, qx, qy, 50.0, 0, 100.0, 1000)
    ref = nh.kde_density(ex, ey, ew, qx, qy, 50.0, 0, 100.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[0] == pytest.approx(np.exp(-2.0) / (2 * np.pi * 2500.0))
    assert got[1] == 0.0
    empty = np.zeros(0)
    assert (kde_density(empty, empty, empty, qx, qy, 50.0, 0, 200.0, 1000) == 0).all()
    assert kde_density(ex, ey, ew, empty, empty, 50.0, 1, 50.0, 1000).size == 0


@pytest.mark.parametrize("kind,cut", [(0, 4 * 40.0), (1, 40.0)])
def test_kde_kernels_integrate_to_one(kind, cut):
    g = np.arange(-200.0, 200.0, 2.0) + 1.0
    qx, qy = (a.ravel() for a in np.meshgrid(g, g))
    d = kde_density(np.zeros(1), np.zeros(1), np.ones(1), qx, qy, 40.0, kind, cut, 1000)
    assert d.sum() * 4.0 == pytest.approx(1.0, abs=2e-3)


def _small_grid():
    centre = h3i.latlng_to_cell(41.85, -87.65, 9)
    return rg.HexGrid(np.asarray(h3i.grid_disk(centre, 4), dtype=np.uint64)[:-7], 9)  # ragged edge


def _dense_rings(grid):
    n = len(grid)
    d = np.full((n, n), -1, dtype=np.int64)
    for i in range(n):
        for j in range(n):
            d[i, j] = h3i.grid_distance(int(grid.cells[i]), int(grid.cells[j]))
    return d


def test_prospective_kernels_match_naive(rng):
    grid = _small_grid()
    dense = _dense_rings(grid)
    n_ev = 300
    cell = rng.integers(-1, len(grid), n_ev)  # -1: outside the grid
    t = rng.uniform(0, 100, n_ev)
    w = rng.uniform(0.5, 2, n_ev)
    start = 100.0
    for k, weeks in [(0, 3), (1, 8), (3, 20)]:
        age = np.floor((start - t) / 7.0).astype(np.int64)
        s = cell_week_scores(cell, age, w, len(grid), weeks)
        indptr, indices, ring = grid.neighbours(k)
        got = ring_weighted_sum(s, indptr, indices, ring, k)
        ref = nh.prospective_scores(cell, t, w, start, dense, k, weeks)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
        # a larger neighbour list truncated at k gives the same answer
        indptr, indices, ring = grid.neighbours(k + 1)
        np.testing.assert_allclose(ring_weighted_sum(s, indptr, indices, ring, k), ref, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------- models
def _frame(lat, lon, days, start="2024-01-01"):
    return pd.DataFrame(
        {"timestamp": pd.Timestamp(start) + pd.to_timedelta(np.asarray(days), unit="D"), "lat": lat, "lon": lon}
    )


def test_registry_and_params():
    assert {"CountHotspot", "KDEHotspot", "ProspectiveHotspot"} <= set(available_models())
    m = make_model("KDEHotspot", bandwidth_m=150, kernel="quartic")
    assert m.get_params() == {"bandwidth_m": 150, "window_days": 365.0, "kernel": "quartic"}
    m = make_model("ProspectiveHotspot", bandwidth_rings=2, window_weeks=4)
    assert not hasattr(m, "neighbours_")  # __init__ stores parameters only


@pytest.mark.parametrize(
    "model,match",
    [
        (KDEHotspot(bandwidth_m=0), "bandwidth_m"),
        (KDEHotspot(bandwidth_m=float("nan")), "bandwidth_m"),
        (KDEHotspot(kernel="epanechnikov"), "kernel"),
        (KDEHotspot(window_days=-1), "window_days"),
        (ProspectiveHotspot(bandwidth_rings=-1), "bandwidth_rings"),
        (ProspectiveHotspot(bandwidth_rings=1.5), "bandwidth_rings"),
        (ProspectiveHotspot(window_weeks=0), "window_weeks"),
        (ProspectiveHotspot(distance="metres"), "distance"),
    ],
)
def test_bad_parameters_raise_at_fit(sim_city, model, match):
    _, events, grid = sim_city
    with pytest.raises(ValueError, match=match):
        model.fit(events, grid)


def test_count_hotspot_counts_window(sim_city):
    _, events, grid = sim_city
    end = events.t[0] + 100
    m = CountHotspot(window_days=30).fit(events, grid, end=end)
    cell = grid.assign(events)
    use = (events.t >= end - 30) & (events.t < end) & (cell >= 0)
    ref = np.bincount(cell[use], minlength=len(grid)) / 30.0 * 7
    np.testing.assert_allclose(m.predict(end, 7).values, ref)


def test_kde_model_matches_naive_on_grid(sim_city):
    _, events, grid = sim_city
    end = events.t[0] + 60
    m = KDEHotspot(bandwidth_m=150, window_days=20, kernel="quartic").fit(events, grid, end=end)
    ev = events.between(end - 20, end)
    cell = grid.assign(ev)
    x, y = ev.xy(grid.projection)
    ok = cell >= 0
    qx, qy = grid.centroids_xy
    dens = nh.kde_density(x[ok], y[ok], ev.weight[ok], qx, qy, 150.0, 1, 150.0)
    ref = dens * grid.area_m2 / 20.0 * 3.0
    risk = m.predict(end, 3)
    np.testing.assert_allclose(risk.values, ref, rtol=1e-10, atol=1e-15)
    assert risk.attrs["model"] == "KDEHotspot" and risk.dims == ("cell",)


def test_kde_recovers_gaussian_hotspot():
    """One Gaussian hotspot (sd 400 m), no triggering: KDE with h = 200 m should give
    N / T * area / (2 pi (sd² + h²)) at the centre (within 15 %), put its maximum
    within 300 m of the true centre, and keep >= 95 % of the mass on the grid."""
    sd, h, rate, days = 400.0, 200.0, 10.0, 100
    df = rg.simulate(n_days=days, background_rate=rate, theta=0.0, n_hotspots=1, hotspot_sd_m=sd,
                     uniform_fraction=0.0, seed=3)
    events = rg.EventSet.from_frame(df)
    grid = rg.HexGrid.from_events(events, resolution=9, buffer_rings=2)
    m = KDEHotspot(bandwidth_m=h, window_days=days).fit(events, grid, end=days + events.t[0] - df.t_days.iloc[0])
    risk = m.predict(None, 1.0).values  # events per day per cell
    sim = df.attrs["simulation"]
    hx, hy = sim["hotspots_xy_m"][0]
    lat, lon = LocalProjection(*sim["center"]).inverse(np.array([hx]), np.array([hy]))
    cx, cy = grid.projection.forward(lat, lon)
    qx, qy = grid.centroids_xy
    dist = np.hypot(qx - cx[0], qy - cy[0])
    j = int(np.argmin(dist))
    n = len(events)
    expected_centre = n / days * grid.area_m2[j] / (2 * np.pi * (sd**2 + h**2))
    assert risk[j] == pytest.approx(expected_centre, rel=0.15)
    assert dist[int(np.argmax(risk))] < 300.0
    assert 0.95 * n / days < risk.sum() <= 1.02 * n / days


def test_count_recovers_uniform_rate():
    """Uniform Poisson city (10 km square): mean forecast per interior cell =
    rate * cell area / 1e8 m² * horizon, within 5 %."""
    rate, days = 60.0, 120
    df = rg.simulate(n_days=days, background_rate=rate, theta=0.0, n_hotspots=0, extent_m=10_000, seed=5)
    events = rg.EventSet.from_frame(df)
    grid = rg.HexGrid.from_events(events, resolution=9, buffer_rings=0)
    end = events.t[0] - df.t_days.iloc[0] + days
    qx, qy = grid.centroids_xy
    lat, lon = grid.centroids_latlon
    sx, sy = LocalProjection(*df.attrs["simulation"]["center"]).forward(lat, lon)
    inner = (np.abs(sx) < 4000) & (np.abs(sy) < 4000)
    for model in (CountHotspot(window_days=days), KDEHotspot(bandwidth_m=300, window_days=days)):
        risk = model.fit(events, grid, end=end).predict(end, 7.0).values
        expected = rate * grid.area_m2[inner] / 1e8 * 7.0
        assert risk[inner].mean() == pytest.approx(expected.mean(), rel=0.05), type(model).__name__


def test_prospective_model_weights_and_normalisation(rng):
    grid = _small_grid()
    lat, lon = grid.centroids_latlon
    n = 200
    pick = rng.integers(0, len(grid), n)
    days = rng.uniform(0, 70, n)
    events = rg.EventSet.from_frame(_frame(lat[pick], lon[pick], days))
    end = events.t.max() + 1e-3
    m = ProspectiveHotspot(bandwidth_rings=2, window_weeks=6).fit(events, grid, end=end)
    dense = _dense_rings(grid)
    cell = grid.assign(events)
    for start in (end, end + 10.0):  # weeks are counted at predict time
        ref = nh.prospective_scores(cell, events.t, events.weight, start, dense, 2, 6)
        np.testing.assert_allclose(m.scores(start), ref, rtol=1e-12)
        risk = m.predict(start, 7.0).values
        n_recent = ((events.t >= end - 42) & (cell >= 0)).sum()
        assert risk.sum() == pytest.approx(n_recent / 42.0 * 7.0)
        np.testing.assert_allclose(risk / risk.sum(), ref / ref.sum(), rtol=1e-12)
    # later starts age the events: the weights can only fall
    assert (m.scores(end + 30.0) <= m.scores(end) + 1e-12).all()
    with pytest.raises(rg.LeakageError):
        m.predict(end - 5.0, 1.0)


def test_prospective_prefers_recent_events():
    grid = _small_grid()
    lat, lon = grid.centroids_latlon
    # cell 0: 3 events 6 weeks ago; cell 10: 2 events yesterday
    ev = rg.EventSet.from_frame(_frame(lat[[0, 0, 0, 10, 10]], lon[[0, 0, 0, 10, 10]], [1, 1.1, 1.2, 43, 43.5]))
    m = ProspectiveHotspot(bandwidth_rings=0, window_weeks=8).fit(ev, grid, end=ev.t[-1] + 0.5)
    s = m.scores(None)
    assert s[10] == pytest.approx(2.0) and s[0] == pytest.approx(3.0 / 7.0)
    assert np.argsort(-s, kind="stable")[0] == 10
    assert CountHotspot().fit(ev, grid, end=ev.t[-1] + 0.5).predict(None, 1).values.argmax() == 0


@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 1000])
def test_vectorised_gaussian_sum_equals_math_exp(rng, n):
    from riskgrid.kernels.hotspot import _gaussian_sum

    h, cut = 150.0, 4 * 150.0
    r2 = rng.uniform(0, (1.2 * cut) ** 2, n)
    if n:
        r2[0] = 0.0
    w = rng.uniform(0, 3, n)
    neg = -0.5 / h**2
    ref = sum(wi * np.exp(neg * ri) for wi, ri in zip(w, r2) if ri <= cut**2)
    got = _gaussian_sum(r2.copy(), w.copy(), neg, cut**2)
    assert got == pytest.approx(ref, rel=1e-13, abs=1e-300)
    # each term to a few ulp over the whole range of arguments down to -700
    r2s = np.concatenate([np.linspace(0, 700, 5001), rng.uniform(0, 50, 2000)]) / -neg
    terms = np.array([_gaussian_sum(np.array([v]), np.ones(1), neg, np.inf) for v in r2s])
    np.testing.assert_allclose(terms, np.exp(neg * r2s), rtol=5e-16 * 8, atol=0)
