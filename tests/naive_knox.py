"""Slow, obvious references for the Knox test and the NearRepeat risk surface.

Everything here enumerates all pairs (events × events, cells × events) with
plain numpy; use only on small inputs (a few thousand events).
"""

from __future__ import annotations

import numpy as np

from riskgrid.kernels.knox import permutation


def band_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band ``k`` with ``edges[k] <= v < edges[k+1]``; -1 outside every band."""
    k = np.searchsorted(edges, values, side="right") - 1
    k[(k < 0) | (k >= edges.size - 1)] = -1
    return k


def pair_distances(x, y, metric="euclidean"):
    """Distances of all pairs ``i < j`` (metres) and the pair indices."""
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    dy = y[j] - y[i]
    d = np.abs(dx) + np.abs(dy) if metric == "manhattan" else np.sqrt(dx * dx + dy * dy)
    return i, j, d


def knox_table(x, y, t, space_edges, time_edges, metric="euclidean"):
    """Observed Knox table by enumerating all ``n (n - 1) / 2`` pairs."""
    space_edges = np.asarray(space_edges, float)
    time_edges = np.asarray(time_edges, float)
    i, j, d = pair_distances(np.asarray(x, float), np.asarray(y, float), metric)
    t = np.asarray(t, float)
    g = np.abs(t[i] - t[j])
    s = band_index(d, space_edges)
    b = band_index(g, time_edges)
    ok = (s >= 0) & (b >= 0)
    out = np.zeros((space_edges.size - 1, time_edges.size - 1), dtype=np.int64)
    np.add.at(out, (s[ok], b[ok]), 1)
    return out


def knox_simulated(x, y, t, space_edges, time_edges, seeds, metric="euclidean"):
    """Permutation tables: permutation ``p`` gives event ``i`` the time ``t[permutation(seeds[p], n)[i]]``."""
    t = np.asarray(t, float)
    return np.stack(
        [knox_table(x, y, t[permutation(int(s), t.size)], space_edges, time_edges, metric) for s in seeds]
    )


def near_repeat_risk(cx, cy, ex, ey, et, start, space_edges, time_edges, excess, metric="euclidean"):
    """Risk of every cell centre: sum over events of ``excess[space band, time band]``.

    Space band of the (centre, event) distance, time band of ``start - et``;
    pairs outside every band add nothing.
    """
    cx, cy, ex, ey, et = (np.asarray(a, float) for a in (cx, cy, ex, ey, et))
    dx = ex[None, :] - cx[:, None]
    dy = ey[None, :] - cy[:, None]
    d = np.abs(dx) + np.abs(dy) if metric == "manhattan" else np.sqrt(dx * dx + dy * dy)
    s = band_index(d.ravel(), np.asarray(space_edges, float)).reshape(d.shape)
    b = band_index(start - et, np.asarray(time_edges, float))
    b = np.broadcast_to(b[None, :], d.shape)
    ok = (s >= 0) & (b >= 0)
    vals = np.where(ok, np.asarray(excess, float)[np.maximum(s, 0), np.maximum(b, 0)], 0.0)
    return vals.sum(axis=1)


def knox_table_blocked(x, y, t, space_edges, time_edges, metric="euclidean", block=512):
    """Same as :func:`knox_table`, row block by row block (O(n * block) memory) for large n.

    This stands in for the usual all-pairs implementations in benchmarks.
    """
    space_edges = np.asarray(space_edges, float)
    time_edges = np.asarray(time_edges, float)
    x, y, t = (np.asarray(a, float) for a in (x, y, t))
    n = x.size
    out = np.zeros((space_edges.size - 1, time_edges.size - 1), dtype=np.int64)
    nt = time_edges.size - 1
    for lo in range(0, n - 1, block):
        hi = min(lo + block, n)
        ii = np.arange(lo, hi)[:, None]
        jj = np.arange(lo, n)[None, :]
        dx = x[lo:][None, :] - x[lo:hi][:, None]
        dy = y[lo:][None, :] - y[lo:hi][:, None]
        d = np.abs(dx) + np.abs(dy) if metric == "manhattan" else np.sqrt(dx * dx + dy * dy)
        g = np.abs(t[lo:hi][:, None] - t[lo:][None, :])
        upper = jj > ii
        s = band_index(d[upper], space_edges)
        b = band_index(g[upper], time_edges)
        ok = (s >= 0) & (b >= 0)
        out += np.bincount(s[ok] * nt + b[ok], minlength=out.size).reshape(out.shape)
    return out


def knox_table_weighted(x, y, t, w, space_edges, time_edges, metric="euclidean"):
    """Weighted observed Knox table: every pair ``i < j`` adds ``w[i] * w[j]`` to its (space, time) cell."""
    space_edges = np.asarray(space_edges, float)
    time_edges = np.asarray(time_edges, float)
    i, j, d = pair_distances(np.asarray(x, float), np.asarray(y, float), metric)
    t = np.asarray(t, float)
    w = np.asarray(w, float)
    s = band_index(d, space_edges)
    b = band_index(np.abs(t[i] - t[j]), time_edges)
    ok = (s >= 0) & (b >= 0)
    out = np.zeros((space_edges.size - 1, time_edges.size - 1))
    np.add.at(out, (s[ok], b[ok]), w[i[ok]] * w[j[ok]])
    return out


def knox_simulated_weighted(x, y, t, w, space_edges, time_edges, seeds, metric="euclidean"):
    """Weighted permutation tables: event ``i`` keeps its weight and takes the time ``t[permutation(seeds[p], n)[i]]``."""
    t = np.asarray(t, float)
    return np.stack(
        [knox_table_weighted(x, y, t[permutation(int(s), t.size)], w, space_edges, time_edges, metric) for s in seeds]
    )
