"""Branching (cluster) simulation of a space-time self-exciting process."""

from __future__ import annotations

import numpy as np

from ._jit import jit


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
