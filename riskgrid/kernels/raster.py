"""Rasterisation kernels: fill raster blocks whose corners fall in one hexagon.

Hexagons are convex, so when the four corner pixels of a rectangular block
of pixel centres lie in the same cell, every pixel centre of the block does
too (raster rows and columns are straight lines of constant latitude and
longitude, which deviate from the cells' great-circle edges by well under a
millimetre at the scales of H3 cells). The public layer
(:func:`riskgrid.io.rasterize`) evaluates H3 on a coarse lattice of pixel
centres, calls :func:`fill_uniform_blocks`, and evaluates H3 exactly only on
the pixels left unknown.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["fill_uniform_blocks", "lookup_values"]


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
