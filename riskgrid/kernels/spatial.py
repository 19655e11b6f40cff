"""Uniform spatial hash shared by the kernels that look for nearby points, and
the H3 ring table of a grid built from local IJ coordinates (:func:`hex_ring_csr`)."""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit

__all__ = ["build_hash_grid", "hash_points", "hex_distance_ij", "hex_ring_csr", "cubic_basis", "lattice_cells", "dilate_ij_table"]


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


@jit
def hex_distance_ij(di, dj):
    """H3 grid distance of a local IJ offset ``(di, dj)``: the IJK vector ``(di, dj, 0)``
    normalised (its smallest component moved to 0) has distance ``max - min``."""
    hi = max(di, dj, 0)
    lo = min(di, dj, 0)
    return hi - lo


@jit
def hex_ring_csr(ci, cj, k):
    """Cells within ``k`` rings of every cell, from the cells' local IJ coordinates.

    ``ci, cj`` (int64, n) are H3 local IJ coordinates of the grid's cells
    (sorted by H3 id) against one anchor, on a part of the grid where the IJ
    lattice is flat (no pentagon nearby: the caller checks). Two cells are
    ``d`` rings apart when their IJ offset has :func:`hex_distance_ij` ``d``.

    Returns ``(indptr, indices, ring)`` int64 as :meth:`riskgrid.HexGrid.neighbours`:
    per cell, itself first (ring 0), then ring 1, 2, ... each in ascending
    cell position. Cells are found through a dense table over the IJ bounding
    box (the caller bounds its size).
    """
    n = ci.size
    imin = ci.min()
    jmin = cj.min()
    w = ci.max() - imin + 1 + 2 * k
    hgt = cj.max() - jmin + 1 + 2 * k
    table = np.full(w * hgt, -1, dtype=np.int64)
    for c in range(n):
        table[(ci[c] - imin + k) * hgt + (cj[c] - jmin + k)] = c
    # offsets of every ring 1..k, grouped by ring
    n_off = 3 * k * (k + 1)
    odi = np.empty(n_off, dtype=np.int64)
    odj = np.empty(n_off, dtype=np.int64)
    ostart = np.zeros(k + 2, dtype=np.int64)
    m = 0
    for r in range(1, k + 1):
        ostart[r] = m
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                if hex_distance_ij(di, dj) == r:
                    odi[m] = di
                    odj[m] = dj
                    m += 1
    ostart[k + 1] = m
    counts = np.ones(n, dtype=np.int64)
    for c in range(n):
        bi = ci[c] - imin + k
        bj = cj[c] - jmin + k
        for q in range(n_off):
            if table[(bi + odi[q]) * hgt + (bj + odj[q])] >= 0:
                counts[c] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    for c in range(n):
        indptr[c + 1] = indptr[c] + counts[c]
    indices = np.empty(indptr[n], dtype=np.int64)
    ring = np.empty(indptr[n], dtype=np.int64)
    for c in range(n):
        p = indptr[c]
        indices[p] = c
        ring[p] = 0
        p += 1
        bi = ci[c] - imin + k
        bj = cj[c] - jmin + k
        for r in range(1, k + 1):
            lo = p
            for q in range(ostart[r], ostart[r + 1]):
                v = table[(bi + odi[q]) * hgt + (bj + odj[q])]
                if v >= 0:
                    # insertion into the ring's sorted run
                    s = p
                    while s > lo and indices[s - 1] > v:
                        indices[s] = indices[s - 1]
                        s -= 1
                    indices[s] = v
                    ring[p] = r
                    p += 1
    return indptr, indices, ring


@jit
def cubic_basis(a, b, out):
    """The 10 monomials of degree <= 3 in ``(a, b)``: 1, a, b, a², ab, b², a³, a²b, ab², b³."""
    out[0] = 1.0
    out[1] = a
    out[2] = b
    out[3] = a * a
    out[4] = a * b
    out[5] = b * b
    out[6] = a * a * a
    out[7] = a * a * b
    out[8] = a * b * b
    out[9] = b * b * b


@jit
def lattice_cells(x, y, sx, sy, scale, cu, cv, table, imin, jmin, w, hgt, tol, xlo, xhi, ylo, yhi, li, lj):
    """Grid cell of points from a fitted map to H3 local IJ coordinates, or "ask h3".

    Each point ``(x, y)`` (metres) is mapped to continuous IJ coordinates by
    the cubic polynomials ``cu``, ``cv`` in ``((x - sx) / scale, (y - sy) /
    scale)``; its cell is the nearest lattice point in the hexagonal metric
    (IJ axes 120° apart, neighbours 1 apart): H3 cells are the hexagons
    around those points. A point whose distance to the boundary between its
    two nearest lattice points is within ``tol`` (lattice units: the map's
    error bound plus rounding) is left to the caller.

    Returns int64 per point: the cell's position (``table[(i - imin) * hgt +
    (j - jmin)]``), ``-1`` when the point is certainly outside the grid
    (outside ``[xlo, xhi] × [ylo, yhi]`` or its lattice cell not in the grid),
    ``-2`` when undecided. When ``li``, ``lj`` (int64) have one slot per
    point, the decided points' lattice coordinates are written there too
    (pass empty arrays otherwise).
    """
    n = x.size
    out = np.empty(n, dtype=np.int64)
    basis = np.empty(10, dtype=np.float64)
    s3 = math.sqrt(3.0) / 2.0
    for p in range(n):
        if not (x[p] >= xlo and x[p] <= xhi and y[p] >= ylo and y[p] <= yhi):
            out[p] = -1
            continue
        cubic_basis((x[p] - sx) / scale, (y[p] - sy) / scale, basis)
        u = 0.0
        v = 0.0
        for c in range(10):
            u += cu[c] * basis[c]
            v += cv[c] * basis[c]
        i0 = int(math.floor(u))
        j0 = int(math.floor(v))
        best = np.inf
        second = np.inf
        bi = 0
        bj = 0
        for di in range(-1, 3):
            for dj in range(-1, 3):
                fu = u - (i0 + di)
                fv = v - (j0 + dj)
                px = fu - 0.5 * fv
                py = s3 * fv
                d = px * px + py * py
                if d < best:
                    second = best
                    best = d
                    bi = i0 + di
                    bj = j0 + dj
                elif d < second:
                    second = d
        # distance to the bisector of the two nearest lattice points (1 apart)
        if 0.5 * (second - best) <= tol:
            out[p] = -2
            continue
        ii = bi - imin
        jj = bj - jmin
        if ii < 0 or ii >= w or jj < 0 or jj >= hgt:
            out[p] = -1
        else:
            out[p] = table[ii * hgt + jj]
        if li.size == n:
            li[p] = bi
            lj[p] = bj
    return out


@jit
def dilate_ij_table(ci, cj, k):
    """Dense table over the IJ box of ``(ci, cj)`` widened by ``k``: 1 where a cell lies within ``k`` rings
    of one of them, else 0. Returns ``(table, imin, jmin, w, hgt)`` (``table[(i - imin) * hgt + (j - jmin)]``)."""
    imin = ci.min() - k
    jmin = cj.min() - k
    w = ci.max() + k - imin + 1
    hgt = cj.max() + k - jmin + 1
    table = np.zeros(w * hgt, dtype=np.int8)
    for c in range(ci.size):
        for di in range(-k, k + 1):
            for dj in range(-k, k + 1):
                if hex_distance_ij(di, dj) <= k:
                    table[(ci[c] + di - imin) * hgt + (cj[c] + dj - jmin)] = 1
    return table, imin, jmin, w, hgt
