"""Numba kernels of the grid Hawkes / ETAS model (:class:`riskgrid.models.GridHawkes`).

Model (cell ``c``, type ``l``, time ``t`` in days)::

    lambda_{c,l}(t) = mu[c, l] + sum_{i : t_i < t, ring(c, c_i) <= R}
                      theta[k_i, l] * omega * exp(-omega (t - t_i)) * w[ring(c, c_i)]

The E-step never forms the O(N^2) matrix of parent-child pairs. Events are
sorted by (cell, time); once per fit, :func:`build_streams` merges for every
*target* cell the time-sorted events of its in-grid neighbours within ``R``
rings into one stream. Each EM iteration walks every stream once with the
exponential recursion ``A(t') = exp(-omega (t' - t)) A(t)`` (+1 when a source
event is passed) and its delay moment ``B(t') = (B(t) + (t' - t) A(t))
exp(-omega (t' - t))``, one state per (ring, source type), so an iteration
costs O(sum over cells of the events of its neighbourhood x (R + 1) K) =
O(N x cells in a neighbourhood x K) time; the streams take
O(N x cells in a neighbourhood) memory (12 bytes per entry).

Every kernel is pure (arrays and scalars in, arrays out) and deterministic
whatever the number of threads: the parallel loop runs over a fixed,
data-determined partition of the cells into chunks, each chunk writes its own
slice, and the caller sums the slices in a fixed order.

References: Mohler, Short, Malinowski, Johnson, Tita, Bertozzi & Brantingham
(2015), JASA 110(512):1399-1411; Lewis & Mohler (2011), J. Nonparametric Stat.
(edge-corrected EM).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, jit_parallel, prange

__all__ = ["background_count_variance", "build_streams", "gap_mixture_em", "hawkes_estep", "nb_marginal_terms", "ring_sums", "spread_to_neighbours",
           "one_cell_mle", "one_cell_trigger_sums", "cell_trigger_sums", "trigger_sum_em"]


@jit_parallel
def build_streams(t, typ, wt, cell_ptr, nb_ptr, nb_idx, nb_ring, K):
    """Merge, for every target cell, the time-sorted events of its neighbourhood.

    The stream of cell ``c`` lists every event of every in-grid cell within
    ``R`` rings of ``c`` in time order (ties: lower ring first, then
    neighbour order, then event order), as its time, a code
    ``ring * K + type`` and its weight. It depends only on the data, so it is
    built once per fit and reused by every EM iteration.

    Parameters
    ----------
    t, typ, cell_ptr, nb_ptr, nb_idx, nb_ring
        As in :func:`hawkes_estep`.
    wt : (N,) float64
        Event weights (multiplicities), same order as ``t``.
    K : int
        Number of types.

    Returns
    -------
    stream_ptr : (n_cells + 1,) int64
    stream_t : (M,) float64
    stream_code : (M,) int32
    stream_w : (M,) float64
    """
    n_cells = cell_ptr.size - 1
    size = np.zeros(n_cells + 1, dtype=np.int64)
    for c in prange(n_cells):
        s = 0
        for q in range(nb_ptr[c], nb_ptr[c + 1]):
            n = nb_idx[q]
            s += cell_ptr[n + 1] - cell_ptr[n]
        size[c + 1] = s if cell_ptr[c + 1] > cell_ptr[c] else 0  # no target, no stream
    stream_ptr = np.cumsum(size)
    M = stream_ptr[-1]
    stream_t = np.empty(M, dtype=np.float64)
    stream_code = np.empty(M, dtype=np.int32)
    stream_w = np.empty(M, dtype=np.float64)
    for c in prange(n_cells):
        p = stream_ptr[c]
        p1 = stream_ptr[c + 1]
        if p == p1:
            continue
        q0 = nb_ptr[c]
        deg = nb_ptr[c + 1] - q0
        head = np.empty(deg, dtype=np.int64)
        stop = np.empty(deg, dtype=np.int64)
        for u in range(deg):
            n = nb_idx[q0 + u]
            head[u] = cell_ptr[n]
            stop[u] = cell_ptr[n + 1]
        while p < p1:
            best = -1
            bt = 0.0
            for u in range(deg):
                if head[u] < stop[u]:
                    tu = t[head[u]]
                    if best < 0 or tu < bt or (tu == bt and nb_ring[q0 + u] < nb_ring[q0 + best]):
                        best = u
                        bt = tu
            i = head[best]
            stream_t[p] = bt
            stream_code[p] = nb_ring[q0 + best] * K + typ[i]
            stream_w[p] = wt[i]
            head[best] = i + 1
            p += 1
    return stream_ptr, stream_t, stream_code, stream_w


@jit_parallel
def hawkes_estep(cell_ptr, typ, wt, stream_ptr, stream_t, stream_code, stream_w, chunk_ptr, mu, theta, omega, w,
                 lag, own, lam, pbg, mu_num, trig_num, dt_num, loglik):
    """One E-step: intensities, log-likelihood terms and sufficient statistics.

    For each target cell the merged neighbourhood stream (:func:`build_streams`)
    is walked once, keeping per (ring, type) the weighted exponential sums
    ``A_{r,k}(t) = sum_{i: s_i < t} wt_i exp(-omega (t - s_i))`` and their
    delay moments ``B_{r,k}(t) = sum wt_i (t - s_i) exp(-omega (t - s_i))``
    with ``s_i = t_i + lag`` the time from which event ``i`` can trigger
    (the delay kernel is an exponential shifted by ``lag`` days, so pairs
    closer in time than ``lag`` do not trigger each other). With ``lag = 0``
    events of the current instant wait in a pending sum until time moves on,
    so ties do not trigger each other.

    Event weights are multiplicities: an event of weight ``wt`` counts as
    ``wt`` simultaneous copies, as a parent and as a child.

    Parameters
    ----------
    cell_ptr : (n_cells + 1,) int64
        Events of cell ``c`` are positions ``cell_ptr[c]:cell_ptr[c+1]`` of
        the (cell, time)-sorted event order.
    typ : (N,) int64
        Type (0..K-1) of each event, same order.
    wt : (N,) float64
        Weight of each event, same order.
    stream_ptr, stream_t, stream_code, stream_w
        Neighbourhood streams from :func:`build_streams`.
    chunk_ptr : (n_chunks + 1,) int64
        Cells ``chunk_ptr[h]:chunk_ptr[h+1]`` form chunk ``h`` (the unit of
        parallel work).
    mu : (n_cells, K) float64
        Background rates, events/day.
    theta : (K, K) float64
        ``theta[k, l]``: mean number of type-``l`` children of a type-``k`` event.
    omega : float
        Decay rate of the time kernel, per day.
    w : (R + 1,) float64
        Spill-over weight of one cell at ring ``r``.
    lag : float
        Minimum delay (days) before an event can trigger (>= 0).
    own : float
        Background rate (events/day) per unit of an event's own background
        responsibility that the event does not see (>= 0; 0 = the plain
        E-step). Event ``j`` of cell ``c`` with trigger sum ``phi`` sees the
        background ``x`` solving ``x = mu[c, l] - own * min(wt_j, 1) * x /
        (x + phi)`` (the positive root of a quadratic, at least ``mu / 1000``):
        its cell's rate with part of its own expected background count taken
        out (``GridHawkes(background_self_weight=...)``). An event of weight
        ``wt >= 1`` takes out one copy's share, so integer weights equal
        duplicated events.

    Outputs (written in place)
    --------------------------
    lam : (N,) float64
        Conditional intensity at each event (events/day in its cell and type),
        ``x + phi``.
    pbg : (N,) float64
        Background responsibility ``x / lam`` of each event (0 where ``lam`` is 0).
    mu_num : (n_cells, K) float64
        Weighted sum of background responsibilities ``x / lambda`` per cell and type.
    trig_num : (n_chunks, R + 1, K, K) float64
        Per chunk, weighted sum of trigger responsibilities by (ring, parent
        type, child type).
    dt_num : (n_chunks,) float64
        Per chunk, weighted sum of trigger responsibilities times the
        shifted delay ``t_j - t_i - lag`` (days).
    loglik : (n_chunks,) float64
        Per chunk, weighted sum of ``log lambda`` over the chunk's events.
    """
    n_chunks = chunk_ptr.size - 1
    K = theta.shape[0]
    R1 = w.size
    RK = R1 * K
    for h in prange(n_chunks):
        c0 = chunk_ptr[h]
        c1 = chunk_ptr[h + 1]
        m = 1
        for c in range(c0, c1):
            m = max(m, cell_ptr[c + 1] - cell_ptr[c])
        S = np.zeros((m, RK))
        D = np.zeros(m)
        A = np.zeros(RK)
        B = np.zeros(RK)
        pend = np.zeros(RK)
        ll = 0.0
        dn = 0.0
        for c in range(c0, c1):
            j0 = cell_ptr[c]
            nc = cell_ptr[c + 1] - j0
            if nc == 0:
                continue
            for x in range(RK):
                A[x] = 0.0
                B[x] = 0.0
            p0 = stream_ptr[c]
            p1 = stream_ptr[c + 1]
            tau = stream_t[p0]
            jj = 0
            qi = p0  # next source to join the sums (lag > 0)
            for x in range(RK):
                pend[x] = 0.0
            for p in range(p0, p1):
                tg = stream_t[p]
                if lag > 0.0:
                    if stream_code[p] >= K:
                        # not an event of the target cell: nothing to record here; it joins the sums
                        # (below, at a later target) once its shifted time has passed
                        continue
                    # sources whose shifted time t + lag is before tg join the sums, in time order
                    while qi < p and stream_t[qi] + lag < tg:
                        s_q = stream_t[qi] + lag
                        d = s_q - tau
                        if d > 0.0:
                            e = math.exp(-omega * d)
                            for x in range(RK):
                                B[x] = (B[x] + d * A[x]) * e
                                A[x] = A[x] * e
                            tau = s_q
                        A[stream_code[qi]] += stream_w[qi]
                        qi += 1
                    d = tg - tau
                    if d > 0.0:
                        e = math.exp(-omega * d)
                        for x in range(RK):
                            B[x] = (B[x] + d * A[x]) * e
                            A[x] = A[x] * e
                        tau = tg
                else:
                    d = tg - tau
                    if d > 0.0:
                        # events of the previous instant join the sums, then everything decays
                        e = math.exp(-omega * d)
                        for x in range(RK):
                            a = A[x] + pend[x]
                            pend[x] = 0.0
                            B[x] = (B[x] + d * a) * e
                            A[x] = a * e
                        tau = tg
                code = stream_code[p]
                if code < K:  # ring 0: an event of the target cell; sees only earlier events
                    dm = 0.0
                    for r in range(R1):
                        for k in range(K):
                            x = r * K + k
                            S[jj, x] = A[x]
                            dm += theta[k, code] * w[r] * B[x]
                    D[jj] = dm
                    jj += 1
                if lag <= 0.0:
                    pend[code] += stream_w[p]
            for jj in range(nc):
                j = j0 + jj
                l = typ[j]
                wj = wt[j]
                trig = 0.0
                for r in range(R1):
                    for k in range(K):
                        trig += theta[k, l] * w[r] * S[jj, r * K + k]
                phi = omega * trig
                x = mu[c, l]
                if own > 0.0 and x > 0.0:
                    # x = mu - d x / (x + phi): the event's own share d p taken out of its cell's rate
                    d = own * min(wj, 1.0)
                    bq = x - phi - d
                    sq = math.sqrt(bq * bq + 4.0 * x * phi)
                    # the positive root, in the form without cancellation
                    root = 0.5 * (bq + sq) if bq >= 0.0 else 2.0 * x * phi / (sq - bq)
                    x = max(root, 1e-3 * x)
                lj = x + phi
                lam[j] = lj
                pbg[j] = 0.0
                if lj > 0.0:
                    ll += wj * math.log(lj)
                    inv = 1.0 / lj
                    pbg[j] = x * inv
                    mu_num[c, l] += wj * (x * inv)
                    for r in range(R1):
                        for k in range(K):
                            trig_num[h, r, k, l] += wj * (theta[k, l] * omega * w[r] * S[jj, r * K + k] * inv)
                    dn += wj * (omega * D[jj] * inv)
                elif wj > 0.0:
                    ll += -np.inf
        loglik[h] = ll
        dt_num[h] = dn


@jit_parallel
def spread_to_neighbours(values, nb_ptr, nb_idx, nb_ring, w):
    """Spill per-cell values over the neighbourhood: ``out[c] = sum_q w[ring_q] values[nb_q]``.

    Parameters
    ----------
    values : (n_cells, K) float64
    nb_ptr, nb_idx, nb_ring : int64
        Neighbour CSR (see :func:`hawkes_estep`).
    w : (R + 1,) float64
        Weight per ring.

    Returns
    -------
    (n_cells, K) float64
    """
    n_cells, K = values.shape
    out = np.zeros((n_cells, K))
    for c in prange(n_cells):
        for q in range(nb_ptr[c], nb_ptr[c + 1]):
            wr = w[nb_ring[q]]
            n = nb_idx[q]
            for k in range(K):
                out[c, k] += wr * values[n, k]
    return out


@jit_parallel
def ring_sums(values, nb_ptr, nb_idx, nb_ring, R):
    """Sum of per-cell values over each ring of every cell's neighbourhood.

    Parameters
    ----------
    values : (n_cells, K) float64
    nb_ptr, nb_idx, nb_ring : int64
        Neighbour CSR within ``R`` rings (see :func:`hawkes_estep`).
    R : int
        Largest ring.

    Returns
    -------
    (n_cells, R + 1, K) float64
        ``out[c, r, k] = sum of values[n, k]`` over the in-grid cells ``n`` at
        ring ``r`` of ``c`` (added in neighbour order).
    """
    n_cells, K = values.shape
    out = np.zeros((n_cells, R + 1, K))
    for c in prange(n_cells):
        for q in range(nb_ptr[c], nb_ptr[c + 1]):
            r = nb_ring[q]
            n = nb_idx[q]
            for k in range(K):
                out[c, r, k] += values[n, k]
    return out


@jit
def _digamma_trigamma(x):
    """Digamma and trigamma of ``x > 0`` (recurrence to x >= 6, then the asymptotic series; error < 1e-10)."""
    psi = 0.0
    tri = 0.0
    while x < 6.0:
        psi -= 1.0 / x
        tri += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    psi += math.log(x) - 0.5 * inv - inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (
        1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * 691.0 / 32760.0)))))
    tri += inv + 0.5 * inv2 + inv * inv2 * (1.0 / 6.0 - inv2 * (1.0 / 30.0 - inv2 * (
        1.0 / 42.0 - inv2 * (1.0 / 30.0 - inv2 * 5.0 / 66.0))))
    return psi, tri


@jit
def _tetragamma_pentagamma(x):
    """Second and third derivatives of digamma at ``x > 0`` (recurrence to x >= 10, then the asymptotic
    series; relative error < 1e-10)."""
    tet = 0.0
    pen = 0.0
    while x < 10.0:
        x2 = x * x
        tet -= 2.0 / (x2 * x)
        pen += 6.0 / (x2 * x2)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    tet -= inv2 * (1.0 + inv * (1.0 + inv * (0.5 - inv2 * (1.0 / 6.0 - inv2 * (1.0 / 6.0 - inv2 * (
        0.3 - inv2 * 5.0 / 6.0))))))
    pen += inv2 * inv * (2.0 + inv * (3.0 + inv * (2.0 - inv2 * (1.0 - inv2 * (4.0 / 3.0 - inv2 * (
        3.0 - inv2 * 10.0))))))
    return tet, pen


@jit
def background_count_variance(cell_ptr, typ, wt, pbg, out):
    """Variance of each cell's number of background events under the E-step's responsibilities.

    Given the parameters, every event is a background event independently with
    probability ``p`` (its background responsibility ``pbg`` from
    :func:`hawkes_estep`; an event of weight ``w`` counts as ``w`` such
    events), so the count of a (cell, type) is Poisson-binomial with variance
    ``sum w p (1 - p)``. Events in (cell, time) order (``cell_ptr``); ``out``
    (n_cells, K) is added to in place.
    """
    for c in range(cell_ptr.size - 1):
        for j in range(cell_ptr[c], cell_ptr[c + 1]):
            p = pbg[j]
            out[c, typ[j]] += wt[j] * p * (1.0 - p)


#: fixed number of chunks of the negative-binomial sums (same result for any thread count)
_NB_CHUNKS = 64


@jit_parallel
def nb_marginal_terms(B, V, m, nu, derivatives):
    """Expected negative-binomial (gamma-Poisson) log marginal of counts with means ``B > 0``, variances ``V``
    and prior means ``m``, and its derivatives.

    The marginal of one count ``N`` is ``lgamma(N + a) - lgamma(a) + a log(nu / (1 + nu))
    - N log(1 + nu) - lgamma(N + 1)`` with ``a = nu m`` (the last term, free of
    ``nu``, is left out). ``N`` is unknown (the number of background events
    among a cell's events), with mean ``B`` and variance ``V``: its expectation
    is taken to second order, ``E lgamma(N + a) = lgamma(B + a) + V/2
    trigamma(B + a)``. ``V = 0`` is the plug-in marginal of the mean count,
    which understates the counts' dispersion (issue 13). Counts of zero
    contribute ``nu m log(nu / (1 + nu))`` alone and are summed by the caller.

    Parameters
    ----------
    B, V, m : (n,) float64
        Mean counts (> 0, need not be integers), their variances (>= 0) and positive prior means.
    nu : float
        Prior strength (> 0).
    derivatives : bool
        ``False``: the value only (first output); ``True``: the first and second
        derivatives in ``nu`` only (last two outputs; the value is 0).

    Returns
    -------
    value, d_nu, d_nu2 : float
        Summed over the entries in a fixed order of fixed chunks.
    """
    n = B.size
    L = math.log(nu / (1.0 + nu))
    l1p = math.log1p(nu)
    inv1 = 1.0 / (1.0 + nu)
    parts = np.zeros((_NB_CHUNKS, 3))
    for h in prange(_NB_CHUNKS):
        i0 = h * n // _NB_CHUNKS
        i1 = (h + 1) * n // _NB_CHUNKS
        v = 0.0
        d1 = 0.0
        d2 = 0.0
        for i in range(i0, i1):
            mi = m[i]
            bi = B[i]
            hv = 0.5 * V[i]
            a = nu * mi
            if derivatives:
                p1, t1 = _digamma_trigamma(bi + a)
                p0, t0 = _digamma_trigamma(a)
                d1 += mi * (p1 - p0 + L) + (mi - bi) * inv1
                d2 += mi * mi * (t1 - t0) + mi * inv1 / nu - (mi - bi) * inv1 * inv1
                if hv > 0.0:
                    q2, q3 = _tetragamma_pentagamma(bi + a)
                    d1 += hv * mi * q2
                    d2 += hv * mi * mi * q3
            else:
                v += math.lgamma(bi + a) - math.lgamma(a) + a * L - bi * l1p
                if hv > 0.0:
                    v += hv * _digamma_trigamma(bi + a)[1]
        parts[h, 0] = v
        parts[h, 1] = d1
        parts[h, 2] = d2
    out = np.zeros(3)
    for h in range(_NB_CHUNKS):
        for j in range(3):
            out[j] += parts[h, j]
    return out[0], out[1], out[2]


@jit_parallel
def gamma_log_prior(mu, m, nu, window):
    """Log density of the backgrounds' counts under the smoothed background's gamma prior, summed.

    Each entry's count ``x = mu window`` (floored at 1e-300) has the gamma
    density of shape ``a + 1`` and rate ``nu`` with ``a = nu m``:
    ``a log x - nu x + (a + 1) log nu - lgamma(a + 1)``. ``mu`` and ``m`` are
    flat float64 arrays of equal size (per cell and type: events/day and prior
    mean counts per window); ``nu`` > 0; ``window`` in days. Summed in a fixed
    order of :data:`_NB_CHUNKS` chunks (the same result for any thread count).
    """
    n = mu.size
    log_nu = math.log(nu)
    parts = np.zeros(_NB_CHUNKS)
    for h in prange(_NB_CHUNKS):
        v = 0.0
        for i in range(h * n // _NB_CHUNKS, (h + 1) * n // _NB_CHUNKS):
            a = nu * m[i]
            x = max(mu[i] * window, 1e-300)
            v += a * math.log(x) - nu * x + (a + 1.0) * log_nu - math.lgamma(a + 1.0)
        parts[h] = v
    out = 0.0
    for h in range(_NB_CHUNKS):
        out += parts[h]
    return out


@jit
def gap_mixture_em(g, b, lam, pi, n_iter, rtol):
    """EM for the rate of the fast component of a two-exponential mixture of gaps.

    Gap ``g[i]`` (days, > 0) has density ``pi lam e^{-lam g} + (1 - pi) b[i]``
    where ``b[i] = r_i e^{-r_i g_i}`` is the (fixed) slow component.

    Parameters
    ----------
    g, b : (n,) float64
    lam, pi : float
        Start rate (per day) and weight of the fast component.
    n_iter : int
        Most EM steps.
    rtol : float
        Stop when the rate changes by at most ``rtol`` (relative).

    Returns
    -------
    lam : float
        Fast rate, per day; NaN when no gap is given to the fast component.
    n_steps : int
    """
    n = g.size
    for it in range(n_iter):  # serial: many short passes (a parallel region each would cost more than it saves)
        sp = 0.0
        spg = 0.0
        for i in range(n):
            a = pi * lam * math.exp(-lam * g[i])
            s = a + (1.0 - pi) * b[i]
            if s > 0.0:
                p = a / s
                sp += p
                spg += p * g[i]
        if not sp > 0.0:
            return np.nan, it + 1
        pi = sp / n
        lam_new = sp / spg
        done = abs(lam_new - lam) <= rtol * lam
        lam = lam_new
        if done:
            return lam, it + 1
    return lam, n_iter


@jit
def trigger_sum_em(g, cell_type, wt, C, window, n_ct, theta, n_iter, rtol):
    """Profile fit of theta and per-(cell, type) backgrounds given every event's trigger sum.

    Intensity at event ``i``: ``mu[cell_type[i]] + theta g[i]``; the
    compensator is ``window sum(mu) + theta C``. EM from ``mu = counts / (2
    window)``.

    Parameters
    ----------
    g : (N,) float64
        Trigger sum at each event (``omega sum e^{-omega dt}``, per day).
    cell_type : (N,) int64
    wt : (N,) float64
        Event weights.
    C : float
        Weighted expected number of offspring per unit theta in the window.
    window : float
        Days.
    n_ct : int
        Number of (cell, type) pairs.
    theta : float
        Start value.
    n_iter : int
        Most EM steps.
    rtol : float
        Stop when theta and the total background change by at most ``rtol`` (relative).

    Returns
    -------
    mu : (n_ct,) float64
        Backgrounds, events/day.
    theta : float
    loglik : float
        Log-likelihood at the returned parameters (``-inf`` if an intensity is 0).
    """
    N = g.size
    mu = np.zeros(n_ct)
    for i in range(N):
        mu[cell_type[i]] += wt[i]
    for c in range(n_ct):
        mu[c] /= 2.0 * window
    acc = np.zeros(n_ct)
    for _ in range(n_iter):
        for c in range(n_ct):
            acc[c] = 0.0
        spt = 0.0
        for i in range(N):
            lam = mu[cell_type[i]] + theta * g[i]
            pt = theta * g[i] / lam if lam > 0.0 else 0.0
            spt += wt[i] * pt
            acc[cell_type[i]] += wt[i] * (1.0 - pt)
        theta_new = spt / C if C > 0.0 else 0.0
        tot_old = 0.0
        tot = 0.0
        for c in range(n_ct):
            tot_old += mu[c]
            mu[c] = acc[c] / window
            tot += mu[c]
        done = abs(theta_new - theta) <= rtol * max(theta, 1e-300) and abs(tot - tot_old) <= rtol * tot
        theta = theta_new
        if done:
            break
    ll = 0.0
    for i in range(N):
        lam = mu[cell_type[i]] + theta * g[i]
        ll += wt[i] * math.log(lam) if lam > 0.0 else -np.inf
    tot = 0.0
    for c in range(n_ct):
        tot += mu[c]
    return mu, theta, ll - window * tot - theta * C


@jit
def _segment_trigger_sums(t, wt, omega, lag, g, i0, i1):
    """:func:`one_cell_trigger_sums` of the events ``i0:i1`` (one cell and type, time-sorted) into ``g[i0:i1]``."""
    if i1 <= i0:
        return
    A = 0.0
    pend = 0.0
    tau = t[i0]
    qi = i0
    for p in range(i0, i1):
        tg = t[p]
        if lag > 0.0:
            while qi < p and t[qi] + lag < tg:
                s_q = t[qi] + lag
                d = s_q - tau
                if d > 0.0:
                    A = A * math.exp(-omega * d)
                    tau = s_q
                A += wt[qi]
                qi += 1
            d = tg - tau
            if d > 0.0:
                A = A * math.exp(-omega * d)
                tau = tg
        else:
            d = tg - tau
            if d > 0.0:
                A = (A + pend) * math.exp(-omega * d)
                pend = 0.0
                tau = tg
        g[p] = omega * A
        if lag <= 0.0:
            pend += wt[p]


@jit
def one_cell_trigger_sums(t, wt, omega, lag):
    """Trigger sum of every event of one cell and one type: :func:`hawkes_estep`'s ``lam`` at ``mu = 0``, ``theta = 1``.

    ``g[j] = omega sum_i wt_i exp(-omega (t_j - t_i - lag))`` over the events
    ``i`` that can trigger ``j``: ``t_i + lag < t_j`` when ``lag > 0``,
    ``t_i < t_j`` when ``lag = 0`` (ties do not trigger each other). The
    recursion is :func:`hawkes_estep`'s, step for step, so the sums are the
    same numbers; without its general (ring, type) book-keeping a pass costs
    a fraction of the time.

    Parameters
    ----------
    t : (N,) float64
        Event times (days), sorted.
    wt : (N,) float64
        Event weights.
    omega : float
        Decay rate, per day.
    lag : float
        Minimum delay, days (>= 0).

    Returns
    -------
    g : (N,) float64
        Per day.
    """
    g = np.empty(t.size)
    _segment_trigger_sums(t, wt, omega, lag, g, 0, t.size)
    return g


@jit_parallel
def cell_trigger_sums(t, wt, cell_ptr, omega, lag):
    """:func:`one_cell_trigger_sums` for every cell: events ``cell_ptr[c]:cell_ptr[c+1]`` form cell ``c``.

    Each event's sum runs over the earlier events of its own cell only (the
    own-cell model of the start values). Cells are independent, so the result
    does not depend on the number of threads; it equals :func:`hawkes_estep`'s
    ``lam`` at ``mu = 0``, ``theta = I``, ring 0, bit for bit.
    """
    g = np.empty(t.size)
    for c in prange(cell_ptr.size - 1):
        _segment_trigger_sums(t, wt, omega, lag, g, cell_ptr[c], cell_ptr[c + 1])
    return g


@jit
def _one_cell_objective(g, wt, C, T, mu, theta):
    s = 0.0
    for i in range(g.size):
        lam = mu + theta * g[i]
        if lam <= 0.0:
            return -np.inf
        s += wt[i] * math.log(lam)
    return s - mu * T - theta * C


@jit
def one_cell_mle(g, wt, C, T, mu, theta, n_iter, rtol):
    """Maximum-likelihood background and branching ratio of one cell and type, the decay rate fixed.

    Maximises the concave ``sum wt_i log(mu + theta g_i) - mu T - theta C``
    over ``mu > 0``, ``theta >= 0`` by Newton's method with step halving.

    Parameters
    ----------
    g : (N,) float64
        Trigger sum at each event (``omega sum e^{-omega dt}``, per day).
    wt : (N,) float64
        Event weights.
    C : float
        Weighted expected offspring per unit theta inside the window.
    T : float
        Window length, days.
    mu, theta : float
        Start values (events/day; mean offspring).
    n_iter : int
        Most Newton steps.
    rtol : float
        Stop when the step is below ``rtol`` (relative) in both parameters.

    Returns
    -------
    mu, theta, loglik : float
    """
    f = _one_cell_objective(g, wt, C, T, mu, theta)
    for _ in range(n_iter):
        g1 = -T
        g2 = -C
        h11 = 0.0
        h12 = 0.0
        h22 = 0.0
        for i in range(g.size):
            inv = 1.0 / (mu + theta * g[i])
            a = wt[i] * inv
            g1 += a
            g2 += a * g[i]
            b = a * inv
            h11 += b
            h12 += b * g[i]
            h22 += b * g[i] * g[i]
        det = h11 * h22 - h12 * h12
        if theta <= 0.0 and g2 <= 0.0 or not det > 0.0:  # on the theta = 0 face: mu alone
            d1 = g1 / h11
            d2 = 0.0
        else:
            d1 = (h22 * g1 - h12 * g2) / det
            d2 = (h11 * g2 - h12 * g1) / det
        if abs(d1) <= 0.1 * mu and abs(d2) <= 0.1 * max(theta, 1e-12) and theta + d2 >= 0.0:
            # near the optimum (the quadratic model holds): the full step, no objective evaluation
            mu_n = mu + d1
            th_n = theta + d2
            done = abs(d1) <= rtol * mu and abs(d2) <= rtol * max(theta, 1e-12)
            mu, theta, f = mu_n, th_n, np.nan
            if done:
                break
            continue
        if not np.isfinite(f):
            f = _one_cell_objective(g, wt, C, T, mu, theta)
        t = 1.0
        accepted = False
        while t > 1e-12:
            mu_n = mu + t * d1
            th_n = max(theta + t * d2, 0.0)
            if mu_n > 0.0:
                f_n = _one_cell_objective(g, wt, C, T, mu_n, th_n)
                if f_n >= f:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:
            break
        done = abs(mu_n - mu) <= rtol * mu and abs(th_n - theta) <= rtol * max(theta, 1e-12)
        mu, theta, f = mu_n, th_n, f_n
        if done:
            break
    if not np.isfinite(f):
        f = _one_cell_objective(g, wt, C, T, mu, theta)
    return mu, theta, f
