"""Slow, obvious O(N^2) references for the grid Hawkes kernels (riskgrid.kernels.hawkes).

Every parent-child pair is looked at explicitly; ring distances come from a
dense cell x cell matrix (built in the tests straight from ``h3.grid_distance``).
"""

from __future__ import annotations

import numpy as np
from h3.api import numpy_int as h3i


def ring_matrix(cells: np.ndarray, R: int) -> np.ndarray:
    """Dense H3 grid distance between every pair of cells, -1 beyond ``R`` rings."""
    n = cells.size
    D = np.full((n, n), -1, dtype=np.int64)
    for a in range(n):
        for b in range(n):
            d = h3i.grid_distance(int(cells[a]), int(cells[b]))
            if d <= R:
                D[a, b] = d
    return D


def ring_counts_in_grid(cells: np.ndarray, R: int) -> np.ndarray:
    """``n_in[c, r]``: how many of cell c's ring-r cells are in the grid."""
    cellset = set(int(c) for c in cells)
    out = np.zeros((cells.size, R + 1))
    for i, c in enumerate(cells):
        for r in range(R + 1):
            ring = [int(c)] if r == 0 else [int(x) for x in h3i.grid_ring(int(c), r)]
            out[i, r] = sum(x in cellset for x in ring)
    return out


def hawkes_naive(t, cell, typ, D, n_in, mu, theta, omega, w, t0, T, wt=None, lag=0.0, own=0.0):
    """Intensities, responsibilities, statistics and log-likelihood, pair by pair.

    The delay kernel is ``omega exp(-omega (dt - lag))`` for ``dt > lag``
    (zero for closer pairs); event ``i`` counts ``wt[i]`` times as a parent
    and as a child (default weight 1). ``own > 0``: event ``j`` sees the
    background ``x`` with ``x = mu - own min(wt_j, 1) x / (x + g)`` (``g`` its
    trigger sum), found by bisection (scipy's brentq), at least ``mu / 1000``;
    its intensity is ``x + g``. The compensator uses ``mu``.

    Parameters
    ----------
    t, cell, typ : (N,) arrays (any order)
    D : (n_cells, n_cells) ring distance (-1 beyond R)
    n_in : (n_cells, R+1) in-grid ring cell counts
    mu : (K, n_cells) events/day; theta (K, K); omega per day; w (R+1,)
    t0, T : start and end of the window (days)

    Returns
    -------
    dict with lam (N,), p_bg (N,), mu_num (K, n_cells), trig (R+1, K, K),
    dt_num, sum_log, compensator, loglik.
    """
    t = np.asarray(t, float)
    cell = np.asarray(cell)
    typ = np.asarray(typ)
    N = t.size
    wt = np.ones(N) if wt is None else np.asarray(wt, float)
    K = theta.shape[0]
    R1 = w.size
    lam = np.zeros(N)
    p_bg = np.zeros(N)
    mu_num = np.zeros_like(mu)
    trig = np.zeros((R1, K, K))
    dt_num = 0.0
    for j in range(N):  # child j; every other event i is a candidate parent
        dt = t[j] - t - lag
        r = D[cell, cell[j]]
        ok = (dt > 0) & (r >= 0)  # later than lag, within R rings
        g = wt[ok] * theta[typ[ok], typ[j]] * omega * np.exp(-omega * dt[ok]) * w[r[ok]]
        x = mu[typ[j], cell[j]]
        gs = g.sum()
        if own > 0 and x > 0:
            from scipy.optimize import brentq

            d = own * min(wt[j], 1.0)
            root = brentq(lambda v: v - x + d * v / (v + gs) if v + gs > 0 else v - x, 0.0, x, xtol=1e-24 * x, maxiter=500)
            x = max(root, 1e-3 * x)
        lj = x + gs
        lam[j] = lj
        p_bg[j] = x / lj
        mu_num[typ[j], cell[j]] += wt[j] * p_bg[j]
        np.add.at(trig, (r[ok], typ[ok], typ[j]), wt[j] * g / lj)
        dt_num += wt[j] * float(np.sum(g * dt[ok]) / lj)
    m = n_in @ w
    comp = mu.sum() * (T - t0)
    for i in range(N):
        comp += wt[i] * theta[typ[i]].sum() * m[cell[i]] * (1 - np.exp(-omega * max(T - t[i] - lag, 0.0)))
    sum_log = float(np.sum(wt * np.log(lam)))
    return dict(lam=lam, p_bg=p_bg, mu_num=mu_num, trig=trig, dt_num=dt_num,
                sum_log=sum_log, compensator=comp, loglik=sum_log - comp)


