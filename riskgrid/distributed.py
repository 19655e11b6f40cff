"""Run many forecasts and backtests on a Dask cluster (``dask.distributed``).

Partnerships work with many cities at once, and model comparisons multiply
cities by model variants by backtest origins. This module spreads that work
over a Dask cluster: an embedded :class:`~distributed.LocalCluster` sized to
the machine by default, or any running cluster given by its scheduler address
(``"tcp://host:8786"``) or a :class:`~distributed.Client`.

Design
------
* A job is a small, picklable description (:class:`ForecastJob`,
  :class:`BacktestJob`): an event *source* (a Parquet/CSV path, a
  Hive-partitioned Parquet dataset filtered by ``city``, or an in-memory
  :class:`~riskgrid.EventSet`), a :class:`GridSpec`, model specs
  (:class:`ModelSpec`) and a period. Paths are read **on the worker**; the
  client never loads the data.
* Every task calls the same single-machine functions as a serial run
  (:func:`forecast`, :func:`riskgrid.backtest.backtest` on one origin), so
  results are bit-for-bit those of the serial API; ``client="serial"`` runs
  the very same tasks in the calling process.
* A backtest is split into one task per (job, model variant, origin): a
  city-year of weekly origins is 52 tasks per variant, spread over the
  workers, concatenated back in the serial order.
* Each task catches its own exception and returns it as data, so a failing
  job (missing file, malformed table, model error) never stops the others;
  a task lost with its worker is rescheduled by Dask (``retries``), and a
  result that still cannot be had is reported as an error, never dropped.
* Workers keep a small per-process cache of loaded events and grids, so the
  52 origin tasks of one city read its file once per worker.

Numba threads: each task sets ``numba.set_num_threads(numba_threads)`` for
its own thread (Numba's thread count is per calling thread). The default
local cluster uses ``n_workers × threads_per_worker <= cores`` and gives each
task ``cores // (n_workers × threads_per_worker)`` Numba threads (also
exported as ``NUMBA_NUM_THREADS`` to the worker processes), so the machine is
never oversubscribed.

Examples
--------
>>> from riskgrid.distributed import ForecastJob, ModelSpec, run_forecasts
>>> jobs = [ForecastJob("chicago", "chicago.parquet", date="2017-06-01",
...                     model=ModelSpec("CountHotspot", {"window_days": 90}))]
>>> res = run_forecasts(jobs)                                # doctest: +SKIP
>>> res.raise_if_failed()["chicago"]                         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import os
import sys
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import dask
import numpy as np
import pandas as pd

from . import _runtime
from .errors import ConfigError, EventDataError, RiskGridError
from .events import EventSet, is_parquet, read_table, to_days
from .grid import HexGrid

__all__ = [
    "GridSpec",
    "ModelSpec",
    "ForecastJob",
    "BacktestJob",
    "BatchResult",
    "BatchError",
    "forecast",
    "load_events",
    "run_forecasts",
    "run_backtests",
    "run_jobs",
    "local_client",
    "local_cluster_size",
    "dashboard_address",
    "load_jobs",
    "clear_cache",
]

logger = logging.getLogger(__name__)

#: columns of the per-task timing table (:attr:`BatchResult.tasks`)
TASK_COLUMNS = ["job", "variant", "origin", "status", "worker", "start", "stop", "seconds", "error"]


class BatchError(RiskGridError):
    """One or more jobs of a batch failed (raised by :meth:`BatchResult.raise_if_failed`)."""


# =========================================================================== #
# job specifications
# =========================================================================== #
@dataclass(frozen=True)
class GridSpec:
    """How to build the study-area grid of a job (on the worker).

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

    def build(self, events: EventSet) -> HexGrid:
        """The :class:`~riskgrid.HexGrid` of ``events`` (``riskgrid.config.grid_from_config`` uses this too).

        A missing or malformed ``geojson`` raises :class:`~riskgrid.ConfigError` naming the file.
        """
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
        from .models import make_model

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


_COLUMN_ROLES = ("time", "lat", "lon", "category", "weight")


def _check_columns(columns, categories) -> dict:
    cols = {"time": "timestamp", "lat": "lat", "lon": "lon", "category": None, "weight": None}
    if columns:
        unknown = sorted(set(columns) - set(_COLUMN_ROLES))
        if unknown:
            raise ConfigError(f"unknown column role(s) {unknown} in columns; allowed: {list(_COLUMN_ROLES)}")
        cols.update(columns)
    if categories and cols["category"] is None:
        cols["category"] = "category"  # a filter needs the column holding the type
    return cols


