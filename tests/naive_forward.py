"""Slow, obvious reference of the grid Hawkes forward simulation (riskgrid.kernels.forward).

Plain Python branching: background events, the history's still-to-come children, then
generation by generation; every child's cell drawn from a dense ring matrix.
"""

from __future__ import annotations

import numpy as np


def simulate_forward_naive(rng, mu, theta, omega, lag, D, w, hist_t, hist_cell, hist_typ, hist_wt, start, horizon):
    """One future: counts (K, n_cells) in [start, start + horizon).

    ``D`` is the dense ring-distance matrix (-1 beyond R rings); an event in cell ``c`` has
    Poisson(theta[k, l] * w[D[c, q]]) type-``l`` children in cell ``q`` at delays lag + Exp(omega).
    """
    n_cells, K = mu.shape
    end = start + horizon
    counts = np.zeros((K, n_cells))
    queue = []
    for c in range(n_cells):
        for k in range(K):
            for t in start + horizon * rng.random(rng.poisson(mu[c, k] * horizon)):
                queue.append((t, c, k))

    def children(t0, c0, k0, weight, lo):
        out = []
        for q in range(n_cells):
            if D[c0, q] < 0:
                continue
            for l in range(K):
                m = weight * theta[k0, l] * w[D[c0, q]]
                # the delay kernel's mass after lo and before end
                src = t0 + lag
                share = np.exp(-omega * max(lo - src, 0.0)) - np.exp(-omega * max(end - src, 0.0))
                for _ in range(rng.poisson(m * share)):
                    a, b = max(lo, src), end
                    fa, fb = np.exp(-omega * (a - src)), np.exp(-omega * (b - src))
                    t = src - np.log(fa - rng.random() * (fa - fb)) / omega
                    out.append((min(t, np.nextafter(end, start)), q, l))
        return out

    for t0, c0, k0, wt in zip(hist_t, hist_cell, hist_typ, hist_wt):
        queue.extend(children(t0, c0, k0, wt, start))
    while queue:
        t0, c0, k0 = queue.pop()
        counts[k0, c0] += 1
        queue.extend(children(t0, c0, k0, 1.0, t0))
    return counts
