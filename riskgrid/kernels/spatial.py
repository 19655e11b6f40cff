"""Uniform spatial hash shared by the kernels that look for nearby points."""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit

__all__ = ["hash_points"]


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
