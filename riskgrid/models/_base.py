"""Shared machinery of every riskgrid forecasting model.

Interface (scikit-learn conventions): parameters are stored by ``__init__``
as given; ``fit(events, grid, end=None)`` validates, learns attributes ending
in ``_`` and returns ``self``; ``predict(start, horizon_days)`` returns an
``xarray.DataArray`` named ``risk`` over the grid's cells holding the expected
number of events per cell in ``[start, start + horizon_days)``.

Target and indicator categories: ``fit(..., target=labels)`` names the
categories whose risk is forecast, scored and zoned; every other category of
the events passed in is an *indicator* (it may inform the forecast, it is never
forecast). Models whose class attribute ``uses_indicators`` is ``False`` (the
baselines) simply fit on the target events; the others (GridHawkes with
cross-excitation, FeatureForecaster) see every event and their per-category
output is cut to the target categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.base import BaseEstimator

from ..errors import LeakageError, NotFittedError
from ..events import EventSet, check_labels, to_days
from ..grid import HexGrid

__all__ = ["RiskModel", "check_int", "check_number", "risk_dataarray", "resolve_target", "split_target", "match_horizon",
           "COUNT_UNITS"]


def resolve_target(categories, target) -> tuple[str, ...]:
    """Check target category labels against the known ``categories``.

    ``None`` means every category. Unknown labels raise ``ValueError`` naming
    the known ones, with a case-insensitive match offered as a hint.
    """
    categories = tuple(categories)
    if target is None:
        return categories
    labels = [target] if isinstance(target, str) else list(target)
    if not labels:
        raise ValueError("target must name at least one category (or be None for all)")
    check_labels(categories, labels, "target categories")
    if len(set(labels)) != len(labels):
        raise ValueError(f"target lists a category twice: {labels}")
    return tuple(str(lab) for lab in labels)


def split_target(categories, target=None, indicators=None) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Validate a target/indicator split of the known ``categories``.

    Returns ``(target, indicators)``: ``target`` is ``None`` when no target was
    given (every category is a target; indicators must then be empty), else a
    tuple of labels; indicators a tuple disjoint from the target.
    """
    ind = () if indicators is None else ((indicators,) if isinstance(indicators, str) else tuple(indicators))
    if target is None:
        if ind:
            raise ValueError("indicators need a target: name the target categories too")
        return None, ()
    tgt = resolve_target(categories, target)
    ind_ok = resolve_target(categories, ind) if ind else ()
    both = sorted(set(tgt) & set(ind_ok))
    if both:
        raise ValueError(f"categories {both} are both target and indicator")
    return tgt, ind_ok


def match_horizon(model, horizon_days: float):
    """Give a model whose ``horizon_days`` parameter is ``None`` the job's horizon (days); returns the model."""
    params = model.get_params(deep=False) if hasattr(model, "get_params") else {}
    if "horizon_days" in params and params["horizon_days"] is None:
        model.set_params(horizon_days=float(horizon_days))
    return model


def check_int(name: str, value, lo: int, hi: int | None = None, unit: str = "") -> int:
    """An integer model parameter in ``lo..hi`` (``True``/``False`` are not integers here)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}{f' ({unit})' if unit else ''}, got {value!r}")
    return int(value)


def check_number(name: str, value, lo: float = 0.0, inclusive: bool = False, allow_none: bool = False,
                 unit: str = ""):
    """A finite real model parameter ``> lo`` (``>= lo`` when ``inclusive``); ``None`` when ``allow_none``."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not np.isfinite(value) or not (value >= lo if inclusive else value > lo):
        rng = f"{'>=' if inclusive else '>'} {lo:g}"
        raise ValueError(
            f"{name} must be a finite number {rng}{f' ({unit})' if unit else ''}{' or None' if allow_none else ''}, "
            f"got {value!r}"
        )
    return float(value)


#: ``units`` of a forecast of expected counts (every model but the score models, e.g. NearRepeat)
COUNT_UNITS = "expected events per cell in the forecast window"
#: a branching ratio (theta) below this counts as collapsed triggering: fewer than one event in a hundred
#: triggered, the forecast is the background alone (GridHawkes and SEPP warn)
THETA_COLLAPSED = 1e-2


