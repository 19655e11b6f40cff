"""Job specifications: small, frozen, picklable descriptions of a forecast or a backtest, validated once.

A job names an event *source* (a Parquet/CSV path, a Hive-partitioned
Parquet dataset filtered by ``city``, or an in-memory
:class:`~riskgrid.EventSet`), a :class:`GridSpec`, model specs
(:class:`ModelSpec`) and a period. Every entry point builds one of these
(``riskgrid forecast`` and :func:`riskgrid.run_forecast` through
:meth:`ForecastJob.from_config`, ``riskgrid backtest`` through
:meth:`BacktestJob.from_config`, batch files through
:func:`riskgrid.distributed.load_jobs`, the API directly) and hands it to the
one :func:`riskgrid.pipeline.forecasting.forecast` /
:func:`riskgrid.pipeline.backtest.backtest_job`. The value checks are those
of :mod:`riskgrid.pipeline.config` (one meaning, one message per setting).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ConfigError
from .config import (check_days, check_discovered, check_grid, check_interval_level, check_name, check_on_invalid,
                     event_options)

#: keyword arguments of :meth:`riskgrid.EventSet.from_frame` a job may set (``event_options``)
EVENT_OPTIONS = ("time_format", "year_range", "bbox", "within", "far_km", "keep_duplicates")

__all__ = ["GridSpec", "ModelSpec", "ForecastJob", "BacktestJob", "COLUMN_ROLES", "check_columns"]

#: roles of the event table's columns (``columns=`` of a job, keys of ``[events]``)
COLUMN_ROLES = ("time", "lat", "lon", "category", "weight", "id")


@dataclass(frozen=True)
class GridSpec:
    """How to build the study-area grid of a job (the rule is :func:`riskgrid.pipeline.source.study_area`).

    Parameters
    ----------
    resolution : int
        H3 resolution (9 ≈ 0.105 km² cells, 201 m edge).
    buffer_rings : int
        Rings of cells added around every cell holding an event.
    geojson : str, optional
        Path of a GeoJSON polygon of the study area; when given it wins over
        the events (cells whose centres lie inside).
    """

    resolution: int = 9
    buffer_rings: int = 1
    geojson: str | None = None

    def __post_init__(self):
        check_grid("grid", self.resolution, self.buffer_rings)
        if self.geojson is not None:
            object.__setattr__(self, "geojson", os.fspath(self.geojson))

    def build(self, events):
        """The :class:`~riskgrid.HexGrid` of the polygon, or of ``events`` (the caller picks them).

        A missing or malformed ``geojson`` raises :class:`~riskgrid.ConfigError` naming the file.
        """
        from ..grid import HexGrid

        if self.geojson:
            try:
                return HexGrid.from_geojson(self.geojson, resolution=self.resolution)
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(f"grid.geojson: {exc}") from exc
        return HexGrid.from_events(events, resolution=self.resolution, buffer_rings=self.buffer_rings)


@dataclass(frozen=True)
class ModelSpec:
    """A model by name and keyword parameters (built with :func:`riskgrid.models.make_model`)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def build(self):
        """A fresh, unfitted model."""
        from ..models import make_model

        return make_model(self.name, **dict(self.params))

    @classmethod
    def coerce(cls, spec, where: str = "model") -> "ModelSpec":
        """Accept a ``ModelSpec``, a model name, or ``{"name": ..., "params": {...}}``."""
        if isinstance(spec, ModelSpec):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"name", "params"})
            if unknown or "name" not in spec:
                raise ConfigError(f"{where} must be {{name = ..., params = {{...}}}}; got keys {sorted(spec)}")
            params = spec.get("params") or {}
            if not isinstance(params, Mapping):
                raise ConfigError(f"{where}.params must be a table, got {type(params).__name__}")
            return cls(str(spec["name"]), dict(params))
        raise ConfigError(f"{where} must be a ModelSpec, a model name or a {{name, params}} table, got {type(spec).__name__}")


def check_columns(columns, categories) -> dict:
    """Column names by role (defaults ``timestamp``, ``lat``, ``lon``); unknown roles are a ConfigError."""
    cols = {"time": "timestamp", "lat": "lat", "lon": "lon", "category": None, "weight": None, "id": None}
    if columns:
        unknown = sorted(set(columns) - set(COLUMN_ROLES))
        if unknown:
            raise ConfigError(f"unknown column role(s) {unknown} in columns; allowed: {list(COLUMN_ROLES)}")
        cols.update(columns)
    if categories and cols["category"] is None:
        cols["category"] = "category"  # a filter needs the column holding the type
    return cols


