"""Rasterisation kernels: fill raster blocks whose corners fall in one hexagon.

Hexagons are convex, so when the four corner pixels of a rectangular block
of pixel centres lie in the same cell, every pixel centre of the block does
too (raster rows and columns are straight lines of constant latitude and
longitude, which deviate from the cells' great-circle edges by well under a
millimetre at the scales of H3 cells). The public layer
(:func:`riskgrid.io.rasterize`) evaluates H3 on a coarse lattice of pixel
centres, calls :func:`fill_uniform_blocks`, and evaluates H3 exactly only on
the pixels left unknown.

:func:`assign_by_polygons` settles most of those without H3: a pixel centre
lying inside one of its block's corner cells by more than a safety margin
(in metres, covering the difference between the cells' great-circle edges and
the straight lines of a local plane) takes that cell; the rest (pixels
within the margin of an edge, or in a cell that pokes into the block between
its corners) are left to the exact per-pixel H3 evaluation.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["assign_by_polygons", "fill_uniform_blocks", "lookup_values"]


@jit
def fill_uniform_blocks(lattice, rows, cols, out, known):  # pragma: no cover - compiled
    """Copy lattice ids into ``out`` and fill the blocks with four equal corners.

    Parameters
    ----------
    lattice : (len(rows), len(cols)) uint64
        Cell id of the pixel centre at ``(rows[a], cols[b])``.
    rows, cols : int64, strictly increasing
        Pixel row / column of each lattice line (first 0, last height-1 /
        width-1).
    out : (height, width) uint64
        Cell id per pixel (written where known).
    known : (height, width) bool
        Set to True for every pixel written.
    """
    na = rows.shape[0]
    nb = cols.shape[0]
    for a in range(na - 1):
        for b in range(nb - 1):
            c = lattice[a, b]
            if lattice[a + 1, b] == c and lattice[a, b + 1] == c and lattice[a + 1, b + 1] == c:
                for i in range(rows[a], rows[a + 1] + 1):
                    for j in range(cols[b], cols[b + 1] + 1):
                        out[i, j] = c
                        known[i, j] = True
    for a in range(na):
        for b in range(nb):
            out[rows[a], cols[b]] = lattice[a, b]
            known[rows[a], cols[b]] = True


@jit
def lookup_values(index, values, nodata, out):  # pragma: no cover - compiled
    """``out[p] = values[index[p]]`` where ``index[p] >= 0``, else ``nodata`` (flat arrays)."""
    for p in range(index.shape[0]):
        k = index[p]
        out[p] = values[k] if k >= 0 else nodata


@jit
def assign_by_polygons(lattice, rows, cols, lat_rows, lon_cols, poly_ids, lat0, lon0, cos0, eptr, nx, ny, off,
                       m_per_deg, margin_m, out, known):  # pragma: no cover - compiled
    """Settle unknown pixels that lie inside one of their block's corner cells by > ``margin_m``.

    Parameters
    ----------
    lattice, rows, cols : as for :func:`fill_uniform_blocks`.
    lat_rows, lon_cols : float64
        Latitude of each pixel row, longitude of each pixel column (degrees).
    poly_ids : uint64, sorted
        Every distinct id of ``lattice``.
    lat0, lon0, cos0 : float64, one per polygon
        Origin (degrees) of the polygon's local plane and ``cos(lat0)``; a
        point maps to ``x = (lon - lon0) cos0 · m_per_deg``, ``y = (lat - lat0) · m_per_deg``.
    eptr, nx, ny, off : CSR edges of each polygon in its plane
        Inward unit normal ``(nx, ny)`` and offset: the signed distance of a
        point inside the convex polygon is ``min_e (nx x + ny y - off)`` metres.
    m_per_deg : float
        Metres per degree of latitude on the sphere the planes were built on.
    margin_m : float
        A pixel is assigned only when its distance inside the cell exceeds this
        (metres); near-edge pixels stay unknown.
    out, known : (height, width)
        Updated in place. Block ``a`` handles rows ``[rows[a], rows[a+1])``
        (the last block also ``rows[-1]``). Serial on purpose: the stage is
        memory-bound (a parallel version measured no faster on 2 cores).
    """
    na = rows.shape[0]
    nb = cols.shape[0]
    for a in range(na - 1):
        i_end = rows[a + 1] + 1 if a == na - 2 else rows[a + 1]
        cand = np.empty(4, dtype=np.int64)
        for b in range(nb - 1):
            c00 = lattice[a, b]
            c10 = lattice[a + 1, b]
            c01 = lattice[a, b + 1]
            c11 = lattice[a + 1, b + 1]
            if c10 == c00 and c01 == c00 and c11 == c00:
                continue
            n = 0  # distinct corner cells -> polygon indices
            for c in (c00, c10, c01, c11):
                k = np.searchsorted(poly_ids, c)
                seen = False
                for q in range(n):
                    if cand[q] == k:
                        seen = True
                if not seen:
                    cand[n] = k
                    n += 1
            j_end = cols[b + 1] + 1 if b == nb - 2 else cols[b + 1]
            for i in range(rows[a], i_end):
                plat = lat_rows[i]
                for j in range(cols[b], j_end):
                    if known[i, j]:
                        continue
                    plon = lon_cols[j]
                    for q in range(n):
                        k = cand[q]
                        x = (plon - lon0[k]) * cos0[k] * m_per_deg
                        y = (plat - lat0[k]) * m_per_deg
                        inside = True
                        for e in range(eptr[k], eptr[k + 1]):
                            if nx[e] * x + ny[e] * y - off[e] <= margin_m:
                                inside = False
                                break
                        if inside:
                            out[i, j] = poly_ids[k]
                            known[i, j] = True
                            break
