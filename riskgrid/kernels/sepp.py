"""Kernels of the continuous space-time self-exciting point process (SEPP).

Pure Numba functions on contiguous arrays and scalars, used by
:class:`riskgrid.models.SEPP`:

* a spatial hash (counting sort of points into square buckets);
* the candidate parent pairs of every event, as CSR arrays of time lags
  ``dt`` (days) and squared distances ``r2`` (m²), float32 or float64;
* the E-step for the exponential-Gaussian and the histogram trigger (one
  kernel each, with or without event weights), the histogram's pair bins
  computed once per truncation;
* a binned (linear binning + separable Gaussian convolution + bilinear
  interpolation) kernel density estimate on a square raster;
* the triggering intensity summed at arbitrary points (prediction).

Parallel kernels split their outer loop into a fixed number of chunks that
does not depend on the number of threads; every chunk writes its own slice
and partial sums are added serially afterwards, so results are identical
whatever the thread count.
"""

from __future__ import annotations

import math

import numpy as np

from ._fastexp import exp_vectorisable
from ._jit import jit, jit_parallel, prange
from .spatial import _bucket

__all__ = [
    "candidate_pairs",
    "candidate_counts",
    "candidate_fill",
    "edge_sums",
    "estep_expgauss",
    "estep_histogram",
    "pair_bins",
    "bin_linear",
    "convolve_separable",
    "interp_bilinear",
    "trigger_at_points",
]

TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------- #
# spatial hash
# --------------------------------------------------------------------------- #
# points are hashed by riskgrid.kernels.spatial.build_hash_grid (shared with the Knox and KDE kernels)


