"""Feature kernels (riskgrid.kernels.features) against brute-force references."""

import numpy as np
import pytest

from naive_features import decayed_sums_naive, future_sums_naive, spread_cells_naive, window_sums_naive
from riskgrid.models._panel import CellEvents


def _events(rng, n, n_cells, integer_times=False):
    t = rng.uniform(0, 100, n)
    if integer_times:  # many events exactly on window edges
        t = np.floor(t)
    cell = rng.integers(-1, n_cells, n)  # -1: outside the grid (ignored)
    w = rng.choice([1.0, 0.5, 2.0], n)
    return t, cell, w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("integer_times", [False, True])
def test_window_future_decayed_equal_naive(seed, integer_times):
    rng = np.random.default_rng(seed)
    n_cells = 7
    t, cell, w = _events(rng, 300, n_cells, integer_times)
    origins = np.sort(np.concatenate([rng.uniform(-5, 110, 6), [0.0, 50.0, 100.0]]))  # before, on, after data
    if integer_times:
        origins = np.floor(origins)
    windows = np.array([1.0, 7.0, 30.0, np.inf])
    ce = CellEvents(t, cell, w, n_cells)
    np.testing.assert_allclose(ce.windows(origins, windows), window_sums_naive(t, cell, w, n_cells, origins, windows),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ce.future(origins, 7.0), future_sums_naive(t, cell, w, n_cells, origins, 7.0),
                               rtol=1e-12, atol=1e-12)
    taus = np.array([0.5, 3.0, 60.0])
    np.testing.assert_allclose(ce.decayed(origins, taus), decayed_sums_naive(t, cell, w, n_cells, origins, taus),
                               rtol=1e-10, atol=1e-12)


def test_empty_cells_and_no_events():
    n_cells = 5
    t, cell, w = np.array([1.0, 2.0]), np.array([3, 3]), np.ones(2)
    ce = CellEvents(t, cell, w, n_cells)
    out = ce.windows(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, np.inf]))
    assert out.shape == (2, 4, 5)
    assert out[:, :, [0, 1, 2, 4]].sum() == 0
    # window [o - 1, o): the event at t=1 counts at o=2 only; t=2 at o=3 only (half-open)
    np.testing.assert_array_equal(out[0, :, 3], [0, 0, 1, 1])
    np.testing.assert_array_equal(out[1, :, 3], [0, 0, 1, 2])
    empty = CellEvents(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0), n_cells)
    assert empty.windows(np.array([1.0]), np.array([5.0])).sum() == 0
    assert empty.decayed(np.array([1.0]), np.array([5.0])).sum() == 0


def test_spread_cells_equals_dense_product(rng):
    from riskgrid.kernels.features import spread_cells

    n_cells, n_rows = 9, 4
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    nnz = rng.integers(0, 5, n_cells)
    np.cumsum(nnz, out=indptr[1:])
    indices = rng.integers(0, n_cells, int(indptr[-1])).astype(np.int64)
    weights = rng.uniform(0, 2, indices.size)
    values = rng.uniform(0, 3, (n_rows, n_cells))
    np.testing.assert_allclose(spread_cells(values, indptr, indices, weights),
                               spread_cells_naive(values, indptr, indices, weights), rtol=1e-12)


def test_ring_and_gaussian_maps_on_a_grid_border(sim_city):
    """Ring sums over a real H3 grid (border cells have fewer neighbours) equal a grid_disk recount."""
    import h3

    from riskgrid.models._panel import gaussian_cell_map, ring_map

    _, _, grid = sim_city
    ptr, idx, w = ring_map(grid, 1)
    rng = np.random.default_rng(3)
    vals = rng.uniform(0, 1, (1, len(grid)))
    from riskgrid.kernels.features import spread_cells

    got = spread_cells(vals, ptr, idx, w)[0]
    cells = [int(c) for c in grid.cells]
    pos = {c: i for i, c in enumerate(cells)}
    for i in rng.choice(len(grid), 40, replace=False):
        ring = [pos[int(h3.str_to_int(n))] for n in h3.grid_ring(h3.int_to_str(cells[i]), 1) if int(h3.str_to_int(n)) in pos]
        assert got[i] == pytest.approx(vals[0, ring].sum(), rel=1e-12)
    ptr, idx, w = gaussian_cell_map(grid, 500.0)
    assert np.all(w >= 0)
    # interior cells: the kernel weights sum to ~1 (mass conserved up to truncation and binning)
    sums = np.add.reduceat(w, ptr[:-1])
    assert np.median(sums) == pytest.approx(1.0, abs=0.05)


def test_point_kde_pairs_equal_kdehotspot(sim_city):
    """Window sums of the point-KDE pairs equal KDEHotspot's exact kernel density (same truncation)."""
    from riskgrid.models import KDEHotspot
    from riskgrid.models._panel import point_kde_pairs

    _, ev, grid = sim_city
    cell = grid.assign(ev)
    e, c, w = point_kde_pairs(ev.xy(grid.projection), cell, grid, 200.0)
    end = float(ev.t[-1]) + 0.01
    got = CellEvents(ev.t[e], c, ev.weight[e] * w, len(grid)).windows(np.array([end]), np.array([50.0]))[0, 0] / 50.0
    ref = KDEHotspot(bandwidth_m=200, window_days=50).fit(ev, grid, end=end).rate_
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-15)
