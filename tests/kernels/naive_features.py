"""Slow, obvious references of riskgrid.kernels.features (plain loops over events and cells)."""

import numpy as np


def window_sums_naive(t, cell, w, n_cells, origins, windows):
    out = np.zeros((len(windows), len(origins), n_cells))
    for k, win in enumerate(windows):
        for j, o in enumerate(origins):
            for ti, ci, wi in zip(t, cell, w):
                if ci >= 0 and o - win <= ti < o:
                    out[k, j, ci] += wi
    return out


def future_sums_naive(t, cell, w, n_cells, origins, horizon):
    out = np.zeros((len(origins), n_cells))
    for j, o in enumerate(origins):
        for ti, ci, wi in zip(t, cell, w):
            if ci >= 0 and o <= ti < o + horizon:
                out[j, ci] += wi
    return out


def decayed_sums_naive(t, cell, w, n_cells, origins, taus):
    out = np.zeros((len(taus), len(origins), n_cells))
    for k, tau in enumerate(taus):
        for j, o in enumerate(origins):
            for ti, ci, wi in zip(t, cell, w):
                if ci >= 0 and ti < o:
                    out[k, j, ci] += wi * np.exp(-(o - ti) / tau)
    return out


def spread_cells_naive(values, indptr, indices, weights):
    n_cells = len(indptr) - 1
    dense = np.zeros((n_cells, values.shape[1]))
    for c in range(n_cells):
        for j in range(indptr[c], indptr[c + 1]):
            dense[c, indices[j]] += weights[j]
    return values @ dense.T
