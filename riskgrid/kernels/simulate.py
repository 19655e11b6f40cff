"""Branching (cluster) simulation of a space-time self-exciting process.

* :func:`simulate_offspring`: descendants of given immigrants (the simulator
  behind :func:`riskgrid.simulate`);
* :func:`simulate_sepp_forward`: futures of a fitted continuous SEPP over a
  forecast window, counted per grid cell (forecast intervals of
  :class:`riskgrid.models.SEPP`), parallel over simulations with one seed each.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, jit_parallel, prange
from .forward import _cumulative, _pick


@jit
def _grow(a, cap):
    out = np.empty(cap, dtype=a.dtype)
    out[: a.size] = a
    return out


@jit
def simulate_offspring(t0, x0, y0, k0, theta, omega, sigma, t_end, seed):
    """Descendants of the given immigrant events, generation by generation.

    Parameters
    ----------
    t0, x0, y0 : float64 arrays
        Immigrant (background) times in days and positions in metres.
    k0 : int64 array
        Immigrant types (0..K-1).
    theta : (K, K) float64
        ``theta[a, b]`` = mean number of type-``b`` children of a type-``a`` event.
    omega : float
        Rate of the exponential delay, per day.
    sigma : float
        Standard deviation of the isotropic Gaussian displacement, metres.
    t_end : float
        Children at or after ``t_end`` (days) are not kept (nor their children).
    seed : int
        Seed of Numba's generator (the kernel is serial, hence deterministic).

    Returns
    -------
    t, x, y, k, generation, parent : arrays over all events (immigrants first,
        then children in order of creation). ``parent`` indexes this order, -1
        for immigrants.
    """
    np.random.seed(seed)
    n = t0.size
    cap = max(16, 2 * n)
    T = np.empty(cap)
    X = np.empty(cap)
    Y = np.empty(cap)
    K = np.empty(cap, dtype=np.int64)
    G = np.empty(cap, dtype=np.int64)
    P = np.empty(cap, dtype=np.int64)
    T[:n] = t0
    X[:n] = x0
    Y[:n] = y0
    K[:n] = k0
    G[:n] = 0
    P[:n] = -1
    ntypes = theta.shape[0]
    head = 0
    while head < n:
        kp = K[head]
        for kc in range(ntypes):
            m = np.random.poisson(theta[kp, kc])
            for _ in range(m):
                tc = T[head] + np.random.exponential(1.0 / omega)
                dx = np.random.normal(0.0, sigma)
                dy = np.random.normal(0.0, sigma)
                if tc >= t_end:
                    continue
                if n == cap:
                    cap *= 2
                    T = _grow(T, cap)
                    X = _grow(X, cap)
                    Y = _grow(Y, cap)
                    K = _grow(K, cap)
                    G = _grow(G, cap)
                    P = _grow(P, cap)
                T[n] = tc
                X[n] = X[head] + dx
                Y[n] = Y[head] + dy
                K[n] = kc
                G[n] = G[head] + 1
                P[n] = head
                n += 1
        head += 1
    return T[:n].copy(), X[:n].copy(), Y[:n].copy(), K[:n].copy(), G[:n].copy(), P[:n].copy()


# --------------------------------------------------------------------------- #
# forward simulation of the continuous SEPP (forecast intervals)
# --------------------------------------------------------------------------- #
@jit
def _lag_cdf(kind, u, theta, omega, t_edges, t_cum):
    """Trigger mass (offspring per parent) at delays in ``[0, u]``: ``theta (1 - exp(-omega u))`` or the histogram's."""
    if kind == 0:
        return -theta * math.expm1(-omega * u)
    nb = t_edges.size - 1
    if u >= t_edges[nb]:
        return t_cum[nb]
    b = 0
    while b < nb - 1 and t_edges[b + 1] <= u:
        b += 1
    w = t_edges[b + 1] - t_edges[b]
    return t_cum[b] + (t_cum[b + 1] - t_cum[b]) * (u - t_edges[b]) / w


@jit
def _lag_inverse(kind, c, theta, omega, t_edges, t_cum):
    """Delay ``u`` (days) with ``_lag_cdf(u) = c`` (``0 <= c <`` the total mass)."""
    if kind == 0:
        return -math.log1p(-c / theta) / omega
    nb = t_edges.size - 1
    b = 0
    while b < nb - 1 and t_cum[b + 1] <= c:
        b += 1
    dm = t_cum[b + 1] - t_cum[b]
    if dm <= 0.0:
        return t_edges[b]
    return t_edges[b] + (t_edges[b + 1] - t_edges[b]) * (c - t_cum[b]) / dm