def risk_dataarray(
    values: np.ndarray,
    grid: HexGrid,
    *,
    model: str,
    start_days: float,
    horizon_days: float,
    params: dict | None = None,
    fit_window: tuple[float, float] | None = None,
    categories: tuple[str, ...] | None = None,
    units: str = COUNT_UNITS,
    extra_attrs: dict | None = None,
) -> xr.DataArray:
    """Wrap per-cell forecasts into the standard ``risk`` DataArray.

    ``values`` is ``(n_cells,)`` or ``(n_categories, n_cells)``.
    """
    values = np.asarray(values, dtype=np.float64)
    lat, lon = grid.centroids_latlon
    coords = {
        "cell": np.arange(len(grid)),
        "h3": ("cell", grid.cell_ids),
        "h3_int": ("cell", grid.cells),
        "lat": ("cell", lat),
        "lon": ("cell", lon),
    }
    if values.ndim == 2:
        dims = ("category", "cell")
        coords["category"] = list(categories) if categories is not None else list(range(values.shape[0]))
    else:
        dims = ("cell",)
    start_ts = EventSet.origin + pd.to_timedelta(start_days, unit="D")
    attrs = {
        "model": model,
        "units": units,
        "forecast_start": str(start_ts.round("s")),
        "forecast_start_days": float(start_days),
        "horizon_days": float(horizon_days),
        "time_origin": str(EventSet.origin),
        "h3_resolution": int(grid.resolution),
    }
    if fit_window is not None:
        attrs["fit_start_days"], attrs["fit_end_days"] = float(fit_window[0]), float(fit_window[1])
        attrs["fit_window"] = (
            f"{(EventSet.origin + pd.to_timedelta(fit_window[0], unit='D')).round('s')} → "
            f"{(EventSet.origin + pd.to_timedelta(fit_window[1], unit='D')).round('s')}"
        )
    for k, v in (params or {}).items():
        if isinstance(v, (int, float, str)):
            attrs[f"param_{k}"] = v
        elif hasattr(v, "columns") and hasattr(v, "shape"):  # a table parameter (covariates): summarised
            attrs[f"param_{k}"] = f"<table of {v.shape[0]} rows x {v.shape[1]} columns>"
        else:
            attrs[f"param_{k}"] = str(v)
    attrs.update(extra_attrs or {})
    return xr.DataArray(values, dims=dims, coords=coords, name="risk", attrs=attrs)


