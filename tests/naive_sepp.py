"""Slow, obvious O(N²) references for the SEPP kernels and EM (riskgrid.models.SEPP).

Everything here works on dense arrays of all event pairs (in row blocks to
bound memory) and plain numpy; nothing is shared with the fast code.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq


def pair_block(t, x, y, rows, max_days=np.inf, max_d=np.inf):
    """Dense ``(dt, r2, ok)`` for children ``rows`` × all parents.

    ``ok`` marks candidate parents: ``t_j - max_days <= t_i < t_j`` and
    squared distance ``<= max_d²``.
    """
    tj, xj, yj = t[rows, None], x[rows, None], y[rows, None]
    dt = tj - t[None, :]
    dx = xj - x[None, :]
    dy = yj - y[None, :]
    r2 = dx * dx + dy * dy
    ok = (t[None, :] >= tj - max_days) & (t[None, :] < tj) & (r2 <= max_d * max_d)
    return dt, r2, ok


def _blocks(n, size=256):
    for s in range(0, n, size):
        yield np.arange(s, min(n, s + size))


def candidates(t, x, y, max_days, max_d):
    """Per child ``j``: the candidate ``(dt, r2)`` pairs, sorted, as an ``(k, 2)`` array."""
    out = []
    for rows in _blocks(t.size):
        dt, r2, ok = pair_block(t, x, y, rows, max_days, max_d)
        for a in range(rows.size):
            pairs = np.stack([dt[a][ok[a]], r2[a][ok[a]]], axis=1)
            out.append(pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs)
    return out


def g_expgauss(dt, r2, theta, omega, sigma):
    return theta * omega * np.exp(-omega * dt) * np.exp(-r2 / (2 * sigma**2)) / (2 * math.pi * sigma**2)


def bin_index(edges, v):
    return np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)


def g_histogram(dt, r2, rate_time, time_edges, density_space, d_edges):
    return rate_time[bin_index(time_edges, dt)] * density_space[bin_index(d_edges**2, r2)]


def estep(t, x, y, mu, g, max_days=np.inf, max_d=np.inf):
    """Dense E-step for a trigger function ``g(dt, r2)``.

    Returns ``lam``, ``p_bg`` and the list of per-block ``(P, dt, r2, ok)``
    where ``P[a, i] = p_ij`` (0 for non-candidates).
    """
    n = t.size
    lam = np.empty(n)
    blocks = []
    for rows in _blocks(n):
        dt, r2, ok = pair_block(t, x, y, rows, max_days, max_d)
        G = np.where(ok, g(np.where(ok, dt, 0.0), r2), 0.0)
        lam[rows] = mu[rows] + G.sum(axis=1)
        blocks.append((G / lam[rows, None], dt, r2, ok))
    return lam, mu / lam, blocks


def estep_expgauss(t, x, y, mu, theta, omega, sigma, max_days=np.inf, max_d=np.inf):
    """``lam``, ``p_bg`` and ``(sum p, sum p dt, sum p r2)``."""
    lam, pbg, blocks = estep(t, x, y, mu, lambda dt, r2: g_expgauss(dt, r2, theta, omega, sigma), max_days, max_d)
    s = np.zeros(3)
    for P, dt, r2, ok in blocks:
        s += [P.sum(), (P * np.where(ok, dt, 0)).sum(), (P * r2).sum()]
    return lam, pbg, s


def estep_histogram(t, x, y, mu, rate_time, time_edges, density_space, d_edges):
    """``lam``, ``p_bg``, sum of ``p_ij`` per time bin and per distance ring."""
    g = lambda dt, r2: g_histogram(dt, r2, rate_time, time_edges, density_space, d_edges)  # noqa: E731
    lam, pbg, blocks = estep(t, x, y, mu, g, time_edges[-1], d_edges[-1])
    st = np.zeros(rate_time.size)
    ss = np.zeros(density_space.size)
    for P, dt, r2, ok in blocks:
        bt = bin_index(time_edges, np.where(ok, dt, 0.0))
        bs = bin_index(d_edges**2, r2)
        st += np.bincount(bt[ok], weights=P[ok], minlength=st.size)
        ss += np.bincount(bs[ok], weights=P[ok], minlength=ss.size)
    return lam, pbg, st, ss


def kde(sx, sy, w, h, px, py, truncate=4.0):
    """``sum_i w_i N2(0, h²)(p - s_i)`` at points, kernel cut at ``truncate * h`` (np.inf: none)."""
    out = np.zeros(px.size)
    for rows in _blocks(px.size, 512):
        r2 = (px[rows, None] - sx[None, :]) ** 2 + (py[rows, None] - sy[None, :]) ** 2
        k = np.exp(-r2 / (2 * h * h)) / (2 * math.pi * h * h)
        k[r2 > (truncate * h) ** 2] = 0.0
        out[rows] = k @ w
    return out


def trigger_at_points(px, py, ex, ey, ew, max_d, sigma=None, d_edges=None, density_space=None):
    """``sum_i ew_i s(|p - e_i|²)`` over events within ``max_d`` (Gaussian if ``sigma`` else rings)."""
    r2 = (px[:, None] - ex[None, :]) ** 2 + (py[:, None] - ey[None, :]) ** 2
    if sigma is not None:
        s = np.exp(-r2 / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    else:
        s = density_space[bin_index(d_edges**2, r2)]
    s[r2 > max_d * max_d] = 0.0
    return s @ ew


def loglik_expgauss(lam, t, T, n_bg, theta, omega):
    """``sum log lam - N_bg - theta sum (1 - exp(-omega (T - t_i)))``."""
    return np.log(lam).sum() - n_bg - theta * np.sum(1 - np.exp(-omega * (T - t)))


def solve_omega(s0, s1, tau):
    """Root of ``s0/w - s1 - s0 B(w)/A(w)`` by bracketing (independent of the fast fixed point)."""
    f = lambda w: s0 / w - s1 - s0 * np.sum(tau * np.exp(-w * tau)) / np.sum(1 - np.exp(-w * tau))  # noqa: E731
    lo, hi = 1e-6, 1e3
    return brentq(f, lo, hi, xtol=1e-14, rtol=1e-14)


def fit_expgauss(t, x, y, T, samples, h, theta=0.5, omega=0.3, sigma=200.0, tol=1e-10, max_iter=1000):
    """Untruncated reference EM (dense pairs, exact Gaussian KDE background).

    Same model and M-steps as SEPP(trigger="exp-gauss"): background
    ``(N_bg / T_len) K(x) / sum_i w_i M_i`` with ``M_i`` the kernel mass on the
    cell sample points, edge-corrected theta / omega, ``sigma² = sum p r² / 2
    sum p``. Returns a dict of the parameters, ``p_bg`` and iterations.
    """
    px, py, pw = samples
    span = T - t[0]
    tau = T - t
    mass = kde(px, py, pw, h, x, y, truncate=np.inf)  # M_i: transpose of the KDE
    # every (child j, parent i) pair with t_i < t_j, computed once
    D = t[:, None] - t[None, :]
    R2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    jj, ii = np.nonzero(t[None, :] < t[:, None])
    dtp, r2p = D[jj, ii], R2[jj, ii]
    Kmat = np.exp(-R2 / (2 * h * h)) / (2 * math.pi * h * h)
    del D, R2
    w = np.full(t.size, 0.5)
    ll_prev = None
    for it in range(max_iter):
        n_bg = w.sum()
        mu = n_bg / span * (Kmat @ w) / np.dot(w, mass)
        G = g_expgauss(dtp, r2p, theta, omega, sigma)
        lam = mu + np.bincount(jj, weights=G, minlength=t.size)
        P = G / lam[jj]
        pbg = mu / lam
        ll = loglik_expgauss(lam, t, T, n_bg, theta, omega)
        if ll_prev is not None and abs(ll - ll_prev) <= tol * abs(ll):
            break
        ll_prev = ll
        s0, s1, s2 = P.sum(), (P * dtp).sum(), (P * r2p).sum()
        w = pbg
        omega = solve_omega(s0, s1, tau)
        theta = s0 / np.sum(1 - np.exp(-omega * tau))
        sigma = math.sqrt(s2 / (2 * s0))
    return {"theta": theta, "omega": omega, "sigma": sigma, "p_bg": pbg, "ll": ll, "n_iter": it + 1}


def simulate_forward_naive(rng, start, horizon, bg_mean, smp, smp_w, snap, hist, trigger):
    """One future of a continuous SEPP, plain Python: counts per cell in ``[start, start + horizon)``.

    ``smp = (px, py, cell)``: the cells' sample points; ``smp_w``: background mass of each (any scale);
    ``hist = (t, x, y, wt)``; ``trigger``: ``("exp-gauss", theta, omega, sigma, max_days, max_d)`` or
    ``("histogram", t_edges, rate_time, d_edges, density_space)``. Background times are uniform (no
    seasonality). A point counts in the cell of its nearest sample point within ``snap`` metres (brute
    force), else it is dropped with its descendants. Delays come from rejection against the truncation
    and the window (not inversion), offspring counts from Poisson(total mass).
    """
    px, py, pc = smp
    n_cells = int(pc.max()) + 1
    end = start + horizon
    counts = np.zeros(n_cells)
    if trigger[0] == "exp-gauss":
        _, theta, omega, sigma, max_days, max_d = trigger

        def child(t0, x0, y0):
            u = rng.exponential(1.0 / omega)
            dx, dy = rng.normal(0.0, sigma, 2)
            ok = u < max_days and dx * dx + dy * dy <= max_d * max_d
            return t0 + u, x0 + dx, y0 + dy, ok
        mass = theta
    else:
        _, t_edges, rate, d_edges, dens = trigger
        tm = rate * np.diff(t_edges)
        rm = dens * math.pi * np.diff(d_edges**2)

        def child(t0, x0, y0):
            b = rng.choice(tm.size, p=tm / tm.sum())
            u = rng.uniform(t_edges[b], t_edges[b + 1])
            k = rng.choice(rm.size, p=rm / rm.sum())
            r = math.sqrt(rng.uniform(d_edges[k] ** 2, d_edges[k + 1] ** 2))
            a = rng.uniform(0, 2 * math.pi)
            return t0 + u, x0 + r * math.cos(a), y0 + r * math.sin(a), True
        mass = tm.sum()

    def cell_of(x, y):
        d2 = (px - x) ** 2 + (py - y) ** 2
        q = int(np.argmin(d2))
        return pc[q] if d2[q] <= snap * snap else -1

    queue = []
    cum = np.cumsum(smp_w) / np.sum(smp_w)
    for _ in range(rng.poisson(bg_mean)):
        q = min(int(np.searchsorted(cum, rng.random(), side="right")), px.size - 1)
        queue.append((start + horizon * rng.random(), px[q], py[q]))
        counts[pc[q]] += 1
    ht, hx, hy, hw = hist
    n_children = rng.poisson(hw * mass)
    for i in np.flatnonzero(n_children):
        # every child of the history event, kept when it lands inside the window (rejection)
        for _ in range(n_children[i]):
            t, x, y, ok = child(ht[i], hx[i], hy[i])
            if ok and start <= t < end:
                c = cell_of(x, y)
                if c >= 0:
                    counts[c] += 1
                    queue.append((t, x, y))
    j = 0
    while j < len(queue):
        t0, x0, y0 = queue[j]
        for _ in range(rng.poisson(mass)):
            t, x, y, ok = child(t0, x0, y0)
            if ok and t < end:
                c = cell_of(x, y)
                if c >= 0:
                    counts[c] += 1
                    queue.append((t, x, y))
        j += 1
    return counts
