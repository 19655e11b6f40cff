"""Backtests on Chicago burglaries (res 9): 52 weekly origins per model; kernels vs references.

Run: ``pytest benchmarks/test_bench_backtest.py --benchmark-only``. Needs
``../shared/data/chicago_2016_2017.parquet`` (skipped otherwise). Each
backtest case reports ``seconds_per_origin`` in ``extra_info``.
"""

import resource
from pathlib import Path

import numpy as np
import pytest

import riskgrid as rg
from riskgrid.models import available_models, make_model

import naive_metrics as nm  # tests/ is on sys.path (benchmarks/conftest.py)

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(name):
    path = DATA_DIR / name
    if not path.exists():
        pytest.skip(f"real-data file {path} not present (../shared/data is outside the repository)")
    return path

START, END = "2017-01-01", "2017-12-31"  # 52 Sunday origins, 2017-01-01 .. 2017-12-24

VARIANTS = {
    "CountHotspot": ("CountHotspot", {"window_days": 365}),
    "KDEHotspot": ("KDEHotspot", {"bandwidth_m": 200, "window_days": 365}),
    "ProspectiveHotspot": ("ProspectiveHotspot", {"bandwidth_rings": 1, "window_weeks": 8}),
    "GridHawkes-s0": ("GridHawkes", {"spillover_rings": 0}),
    "GridHawkes-s1": ("GridHawkes", {"spillover_rings": 1}),
    # the settings of examples/backtest_chicago.toml: block-level points make the default fit
    # collapse onto same-address repeats (see the README's SEPP section)
    "SEPP": ("SEPP", {"max_days": 120, "max_distance_m": 1000, "min_sigma_m": 50, "bandwidth_m": 200}),
    # issue 13: the same models warm-started (one live instance, EM from the previous origin's fit)
    "GridHawkes-s1-warm": ("GridHawkes", {"spillover_rings": 1, "warm_start": True}),
    "SEPP-warm": ("SEPP", {"max_days": 120, "max_distance_m": 1000, "min_sigma_m": 50, "bandwidth_m": 200,
                           "warm_start": True}),
}


@pytest.fixture(scope="module")
def chicago():
    path = shared_file("chicago_2016_2017.parquet")
    events = rg.read_events(path, category="category").select("BURGLARY")
    grid = rg.HexGrid.from_events(events, resolution=9)
    return events, grid


@pytest.mark.benchmark(group="backtest chicago burglary res9 52 weekly origins")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_backtest_52_weeks(benchmark, chicago, variant):
    events, grid = chicago
    name, params = VARIANTS[variant]
    if name not in available_models():
        pytest.skip(f"{name} is not in riskgrid.models yet (issue not landed)")
    model = make_model(name, **params)
    # compile / warm caches on one origin outside the timing
    rg.backtest({variant: model}, events, grid, START, "2017-01-02", train_days=365, progress=False)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    df = benchmark.pedantic(
        lambda: rg.backtest({variant: model}, events, grid, START, END, train_days=365, progress=False),
        rounds=1,
        iterations=1,
    )
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    benchmark.extra_info["cpu_seconds"] = round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 1)
    n_origins = df["origin"].nunique()
    assert n_origins == 52
    benchmark.extra_info["n_events"] = len(events)
    benchmark.extra_info["n_cells"] = len(grid)
    benchmark.extra_info["n_origins"] = int(n_origins)
    benchmark.extra_info["seconds_per_origin"] = benchmark.stats.stats.mean / n_origins
    benchmark.extra_info["fit_seconds_per_origin"] = float(df.groupby("origin").fit_seconds.first().mean())
    benchmark.extra_info["hit_rate_5pct"] = float(df[np.isclose(df.coverage, 0.05)].hit_rate.mean())
    benchmark.extra_info["loglik_per_origin"] = float(df.groupby("origin").loglik.first().mean())


# ---------------------------------------------------------------- kernels vs references
def _kde_numpy_reference(x, y, w, qx, qy, h, cutoff, chunk=256):
    out = np.empty(qx.size)
    for s in range(0, qx.size, chunk):
        r2 = (qx[s:s + chunk, None] - x[None, :]) ** 2 + (qy[s:s + chunk, None] - y[None, :]) ** 2
        k = np.exp(-0.5 * r2 / h**2) / (2 * np.pi * h**2)
        k[r2 > cutoff**2] = 0.0
        out[s:s + chunk] = k @ w
    return out


@pytest.fixture(scope="module")
def kde_inputs(chicago):
    events, grid = chicago
    end = events.to_days("2017-01-01")
    train = events.between(end - 365, end)
    cell = grid.assign(train)
    x, y = train.xy(grid.projection)
    ok = cell >= 0
    qx, qy = grid.centroids_xy
    return train, grid, end, (x[ok], y[ok], train.weight[ok], np.asarray(qx), np.asarray(qy))


@pytest.mark.benchmark(group="KDE density at cell centres (Chicago 2016 burglary, 5k cells)")
@pytest.mark.parametrize("impl", ["numba-hashgrid", "numpy-all-pairs"])
def test_kde_density(benchmark, kde_inputs, impl):
    train, grid, end, (x, y, w, qx, qy) = kde_inputs
    if impl == "numba-hashgrid":
        m = make_model("KDEHotspot", bandwidth_m=200, window_days=365)
        m.fit(train, grid, end=end)
        res = benchmark(lambda: make_model("KDEHotspot", bandwidth_m=200, window_days=365).fit(train, grid, end=end))
        dens = res.density_
    else:
        dens = benchmark.pedantic(lambda: _kde_numpy_reference(x, y, w, qx, qy, 200.0, 800.0), rounds=2, iterations=1)
        ref = make_model("KDEHotspot", bandwidth_m=200, window_days=365).fit(train, grid, end=end).density_
        np.testing.assert_allclose(dens, ref, rtol=1e-9, atol=1e-20)
    assert dens.shape == (len(grid),)
    benchmark.extra_info["n_events"] = int(x.size)
    benchmark.extra_info["n_cells"] = len(grid)


def _prospective_numpy_reference(model, start):
    age = np.floor((start - model.event_t_) / 7.0).astype(int)
    use = (age >= 0) & (age < model.window_weeks)
    s = np.zeros(len(model.grid_))
    np.add.at(s, model.event_cell_[use], model.event_weight_[use] / (1 + age[use]))
    indptr, indices, ring = model.neighbours_
    owner = np.repeat(np.arange(len(model.grid_)), np.diff(indptr))
    out = np.zeros(len(model.grid_))
    np.add.at(out, owner, s[indices] / (1 + ring))
    return out


@pytest.mark.benchmark(group="prospective scores (Chicago burglary, 5k cells, 2 rings)")
@pytest.mark.parametrize("impl", ["numba", "numpy-scatter"])
def test_prospective_scores(benchmark, kde_inputs, impl):
    train, grid, end, _ = kde_inputs
    m = make_model("ProspectiveHotspot", bandwidth_rings=2, window_weeks=8).fit(train, grid, end=end)
    if impl == "numba":
        m.scores(end)
        res = benchmark(lambda: m.scores(end))
    else:
        res = benchmark(lambda: _prospective_numpy_reference(m, end))
        np.testing.assert_allclose(res, m.scores(end), rtol=1e-12)
    benchmark.extra_info["n_events"] = int(m.event_t_.size)


@pytest.mark.benchmark(group="metrics at 4 coverages (5k cells)")
@pytest.mark.parametrize("impl", ["vectorised", "naive-loops"])
def test_metrics(benchmark, impl):
    rng = np.random.default_rng(0)
    n = 5372
    risk = rng.gamma(0.5, 1.0, n)
    obs = rng.poisson(0.05, n).astype(float)
    area = rng.uniform(0.9e5, 1.1e5, n)
    cov = (0.01, 0.02, 0.05, 0.1)
    if impl == "vectorised":
        benchmark(lambda: rg.metrics.evaluate(risk, obs, area, cov))
    else:
        benchmark.pedantic(lambda: [nm.metrics(risk, obs, area, c) for c in cov], rounds=3, iterations=1)
    benchmark.extra_info["n_events"] = int(obs.sum())
