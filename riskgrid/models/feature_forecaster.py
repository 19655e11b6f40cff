"""A learned forecaster: Poisson regression of future cell counts on multi-scale features.

After Flaxman, Chirico, Pereira & Loeffler (2019): the count of target events
in each cell over the next ``horizon_days`` is regressed (Poisson likelihood)
on autoregressive features of the past - counts over several windows and H3
rings, exponentially decayed counts, kernel-smoothed counts at several
bandwidths, indicator-category counts, calendar terms (see
:mod:`riskgrid.models._panel`). The training panel has one row per (cell,
origin) for origins inside the training window only; the estimator (a
Poisson GLM, gradient-boosted trees with a Poisson loss, or their blend) is
chosen by time-blocked validation on the latest training origins, never by
looking past the end of the fit.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..metrics import hit_rate, n_flagged, poisson_loglik
from ._base import RiskModel, check_int, check_number
from ._panel import FeatureSpec, build_features, panel_labels

__all__ = ["FeatureForecaster", "ESTIMATORS"]

#: estimator choices; ``"auto"`` picks one of the others by validation inside the training window
ESTIMATORS = ("auto", "glm", "gbm", "blend")
#: ``"auto"``'s candidates from the least to the most flexible (its one-standard-error rule takes the first
#: within one standard error of the best)
_SIMPLEST_FIRST = ("glm", "blend", "gbm")
_SELECTION = ("loglik", "pai")


def _check_spec(spec: FeatureSpec) -> None:
    """Clear errors for feature settings the kernels would turn into silently empty or wrong features.

    Window lengths (``*windows_days``) are positive days, ``inf`` meaning all
    history; decay half-lives and bandwidths are positive and finite; ``rings``
    is a whole number >= 0 and ``calendar`` a bool.
    """
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        where = f"features.{f.name}"
        if f.name == "rings":
            check_int(where, value, 0)
        elif f.name == "calendar":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{where} must be True or False, got {value!r}")
        else:
            if not isinstance(value, tuple):
                raise ValueError(f"{where} must be a list of numbers, got {value!r}")
            windows = f.name.endswith("windows_days")
            unit = "days" if f.name.endswith("_days") else "metres"
            for i, v in enumerate(value):
                ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                if not ok or not (v > 0) or (not windows and not np.isfinite(v)):
                    what = "positive numbers (inf = all history)" if windows else "positive finite numbers"
                    raise ValueError(f"{where}[{i}] = {v!r}: every entry must be one of {what}, in {unit}")


class FeatureForecaster(RiskModel):
    """Expected target events per cell from a Poisson regression on past-event features.

    Parameters
    ----------
    horizon_days : float or None
        Length (days) of the forecast window the estimator learns: panel
        labels are target counts in ``[origin, origin + horizon_days)``. A
        prediction for another horizon is rescaled linearly (events per day
        times its length). ``None``: the horizon of the job or backtest that
        runs the model (7 days when fitted directly).
    panel_days : float
        Training-panel origins span the last ``panel_days`` days before the end
        of the fit (features of each origin use every earlier event passed to
        ``fit``).
    origin_spacing_days : float or None
        Days between panel origins (default: ``horizon_days``, so labels do not
        overlap).
    min_history_days : float or None
        Days of observed history (since the first event passed to ``fit``) a
        panel origin needs. Look-back windows reaching before the data's start
        are divided by their observed length, so their rates are noisier than
        at later origins, and a learner trained on such rows gives long
        windows too little weight (regression dilution). ``None`` (default):
        half the longest finite look-back window of ``features`` (182.5 days
        by default), but at most half the history before the last panel
        origin, so a short fit window keeps its later half. Never less than
        ``min(28, horizon_days)``. Measured against the old minimum of
        ``min(28, horizon_days)`` on Chicago 2017 (data from 2016; paired
        bootstrap 95 %): burglary held-out log-likelihood +0.69 [+0.40, +1.00]
        nats per weekly origin and +0.38 [+0.23, +0.54] per 3.5-day origin,
        violent crime +1.06 [-0.16, +2.43] and +0.91 [+0.25, +1.59]; PAI@1 %
        within noise (-0.05, +0.03, +0.02, -0.00). A fit with years of
        history before its panel (NYC shootings) is unchanged, bit for bit.
    estimator : {"glm", "auto", "gbm", "blend"}
        ``"glm"`` (default): :class:`sklearn.linear_model.PoissonRegressor` on
        log-transformed, standardised features (the forecast decomposes into
        per-feature factors, :meth:`feature_contributions`, which is what a
        zone's explanation needs); ``"gbm"``:
        :class:`sklearn.ensemble.HistGradientBoostingRegressor` with the
        Poisson loss; ``"blend"``: the mean of both forecasts; ``"auto"``:
        the three are fitted on the earlier training origins and scored on
        the latest ``validation_days`` of them, and the simplest (glm, then
        blend, then gbm) whose score is within one standard error of the best
        is refitted on every origin (the one-standard-error rule: the
        standard error of the paired per-origin difference from the best; a
        more flexible learner must beat the GLM by more than the noise of the
        validation weeks).
    selection_metric : {"loglik", "pai"}
        What ``"auto"`` maximises on the validation origins: the held-out
        Poisson log-likelihood, or the mean hit rate of the top
        ``selection_coverage`` of cells (equivalently PAI at that coverage).
    selection_coverage : float
        Coverage (fraction of cells) of the ``"pai"`` selection metric.
    validation_days : float
        Length of the validation block of ``"auto"`` (days of origins).
    alpha : float
        L2 penalty of the GLM (scikit-learn's ``alpha``, on standardised features).
    top_weight : float or None
        Optional re-weighting towards the top of the ranking: panel rows of the
        cells in the top ``selection_coverage`` of last year's count at that
        origin get this weight (others 1). ``None``: plain likelihood.
    max_rows : int
        Panel rows kept at most: zero-count rows are subsampled (seeded) and
        re-weighted by the inverse sampling rate, which keeps the Poisson fit
        unbiased.
    features : dict or None
        Overrides of :class:`~riskgrid.models._panel.FeatureSpec` fields
        (e.g. ``{"rings": 1, "kde_bandwidths_m": [250, 500]}``).
    covariates : pandas.DataFrame or None
        Static per-cell covariates indexed by H3 id (string or integer), one
        numeric column each; cells missing from the table get 0.
    random_state : int
        Seed of the zero-row subsample and of the boosted trees.
    refit_every_days : float or None
        Amortised learning: the estimator is learned on a panel that ends at
        the latest point of a fixed schedule ``k * refit_every_days`` days
        since 1970-01-01 00:00 that is not after the end of the fit; events
        from there to the end still enter the features of the forecast. The
        schedule is fixed, so a fit depends only on its data and end, never
        on earlier fits. ``None``: learn at every fit (panel ends at the end).
        Default 28 days (features stay current at every fit; only the
        coefficients/trees are up to four weeks old).
    warm_start : bool
        Reuse the estimator of the previous ``fit`` of this instance when it
        was learned at the same schedule point on the same events (results
        identical to a cold fit, so it is on by default; walk-forward
        backtests keep one instance per model across origins for this).

    Attributes
    ----------
    feature_names_ : list of str
    feature_families_ : list of str
        Each feature's family, in the order of ``feature_names_`` (the target
        events by time scale, each indicator category, calendar, cell area,
        covariates): what :meth:`feature_group_effects` changes together.
    estimator_ : str
        The estimator used (``"auto"`` resolved).
    validation_scores_ : dict
        ``{estimator: score}`` on the validation origins (``"auto"`` only):
        the total Poisson log-likelihood (nats) or the mean hit rate.
    validation_standard_errors_ : dict
        ``{estimator: standard error}`` of its score's difference from the
        best score (paired over validation origins, same units; ``"auto"``
        only).
    panel_origins_ : ndarray
        Training origins (days).
    n_panel_rows_ : int
        Rows the estimator was fitted on (after subsampling).
    feature_importances_ : pandas.Series
        Permutation importance (drop in Poisson log-likelihood per row, nats)
        on the last training origins; computed on first access.

    References
    ----------
    Flaxman, S., Chirico, M., Pereira, P. & Loeffler, C. (2019). Scalable
    high-resolution forecasting of sparse spatiotemporal events with kernel
    methods: a winning solution to the NIJ "Real-Time Crime Forecasting
    Challenge". *Annals of Applied Statistics* 13(4).

    Examples
    --------
    >>> m = FeatureForecaster(horizon_days=7).fit(events, grid, end="2017-06-01", target="BURGLARY")  # doctest: +SKIP
    >>> m.predict("2017-06-01", 7)  # doctest: +SKIP
    """

    model_name = "FeatureForecaster"
    uses_indicators = True

    def __init__(
        self,
        horizon_days: float | None = None,
        panel_days: float = 365.0,
        origin_spacing_days: float | None = None,
        min_history_days: float | None = None,
        estimator: str = "glm",
        selection_metric: str = "loglik",
        selection_coverage: float = 0.01,
        validation_days: float = 91.0,
        alpha: float = 1e-3,
        top_weight: float | None = None,
        max_rows: int = 150_000,
        features: dict | None = None,
        covariates=None,
        random_state: int = 0,
        refit_every_days: float | None = 28.0,
        warm_start: bool = True,
    ):
        self.horizon_days = horizon_days
        self.panel_days = panel_days
        self.origin_spacing_days = origin_spacing_days
        self.min_history_days = min_history_days
        self.estimator = estimator
        self.selection_metric = selection_metric
        self.selection_coverage = selection_coverage
        self.validation_days = validation_days
        self.alpha = alpha
        self.top_weight = top_weight
        self.max_rows = max_rows
        self.features = features
        self.covariates = covariates
        self.random_state = random_state
        self.refit_every_days = refit_every_days
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit
    def _check_params(self):
        h = 7.0 if self.horizon_days is None else check_number("horizon_days", self.horizon_days, unit="days")
        check_number("panel_days", self.panel_days, unit="days")
        check_number("min_history_days", self.min_history_days, allow_none=True, inclusive=True, unit="days")
        spacing = check_number("origin_spacing_days", self.origin_spacing_days, allow_none=True, unit="days")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.selection_metric not in _SELECTION:
            raise ValueError(f"selection_metric must be one of {_SELECTION}, got {self.selection_metric!r}")
        cov = check_number("selection_coverage", self.selection_coverage)
        if cov >= 1:
            raise ValueError(f"selection_coverage must be in (0, 1), got {cov}")
        check_number("validation_days", self.validation_days, unit="days")
        check_number("alpha", self.alpha, inclusive=True)
        check_number("top_weight", self.top_weight, allow_none=True)
        check_int("max_rows", self.max_rows, 1000)
        check_int("random_state", self.random_state, 0)
        check_number("refit_every_days", self.refit_every_days, allow_none=True, unit="days")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}")
        try:
            spec = dataclasses.replace(FeatureSpec(), **{k: (tuple(v) if isinstance(v, list) else v)
                                                         for k, v in (self.features or {}).items()})
        except TypeError as exc:
            names = [f.name for f in dataclasses.fields(FeatureSpec)]
            raise ValueError(f"features: {exc}; the feature settings are {names}") from None
        _check_spec(spec)
        return h, (h if spacing is None else spacing), spec

    def _covariate_matrix(self, grid):
        if self.covariates is None:
            return None, ()
        import pandas as pd

        if not isinstance(self.covariates, pd.DataFrame):
            raise TypeError("covariates must be a pandas DataFrame indexed by H3 id")
        idx = self.covariates.index
        ids = np.array([int(i, 16) if isinstance(i, str) else int(i) for i in idx], dtype=np.uint64)
        pos = grid.index_of(ids)
        num = self.covariates.apply(pd.to_numeric, errors="coerce")
        bad = [c for c in num.columns if num[c].isna().any()]
        if bad:
            raise ValueError(f"covariates: column(s) {bad} hold non-numeric or missing values")
        mat = np.zeros((len(grid), num.shape[1]))
        mat[pos[pos >= 0]] = num.to_numpy(dtype=float)[pos >= 0]
        return mat, tuple(str(c) for c in num.columns)

    def _features(self, origins, events=None, cell=None, cache=None):
        """Features at ``origins`` from ``events`` (default: the fitted events; maps cached per event set)."""
        if events is None:
            events, cell, cache = self.events_, self.cell_, self._cache
        return build_features(
            events, cell, self.grid_, origins, self.horizon_days_, self.target_codes_,
            self.indicator_codes_, self.spec_, self.data_start_, self.cov_, self.cov_names_, cache,
        )

    def _fit(self, events, grid, cell, end_days):
        h, spacing, spec = self._check_params()
        self.horizon_days_, self.spec_ = h, spec
        self.events_, self.cell_ = events, cell
        self.data_start_ = float(events.t[0])
        self.target_codes_ = np.array([events.categories.index(c) for c in self.target_], dtype=np.int64)
        self.indicator_codes_ = np.array([events.categories.index(c) for c in self.indicators_], dtype=np.int64)
        self.cov_, self.cov_names_ = self._covariate_matrix(grid)
        self._cache = {}
        r = self.refit_every_days
        learn_end = end_days if r is None else math.floor(end_days / float(r) + 1e-9) * float(r)
        n_before = int(np.searchsorted(events.t, learn_end, side="left"))
        key = (learn_end, self.data_start_, n_before, float(events.t[:n_before].sum()), events.categories,
               self.target_, grid.resolution, len(grid), repr(sorted(self.get_params().items(), key=str)))
        state = getattr(self, "_learned", None)
        if not (self.warm_start and state is not None and state["key"] == key):
            n = n_before  # the panel sees only the events before the learning point: same bits warm or cold
            state = self._learn_panel(events.between(None, learn_end), cell[:n], grid, learn_end, h, spacing)
            state["key"] = key
        self._learned = state
        for k, v in state.items():
            if k != "key":
                setattr(self, k, v)
        self.learn_end_ = learn_end

    def _min_history(self, last: float, h: float) -> float:
        """Days of history the first panel origin needs (see ``min_history_days``); ``last``: the last origin."""
        if self.min_history_days is None:
            finite = [w for f in dataclasses.fields(self.spec_) if f.name.endswith("windows_days")
                      for w in getattr(self.spec_, f.name) if math.isfinite(w)]
            want = 0.5 * min(max(finite, default=0.0), last - self.data_start_)
        else:
            want = float(self.min_history_days)
        return max(want, min(28.0, h))

    def _learn_panel(self, events, cell, grid, learn_end, h, spacing) -> dict:
        """Build the training panel ending at ``learn_end`` (days) and learn the estimator."""
        last = learn_end - h
        min_history = self._min_history(last, h)
        first = max(learn_end - float(self.panel_days), self.data_start_ + min_history)
        n = int(math.floor((last - first) / spacing + 1e-9)) + 1
        origins = last - spacing * np.arange(max(n, 0))[::-1]
        n_target = float(np.isin(events.codes, self.target_codes_)[(cell >= 0) & (events.t < learn_end)].sum())
        if origins.size < 4:
            raise ValueError(
                f"FeatureForecaster needs at least 4 training origins (got {max(origins.size, 0)}): the fit window "
                f"holds {learn_end - self.data_start_:.1f} days of events before the learning point; panel origins "
                f"run every origin_spacing_days ({spacing:g}) from horizon_days ({h:g}) before that point back to "
                f"panel_days ({self.panel_days:g}) before it, but not into the first min_history_days "
                f"({min_history:.1f}) of the history"
            )
        if n_target < 10:
            raise ValueError(f"FeatureForecaster needs at least 10 target events in the grid to learn from, got {n_target:g}")
        X, names, families = self._features(origins, events, cell, {})
        y = panel_labels(events, cell, len(grid), origins, h, self.target_codes_)
        self.feature_names_, self.feature_families_ = names, families
        o_idx = np.repeat(np.arange(origins.size), len(grid))
        X2, y2 = X.reshape(-1, X.shape[-1]), y.reshape(-1)
        w2 = self._row_weights(X, names)
        self._transform_fit(X2)
        choice = self.estimator
        self.validation_scores_, self.validation_standard_errors_ = {}, {}
        if choice == "auto":
            choice = self._select(X2, y2, w2, o_idx, origins, spacing)
        keep, wk = self._subsample(y2, w2)
        last_rows = o_idx >= max(0, origins.size - 4)
        return {
            "feature_names_": names,
            "feature_families_": families,
            "panel_origins_": origins,
            "estimator_": choice,
            "validation_scores_": self.validation_scores_,
            "validation_standard_errors_": self.validation_standard_errors_,
            "models_": self._learn(choice, X2[keep], y2[keep], wk),
            "n_panel_rows_": int(keep.size),
            "log_cols_": self.log_cols_,
            "offsets_": self.offsets_,
            "mean_": self.mean_,
            "scale_": self.scale_,
            "_importance_panel": (X2[last_rows], y2[last_rows]),
            "_importances": None,
            "train_rate_": float(y.sum() / (origins.size * h)),
        }

    def _row_weights(self, X, names):
        w = np.ones(X.shape[0] * X.shape[1])
        if self.top_weight is None:
            return w
        ref = X[..., names.index("target_cnt_365d_r0")] if "target_cnt_365d_r0" in names else X[..., 0]
        k = n_flagged(X.shape[1], self.selection_coverage)
        top = ref >= -np.sort(-ref, axis=1)[:, k - 1:k]
        w[top.reshape(-1)] = float(self.top_weight)
        return w

    def _subsample(self, y, w):
        """Rows to learn from: every non-zero row, zero rows sampled down to ``max_rows`` (weights 1/rate)."""
        n = y.size
        if n <= self.max_rows:
            return np.arange(n), w
        pos = np.flatnonzero(y > 0)
        zero = np.flatnonzero(y == 0)
        n_zero = max(self.max_rows - pos.size, min(zero.size, 1000))
        rate = min(1.0, n_zero / max(zero.size, 1))
        rng = np.random.default_rng(self.random_state)
        pick = zero[rng.random(zero.size) < rate]
        keep = np.sort(np.concatenate([pos, pick]))
        wk = w[keep].copy()
        wk[y[keep] == 0] /= rate
        return keep, wk

    # ------------------------------------------------------------ estimators
    def _transform_fit(self, X):
        """Learn the GLM's feature transform on the training panel.

        Every count-like feature ``x >= 0`` enters twice, as ``log(x + 0.05 m)``
        and ``log(x + m)`` with ``m`` its mean over the panel: with a log link,
        ``exp(b log(x + a))`` is the empirical-Bayes (gamma-Poisson) shrinkage
        ``(x + a)^b``, and two offsets let the fit choose how strongly each
        window is shrunk. Then every column is standardised.
        """
        # counts and rates are log-transformed; the calendar terms, the log area and the covariates enter as they are
        self.log_cols_ = np.array([f not in ("calendar", "cell area", "covariates") for f in self.feature_families_])
        m = X[:, self.log_cols_].mean(axis=0)
        self.offsets_ = np.where(m > 0, m, 1.0)
        T = self._transform_raw(X)
        self.mean_ = T.mean(axis=0)
        sd = T.std(axis=0)
        # a column constant over the panel (e.g. the weekday when every origin falls on one weekday)
        # gets scale 1: it is all zeros after centring, so its coefficient stays 0 whatever it is later
        self.scale_ = np.where(sd > 1e-9 * np.maximum(1.0, np.abs(self.mean_)), sd, 1.0)

    def _transform_raw(self, X):
        Z = X[:, self.log_cols_]
        return np.hstack([np.log(Z + 0.05 * self.offsets_), np.log(Z + self.offsets_), X[:, ~self.log_cols_]])

    def _transform(self, X):
        return (self._transform_raw(X) - self.mean_) / self.scale_

    def _learn(self, choice, X, y, w):
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.linear_model import PoissonRegressor

        models = {}
        if choice in ("glm", "blend"):
            glm = PoissonRegressor(alpha=float(self.alpha), max_iter=1000, solver="newton-cholesky")
            glm.fit(self._transform(X), y, sample_weight=w)
            models["glm"] = glm
        if choice in ("gbm", "blend"):
            gbm = HistGradientBoostingRegressor(
                loss="poisson", learning_rate=0.05, max_iter=200, max_leaf_nodes=15, min_samples_leaf=100,
                l2_regularization=1.0, early_stopping=False, random_state=int(self.random_state),
            )
            gbm.fit(X, y, sample_weight=w)
            models["gbm"] = gbm
        return models

    def _predict_rows(self, models, X):
        preds = []
        if "glm" in models:
            preds.append(models["glm"].predict(self._transform(X)))
        if "gbm" in models:
            preds.append(models["gbm"].predict(X))
        return np.mean(preds, axis=0)

    def _origin_scores(self, mu, y, n_cells):
        """Validation score of forecasts ``mu`` for counts ``y`` per origin (rows: origins x cells).

        The Poisson log-likelihood (nats) of each origin's cells, or the hit
        rate of its top ``selection_coverage`` of cells (NaN for an origin
        without target events).
        """
        mu, y = mu.reshape(-1, n_cells), y.reshape(-1, n_cells)
        if self.selection_metric == "loglik":
            return np.array([poisson_loglik(m_o, y_o) for m_o, y_o in zip(mu, y)])
        return np.array([hit_rate(m_o, y_o, self.selection_coverage) for m_o, y_o in zip(mu, y)])

    def _select(self, X, y, w, o_idx, origins, spacing):
        """Pick glm / gbm / blend on the latest ``validation_days`` of origins (fitted on the earlier ones)."""
        n_val = min(max(2, int(round(float(self.validation_days) / spacing))), origins.size // 2)
        cut = origins.size - n_val
        tr, va = o_idx < cut, o_idx >= cut
        keep, wk = self._subsample(y[tr], w[tr])
        fitted = self._learn("blend", X[tr][keep], y[tr][keep], wk)
        n_cells = len(self.grid_)
        per = {}
        for name in _SIMPLEST_FIRST:
            sub = fitted if name == "blend" else {name: fitted[name]}
            per[name] = self._origin_scores(self._predict_rows(sub, X[va]), y[va], n_cells)
        ok = np.all([np.isfinite(v) for v in per.values()], axis=0)  # origins every candidate is scored on
        if not ok.any():  # no validation origin has a target event (hit rate undefined): the simplest
            self.validation_scores_ = {k: -np.inf for k in per}
            self.validation_standard_errors_ = {k: 0.0 for k in per}
            return _SIMPLEST_FIRST[0]
        # the score: total log-likelihood, or mean hit rate, over the scored origins
        scale = float(ok.sum()) if self.selection_metric == "loglik" else 1.0
        scores = {k: float(np.mean(v[ok])) * scale for k, v in per.items()}
        best = max(_SIMPLEST_FIRST, key=lambda k: scores[k])  # ties: the simplest (max keeps the first)
        se = {}
        for k, v in per.items():
            d = per[best][ok] - v[ok]
            se[k] = float(np.std(d, ddof=1) / math.sqrt(d.size)) * scale if d.size > 1 else 0.0
        self.validation_scores_, self.validation_standard_errors_ = scores, se
        return next(k for k in _SIMPLEST_FIRST if scores[best] - scores[k] <= se[k])

    # -------------------------------------------------------------- predict
    def _predict(self, start_days, horizon_days):
        X = self._features(np.array([start_days]))[0]
        mu = self._predict_rows(self.models_, X[0])
        return mu * (horizon_days / self.horizon_days_)

    def _output_attrs(self) -> dict:
        return {"estimator": self.estimator_, "n_features": len(self.feature_names_)}

    def feature_contributions(self, start=None, cells=None):
        """Each feature's additive contribution to the log forecast of each cell (GLM estimator only).

        With the Poisson GLM the forecast rate is ``exp(intercept + sum_j c_j)``;
        ``c_j`` is the coefficient times the standardised, transformed value of
        feature ``j`` (its two log columns added). A positive ``c_j`` raises
        the cell's forecast by the factor ``exp(c_j)`` against a cell with the
        panel-average value of that feature.

        Parameters
        ----------
        start : timestamp or float, optional
            Forecast start (default: the end of the fit).
        cells : sequence of H3 ids or positions, optional
            Default: every cell.

        Returns
        -------
        pandas.DataFrame
            Index ``h3``; one column per feature plus ``intercept`` and
            ``log_rate`` (their sum: ``log`` of the expected events in
            ``horizon_days_`` days).

        Raises
        ------
        NotImplementedError
            When the fitted estimator is not ``"glm"`` (boosted trees do not
            decompose additively on the log scale).
        """
        import pandas as pd

        s = self._start_days(start)
        if self.estimator_ != "glm":
            raise NotImplementedError(
                f"feature_contributions needs estimator='glm' (the fitted estimator is {self.estimator_!r}); "
                "use feature_importances_ for the trees"
            )
        idx = np.arange(len(self.grid_)) if cells is None else self._cell_positions(cells)
        X = self._features(np.array([s]))[0]
        T = self._transform(X[0][idx])
        glm = self.models_["glm"]
        parts = T * glm.coef_
        n_log = int(self.log_cols_.sum())
        names = list(self.feature_names_)
        log_names = [n for n, is_log in zip(names, self.log_cols_) if is_log]
        other = [n for n, is_log in zip(names, self.log_cols_) if not is_log]
        contrib = {}
        for i, n in enumerate(log_names):
            contrib[n] = parts[:, i] + parts[:, n_log + i]
        for i, n in enumerate(other):
            contrib[n] = parts[:, 2 * n_log + i]
        out = pd.DataFrame({n: contrib[n] for n in names}, index=pd.Index(self.grid_.cell_ids[idx], name="h3"))
        out["intercept"] = float(glm.intercept_)
        out["log_rate"] = out[names].sum(axis=1) + float(glm.intercept_)
        return out

    def feature_group_effects(self, cells, start=None, labels=None):
        """How much each family of features raises the forecast of a set of cells (a zone): a factor.

        Works with every estimator: for each family of features
        (:attr:`feature_families_`: the target events by time scale, each
        indicator category, the cell area, the covariates),
        the features of ``cells`` are set to their average over every cell of
        the grid at ``start`` and the model predicts again. The factor is the
        cells' summed forecast over the summed forecast with that family at
        the average: 4.0 reads "were this place's <family> those of an
        average cell, its forecast would be a quarter of what it is"; below
        1, the family lowers the forecast. Families are changed one at a time,
        so the factors of correlated families do not multiply to the whole.
        Families equal in every cell (the calendar) are left out.

        Parameters
        ----------
        cells : sequence of H3 ids or positions
            The cells (e.g. one patrol zone's).
        start : timestamp or float, optional
            Forecast start (default: the end of the fit).
        labels : sequence, optional
            One label per cell (e.g. its zone number): the factors of each
            label's cells, from one computation of the features.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            Factor per family (index), largest first; name ``"factor"``.
            With ``labels``: one column per label (sorted), families in the
            order of the features.
        """
        import pandas as pd

        s = self._start_days(start)
        idx = self._cell_positions(cells)
        if labels is not None and len(labels) != idx.size:
            raise ValueError(f"labels must give one label per cell: {len(labels)} labels for {idx.size} cells")
        X = self._features(np.array([s]))[0][0]
        groups = np.array(self.feature_families_, dtype=object)
        varying = [g for g in dict.fromkeys(groups)  # a family the same in every cell explains no place
                   if not np.all(X[:, groups == g] == X[:1, groups == g])]
        average = X.mean(axis=0)

        def factors(rows):
            base = float(self._predict_rows(self.models_, rows).sum())
            out = {}
            for g in varying:
                cols = groups == g
                alt_rows = rows.copy()
                alt_rows[:, cols] = average[cols]
                alt = float(self._predict_rows(self.models_, alt_rows).sum())
                out[g] = base / alt if alt > 0 else math.inf
            return pd.Series(out, name="factor", dtype=float)

        if labels is None:
            return factors(X[idx]).sort_values(ascending=False)
        labels = np.asarray(labels)
        return pd.DataFrame({lab: factors(X[idx[labels == lab]]) for lab in np.unique(labels)})

    @property
    def feature_importances_(self):
        """Permutation importance on the last training origins (log-likelihood drop per row, nats)."""
        import pandas as pd

        self._check_fitted()
        if getattr(self, "_importances", None) is None:
            X, y = self._importance_panel
            base = poisson_loglik(self._predict_rows(self.models_, X), y)
            rng = np.random.default_rng(self.random_state)
            out = np.zeros(X.shape[1])
            for j in range(X.shape[1]):
                Xp = X.copy()
                Xp[:, j] = Xp[rng.permutation(X.shape[0]), j]
                out[j] = (base - poisson_loglik(self._predict_rows(self.models_, Xp), y)) / max(y.size, 1)
            self._importances = pd.Series(out, index=self.feature_names_, name="importance").sort_values(ascending=False)
        return self._importances
