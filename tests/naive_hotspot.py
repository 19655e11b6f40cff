"""Slow, obvious references for riskgrid.kernels.hotspot (all pairs, no hash grid)."""

from __future__ import annotations

import numpy as np


def kde_density(ex, ey, ew, qx, qy, bandwidth, kind, cutoff):
    """All event x query pairs; kind 0 = Gaussian, 1 = quartic; pairs with r > cutoff dropped."""
    out = np.zeros(len(qx))
    h = float(bandwidth)
    for j in range(len(qx)):
        total = 0.0
        for i in range(len(ex)):
            r2 = (qx[j] - ex[i]) ** 2 + (qy[j] - ey[i]) ** 2
            if r2 > cutoff**2:
                continue
            if kind == 0:
                k = np.exp(-r2 / (2 * h * h)) / (2 * np.pi * h * h)
            else:
                k = 3 / (np.pi * h * h) * (1 - r2 / (h * h)) ** 2 if r2 < h * h else 0.0
            total += ew[i] * k
        out[j] = total
    return out


def prospective_scores(event_cell, event_t, event_w, start, ring_distance, max_ring, window_weeks):
    """w_c = sum_i w_i / (1 + d(c, cell_i)) / (1 + floor((start - t_i) / 7)).

    ``ring_distance`` is a dense (n_cells, n_cells) matrix of H3 grid
    distances (-1 / large where unknown).
    """
    n = ring_distance.shape[0]
    out = np.zeros(n)
    for c in range(n):
        for i in range(len(event_cell)):
            if event_cell[i] < 0:
                continue
            d = ring_distance[c, event_cell[i]]
            if d < 0 or d > max_ring:
                continue
            weeks = int(np.floor((start - event_t[i]) / 7.0))
            if weeks < 0 or weeks >= window_weeks:
                continue
            out[c] += event_w[i] / (1 + d) / (1 + weeks)
    return out