def _check_source(source, name):
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
    columns: Mapping[str, str | None] | None = None
    city: str | None = None
    on_invalid: str = "raise"

    def _validate(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a job name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "source", _check_source(self.source, self.name))
        if isinstance(self.grid, Mapping):
            object.__setattr__(self, "grid", GridSpec(**self.grid))
        if not isinstance(self.grid, GridSpec):
            raise ConfigError(f"job {self.name!r}: grid must be a GridSpec, got {type(self.grid).__name__}")
        if not self.horizon_days > 0:
            raise ConfigError(f"job {self.name!r}: horizon_days must be > 0 (days), got {self.horizon_days}")
        if self.train_days is not None and not self.train_days > 0:
            raise ConfigError(f"job {self.name!r}: train_days must be > 0 (days) or None, got {self.train_days}")
        if isinstance(self.categories, str):
            object.__setattr__(self, "categories", (self.categories,))
        elif self.categories is not None:
            object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "columns", _check_columns(self.columns, self.categories))
        if self.on_invalid not in ("raise", "drop"):
            raise ConfigError(f"job {self.name!r}: on_invalid must be 'raise' or 'drop', got {self.on_invalid!r}")

    def _data_key(self) -> tuple:
        """What identifies the loaded events + grid of this job (the worker cache key)."""
        src = self.source if isinstance(self.source, str) else ("EventSet", id(self.source))
        cols = tuple(sorted((k, v) for k, v in self.columns.items() if v is not None))
        return (src, self.city, cols, self.categories, self.on_invalid, self.grid)


@dataclass(frozen=True)
class ForecastJob(_JobBase):
    """One forecast: fit a model on a city's history and predict a window.

    Parameters
    ----------
    name : str
        Unique name of the job (keys of :attr:`BatchResult.results`).
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
        Study area (built from the job's events after the category filter).
    categories : sequence of str, optional
        Keep only these event types.
    columns : dict, optional
        Column names by role: ``time``, ``lat``, ``lon``, ``category``,
        ``weight`` (defaults ``timestamp``, ``lat``, ``lon``, none, none).
    city : str, optional
        Keep only rows whose ``city`` column/partition equals this value
        (pyarrow ``filters=[("city", "=", city)]``).
    on_invalid : {"raise", "drop"}
        See :meth:`riskgrid.EventSet.from_frame`.
    """

    model: Any = "CountHotspot"
    date: Any = None

    def __post_init__(self):
        self._validate()
        object.__setattr__(self, "model", ModelSpec.coerce(self.model, f"job {self.name!r} model"))

    @classmethod
    def from_config(cls, cfg: dict, date=None, name: str | None = None) -> "ForecastJob":
        """A job from a validated ``riskgrid.config`` mapping (``[events]``, ``[grid]``, ``[model]``, ``[forecast]``)."""
        ev, g, fc = cfg["events"], cfg["grid"], cfg["forecast"]
        if cfg.get("model") is None:
            raise ConfigError("the configuration has no [model] section")
        if ev.get("path") is not None:
            source = ev["path"]
        else:
            from .config import events_from_config

            source = events_from_config(cfg)
        return cls(
            name=name or cfg.get("city", "city"),
            source=source,
            model=ModelSpec(cfg["model"]["name"], dict(cfg["model"].get("params") or {})),
            date=date,
            horizon_days=fc["horizon_days"],
            train_days=fc["train_days"],
            grid=GridSpec(g["resolution"], g["buffer_rings"], g.get("geojson")),
            categories=ev.get("categories") if not isinstance(source, EventSet) else None,
            columns={k: ev[k] for k in _COLUMN_ROLES},
            on_invalid=ev["on_invalid"],
        )


