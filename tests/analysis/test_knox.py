"""Knox near-repeat test, the NearRepeat model and the ``riskgrid knox`` CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.spatial import cKDTree
from scipy.stats import spearmanr

import naive_knox as naive
import riskgrid as rg
from conftest import shared_file
from riskgrid.cli import main
from riskgrid.knox import WEIGHTED_TIE_RTOL, KnoxResult, knox_arrays, knox_test, permutation_seeds
from riskgrid.models import NearRepeat, make_model

INF = np.inf


def lattice_events(rng, n, n_sites=60, step_m=50.0, n_days=90):
    """Points on a 50 m lattice (exact distances 50, 100, ... and many repeated sites), integer days."""
    sites = rng.integers(0, 12, size=(n_sites, 2)) * step_m
    pick = rng.integers(0, n_sites, n)
    x = sites[pick, 0] + np.where(rng.random(n) < 0.3, rng.uniform(-20, 20, n), 0.0)
    y = sites[pick, 1]
    t = np.sort(rng.integers(0, n_days, n).astype(float) + np.where(rng.random(n) < 0.3, rng.random(n), 0.0))
    return x, y, t


def events_from_xy(x, y, t, seed=0):
    """EventSet placing metre coordinates around Chicago (exact ties survive the projection)."""
    proj = rg.LocalProjection(41.85, -87.65)
    lat, lon = proj.inverse(np.asarray(x, float), np.asarray(y, float))
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.asarray(t, float), unit="D")
    # repeated sites and days are the point of these tests: keep exact duplicates
    return rg.EventSet.from_frame(pd.DataFrame({"timestamp": ts, "lat": lat, "lon": lon}), keep_duplicates=True)


# --------------------------------------------------------------------------- #
# exactness against the brute-force references
# --------------------------------------------------------------------------- #
SPACE_CASES = [
    [0, 1, 50, 100, 150, 200],
    [0, 1, 50, 100, 150, INF],
    [25, 50, 100, 150, INF],  # pairs closer than the first edge are not counted
    [0, INF],  # everything is "far"
    [50, 100.0],
]
TIME_CASES = [[0, 7, 14, 21, 28], [0, 1, 7, 14, INF], [2, 5, 9.5], [2, 5, 9.5, INF], [3, INF], [0, INF]]


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
@pytest.mark.parametrize("space", SPACE_CASES)
def test_observed_and_simulated_equal_brute_force(metric, space):
    rng = np.random.default_rng(len(space) * 7 + (metric == "manhattan"))
    x, y, t = lattice_events(rng, 400)
    for time in TIME_CASES:
        res = knox_arrays(x, y, t, space, time, n_permutations=6, seed=11, metric=metric)
        ref = naive.knox_table(x, y, t, space, time, metric)
        np.testing.assert_array_equal(res.observed, ref)
        assert res.observed.dtype == np.int64
        seeds, _ = permutation_seeds(11, 6)
        sim = naive.knox_simulated(x, y, t, space, time, seeds, metric)
        np.testing.assert_array_equal(res.simulated, sim)
        np.testing.assert_allclose(res.expected, sim.mean(axis=0))
        p = (1 + (sim >= ref[None]).sum(0)) / 7
        np.testing.assert_allclose(res.p_value, p)


def test_ties_at_band_edges_are_left_closed():
    # two events exactly 100 m and 7 days apart fall in [100, 200) x [7, 14)
    x = np.array([0.0, 100.0, 0.0])
    y = np.array([0.0, 0.0, 0.0])
    t = np.array([0.0, 7.0, 0.0])
    res = knox_arrays(x, y, t, [0, 100, 200], [0, 7, 14], n_permutations=3, seed=0)
    # pairs: (0,1) d=100,g=7 ; (0,2) d=0,g=0 ; (1,2) d=100,g=7
    np.testing.assert_array_equal(res.observed, [[1, 0], [0, 2]])


def test_event_set_path_matches_reference_on_xy():
    rng = np.random.default_rng(3)
    x, y, t = lattice_events(rng, 300)
    ev = events_from_xy(x, y, t)
    ex, ey = ev.xy()
    space, time = [0, 1, 100, 200, INF], [0, 7, 14, 28]
    res = knox_test(ev, space, time, n_permutations=4, seed=5)
    np.testing.assert_array_equal(res.observed, naive.knox_table(ex, ey, ev.t, space, time))
    seeds, _ = permutation_seeds(5, 4)
    np.testing.assert_array_equal(res.simulated, naive.knox_simulated(ex, ey, ev.t, space, time, seeds))
    assert res.n_events == len(ev) and res.n_permutations == 4 and res.seed == 5


def test_same_result_for_any_thread_count_and_progress_batches():
    rng = np.random.default_rng(8)
    x, y, t = lattice_events(rng, 500)
    args = ([0, 1, 100, 200, INF], [0, 7, 14, INF])
    a = knox_arrays(x, y, t, *args, n_permutations=37, seed=2, n_jobs=1)
    b = knox_arrays(x, y, t, *args, n_permutations=37, seed=2, n_jobs=-1, progress=True)
    np.testing.assert_array_equal(a.simulated, b.simulated)
    c = knox_arrays(x, y, t, *args, n_permutations=37, seed=3)
    assert not np.array_equal(a.simulated, c.simulated)


def test_seed_none_records_reproducible_entropy():
    rng = np.random.default_rng(9)
    x, y, t = lattice_events(rng, 200)
    a = knox_arrays(x, y, t, [0, 100, 200], [0, 7, 14], n_permutations=5, seed=None)
    b = knox_arrays(x, y, t, [0, 100, 200], [0, 7, 14], n_permutations=5, seed=a.seed)
    np.testing.assert_array_equal(a.simulated, b.simulated)


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "space, message",
    [
        ([0], "at least 2 edges"),
        ([0, 100, 100], "strictly increasing"),
        ([0, 200, 100], "strictly increasing"),
        ([-1, 100], "non-negative"),
        ([0, INF, 500], "only the last edge may be inf"),
        ([0, np.nan], "NaN"),
        (["a", "b"], "sequence of numbers"),
    ],
)
def test_bad_space_bands_raise_clear_errors(space, message):
    x, y, t = np.zeros(3), np.zeros(3), np.arange(3.0)
    with pytest.raises(ValueError, match=message) as err:
        knox_arrays(x, y, t, space, [0, 7], n_permutations=1)
    assert "space_bands" in str(err.value)


def test_other_bad_arguments():
    x, y, t = np.zeros(3), np.zeros(3), np.arange(3.0)
    with pytest.raises(ValueError, match="time_bands"):
        knox_arrays(x, y, t, [0, 100], [7, 0], n_permutations=1)
    with pytest.raises(ValueError, match="metric"):
        knox_arrays(x, y, t, [0, 100], [0, 7], metric="chebyshev")
    with pytest.raises(ValueError, match="n_permutations"):
        knox_arrays(x, y, t, [0, 100], [0, 7], n_permutations=0)
    with pytest.raises(ValueError, match="n_jobs"):
        knox_arrays(x, y, t, [0, 100], [0, 7], n_permutations=1, n_jobs=999)
    with pytest.raises(ValueError, match="at least 2 events"):
        knox_arrays(x[:1], y[:1], t[:1], [0, 100], [0, 7], n_permutations=1)
    with pytest.raises(ValueError, match="t_days has 1 non-finite"):
        knox_arrays(x, y, np.array([0, np.nan, 1]), [0, 100], [0, 7], n_permutations=1)
    with pytest.raises(TypeError, match="EventSet"):
        knox_test(pd.DataFrame(), [0, 100], [0, 7])


# --------------------------------------------------------------------------- #
# statistics on simulated data
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def triggered():
    df = rg.simulate(n_days=200, background_rate=12, theta=0.5, omega=0.2, sigma_m=100, uniform_fraction=1.0, seed=21)
    return df, rg.EventSet.from_frame(df, category="category")


def test_near_repeat_positive_data_gives_significant_near_early_ratios(triggered):
    _, ev = triggered
    res = knox_test(ev, [0, 100, 200, 300, 400, INF], [0, 7, 14, 21, 28, INF], n_permutations=199, seed=1)
    for s, b in [(0, 0), (0, 1), (1, 0)]:
        assert res.ratio[s, b] > 1.2, res
        assert res.p_value[s, b] < 0.01, res
    # far-apart pairs are not affected by triggering: ratio ~ 1
    assert abs(res.ratio[-1, -1] - 1) < 0.02


def test_knox_excess_recovers_the_simulated_triggered_pairs(triggered):
    """O - E in each band equals the related pairs (same family tree) minus their share under permutation.

    Unrelated pairs have independent times (homogeneous Poisson background),
    so permuting times changes only the related pairs: E ~ U + R_s F_b and
    O - E ~ R[s, b] - R_s F_b, where R_s are the related pairs of space band
    s and F_b the fraction of all pairs in time band b. Tolerance: 4 sd of a
    Poisson count of E plus 5 % of the related pairs.
    """
    df, ev = triggered
    space, time = np.array([0, 100, 200, 400.0]), np.array([0, 7, 14, 28, 56.0])
    res = knox_test(ev, space, time, n_permutations=99, seed=4)
    parent = df["parent"].to_numpy()
    root = np.arange(parent.size)
    while True:
        up = parent[root]
        nxt = np.where(up >= 0, up, root)
        if np.array_equal(nxt, root):
            break
        root = nxt
    root = root[np.asarray(ev.index)]  # EventSet order
    x, y = ev.xy()
    pairs = cKDTree(np.c_[x, y]).query_pairs(r=space[-1], output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(x[i] - x[j], y[i] - y[j])
    g = np.abs(ev.t[i] - ev.t[j])
    rel = root[i] == root[j]
    s = naive.band_index(d, space)
    b = naive.band_index(g, time)
    R = np.zeros((3, 4))
    ok = rel & (s >= 0) & (b >= 0)
    np.add.at(R, (s[ok], b[ok]), 1)
    R_s = np.bincount(s[rel & (s >= 0)], minlength=3)
    ts = np.sort(ev.t)
    below = np.array([(np.searchsorted(ts, ts + e, side="left") - np.arange(ts.size) - 1).sum() for e in time])
    F = np.diff(below) / (ts.size * (ts.size - 1) / 2)
    predicted = R - R_s[:, None] * F[None, :]
    excess = res.observed - res.expected
    tol = 4 * np.sqrt(res.expected) + 0.05 * R
    assert R[0, 0] > 200  # the test has power: many triggered pairs near and early
    assert (np.abs(excess - predicted) <= tol).all(), (excess, predicted, tol)


def test_p_values_roughly_uniform_without_triggering():
    pvals = []
    for seed in range(4):
        df = rg.simulate(n_days=150, background_rate=10, theta=0.0, uniform_fraction=1.0, extent_m=4000, seed=100 + seed)
        ev = rg.EventSet.from_frame(df, category="category")
        res = knox_test(ev, [0, 100, 200, 300, 400], [0, 7, 14, 21, 28], n_permutations=99, seed=seed)
        pvals.append(res.p_value.ravel())
    p = np.concatenate(pvals)
    assert p.size == 4 * 16
    assert 0.38 < p.mean() < 0.62, p
    assert (p <= 0.05).mean() < 0.15, p
    assert (p <= 0.5).mean() < 0.7, p


# --------------------------------------------------------------------------- #
# result object
# --------------------------------------------------------------------------- #
def test_frame_xarray_and_repr():
    rng = np.random.default_rng(5)
    x, y, t = lattice_events(rng, 300)
    res = knox_arrays(x, y, t, [0, 1, 100, 200, INF], [0, 7, 14, INF], n_permutations=19, seed=0)
    df = res.to_frame()
    assert len(df) == 4 * 3
    assert df["space_band"].tolist()[:3] == ["0–1 m"] * 3
    assert set(df["space_band"]) == {"0–1 m", "1–100 m", "100–200 m", "≥ 200 m"}
    assert df["time_band"].tolist()[:3] == ["0–7 days", "7–14 days", "≥ 14 days"]
    np.testing.assert_array_equal(df["observed"].to_numpy().reshape(4, 3), res.observed)
    ds = res.to_xarray()
    assert ds["ratio"].dims == ("space_band", "time_band")
    np.testing.assert_array_equal(ds["observed"].values, res.observed)
    assert ds.attrs["n_permutations"] == 19
    text = repr(res)
    assert "≥ 200 m" in text and "0–7 days" in text and "19 permutations" in text
    # ratio NaN exactly where expected is 0
    assert (np.isnan(res.ratio) == (res.expected == 0)).all()
    assert (res.p_value > 0).all() and (res.p_value <= 1).all()


# --------------------------------------------------------------------------- #
# NearRepeat model
# --------------------------------------------------------------------------- #
def fake_knox(space, time, rng, metric="euclidean"):
    ns, nt = len(space) - 1, len(time) - 1
    ratio = rng.uniform(0.5, 3.0, (ns, nt))
    p = rng.choice([0.001, 0.2], size=(ns, nt))
    obs = np.round(ratio * 10).astype(np.int64)
    return KnoxResult(
        observed=obs, expected=obs / ratio, ratio=ratio, p_value=p, simulated=np.zeros((1, ns, nt), np.int64),
        space_edges=np.asarray(space, float), time_edges=np.asarray(time, float), n_events=100,
        n_permutations=999, seed=0, metric=metric,
    )


@pytest.fixture(scope="module")
def small_city():
    df = rg.simulate(n_days=120, background_rate=10, theta=0.5, omega=0.2, sigma_m=100, extent_m=5000, seed=3)
    ev = rg.EventSet.from_frame(df, category="category")
    return df, ev, rg.HexGrid.from_events(ev, resolution=9)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
@pytest.mark.parametrize(
    "space, time",
    [([0, 100, 200, 400], [0, 7, 14, 28]), ([50, 150, 300, INF], [0, 3, 10, INF]), ([0, INF], [0, 14])],
)
def test_near_repeat_risk_equals_brute_force(small_city, metric, space, time):
    _, ev, grid = small_city
    knox = fake_knox(space, time, np.random.default_rng(len(space)), metric)
    model = NearRepeat.from_knox(knox, alpha=0.05).fit(ev, grid, end="2024-03-15")
    assert model.knox_ is knox
    start = model.fit_end_ + 0.5
    risk = model.predict(start=start, horizon_days=7)
    used = ev.between(None, "2024-03-15")
    ex, ey = used.xy(grid.projection)
    cx, cy = grid.centroids_xy
    excess = np.where(knox.p_value < 0.05, knox.ratio - 1, 0.0)
    ref = naive.near_repeat_risk(cx, cy, ex, ey, used.t, start, space, time, excess, metric)
    np.testing.assert_allclose(risk.values, ref, rtol=1e-9, atol=1e-9)
    assert risk.attrs["model"] == "NearRepeat" and "Knox" in risk.attrs["units"]


def test_near_repeat_fit_runs_knox_and_recovers_trigger_profile(small_city):
    df, ev, grid = small_city
    model = make_model(
        "NearRepeat", space_bands=[0, 100, 200, 400, 800], time_bands=[0, 7, 14, 28, 56], n_permutations=99, seed=1
    )
    model.fit(ev, grid)
    ex = model.excess_
    # triggering (sigma 100 m, mean delay 5 days) shows up near and early only
    assert ex[0, 0] > 0.3 and ex[1, 0] > 0.1
    assert ex[0, 0] > ex[0, 2] and ex[0, 0] > ex[2, 0]
    assert np.all(np.abs(ex[3, :]) < 0.1) and np.all(np.abs(ex[:, 3]) < 0.15)
    # the score ranks cells like the true triggering intensity at the forecast start
    start = model.last_event_ + 1e-6
    risk = model.predict(start=start, horizon_days=1).values
    x, y = ev.xy(grid.projection)
    cx, cy = grid.centroids_xy
    sim = df.attrs["simulation"]
    theta, omega, sigma = sim["theta"], sim["omega_per_day"], sim["sigma_m"]
    dt = start - ev.t
    recent = dt < 56
    d2 = (cx[:, None] - x[recent][None, :]) ** 2 + (cy[:, None] - y[recent][None, :]) ** 2
    truth = (theta * omega * np.exp(-omega * dt[recent])[None, :] * np.exp(-d2 / (2 * sigma**2)) / (2 * np.pi * sigma**2)).sum(1)
    rho = spearmanr(risk, truth).statistic
    assert rho > 0.6, rho


def test_near_repeat_parameter_errors(small_city):
    _, ev, grid = small_city
    with pytest.raises(ValueError, match="alpha"):
        NearRepeat(alpha=0).fit(ev, grid)
    with pytest.raises(ValueError, match="space_bands"):
        NearRepeat(space_bands=[0]).fit(ev, grid)
    with pytest.raises(TypeError, match="KnoxResult"):
        NearRepeat.from_knox("table")
    with pytest.raises(rg.LeakageError):
        NearRepeat.from_knox(fake_knox([0, 100], [0, 7], np.random.default_rng(0))).fit(ev, grid).predict(start="2024-01-02")


# --------------------------------------------------------------------------- #
# CLI and real data
# --------------------------------------------------------------------------- #
def test_cli_prints_table_and_writes_csv_png(tmp_path, small_city):
    df, _, _ = small_city
    path = tmp_path / "ev.csv"
    df.assign(category=np.where(np.arange(len(df)) % 2, "BURGLARY", "THEFT")).to_csv(path, index=False)
    out_csv, out_png = tmp_path / "k.csv", tmp_path / "k.png"
    r = CliRunner().invoke(
        main,
        ["knox", str(path), "--space", "0,1,100,200,inf", "--time", "0,7,14", "--category", "BURGLARY",
         "--permutations", "19", "--csv", str(out_csv), "--png", str(out_png), "-q"],
    )
    assert r.exit_code == 0, r.output
    assert "1–100 m" in r.output and "0–7 days" in r.output and "19 permutations" in r.output
    table = pd.read_csv(out_csv)
    assert len(table) == 4 * 2 and table["observed"].sum() > 0
    assert out_png.stat().st_size > 1000
    r = CliRunner().invoke(main, ["knox", str(path), "--space", "0,200,100", "-q", "--permutations", "3"])
    assert r.exit_code != 0 and "strictly increasing" in r.output
    r = CliRunner().invoke(main, ["knox", str(path), "--category", "ARSON", "-q"])
    assert r.exit_code != 0 and "unknown categories" in r.output


@pytest.mark.realdata
def test_chicago_burglary_month_matches_brute_force():
    ev = rg.read_events(shared_file("chicago_2016_2017.parquet"), category="category")
    ev = ev.select("BURGLARY").between("2016-01-01", "2016-02-01")
    x, y = ev.xy()
    space, time = [0, 1, 100, 200, 400, INF], [0, 7, 14, 28, INF]
    res = knox_test(ev, space, time, n_permutations=9, seed=0)
    np.testing.assert_array_equal(res.observed, naive.knox_table(x, y, ev.t, space, time))
    assert res.observed[0].sum() > 0  # block-level points: many "same location" pairs


def test_blocked_reference_equals_simple_reference():
    rng = np.random.default_rng(12)
    x, y, t = lattice_events(rng, 700)
    for metric in ("euclidean", "manhattan"):
        a = naive.knox_table(x, y, t, [0, 1, 100, INF], [0, 7, INF], metric)
        b = naive.knox_table_blocked(x, y, t, [0, 1, 100, INF], [0, 7, INF], metric, block=64)
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- #
# weighted pair counts (issue 13)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
@pytest.mark.parametrize("space", SPACE_CASES)
def test_weighted_tables_equal_weighted_brute_force(metric, space):
    rng = np.random.default_rng(len(space) * 13 + (metric == "manhattan"))
    x, y, t = lattice_events(rng, 300)
    w = rng.uniform(0, 3, t.size) * (rng.random(t.size) < 0.9)  # some zero weights
    seeds, _ = permutation_seeds(4, 5)
    for time in TIME_CASES:
        res = knox_arrays(x, y, t, space, time, n_permutations=5, seed=4, metric=metric, weights=w)
        assert res.weighted and res.observed.dtype == np.float64
        ref = naive.knox_table_weighted(x, y, t, w, space, time, metric)
        sim = naive.knox_simulated_weighted(x, y, t, w, space, time, seeds, metric)
        np.testing.assert_allclose(res.observed, ref, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(res.simulated, sim, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(res.expected, sim.mean(axis=0), rtol=1e-10, atol=1e-9)
        # p-values from the reference tables, ties within WEIGHTED_TIE_RTOL of the total pair weight
        tol = WEIGHTED_TIE_RTOL * 0.5 * (w.sum() ** 2 - (w * w).sum())
        ge = (sim >= ref[None] - tol).sum(0)
        np.testing.assert_allclose(res.p_value, (1 + ge) / 6)


def test_weights_one_reproduce_the_unweighted_test_exactly():
    rng = np.random.default_rng(21)
    x, y, t = lattice_events(rng, 500)
    for space, time in [([0, 1, 100, 200, INF], [0, 7, 14, INF]), ([25, 50, 100], [2, 5, 9.5])]:
        a = knox_arrays(x, y, t, space, time, n_permutations=23, seed=6)
        b = knox_arrays(x, y, t, space, time, n_permutations=23, seed=6, weights=np.ones(t.size))
        np.testing.assert_array_equal(a.observed, b.observed)
        np.testing.assert_array_equal(a.simulated, b.simulated)
        np.testing.assert_array_equal(a.p_value, b.p_value)
        np.testing.assert_array_equal(a.expected, b.expected)


def test_integer_weights_equal_duplicated_events_on_close_rows():
    # weight 2 = the event twice, but for the pair of an event with its own copy
    # (distance 0, gap 0), which the duplicated set counts and the weighted one does not
    rng = np.random.default_rng(5)
    x, y, t = lattice_events(rng, 200)
    w = rng.integers(1, 3, t.size).astype(float)
    rep = np.repeat(np.arange(t.size), w.astype(int))
    space, time = [1, 100, 200], [0.5, 7, 14]  # excludes the zero-distance, zero-gap self-copies
    a = knox_arrays(x, y, t, space, time, n_permutations=1, seed=0, weights=w)
    b = naive.knox_table(x[rep], y[rep], t[rep], space, time)
    np.testing.assert_array_equal(a.observed, b)


def test_weighted_event_set_path_thread_count_and_errors():
    rng = np.random.default_rng(12)
    x, y, t = lattice_events(rng, 300)
    ev = events_from_xy(x, y, t)
    w = rng.uniform(0.5, 2.0, len(ev))
    evw = ev.with_weights(w)
    ex, ey = evw.xy()
    space, time = [0, 1, 100, 200, INF], [0, 7, 14, INF]
    a = knox_test(evw, space, time, n_permutations=9, seed=1, weights=True, n_jobs=1)
    b = knox_test(evw, space, time, n_permutations=9, seed=1, weights=True, n_jobs=-1, progress=True)
    np.testing.assert_array_equal(a.simulated, b.simulated)
    np.testing.assert_allclose(a.observed, naive.knox_table_weighted(ex, ey, evw.t, w, space, time), rtol=1e-10)
    assert "weighted" in repr(a) and a.to_xarray().attrs["weighted"] == 1
    plain = knox_test(evw, space, time, n_permutations=9, seed=1)  # weights ignored unless asked
    assert not plain.weighted and plain.observed.dtype == np.int64
    with pytest.raises(ValueError, match="finite and >= 0"):
        knox_arrays(x, y, t, space, time, n_permutations=2, weights=-np.ones(t.size))
    with pytest.raises(ValueError, match="one value per event"):
        knox_arrays(x, y, t, space, time, n_permutations=2, weights=np.ones(3))
    with pytest.raises(TypeError, match="True or False"):
        knox_test(evw, space, time, n_permutations=2, weights=w)


def test_cli_weight_column(tmp_path, small_city):
    df, _, _ = small_city
    path = tmp_path / "ev.csv"
    w = np.where(np.arange(len(df)) % 3 == 0, 2.0, 1.0)
    df.assign(victims=w).to_csv(path, index=False)
    out_w, out_1 = tmp_path / "w.csv", tmp_path / "one.csv"
    args = ["knox", str(path), "--space", "0,100,200", "--time", "0,7,14", "--permutations", "9", "-q"]
    r = CliRunner().invoke(main, args + ["--weight-col", "victims", "--csv", str(out_w)])
    assert r.exit_code == 0, r.output
    assert "pairs weighted by w_i·w_j" in r.output
    r1 = CliRunner().invoke(main, args + ["--csv", str(out_1)])
    assert r1.exit_code == 0, r1.output
    tw, t1 = pd.read_csv(out_w), pd.read_csv(out_1)
    assert (tw["observed"] > t1["observed"]).any() and (tw["observed"] >= t1["observed"]).all()
    r = CliRunner().invoke(main, args + ["--weight-col", "nope"])
    assert r.exit_code != 0 and "nope" in r.output