class RiskModel(BaseEstimator):
    """Base class: common validation, leakage guard and output wrapping.

    Subclasses implement ``_fit(events, grid, end_days)`` and
    ``_predict(start_days, horizon_days) -> ndarray`` (per cell, or
    categories × cells).
    """

    #: name written into the output's attributes
    model_name = "RiskModel"
    #: whether ``_fit`` receives indicator (non-target) events; ``False``: only the target events
    uses_indicators = False

    def fit(self, events: EventSet, grid: HexGrid, end=None, target=None):
        """Fit on ``events`` inside ``grid`` up to ``end`` (default: last event).

        Events at or after ``end`` are ignored (half-open window). Events
        outside the grid are not used; their number is kept in
        ``n_outside_`` so nothing is lost silently.

        ``target`` (a category label or a list of them; default: every
        category of ``events``) names the categories that are forecast; the
        other categories are indicators (see the module docstring). The
        learned ``target_`` and ``indicators_`` record the split.
        """
        if not isinstance(events, EventSet):
            raise TypeError(f"events must be an EventSet, got {type(events).__name__}")
        if not isinstance(grid, HexGrid):
            raise TypeError(f"grid must be a HexGrid, got {type(grid).__name__}")
        if len(events) == 0:
            raise ValueError("cannot fit on an empty EventSet")
        self.target_ = resolve_target(events.categories, target)
        self.indicators_ = tuple(c for c in events.categories if c not in self.target_)
        if self.indicators_ and not self.uses_indicators:
            events = events.select(self.target_)
            if len(events) == 0:
                raise ValueError(f"no event of the target categories {list(self.target_)}")
        end_days = float(events.t[-1]) if end is None else events.to_days(end)
        ev = events.between(None, end_days) if end is not None else events
        if len(ev) == 0:
            raise ValueError(f"no event before end={end!r}")
        cell = grid.assign(ev)
        self.n_outside_ = int((cell < 0).sum())
        self.grid_ = grid
        self.categories_ = ev.categories
        self.fit_start_ = float(ev.t[0])
        self.fit_end_ = float(end_days) if end is not None else float(ev.t[-1])
        self.last_event_ = float(ev.t[-1])
        self.n_events_ = int((cell >= 0).sum())
        self.training_events_ = ev  # what explain() names: the events the model saw (time-sorted)
        self._fit(ev, grid, cell, self.fit_end_)
        return self

    # ------------------------------------------------------------ explanation
    #: how many of the highest-risk cells :meth:`explain` covers when ``cells`` is not given
    EXPLAIN_DEFAULT_CELLS = 20

    def explain(self, start=None, horizon_days: float = 1.0, cells=None):
        """Why each cell gets its forecast: background vs triggered parts and the past events behind them.

        Parameters
        ----------
        start, horizon_days
            The forecast window, as :meth:`predict` (days).
        cells : sequence of H3 ids (str or int) or of cell positions, optional
            Cells to explain (default: the :attr:`EXPLAIN_DEFAULT_CELLS`
            highest-risk cells of the forecast).

        Returns
        -------
        :class:`~riskgrid.models.explain.Explanation`
            ``cells`` (risk = background + triggered per cell) and
            ``contributions`` (each past event's share of each cell's
            forecast); see :mod:`riskgrid.models.explain` for what the two
            parts mean for each model.

        Raises
        ------
        NotImplementedError
            For a model that cannot decompose its forecast.
        """
        from .explain import build_explanation

        if not horizon_days > 0:
            raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
        s = self._start_days(start)
        H = float(horizon_days)
        if not hasattr(self, "_explain_parts"):
            raise NotImplementedError(f"{type(self).__name__} cannot decompose its forecast into explained parts")
        if cells is None:
            risk = np.asarray(self.predict(start, H).values)
            risk = risk.sum(axis=0) if risk.ndim == 2 else risk
            k = min(self.EXPLAIN_DEFAULT_CELLS, risk.size)
            idx = np.sort(np.argsort(-risk, kind="stable")[:k])
        else:
            idx = self._cell_positions(cells)
        parts = self._explain_parts(s, H, idx)
        units = str(self._output_attrs().get("units", "expected events per cell in the forecast window"))
        return build_explanation(self, parts, idx, s, H, units)

    def _cell_positions(self, cells) -> np.ndarray:
        """Grid positions of ``cells`` (H3 strings, H3 integers or positions); unknown cells raise ``ValueError``."""
        grid = self.grid_
        vals = list(np.atleast_1d(np.asarray(cells, dtype=object)))
        if not vals:
            raise ValueError("cells must name at least one cell")
        out = []
        for v in vals:
            if isinstance(v, str):
                pos = np.flatnonzero(grid.cell_ids == v)
            elif isinstance(v, (int, np.integer)) and 0 <= int(v) < len(grid):
                pos = np.array([int(v)])
            elif isinstance(v, (int, np.integer)):
                pos = np.flatnonzero(grid.cells == np.uint64(int(v)))
            else:
                pos = np.array([], dtype=np.int64)
            if pos.size != 1:
                raise ValueError(f"cell {v!r} is not a cell of the grid (give H3 ids or positions 0..{len(grid) - 1})")
            out.append(int(pos[0]))
        if len(set(out)) != len(out):
            raise ValueError("cells lists a cell twice")
        return np.asarray(out, dtype=np.int64)

    def _target_total_rows(self) -> np.ndarray:
        """Positions in ``categories_`` of the forecast (target) categories."""
        target = getattr(self, "target_", None) or self.categories_
        return np.array([i for i, c in enumerate(self.categories_) if c in target], dtype=np.int64)

    def _check_fitted(self):
        if not hasattr(self, "grid_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(events, grid) first")

    def _start_days(self, start) -> float:
        self._check_fitted()
        s = to_days(start) if start is not None else self.fit_end_
        if s < self.last_event_:
            raise LeakageError(
                f"predict start {start!r} is before the last event used in fit "
                f"({EventSet.origin + pd.to_timedelta(self.last_event_, unit='D')}); "
                "a forecast must start after its training data"
            )
        return s

    def predict(self, start=None, horizon_days: float = 1.0):
        """Expected events per cell in ``[start, start + horizon_days)`` (``risk`` DataArray).

        ``start`` defaults to the end of the fit window; it may not be earlier
        than the last event used in :meth:`fit` (:class:`LeakageError`).
        """
        if not horizon_days > 0:
            raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
        s = self._start_days(start)
        values = self._target_rows(self._predict(s, float(horizon_days)))
        return risk_dataarray(
            values,
            self.grid_,
            model=self.model_name,
            start_days=s,
            horizon_days=horizon_days,
            params=self.get_params(),
            fit_window=(self.fit_start_, self.fit_end_),
            categories=self._output_categories() if np.ndim(values) == 2 else None,
            extra_attrs={**self._target_attrs(), **self._output_attrs()},
        )

    def predict_interval(self, start=None, horizon_days: float = 7.0, level: float = 0.9, n_sims: int = 1000,
                         seed=None, zones=None):
        """Forecast with an interval: the point forecast plus the central ``level`` interval of each cell's count.

        The default, for models whose forecast is an expected count (the
        baselines, FeatureForecaster): the count of a cell is taken to be
        Poisson with the forecast as its mean, and the interval is the
        closed-form Poisson one (:func:`riskgrid.models.uncertainty.poisson_interval`;
        attribute ``interval_method = "poisson"``). Models that simulate
        their future (GridHawkes, and any model overriding this method) use
        their own simulation instead. Models whose output is a score, not a
        count (NearRepeat: its ``units`` say so), raise ``TypeError``.

        Parameters
        ----------
        start, horizon_days
            As :meth:`predict` (days).
        level : float
            Probability of the central interval, in (0, 1) (0.9: the 5 % and 95 % quantiles).
        n_sims, seed
            Accepted for a common signature with the simulating models; unused by the Poisson interval.
        zones : array of int (n_cells,), optional
            Zone of each cell, 0-based (-1: none). Adds ``zone_risk``,
            ``zone_lo``, ``zone_hi``, ``zone_p_any`` over a ``zone``
            dimension: the Poisson interval of the zone's total (a sum of
            independent Poisson counts is Poisson with the summed mean; the
            sum of the cells' quantiles is not the zone's quantile).

        Returns
        -------
        xarray.Dataset
            ``risk`` (expected events per cell in the window, summed over
            the forecast categories), ``risk_lo``, ``risk_hi`` (quantiles of
            the count, events), ``p_any`` (``P(count >= 1)``); attributes
            ``interval_level`` and ``interval_method``.

        Examples
        --------
        >>> ds = CountHotspot().fit(events, grid).predict_interval(horizon_days=7, level=0.9)  # doctest: +SKIP
        >>> ds["risk_hi"].max()  # doctest: +SKIP
        """
        from .uncertainty import interval_dataset, poisson_interval, zone_sums

        check_int("n_sims", n_sims, 1)
        risk = self.predict(start, horizon_days)
        units = str(risk.attrs.get("units", COUNT_UNITS))
        if units != COUNT_UNITS:
            raise TypeError(f"{type(self).__name__} forecasts a score ({units}), not an expected count: a count "
                            f"interval is not defined for it; use a count model (CountHotspot, KDEHotspot, "
                            f"GridHawkes, SEPP, ...) for intervals")
        if risk.ndim == 2:
            risk = risk.sum("category", keep_attrs=True)
        lo, hi, p_any = poisson_interval(risk.values, level)
        ds = interval_dataset(risk, lo, hi, p_any, level, "poisson")
        if zones is not None:
            zr = zone_sums(risk.values, zones)
            zlo, zhi, zp = poisson_interval(zr, level)
            ds["zone_risk"] = ("zone", zr)
            ds["zone_lo"] = ("zone", zlo)
            ds["zone_hi"] = ("zone", zhi)
            ds["zone_p_any"] = ("zone", zp)
        return ds

    def _output_categories(self) -> tuple[str, ...]:
        """Category labels of the rows of a per-category forecast (the target categories)."""
        return tuple(c for c in self.categories_ if c in self.target_)

    def _target_rows(self, values: np.ndarray) -> np.ndarray:
        """Cut a per-category forecast ``(n_categories, n_cells)`` to the target categories."""
        values = np.asarray(values)
        if values.ndim == 2 and len(self.categories_) == values.shape[0] and set(self.categories_) != set(self.target_):
            keep = [i for i, c in enumerate(self.categories_) if c in self.target_]
            values = values[keep]
        return values

    def _target_attrs(self) -> dict:
        if not getattr(self, "indicators_", ()):
            return {}
        return {"target": ", ".join(self.target_), "indicators": ", ".join(self.indicators_)}

    def _output_attrs(self) -> dict:
        return {}

    def _fit(self, events: EventSet, grid: HexGrid, cell: np.ndarray, end_days: float):  # pragma: no cover
        raise NotImplementedError

    def _predict(self, start_days: float, horizon_days: float) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError
