"""Baseline hotspot models (issue 17): KDE 200 m and prospective hotspot at 49k events, resolution 10.

Groups
------
* ``kde 200 m, 49k events`` / ``prospective hotspot, 49k events``: fit +
  predict (7 days) on ~49k simulated events (365 days, 10 km square) over
  their resolution-10 grid with one buffer ring (~7,200 cells).
  ``cold``: a fresh EventSet and a fresh HexGrid every round (what one
  nightly forecast pays: H3 assignment of the events, the neighbour table,
  centroids and areas inside the fit); ``cached``: the same objects again
  (what a backtest pays after its first origin). ``extra_info`` carries the
  peer's time quoted in issue 17 (open_cp on the same machine: KDE 6.0 s,
  prospective 3.1 s) and the ratio peer / riskgrid.
* ``... vs naive``: the kernels beside the slow, obvious references of
  ``tests/naive_hotspot.py`` at a size those can do (600 events, a
  resolution-10 grid of ~270 cells); ``extra_info["ratio_vs_naive"]``.

Run: ``pytest benchmarks/test_bench_baselines.py --benchmark-only``.
"""

import time

import numpy as np
import pytest
from h3.api import basic_int as h3b

import naive_hotspot as nh
import riskgrid as rg
from riskgrid.kernels.hotspot import kde_density
from riskgrid.models import KDEHotspot, ProspectiveHotspot

RES = 10
PEER_S = {"kde": 6.0, "prospective": 3.1}  # open_cp, issue 17 (same inputs, same machine)
MODELS = {"kde": lambda: KDEHotspot(bandwidth_m=200.0), "prospective": lambda: ProspectiveHotspot()}


@pytest.fixture(scope="module")
def city():
    df = rg.simulate(n_days=365, background_rate=49_000 * 0.7 / 365, theta=0.3, seed=1)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=RES, buffer_rings=1)
    for make in MODELS.values():  # compile outside the timings
        make().fit(ev, grid).predict(horizon_days=7)
    return df, ev, grid


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("state", ["cold", "cached"])
def test_baseline_49k(benchmark, city, name, state):
    df, ev, grid = city
    benchmark.group = f"{'kde 200 m' if name == 'kde' else 'prospective hotspot'}, {len(ev):,} events"
    make = MODELS[name]
    if state == "cold":
        def setup():
            fresh_ev = rg.EventSet.from_frame(df, category="category")
            return (fresh_ev, rg.HexGrid(grid.cells, RES)), {}
    else:
        make().fit(ev, grid).predict(horizon_days=7)

        def setup():
            return (ev, grid), {}

    out = benchmark.pedantic(lambda e, g: make().fit(e, g).predict(horizon_days=7), setup=setup, rounds=7, iterations=1)
    assert out.sum() > 0
    best = benchmark.stats.stats.min
    benchmark.extra_info.update(n_events=len(ev), n_cells=len(grid), peer_s=PEER_S[name], ratio_vs_peer=PEER_S[name] / best)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    centre = h3b.latlng_to_cell(41.85, -87.65, RES)
    grid = rg.HexGrid(np.asarray(h3b.grid_disk(centre, 9), dtype=np.uint64), RES)
    lat, lon = grid.centroids_latlon
    i = rng.integers(0, len(grid), 600)
    ev_lat = lat[i] + rng.normal(0, 2e-4, i.size)
    ev_lon = lon[i] + rng.normal(0, 3e-4, i.size)
    t = np.sort(rng.uniform(0, 60, i.size))
    return grid, ev_lat, ev_lon, t


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def test_kde_kernel_vs_naive(benchmark, small):
    grid, lat, lon = small[:3]
    ex, ey = grid.projection.forward(lat, lon)
    qx, qy = grid.centroids_xy
    w = np.ones(ex.size)
    args = (ex, ey, w, np.ascontiguousarray(qx), np.ascontiguousarray(qy), 200.0, 0, 800.0)
    benchmark.group = f"kde 200 m kernel vs naive, {ex.size} events x {len(grid)} cells"
    kde_density(*args, 4_000_000)
    got = benchmark.pedantic(lambda: kde_density(*args, 4_000_000), rounds=20, iterations=1)
    ref, t_ref = _timed(lambda: nh.kde_density(*args))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-18)
    benchmark.extra_info.update(naive_s=t_ref, ratio_vs_naive=t_ref / benchmark.stats.stats.min)


def test_prospective_vs_naive(benchmark, small):
    grid, lat, lon, t = small
    cells = grid.index_of(rg.latlng_to_cells(lat, lon, RES))
    n = len(grid)
    ids = grid.cells.tolist()
    dist = np.array([[h3b.grid_distance(a, b) for b in ids] for a in ids])
    start = 61.0
    benchmark.group = f"prospective hotspot vs naive, {t.size} events x {n} cells"

    def fast():
        from riskgrid.kernels.hotspot import cell_week_scores, ring_weighted_sum

        g = rg.HexGrid(grid.cells, RES)  # fresh grid: the neighbour table is built inside
        indptr, indices, ring = g.neighbours(1)
        age = np.floor((start - t) / 7.0).astype(np.int64)
        s = cell_week_scores(cells, age, np.ones(t.size), n, 8)
        return ring_weighted_sum(s, indptr, indices, ring, 1)

    fast()
    got = benchmark.pedantic(fast, rounds=20, iterations=1)
    ref, t_ref = _timed(lambda: nh.prospective_scores(cells, t, np.ones(t.size), start, dist, 1, 8))
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    benchmark.extra_info.update(naive_s=t_ref, ratio_vs_naive=t_ref / benchmark.stats.stats.min)