@jit
def _lower_bound(a, lo, hi, v):
    """First index ``k`` in ``[lo, hi)`` with ``a[k] >= v`` (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


# --------------------------------------------------------------------------- #
# candidate parents
# --------------------------------------------------------------------------- #
@jit
def _bucket_chunks(start, n_chunks):
    """First bucket of each of ``n_chunks`` chunks holding about equal numbers of points (last entry: nx * ny)."""
    nb = start.size - 1
    n = start[nb]
    out = np.empty(n_chunks + 1, dtype=np.int64)
    k = 0
    for c in range(n_chunks):
        target = (c * n) // n_chunks
        while k < nb and start[k + 1] <= target:
            k += 1
        out[c] = k
    out[n_chunks] = nb
    return out


@jit_parallel(fastmath=False)  # the count and fill passes must compute identical squared distances
def _scan_candidates(order, start, ts, xs, ys, nx, ny, max_days, max_d2, j_first, indptr, dt, r2, fill, par, want_par,
                     bounds):
    """Candidate parents of every child, bucket by bucket (children of one bucket in time order, the time
    windows of the 3 × 3 neighbouring buckets advanced monotonically instead of searched; points read in
    hash order, so contiguous). Pairs of a child in the order (neighbour row, column, time)."""
    n = order.size
    counts = np.zeros(n, dtype=np.int64)
    n_chunks = bounds.size - 1
    for c in prange(n_chunks):
        lo = np.empty(9, dtype=np.int64)
        hi = np.empty(9, dtype=np.int64)
        end = np.empty(9, dtype=np.int64)
        for k in range(bounds[c], bounds[c + 1]):
            s = start[k]
            e = start[k + 1]
            if s == e:
                continue
            by = k // nx
            bx = k - by * nx
            m = 0
            for cy in range(max(by - 1, 0), min(by + 2, ny)):
                for cx in range(max(bx - 1, 0), min(bx + 2, nx)):
                    kk = cy * nx + cx
                    lo[m] = start[kk]
                    hi[m] = start[kk]
                    end[m] = start[kk + 1]
                    m += 1
            for q in range(s, e):
                j = order[q]
                if j < j_first:
                    continue
                tj = ts[q]
                xj = xs[q]
                yj = ys[q]
                t_lo = tj - max_days
                cnt = 0
                pos = indptr[j] if fill else 0
                need = indptr[j + 1] - pos if fill else 1
                if need == 0:
                    continue
                for b in range(m):
                    a = lo[b]
                    while a < end[b] and ts[a] < t_lo:
                        a += 1
                    lo[b] = a
                    h = max(hi[b], a)
                    while h < end[b] and ts[h] < tj:
                        h += 1
                    hi[b] = h
                    if not fill:  # branch-free count (vectorisable)
                        for u in range(a, h):
                            ddx = xj - xs[u]
                            ddy = yj - ys[u]
                            cnt += np.int64(ddx * ddx + ddy * ddy <= max_d2)
                        continue
                    # branch-free fill: every candidate is written to the next free slot, which only an accepted
                    # one keeps; the child's pair count (first pass) ends the scan at its last pair, so no write
                    # leaves the child's slots
                    for u in range(a, h):
                        ddx = xj - xs[u]
                        ddy = yj - ys[u]
                        d2 = ddx * ddx + ddy * ddy
                        dt[pos + cnt] = tj - ts[u]
                        r2[pos + cnt] = d2
                        if want_par:
                            par[pos + cnt] = order[u]
                        cnt += np.int64(d2 <= max_d2)
                        if cnt == need:
                            break
                    if cnt == need:
                        break
                counts[j] = cnt
    return counts


@jit
def candidate_pairs(t, x, y, order, start, x0, y0, cell_m, nx, ny, max_days, max_d2, j_first, max_pairs, want_par, proto):
    """Candidate parents of every event ``j >= j_first``, as CSR arrays.

    Parent ``i`` of ``j`` satisfies ``t[j] - max_days <= t[i] < t[j]`` (strict:
    simultaneous events cannot trigger each other) and squared distance
    ``<= max_d2``. ``t`` must be sorted ascending; ``(order, start)`` come from
    :func:`~riskgrid.kernels.spatial.build_hash_grid` with ``cell_m >= sqrt(max_d2)`` so that the 3 × 3
    neighbouring buckets hold every candidate (``x0, y0, cell_m`` are not
    read: children are visited bucket by bucket, in time order inside one, with
    the time windows of the neighbouring buckets advanced monotonically; the
    pairs and their order are those of a per-child binary search over the
    same buckets).

    If the number of pairs exceeds ``max_pairs`` the fill pass is skipped
    and ``dt``, ``r2`` are returned empty (the caller checks ``indptr[-1]``).
    With ``want_par`` the parent of every pair is returned too (int32,
    4 bytes per pair; weighted fits), else an empty array. ``dt`` and ``r2``
    are stored with the dtype of ``proto`` (an empty array): float32 halves
    the memory (8 bytes per pair; lags and squared distances are computed in
    float64, then rounded to a relative 6e-8).

    Returns
    -------
    indptr : int64 (n + 1,)
        Pairs of child ``j`` are ``indptr[j]:indptr[j + 1]`` (empty for ``j < j_first``).
    dt : proto.dtype (n_pairs,)
        ``t[j] - t[i]`` in days (> 0).
    r2 : proto.dtype (n_pairs,)
        Squared distance in m².
    par : int32 (n_pairs,) or (0,)
        Parent ``i`` of each pair (``want_par``).
    """
    empty = np.zeros(0, dtype=proto.dtype)
    no_par = np.zeros(0, dtype=np.int32)
    n = t.size
    indptr = candidate_counts(t, x, y, order, start, nx, ny, max_days, max_d2, j_first)
    if indptr[n] > max_pairs:
        return indptr, empty, empty, no_par
    dt = np.empty(indptr[n], dtype=proto.dtype)
    r2 = np.empty(indptr[n], dtype=proto.dtype)
    par = np.empty(indptr[n] if want_par else 0, dtype=np.int32)
    candidate_fill(t, x, y, order, start, nx, ny, max_days, max_d2, j_first, indptr, dt, r2, par)
    return indptr, dt, r2, par


@jit
def _hash_ordered(t, x, y, order, start):
    n = t.size
    return t[order], x[order], y[order], _bucket_chunks(start, min(max(n // 256, 1), 1024))


@jit
def candidate_counts(t, x, y, order, start, nx, ny, max_days, max_d2, j_first):
    """First pass of :func:`candidate_pairs`: the CSR ``indptr`` (int64, n + 1) of the candidate parents."""
    n = t.size
    ts, xs, ys, bounds = _hash_ordered(t, x, y, order, start)
    indptr = np.zeros(n + 1, dtype=np.int64)
    empty = np.zeros(0)
    counts = _scan_candidates(order, start, ts, xs, ys, nx, ny, max_days, max_d2, j_first, indptr, empty, empty, False,
                              np.zeros(0, dtype=np.int32), False, bounds)
    for j in range(n):
        indptr[j + 1] = indptr[j] + counts[j]
    return indptr


@jit
def candidate_fill(t, x, y, order, start, nx, ny, max_days, max_d2, j_first, indptr, dt, r2, par):
    """Second pass of :func:`candidate_pairs` into arrays the caller allocated (``indptr`` from
    :func:`candidate_counts`; ``dt``, ``r2`` of size ``indptr[-1]``, ``par`` of that size or empty). Large
    NumPy allocations are backed by huge pages where the system allows, which saves most page faults of
    first touching gigabytes of pairs."""
    ts, xs, ys, bounds = _hash_ordered(t, x, y, order, start)
    _scan_candidates(order, start, ts, xs, ys, nx, ny, max_days, max_d2, j_first, indptr, dt, r2, True, par, par.size > 0,
                     bounds)


# --------------------------------------------------------------------------- #
# E-steps
# --------------------------------------------------------------------------- #
@jit
def _chunk_bounds(n, n_chunks, c):
    return (c * n) // n_chunks, ((c + 1) * n) // n_chunks


#: pairs per block of the exp-gauss E-step: trigger values of a block of whole children are computed in one
#: vectorised loop into a buffer of this many float64 (32 KB, cache resident), then summed per child
_ESTEP_BLOCK = 4096


@jit_parallel(fastmath=False)
def estep_expgauss(indptr, dt, r2, par, wt, mu, theta, omega, sigma, n_chunks):
    """E-step of the exponential-Gaussian trigger over candidate pairs.

    ``g(dt, r2) = theta * omega * exp(-omega dt) * exp(-r2 / (2 sigma²)) / (2 pi sigma²)``
    (events / day / m²). The exponentials of a block of whole children are
    computed by :func:`exp_vectorisable` in one vectorised loop (within 1 ulp
    of ``math.exp``), then each child's sums are taken with four interleaved
    partial sums; the order is fixed, so the result does not depend on the
    thread count.

    Parameters
    ----------
    indptr, dt, r2 : CSR candidate pairs from :func:`candidate_pairs` (float32 or float64).
    par, wt : int32 (n_pairs,), float64 (n,)
        Event weights (multiplicities): a parent ``i`` counts ``wt[i]`` times
        in the intensity (``par``: the parent of each pair) and a child ``j``
        ``wt[j]`` times in the statistics. Empty arrays: unweighted (every
        weight 1).
    mu : float64 (n,)
        Background intensity at each event (events / day / m²).
    theta, omega, sigma : float
        Branching ratio, decay rate (per day), spatial sd (metres).
    n_chunks : int
        Fixed number of work chunks (results do not depend on the thread count).

    Returns
    -------
    lam : float64 (n,)
        Conditional intensity at each event.
    p_bg : float64 (n,)
        Probability that the event is a background event, ``mu / lam``.
    stats : float64 (3,)
        ``(sum p_ij, sum p_ij dt_ij, sum p_ij r2_ij)`` over all pairs (weighted by the child's weight).
    """
    n = mu.size
    weighted = par.size > 0
    lam = np.empty(n)
    p_bg = np.empty(n)
    part = np.zeros((n_chunks, 3))
    a = theta * omega / (TWO_PI * sigma * sigma)
    b = 0.5 / (sigma * sigma)
    for c in prange(n_chunks):
        j0, j1 = _chunk_bounds(n, n_chunks, c)
        cap = _ESTEP_BLOCK
        for j in range(j0, j1):
            cap = max(cap, indptr[j + 1] - indptr[j])
        buf = np.empty(cap)
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        jb = j0
        while jb < j1:
            # a block of whole children jb..je-1 with at most cap pairs
            q0 = indptr[jb]
            je = jb + 1
            while je < j1 and indptr[je + 1] - q0 <= cap:
                je += 1
            m = indptr[je] - q0
            dtb = dt[q0:q0 + m]  # slices: non-negative indices, so the loops vectorise
            r2b = r2[q0:q0 + m]
            for k in range(m):
                buf[k] = a * exp_vectorisable(-omega * np.float64(dtb[k]) - b * np.float64(r2b[k]))
            if weighted:
                pb = par[q0:q0 + m]
                for k in range(m):
                    buf[k] *= wt[pb[k]]
            for j in range(jb, je):
                o = indptr[j] - q0
                mj = indptr[j + 1] - indptr[j]
                gb = buf[o:o + mj]
                ub = dtb[o:o + mj]
                vb = r2b[o:o + mj]
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                a3 = 0.0
                b0 = 0.0
                b1 = 0.0
                b2 = 0.0
                b3 = 0.0
                c0 = 0.0
                c1 = 0.0
                c2 = 0.0
                c3 = 0.0
                m4 = mj - mj % 4
                for k in range(0, m4, 4):
                    e0 = gb[k]
                    e1 = gb[k + 1]
                    e2 = gb[k + 2]
                    e3 = gb[k + 3]
                    a0 += e0
                    a1 += e1
                    a2 += e2
                    a3 += e3
                    b0 += e0 * np.float64(ub[k])
                    b1 += e1 * np.float64(ub[k + 1])
                    b2 += e2 * np.float64(ub[k + 2])
                    b3 += e3 * np.float64(ub[k + 3])
                    c0 += e0 * np.float64(vb[k])
                    c1 += e1 * np.float64(vb[k + 1])
                    c2 += e2 * np.float64(vb[k + 2])
                    c3 += e3 * np.float64(vb[k + 3])
                for k in range(m4, mj):
                    e0 = gb[k]
                    a0 += e0
                    b0 += e0 * np.float64(ub[k])
                    c0 += e0 * np.float64(vb[k])
                g0 = (a0 + a1) + (a2 + a3)
                g1 = (b0 + b1) + (b2 + b3)
                g2 = (c0 + c1) + (c2 + c3)
                lj = mu[j] + g0
                lam[j] = lj
                p_bg[j] = mu[j] / lj
                if weighted:
                    wj = wt[j] / lj
                    s0 += g0 * wj
                    s1 += g1 * wj
                    s2 += g2 * wj
                else:
                    s0 += g0 / lj
                    s1 += g1 / lj
                    s2 += g2 / lj
            jb = je
        part[c, 0] = s0
        part[c, 1] = s1
        part[c, 2] = s2
    stats = np.zeros(3)
    for c in range(n_chunks):
        for k in range(3):
            stats[k] += part[c, k]
    return lam, p_bg, stats


@jit
def _bin_of(edges, v):
    """Bin ``b`` with ``edges[b] <= v < edges[b + 1]``; values at or past the last edge go to the last bin."""
    nb = edges.size - 1
    b = _lower_bound(edges, 0, edges.size, v)
    # lower_bound gives the first edge >= v; the bin is one less unless v hits an edge exactly
    if b < edges.size and edges[b] == v:
        return min(b, nb - 1)
    return min(max(b - 1, 0), nb - 1)


@jit_parallel
def pair_bins(dt, r2, time_edges, r2_edges, n_chunks):
    """Time-lag bin and distance-ring index of every candidate pair (int16), computed once per truncation.

    ``time_edges`` in days, ``r2_edges`` the squared ring radii (m²); see
    :func:`_bin_of` for values on an edge. At most 32,767 bins each.
    """
    m = dt.size
    bt = np.empty(m, dtype=np.int16)
    bs = np.empty(m, dtype=np.int16)
    for c in prange(n_chunks):
        p0, p1 = _chunk_bounds(m, n_chunks, c)
        for p in range(p0, p1):
            bt[p] = _bin_of(time_edges, np.float64(dt[p]))
            bs[p] = _bin_of(r2_edges, np.float64(r2[p]))
    return bt, bs


@jit_parallel
def estep_histogram(indptr, bt, bs, par, wt, mu, rate_time, density_space, n_chunks):
    """E-step of the piecewise-constant (histogram) trigger over candidate pairs.

    ``g = rate_time[bt] * density_space[bs]`` with the time-lag bin ``bt``
    and distance ring ``bs`` of each pair from :func:`pair_bins`.
    ``rate_time`` is ``theta`` times the delay density (per day);
    ``density_space`` a density per m². ``par, wt``: event weights as in
    :func:`estep_expgauss` (empty: unweighted).

    Returns
    -------
    lam, p_bg : float64 (n,)
        As :func:`estep_expgauss`.
    stats_time : float64 (n_time_bins,)
        Sum of ``p_ij`` per time bin.
    stats_space : float64 (n_distance_bins,)
        Sum of ``p_ij`` per distance ring.
    """
    n = mu.size
    weighted = par.size > 0
    nbt = rate_time.size
    nbs = density_space.size
    lam = np.empty(n)
    p_bg = np.empty(n)
    part_t = np.zeros((n_chunks, nbt))
    part_s = np.zeros((n_chunks, nbs))
    for c in prange(n_chunks):
        j0, j1 = _chunk_bounds(n, n_chunks, c)
        for j in range(j0, j1):
            g0 = 0.0
            for p in range(indptr[j], indptr[j + 1]):
                if weighted:
                    g0 += wt[par[p]] * rate_time[bt[p]] * density_space[bs[p]]
                else:
                    g0 += rate_time[bt[p]] * density_space[bs[p]]
            lj = mu[j] + g0
            lam[j] = lj
            p_bg[j] = mu[j] / lj
            inv = wt[j] / lj if weighted else 1.0 / lj
            for p in range(indptr[j], indptr[j + 1]):
                if weighted:
                    q = wt[par[p]] * rate_time[bt[p]] * density_space[bs[p]] * inv
                else:
                    q = rate_time[bt[p]] * density_space[bs[p]] * inv
                part_t[c, bt[p]] += q
                part_s[c, bs[p]] += q
    stats_time = np.zeros(nbt)
    stats_space = np.zeros(nbs)
    for c in range(n_chunks):
        for k in range(nbt):
            stats_time[k] += part_t[c, k]
        for k in range(nbs):
            stats_space[k] += part_s[c, k]
    return lam, p_bg, stats_time, stats_space


# --------------------------------------------------------------------------- #
# binned Gaussian KDE on a raster
# --------------------------------------------------------------------------- #
@jit
def bin_linear(x, y, w, x0, y0, step, nx, ny):
    """Linear binning of weighted points onto an ``(ny, nx)`` raster.

    Pixel ``(r, c)`` is centred at ``(x0 + c * step, y0 + r * step)``; each
    point's weight is shared among its four surrounding pixel centres
    (bilinear weights), which keeps its mean position exactly. Points must lie
    inside ``[x0, x0 + (nx - 1) step] × [y0, y0 + (ny - 1) step]``.
    """
    grid = np.zeros((ny, nx))
    for i in range(x.size):
        fx = (x[i] - x0) / step
        fy = (y[i] - y0) / step
        ix = min(max(int(math.floor(fx)), 0), nx - 2)
        iy = min(max(int(math.floor(fy)), 0), ny - 2)
        ux = fx - ix
        uy = fy - iy
        wi = w[i]
        grid[iy, ix] += wi * (1.0 - ux) * (1.0 - uy)
        grid[iy, ix + 1] += wi * ux * (1.0 - uy)
        grid[iy + 1, ix] += wi * (1.0 - ux) * uy
        grid[iy + 1, ix + 1] += wi * ux * uy
    return grid


@jit_parallel
def convolve_separable(grid, taps):
    """2-D convolution of ``grid`` with ``taps ⊗ taps`` (odd length, centred), zero outside."""
    ny, nx = grid.shape
    m = taps.size // 2
    tmp = np.zeros((ny, nx))
    # row slices with non-negative indices so that the inner loops vectorise (same operations, same order)
    for r in prange(ny):
        dst = tmp[r]
        row = grid[r]
        for k in range(taps.size):
            off = k - m
            wk = taps[k]
            lo = max(0, -off)
            hi = min(nx, nx - off)
            d = dst[lo:hi]
            src = row[lo + off:hi + off]
            for c in range(hi - lo):
                d[c] += wk * src[c]
    out = np.zeros((ny, nx))
    for r in prange(ny):
        dst = out[r]
        for k in range(taps.size):
            rr = r + k - m
            if rr < 0 or rr >= ny:
                continue
            wk = taps[k]
            src = tmp[rr]
            for c in range(nx):
                dst[c] += wk * src[c]
    return out


@jit_parallel
def interp_bilinear(grid, x0, y0, step, px, py):
    """Bilinear interpolation of a raster (see :func:`bin_linear`) at points; 0 outside it."""
    ny, nx = grid.shape
    n = px.size
    out = np.zeros(n)
    for i in prange(n):
        fx = (px[i] - x0) / step
        fy = (py[i] - y0) / step
        if fx < 0.0 or fy < 0.0 or fx > nx - 1 or fy > ny - 1:
            continue
        ix = min(int(math.floor(fx)), nx - 2)
        iy = min(int(math.floor(fy)), ny - 2)
        ux = fx - ix
        uy = fy - iy
        out[i] = (
            grid[iy, ix] * (1.0 - ux) * (1.0 - uy)
            + grid[iy, ix + 1] * ux * (1.0 - uy)
            + grid[iy + 1, ix] * (1.0 - ux) * uy
            + grid[iy + 1, ix + 1] * ux * uy
        )
    return out


# --------------------------------------------------------------------------- #
# prediction: trigger intensity at points
# --------------------------------------------------------------------------- #
@jit_parallel
def trigger_at_points(px, py, ex, ey, ew, order, start, x0, y0, cell_m, nx, ny, max_d2, sigma, r2_edges, density_space, gaussian):
    """``sum_i ew[i] * s(|p - e_i|²)`` at every point ``p`` (pairs within ``max_d2`` only).

    ``s`` is the isotropic Gaussian density of sd ``sigma`` metres when
    ``gaussian`` is true, otherwise the ring density ``density_space`` on the
    squared-radius edges ``r2_edges`` (per m²). ``(order, start)`` hash the
    events ``(ex, ey)`` with :func:`~riskgrid.kernels.spatial.build_hash_grid` and ``cell_m >= sqrt(max_d2)``.
    """
    n = px.size
    out = np.zeros(n)
    a = 1.0 / (TWO_PI * sigma * sigma) if gaussian else 0.0
    b = 0.5 / (sigma * sigma) if gaussian else 0.0
    for q in prange(n):
        xq = px[q]
        yq = py[q]
        bx = _bucket(xq, x0, cell_m)
        by = _bucket(yq, y0, cell_m)
        s = 0.0
        for cy in range(max(by - 1, 0), min(by + 2, ny)):
            for cx in range(max(bx - 1, 0), min(bx + 2, nx)):
                k = cy * nx + cx
                for u in range(start[k], start[k + 1]):
                    i = order[u]
                    ddx = xq - ex[i]
                    ddy = yq - ey[i]
                    d2 = ddx * ddx + ddy * ddy
                    if d2 <= max_d2:
                        if gaussian:
                            s += ew[i] * a * math.exp(-b * d2)
                        else:
                            s += ew[i] * density_space[_bin_of(r2_edges, d2)]
        out[q] = s
    return out


# --------------------------------------------------------------------------- #
# edge correction of the exp-gauss M-step
# --------------------------------------------------------------------------- #
@jit(inline="always", fastmath=False)
def _one_minus_exp_neg(v):
    """``1 - exp(-v)`` for ``v >= 0`` within a few ulp, vectorisable: below 0.5 by the alternating series
    ``v (1 - v/2 (1 - v/3 (1 - ...)))`` to 18 terms (truncation below 1e-22 relative), else ``1 - exp(-v)``
    (at least 0.39, so no cancellation)."""
    s = 1.0
    for m in range(18, 1, -1):
        s = 1.0 - v * (1.0 / m) * s
    small = v * s
    return small if v < 0.5 else 1.0 - exp_vectorisable(-v)


@jit(fastmath=False)
def edge_sums(tau, omega, w, k):
    """``(sum w (1 - exp(-omega tau)), sum w tau exp(-omega tau), sum w tau² exp(-omega tau))`` over the first
    ``k`` entries of ``tau`` (days; ``w`` empty: all weights 1), for the edge-corrected omega M-step
    (:func:`riskgrid.models.sepp._edge_sums`). Terms in blocks of 4096: the exponentials in one vectorised
    loop, then summed in index order."""
    weighted = w.size > 0
    blk = 4096
    e = np.empty(blk)
    o = np.empty(blk)
    sa = 0.0
    sb = 0.0
    sc = 0.0
    for q0 in range(0, k, blk):
        m = min(blk, k - q0)
        tb = tau[q0:q0 + m]
        for i in range(m):
            v = omega * tb[i]
            e[i] = exp_vectorisable(-v)
            o[i] = _one_minus_exp_neg(v)
        if weighted:
            wb = w[q0:q0 + m]
            for i in range(m):
                ti = tb[i]
                sa += wb[i] * o[i]
                sb += wb[i] * ti * e[i]
                sc += wb[i] * ti * ti * e[i]
        else:
            for i in range(m):
                ti = tb[i]
                sa += o[i]
                sb += ti * e[i]
                sc += ti * ti * e[i]
    return sa, sb, sc
