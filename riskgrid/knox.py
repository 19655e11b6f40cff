"""Knox test for near-repeat space-time clustering: :func:`knox_test` and :class:`KnoxResult`.

The Knox test counts pairs of events that are close in space *and* in time,
band by band, and compares the counts with a Monte Carlo null in which the
event times are permuted among fixed locations (Knox 1964; Johnson et al.
2007; Ratcliffe's Near Repeat Calculator; the NearRepeat R package of
Steenbeek). riskgrid finds the spatially close pairs once with a hash grid
and only re-bins their time gaps per permutation, so memory and time grow
with the number of close pairs, not with N².
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ._runtime import check_n_jobs, numba_threads
from .bands import DISTANCE_METRICS, check_band_edges, significance_stars
from .events import EventSet
from .kernels import knox as _k
from .kernels.spatial import build_hash_grid

__all__ = ["knox_test", "knox_arrays", "KnoxResult", "permutation_seeds", "band_labels", "WEIGHTED_TIE_RTOL"]

#: Weighted tables are float sums whose rounding depends on the order of the
#: pairs: a simulated weighted count at least the observed one minus this
#: fraction of the total pair weight ``sum_{i<j} w_i w_j`` counts as ">=" in the
#: p-value (permutation-invariant cells, e.g. a far row with one time band, are
#: then exact ties as in the unweighted test). Rounding error is about
#: ``n × 1e-16`` of that total.
WEIGHTED_TIE_RTOL = 1e-9

log = logging.getLogger(__name__)

def _fmt_num(v: float) -> str:
    return f"{v:g}" if v < 1e6 else f"{v:.6g}"


def band_labels(edges: np.ndarray, unit: str) -> list[str]:
    """Readable labels of bands ``[a, b)``: ``"100–200 m"``, ``"≥ 400 m"`` for an inf last edge."""
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        if np.isinf(b):
            out.append(f"≥ {_fmt_num(a)} {unit}")
        else:
            out.append(f"{_fmt_num(a)}–{_fmt_num(b)} {unit}")
    return out


def permutation_seeds(seed, n_permutations: int) -> tuple[np.ndarray, int]:
    """One uint32 seed per permutation, derived from ``seed`` with :class:`numpy.random.SeedSequence`.

    Returns ``(seeds, entropy)``; ``entropy`` reproduces the seeds when
    ``seed`` was ``None`` (fresh entropy). Permutation ``p`` is
    ``riskgrid.kernels.knox.permutation(seeds[p], n)``.
    """
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    elif seed is None or isinstance(seed, (int, np.integer)):
        if seed is not None and int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed}")
        ss = np.random.SeedSequence(None if seed is None else int(seed))
    else:
        raise TypeError(f"seed must be an int, None or numpy SeedSequence, got {type(seed).__name__}")
    seeds = ss.generate_state(max(int(n_permutations), 1), dtype=np.uint32)[: int(n_permutations)]
    return np.ascontiguousarray(seeds.astype(np.int64)), ss.entropy


# --------------------------------------------------------------------------- #
# result
# --------------------------------------------------------------------------- #
@dataclass(repr=False)
class KnoxResult:
    """Outcome of :func:`knox_test`.

    Attributes
    ----------
    observed : ndarray of int64 (float64 when ``weighted``), (n_space, n_time)
        Pairs of events (weighted: the sum of ``w_i w_j`` over them) with ``space_edges[s] <= distance < space_edges[s+1]``
        (metres) and ``time_edges[b] <= |Δt| < time_edges[b+1]`` (days).
    expected : ndarray of float64
        Mean of the permutation tables.
    ratio : ndarray of float64
        Knox ratio ``observed / expected`` (NaN where ``expected`` is 0).
    p_value : ndarray of float64
        ``(1 + #{simulated >= observed}) / (n_permutations + 1)`` per cell.
    simulated : ndarray of int64, (n_permutations, n_space, n_time)
        The permutation tables.
    space_edges, time_edges : ndarray of float64
        Band edges in metres and days.
    n_events, n_permutations : int
    seed : int
        Seed (or the fresh entropy drawn when ``seed=None``) that reproduces the permutations.
    metric : str
        ``"euclidean"`` or ``"manhattan"``.
    n_close_pairs : int
        Stored pairs within the largest finite space edge.
    elapsed_s : float
        Wall time of the test, seconds.
    weighted : bool
        Whether pairs were counted with the product of the events' weights.
    """

    observed: np.ndarray
    expected: np.ndarray
    ratio: np.ndarray
    p_value: np.ndarray
    simulated: np.ndarray
    space_edges: np.ndarray
    time_edges: np.ndarray
    n_events: int
    n_permutations: int
    seed: int
    metric: str = "euclidean"
    n_close_pairs: int = 0
    elapsed_s: float = 0.0
    weighted: bool = False

    @property
    def space_labels(self) -> list[str]:
        return band_labels(self.space_edges, "m")

    @property
    def time_labels(self) -> list[str]:
        return band_labels(self.time_edges, "days")

    @property
    def median_ratio(self) -> np.ndarray:
        """``observed / median(simulated)`` (NearRepeat's median-based ratio; NaN where the median is 0)."""
        med = np.median(self.simulated, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(med > 0, self.observed / np.where(med > 0, med, 1), np.nan)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (space band, time band) cell."""
        ns, nt = self.observed.shape
        s_idx, t_idx = np.meshgrid(np.arange(ns), np.arange(nt), indexing="ij")
        s_idx, t_idx = s_idx.ravel(), t_idx.ravel()
        return pd.DataFrame(
            {
                "space_band": np.asarray(self.space_labels, dtype=object)[s_idx],
                "time_band": np.asarray(self.time_labels, dtype=object)[t_idx],
                "space_from_m": self.space_edges[s_idx],
                "space_to_m": self.space_edges[s_idx + 1],
                "time_from_days": self.time_edges[t_idx],
                "time_to_days": self.time_edges[t_idx + 1],
                "observed": self.observed.ravel(),
                "expected": self.expected.ravel(),
                "ratio": self.ratio.ravel(),
                "p_value": self.p_value.ravel(),
                "significant_0.05": self.p_value.ravel() < 0.05,
            }
        )

    def to_xarray(self) -> xr.Dataset:
        """Dataset over ``(space_band, time_band)`` with edges as coordinates."""
        dims = ("space_band", "time_band")
        coords = {
            "space_band": self.space_labels,
            "time_band": self.time_labels,
            "space_from_m": ("space_band", self.space_edges[:-1]),
            "space_to_m": ("space_band", self.space_edges[1:]),
            "time_from_days": ("time_band", self.time_edges[:-1]),
            "time_to_days": ("time_band", self.time_edges[1:]),
        }
        ds = xr.Dataset(
            {
                "observed": (dims, self.observed, {"long_name": "observed pairs"}),
                "expected": (dims, self.expected, {"long_name": "mean pairs under time permutation"}),
                "ratio": (dims, self.ratio, {"long_name": "Knox ratio observed/expected"}),
                "p_value": (dims, self.p_value, {"long_name": "Monte Carlo p-value"}),
            },
            coords=coords,
            attrs={
                "test": "Knox space-time interaction (time permutation)",
                "n_events": int(self.n_events),
                "n_permutations": int(self.n_permutations),
                "seed": str(self.seed),
                "metric": self.metric,
                "weighted": int(self.weighted),
                "space_units": "metres",
                "time_units": "days",
            },
        )
        return ds

    def table(self) -> pd.DataFrame:
        """Near Repeat Calculator style table: ratios with significance marks (rows space, columns time)."""
        cells = [
            [
                ("  n/a" if not np.isfinite(r) else f"{r:5.2f}") + significance_stars(p).ljust(3)
                for r, p in zip(rrow, prow)
            ]
            for rrow, prow in zip(self.ratio, self.p_value)
        ]
        return pd.DataFrame(cells, index=pd.Index(self.space_labels, name="distance"), columns=self.time_labels)

    def __repr__(self) -> str:
        head = (
            f"KnoxResult: {self.n_events:,} events, {self.n_permutations} permutations, "
            f"{self.metric} distance, seed {self.seed}"
            + (", pairs weighted by w_i·w_j" if self.weighted else "")
        )
        body = self.table().to_string()
        foot = "Knox ratio observed/expected; * p ≤ 0.05, ** p ≤ 0.01, *** p ≤ 0.001 (Monte Carlo, one-sided)"
        return f"{head}\n{body}\n{foot}"


# --------------------------------------------------------------------------- #
# the test
# --------------------------------------------------------------------------- #
def _close_pairs(x, y, se, n_fin, keep_below, manhattan):
    """Hash grid + two-pass CSR of close pairs in cell-sorted order."""
    radius = float(se[n_fin])
    n = x.size
    order, cell_start, x0, y0, h, nx, ny = build_hash_grid(x, y, radius, max(4 * n, 4096))
    xs = np.ascontiguousarray(x[order])
    ys = np.ascontiguousarray(y[order])
    cell_of = np.repeat(np.arange(nx * ny, dtype=np.int64), np.diff(cell_start))
    if radius > 0 and n > 1:
        counts = _k.count_close_pairs(xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan)
    else:
        counts = np.zeros(n, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    n_pairs = int(indptr[-1])
    nbr = np.empty(n_pairs, dtype=np.int32)
    sband = np.empty(n_pairs, dtype=np.uint8)
    if n_pairs:
        _k.fill_close_pairs(xs, ys, cell_of, cell_start, nx, ny, se, n_fin, radius, keep_below, manhattan, indptr, nbr, sband)
    return order, indptr, nbr, sband


def knox_test(
    events: EventSet,
    space_bands: Sequence[float],
    time_bands: Sequence[float],
    n_permutations: int = 999,
    seed: int | None = None,
    metric: str = "euclidean",
    n_jobs: int | None = None,
    progress: bool = False,
    weights: bool = False,
) -> KnoxResult:
    """Knox test of space-time interaction with a Monte Carlo permutation null.

    A pair of events falls in cell ``(s, b)`` when
    ``space_bands[s] <= distance < space_bands[s+1]`` (metres, on the
    events' local azimuthal equidistant projection) and
    ``time_bands[b] <= |Δt| < time_bands[b+1]`` (days). Bands are
    left-closed, right-open as in the NearRepeat R package; ``np.inf`` may
    close the last band; pairs outside every band are not counted. Use a
    first space band ``[0, 1)`` for "same location".

    The null distribution permutes the event times among the fixed
    locations; ``p = (1 + #{simulated >= observed}) / (n_permutations + 1)``.

    Parameters
    ----------
    events : EventSet
        Events to test (use ``events.select("BURGLARY")`` for one category).
        Their weights are used only with ``weights=True``.
    space_bands : sequence of float
        At least two strictly increasing, non-negative edges in **metres**;
        only the last may be ``np.inf``.
    time_bands : sequence of float
        Same rules, in **days**.
    n_permutations : int
        Monte Carlo permutations (>= 1; 999 is customary).
    seed : int, optional
        Seed of the permutations. Permutation ``p`` uses its own seed
        derived from ``seed`` (:func:`permutation_seeds`), so the result is
        identical for any number of threads. With ``None`` fresh entropy is
        drawn and stored in :attr:`KnoxResult.seed`.
    metric : {"euclidean", "manhattan"}
        Distance on the projected plane (Manhattan approximates street distance).
    n_jobs : int, optional
        Numba threads for this call (``-1``: all); restored afterwards.
    progress : bool
        Show a tqdm progress bar over the permutations (stderr).
    weights : bool
        Count each pair ``(i, j)`` as ``w_i · w_j`` with ``w = events.weight``
        (e.g. victims per record) instead of 1. The permutations shuffle the
        times as in the unweighted test; the weights stay with their events
        (locations). Tables are then float64; with every weight 1 they equal
        the unweighted tables exactly.

    Returns
    -------
    KnoxResult

    Notes
    -----
    Cost: the spatially close pairs (closer than the largest finite space
    edge) are found once with a uniform hash grid and stored in CSR form at
    **5 bytes per close pair** (int32 partner + uint8 space band) plus
    8 bytes per event (plus 16 bytes per event of scratch per thread);
    each permutation re-bins only their time gaps (O(close pairs)). When the last space edge is ``inf`` the far row is the
    number of all pairs in each time band (permutation-invariant, counted in
    O(N log N) from the sorted times) minus the close pairs of that time band.

    References
    ----------
    Knox, E. G. (1964). The detection of space-time interactions. *Applied
    Statistics* 13(1), 25-30. Johnson, S. D. et al. (2007). Space-time
    patterns of risk: a cross national assessment of residential burglary
    victimization. *J. Quant. Criminol.* 23, 201-219. Steenbeek, W.,
    NearRepeat R package (github.com/wsteenbeek/NearRepeat).

    Examples
    --------
    >>> import numpy as np, riskgrid as rg
    >>> ev = rg.EventSet.from_frame(rg.simulate(n_days=60, seed=1), category="category")
    >>> res = rg.knox_test(ev, [0, 100, 200, np.inf], [0, 7, 14, np.inf], n_permutations=99, seed=0)
    >>> res.observed.shape
    (3, 3)
    """
    if not isinstance(events, EventSet):
        raise TypeError(f"events must be an EventSet, got {type(events).__name__}")
    if not isinstance(weights, (bool, np.bool_)):
        raise TypeError(f"weights must be True or False (the EventSet's weights are used), got {type(weights).__name__}")
    x, y = events.xy()
    return knox_arrays(
        x, y, events.t, space_bands, time_bands, n_permutations=n_permutations, seed=seed,
        metric=metric, n_jobs=n_jobs, progress=progress, weights=events.weight if weights else None,
    )


def knox_arrays(
    x_m: np.ndarray,
    y_m: np.ndarray,
    t_days: np.ndarray,
    space_bands: Sequence[float],
    time_bands: Sequence[float],
    n_permutations: int = 999,
    seed: int | None = None,
    metric: str = "euclidean",
    n_jobs: int | None = None,
    progress: bool = False,
    weights: np.ndarray | None = None,
) -> KnoxResult:
    """:func:`knox_test` on plain arrays: planar coordinates in **metres** and times in **days**.

    Same parameters and result as :func:`knox_test` (which calls this with
    ``events.xy()`` and ``events.t``); permutation ``p`` gives event ``i``
    the time ``t_days[permutation(seeds[p], n)[i]]`` (see :func:`permutation_seeds`).
    ``weights`` (one finite, non-negative value per event, or ``None``)
    counts pair ``(i, j)`` as ``weights[i] * weights[j]`` (p-values with the
    tie tolerance :data:`WEIGHTED_TIE_RTOL`); the weighted
    tables bin every close pair directly and compute the far row (``inf``
    last space edge) per permutation from prefix sums of the weights in time
    order (O(n) per time edge).
    """
    t_start = time.perf_counter()
    x = np.ascontiguousarray(x_m, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y_m, dtype=np.float64).ravel()
    t = np.ascontiguousarray(t_days, dtype=np.float64).ravel()
    if not (x.size == y.size == t.size):
        raise ValueError(f"x_m, y_m and t_days must have the same length, got {x.size}, {y.size}, {t.size}")
    for name, arr in (("x_m", x), ("y_m", y), ("t_days", t)):
        if not np.isfinite(arr).all():
            bad = np.flatnonzero(~np.isfinite(arr))
            raise ValueError(f"{name} has {bad.size} non-finite values (first at positions {bad[:5].tolist()})")
    w = None
    if weights is not None:
        w = np.ascontiguousarray(weights, dtype=np.float64).ravel()
        if w.size != t.size:
            raise ValueError(f"weights must have one value per event ({t.size}), got {w.size}")
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise ValueError(f"weights must be finite and >= 0; {bad.size} are not (first at positions {bad[:5].tolist()})")
    se = check_band_edges(space_bands, "space_bands", "metres")
    te = check_band_edges(time_bands, "time_bands", "days")
    if metric not in DISTANCE_METRICS:
        raise ValueError(f"metric must be one of {DISTANCE_METRICS}, got {metric!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    n_permutations = int(n_permutations)
    space_inf = bool(np.isinf(se[-1]))
    n_space = se.size - 1
    n_fin = n_space - 1 if space_inf else n_space
    if n_fin > 254:
        raise ValueError(f"at most 254 finite space bands are supported, got {n_fin}")
    n = int(t.size)
    if n < 2:
        raise ValueError(f"the Knox test needs at least 2 events, got {n}")
    seeds, entropy = permutation_seeds(seed, n_permutations)
    threads = numba_threads(check_n_jobs(n_jobs))

    manhattan = metric == "manhattan"

    with threads:
        order, indptr, nbr, sband = _close_pairs(x, y, se, n_fin, space_inf, manhattan)
        n_pairs = int(nbr.size)
        log.debug("knox: %d events, %d close pairs (%.1f MB)", n, n_pairs, n_pairs * _k.BYTES_PER_PAIR / 1e6)
        n_rows = n_fin + 1  # + row of pairs closer than the first edge (kept only when space_inf)
        if w is not None:
            observed, simulated = _weighted_tables(
                t, w, order, indptr, nbr, sband, te, seeds, n_rows, n_fin, space_inf, progress
            )
            # rounding differs between tables summed in different orders: a simulated
            # count within WEIGHTED_TIE_RTOL of the largest possible count is a tie
            total = 0.5 * (float(w.sum()) ** 2 - float(np.dot(w, w)))
            return _result(observed, simulated, se, te, n, n_permutations, seed, entropy, metric, n_pairs, t_start, True,
                           tie_tol=WEIGHTED_TIE_RTOL * total)
        # With an inf last time edge the kernels bin only the finite edges
        # (the fast path that rejects |gap| >= largest finite edge); the last
        # band is then each space row's pair count (permutation-invariant)
        # minus the binned ones. A leading [0, te[0]) band catches gaps below
        # the first edge so that the subtraction stays exact.
        time_inf = bool(np.isinf(te[-1]))
        te_k = te[:-1] if time_inf else te
        lead = 0
        if time_inf and te_k[0] > 0:
            te_k = np.concatenate([[0.0], te_k])
            lead = 1
        te_k = np.ascontiguousarray(te_k)
        n_kbands = te_k.size - 1
        obs_k = np.zeros((n_rows, n_kbands), dtype=np.int64)
        sim_k = np.zeros((n_permutations, n_rows, n_kbands), dtype=np.int64)
        if n_kbands > 0 and n_pairs > 0:
            gbuf, sbuf = _k.row_buffers(indptr)
            _k.pair_time_table(np.ascontiguousarray(t[order]), indptr, nbr, sband, te_k, obs_k, gbuf, sbuf)
        batch = n_permutations if not progress else max(1, math.ceil(n_permutations / 50))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_permutations, desc="Knox permutations", unit="perm")
        try:
            for lo in range(0, n_permutations, batch):
                hi = min(lo + batch, n_permutations)
                if n_kbands > 0 and n_pairs > 0:
                    _k.knox_permutation_tables(t, order, indptr, nbr, sband, te_k, seeds[lo:hi], sim_k[lo:hi])
                if bar is not None:
                    bar.update(hi - lo)
        finally:
            if bar is not None:
                bar.close()
        if time_inf:
            row_total = np.bincount(sband, minlength=n_rows).astype(np.int64)
            obs_rows = np.concatenate([obs_k[:, lead:], (row_total - obs_k.sum(axis=1))[:, None]], axis=1)
            sim_rows = np.concatenate(
                [sim_k[:, :, lead:], (row_total[None, :] - sim_k.sum(axis=2))[:, :, None]], axis=2
            )
        else:
            obs_rows, sim_rows = obs_k, sim_k
        if space_inf:
            all_pairs = _k.pairs_per_time_band(np.sort(t), te)

    observed = obs_rows[:n_fin]
    simulated = sim_rows[:, :n_fin]
    if space_inf:
        far_obs = all_pairs - obs_rows.sum(axis=0)
        far_sim = all_pairs[None, :] - sim_rows.sum(axis=1)
        observed = np.concatenate([observed, far_obs[None, :]], axis=0)
        simulated = np.concatenate([simulated, far_sim[:, None, :]], axis=1)
    return _result(observed, simulated, se, te, n, n_permutations, seed, entropy, metric, n_pairs, t_start, False)


def _result(observed, simulated, se, te, n, n_permutations, seed, entropy, metric, n_pairs, t_start, weighted,
            tie_tol=0.0):
    """Expected, ratio and p-values of the observed and simulated tables, as a :class:`KnoxResult`.

    ``simulated >= observed - tie_tol`` counts toward the p-value (``tie_tol`` 0 for integer tables).
    """
    observed = np.ascontiguousarray(observed)
    simulated = np.ascontiguousarray(simulated)
    expected = simulated.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / np.where(expected > 0, expected, 1.0), np.nan)
    p_value = (1.0 + (simulated >= observed[None] - tie_tol).sum(axis=0)) / (n_permutations + 1.0)
    return KnoxResult(
        observed=observed,
        expected=expected,
        ratio=ratio,
        p_value=p_value,
        simulated=simulated,
        space_edges=se,
        time_edges=te,
        n_events=n,
        n_permutations=n_permutations,
        seed=int(entropy) if seed is None or isinstance(seed, (int, np.integer)) else entropy,
        metric=metric,
        n_close_pairs=n_pairs,
        elapsed_s=time.perf_counter() - t_start,
        weighted=weighted,
    )


def _weighted_tables(t, w, order, indptr, nbr, sband, te, seeds, n_rows, n_fin, space_inf, progress):
    """Observed and simulated weighted tables ``(n_space, n_time)`` and ``(n_perm, n_space, n_time)``."""
    n = t.size
    n_perm = seeds.size
    nt = te.size - 1
    obs_rows = np.zeros((n_rows, nt), dtype=np.float64)
    _k.weighted_pair_time_table(np.ascontiguousarray(t[order]), np.ascontiguousarray(w[order]), indptr, nbr, sband,
                                te, obs_rows)
    sim_rows = np.zeros((n_perm, n_rows, nt), dtype=np.float64)
    if space_inf:
        by_time = np.argsort(t, kind="stable")
        rank_of = np.empty(n, dtype=np.int64)
        rank_of[by_time] = np.arange(n)
        hi = _k.time_rank_bounds(np.ascontiguousarray(t[by_time]), te)
        all_obs = np.zeros(nt, dtype=np.float64)
        _k.weighted_pairs_per_time_band(np.ascontiguousarray(w[by_time]), hi, all_obs)
        far_sim = np.zeros((n_perm, nt), dtype=np.float64)
    else:
        rank_of = np.zeros(0, dtype=np.int64)
        hi = np.zeros((0, 0), dtype=np.int64)
        far_sim = np.zeros((0, nt), dtype=np.float64)
    batch = n_perm if not progress else max(1, math.ceil(n_perm / 50))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_perm, desc="Knox permutations (weighted)", unit="perm")
    try:
        for lo in range(0, n_perm, batch):
            hi_p = min(lo + batch, n_perm)
            _k.weighted_knox_permutation_tables(
                t, w, order, indptr, nbr, sband, te, seeds[lo:hi_p], rank_of, hi, sim_rows[lo:hi_p],
                far_sim[lo:hi_p] if space_inf else far_sim,
            )
            if bar is not None:
                bar.update(hi_p - lo)
    finally:
        if bar is not None:
            bar.close()
    observed = obs_rows[:n_fin]
    simulated = sim_rows[:, :n_fin]
    if space_inf:
        # every pair of events minus the close ones (all rows, the one below the first edge included)
        observed = np.concatenate([observed, (all_obs - obs_rows.sum(axis=0))[None, :]], axis=0)
        simulated = np.concatenate([simulated, (far_sim - sim_rows.sum(axis=1))[:, None, :]], axis=1)
    return observed, simulated