@jit
def _displacement(kind, sigma, max_d2, d_edges2, d_cum):
    """One offspring displacement ``(dx, dy)`` in metres and whether it lies within the truncation."""
    if kind == 0:
        dx = np.random.normal(0.0, sigma)
        dy = np.random.normal(0.0, sigma)
        return dx, dy, dx * dx + dy * dy <= max_d2
    b = _pick(d_cum, np.random.random() * d_cum[d_cum.size - 1])
    r = math.sqrt(d_edges2[b] + np.random.random() * (d_edges2[b + 1] - d_edges2[b]))
    a = 2.0 * math.pi * np.random.random()
    return r * math.cos(a), r * math.sin(a), True


@jit
def _snap(px, py, smp_x, smp_y, order, start, x0, y0, cell_m, nx, ny, snap_d2):
    """Index of the sample point nearest to ``(px, py)`` within ``sqrt(snap_d2)`` metres, -1 if none."""
    bx = int(math.floor((px - x0) / cell_m))
    by = int(math.floor((py - y0) / cell_m))
    best = -1
    best_d2 = snap_d2
    for cy in range(max(by - 1, 0), min(by + 2, ny)):
        for cx in range(max(bx - 1, 0), min(bx + 2, nx)):
            k = cy * nx + cx
            for q in range(start[k], start[k + 1]):
                i = order[q]
                ddx = px - smp_x[i]
                ddy = py - smp_y[i]
                d2 = ddx * ddx + ddy * ddy
                if d2 < best_d2 or (d2 == best_d2 and best >= 0 and i < best):
                    best = i
                    best_d2 = d2
    return best


@jit
def _place_child(x, y, wanted, kind, sigma, max_d2, d_edges2, d_cum, smp_x, smp_y, order, start, x0, y0, cell_m,
                 nx, ny, snap_d2):
    """A child displaced from ``(x, y)``: ``(x, y, sample point)``, the point -1 when the child is dropped.

    The displacement is always drawn (the same random stream whatever happens next); the child is dropped
    when not ``wanted`` (its time is past the window), when the displacement is cut, or off the grid.
    """
    dx, dy, ok = _displacement(kind, sigma, max_d2, d_edges2, d_cum)
    if not (ok and wanted):
        return 0.0, 0.0, -1
    xc = x + dx
    yc = y + dy
    return xc, yc, _snap(xc, yc, smp_x, smp_y, order, start, x0, y0, cell_m, nx, ny, snap_d2)


@jit
def _push4(q_t, q_x, q_y, q_d, n, t, x, y, d):
    if n == q_t.size:
        nt = np.empty(2 * n)
        nx_ = np.empty(2 * n)
        ny_ = np.empty(2 * n)
        nd = np.empty(2 * n, dtype=np.int64)
        nt[:n] = q_t
        nx_[:n] = q_x
        ny_[:n] = q_y
        nd[:n] = q_d
        q_t, q_x, q_y, q_d = nt, nx_, ny_, nd
    q_t[n] = t
    q_x[n] = x
    q_y[n] = y
    q_d[n] = d
    return q_t, q_x, q_y, q_d


