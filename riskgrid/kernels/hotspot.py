"""Numba kernels of the baseline hotspot models (pure functions on arrays).

* :func:`kde_density` - fixed-bandwidth kernel density of weighted points,
  evaluated at query points through a square hash grid (only the 3 x 3
  neighbouring bins of a query are visited; the kernel is truncated at
  ``cutoff`` metres).
* :func:`cell_week_scores` and :func:`ring_weighted_sum` - the prospective
  (Bowers, Johnson & Pease 2004) weight sum on an H3 neighbour list.

No pandas, xarray, h3, I/O or printing here; inputs are validated by
:mod:`riskgrid.models.hotspot`.
"""

from __future__ import annotations

import math

import numpy as np

from .spatial import build_hash_grid
from ._jit import jit, jit_parallel, prange

__all__ = ["KERNEL_GAUSSIAN", "KERNEL_QUARTIC", "kde_density", "cell_week_scores", "ring_weighted_sum"]

#: kernel codes understood by :func:`kde_density`
KERNEL_GAUSSIAN = 0
KERNEL_QUARTIC = 1


@jit
def _kernel_value(r2: float, h: float, kind: int) -> float:
    """2-D radially symmetric kernel at squared distance ``r2`` (m²); 1/m².

    Gaussian: ``exp(-r²/2h²) / (2πh²)``; quartic (biweight):
    ``3/(πh²) (1 - r²/h²)²`` for ``r < h``, else 0. Both integrate to 1 over
    the plane (the Gaussian before truncation).
    """
    if kind == 0:
        return math.exp(-0.5 * r2 / (h * h)) / (2.0 * math.pi * h * h)
    u = r2 / (h * h)
    if u >= 1.0:
        return 0.0
    return 3.0 / (math.pi * h * h) * (1.0 - u) * (1.0 - u)


@jit_parallel
def kde_density(ex, ey, ew, qx, qy, bandwidth, kind, cutoff, max_bins):
    """Weighted kernel density of events at query points, truncated at ``cutoff``.

    Parameters
    ----------
    ex, ey : float64 arrays (n,)
        Event coordinates, metres.
    ew : float64 array (n,)
        Event weights.
    qx, qy : float64 arrays (m,)
        Query coordinates (cell centroids), metres.
    bandwidth : float
        Kernel bandwidth ``h`` in metres (> 0).
    kind : int
        :data:`KERNEL_GAUSSIAN` or :data:`KERNEL_QUARTIC`.
    cutoff : float
        Pairs farther apart than ``cutoff`` metres contribute nothing
        (``r <= cutoff`` is kept).
    max_bins : int
        Upper bound on the number of hash bins (memory guard); bins grow
        beyond ``cutoff`` when the extent would need more.

    Returns
    -------
    float64 array (m,)
        ``sum_i w_i K(|q - e_i|)`` in weight per square metre.
    """
    n = ex.size
    m = qx.size
    out = np.zeros(m, dtype=np.float64)
    if n == 0 or m == 0:
        return out
    order, start, x0, y0, size, nbx, nby = build_hash_grid(ex, ey, cutoff, max_bins)
    c2 = cutoff * cutoff
    for j in prange(m):
        fx = (qx[j] - x0) / size
        fy = (qy[j] - y0) / size
        # the bins that can hold a point within `cutoff` (<= size) of q
        ixlo = int(math.floor(fx)) - 1
        iylo = int(math.floor(fy)) - 1
        acc = 0.0
        for ix in range(max(ixlo, 0), min(ixlo + 3, nbx)):
            for iy in range(max(iylo, 0), min(iylo + 3, nby)):
                b = iy * nbx + ix
                for p in range(start[b], start[b + 1]):
                    i = order[p]
                    dx = qx[j] - ex[i]
                    dy = qy[j] - ey[i]
                    r2 = dx * dx + dy * dy
                    if r2 <= c2:
                        acc += ew[i] * _kernel_value(r2, bandwidth, kind)
        out[j] = acc
    return out


@jit
def cell_week_scores(cell, age_weeks, weight, n_cells, window_weeks):
    """Per-cell time-weighted sum ``s_c = sum_i w_i / (1 + t_i)`` over events in cell ``c``.

    ``t_i`` = ``age_weeks[i]`` whole weeks before the forecast start; events
    with ``cell < 0`` (outside the grid), ``t_i < 0`` or ``t_i >= window_weeks``
    are skipped. Serial: one pass over the events, summed in event order.
    """
    s = np.zeros(n_cells, dtype=np.float64)
    for i in range(cell.size):
        c = cell[i]
        a = age_weeks[i]
        if c < 0 or a < 0 or a >= window_weeks:
            continue
        s[c] += weight[i] / (1.0 + a)
    return s


@jit
def ring_weighted_sum(score, indptr, indices, ring, max_ring):
    """``out_c = sum_{n in N(c), d(c,n) <= max_ring} score_n / (1 + d(c, n))``.

    ``(indptr, indices, ring)`` is the CSR neighbour list of
    :meth:`riskgrid.HexGrid.neighbours` (ring = H3 grid distance). The H3
    distance is symmetric, so gathering over a cell's neighbours equals
    scattering every event to the cells around it. Serial: a few hundred
    thousand additions even for a city at resolution 9 with 3 rings, where
    waking a thread pool costs more than it saves. Sums run in neighbour-list
    order (deterministic).
    """
    m = indptr.size - 1
    out = np.zeros(m, dtype=np.float64)
    for c in range(m):
        acc = 0.0
        for p in range(indptr[c], indptr[c + 1]):
            d = ring[p]
            if d <= max_ring:
                acc += score[indices[p]] / (1.0 + d)
        out[c] = acc
    return out
