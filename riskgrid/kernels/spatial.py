"""Uniform spatial hash shared by the kernels that look for nearby points."""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit

__all__ = ["build_hash_grid", "hash_points"]


@jit
def _bucket(v, v0, cell_m):
    return int(math.floor((v - v0) / cell_m))


@jit
def hash_points(x, y, x0, y0, cell_m, nx, ny):
    """Counting sort of points into ``nx × ny`` square buckets of side ``cell_m`` metres.

    Bucket ``(bx, by)`` (``bx = floor((x - x0) / cell_m)``, clipped to the
    raster) has key ``by * nx + bx``.

    Returns
    -------
    order : int64 (n,)
        Point indices sorted by bucket key, ascending index inside a bucket
        (stable: for time-sorted points, time order inside a bucket).
    start : int64 (nx * ny + 1,)
        Points of bucket ``k`` are ``order[start[k]:start[k + 1]]``.
    """
    n = x.size
    key = np.empty(n, dtype=np.int64)
    start = np.zeros(nx * ny + 1, dtype=np.int64)
    for i in range(n):
        bx = min(max(_bucket(x[i], x0, cell_m), 0), nx - 1)
        by = min(max(_bucket(y[i], y0, cell_m), 0), ny - 1)
        k = by * nx + bx
        key[i] = k
        start[k + 1] += 1
    for k in range(nx * ny):
        start[k + 1] += start[k]
    pos = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = key[i]
        order[pos[k]] = i
        pos[k] += 1
    return order, start


@jit
def build_hash_grid(x, y, cell_m, max_cells):
    """Counting-sort points into square cells of side >= ``cell_m`` metres.

    The side is doubled until the grid has at most ``max_cells`` cells, so
    tiny radii over a large extent do not allocate huge arrays (larger cells
    stay correct, only slower).

    Returns
    -------
    order : int64 (n,)
        Point indices sorted by cell (stable within a cell).
    cell_start : int64 (nx * ny + 1,)
        Points of cell ``k = cy * nx + cx`` are ``order[cell_start[k]:cell_start[k + 1]]``.
    x0, y0, h : float
        Origin (minimum x, y) and the side of a cell, metres.
    nx, ny : int
        Grid shape.
    """
    n = x.size
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    for i in range(n):
        x0 = min(x0, x[i])
        y0 = min(y0, y[i])
        x1 = max(x1, x[i])
        y1 = max(y1, y[i])
    if n == 0:
        x0 = 0.0
        y0 = 0.0
        x1 = 0.0
        y1 = 0.0
    h = cell_m if cell_m > 0 else 1.0
    while ((x1 - x0) / h + 1.0) * ((y1 - y0) / h + 1.0) > max_cells:
        h *= 2.0
    nx = int((x1 - x0) / h) + 1
    ny = int((y1 - y0) / h) + 1
    order, cell_start = hash_points(x, y, x0, y0, h, nx, ny)
    return order, cell_start, x0, y0, h, nx, ny
