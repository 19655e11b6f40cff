"""The shared spatial hash (riskgrid.kernels.spatial) against a direct bucketing of every point."""

import numpy as np
import pytest

from riskgrid.kernels.spatial import build_hash_grid


@pytest.mark.parametrize("cell_m,max_cells", [(50.0, 10**6), (1.0, 64), (0.0, 4096), (1e9, 16)])
def test_build_hash_grid_buckets_every_point(rng, cell_m, max_cells):
    x = rng.uniform(-500, 2500, 3000)
    y = rng.uniform(100, 900, 3000)
    x[:50] = x[50:100]  # repeated points
    order, start, x0, y0, h, nx, ny = build_hash_grid(x, y, cell_m, max_cells)
    assert h >= max(cell_m, 1.0) if cell_m > 0 else h >= 1.0
    assert nx * ny <= max(max_cells, 1) and (x0, y0) == (x.min(), y.min())
    assert np.array_equal(np.sort(order), np.arange(x.size))  # every point exactly once
    bx = np.minimum(np.floor((x - x0) / h).astype(int), nx - 1)
    by = np.minimum(np.floor((y - y0) / h).astype(int), ny - 1)
    for k in range(nx * ny):
        members = order[start[k]:start[k + 1]]
        assert np.all(by[members] * nx + bx[members] == k)
        assert np.all(np.diff(members) > 0)  # stable: ascending index inside a bucket