def _check_source(source, name):
    from ..events import EventSet

    if isinstance(source, EventSet):
        return source
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise ConfigError(f"job {name!r}: source must be a file/dataset path or an EventSet, got {type(source).__name__}")
    return source


@dataclass(frozen=True)
class _JobBase:
    name: str
    source: Any
    grid: GridSpec = GridSpec()
    horizon_days: float = 7.0
    train_days: float | None = None
    categories: tuple[str, ...] | None = None
    target: tuple[str, ...] | None = None
    indicators: tuple[str, ...] = ()
    columns: Mapping[str, str | None] | None = None
    city: str | None = None
    on_invalid: str = "raise"
    event_options: Mapping[str, Any] | None = None
    source_column: str | None = None
    discovered: Any = "keep"

    def _validate(self):
        check_name("job name", self.name)
        where = f"job {self.name!r}:"
        object.__setattr__(self, "source", _check_source(self.source, self.name))
        if isinstance(self.grid, Mapping):
            object.__setattr__(self, "grid", GridSpec(**self.grid))
        if not isinstance(self.grid, GridSpec):
            raise ConfigError(f"{where} grid must be a GridSpec, got {type(self.grid).__name__}")
        check_days(f"{where} horizon_days", self.horizon_days)
        check_days(f"{where} train_days", self.train_days, optional=True)
        for key in ("categories", "target", "indicators"):
            value = getattr(self, key)
            if isinstance(value, str):
                object.__setattr__(self, key, (value,))
            elif value is not None:
                object.__setattr__(self, key, tuple(value))
        if self.indicators and self.target is None:
            raise ConfigError(f"{where} indicators {list(self.indicators)} need a target")
        if self.target is not None:
            both = sorted(set(self.target) & set(self.indicators))
            if both:
                raise ConfigError(f"{where} categories {both} are both target and indicator")
            wanted = tuple(self.target) + tuple(self.indicators)
            if self.categories is None:  # read exactly the target and indicator categories
                object.__setattr__(self, "categories", wanted)
            elif set(wanted) - set(self.categories):
                raise ConfigError(f"{where} target/indicators {sorted(set(wanted) - set(self.categories))} "
                                  f"are not in the categories filter {list(self.categories)}")
        object.__setattr__(self, "columns", check_columns(self.columns, self.categories))
        check_on_invalid(f"{where} on_invalid", self.on_invalid)
        object.__setattr__(self, "event_options", dict(self.event_options or {}))
        unknown = sorted(set(self.event_options) - set(EVENT_OPTIONS))
        if unknown:
            raise ConfigError(f"{where} unknown event option(s) {unknown}; allowed: {list(EVENT_OPTIONS)}")
        object.__setattr__(self, "discovered", check_discovered(f"{where} discovered", self.discovered))
        if self.discovered != "keep" and not self.source_column:
            raise ConfigError(f"{where} discovered={self.discovered!r} needs source_column (reported / discovered)")

    def load_options(self) -> dict:
        """Keyword arguments of :func:`riskgrid.pipeline.source.load_events` beyond the columns and filters."""
        return {"options": dict(self.event_options), "source_column": self.source_column,
                "discovered": self.discovered}

    def data_key(self) -> tuple:
        """What identifies the loaded events + grid of this job (the worker cache key)."""
        src = self.source if isinstance(self.source, str) else ("EventSet", id(self.source))
        cols = tuple(sorted((k, v) for k, v in self.columns.items() if v is not None))
        opts = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in self.event_options.items()))
        return (src, self.city, cols, self.categories, self.on_invalid, self.grid, opts, self.source_column,
                self.discovered)


