"""Numba kernels of the Knox near-repeat test and the NearRepeat risk surface.

Pure functions on contiguous arrays (metres, days); validation lives in
:mod:`riskgrid.knox` and :mod:`riskgrid.models.near_repeat`.

Layout
------
* A uniform hash grid (:func:`riskgrid.kernels.spatial.build_hash_grid`) sorts points by square cell
  of side ``cell_m`` (at least the search radius) so that every pair closer
  than the radius lies in the same or an adjacent cell.
* Close pairs are stored once, in CSR form over the *cell-sorted* order:
  ``indptr`` (int64, ``n + 1``), ``nbr`` (int32, the partner) and ``sband``
  (uint8, the space band). That is **5 bytes per close pair** plus 8 bytes
  per event; the pair search runs twice (count, then fill) so the arrays are
  allocated at their exact size.
* Each permutation shuffles the event times (in the caller's original order)
  with its own seed, gathers them into the cell-sorted order and re-bins the
  close pairs' time gaps. Permutation ``p`` writes only ``out[p]``, so the
  result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, jit_parallel, prange

__all__ = [
    "count_close_pairs",
    "fill_close_pairs",
    "shuffle_inplace",
    "permutation",
    "pair_time_table",
    "row_buffers",
    "knox_permutation_tables",
    "pairs_per_time_band",
    "weighted_pair_time_table",
    "weighted_knox_permutation_tables",
    "weighted_pairs_per_time_band",
    "time_rank_bounds",
    "near_repeat_risk",
]

#: byte cost of one stored close pair (int32 partner + uint8 space band)
BYTES_PER_PAIR = 5


@jit
def _distance(dx, dy, manhattan):
    if manhattan:
        return abs(dx) + abs(dy)
    return np.sqrt(dx * dx + dy * dy)


@jit
def _space_band(d, se, n_fin):
    """Band ``k`` with ``se[k] <= d < se[k+1]`` among the ``n_fin`` finite bands; ``n_fin`` if ``d < se[0]``."""
    if d < se[0]:
        return n_fin
    b = 0
    while d >= se[b + 1]:
        b += 1
    return b


@jit
def _scan_pairs(k, xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan, nbr, sband, pos):
    """Close partners of sorted point ``k`` in the forward half-stencil.

    Counts them (``pos < 0``) or writes them from ``pos`` on. Every unordered
    pair is seen exactly once: same cell with a larger sorted index, or one
    of the cells (+1,-1), (+1,0), (+1,+1), (0,+1).
    """
    c = cell_of[k]
    cx = c % nx
    cy = c // nx
    m = 0
    for q in range(5):
        if q == 0:
            ox = 0
            oy = 0
        elif q == 1:
            ox = 1
            oy = -1
        elif q == 2:
            ox = 1
            oy = 0
        elif q == 3:
            ox = 1
            oy = 1
        else:
            ox = 0
            oy = 1
        gx = cx + ox
        gy = cy + oy
        if gx < 0 or gx >= nx or gy < 0 or gy >= ny:
            continue
        g = gy * nx + gx
        lo = cell_start[g]
        hi = cell_start[g + 1]
        if q == 0:
            lo = k + 1
        for j in range(lo, hi):
            d = _distance(xs[j] - xs[k], ys[j] - ys[k], manhattan)
            if d < radius and (keep_below or d >= se[0]):
                if pos >= 0:
                    nbr[pos + m] = j
                    sband[pos + m] = _space_band(d, se, n_fin)
                m += 1
    return m


@jit_parallel
def count_close_pairs(xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan):
    """Number of stored close partners of every cell-sorted point (first pass).

    ``xs, ys`` are coordinates in cell-sorted order (metres), ``cell_of`` the
    cell of each sorted point, ``se`` the space edges (metres), ``n_fin`` the
    number of finite bands and ``radius`` the largest finite edge. Pairs with
    ``d < se[0]`` are kept (with band ``n_fin``) only when ``keep_below``.
    """
    n = xs.size
    counts = np.zeros(n, dtype=np.int64)
    dummy_n = np.empty(0, dtype=np.int32)
    dummy_b = np.empty(0, dtype=np.uint8)
    for k in prange(n):
        counts[k] = _scan_pairs(
            k, xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan, dummy_n, dummy_b, -1
        )
    return counts


@jit_parallel
def fill_close_pairs(xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan, indptr, nbr, sband):
    """Second pass: write partners (int32) and space bands (uint8) into CSR rows ``indptr``."""
    n = xs.size
    for k in prange(n):
        _scan_pairs(k, xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan, nbr, sband, indptr[k])


@jit
def shuffle_inplace(a, seed):
    """Fisher-Yates shuffle of ``a`` driven by Numba's generator seeded with ``seed``.

    Numba's generator state is per thread, so calling this inside a parallel
    loop gives the same shuffle for a seed whatever thread runs it.
    """
    np.random.seed(seed)
    for i in range(a.size - 1, 0, -1):
        j = np.random.randint(0, i + 1)
        tmp = a[i]
        a[i] = a[j]
        a[j] = tmp


@jit
def permutation(seed, n):
    """The permutation used for seed ``seed``: ``t[permutation(seed, n)]`` are the shuffled times."""
    p = np.arange(n)
    shuffle_inplace(p, seed)
    return p


@jit
def pair_time_table(tp, indptr, nbr, sband, te, out, gbuf, sbuf):
    """Add the close pairs of times ``tp`` (cell-sorted order, days) to ``out[space band, time band]``.

    A pair falls in time band ``b`` when ``te[b] <= |gap| < te[b + 1]``.
    Most pairs are rejected (``|gap| >= te[-1]``; the caller bins an open last
    time band separately); under permutation that test is unpredictable, so each row is first
    filtered without branches into ``gbuf`` (gaps, float64) and ``sbuf``
    (pair positions, int64), both at least as long as the longest row, and
    only the survivors are binned, into four interleaved histograms (short
    store-to-load dependency chains).
    """
    nt = te.size - 1
    ns = out.shape[0]
    tmax = te[nt]
    t0 = te[0]
    n = tp.size
    stride = ns * nt
    hist = np.zeros(4 * stride, dtype=np.int64)
    for k in range(n):
        tk = tp[k]
        m = 0
        for q in range(indptr[k], indptr[k + 1]):
            g = abs(tk - tp[nbr[q]])
            gbuf[m] = g
            sbuf[m] = q
            m += g < tmax
        for r in range(m):
            g = gbuf[r]
            b = 0
            for e in range(1, nt):
                b += g >= te[e]
            hist[(r & 3) * stride + sband[sbuf[r]] * nt + b] += g >= t0
    for c in range(4):
        for s in range(ns):
            for b in range(nt):
                out[s, b] += hist[c * stride + s * nt + b]


def row_buffers(indptr):
    """Scratch buffers for :func:`pair_time_table` sized to the longest CSR row."""
    longest = int(np.diff(indptr).max(initial=0)) + 1
    return np.empty(longest, dtype=np.float64), np.empty(longest, dtype=np.int64)


#: permutations binned together in one pass over the close pairs by
#: :func:`knox_permutation_tables` (each pair's partner and band are read once
#: for all of them; their times sit side by side, one cache line)
PERMUTATIONS_PER_PASS = 4


@jit
def _pair_time_tables_lanes(tl, n_lanes, indptr, nbr, sband, te, out, gbuf, cbuf):
    """:func:`pair_time_table` for ``n_lanes`` permutations at once.

    ``tl[k * n_lanes + u]`` is the (cell-sorted) time of event ``k`` under
    permutation ``u``; ``out[u]`` receives permutation ``u``'s table. The
    survivors of the branch-free filter ``|gap| < te[-1]`` are kept with their
    histogram offset (lane, space band) in ``cbuf`` (``gbuf``/``cbuf`` at least
    ``n_lanes ×`` the longest row) and binned as in :func:`pair_time_table`.
    Counts are integers: the tables equal ``n_lanes`` separate calls exactly.
    """
    nt = te.size - 1
    ns = out.shape[1]
    tmax = te[nt]
    t0 = te[0]
    n = indptr.size - 1
    stride = ns * nt
    hist = np.zeros(n_lanes * stride, dtype=np.int64)
    for k in range(n):
        m = 0
        kb = k * n_lanes
        for q in range(indptr[k], indptr[k + 1]):
            jb = nbr[q] * n_lanes
            code = sband[q] * nt
            for u in range(n_lanes):
                g = abs(tl[kb + u] - tl[jb + u])
                gbuf[m] = g
                cbuf[m] = code + u * stride
                m += g < tmax
        for r in range(m):
            g = gbuf[r]
            b = 0
            for e in range(1, nt):
                b += g >= te[e]
            hist[cbuf[r] + b] += g >= t0
    for u in range(n_lanes):
        for c in range(stride):
            out[u, c // nt, c % nt] += hist[u * stride + c]


@jit
def _pair_time_tables_4(tl, indptr, nbr, sband, te, out, gbuf, cbuf):
    """:func:`_pair_time_tables_lanes` unrolled for 4 lanes (the hot loop of the permutations).

    The filter stores one uint64 per (pair, lane), ``4 q + lane``, into
    ``cbuf`` and the few survivors recompute their gap when they are binned
    (one store per pair and lane instead of two). Indices are unsigned so
    that no negative-index wrap-around test is compiled into the loop (about
    a third of its time). ``gbuf`` is unused (same signature as the general
    version).
    """
    nt = te.size - 1
    ns = out.shape[1]
    tmax = te[nt]
    t0 = te[0]
    n = indptr.size - 1
    stride = ns * nt
    hist = np.zeros(4 * stride, dtype=np.int64)
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    four = np.uint64(4)
    for k in range(n):
        m = np.uint64(0)
        kb = four * np.uint64(k)
        a0 = tl[kb]
        a1 = tl[kb + one]
        a2 = tl[kb + two]
        a3 = tl[kb + three]
        for q in range(indptr[k], indptr[k + 1]):
            uq = np.uint64(q)
            jb = four * np.uint64(nbr[uq])
            e = four * uq
            cbuf[m] = e
            m += np.uint64(abs(a0 - tl[jb]) < tmax)
            cbuf[m] = e + one
            m += np.uint64(abs(a1 - tl[jb + one]) < tmax)
            cbuf[m] = e + two
            m += np.uint64(abs(a2 - tl[jb + two]) < tmax)
            cbuf[m] = e + three
            m += np.uint64(abs(a3 - tl[jb + three]) < tmax)
        for r in range(m):
            e = cbuf[r]
            q = e >> two
            u = e & three
            g = abs(tl[kb + u] - tl[four * np.uint64(nbr[q]) + u])
            b = 0
            for i in range(1, nt):
                b += g >= te[i]
            hist[np.int64(u) * stride + np.int64(sband[q]) * nt + b] += g >= t0
    for u in range(4):
        for c in range(stride):
            out[u, c // nt, c % nt] += hist[u * stride + c]


@jit_parallel
def knox_permutation_tables(t, order, indptr, nbr, sband, te, seeds, out):
    """Close-pair tables of every permutation: ``out[p] += table(t shuffled with seeds[p])``.

    ``t`` are event times in the caller's order (days), ``order`` maps the
    cell-sorted position to that order, ``out`` is ``(n_perm, n_rows, n_time)``
    int64 (zeros on entry). Permutations go in groups of
    :data:`PERMUTATIONS_PER_PASS` through one pass over the close pairs;
    parallel over the groups; permutation ``p`` is always shuffled with
    ``seeds[p]`` and written to ``out[p]`` only, so the result does not depend
    on the number of threads or on the grouping.
    """
    n_perm = seeds.size
    n = t.size
    P = PERMUTATIONS_PER_PASS
    longest = 1
    for k in range(n):
        longest = max(longest, indptr[k + 1] - indptr[k] + 1)
    n_groups = (n_perm + P - 1) // P
    for grp in prange(n_groups):
        p0 = grp * P
        lanes = min(P, n_perm - p0)
        gbuf = np.empty(P * longest, dtype=np.float64)
        tl = np.empty(n * lanes, dtype=np.float64)
        ts = np.empty(n, dtype=np.float64)
        for u in range(lanes):
            ts[:] = t
            shuffle_inplace(ts, seeds[p0 + u])
            for k in range(n):
                tl[k * lanes + u] = ts[order[k]]
        local = np.zeros((lanes, out.shape[1], out.shape[2]), dtype=np.int64)
        if lanes == 4:
            _pair_time_tables_4(tl, indptr, nbr, sband, te, local, gbuf, np.empty(P * longest, dtype=np.uint64))
        else:
            _pair_time_tables_lanes(tl, lanes, indptr, nbr, sband, te, local, gbuf, np.empty(P * longest, dtype=np.int64))
        for u in range(lanes):
            out[p0 + u, :, :] += local[u]


@jit
def weighted_pair_time_table(tp, ws, indptr, nbr, sband, te, out):
    """Weighted :func:`pair_time_table`: pair ``(k, j)`` adds ``ws[k] * ws[j]`` to its cell.

    ``tp`` times and ``ws`` weights in cell-sorted order; ``te`` are all time
    edges (the last may be ``inf``: every pair is binned, no open band is
    derived by subtraction); ``out`` float64 ``(n_rows, n_time)``. As in
    :func:`pair_time_table`, each row is first filtered without branches on
    ``|gap| < te[-1]``; survivors below ``te[0]`` add ``0.0``. Sums run in
    CSR order (deterministic).
    """
    nt = te.size - 1
    tmax = te[nt]
    t0 = te[0]
    n = tp.size
    longest = 1
    for k in range(n):
        longest = max(longest, indptr[k + 1] - indptr[k])
    gbuf = np.empty(longest, dtype=np.float64)
    qbuf = np.empty(longest, dtype=np.uint64)
    for k in range(n):
        tk = tp[k]
        wk = ws[k]
        m = 0
        for q in range(indptr[k], indptr[k + 1]):
            g = abs(tk - tp[nbr[q]])
            gbuf[m] = g
            qbuf[m] = q
            m += g < tmax
        for r in range(m):
            g = gbuf[r]
            q = qbuf[r]
            b = 0
            for e in range(1, nt):
                b += g >= te[e]
            out[sband[q], b] += (wk * ws[nbr[q]]) * (g >= t0)


@jit
def time_rank_bounds(t_sorted, te):
    """``hi[e, a]``: first rank ``b > a`` with ``t_sorted[b] - t_sorted[a] >= te[e]`` (n when none).

    Ranks ``a + 1 .. hi[e, a] - 1`` are the later times closer than ``te[e]``
    to rank ``a`` (the gap is monotone in ``b``); permutation-invariant.
    """
    n = t_sorted.size
    n_edges = te.size
    hi = np.empty((n_edges, n), dtype=np.int64)
    for e in range(n_edges):
        edge = te[e]
        for a in range(n):
            if edge == np.inf:
                hi[e, a] = n
                continue
            lo = a + 1
            h = n
            while lo < h:
                mid = (lo + h) // 2
                if t_sorted[mid] - t_sorted[a] < edge:
                    lo = mid + 1
                else:
                    h = mid
            hi[e, a] = lo
    return hi


@jit
def weighted_pairs_per_time_band(w_by_rank, hi, out):
    """Weighted count of *all* pairs per time band: ``out[b] = sum w_a w_c`` over rank pairs ``a < c``
    with ``te[b] <= t_c - t_a < te[b + 1]``.

    ``w_by_rank[a]`` is the weight of the event holding the ``a``-th smallest
    time; ``hi`` from :func:`time_rank_bounds`. O(n) per edge (prefix sums).
    """
    n = w_by_rank.size
    n_edges = hi.shape[0]
    prefix = np.zeros(n + 1, dtype=np.float64)
    for a in range(n):
        prefix[a + 1] = prefix[a] + w_by_rank[a]
    below = np.zeros(n_edges, dtype=np.float64)
    for e in range(n_edges):
        acc = 0.0
        for a in range(n):
            acc += w_by_rank[a] * (prefix[hi[e, a]] - prefix[a + 1])
        below[e] = acc
    for b in range(n_edges - 1):
        out[b] = below[b + 1] - below[b]


@jit_parallel
def weighted_knox_permutation_tables(t, w, order, indptr, nbr, sband, te, seeds, rank_of, hi, out, far):
    """Weighted tables of every permutation; weights stay with the events, times are shuffled.

    Permutation ``p`` gives event ``i`` the time ``t[perm[i]]`` with ``perm =
    permutation(seeds[p], n)`` (the same shuffle as the unweighted test);
    ``out[p]`` (float64 ``(n_rows, n_time)``) receives the close pairs'
    ``w_i w_j`` per cell (:func:`weighted_pair_time_table`). When ``far`` has
    rows (``(n_perm, n_time)``), ``far[p]`` receives the weighted count of
    all pairs per time band (:func:`weighted_pairs_per_time_band`), with
    ``rank_of[i]`` the rank of ``t[i]`` among the sorted times and ``hi``
    from :func:`time_rank_bounds`. Parallel over permutations; each writes
    its own slab.
    """
    n_perm = seeds.size
    n = t.size
    with_far = far.shape[0] > 0
    for p in prange(n_perm):
        perm = np.arange(n)
        shuffle_inplace(perm, seeds[p])
        tp = np.empty(n, dtype=np.float64)
        ws = np.empty(n, dtype=np.float64)
        for k in range(n):
            i = order[k]
            tp[k] = t[perm[i]]
            ws[k] = w[i]
        weighted_pair_time_table(tp, ws, indptr, nbr, sband, te, out[p])
        if with_far:
            wr = np.empty(n, dtype=np.float64)
            for i in range(n):
                wr[rank_of[perm[i]]] = w[i]
            weighted_pairs_per_time_band(wr, hi, far[p])


@jit_parallel
def pairs_per_time_band(t_sorted, te):
    """Number of all ``n (n - 1) / 2`` pairs with ``te[b] <= |t_i - t_j| < te[b + 1]`` (O(n log n) per edge).

    ``t_sorted`` must be ascending (days). Exact: the gaps are computed by
    the same subtraction as the pair kernels (binary search on
    ``t[j] - t[i] < e``, which is monotone in ``j``).
    """
    n = t_sorted.size
    n_edges = te.size
    below = np.zeros(n_edges, dtype=np.int64)  # pairs with gap < te[e]
    total = n * (n - 1) // 2
    for e in range(n_edges):
        edge = te[e]
        if edge == np.inf:
            below[e] = total
            continue
        s = 0
        for i in prange(n):
            lo = i + 1
            hi = n
            while lo < hi:
                mid = (lo + hi) // 2
                if t_sorted[mid] - t_sorted[i] < edge:
                    lo = mid + 1
                else:
                    hi = mid
            s += lo - i - 1
        below[e] = s
    out = np.empty(n_edges - 1, dtype=np.int64)
    for b in range(n_edges - 1):
        out[b] = below[b + 1] - below[b]
    return out


@jit_parallel
def near_repeat_risk(cx, cy, ex, ey, eband, order, cell_start, x0, y0, h, nx, ny, se, n_fin, manhattan, ex_near, ex_far):
    """Near-repeat score of every cell centre from the recent events around it.

    For cell ``c`` returns ``sum_i ex_near[s(d_ci), eband[i]] - ex_far[eband[i]]``
    over events closer than the largest finite space edge ``se[n_fin]``
    (``s = n_fin`` when ``d < se[0]``, whose row of ``ex_near`` is 0). The
    caller adds the constant ``sum_i ex_far[eband[i]]`` (all events counted
    as far). ``order, cell_start, x0, y0, h, nx, ny`` describe the events'
    hash grid (:func:`~riskgrid.kernels.spatial.build_hash_grid` with ``cell_m >= se[n_fin]``).
    Parallel over cells; each writes its own value.
    """
    nc = cx.size
    radius = se[n_fin]
    out = np.zeros(nc, dtype=np.float64)
    for c in prange(nc):
        gx = int(np.floor((cx[c] - x0) / h))
        gy = int(np.floor((cy[c] - y0) / h))
        acc = 0.0
        for oy in range(-1, 2):
            yy = gy + oy
            if yy < 0 or yy >= ny:
                continue
            for ox in range(-1, 2):
                xx = gx + ox
                if xx < 0 or xx >= nx:
                    continue
                g = yy * nx + xx
                for q in range(cell_start[g], cell_start[g + 1]):
                    i = order[q]
                    d = _distance(ex[i] - cx[c], ey[i] - cy[c], manhattan)
                    if d < radius:
                        acc += ex_near[_space_band(d, se, n_fin), eband[i]] - ex_far[eband[i]]
        out[c] = acc
    return out