@dataclass(frozen=True)
class BacktestJob(_JobBase):
    """A walk-forward backtest of several model variants on one city.

    Origins run from ``start`` (inclusive) to ``end`` (exclusive) every
    ``step_days``; each (variant, origin) is one task. The result is the
    DataFrame :func:`riskgrid.backtest.backtest` returns for the same
    arguments (rows in the same order).

    Parameters
    ----------
    models : dict
        Variant name → :class:`ModelSpec` (or model name, or ``{name, params}``).
    start, end : timestamp-like or float
        First origin and the end of the origin range (exclusive).
    step_days, horizon_days, train_days : float
        Origin spacing, forecast window and training window (days; see
        :func:`riskgrid.backtest.backtest`).
    coverage : sequence of float, optional
        Area fractions for the hit-rate metrics (default: the backtest's).
    backtest_kwargs : dict, optional
        Further keyword arguments of :func:`riskgrid.backtest.backtest`.

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
        if not self.step_days > 0:
            raise ConfigError(f"job {self.name!r}: step_days must be > 0 (days), got {self.step_days}")
        if self.coverage is not None:
            object.__setattr__(self, "coverage", tuple(float(c) for c in self.coverage))


# =========================================================================== #
# loading (runs on the worker)
# =========================================================================== #
_CACHE_SIZE = 4
_cache: "OrderedDict[tuple, tuple]" = OrderedDict()  # key -> (events, grid, pinned source)
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}


def clear_cache() -> None:
    """Forget the events and grids kept by this process (workers keep the last few cities)."""
    with _cache_lock:
        _cache.clear()
        _key_locks.clear()


def load_events(
    source,
    *,
    columns: Mapping[str, str | None] | None = None,
    city: str | None = None,
    categories: Sequence[str] | None = None,
    on_invalid: str = "raise",
) -> EventSet:
    """Read and validate the events of one job (what a worker does first).

    Only the columns named in ``columns`` are read; a Parquet dataset folder
    is read as Hive-partitioned and filtered with ``city`` (pyarrow filters,
    so other cities' files are skipped).

    Parameters
    ----------
    source : str or EventSet
        Parquet file, Parquet dataset folder, CSV file or an EventSet.
    columns : dict, optional
        Column names by role (``time``, ``lat``, ``lon``, ``category``, ``weight``).
    city : str, optional
        Value of the ``city`` column/partition to keep.
    categories : sequence of str, optional
        Event types to keep.
    on_invalid : {"raise", "drop"}
        See :meth:`riskgrid.EventSet.from_frame`.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    EventDataError
        Unreadable file, missing columns, no rows for ``city``, invalid rows.
    """
    cols = _check_columns(columns, categories)
    if isinstance(source, EventSet):
        events = source
    else:
        path = os.fspath(source)
        what = "event source"
        if "://" not in path and not os.path.exists(path):
            raise FileNotFoundError(f"{what} not found: {path}")
        if is_parquet(path):  # check the columns in the schema, then read only those (and the city's files)
            import pyarrow.dataset as ds

            try:
                names = list(ds.dataset(path, format="parquet", partitioning="hive").schema.names)
            except Exception as exc:  # corrupt footers and the like
                raise EventDataError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from exc
            missing = [f"{r}={cols[r]!r}" for r in _COLUMN_ROLES if cols[r] is not None and cols[r] not in names]
            if city is not None and "city" not in names:
                missing.append("city (needed by the city filter)")
            if missing:
                raise EventDataError(f"column(s) not found in {path}: {', '.join(missing)}; the table has columns {names}")
            want = [c for c in (cols[r] for r in _COLUMN_ROLES) if c is not None]
            df = read_table(path, columns=want, filters=[("city", "=", city)] if city is not None else None, what=what)
        else:
            df = read_table(path, what=what)
            if city is not None:
                if "city" not in df.columns:
                    raise EventDataError(f"no 'city' column in {path} (needed by the city filter)")
                df = df.loc[df["city"].astype(str) == str(city)]
        if city is not None and len(df) == 0:
            raise EventDataError(f"no event for city={city!r} in {path}")
        events = EventSet.from_frame(
            df,
            time=cols["time"],
            lat=cols["lat"],
            lon=cols["lon"],
            category=cols["category"],
            weight=cols["weight"],
            on_invalid=on_invalid,
        )
        events.source = path
    if categories:
        events = events.select(list(categories))
    return events


def _job_data(job: _JobBase, source=None) -> tuple[EventSet, HexGrid]:
    """Events and grid of a job, from the per-process cache when possible."""
    src = job.source if source is None else source
    key = job._data_key()
    if isinstance(src, str) and "://" not in src and os.path.exists(src):
        st = os.stat(src)
        key = key + (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key][:2]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # one reader per key; other threads wait and reuse
        with _cache_lock:
            if key in _cache:
                return _cache[key][:2]
        events = load_events(src, columns=job.columns, city=job.city, categories=job.categories, on_invalid=job.on_invalid)
        grid = job.grid.build(events)
        with _cache_lock:
            # an in-memory source is keyed by id(): pin it so that the id cannot be reused
            _cache[key] = (events, grid, src if isinstance(src, EventSet) else None)
            while len(_cache) > _CACHE_SIZE:
                old, _ = _cache.popitem(last=False)
                _key_locks.pop(old, None)
        return events, grid


# =========================================================================== #
# the single-machine work of one task
# =========================================================================== #
def _default_date(events: EventSet) -> float:
    return float(math.floor(events.t[-1]) + 1.0)


def forecast(job: ForecastJob, events: EventSet | None = None, grid: HexGrid | None = None):
    """Run one :class:`ForecastJob` here (the serial function every forecast task calls).

    Reads the events (unless given), builds the grid, builds the model with
    :func:`riskgrid.models.make_model`, fits it on
    ``[date - train_days, date)`` and predicts ``[date, date + horizon_days)``.

    Returns
    -------
    xarray.DataArray
        The model's ``risk`` output (expected events per cell in the window),
        with ``job`` and ``city`` attributes added.
    """
    if events is None or grid is None:
        events, grid = _job_data(job)
    date = _default_date(events) if job.date is None else events.to_days(job.date)
    train = events if job.train_days is None else events.between(date - float(job.train_days), None)
    model = job.model.build()
    model.fit(train, grid, end=date)
    risk = model.predict(date, job.horizon_days)
    risk.attrs["job"] = job.name
    if job.city is not None:
        risk.attrs["city"] = job.city
    return risk


def _job_origins(job: BacktestJob, events: EventSet) -> np.ndarray:
    """Backtest origins (days) of a job, made exactly as :func:`riskgrid.backtest.backtest` makes them."""
    from .backtest import _origins

    return _origins(events, job.start, job.end, job.step_days)


def backtest_origin(job: BacktestJob, variant: str, origin: float, events=None, grid=None) -> pd.DataFrame:
    """One (variant, origin) of a :class:`BacktestJob` here (the function every backtest task calls).

    Calls :func:`riskgrid.backtest.backtest` with the single origin ``origin``
    (``end`` half a step later), so its rows are exactly those of the full
    serial backtest for that origin.
    """
    from .backtest import backtest  # (riskgrid.backtest is also the function's name in the package)

    if events is None or grid is None:
        events, grid = _job_data(job)
    kwargs = dict(job.backtest_kwargs)
    if job.coverage is not None:
        kwargs["coverage"] = job.coverage
    return backtest(
        {variant: job.models[variant].build()},
        events,
        grid,
        start=float(origin),
        end=float(origin) + 0.5 * float(job.step_days),
        step_days=job.step_days,
        horizon_days=job.horizon_days,
        train_days=job.train_days,
        progress=False,
        **kwargs,
    )


# =========================================================================== #
# the task wrapper: fault isolation, Numba threads, timings
# =========================================================================== #
def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return f"local-{os.getpid()}"


def _run_task(kind: str, job, variant, origin, numba_threads, source=None) -> dict:
    """Run one task; never raises: returns ``{"ok", "value", "error", ...}``."""
    t0 = time.time()
    out = {"ok": False, "value": None, "error": None, "trace": None, "worker": _worker_name(), "start": t0}
    try:
        with _runtime.numba_threads(numba_threads):
            events, grid = _job_data(job, source)
            if kind == "forecast":
                out["value"] = forecast(job, events, grid)
            elif kind == "origins":
                out["value"] = _job_origins(job, events)
            else:
                out["value"] = backtest_origin(job, variant, origin, events, grid)
        out["ok"] = True
    except Exception as exc:  # isolate the job: report, do not stop the batch
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["trace"] = traceback.format_exc()
    out["stop"] = time.time()
    return out


# =========================================================================== #
# results
# =========================================================================== #
@dataclass
class BatchResult:
    """Outcome of a batch: results and errors by job name, in job order.

    Attributes
    ----------
    results : dict
        Job name → ``xarray.DataArray`` (forecast) or ``pandas.DataFrame``
        (backtest), for the jobs that succeeded, in job order.
    errors : dict
        Job name → ``"ExceptionType: message"`` for every job that failed
        (including results lost with a worker), in job order.
    names : list of str
        Every job's name, in job order.
    tasks : pandas.DataFrame
        One row per task: ``job``, ``variant``, ``origin`` (days), ``status``,
        ``worker``, ``start``/``stop`` (Unix seconds), ``seconds``, ``error``.
    wall_seconds : float
        Wall time of the whole batch.
    dashboard : str or None
        Address of the Dask dashboard, when one was running.
    """

    results: dict
    errors: dict
    names: list
    tasks: pd.DataFrame
    wall_seconds: float = 0.0
    dashboard: str | None = None
    tracebacks: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when every job succeeded."""
        return not self.errors

    def __getitem__(self, name: str):
        if name in self.results:
            return self.results[name]
        if name in self.errors:
            raise BatchError(f"job {name!r} failed: {self.errors[name]}")
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.names)

    def raise_if_failed(self) -> dict:
        """Return :attr:`results`, or raise :class:`BatchError` listing every failed job."""
        if self.errors:
            lines = [f"{len(self.errors)} of {len(self.names)} job(s) failed:"]
            lines += [f"  {line}" for line in self.failure_lines()]
            raise BatchError("\n".join(lines))
        return self.results

    def failure_lines(self) -> list[str]:
        """One line per failed job: ``name: ExceptionType: first line of the message``."""
        return [f"{name}: {_first_line(msg)}" for name, msg in self.errors.items()]

    def concat(self) -> pd.DataFrame:
        """Backtest results of every successful job in one frame with a leading ``job`` column."""
        frames = [df.assign(job=name) for name, df in self.results.items() if isinstance(df, pd.DataFrame)]
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        return out[["job"] + [c for c in out.columns if c != "job"]]

    def time_by(self, by: str = "job") -> pd.DataFrame:
        """Task seconds summed by ``job``, ``variant`` or ``worker`` (where the time goes)."""
        t = self.tasks
        if t.empty:
            return pd.DataFrame(columns=["tasks", "seconds", "mean_seconds"])
        g = t.groupby(by, sort=False)["seconds"]
        return pd.DataFrame({"tasks": g.size(), "seconds": g.sum(), "mean_seconds": g.mean()})

    def __repr__(self) -> str:
        return (
            f"BatchResult({len(self.results)} ok, {len(self.errors)} failed of {len(self.names)} jobs, "
            f"{self.wall_seconds:.1f} s)"
        )


