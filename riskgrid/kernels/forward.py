"""Forward simulation of the grid Hawkes branching process (forecast intervals).

:func:`simulate_grid_forward` draws ``n_sims`` independent futures of the
process of :class:`riskgrid.models.GridHawkes` over ``[start, start + horizon)``
given the observed history, by its branching structure:

* background events of each (cell, type): Poisson(``mu * horizon``), uniform in time;
* the still-to-come direct offspring of each history event ``i``: Poisson with
  the mean the caller computed (``wt_i * sum_l theta[k_i, l] * m_{c_i} *``
  the in-window share of its delay kernel), each at a time drawn from the
  delay kernel truncated to the window;
* every simulated event has Poisson(``sum_l theta[k, l] * m_c``) children at
  ``t + lag + Exp(omega)`` (kept when inside the window), and so on.

A child of an event in cell ``c`` goes to in-grid neighbour ``q`` with
probability ``w[ring_q] / m_c`` (``m_c = sum_q w[ring_q]``, the in-grid
spill-over mass; offspring falling off the grid are not counted) and has type
``l`` with probability ``theta[k, l] / sum_l theta[k, l]``.

Simulation ``s`` seeds Numba's generator with ``seeds[s]`` and runs entirely
on one thread, writing only row ``s`` of the output: results are the same for
any number of threads.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, jit_parallel, prange

__all__ = ["simulate_grid_forward"]


@jit
def _pick(cum, u):
    """First index ``k`` with ``cum[k] > u`` (``cum`` non-decreasing, last entry the total; shared with simulate.py)."""
    lo = 0
    hi = cum.size - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cum[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jit
def _cumulative(values):
    """Running sums of ``max(values, 0)`` and their total (for :func:`_pick`; shared with simulate.py)."""
    cum = np.zeros(values.size)
    acc = 0.0
    for i in range(values.size):
        acc += max(values[i], 0.0)
        cum[i] = acc
    return cum, acc


@jit
def _push(buf_t, buf_c, buf_k, n, t, c, k):
    """Append to the growable event queue; returns the (possibly new) arrays."""
    if n == buf_t.size:
        nt = np.empty(2 * n, dtype=np.float64)
        nc = np.empty(2 * n, dtype=np.int64)
        nk = np.empty(2 * n, dtype=np.int64)
        nt[:n] = buf_t
        nc[:n] = buf_c
        nk[:n] = buf_k
        buf_t, buf_c, buf_k = nt, nc, nk
    buf_t[n] = t
    buf_c[n] = c
    buf_k[n] = k
    return buf_t, buf_c, buf_k


@jit_parallel
def simulate_grid_forward(seeds, mu, theta, omega, lag, nb_ptr, nb_idx, nb_ring, w,
                          h_cell, h_typ, h_mean, h_lo, h_src, start, horizon):
    """Counts per (simulation, type, cell) of the grid Hawkes process over ``[start, start + horizon)``.

    Parameters
    ----------
    seeds : (n_sims,) int64
        One seed per simulation.
    mu : (n_cells, K) float64
        Background rates, events/day.
    theta : (K, K) float64
        Mean number of type-``l`` children of a type-``k`` event.
    omega : float
        Decay rate of the delay kernel, per day.
    lag : float
        Minimum delay (days): children come at ``t + lag + Exp(omega)``.
    nb_ptr, nb_idx, nb_ring : int64
        In-grid neighbours of every cell within ``R`` rings (CSR, see
        :meth:`riskgrid.HexGrid.neighbours`).
    w : (R + 1,) float64
        Spill-over weight of one cell at ring ``r``.
    h_cell, h_typ : (H,) int64
        Cell and type of the history events that can still have children in the window.
    h_mean : (H,) float64
        Expected number of their direct in-grid children in the window.
    h_lo : (H,) float64
        Earliest time a child of each can have in the window, ``max(start, h_src)``.
    h_src : (H,) float64
        ``t_i + lag``: where each history event's delay kernel starts (days).
    start, horizon : float
        The window, days.

    Returns
    -------
    counts : (n_sims, K, n_cells) int32 (half the memory of float64: 33 types x 6,000 cells x 500 futures is 400 MB)
    """
    n_sims = seeds.size
    n_cells, K = mu.shape
    end = start + horizon
    counts = np.zeros((n_sims, K, n_cells), dtype=np.int32)
    # per source cell: cumulative spill-over weights over its neighbours; per type: cumulative theta row
    m_cell = np.zeros(n_cells)
    cum_nb = np.zeros(nb_idx.size)
    for c in range(n_cells):
        acc = 0.0
        for q in range(nb_ptr[c], nb_ptr[c + 1]):
            acc += w[nb_ring[q]]
            cum_nb[q] = acc
        m_cell[c] = acc
    # background: one Poisson total per simulation, each event's (cell, type) drawn from the cumulative rates
    # (the superposition of the per-(cell, type) Poisson processes: O(events), not O(cells x types) draws)
    cum_mu, total_mu = _cumulative(mu.ravel())  # entry c * K + k
    row = np.zeros(K)
    cum_th = np.zeros((K, K))
    for k in range(K):
        acc = 0.0
        for l in range(K):
            acc += theta[k, l]
            cum_th[k, l] = acc
        row[k] = acc
    # history: the same superposition, one Poisson total of still-to-come children per simulation, each
    # child's parent drawn from the cumulative means (O(children), not O(history events) draws)
    cum_h, total_h = _cumulative(h_mean)
    for s in prange(n_sims):
        np.random.seed(seeds[s])
        cap = 64
        q_t = np.empty(cap, dtype=np.float64)
        q_c = np.empty(cap, dtype=np.int64)
        q_k = np.empty(cap, dtype=np.int64)
        n = 0
        # background
        if total_mu > 0.0:
            nb = np.random.poisson(total_mu * horizon)
            for _ in range(nb):
                # the first entry with cum > u has cum[j - 1] <= u < cum[j]: a positive rate, never an empty cell
                j = _pick(cum_mu, np.random.random() * total_mu)
                q_t, q_c, q_k = _push(q_t, q_c, q_k, n, start + horizon * np.random.random(), j // K, j % K)
                n += 1
        # still-to-come children of the history
        nh = np.random.poisson(total_h) if total_h > 0.0 else 0
        for _ in range(nh):
            i = _pick(cum_h, np.random.random() * total_h)
            c0 = h_cell[i]
            k0 = h_typ[i]
            fa = math.exp(-omega * (h_lo[i] - h_src[i]))
            fb = math.exp(-omega * (end - h_src[i]))
            # truncated exponential on [h_lo, end) by inversion
            u = np.random.random()
            t = h_src[i] - math.log(fa - u * (fa - fb)) / omega
            if t >= end:
                t = np.nextafter(end, start)
            q = nb_ptr[c0] + _pick(cum_nb[nb_ptr[c0]:nb_ptr[c0 + 1]], np.random.random() * m_cell[c0])
            l = _pick(cum_th[k0], np.random.random() * row[k0])
            q_t, q_c, q_k = _push(q_t, q_c, q_k, n, t, nb_idx[q], l)
            n += 1
        # cascade: every queued event is counted and has children of its own
        j = 0
        while j < n:
            t0 = q_t[j]
            c0 = q_c[j]
            k0 = q_k[j]
            counts[s, k0, c0] += 1
            mean = row[k0] * m_cell[c0]
            if mean > 0.0:
                nch = np.random.poisson(mean)
                for _ in range(nch):
                    t = t0 + lag + np.random.exponential(1.0 / omega)
                    if t >= end:
                        continue
                    q = nb_ptr[c0] + _pick(cum_nb[nb_ptr[c0]:nb_ptr[c0 + 1]], np.random.random() * m_cell[c0])
                    l = _pick(cum_th[k0], np.random.random() * row[k0])
                    q_t, q_c, q_k = _push(q_t, q_c, q_k, n, t, nb_idx[q], l)
                    n += 1
            j += 1
    return counts
