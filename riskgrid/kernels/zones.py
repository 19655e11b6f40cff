"""Exact search for the best compact patrol zone (branch and bound over connected cell sets).

:func:`best_compact_set` finds, among the *available* cells, the connected set
of at most ``max_cells`` cells whose centroids are pairwise at most
``max_diameter_m`` apart (great-circle metres) with the largest summed risk.

Enumeration: every connected set has a unique *anchor*, its first member in
the rank order (highest risk, ties lowest index). For each anchor, the sets
are enumerated once each with the "extend by a frontier cell, exclude the
frontier cells already tried" scheme of Wernicke's ESU algorithm (2006),
restricted to the cells that rank after the anchor and lie within the
diameter of it and within ``max_cells - 1`` steps of it through such cells.
A branch is cut when its summed risk plus the largest
``max_cells - |S|`` risks still addable cannot reach the best set found, and
the anchor loop stops once ``max_cells * risk[anchor]`` cannot (every member
of a set ranks after its anchor). Ties in risk go to the smaller set, then to
the lexicographically smallest sorted index tuple, so the result is unique.

Pure: arrays and scalars in, arrays out; serial (the result is the same for
any thread count).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit


@jit
def _hav_m(lat1, lon1, lat2, lon2, radius_m):
    dphi = lat2 - lat1
    dlmb = lon2 - lon1
    a = np.sin(dphi / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(dlmb / 2) ** 2
    if a < 0.0:
        a = 0.0
    elif a > 1.0:
        a = 1.0
    return 2.0 * radius_m * np.arcsin(np.sqrt(a))


@jit
def _better(cur, size, members, best_risk, best_size, best_cells):
    """Is (cur, size, sorted members) better than the incumbent? (risk desc, size asc, lexicographic asc)."""
    if cur > best_risk:
        return True
    if cur < best_risk:
        return False
    if size < best_size:
        return True
    if size > best_size:
        return False
    s = np.sort(members)
    for i in range(size):
        if s[i] < best_cells[i]:
            return True
        if s[i] > best_cells[i]:
            return False
    return False


@jit
def best_compact_set(risk, lat_rad, lon_rad, adj_indptr, adj_indices, order, available, max_cells, max_diameter_m,
                     radius_m, max_nodes):
    """Best connected set of at most ``max_cells`` available cells within ``max_diameter_m``.

    Parameters
    ----------
    risk : float64 (n,)
        Non-negative risk per cell.
    lat_rad, lon_rad : float64 (n,)
        Cell centroids in radians.
    adj_indptr, adj_indices : int64
        Ring-1 adjacency (CSR; a cell may list itself, it is ignored).
    order : int64 (n,)
        Cells by decreasing risk, ties by increasing index.
    available : bool (n,)
        Cells that may be used.
    max_cells : int
        Largest set size (>= 1).
    max_diameter_m : float
        Largest great-circle distance between two member centroids, metres.
    radius_m : float
        Sphere radius, metres.
    max_nodes : int
        Search budget: number of sets examined before giving up.

    Returns
    -------
    cells : int64 (k,)
        The best set, sorted by index (empty when no available cell has positive risk).
    best_risk : float
        Its summed risk (summed in the order the search added the members).
    n_nodes : int
        Sets examined.
    complete : bool
        False when the budget ran out (the set is then the best found so far).
    """
    n = risk.size
    best_risk = 0.0
    best_size = 0
    best_cells = np.empty(max_cells, dtype=np.int64)
    n_nodes = 0
    complete = True
    pos_of = np.empty(n, dtype=np.int64)
    for p in range(n):
        pos_of[order[p]] = p
    g2l = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, dtype=np.int64)
    depth = np.empty(n, dtype=np.int64)
    loc = np.empty(n, dtype=np.int64)
    members = np.empty(max_cells, dtype=np.int64)  # local ids, members[d] added at level d
    cur_at = np.empty(max_cells, dtype=np.float64)
    lvl_start = np.empty(max_cells, dtype=np.int64)
    lvl_inh = np.empty(max_cells, dtype=np.int64)
    lvl_end = np.empty(max_cells, dtype=np.int64)
    lvl_pos = np.empty(max_cells, dtype=np.int64)
    gm = np.empty(max_cells, dtype=np.int64)

    for pa in range(n):
        a = order[pa]
        if risk[a] <= 0.0:
            break
        if best_size > 0 and risk[a] * max_cells * (1.0 + 1e-12) < best_risk:
            break
        if not available[a]:
            continue
        # local candidate list: the available cells ranking after the anchor that lie within the diameter of it
        # and can be reached from it in at most max_cells - 1 steps through such cells (breadth-first), then
        # put in rank order (the anchor first)
        stamp = pa + 1
        seen[a] = stamp
        m = 1
        loc[0] = a
        depth[0] = 0
        head = 0
        while head < m:
            u = loc[head]
            du = depth[head]
            head += 1
            if du >= max_cells - 1:
                continue
            for q in range(adj_indptr[u], adj_indptr[u + 1]):
                j = adj_indices[q]
                if seen[j] == stamp:
                    continue
                seen[j] = stamp
                if not available[j] or pos_of[j] <= pa:
                    continue
                if _hav_m(lat_rad[a], lon_rad[a], lat_rad[j], lon_rad[j], radius_m) > max_diameter_m:
                    continue
                loc[m] = j
                depth[m] = du + 1
                m += 1
        if m > 2:
            ranks = np.empty(m - 1, dtype=np.int64)
            for u in range(1, m):
                ranks[u - 1] = pos_of[loc[u]]
            srt = np.argsort(ranks)
            tail = loc[1:m].copy()
            for u in range(m - 1):
                loc[1 + u] = tail[srt[u]]
        for u in range(m):
            g2l[loc[u]] = u
        lr = np.empty(m, dtype=np.float64)
        for u in range(m):
            lr[u] = risk[loc[u]]
        compat = np.ones((m, m), dtype=np.bool_)
        for u in range(m):
            for v in range(u + 1, m):
                ok = _hav_m(lat_rad[loc[u]], lon_rad[loc[u]], lat_rad[loc[v]], lon_rad[loc[v]], radius_m) <= max_diameter_m
                compat[u, v] = ok
                compat[v, u] = ok
        # local adjacency, sorted by local id (= rank order)
        l_indptr = np.zeros(m + 1, dtype=np.int64)
        deg = 1
        for u in range(m):
            deg += adj_indptr[loc[u] + 1] - adj_indptr[loc[u]]
        tmp = np.empty(deg, dtype=np.int64)
        cnt = 0
        for u in range(m):
            g = loc[u]
            s0 = cnt
            for q in range(adj_indptr[g], adj_indptr[g + 1]):
                v = g2l[adj_indices[q]]
                if v >= 0 and v != u:
                    tmp[cnt] = v
                    cnt += 1
            tmp[s0:cnt] = np.sort(tmp[s0:cnt])
            l_indptr[u + 1] = cnt
        l_adj = tmp[:cnt].copy()
        for u in range(m):
            g2l[loc[u]] = -1

        state = np.zeros(m, dtype=np.int64)  # 0 free, 1 member, 2 excluded, 3 frontier
        inc = np.zeros(m, dtype=np.int64)  # members farther than the diameter
        fr = np.empty(m, dtype=np.int64)
        # root: the anchor alone
        state[0] = 1
        members[0] = 0
        cur_at[0] = lr[0]
        n_nodes += 1
        gm[0] = a
        if _better(lr[0], 1, gm[:1], best_risk, best_size, best_cells):
            best_risk = lr[0]
            best_size = 1
            best_cells[0] = a
        end = 0
        for q in range(l_indptr[0], l_indptr[1]):
            v = l_adj[q]
            if state[v] == 0:
                state[v] = 3
                fr[end] = v
                end += 1
        d = 0
        lvl_start[0] = 0
        lvl_inh[0] = 0
        lvl_end[0] = end
        lvl_pos[0] = 0
        root_bound = lr[0]
        for v in range(1, min(m, max_cells)):
            root_bound += lr[v]
        if max_cells == 1 or root_bound < best_risk:
            lvl_pos[0] = end
        while True:
            if n_nodes >= max_nodes:
                complete = False
                break
            if lvl_pos[d] < lvl_end[d]:
                w = fr[lvl_pos[d]]
                lvl_pos[d] += 1
                if inc[w] > 0:
                    state[w] = 2
                    continue
                # include w
                state[w] = 1
                members[d + 1] = w
                cur = cur_at[d] + lr[w]
                cur_at[d + 1] = cur
                for v in range(m):
                    if not compat[w, v]:
                        inc[v] += 1
                n_nodes += 1
                size = d + 2
                for i in range(size):
                    gm[i] = loc[members[i]]
                if _better(cur, size, gm[:size], best_risk, best_size, best_cells):
                    best_risk = cur
                    best_size = size
                    best_cells[:size] = np.sort(gm[:size])
                # child level
                c_end = lvl_end[d]
                for q in range(l_indptr[w], l_indptr[w + 1]):
                    v = l_adj[q]
                    if state[v] == 0:
                        state[v] = 3
                        fr[c_end] = v
                        c_end += 1
                d += 1
                lvl_start[d] = lvl_pos[d - 1]
                lvl_inh[d] = lvl_end[d - 1]
                lvl_end[d] = c_end
                lvl_pos[d] = lvl_start[d]
                if size >= max_cells:
                    lvl_pos[d] = c_end
                else:
                    # bound: current risk + the largest risks still addable
                    need = max_cells - size
                    bound = cur
                    for v in range(m):
                        if need == 0:
                            break
                        if (state[v] == 0 or state[v] == 3) and inc[v] == 0:
                            bound += lr[v]
                            need -= 1
                    if bound < best_risk:
                        lvl_pos[d] = c_end
            else:
                for q in range(lvl_start[d], lvl_end[d]):
                    state[fr[q]] = 3 if q < lvl_inh[d] else 0
                if d == 0:
                    break
                w = members[d]
                state[w] = 2
                for v in range(m):
                    if not compat[w, v]:
                        inc[v] -= 1
                d -= 1
        if not complete:
            break
    return best_cells[:best_size].copy(), best_risk, n_nodes, complete