def _first_line(msg: str) -> str:
    return str(msg).strip().splitlines()[0] if str(msg).strip() else str(msg)


# =========================================================================== #
# clusters
# =========================================================================== #
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def local_cluster_size(
    n_workers: int | None = None, threads_per_worker: int | None = None, numba_threads: int | None = None
) -> tuple[int, int, int]:
    """``(n_workers, threads_per_worker, numba_threads)`` for a machine-sized LocalCluster.

    Defaults: one thread per worker, one worker per core, and
    ``cores // (n_workers × threads_per_worker)`` Numba threads per task (at
    least 1) so that workers × threads × Numba threads never exceeds the cores.
    """
    cores = _cores()
    tpw = int(threads_per_worker or 1)
    nw = int(n_workers or max(1, cores // tpw))
    if nw < 1 or tpw < 1:
        raise ValueError(f"n_workers and threads_per_worker must be >= 1, got {nw}, {tpw}")
    if nw * tpw > cores:
        logger.warning("%d workers x %d threads exceed the %d cores of this machine", nw, tpw, cores)
    nt = int(numba_threads or max(1, cores // (nw * tpw)))
    return nw, tpw, nt


def dashboard_address(client) -> str | None:
    try:
        if "dashboard" in client.scheduler_info().get("services", {}):
            return client.dashboard_link
    except Exception:  # pragma: no cover - informational only
        pass
    return None


@contextlib.contextmanager
def local_client(
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | float | None = "auto",
    numba_threads: int | None = None,
    **cluster_kwargs,
):
    """Start a machine-sized ``LocalCluster`` (processes) and yield a ``Client``; close both on exit.

    Each worker process gets ``NUMBA_NUM_THREADS=numba_threads`` in its
    environment (see :func:`local_cluster_size` for the defaults), and the
    client carries the value as ``client.riskgrid_numba_threads`` so that
    :func:`run_jobs` sets it in every task. Extra keyword arguments go to
    :class:`distributed.LocalCluster` (e.g. ``dashboard_address``).
    """
    from distributed import Client, LocalCluster

    nw, tpw, nt = local_cluster_size(n_workers, threads_per_worker, numba_threads)
    kwargs = dict(
        n_workers=nw,
        threads_per_worker=tpw,
        processes=True,
        memory_limit=memory_limit,
        env={"NUMBA_NUM_THREADS": str(nt)},
        silence_logs=logging.WARNING,
        dashboard_address=":8787",
    )
    user_env = cluster_kwargs.pop("env", None) or {}
    kwargs.update(cluster_kwargs)
    kwargs["env"] = {**kwargs["env"], **user_env}
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 so that they
    # hand memory back to the OS eagerly. Setting it also freezes glibc's mmap
    # threshold at 128 KiB, so every large temporary numpy array is mmapped and
    # page-faulted afresh: measured here, every model fit ran ~23 % slower in a
    # worker than in a plain process. riskgrid's LocalCluster leaves glibc's
    # adaptive defaults alone (unless the user's dask config sets another value).
    pre = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    if str(pre.get("MALLOC_TRIM_THRESHOLD_", "")) == "65536":
        del pre["MALLOC_TRIM_THRESHOLD_"]
    with dask.config.set({"distributed.nanny.pre-spawn-environ": pre}), LocalCluster(**kwargs) as cluster, Client(cluster, set_as_default=False) as client:
        client.riskgrid_numba_threads = nt
        link = dashboard_address(client)
        logger.info(
            "LocalCluster %s: %d workers x %d threads, %d Numba threads per task; dashboard %s",
            cluster.scheduler_address, nw, tpw, nt, link or "not available (install bokeh>=3.1)",
        )
        yield client


@contextlib.contextmanager
def _client_for(client, cluster_kwargs: dict):
    from distributed import Client

    if client is None:
        with local_client(**cluster_kwargs) as c:
            yield c
    elif isinstance(client, str):
        with Client(client, set_as_default=False) as c:
            logger.info("connected to Dask scheduler %s; dashboard %s", client, dashboard_address(c) or "not available")
            yield c
    else:
        yield client  # a user's Client: never closed here


# =========================================================================== #
# running
# =========================================================================== #
def _check_names(jobs) -> None:
    names = [j.name for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"job names must be unique; repeated: {dup}")


def _task_row(job, variant, origin, out) -> dict:
    return {
        "job": job.name,
        "variant": variant,
        "origin": origin,
        "status": "ok" if out.get("ok") else "error",
        "worker": out.get("worker"),
        "start": out.get("start"),
        "stop": out.get("stop"),
        "seconds": (out["stop"] - out["start"]) if out.get("stop") is not None else np.nan,
        "error": out.get("error"),
    }


class _Engine:
    """Submit tasks, gather them as they finish, turn anything missing into an error.

    ``expand(spec, outcome)`` may return follow-up specs (a backtest's origin
    tasks once its origins are known); they are submitted at once.
    """

    def __init__(self, client, retries: int, numba_threads, progress: bool, desc: str):
        self.client = client
        self.retries = int(retries)
        self.numba_threads = numba_threads
        self.progress = progress
        self.desc = desc
        self.run_id = uuid.uuid4().hex[:8]
        self.n_submitted = 0
        self.scattered: dict[int, tuple] = {}

    def _wire(self, job):
        """EventSet sources are scattered once per run: the task gets a light job and the data's future."""
        if not isinstance(job.source, EventSet):
            return job, None
        key = id(job.source)
        if key not in self.scattered:
            fut = self.client.scatter(job.source, broadcast=False, hash=False)
            self.scattered[key] = (f"scattered:{self.run_id}:{len(self.scattered)}", fut, job.source)
        token, fut, _ = self.scattered[key]
        light = copy.copy(job)
        object.__setattr__(light, "source", token)
        return light, fut

    def _submit(self, spec):
        kind, job, variant, origin = spec
        light, source = self._wire(job)
        label = "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in job.name)[:40]
        self.n_submitted += 1
        return self.client.submit(
            _run_task,
            kind,
            light,
            variant,
            origin,
            self.numba_threads,
            source,
            key=f"riskgrid-{kind}-{label}-{self.run_id}-{self.n_submitted}",
            retries=self.retries,
            pure=False,
        )

    def run(self, specs: list, expand) -> list[tuple]:
        """Run ``specs`` (``(kind, job, variant, origin)``) and their expansions; ``[(spec, outcome)]``."""
        from tqdm.auto import tqdm

        done: list[tuple] = []
        bar = tqdm(total=len(specs), desc=self.desc, unit="task", disable=not self.progress, file=sys.stderr)

        def follow(spec, out):
            new = list(expand(spec, out))
            if new:
                bar.total += len(new)
                bar.refresh()
            return new

        try:
            if self.client == "serial":
                queue = list(specs)
                while queue:
                    spec = queue.pop(0)
                    out = _run_task(spec[0], spec[1], spec[2], spec[3], self.numba_threads)
                    done.append((spec, out))
                    bar.update()
                    queue.extend(follow(spec, out))
                return done
            from distributed import as_completed

            futures = {}
            first = []
            for spec in specs:
                fut = self._submit(spec)
                futures[fut.key] = spec
                first.append(fut)
            ac = as_completed(first, with_results=False, raise_errors=False, loop=self.client.loop)
            for fut in ac:
                spec = futures.pop(fut.key)
                try:
                    out = fut.result()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # lost beyond retries (KilledWorker), cancelled, ...
                    out = _lost(f"{type(exc).__name__}: {exc}")
                    logger.warning("task %s failed on the cluster: %s", fut.key, out["error"])
                fut.release()
                done.append((spec, out))
                bar.update()
                for new in follow(spec, out):
                    f2 = self._submit(new)
                    futures[f2.key] = new
                    ac.add(f2)
            for spec in futures.values():  # never silently missing
                done.append((spec, _lost("ResultLost: the task's result never came back")))
        finally:
            bar.close()
            for _, fut, _ in self.scattered.values():
                fut.release()
        return done


def _lost(message: str) -> dict:
    return {"ok": False, "value": None, "error": message, "trace": None, "worker": None, "start": None, "stop": None}


def run_jobs(
    jobs: Iterable[ForecastJob | BacktestJob],
    client=None,
    *,
    retries: int = 2,
    progress: bool | None = None,
    numba_threads: int | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | float | None = "auto",
) -> BatchResult:
    """Run forecasts and backtests together on a Dask cluster (or serially).

    Parameters
    ----------
    jobs : iterable of ForecastJob or BacktestJob
        Names must be unique.
    client : None, str, distributed.Client or "serial"
        ``None``: start a machine-sized LocalCluster (see :func:`local_client`;
        ``n_workers``, ``threads_per_worker``, ``memory_limit``,
        ``numba_threads`` size it) and close it afterwards. A string: the
        address of a running scheduler (``"tcp://host:8786"``). A Client: use
        it (it is left open). ``"serial"``: run the same tasks one after the
        other in this process.
    retries : int
        Dask retries of a task whose worker died or that raised outside the
        job's own error handling.
    progress : bool, optional
        tqdm progress bar on stderr (default: on unless ``RISKGRID_QUIET=1``).
    numba_threads : int, optional
        Numba threads per task (default: the local cluster's share of the
        cores; unchanged on a user's cluster).

    Returns
    -------
    BatchResult
        Results and errors by job name, in job order.
    """
    jobs = list(jobs)
    for j in jobs:
        if not isinstance(j, (ForecastJob, BacktestJob)):
            raise TypeError(f"jobs must be ForecastJob or BacktestJob, got {type(j).__name__}")
    _check_names(jobs)
    t0 = time.perf_counter()
    cluster_kwargs = dict(
        n_workers=n_workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit, numba_threads=numba_threads
    )
    show = _runtime.progress_enabled(progress)
    ctx = contextlib.nullcontext("serial") if client == "serial" else _client_for(client, cluster_kwargs)
    with ctx as c:
        nt = numba_threads if numba_threads is not None else getattr(c, "riskgrid_numba_threads", None)
        dash = None if c == "serial" else dashboard_address(c)
        eng = _Engine(c, retries, nt, show, "riskgrid batch")
        results, errors, traces, rows = _execute(eng, jobs)
    tasks = pd.DataFrame(rows, columns=TASK_COLUMNS)
    return BatchResult(
        results=results,
        errors=errors,
        names=[j.name for j in jobs],
        tasks=tasks,
        wall_seconds=time.perf_counter() - t0,
        dashboard=dash,
        tracebacks=traces,
    )


def _execute(eng: _Engine, jobs: list) -> tuple[dict, dict, dict, list]:
    # backtests first: one small task per job finds its origins (and fails fast on a bad source);
    # its (variant, origin) tasks are submitted as soon as it returns
    specs = [("origins", j, None, None) for j in jobs if isinstance(j, BacktestJob)]
    specs += [("forecast", j, None, None) for j in jobs if isinstance(j, ForecastJob)]
    planned: dict[str, list] = {}

    def expand(spec, out):
        kind, j, _, _ = spec
        if kind != "origins" or not out["ok"]:
            return []
        new = [("origin", j, v, float(t)) for t in out["value"] for v in j.models]  # serial row order
        planned[j.name] = new
        return new

    done = eng.run(specs, expand)
    outcome = {(s[0], s[1].name, s[2], s[3]): o for s, o in done}
    results: dict = {}
    errors: dict = {}
    traces: dict = {}
    rows = [_task_row(s[1], s[2], s[3], o) for s, o in done]
    for j in jobs:
        if isinstance(j, ForecastJob):
            o = outcome[("forecast", j.name, None, None)]
            if o["ok"]:
                results[j.name] = o["value"]
            else:
                errors[j.name], traces[j.name] = o["error"], o.get("trace")
            continue
        o = outcome[("origins", j.name, None, None)]
        if not o["ok"]:
            errors[j.name], traces[j.name] = o["error"], o.get("trace")
            continue
        mine = planned.get(j.name, [])
        if not mine:
            errors[j.name] = f"ValueError: no backtest origin in [{j.start}, {j.end}) with step_days={j.step_days}"
            continue
        outs = [outcome[(s[0], j.name, s[2], s[3])] for s in mine]
        bad = [(s, o) for s, o in zip(mine, outs) if not o["ok"]]
        if bad:
            (_, _, v, t), o = bad[0]
            errors[j.name] = f"{o['error']} (variant {v!r}, origin {_fmt_day(t)}; {len(bad)} of {len(mine)} tasks failed)"
            traces[j.name] = o.get("trace")
        else:
            results[j.name] = _merge_backtest(j, [o["value"] for o in outs])
    return results, errors, traces, rows


def _fmt_day(t) -> str:
    try:
        return str((EventSet.origin + pd.to_timedelta(float(t), unit="D")).round("s"))
    except Exception:  # pragma: no cover
        return str(t)


def _merge_backtest(job: BacktestJob, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate the per-(origin, variant) frames (origin-major, like the serial backtest) and its ``attrs``."""
    out = pd.concat(frames, ignore_index=True)
    attrs = dict(frames[0].attrs.get("backtest", {}))
    if attrs:
        attrs["models"] = {}
        for f in frames:
            attrs["models"].update(f.attrs["backtest"]["models"])
        attrs["end_days"] = to_days(job.end)
    out.attrs = {"backtest": attrs} if attrs else {}
    return out


# =========================================================================== #
# public entry points
# =========================================================================== #
def run_forecasts(jobs: Iterable[ForecastJob], client=None, **kwargs) -> BatchResult:
    """Run :class:`ForecastJob` s on Dask (one task per job); see :func:`run_jobs` for the arguments.

    ``result.results[name]`` is the ``risk`` DataArray :func:`forecast` gives
    for the job in a single process, bit for bit.
    """
    jobs = list(jobs)
    bad = [type(j).__name__ for j in jobs if not isinstance(j, ForecastJob)]
    if bad:
        raise TypeError(f"run_forecasts takes ForecastJob objects, got {sorted(set(bad))}")
    return run_jobs(jobs, client, **kwargs)


def run_backtests(jobs: Iterable[BacktestJob], client=None, **kwargs) -> BatchResult:
    """Run :class:`BacktestJob` s on Dask, one task per (job, variant, origin); see :func:`run_jobs`.

    ``result.results[name]`` equals :func:`riskgrid.backtest.backtest` on the
    job's events and grid (timing columns aside), rows in the same order.
    """
    jobs = list(jobs)
    bad = [type(j).__name__ for j in jobs if not isinstance(j, BacktestJob)]
    if bad:
        raise TypeError(f"run_backtests takes BacktestJob objects, got {sorted(set(bad))}")
    return run_jobs(jobs, client, **kwargs)


# =========================================================================== #
# job files (riskgrid batch JOBS.toml)
# =========================================================================== #
_FORECAST_KEYS = {f.name for f in dataclasses.fields(ForecastJob)} | {"config"}
_BACKTEST_KEYS = {f.name for f in dataclasses.fields(BacktestJob)} | {"config"}
_CLUSTER_KEYS = {"scheduler", "n_workers", "threads_per_worker", "memory_limit", "numba_threads", "retries"}


def load_jobs(path: str | os.PathLike) -> tuple[list, dict]:
    """Read a batch file: ``[[forecast]]`` and ``[[backtest]]`` tables, optional ``[defaults]`` and ``[cluster]``.

    Every ``[[forecast]]``/``[[backtest]]`` table holds the fields of
    :class:`ForecastJob`/:class:`BacktestJob` (``grid``, ``model`` and each
    ``models`` entry as inline tables); ``[defaults]`` supplies fields shared
    by all jobs. A ``[[forecast]]`` may instead name a ``config`` file of
    ``riskgrid forecast`` (plus ``date``). Relative paths are resolved
    against the batch file's folder (workers must see the same paths).

    Returns
    -------
    (jobs, cluster) : list, dict
        The jobs in file order (forecasts first) and the ``[cluster]`` table
        (``scheduler``, ``n_workers``, ``threads_per_worker``,
        ``memory_limit``, ``numba_threads``, ``retries``).
    """
    from .config import read_toml

    path = os.fspath(path)
    raw = read_toml(path, "batch file")
    base = os.path.dirname(os.path.abspath(path))
    unknown = sorted(set(raw) - {"forecast", "backtest", "defaults", "cluster"})
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown} in {path}; allowed: cluster, defaults, forecast, backtest")
    for section in ("cluster", "defaults"):
        if not isinstance(raw.get(section, {}), Mapping):
            raise ConfigError(f"[{section}] must be a table, got {type(raw[section]).__name__}")
    cluster = dict(raw.get("cluster", {}))
    bad = sorted(set(cluster) - _CLUSTER_KEYS)
    if bad:
        raise ConfigError(f"unknown key(s) {bad} in [cluster]; allowed: {sorted(_CLUSTER_KEYS)}")
    for key in ("n_workers", "threads_per_worker", "numba_threads", "retries"):
        v = cluster.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "retries" else 1)):
            raise ConfigError(f"[cluster] {key} must be an integer >= {0 if key == 'retries' else 1}, got {v!r}")
    defaults = dict(raw.get("defaults", {}))
    bad = sorted(set(defaults) - _FORECAST_KEYS - _BACKTEST_KEYS)
    if bad:
        raise ConfigError(f"unknown key(s) {bad} in [defaults]; allowed: {sorted(_FORECAST_KEYS | _BACKTEST_KEYS)}")

    def resolve(p):
        if p is None or "://" in str(p):
            return p
        p = os.path.expanduser(str(p))
        return os.path.normpath(p if os.path.isabs(p) else os.path.join(base, p))

    jobs: list = []
    for kind, cls, allowed in (("forecast", ForecastJob, _FORECAST_KEYS), ("backtest", BacktestJob, _BACKTEST_KEYS)):
        tables = raw.get(kind, [])
        if isinstance(tables, dict):
            tables = [tables]
        for i, table in enumerate(tables):
            if not isinstance(table, Mapping):
                raise ConfigError(f"[[{kind}]] #{i + 1} must be a table, got {type(table).__name__}")
            spec = {k: v for k, v in defaults.items() if k in allowed}
            spec.update(table)
            where = f"[[{kind}]] #{i + 1}" + (f" ({spec['name']!r})" if "name" in spec else "")
            bad = sorted(set(spec) - allowed)
            if bad:
                raise ConfigError(f"unknown key(s) {bad} in {where}; allowed: {sorted(allowed)}")
            if "source" in spec:  # relative to the batch file, also when it overrides a config's
                spec["source"] = resolve(spec["source"])
            if isinstance(spec.get("grid"), Mapping):
                g = dict(spec["grid"])
                if g.get("geojson"):
                    g["geojson"] = resolve(g["geojson"])
                try:
                    spec["grid"] = GridSpec(**g)
                except TypeError as exc:
                    raise ConfigError(f"{where}: grid: {exc}") from exc
            try:
                if "config" in spec:
                    if kind != "forecast":
                        raise ConfigError(f"{where}: 'config' is only supported for [[forecast]] jobs")
                    from .config import load_config

                    cfg = load_config(resolve(spec.pop("config")))
                    job = ForecastJob.from_config(cfg, date=spec.pop("date", None), name=spec.pop("name", None))
                    jobs.append(dataclasses.replace(job, **spec) if spec else job)
                    continue
                if "name" not in spec or "source" not in spec:
                    raise ConfigError(f"{where} needs 'name' and 'source'")
                jobs.append(cls(**spec))
            except (TypeError, ValueError) as exc:  # a value of the wrong type or range
                if isinstance(exc, RiskGridError):
                    raise
                raise ConfigError(f"{where}: {exc}") from exc
    if not jobs:
        raise ConfigError(f"{path} defines no [[forecast]] or [[backtest]] job")
    _check_names(jobs)
    return jobs, cluster