def _source_from_config(cfg: dict) -> dict:
    """The source fields of a job from a validated configuration's ``[events]`` and ``[grid]``."""
    ev, g = cfg["events"], cfg["grid"]
    if ev.get("path") is not None:
        source = ev["path"]
    else:
        from .source import simulated_events

        source = simulated_events(cfg)
    from ..events import EventSet

    return dict(
        source=source,
        grid=GridSpec(g["resolution"], g["buffer_rings"], g.get("geojson")),
        categories=ev.get("categories") if not isinstance(source, EventSet) else None,
        target=ev.get("target"),
        indicators=tuple(ev.get("indicators") or ()),
        columns={k: ev[k] for k in COLUMN_ROLES},
        on_invalid=ev["on_invalid"],
        event_options=event_options(ev, g.get("geojson")),
        source_column=ev.get("source_column"),
        discovered=ev.get("discovered", "keep"),
    )


@dataclass(frozen=True)
class ForecastJob(_JobBase):
    """One forecast: fit a model on a city's history and predict a window.

    Parameters
    ----------
    name : str
        Unique name of the job (keys of ``BatchResult.results``).
    source : str or EventSet
        Parquet file, CSV file, Parquet dataset folder (Hive-partitioned;
        combined with ``city``), or an in-memory EventSet (shipped to the
        workers once per run).
    model : ModelSpec or str or dict
        Model name and parameters.
    date : timestamp-like or float, optional
        Forecast start; the model is fitted on events strictly before it.
        Default: midnight after the last event ("tomorrow").
    horizon_days : float
        Length of the forecast window (days).
    train_days : float, optional
        Length of the training window before ``date`` (days); ``None``: all history.
    grid : GridSpec
        Study area: the polygon, or the cells of the job's events before
        ``date`` (after the category filter) plus ``buffer_rings``.
    categories : sequence of str, optional
        Keep only these event types.
    target, indicators : sequence of str, optional
        Categories that are forecast, scored and zoned, and categories that
        only inform the models that use them (see
        :meth:`riskgrid.models.RiskModel.fit`); ``None``: every category is a
        target. Without ``categories``, the job reads exactly these.
    columns : dict, optional
        Column names by role: ``time``, ``lat``, ``lon``, ``category``,
        ``weight`` (defaults ``timestamp``, ``lat``, ``lon``, none, none).
    city : str, optional
        Keep only rows whose ``city`` column/partition equals this value
        (pyarrow ``filters=[("city", "=", city)]``).
    on_invalid : {"raise", "drop"}
        See :meth:`riskgrid.EventSet.from_frame`.
    event_options : dict, optional
        Further validation keywords of :meth:`riskgrid.EventSet.from_frame`
        (:data:`EVENT_OPTIONS`: ``time_format``, ``year_range``, ``bbox``,
        ``within``, ``far_km``, ``keep_duplicates``); ignored for an EventSet source.
    source_column : str, optional
        Column saying whether a record was ``reported`` (by residents) or
        ``discovered`` (by police: stops, narcotics arrests).
    discovered : {"keep", "exclude"} or float
        What the fit does with discovered records: keep them, drop them, or
        multiply their weights by a number in (0, 1).
    interval_level : float or None
        Level of the forecast interval of the nightly products (per cell and
        per zone: ``risk_lo``, ``risk_hi``, ``p_any``; see
        :func:`riskgrid.pipeline.forecasting.forecast_interval`); ``None``: no
        interval.
    n_sims : int
        Simulated futures of the interval for models that simulate
        (GridHawkes, SEPP); the baselines' interval is Poisson (closed form,
        about 50 ms). Cost: 500 GridHawkes futures of a 1- or 7-day window
        after a year of Chicago burglary (14,400 events, 5,300 cells) took
        0.8-1.3 s on a loaded 2-core machine (400-650 simulations/s), against
        0.1 s for ``predict``.
    """

    model: Any = "CountHotspot"
    date: Any = None
    interval_level: float | None = 0.9
    n_sims: int = 500

    def __post_init__(self):
        self._validate()
        object.__setattr__(self, "model", ModelSpec.coerce(self.model, f"job {self.name!r} model"))
        if self.interval_level is not None:
            check_interval_level(f"job {self.name!r}: interval_level", self.interval_level)
            object.__setattr__(self, "interval_level", float(self.interval_level))
        if isinstance(self.n_sims, bool) or not isinstance(self.n_sims, int) or self.n_sims < 1:
            raise ConfigError(f"job {self.name!r}: n_sims must be an integer >= 1 (simulated futures), got {self.n_sims!r}")

    @classmethod
    def from_config(cls, cfg: dict, date=None, name: str | None = None) -> "ForecastJob":
        """The job of a validated configuration (``[events]``, ``[grid]``, ``[model]``, ``[forecast]``)."""
        if cfg.get("model") is None:
            raise ConfigError("the configuration has no [model] section (e.g. name = \"GridHawkes\")")
        fc = cfg["forecast"]
        return cls(
            name=name or cfg.get("city", "city"),
            model=ModelSpec(cfg["model"]["name"], dict(cfg["model"].get("params") or {})),
            date=date,
            horizon_days=fc["horizon_days"],
            train_days=fc["train_days"],
            interval_level=float(fc["interval_level"]) if fc.get("interval", True) else None,
            n_sims=int(fc.get("n_sims", 500)),
            **_source_from_config(cfg),
        )


