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

from ._fastexp import exp_vectorisable
from ._jit import jit, jit_parallel, prange
from .spatial import build_hash_grid

__all__ = ["KERNEL_GAUSSIAN", "KERNEL_QUARTIC", "KDE_BINS_PER_CUTOFF", "kde_density", "cell_week_scores", "ring_weighted_sum"]

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


@jit
def _gaussian_sum(r2, w, neg_half_inv_h2, c2):
    """``sum_i w_i exp(neg_half_inv_h2 · r2_i)`` over ``r2_i <= c2``, in passes that the compiler vectorises.

    ``exp`` is :func:`~riskgrid.kernels._fastexp.exp_vectorisable` (no
    library call, within 1 ulp of ``math.exp``); the weighted terms are
    written over ``w`` in one loop, then summed in four interleaved partial
    sums (fixed order). ``w`` is overwritten.
    """
    n = r2.size
    for i in range(n):
        w[i] = (w[i] * (r2[i] <= c2)) * exp_vectorisable(neg_half_inv_h2 * r2[i])
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    m4 = n - n % 4
    for i in range(0, m4, 4):
        a0 += w[i]
        a1 += w[i + 1]
        a2 += w[i + 2]
        a3 += w[i + 3]
    for i in range(m4, n):
        a0 += w[i]
    return (a0 + a1) + (a2 + a3)


#: hash bins per cutoff length in :func:`kde_density` (bins of side cutoff/4: a query scans
#: about 1.3 x the points inside its circle, against 2.9 x for a 3 x 3 block of cutoff-sized bins)
KDE_BINS_PER_CUTOFF = 4


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
        when the extent would need more.

    Returns
    -------
    float64 array (m,)
        ``sum_i w_i K(|q - e_i|)`` in weight per square metre.

    Notes
    -----
    The events are counting-sorted into square bins of side ``cutoff /``
    :data:`KDE_BINS_PER_CUTOFF` and copied in bin order, so that for each bin
    row the bins that can reach a query form one contiguous run of points
    (read as a stream, no index gather). The Gaussian terms are summed by
    :func:`_gaussian_sum` (a vectorised ``exp``, ~2 ulp a term). The kernel's
    constant factor (``1/(2πh²)`` or ``3/(πh²)``) is applied once per query:
    the result equals the pair-by-pair sum to rounding (relative 1e-12 in the
    tests).
    Parallel over queries; each query is summed by one thread in a fixed
    order (same result for any thread count).
    """
    n = ex.size
    m = qx.size
    out = np.zeros(m, dtype=np.float64)
    if n == 0 or m == 0:
        return out
    order, start, x0, y0, size, nbx, nby = build_hash_grid(ex, ey, cutoff / KDE_BINS_PER_CUTOFF, max_bins)
    xs = np.empty(n, dtype=np.float64)
    ys = np.empty(n, dtype=np.float64)
    ws = np.empty(n, dtype=np.float64)
    for p in range(n):
        i = order[p]
        xs[p] = ex[i]
        ys[p] = ey[i]
        ws[p] = ew[i]
    c2 = cutoff * cutoff
    h2 = bandwidth * bandwidth
    neg_half_inv_h2 = -0.5 / h2
    inv_h2 = 1.0 / h2
    if kind == 0:
        norm = 1.0 / (2.0 * math.pi * h2)
    else:
        norm = 3.0 / (math.pi * h2)
    # the bin ranges below are widened by `slack` so that rounding in the bin
    # arithmetic never drops a point; the exact test is r2 <= c2
    slack = 1e-9 * size
    reach = cutoff + slack
    for j in prange(m):
        qxj = qx[j]
        qyj = qy[j]
        iylo = max(int(math.floor((qyj - reach - y0) / size)), 0)
        iyhi = min(int(math.floor((qyj + reach - y0) / size)), nby - 1)
        acc = 0.0
        # the contiguous run of candidate points of each bin row (two passes: count, then gather)
        n_rows = max(iyhi - iylo + 1, 0)
        run_lo = np.zeros(n_rows, dtype=np.int64)
        run_hi = np.zeros(n_rows, dtype=np.int64)
        total = 0
        for iy in range(iylo, iyhi + 1):
            # nearest y of the bin row to the query: points of the row are within
            # cutoff only if |dx| <= sqrt(cutoff² - dy²)
            ylo = y0 + iy * size
            dyr = 0.0
            if qyj < ylo:
                dyr = ylo - qyj
            elif qyj > ylo + size:
                dyr = qyj - ylo - size
            dyr = max(dyr - slack, 0.0)
            rem = c2 - dyr * dyr
            if rem < 0.0:
                continue
            half = math.sqrt(rem) + slack
            ixlo = max(int(math.floor((qxj - half - x0) / size)), 0)
            ixhi = min(int(math.floor((qxj + half - x0) / size)), nbx - 1)
            if ixhi < ixlo:
                continue
            run_lo[iy - iylo] = start[iy * nbx + ixlo]
            run_hi[iy - iylo] = start[iy * nbx + ixhi + 1]
            total += run_hi[iy - iylo] - run_lo[iy - iylo]
        if kind == 0:
            r2 = np.empty(total, dtype=np.float64)
            wv = np.empty(total, dtype=np.float64)
            c = 0
            for row in range(n_rows):
                # unsigned positions: no negative-index wrap-around test in the loop
                for p in range(np.uint64(run_lo[row]), np.uint64(run_hi[row])):
                    dx = qxj - xs[p]
                    dy = qyj - ys[p]
                    r2[c] = dx * dx + dy * dy
                    wv[c] = ws[p]
                    c += 1
            acc = _gaussian_sum(r2, wv, neg_half_inv_h2, c2)
        else:
            for row in range(n_rows):
                for p in range(np.uint64(run_lo[row]), np.uint64(run_hi[row])):
                    dx = qxj - xs[p]
                    dy = qyj - ys[p]
                    r2p = dx * dx + dy * dy
                    u = r2p * inv_h2
                    if r2p <= c2 and u < 1.0:
                        acc += ws[p] * (1.0 - u) * (1.0 - u)
        out[j] = acc * norm
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
