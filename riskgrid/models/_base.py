"""Shared machinery of every riskgrid forecasting model.

Interface (scikit-learn conventions): parameters are stored by ``__init__``
as given; ``fit(events, grid, end=None)`` validates, learns attributes ending
in ``_`` and returns ``self``; ``predict(start, horizon_days)`` returns an
``xarray.DataArray`` named ``risk`` over the grid's cells holding the expected
number of events per cell in ``[start, start + horizon_days)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.base import BaseEstimator

from ..errors import LeakageError, NotFittedError
from ..events import EventSet, to_days
from ..grid import HexGrid

__all__ = ["RiskModel", "check_int", "check_number", "risk_dataarray"]


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
    units: str = "expected events per cell in the forecast window",
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
        attrs[f"param_{k}"] = v if isinstance(v, (int, float, str)) else str(v)
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

    def fit(self, events: EventSet, grid: HexGrid, end=None):
        """Fit on ``events`` inside ``grid`` up to ``end`` (default: last event).

        Events at or after ``end`` are ignored (half-open window). Events
        outside the grid are not used; their number is kept in
        ``n_outside_`` so nothing is lost silently.
        """
        if not isinstance(events, EventSet):
            raise TypeError(f"events must be an EventSet, got {type(events).__name__}")
        if not isinstance(grid, HexGrid):
            raise TypeError(f"grid must be a HexGrid, got {type(grid).__name__}")
        if len(events) == 0:
            raise ValueError("cannot fit on an empty EventSet")
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
        self._fit(ev, grid, cell, self.fit_end_)
        return self

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
        values = self._predict(s, float(horizon_days))
        return risk_dataarray(
            values,
            self.grid_,
            model=self.model_name,
            start_days=s,
            horizon_days=horizon_days,
            params=self.get_params(),
            fit_window=(self.fit_start_, self.fit_end_),
            categories=self.categories_ if np.ndim(values) == 2 else None,
            extra_attrs=self._output_attrs(),
        )

    def _output_attrs(self) -> dict:
        return {}

    def _fit(self, events: EventSet, grid: HexGrid, cell: np.ndarray, end_days: float):  # pragma: no cover
        raise NotImplementedError

    def _predict(self, start_days: float, horizon_days: float) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError
