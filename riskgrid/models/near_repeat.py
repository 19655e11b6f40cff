"""NearRepeat: the empirical Knox near-repeat profile turned into a risk surface."""

from __future__ import annotations

import numpy as np

from ..kernels import knox as _k
from ..kernels.spatial import build_hash_grid
from .._runtime import check_n_jobs, numba_threads
from ..bands import DISTANCE_METRICS as _METRICS
from ..knox import KnoxResult, knox_test
from ._base import RiskModel

__all__ = ["NearRepeat"]


class NearRepeat(RiskModel):
    """Near-repeat risk: recent events raise the risk of nearby cells by their Knox excess.

    The score of cell ``c`` for a forecast starting at ``start`` is

    ``risk[c] = sum_i excess[s(d(c, i)), b(start - t_i)]``

    over the training events ``i``, where ``d`` is the distance (metres)
    from the cell centre to the event, ``s`` its space band, ``b`` the time
    band of the elapsed time (days), and ``excess = ratio - 1`` of the Knox
    test where ``p_value < alpha`` (0 elsewhere, and where the ratio is
    undefined). Pairs outside every band add nothing. With an ``inf`` last
    space edge the far band's excess is added to every cell. The score is a
    relative near-repeat risk ("expected extra events per triggering event"
    in Knox-ratio units), not a calibrated count; it does not depend on the
    horizon. This is the prospective-hotspotting idea of Bowers, Johnson &
    Pease (2004) with the weights read off the data's own Knox table
    (Johnson et al. 2007; Ratcliffe's Near Repeat Calculator).

    Parameters
    ----------
    space_bands : sequence of float
        Space band edges, **metres** (see :func:`riskgrid.knox_test`).
    time_bands : sequence of float
        Time band edges, **days**.
    alpha : float
        Significance level: cells with ``p_value >= alpha`` get no excess.
    n_permutations : int
        Permutations of the Knox test run by :meth:`fit`.
    metric : {"euclidean", "manhattan"}
        Distance on the grid's local projection.
    seed : int, optional
        Seed of the Knox permutations.
    n_jobs : int, optional
        Numba threads (``-1``: all).
    knox_result : KnoxResult, optional
        Use this Knox table instead of running the test in :meth:`fit`
        (set by :meth:`from_knox`).

    Attributes
    ----------
    knox_ : KnoxResult
        The Knox test used.
    excess_ : ndarray (n_space, n_time)
        ``ratio - 1`` where significant, else 0.
    space_edges_, time_edges_ : ndarray
        Band edges (metres, days).

    References
    ----------
    Bowers, K. J., Johnson, S. D. & Pease, K. (2004). Prospective
    hot-spotting: the future of crime mapping? *Brit. J. Criminol.* 44(5).
    Johnson, S. D. et al. (2007). Space-time patterns of risk. *J. Quant.
    Criminol.* 23, 201-219.

    Examples
    --------
    >>> import numpy as np, riskgrid as rg
    >>> ev = rg.EventSet.from_frame(rg.simulate(n_days=120, theta=0.5, seed=1), category="category")
    >>> grid = rg.HexGrid.from_events(ev, resolution=9)
    >>> m = rg.models.NearRepeat([0, 100, 200, 400], [0, 7, 14, 28], n_permutations=99, seed=0).fit(ev, grid)
    >>> risk = m.predict(horizon_days=7)
    """

    model_name = "NearRepeat"

    def __init__(
        self,
        space_bands=(0, 100, 200, 300, 400),
        time_bands=(0, 7, 14, 21, 28),
        alpha: float = 0.05,
        n_permutations: int = 99,
        metric: str = "euclidean",
        seed: int | None = 0,
        n_jobs: int | None = None,
        knox_result: KnoxResult | None = None,
    ):
        self.space_bands = space_bands
        self.time_bands = time_bands
        self.alpha = alpha
        self.n_permutations = n_permutations
        self.metric = metric
        self.seed = seed
        self.n_jobs = n_jobs
        self.knox_result = knox_result

    @classmethod
    def from_knox(cls, result: KnoxResult, alpha: float = 0.05, n_jobs: int | None = None) -> "NearRepeat":
        """Model whose excess profile comes from an existing :class:`~riskgrid.KnoxResult`.

        :meth:`fit` then only stores the events; it does not re-run the test.
        """
        if not isinstance(result, KnoxResult):
            raise TypeError(f"result must be a KnoxResult, got {type(result).__name__}")
        return cls(
            space_bands=tuple(float(v) for v in result.space_edges),
            time_bands=tuple(float(v) for v in result.time_edges),
            alpha=alpha,
            n_permutations=int(result.n_permutations),
            metric=result.metric,
            seed=result.seed,
            n_jobs=n_jobs,
            knox_result=result,
        )

    # ------------------------------------------------------------------ fit
    def _fit(self, events, grid, cell, end_days):
        if not (isinstance(self.alpha, (int, float)) and 0 < float(self.alpha) <= 1):
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha!r}")
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {self.metric!r}")
        check_n_jobs(self.n_jobs)
        if self.knox_result is not None:
            res = self.knox_result
            if not isinstance(res, KnoxResult):
                raise TypeError(f"knox_result must be a KnoxResult, got {type(res).__name__}")
            se, te = res.space_edges, res.time_edges
            if res.metric != self.metric:
                raise ValueError(f"metric {self.metric!r} differs from the Knox result's {res.metric!r}")
        else:  # knox_test validates the bands
            res = knox_test(
                events, self.space_bands, self.time_bands, n_permutations=self.n_permutations, seed=self.seed,
                metric=self.metric, n_jobs=self.n_jobs,
            )
            se, te = res.space_edges, res.time_edges
        sig = (res.p_value < float(self.alpha)) & np.isfinite(res.ratio)
        self.knox_ = res
        self.alpha_ = float(self.alpha)
        self.space_edges_ = np.asarray(se, dtype=np.float64)
        self.time_edges_ = np.asarray(te, dtype=np.float64)
        self.excess_ = np.where(sig, np.nan_to_num(res.ratio, nan=1.0) - 1.0, 0.0)
        self.metric_ = self.metric
        x, y = events.xy(grid.projection)
        self._ex = np.ascontiguousarray(x, dtype=np.float64)
        self._ey = np.ascontiguousarray(y, dtype=np.float64)
        self._et = np.ascontiguousarray(events.t, dtype=np.float64)

    # -------------------------------------------------------------- predict
    def _predict(self, start_days, horizon_days):
        se, te = self.space_edges_, self.time_edges_
        n_cells = len(self.grid_)
        elapsed = start_days - self._et
        b = np.searchsorted(te, elapsed, side="right") - 1
        use = (b >= 0) & (b < te.size - 1)
        if not use.any():
            return np.zeros(n_cells)
        eb = np.ascontiguousarray(b[use], dtype=np.int64)
        ex, ey = self._ex[use], self._ey[use]
        space_inf = bool(np.isinf(se[-1]))
        n_fin = se.size - 2 if space_inf else se.size - 1
        ex_far = self.excess_[-1] if space_inf else np.zeros(te.size - 1)
        ex_near = np.zeros((n_fin + 1, te.size - 1))
        ex_near[:n_fin] = self.excess_[:n_fin]  # row n_fin: closer than the first edge, no excess
        base = float(ex_far[eb].sum())
        radius = float(se[n_fin])
        cx, cy = self.grid_.centroids_xy
        cx = np.ascontiguousarray(cx, dtype=np.float64)
        cy = np.ascontiguousarray(cy, dtype=np.float64)
        if radius <= 0:
            return np.full(n_cells, base)
        with numba_threads(check_n_jobs(self.n_jobs)):
            order, cell_start, x0, y0, h, nx, ny = build_hash_grid(ex, ey, radius, max(4 * ex.size, 4096))
            near = _k.near_repeat_risk(
                cx, cy, ex, ey, eb, order, cell_start, x0, y0, h, nx, ny, se, n_fin,
                self.metric_ == "manhattan", ex_near, np.ascontiguousarray(ex_far, dtype=np.float64),
            )
        return base + near

    def _output_attrs(self) -> dict:
        return {
            "units": "near-repeat score: sum of significant Knox excess ratios (ratio - 1) over recent events",
            "knox_n_events": int(self.knox_.n_events),
            "knox_n_permutations": int(self.knox_.n_permutations),
            "alpha": self.alpha_,
        }

    # ------------------------------------------------------------ explanation
    def _explain_parts(self, s, H, cells):
        """Background: the far-band excess of every recent event (the same for every cell); triggered: each
        event's near-band excess at the cell centre (minus its far-band excess, as predict counts it)."""
        from .explain import concat_parts

        se, te = self.space_edges_, self.time_edges_
        b = np.searchsorted(te, s - self._et, side="right") - 1
        use = np.flatnonzero((b >= 0) & (b < te.size - 1))
        space_inf = bool(np.isinf(se[-1]))
        n_fin = se.size - 2 if space_inf else se.size - 1
        ex_far = self.excess_[-1] if space_inf else np.zeros(te.size - 1)
        ex_near = np.zeros((n_fin + 1, te.size - 1))
        ex_near[:n_fin] = self.excess_[:n_fin]
        eb = b[use]
        base = float(ex_far[eb].sum())
        radius = float(se[n_fin])
        cx, cy = self.grid_.centroids_xy
        trig, rows = np.zeros(cells.size), []
        for j, c in enumerate(cells):
            dx, dy = self._ex[use] - cx[c], self._ey[use] - cy[c]
            d = np.abs(dx) + np.abs(dy) if self.metric_ == "manhattan" else np.sqrt(dx * dx + dy * dy)
            near = np.flatnonzero(d < radius)
            band = np.searchsorted(se[: n_fin + 1], d[near], side="right") - 1
            band = np.where(band < 0, n_fin, band)  # closer than the first edge: no excess
            val = ex_near[band, eb[near]] - ex_far[eb[near]]
            trig[j] = float(val.sum())
            rows.append((j, use[near], val, "triggered"))
        return concat_parts(np.full(cells.size, base), trig, rows)
