"""Slow, obvious references for the rasteriser (riskgrid.products.raster.rasterize, riskgrid.kernels.raster)."""

import h3
import numpy as np


def naive_raster_ids(lat_rows, lon_cols, resolution):
    """H3 cell of every pixel centre, one h3 call per pixel."""
    out = np.zeros((lat_rows.size, lon_cols.size), dtype=np.uint64)
    for i, la in enumerate(lat_rows):
        for j, lo in enumerate(lon_cols):
            out[i, j] = h3.str_to_int(h3.latlng_to_cell(float(la), float(lo), resolution))
    return out


def naive_fill(ids_full, rows, cols):
    """What fill_uniform_blocks must produce: ids where a block is uniform or on the lattice, else unknown."""
    h, w = ids_full.shape
    out = np.zeros((h, w), dtype=np.uint64)
    known = np.zeros((h, w), dtype=bool)
    lat = ids_full[np.ix_(rows, cols)]
    for a in range(len(rows) - 1):
        for b in range(len(cols) - 1):
            c = lat[a, b]
            if lat[a + 1, b] == c and lat[a, b + 1] == c and lat[a + 1, b + 1] == c:
                out[rows[a]:rows[a + 1] + 1, cols[b]:cols[b + 1] + 1] = c
                known[rows[a]:rows[a + 1] + 1, cols[b]:cols[b + 1] + 1] = True
    for a in range(len(rows)):
        for b in range(len(cols)):
            out[rows[a], cols[b]] = lat[a, b]
            known[rows[a], cols[b]] = True
    return out, known