@dataclass(frozen=True)
class BacktestJob(_JobBase):
    """A walk-forward backtest of several model variants on one city.

    Origins run from ``start`` (inclusive) to ``end`` (exclusive) every
    ``step_days``; each (variant, origin) is one task on Dask. The study area
    is the polygon or the cells of the events before ``start`` (the first
    forecast date), the same for every origin.

    Parameters
    ----------
    models : dict
        Variant name → :class:`ModelSpec` (or model name, or ``{name, params}``).
    start, end : timestamp-like or float
        First origin and the end of the origin range (exclusive).
    step_days, horizon_days, train_days : float
        Origin spacing, forecast window and training window (days; see
        :func:`riskgrid.evaluation.walk_forward.backtest`).
    coverage : sequence of float, optional
        Area fractions for the hit-rate metrics (default: the backtest's).
    backtest_kwargs : dict, optional
        Further keyword arguments of :func:`riskgrid.evaluation.walk_forward.backtest`.

    Other parameters are those of :class:`ForecastJob`.
    """

    models: Mapping[str, Any] = field(default_factory=dict)
    start: Any = None
    end: Any = None
    step_days: float = 7.0
    coverage: tuple[float, ...] | None = None
    backtest_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self._validate()
        if not isinstance(self.models, Mapping) or not self.models:
            raise ConfigError(f"job {self.name!r}: models must be a non-empty dict variant -> model spec")
        object.__setattr__(
            self,
            "models",
            {str(k): ModelSpec.coerce(v, f"job {self.name!r} models.{k}") for k, v in self.models.items()},
        )
        if self.start is None or self.end is None:
            raise ConfigError(f"job {self.name!r}: a backtest needs start and end")
        check_days(f"job {self.name!r}: step_days", self.step_days)
        if self.coverage is not None:
            object.__setattr__(self, "coverage", tuple(float(c) for c in self.coverage))

    @classmethod
    def from_config(cls, cfg: dict, name: str | None = None, **backtest_kwargs) -> "BacktestJob":
        """The job of a validated configuration (``[events]``, ``[grid]``, ``[backtest]``, ``[models.*]``).

        ``backtest_kwargs`` override the file's ``n_jobs``, ``progress`` ...
        (keyword arguments of :func:`riskgrid.evaluation.walk_forward.backtest`).
        """
        bt = cfg["backtest"]
        for key in ("start", "end"):
            if bt[key] is None:
                raise ConfigError(f"[backtest] needs '{key}' (a date such as \"2017-01-01\")")
        specs = cfg.get("models") or {}
        if not specs:
            raise ConfigError("no model variant: add at least one [models.<name>] table with name = ... and params = {...}")
        if bt["reference"] is not None and bt["reference"] not in specs:
            raise ConfigError(f"backtest.reference {bt['reference']!r} is not one of the variants {list(specs)}")
        kwargs = {"categories": bt["categories"], "n_jobs": bt["n_jobs"], "on_error": bt["on_error"],
                  "interval_levels": [float(v) for v in bt["interval_levels"]] or None, "n_sims": bt["n_sims"],
                  "seed": bt["seed"]}
        kwargs.update(backtest_kwargs)
        return cls(
            name=name or cfg.get("city", "city"),
            models={v: ModelSpec(s["name"], dict(s.get("params") or {})) for v, s in specs.items()},
            start=bt["start"],
            end=bt["end"],
            step_days=bt["step_days"],
            horizon_days=bt["horizon_days"],
            train_days=bt["train_days"],
            coverage=bt["coverage"],
            backtest_kwargs=kwargs,
            **_source_from_config(cfg),
        )
