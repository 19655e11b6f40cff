"""GridHawkes' training data: events sorted by cell with their neighbourhood streams, and the smoothed background.

:class:`_Prepared` holds one fit window's events in (cell, time) order with the
CSR arrays and merged neighbourhood streams the E-step kernel walks;
:class:`_Smoother` is the empirical-Bayes gamma shrinkage of the per-cell
background counts toward their ring neighbourhood; :func:`time_resolution_days`
and :func:`gap_mixture_rate` feed the warnings and the start values. The
estimator itself is :class:`riskgrid.models.GridHawkes`.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.hawkes import build_streams, gap_mixture_em, nb_marginal_terms, ring_sums

#: number of chunks the cells are split into for the parallel E-step (fixed,
#: so results do not depend on the number of threads)
_N_CHUNKS = 64
#: candidate neighbourhoods (rings) of the smoothed background
_MAX_SMOOTH_RINGS = 4
#: range of log(nu), the strength of the background prior in pseudo-windows
_LOG_NU_BOUNDS = (-7.0, 8.0)
#: inside EM, a Newton step in log(nu) from the previous optimum shorter than this is taken unconfirmed
_WARM_NEWTON_STEP = 1e-3
#: timestamp units tried for the resolution (days) and the share of times that must be multiples
_TIME_UNITS = (1.0, 1.0 / 24, 15.0 / 1440, 5.0 / 1440, 1.0 / 1440, 1.0 / 86400)
_TIME_UNIT_SHARE = 0.95
#: most gaps the gap mixture (a start candidate) is estimated on (an even stride through them)
_MAX_GAPS = 10_000


def time_resolution_days(t: np.ndarray) -> float:
    """Coarsest unit of :data:`_TIME_UNITS` of which >= 95 % of the times ``t`` (days) are multiples; 0 if none."""
    if t.size == 0:
        return 0.0
    for u in _TIME_UNITS:
        x = t / u
        if np.mean(np.abs(x - np.round(x)) <= 1e-6 * np.maximum(1.0, 1.0 / (u * 86400))) >= _TIME_UNIT_SHARE:
            return float(u)
    return 0.0


def gap_mixture_rate(t, cell, wt, lag, window, n_iter=200):
    """Rate (per day) of the fast component of the gaps between successive events of a cell.

    ``t`` sorted within each ``cell`` (days), ``wt`` event weights; gaps of
    at most ``lag`` days are dropped (so copies of one event give no gap and
    an event of integer weight ``k`` the same gaps as ``k`` copies), the others
    shortened by ``lag``. The slow component of a gap in cell ``c`` is
    exponential with the cell's mean rate (weighted events / ``window``).
    At most ``_MAX_GAPS`` gaps (an even stride) are used. NaN without
    usable gaps.
    """
    same = cell[1:] == cell[:-1]
    g = (t[1:] - t[:-1])[same] - lag
    ok = g > 0
    g = g[ok]
    if g.size < 10:
        return np.nan
    n_c = np.bincount(cell, weights=wt)
    r = (n_c / window)[cell[1:][same][ok]]
    if g.size > _MAX_GAPS:  # a start candidate: an even stride through the gaps is enough
        step = -(-g.size // _MAX_GAPS)
        g, r = g[::step], r[::step]
    lam, _ = gap_mixture_em(np.ascontiguousarray(g), r * np.exp(-r * g), 10.0 / float(np.mean(g)), 0.3, n_iter, 1e-6)
    return float(lam)


class _Smoother:
    """Empirical-Bayes gamma shrinkage of per-cell background counts toward their ring neighbourhood."""

    def __init__(self, grid, n_cells):
        S = _MAX_SMOOTH_RINGS if n_cells > 1 else 0
        nb_ptr, nb_idx, nb_ring = grid.neighbours(S)
        owner = np.repeat(np.arange(n_cells), np.diff(nb_ptr))
        self.S = S
        self.key = owner * (S + 1) + np.asarray(nb_ring)
        self.nb_idx = np.asarray(nb_idx)
        n_ring = np.bincount(self.key, minlength=n_cells * (S + 1)).reshape(n_cells, S + 1).astype(float)
        self.n_cum = np.cumsum(n_ring[:, 1:], axis=1)  # (n_cells, S): cells in rings 1..s
        self.n_cells = n_cells
        self.nb_ptr, self.nb_ring = (np.ascontiguousarray(a, dtype=np.int64) for a in (nb_ptr, nb_ring))
        self.nb_idx = np.ascontiguousarray(self.nb_idx, dtype=np.int64)
        self.z_prev = {}  # last optimum of log(nu) per neighbourhood: Newton's start
        self.grid = grid

    def work(self, K: int) -> float:
        """Operations of one :meth:`fit` on ``K`` types (small ones run on one thread)."""
        return 20.0 * float(self.nb_ptr[-1]) * K

    def prior_mean(self, B, rings=None):
        """``m[s - 1]``: (n_cells, K) prior mean counts for neighbourhoods of ``s = 1..S`` rings.

        With ``rings``, the list holds the one mean of that neighbourhood.
        """
        n_cells, K = B.shape
        g = B.mean(axis=0)
        if self.S == 0:
            return [np.broadcast_to(g, B.shape).copy()]
        if rings is not None:
            nb = (np.ascontiguousarray(a, dtype=np.int64) for a in self.grid.neighbours(rings))
            disk = ring_sums(np.ascontiguousarray(B, dtype=np.float64), *nb, rings)[:, 1:, :].sum(axis=1)
            return [(disk + g) / (self.n_cum[:, rings - 1] + 1.0)[:, None]]
        ring_sum = ring_sums(np.ascontiguousarray(B, dtype=np.float64), self.nb_ptr, self.nb_idx, self.nb_ring, self.S)
        cum = np.cumsum(ring_sum[:, 1:, :], axis=1)
        return [(cum[:, s, :] + g) / (self.n_cum[:, s] + 1.0)[:, None] for s in range(self.S)]

    def fit(self, B, rings=None, V=None, warm=False):
        """Best ``(m, nu, rings)`` by the expected negative-binomial marginal likelihood of the counts.

        ``B``: (n_cells, K) expected background counts; ``V``: their variances
        (:func:`~riskgrid.kernels.hawkes.background_count_variance`; ``None``: 0).
        The marginal is the expectation over the unknown counts, to second order
        (see :func:`~riskgrid.kernels.hawkes.nb_marginal_terms`): plugging the
        expected counts into it understates their dispersion, and in EM that
        pulled ``nu`` to its upper bound (a flat background whose spatial
        variation the triggering absorbed: theta +55..+70 % on simulated data,
        issue 13).

        ``rings``: the neighbourhood is given (only ``nu`` is fitted).
        ``warm``: called again inside an iteration whose counts change a
        little between calls (EM): a Newton step from the previous optimum
        shorter than :data:`_WARM_NEWTON_STEP` is taken without a second
        evaluation to confirm it (its error is of the order of its square; the
        iteration's next call corrects it, and at the iteration's fixed point
        the step is zero).

        For each neighbourhood, ``log nu`` maximises the marginal by a
        safeguarded Newton iteration (bracketing, analytic derivatives from
        :func:`~riskgrid.kernels.hawkes.nb_marginal_terms`) started from the
        previous call's optimum, to 1e-10 in ``log nu``; counts of zero enter
        as one sum. A marginal increasing up to a bound ends there exactly.
        """
        best = None
        first = (1 if self.S else 0) if rings is None or self.S == 0 else rings
        V = np.zeros_like(B) if V is None else V
        for s, m in enumerate(self.prior_mean(B, rings if self.S else None), start=first):
            ok = m > 0
            if not ok.any():
                continue
            Bo, mo, Vo = B[ok], m[ok], V[ok]
            pos = Bo > 0
            b1, v1, m1 = (np.ascontiguousarray(a[pos]) for a in (Bo, Vo, mo))
            m_zero = float(mo[~pos].sum())
            z = self._newton(b1, v1, m1, m_zero, self.z_prev.get(s, 0.0), warm and s in self.z_prev)
            self.z_prev[s] = z
            nu = math.exp(z)
            if rings is not None:
                return m, nu, s
            val = nb_marginal_terms(b1, v1, m1, nu, False)[0] + nu * m_zero * math.log(nu / (1.0 + nu))
            if best is None or val > best[0]:
                best = (val, m, nu, s)
        if best is None:  # no background mass anywhere
            return np.zeros_like(B), 1.0, 0
        return best[1], best[2], best[3]

    def shrink(self, B):
        """Counts ``B`` (n_cells, K) shrunk toward their neighbourhood: ``(B + nu m) / (1 + nu)``.

        ``m``, ``nu`` and the neighbourhood as :meth:`fit` chooses them, its
        Newton iteration started afresh (the result depends on ``B`` alone).
        """
        self.z_prev = {}
        m, nu, _ = self.fit(np.ascontiguousarray(B, dtype=np.float64))
        return (B + nu * m) / (1.0 + nu)

    @staticmethod
    def _newton(b1, v1, m1, m_zero, z, warm=False):
        """``log nu`` in ``_LOG_NU_BOUNDS`` maximising the marginal (see :meth:`fit`; ``warm``: there)."""
        lo, hi = _LOG_NU_BOUNDS
        z = min(max(z, lo), hi)
        for _ in range(200):
            nu = math.exp(z)
            _, d1, d2 = nb_marginal_terms(b1, v1, m1, nu, True)
            inv1 = 1.0 / (1.0 + nu)
            d1 += m_zero * (math.log(nu * inv1) + inv1)
            d2 += m_zero * (inv1 / nu - inv1 * inv1)
            gz = nu * d1
            gzz = nu * d1 + nu * nu * d2
            if gz > 0:
                lo = z
            else:
                hi = z
            if hi - lo <= 1e-10:
                break
            newton = gzz < 0
            step = -gz / gzz if newton else (1.0 if gz > 0 else -1.0)
            z_new = z + step
            if not lo < z_new < hi:  # outside the bracket: bisect
                z_new, newton = 0.5 * (lo + hi), False
            # a Newton step of size h leaves an error of order h^2: stop once that is below 1e-10
            # (warm, inside EM: below _WARM_NEWTON_STEP^2)
            if abs(z_new - z) <= ((_WARM_NEWTON_STEP if warm else 1e-5) if newton else 1e-10):
                z = z_new
                break
            z = z_new
        for b in _LOG_NU_BOUNDS:  # a marginal increasing up to a bound: the bound itself
            if abs(z - b) <= 1e-9:
                z = b
        return z


def _estep_work(stream_size: int, n_events: int, n_states: int) -> float:
    """Operations of one E-step (for :func:`~riskgrid._runtime.threads_for_work`: small ones run on one thread)."""
    return 4.0 * stream_size * n_states + 8.0 * n_events


def _ring_sizes(R: int) -> np.ndarray:
    """Number of cells in each full H3 ring 0..R (1, 6, 12, ...), ignoring pentagons."""
    return np.array([1] + [6 * r for r in range(1, R + 1)], dtype=np.float64)


class _Prepared:
    """Events of one window sorted by (cell, time), with the CSR arrays and streams the kernel needs."""

    def __init__(self, t, cell, typ, wt, n_cells, K, t0, nb, n_in, streams=True):
        """``streams=False``: only the events' (cell, time) order and CSR offsets, for the own-cell sums
        of the start values (no neighbourhood streams, no E-step on this object)."""
        order = np.lexsort((t, cell))
        self.order = order
        self.t_abs = np.ascontiguousarray(t[order], dtype=np.float64)
        self.t0 = float(t0)
        self.t = self.t_abs - self.t0
        self.cell = np.ascontiguousarray(cell[order], dtype=np.int64)
        self.typ = np.ascontiguousarray(typ[order], dtype=np.int64)
        self.wt = np.ascontiguousarray(wt[order], dtype=np.float64)
        self.cell_type = self.cell * K + self.typ
        self.K = K
        counts = np.bincount(self.cell, minlength=n_cells)
        self.cell_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        nb_ptr, nb_idx, nb_ring = nb
        self.nb_ptr, self.nb_idx, self.nb_ring = nb_ptr, nb_idx, nb_ring
        self.n_cells = n_cells
        self.n_in = n_in
        self._per_type = None
        self._per_type_order = None
        if not streams:
            return
        self.stream_ptr, self.stream_t, self.stream_code, self.stream_w = build_streams(
            self.t, self.typ, self.wt, self.cell_ptr, nb_ptr, nb_idx, nb_ring, K
        )
        # balance the parallel chunks on work = stream length + own events
        work = np.diff(self.stream_ptr) + counts + 1
        cum = np.cumsum(work, dtype=np.float64)
        n_chunks = int(min(_N_CHUNKS, n_cells))
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n_chunks) / n_chunks, side="right")
        self.chunk_ptr = np.unique(np.concatenate([[0], cuts, [n_cells]])).astype(np.int64)

    def own_cell_view(self, nb0, n_in0):
        """The same events on the ring-0 neighbourhood ``nb0`` without streams (the start values' own-cell model).

        Shares this object's arrays and its (type, cell, time) order instead of sorting again; ``order`` is
        the identity (the events are already in (cell, time) order).
        """
        view = object.__new__(_Prepared)
        view.__dict__.update({k: v for k, v in self.__dict__.items() if not k.startswith(("stream_", "chunk_"))})
        view.order = np.arange(len(self))
        view.nb_ptr, view.nb_idx, view.nb_ring = nb0
        view.n_in = n_in0
        view._per_type = None
        view._per_type_order = self.per_type_order() if self.K > 1 else None
        return view

    def per_type_order(self):
        """``(order, cell_ptr)`` of the (type, cell, time) order, built on first use (see :meth:`per_type_layout`)."""
        if self._per_type_order is None:
            n = self.n_cells
            vcell = self.typ * n + self.cell
            order = np.lexsort((self.t, vcell))
            counts = np.bincount(vcell, minlength=n * self.K)
            self._per_type_order = (order, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        return self._per_type_order

    def per_type_layout(self):
        """The streams for a diagonal ``theta`` (each type excites only itself), built on first use.

        Every (type ``k``, cell ``c``) pair becomes a cell of its own,
        ``k * n_cells + c``, whose neighbours are the same type's cells, so
        the kernel runs with one type and keeps 1 instead of ``K`` sums per
        ring: with ``K`` types an E-step costs ``1 / K`` of the general one.
        Returns ``(order, cell_ptr, typ, wt, streams, chunk_ptr, chunk_type)``
        where ``order[i]`` is the position in this (cell, time) order of the
        ``i``-th event of the per-type order; every chunk holds cells of one
        type (``chunk_type``).
        """
        if self._per_type is None:
            K, n = self.K, self.n_cells
            order, cell_ptr = self.per_type_order()
            counts = np.diff(cell_ptr)
            deg = np.diff(self.nb_ptr)
            nb_ptr = np.concatenate([[0], np.cumsum(np.tile(deg, K))]).astype(np.int64)
            nb_idx = (self.nb_idx[None, :] + n * np.arange(K)[:, None]).ravel().astype(np.int64)
            nb_ring = np.tile(self.nb_ring, K).astype(np.int64)
            t = np.ascontiguousarray(self.t[order])
            typ = np.zeros(order.size, dtype=np.int64)
            wt = np.ascontiguousarray(self.wt[order])
            streams = build_streams(t, typ, wt, cell_ptr, nb_ptr, nb_idx, nb_ring, 1)
            work = np.diff(streams[0]) + counts + 1
            cum = np.cumsum(work, dtype=np.float64)
            cuts = np.searchsorted(cum, cum[-1] * np.arange(1, _N_CHUNKS) / _N_CHUNKS, side="right")
            chunk_ptr = np.unique(np.concatenate([[0], cuts, n * np.arange(1, K + 1)])).astype(np.int64)
            chunk_type = chunk_ptr[:-1] // n
            self._per_type = (order, cell_ptr, typ, wt, streams, chunk_ptr, chunk_type)
        return self._per_type

    def __len__(self):
        return self.t.size

    def per_cell_type(self, values=None) -> np.ndarray:
        """Weighted sum of ``values`` (or weighted counts) per (cell, type): (n_cells, K)."""
        values = self.wt if values is None else values * self.wt
        out = np.bincount(self.cell_type, weights=values, minlength=self.n_cells * self.K)
        return out.reshape(self.n_cells, self.K).astype(np.float64)
