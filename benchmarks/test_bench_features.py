"""FeatureForecaster cost: panel building and fit + predict per origin; feature kernels vs the naive reference.

Run: ``pytest benchmarks/test_bench_features.py --benchmark-only``. The
Chicago cases need ``../shared/data/chicago_2016_2017.parquet`` (skipped
otherwise): two years of events, res 9, burglary target with four indicator
categories, weekly origins. Goals (issue 16): <= 1 s per origin when the
estimator is re-learned every 4 weeks, <= 3 s when re-learned weekly.
"""

import time
from pathlib import Path

import numpy as np
import pytest

import riskgrid as rg
from riskgrid.models import FeatureForecaster
from riskgrid.models._panel import CellEvents, FeatureSpec, build_features

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from naive_features import decayed_sums_naive, window_sums_naive  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago_2016_2017.parquet"
TARGET = ["BURGLARY"]
INDICATORS = ["THEFT", "CRIMINAL DAMAGE", "MOTOR VEHICLE THEFT", "ROBBERY"]


@pytest.fixture(scope="module")
def chicago():
    if not DATA.exists():
        pytest.skip(f"real-data file {DATA} not present (../shared/data is outside the repository)")
    ev = rg.read_events(DATA, category="category").select(TARGET + INDICATORS)
    grid = rg.HexGrid.from_events(ev.select(TARGET).between(None, "2017-01-01"), resolution=9)
    grid.assign(ev)
    return ev, grid


# ------------------------------------------------------------------ kernels vs reference (small)
@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    n, n_cells = 2000, 50
    t = np.sort(rng.uniform(0, 365, n))
    cell = rng.integers(0, n_cells, n)
    w = np.ones(n)
    origins = np.arange(100.0, 365.0, 7.0)
    return t, cell, w, n_cells, origins


@pytest.mark.benchmark(group="feature kernels: 2,000 events x 50 cells x 38 origins x 5 windows + 3 decays")
@pytest.mark.parametrize("impl", ["numba", "naive"])
def test_feature_kernels_vs_naive(benchmark, small, impl):
    t, cell, w, n_cells, origins = small
    windows = np.array([7.0, 28.0, 91.0, 365.0, np.inf])
    taus = np.array([3.0, 14.0, 60.0])
    if impl == "numba":
        ce = CellEvents(t, cell, w, n_cells)
        ce.windows(origins, windows), ce.decayed(origins, taus)  # compile
        benchmark(lambda: (CellEvents(t, cell, w, n_cells).windows(origins, windows),
                           CellEvents(t, cell, w, n_cells).decayed(origins, taus)))
    else:
        benchmark.pedantic(lambda: (window_sums_naive(t, cell, w, n_cells, origins, windows),
                                    decayed_sums_naive(t, cell, w, n_cells, origins, taus)), rounds=1, iterations=1)


# ------------------------------------------------------------------ Chicago
@pytest.mark.benchmark(group="feature panel chicago 2y res9: 52 weekly origins, burglary + 4 indicators")
def test_panel_building(benchmark, chicago):
    ev, grid = chicago
    cell = grid.assign(ev)
    origins = ev.to_days("2017-01-01") + 7.0 * np.arange(52)
    codes = np.arange(len(ev.categories))
    cache = {}
    args = (ev, cell, grid, origins, 7.0, codes[:1], codes[1:], FeatureSpec(), float(ev.t[0]))
    build_features(*args, cache=cache)
    X, names, _ = benchmark(build_features, *args, cache=cache)
    benchmark.extra_info["panel_rows"] = int(X.shape[0] * X.shape[1])
    benchmark.extra_info["features"] = len(names)


@pytest.mark.benchmark(group="feature forecaster chicago burglary: 12 weekly origins (fit + predict)")
@pytest.mark.parametrize("refit", ["weekly", "every 4 weeks"])
def test_fit_predict_per_origin(benchmark, chicago, refit):
    """Seconds per origin of a walk-forward: fit on the events before each of 12 weekly origins, then predict.

    "weekly" re-learns the estimator at every fit (``refit_every_days=None``); "every 4 weeks" is the default
    (re-learned on a 28-day schedule, warm-started in between: 3 learnings in 12 origins). The kernels are compiled
    by one fit before the timed run.
    """
    ev, grid = chicago
    kw = {"refit_every_days": None} if refit == "weekly" else {"refit_every_days": 28.0, "warm_start": True}
    origins = ev.to_days("2017-03-05") + 7.0 * np.arange(12)
    FeatureForecaster(horizon_days=7, **kw).fit(ev.between(None, origins[0] - 56), grid, target=TARGET).predict(
        origins[0] - 56, 7)  # compile

    def run():
        m = FeatureForecaster(horizon_days=7, **kw)
        t0 = time.perf_counter()
        for o in origins:
            m.fit(ev.between(None, o), grid, end=o, target=TARGET).predict(o, 7)
        return (time.perf_counter() - t0) / origins.size

    per_origin = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["seconds_per_origin"] = per_origin
