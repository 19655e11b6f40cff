"""Model selection by walk-forward validation inside the training window.

:class:`WalkForwardSearch` is a model whose ``fit`` scores every candidate
(model classes, bandwidths, windows, estimator settings...) on the last
``n_folds`` forecast windows *before* the end of the fit - each candidate
fitted only on the events before each validation origin - picks the best
mean score, and refits it on everything up to the end. It never sees an
event at or after the end of its fit, so it can itself run inside a
walk-forward backtest (a city gets its own bandwidth without hand tuning,
and the backtest stays honest). :func:`select_model` is the functional form.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..metrics import evaluate, poisson_loglik, risk_values
from ._base import RiskModel, check_int, check_number, match_horizon

__all__ = ["WalkForwardSearch", "select_model"]

_METRICS = ("loglik", "pai")


def _build(name: str, spec) -> RiskModel:
    """A candidate from a model instance or a spec ``{"name": ..., "params": {...}}``."""
    if isinstance(spec, RiskModel):
        return clone(spec)
    if isinstance(spec, Mapping) and "name" in spec:
        from . import make_model

        extra = sorted(set(spec) - {"name", "params"})
        if extra:
            raise ValueError(f"candidate {name!r}: unknown key(s) {extra}; a candidate is {{name = ..., params = {{...}}}}")
        return make_model(spec["name"], **dict(spec.get("params") or {}))
    raise TypeError(f"candidate {name!r} must be a riskgrid model or a {{'name': ..., 'params': {{...}}}} spec, got {spec!r}")


class WalkForwardSearch(RiskModel):
    """Pick the best of several candidate models by time-blocked validation, then refit it.

    Validation origins are ``end - horizon - k * step_days`` for ``k = 0 ..
    n_folds - 1`` (the latest fold's window ends at the end of the fit). At
    each, every candidate is fitted on the events before the origin (with the
    same target/indicator split) and scored on the target events of
    ``[origin, origin + horizon_days)``.

    Parameters
    ----------
    candidates : dict of str -> model or spec
        Unfitted riskgrid models, or specs ``{"name": "KDEHotspot", "params":
        {"bandwidth_m": 150}}`` (configuration files).
    n_folds : int
        Number of validation windows.
    horizon_days : float or None
        Validation window length (days); ``None``: the job's horizon (7 days
        when fitted directly). Candidates with ``horizon_days=None`` get it too.
    step_days : float or None
        Days between validation origins (default: ``horizon_days``).
    metric : {"loglik", "pai"}
        Held-out Poisson log-likelihood (default), or the hit rate of the top
        ``coverage`` of cells (PAI at that coverage up to a constant).
    coverage : float
        Coverage of the ``"pai"`` metric (fraction of cells).
    train_days : float or None
        Training window of each validation fit (days before its origin;
        ``None``: everything before it).

    Attributes
    ----------
    scores_ : pandas.DataFrame
        One row per (candidate, fold) with ``origin_days`` and ``score``.
    mean_scores_ : pandas.Series
        Mean score per candidate (higher is better).
    best_name_ : str
    best_model_ : RiskModel
        The chosen candidate refitted on every event up to the end of the fit.
    """

    model_name = "WalkForwardSearch"
    uses_indicators = True

    def __init__(self, candidates=None, n_folds: int = 4, horizon_days: float | None = None,
                 step_days: float | None = None, metric: str = "loglik", coverage: float = 0.01,
                 train_days: float | None = None):
        self.candidates = candidates
        self.n_folds = n_folds
        self.horizon_days = horizon_days
        self.step_days = step_days
        self.metric = metric
        self.coverage = coverage
        self.train_days = train_days

    def _fit(self, events, grid, cell, end_days):
        if not isinstance(self.candidates, Mapping) or not self.candidates:
            raise ValueError("candidates must be a non-empty dict of name -> model or {name, params} spec")
        n_folds = check_int("n_folds", self.n_folds, 1)
        h = 7.0 if self.horizon_days is None else check_number("horizon_days", self.horizon_days, unit="days")
        step = h if self.step_days is None else check_number("step_days", self.step_days, unit="days")
        train_days = check_number("train_days", self.train_days, allow_none=True, unit="days")
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {self.metric!r}")
        cov = check_number("coverage", self.coverage)
        protos = {str(k): match_horizon(_build(str(k), v), h) for k, v in self.candidates.items()}
        target = list(self.target_)
        is_target = np.isin(events.codes, [events.categories.index(c) for c in target]) & (cell >= 0)
        origins = end_days - h - step * np.arange(n_folds)[::-1]
        rows = []
        for o in origins:
            lo = None if train_days is None else o - train_days
            train = events.between(lo, o)
            sel = is_target & (events.t >= o) & (events.t < o + h)
            observed = np.bincount(cell[sel], weights=events.weight[sel], minlength=len(grid)).astype(float)
            for name, proto in protos.items():
                try:
                    r = risk_values(clone(proto).fit(train, grid, end=o, target=target).predict(o, h), len(grid))
                    score = self._score(r, observed, grid, cov)
                    err = ""
                except (ValueError, ArithmeticError) as exc:  # a candidate that cannot fit this window loses it
                    score, err = -np.inf, f"{type(exc).__name__}: {exc}"[:300]
                rows.append({"candidate": name, "origin_days": float(o), "score": score, "error": err})
        self.scores_ = pd.DataFrame(rows)
        self.mean_scores_ = self.scores_.groupby("candidate", sort=False)["score"].mean()
        if not np.isfinite(self.mean_scores_.max()):
            raise ValueError(f"no candidate could be fitted and scored on every validation window:\n{self.scores_}")
        self.best_name_ = str(self.mean_scores_.idxmax())
        self.best_model_ = clone(protos[self.best_name_]).fit(events, grid, end=end_days, target=target)

    def _score(self, r, observed, grid, cov):
        if self.metric == "loglik":
            return poisson_loglik(r, observed)
        if observed.sum() == 0:
            return np.nan
        return float(evaluate(r, observed, grid.area_m2, (cov,))["hit_rate"][0])

    def _predict(self, start_days, horizon_days):
        return risk_values(self.best_model_.predict(start_days, horizon_days), len(self.grid_))

    def predict_interval(self, start=None, horizon_days: float = 7.0, **kwargs):
        """The selected model's forecast interval (its own simulation where it has one); see
        :meth:`RiskModel.predict_interval`."""
        self._check_fitted()
        return self.best_model_.predict_interval(start, horizon_days, **kwargs)

    def explain(self, start=None, horizon_days: float = 1.0, cells=None):
        """The selected model's explanation (:meth:`RiskModel.explain`)."""
        self._check_fitted()
        return self.best_model_.explain(start, horizon_days, cells=cells)

    def _output_attrs(self) -> dict:
        return {"selected_model": self.best_name_, "selected_params": str(self.best_model_.get_params(deep=False))}


def select_model(candidates, events, grid, end=None, horizon_days: float = 7.0, target=None, **kwargs) -> WalkForwardSearch:
    """Fit a :class:`WalkForwardSearch` over ``candidates`` and return it (see its docstring).

    ``kwargs`` are its other parameters (``n_folds``, ``metric``, ...). The
    result predicts with the chosen model; ``best_name_`` and ``scores_`` say
    which and why.
    """
    return WalkForwardSearch(candidates=candidates, horizon_days=horizon_days, **kwargs).fit(
        events, grid, end=end, target=target
    )
