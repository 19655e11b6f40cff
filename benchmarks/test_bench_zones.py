"""Patrol-zone selection: compact (exact branch and bound) beside the greedy strings, and the exhaustive reference.

Run: ``pytest benchmarks/test_bench_zones.py --benchmark-only --benchmark-group-by=group``.
Groups: a 37-cell disk where the exhaustive enumeration (tests/naive_zones.py)
still runs, so the ratio to the kernel falls out of one run; a 6,000-cell
smooth surface (a KDE-like forecast the size of Chicago at H3 res 9).
"""

import numpy as np
import pytest
from h3.api import numpy_int as h3i

import riskgrid as rg
from naive_zones import naive_select_compact


def _disk(radius):
    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    return rg.HexGrid.from_cells(np.asarray(h3i.grid_disk(c, radius), dtype=np.uint64))


@pytest.mark.benchmark(group="select_zones compact, 37 cells, 3 zones of <= 5 cells")
@pytest.mark.parametrize("method", ["compact (riskgrid)", "exhaustive (reference)"])
def test_bench_compact_small(benchmark, method):
    grid = _disk(3)
    risk = np.random.default_rng(2).gamma(0.5, 1.0, len(grid))
    d_m = rg.zones.default_max_diameter_m(grid)
    if method.startswith("compact"):
        rg.select_zones(risk, grid, n_zones=3, max_cells=5, max_diameter_m=d_m)  # compile
        zs = benchmark(rg.select_zones, risk, grid, n_zones=3, max_cells=5, max_diameter_m=d_m)
        assert len(zs) == 3
    else:
        lat, lon = grid.centroids_latlon
        ref = benchmark.pedantic(naive_select_compact, args=(risk, grid.cells, lat, lon, 3, 5, 1, d_m), rounds=1,
                                 iterations=1)
        assert len(ref) == 3
    benchmark.extra_info["n_events"] = 0


@pytest.mark.benchmark(group="select_zones, 6,000-cell smooth forecast, 4 zones of <= 7 cells")
@pytest.mark.parametrize("mode", ["compact", "greedy"])
def test_bench_smooth_city(benchmark, mode):
    grid = _disk(44)  # 5,941 cells
    x, y = grid.centroids_xy
    rng = np.random.default_rng(0)
    centres = rng.uniform(-12_000, 12_000, (40, 2))
    risk = 0.01 + sum(rng.gamma(2.0, 1.0) * np.exp(-0.5 * ((x - cx) ** 2 + (y - cy) ** 2) / 900.0**2) for cx, cy in centres)
    rg.select_zones(risk, grid, n_zones=4, max_cells=7, mode=mode)  # warm caches (neighbours, compile)
    zs = benchmark(rg.select_zones, risk, grid, n_zones=4, max_cells=7, mode=mode)
    assert len(zs) == 4
    benchmark.extra_info["n_events"] = 0
    benchmark.extra_info["captured_share"] = zs.captured_share
