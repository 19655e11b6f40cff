"""Foundation: read + validate + assign at 1e4, 1e5, 1e6 events; simulator speed.

Run: ``make bench`` (or ``pytest benchmarks/test_bench_foundation.py --benchmark-only``).
"""

import numpy as np
import pytest

import riskgrid as rg

SIZES = [10_000, 100_000, 1_000_000]


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("events")
    rng = np.random.default_rng(0)
    out = {}
    df = rg.simulate(n_days=365, background_rate=1_000_000 / 365 / 1.4, theta=0.3, seed=1)
    for n in SIZES:
        sub = df.iloc[np.sort(rng.choice(len(df), size=min(n, len(df)), replace=False))]
        path = d / f"events_{n}.parquet"
        sub[["event_id", "timestamp", "lat", "lon", "category"]].to_parquet(path)
        out[n] = path
    return out


@pytest.mark.benchmark(group="read+validate+assign")
@pytest.mark.parametrize("n", SIZES)
def test_read_validate_assign(benchmark, parquet_files, n):
    path = parquet_files[n]
    grid = rg.HexGrid.from_events(rg.read_events(path), resolution=9, buffer_rings=0)

    def run():
        ev = rg.read_events(path, category="category")
        return grid.assign(ev)

    idx = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert (idx >= 0).all()
    benchmark.extra_info["n_events"] = n


@pytest.mark.benchmark(group="simulate")
@pytest.mark.parametrize("rate", [300, 3000])
def test_simulate(benchmark, rate):
    rg.simulate(n_days=5, seed=0)  # compile
    df = benchmark.pedantic(lambda: rg.simulate(n_days=365, background_rate=rate, theta=0.3, seed=1), rounds=3, iterations=1)
    benchmark.extra_info["n_events"] = len(df)
