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


# --------------------------------------------------------------------------- #
# the cold H3 path (issue 17): neighbour tables and event assignment
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def city_grid():
    df = rg.simulate(n_days=365, background_rate=49_000 * 0.7 / 365, theta=0.3, seed=1)
    ev = rg.EventSet.from_frame(df, category="category")
    return df, rg.HexGrid.from_events(ev, resolution=10, buffer_rings=1)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("how", ["local_ij", "h3_grid_ring"])
def test_neighbour_table(benchmark, city_grid, how, k):
    """``HexGrid.neighbours(k)`` on a fresh grid (local IJ + Numba) beside the per-cell ``h3.grid_ring`` walk."""
    _, grid = city_grid
    benchmark.group = f"neighbour table k={k}, {len(grid):,} cells res 10"
    rg.HexGrid(grid.cells, 10).neighbours(k)  # compile

    def run():
        g = rg.HexGrid(grid.cells, 10)
        return g._neighbours_local_ij(k) if how == "local_ij" else g._neighbours_h3(k)

    out = benchmark.pedantic(run, rounds=3 if how == "h3_grid_ring" else 10, iterations=1)
    ref = rg.HexGrid(grid.cells, 10)._neighbours_h3(k)
    assert all(np.array_equal(a, b) for a, b in zip(out, ref))
    benchmark.extra_info["n_cells"] = len(grid)


@pytest.mark.parametrize("how", ["grid_assign_lattice", "event_cells_sampled_lattice", "latlng_to_cells", "h3_per_point"])
def test_assign_49k(benchmark, city_grid, how):
    """H3 cell of ~49k event points at res 10 beside one h3 call per point.

    ``grid_assign_lattice``: ``HexGrid.assign`` on a fresh grid (lattice map
    fitted inside, h3 only near cell boundaries); ``event_cells_sampled_lattice``:
    what ``HexGrid.from_events`` runs before the grid exists; ``latlng_to_cells``:
    one h3 call per distinct point.
    """
    from h3.api import numpy_int as h3i

    from riskgrid.grid import _event_cells

    df, grid = city_grid
    lat, lon = df["lat"].to_numpy(), df["lon"].to_numpy()
    benchmark.group = f"H3 assignment, {lat.size:,} points res 10"
    ref = np.array([h3i.latlng_to_cell(a, b, 10) for a, b in zip(lat, lon)], dtype=np.uint64)

    def per_point():
        return np.array([h3i.latlng_to_cell(a, b, 10) for a, b in zip(lat, lon)], dtype=np.uint64)

    f = {
        "grid_assign_lattice": lambda: rg.HexGrid(grid.cells, 10).assign(lat, lon),
        "event_cells_sampled_lattice": lambda: _event_cells(lat, lon, 10),
        "latlng_to_cells": lambda: rg.latlng_to_cells(lat, lon, 10),
        "h3_per_point": per_point,
    }[how]
    f()  # compile
    out = benchmark.pedantic(f, rounds=5, iterations=1)
    expected = grid.index_of(ref) if how == "grid_assign_lattice" else ref
    np.testing.assert_array_equal(out, expected)
    benchmark.extra_info["n_points"] = int(lat.size)