def predict_naive(t, cell, typ, D, mu, theta, omega, w, start, horizon, wt=None, lag=0.0):
    """Expected events per (type, cell) in [start, start + horizon), summing over every past event."""
    K, n_cells = mu.shape
    wt = np.ones(t.size) if wt is None else np.asarray(wt, float)
    out = mu * horizon
    for i in range(t.size):
        if t[i] >= start:
            continue
        s = t[i] + lag  # offspring come after s
        f = wt[i] * (np.exp(-omega * max(start - s, 0.0)) - np.exp(-omega * max(start + horizon - s, 0.0)))
        for c in range(n_cells):
            r = D[cell[i], c]
            if r >= 0:
                for l in range(K):
                    out[l, c] += theta[typ[i], l] * w[r] * f
    return out


def nb_marginal_naive(B, m, nu, V=None):
    """Negative-binomial log marginal (without ``-lgamma(B + 1)``) and its first two ``nu``-derivatives, by scipy.

    ``V``: variances of the counts, entering as ``V/2 trigamma(B + nu m)`` (the second-order expectation of
    ``lgamma(N + nu m)``) and its derivatives.
    """
    from scipy.special import digamma, gammaln, polygamma

    B, m = np.asarray(B, float), np.asarray(m, float)
    V = np.zeros_like(B) if V is None else np.asarray(V, float)
    a = nu * m
    val = float(np.sum(gammaln(B + a) - gammaln(a) + a * np.log(nu / (1.0 + nu)) - B * np.log1p(nu)
                       + 0.5 * V * polygamma(1, B + a)))
    d1 = float(np.sum(m * (digamma(B + a) - digamma(a) + np.log(nu / (1 + nu))) + (m - B) / (1 + nu)
                      + 0.5 * V * m * polygamma(2, B + a)))
    d2 = float(np.sum(m * m * (polygamma(1, B + a) - polygamma(1, a)) + m / (nu * (1 + nu)) - (m - B) / (1 + nu) ** 2
                      + 0.5 * V * m * m * polygamma(3, B + a)))
    return val, d1, d2


def best_log_nu_naive(B, m, bounds=(-7.0, 8.0), V=None):
    """``log nu`` maximising the negative-binomial marginal of ``B`` given ``m`` (scipy's bounded Brent, plus the bounds)."""
    from scipy.optimize import minimize_scalar

    f = lambda z: -nb_marginal_naive(B, m, np.exp(z), V)[0]  # noqa: E731
    res = minimize_scalar(f, bounds=bounds, method="bounded", options={"xatol": 1e-12})
    return min([(float(res.x), float(res.fun))] + [(b, f(b)) for b in bounds], key=lambda v: v[1])[0]


def background_count_variance_naive(cell, typ, wt, p, n_cells, K):
    """Per (cell, type) ``sum w p (1 - p)`` of the background responsibilities ``p``, by bincount."""
    return np.bincount(cell * K + typ, weights=wt * p * (1 - p), minlength=n_cells * K).reshape(n_cells, K)


def gap_mixture_naive(g, b, lam, pi, n_iter, rtol):
    """Two-exponential gap mixture EM, plain numpy (fast rate ``lam``, fixed slow densities ``b``)."""
    for it in range(n_iter):
        a = pi * lam * np.exp(-lam * g)
        s = a + (1 - pi) * b
        p = np.where(s > 0, a / np.where(s > 0, s, 1.0), 0.0)
        pi = p.sum() / g.size
        lam_new = p.sum() / np.dot(p, g)
        done = abs(lam_new - lam) <= rtol * lam
        lam = lam_new
        if done:
            return lam, it + 1
    return lam, n_iter


def trigger_sum_em_naive(g, cell_type, wt, C, window, n_ct, theta, n_iter):
    """Profile EM of theta and backgrounds given the trigger sums, plain numpy, ``n_iter`` steps."""
    mu = np.bincount(cell_type, weights=wt, minlength=n_ct) / (2.0 * window)
    for _ in range(n_iter):
        lam = mu[cell_type] + theta * g
        pt = np.where(lam > 0, theta * g / np.where(lam > 0, lam, 1.0), 0.0)
        theta = float(np.dot(wt, pt) / C)
        mu = np.bincount(cell_type, weights=wt * (1.0 - pt), minlength=n_ct) / window
    lam = mu[cell_type] + theta * g
    return mu, theta, float(np.dot(wt, np.log(lam))) - window * float(mu.sum()) - theta * C


def hawkes_1d_loglik_naive(t, T, mu, theta, omega):
    """Exact log-likelihood of a one-dimensional exponential Hawkes process on [0, T] (times ``t`` sorted, no ties).

    Intensity ``mu + theta omega sum_{t_i < t} exp(-omega (t - t_i))``; the
    compensator ``mu T + theta sum_i (1 - exp(-omega (T - t_i)))``. A plain
    Python loop over the events (the recursion of Ogata 1981).
    """
    A = 0.0
    s = 0.0
    prev = None
    for x in t:
        if prev is not None:
            A = (A + 1.0) * np.exp(-omega * (x - prev))
        s += np.log(mu + theta * omega * A)
        prev = x
    return s - mu * T - theta * float(np.sum(-np.expm1(-omega * (T - np.asarray(t)))))
