"""Forecasting-feature kernels: per-cell event aggregates at many origins at once.

Pure Numba on arrays. Events are given grouped by cell in CSR form
(``cell_ptr``; within a cell sorted by time), so every kernel is a loop over
cells (``prange``) that binary-searches or walks that cell's events; each
thread writes its own cells, so results do not depend on the thread count.

* :func:`window_sums` - weighted event counts in ``[o - w, o)`` for every
  origin ``o`` and look-back window ``w`` (days; ``inf`` = all history).
* :func:`decayed_sums` - exponentially decayed counts
  ``sum_i w_i exp(-(o - t_i) / tau)`` over events with ``t_i < o``.
* :func:`future_sums` - the panel label: weighted counts in ``[o, o + h)``.
* :func:`spread_cells` - a sparse cell-to-cell linear map (ring sums, a
  Gaussian kernel over cell centroids) applied to many value rows at once.

Every kernel uses only events strictly before each origin (labels: only
events in ``[o, o + h)``); ``tests/naive_features.py`` holds brute-force
references.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit_parallel, prange

__all__ = ["window_sums", "decayed_sums", "future_sums", "spread_cells"]


@jit_parallel
def window_sums(cell_ptr, t, cumw, origins, windows):
    """Weighted counts per (window, origin, cell) of events with ``o - w <= t < o``.

    Parameters
    ----------
    cell_ptr : int64 (n_cells + 1,)
        CSR offsets: events of cell ``c`` are ``cell_ptr[c]:cell_ptr[c + 1]``.
    t : float64 (n_events,)
        Event times (days), sorted within each cell.
    cumw : float64 (n_events + 1,)
        ``cumw[k]`` = sum of the weights of the first ``k`` events in CSR order
        (so a cell's window sum is a difference of two entries).
    origins : float64 (n_origins,)
        Origins (days).
    windows : float64 (n_windows,)
        Look-back lengths (days, > 0; ``inf`` for all history).

    Returns
    -------
    float64 (n_windows, n_origins, n_cells)
    """
    n_cells = cell_ptr.shape[0] - 1
    n_o = origins.shape[0]
    n_w = windows.shape[0]
    out = np.zeros((n_w, n_o, n_cells))
    for c in prange(n_cells):
        a = cell_ptr[c]
        b = cell_ptr[c + 1]
        if a == b:
            continue
        tc = t[a:b]
        for j in range(n_o):
            o = origins[j]
            hi = np.searchsorted(tc, o, side="left")
            for k in range(n_w):
                lo = np.searchsorted(tc, o - windows[k], side="left")
                if hi > lo:
                    out[k, j, c] = cumw[a + hi] - cumw[a + lo]
    return out


@jit_parallel
def future_sums(cell_ptr, t, cumw, origins, horizon):
    """Weighted counts per (origin, cell) of events with ``o <= t < o + horizon`` (the panel label)."""
    n_cells = cell_ptr.shape[0] - 1
    n_o = origins.shape[0]
    out = np.zeros((n_o, n_cells))
    for c in prange(n_cells):
        a = cell_ptr[c]
        b = cell_ptr[c + 1]
        if a == b:
            continue
        tc = t[a:b]
        for j in range(n_o):
            lo = np.searchsorted(tc, origins[j], side="left")
            hi = np.searchsorted(tc, origins[j] + horizon, side="left")
            if hi > lo:
                out[j, c] = cumw[a + hi] - cumw[a + lo]
    return out


@jit_parallel
def decayed_sums(cell_ptr, t, w, origins, taus):
    """Exponentially decayed counts per (tau, origin, cell): ``sum_{t_i < o} w_i exp(-(o - t_i)/tau)``.

    ``origins`` must be sorted ascending; ``taus`` are e-folding times in
    days (> 0). One pass over each cell's events per tau: the running sum is
    carried from one origin to the next (``O(events + origins)`` per cell).
    """
    n_cells = cell_ptr.shape[0] - 1
    n_o = origins.shape[0]
    n_k = taus.shape[0]
    out = np.zeros((n_k, n_o, n_cells))
    for c in prange(n_cells):
        a = cell_ptr[c]
        b = cell_ptr[c + 1]
        if a == b:
            continue
        for k in range(n_k):
            tau = taus[k]
            s = 0.0  # decayed sum at time `now`
            now = origins[0]
            i = a
            for j in range(n_o):
                o = origins[j]
                s *= np.exp(-(o - now) / tau)
                now = o
                while i < b and t[i] < o:
                    s += w[i] * np.exp(-(o - t[i]) / tau)
                    i += 1
                out[k, j, c] = s
    return out


@jit_parallel
def spread_cells(values, indptr, indices, weights):
    """Apply a sparse cell map to every row: ``out[r, c] = sum_j weights[j] * values[r, indices[j]]``.

    ``indptr``/``indices``/``weights`` are a CSR matrix (row ``c``: the cells
    that feed cell ``c`` and their weights), e.g. H3 ring ``k`` with weights
    1, or a Gaussian kernel of centroid distance.

    Parameters
    ----------
    values : float64 (n_rows, n_cells)
    indptr : int64 (n_cells + 1,)
    indices : int64 (nnz,)
    weights : float64 (nnz,)

    Returns
    -------
    float64 (n_rows, n_cells)
    """
    n_rows = values.shape[0]
    n_cells = indptr.shape[0] - 1
    out = np.zeros((n_rows, n_cells))
    for c in prange(n_cells):
        for j in range(indptr[c], indptr[c + 1]):
            n = indices[j]
            wj = weights[j]
            for r in range(n_rows):
                out[r, c] += wj * values[r, n]
    return out