@jit_parallel
def simulate_sepp_forward(seeds, start, horizon, bg_mean, seg_edges, seg_cum, smp_x, smp_y, smp_cum, smp_cell,
                          order, cell_start, hx0, hy0, hcell, hnx, hny, snap_d2, h_t, h_x, h_y, h_mean,
                          kind, theta, omega, sigma, max_days, max_d2, t_edges, t_cum, d_edges2, d_cum,
                          n_cells, max_depth):
    """Counts per (simulation, cell) of a continuous SEPP over ``[start, start + horizon)`` (days).

    The branching process of :class:`riskgrid.models.SEPP`, drawn ``n_sims``
    times given the history:

    * background: Poisson(``bg_mean``) events, times from the piecewise
      constant density on ``seg_edges`` (cumulative probabilities ``seg_cum``,
      last 1), places at the grid's sample points drawn by ``smp_cum``
      (cumulative background mass, last 1): the quadrature the model's
      ``predict`` integrates the background with;
    * history event ``i`` (time ``h_t``, place ``h_x, h_y``) has Poisson(``h_mean[i]``)
      direct offspring still to come in the window (``h_mean``: weight ×
      trigger mass at delays inside the window and ``max_days``), delays drawn
      from the trigger's delay density restricted to the window;
    * every simulated event has Poisson(total trigger mass) children (delays
      past ``max_days`` or the window dropped), and so on (``max_depth``
      generations past the first; negative: no limit).

    Offspring displacement: isotropic Gaussian of sd ``sigma`` metres cut at
    ``sqrt(max_d2)`` (``kind`` 0, exp-gauss), or a ring drawn by ``d_cum``
    on squared edges ``d_edges2`` with a uniform area density inside (``kind``
    1, histogram). Delays: ``theta (1 - exp(-omega u))`` (kind 0) or the
    piecewise-linear cumulative ``t_cum`` on ``t_edges`` (kind 1).

    A simulated point belongs to the cell of its nearest sample point within
    ``sqrt(snap_d2)`` metres (hash ``order, cell_start, hx0, hy0, hcell, hnx,
    hny`` of the sample points, side ``>= sqrt(snap_d2)``); a point with none
    lies off the grid and is dropped with its descendants (the model is fitted
    on in-grid events only).

    Simulation ``s`` seeds Numba's generator with ``seeds[s]`` and writes only
    row ``s``: the result is the same for any number of threads.

    Returns
    -------
    counts : (n_sims, n_cells) float64
    """
    n_sims = seeds.size
    end = start + horizon
    counts = np.zeros((n_sims, n_cells))
    mass_all = _lag_cdf(kind, max_days, theta, omega, t_edges, t_cum)
    # history: one Poisson total of still-to-come children per simulation, each child's parent drawn from
    # the cumulative means (the superposition of the per-event Poisson counts: O(children) draws)
    cum_h, total_h = _cumulative(h_mean)
    for s in prange(n_sims):
        np.random.seed(seeds[s])
        cap = 64
        q_t = np.empty(cap)
        q_x = np.empty(cap)
        q_y = np.empty(cap)
        q_d = np.empty(cap, dtype=np.int64)
        n = 0
        if bg_mean > 0.0:
            nb = np.random.poisson(bg_mean)
            for _ in range(nb):
                g = _pick(seg_cum, np.random.random())
                t = seg_edges[g] + np.random.random() * (seg_edges[g + 1] - seg_edges[g])
                if t >= end:
                    t = np.nextafter(end, start)
                p = _pick(smp_cum, np.random.random())
                counts[s, smp_cell[p]] += 1.0
                q_t, q_x, q_y, q_d = _push4(q_t, q_x, q_y, q_d, n, t, smp_x[p], smp_y[p], 0)
                n += 1
        nh = np.random.poisson(total_h) if total_h > 0.0 else 0
        for _ in range(nh):
            i = _pick(cum_h, np.random.random() * total_h)
            lo = min(max(start - h_t[i], 0.0), max_days)
            hi = min(max(end - h_t[i], 0.0), max_days)
            c_lo = _lag_cdf(kind, lo, theta, omega, t_edges, t_cum)
            c_hi = _lag_cdf(kind, hi, theta, omega, t_edges, t_cum)
            u = _lag_inverse(kind, c_lo + np.random.random() * (c_hi - c_lo), theta, omega, t_edges, t_cum)
            t = min(max(h_t[i] + u, start), np.nextafter(end, start))
            xc, yc, p = _place_child(h_x[i], h_y[i], True, kind, sigma, max_d2, d_edges2, d_cum, smp_x, smp_y, order,
                                     cell_start, hx0, hy0, hcell, hnx, hny, snap_d2)
            if p < 0:
                continue
            counts[s, smp_cell[p]] += 1.0
            q_t, q_x, q_y, q_d = _push4(q_t, q_x, q_y, q_d, n, t, xc, yc, 0)
            n += 1
        j = 0
        while j < n:
            d = q_d[j]
            if max_depth >= 0 and d >= max_depth:
                j += 1
                continue
            t0 = q_t[j]
            nch = np.random.poisson(mass_all)
            for _ in range(nch):
                u = _lag_inverse(kind, np.random.random() * mass_all, theta, omega, t_edges, t_cum)
                t = t0 + u
                xc, yc, p = _place_child(q_x[j], q_y[j], t < end, kind, sigma, max_d2, d_edges2, d_cum, smp_x, smp_y,
                                         order, cell_start, hx0, hy0, hcell, hnx, hny, snap_d2)
                if p < 0:
                    continue
                counts[s, smp_cell[p]] += 1.0
                q_t, q_x, q_y, q_d = _push4(q_t, q_x, q_y, q_d, n, t, xc, yc, d + 1)
                n += 1
            j += 1
    return counts
