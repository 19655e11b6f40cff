"""Batch files (``riskgrid batch JOBS.toml``): ``[[forecast]]``/``[[backtest]]`` job tables, ``[defaults]``, ``[cluster]``.

A job table takes one of three forms, all read by the same schema and checks:

* the sections of a configuration file, inline (the schema of
  :mod:`riskgrid.pipeline.config`: ``events``, ``grid``, ``model`` or
  ``models``, ``forecast``, ``backtest``), plus ``name`` and ``date``; such
  jobs (and jobs naming neither ``source`` nor ``config`` when ``[defaults]``
  holds such sections) take the sections of ``[defaults]`` (a section of
  their own replaces the default one whole)::

      [[forecast]]
      name = "chicago"
      date = "2017-06-01"
      events = { path = "chicago.parquet", category = "category" }
      model = { name = "KDEHotspot", params = { bandwidth_m = 200 } }
      forecast = { train_days = 365, horizon_days = 7 }

* ``config = "city.toml"``: a configuration file of ``riskgrid forecast`` /
  ``riskgrid backtest`` (its other keys override the file's job fields);
* the fields of :class:`~riskgrid.pipeline.specs.ForecastJob` /
  ``BacktestJob`` (``source``, ``columns``, ``model``, ...).

Every relative path is resolved by the one resolver
(:func:`riskgrid.pipeline.config.resolve`) against the batch file's folder.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping

from ..errors import ConfigError, RiskGridError
from ..pipeline.config import load_config, read_toml, resolve, validate_config
from ..pipeline.specs import BacktestJob, ForecastJob, GridSpec
from .engine import check_names

__all__ = ["load_jobs"]

#: sections of a configuration file a job table may hold inline
_CONFIG_SECTIONS = {"events", "grid", "model", "models", "forecast", "backtest"}
_FORECAST_KEYS = {f.name for f in dataclasses.fields(ForecastJob)} | {"config"} | _CONFIG_SECTIONS
_BACKTEST_KEYS = {f.name for f in dataclasses.fields(BacktestJob)} | {"config"} | _CONFIG_SECTIONS
#: keys that make a job table an inline configuration
_INLINE_MARKERS = {"events", "forecast", "backtest"}
_CLUSTER_KEYS = {"scheduler", "n_workers", "threads_per_worker", "memory_limit", "numba_threads", "retries"}


def load_jobs(path: str | os.PathLike) -> tuple[list, dict]:
    """Read a batch file: ``[[forecast]]`` and ``[[backtest]]`` tables, optional ``[defaults]`` and ``[cluster]``.

    Every ``[[forecast]]``/``[[backtest]]`` table holds the fields of
    :class:`ForecastJob`/:class:`BacktestJob` (``grid``, ``model`` and each
    ``models`` entry as inline tables); ``[defaults]`` supplies fields shared
    by all jobs. A job may instead name a ``config`` file of
    ``riskgrid forecast`` (plus ``date``) or ``riskgrid backtest``; the other
    fields of its table override the file's. Relative paths are resolved
    against the batch file's folder (workers must see the same paths).

    Returns
    -------
    (jobs, cluster) : list, dict
        The jobs in file order (forecasts first) and the ``[cluster]`` table
        (``scheduler``, ``n_workers``, ``threads_per_worker``,
        ``memory_limit``, ``numba_threads``, ``retries``).
    """
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

    jobs: list = []
    for kind, cls, allowed in (("forecast", ForecastJob, _FORECAST_KEYS), ("backtest", BacktestJob, _BACKTEST_KEYS)):
        tables = raw.get(kind, [])
        if isinstance(tables, dict):
            tables = [tables]
        for i, table in enumerate(tables):
            if not isinstance(table, Mapping):
                raise ConfigError(f"[[{kind}]] #{i + 1} must be a table, got {type(table).__name__}")
            inline = bool(_INLINE_MARKERS & set(table)) or (
                bool(_INLINE_MARKERS & set(defaults)) and not {"source", "config"} & set(table)
            )
            # an inline job takes the configuration sections of [defaults] (a section of its own replaces
            # the default one whole); a job of the other forms takes the job fields
            spec = {k: v for k, v in defaults.items() if k in allowed and (k in _CONFIG_SECTIONS) == inline}
            spec.update(table)
            where = f"[[{kind}]] #{i + 1}" + (f" ({spec['name']!r})" if "name" in spec else "")
            bad = sorted(set(spec) - allowed)
            if bad:
                raise ConfigError(f"unknown key(s) {bad} in {where}; allowed: {sorted(allowed)}")
            if inline:  # the sections of a configuration file, inline
                jobs.append(_inline_job(kind, spec, where, path))
                continue
            if "source" in spec:  # relative to the batch file, also when it overrides a config's
                spec["source"] = resolve(spec["source"], base)
            if isinstance(spec.get("grid"), Mapping):
                g = dict(spec["grid"])
                if g.get("geojson"):
                    g["geojson"] = resolve(g["geojson"], base)
                try:
                    spec["grid"] = GridSpec(**g)
                except TypeError as exc:
                    raise ConfigError(f"{where}: grid: {exc}") from exc
            try:
                if "config" in spec:  # a configuration file of `riskgrid forecast` / `riskgrid backtest`
                    cfg = load_config(resolve(spec.pop("config"), base))
                    if kind == "forecast":
                        job = ForecastJob.from_config(cfg, date=spec.pop("date", None), name=spec.pop("name", None))
                    else:
                        job = BacktestJob.from_config(cfg, name=spec.pop("name", None))
                    jobs.append(dataclasses.replace(job, **spec) if spec else job)
                    continue
                if "name" not in spec or "source" not in spec:
                    raise ConfigError(f"{where} needs 'name' and 'source'")
                jobs.append(cls(**spec))
            except (TypeError, ValueError) as exc:  # a value of the wrong type or range: name the job
                if isinstance(exc, RiskGridError) and not isinstance(exc, ConfigError):
                    raise
                raise ConfigError(f"{where}: {exc}") from exc
    if not jobs:
        raise ConfigError(f"{path} defines no [[forecast]] or [[backtest]] job")
    check_names(jobs)
    return jobs, cluster



def _inline_job(kind: str, spec: dict, where: str, path: str):
    """A job from configuration sections written in the job table (validated by the configuration schema)."""
    mixed = sorted(set(spec) & {"source", "config", "columns", "categories", "on_invalid"})
    if mixed:
        raise ConfigError(f"{where}: {mixed} belong to the job-field form; with [events]/[forecast]/[backtest] "
                          f"sections write them in those sections (e.g. events.path, events.categories)")
    sections = {k: spec.pop(k) for k in sorted(_CONFIG_SECTIONS & set(spec))}
    name, date = spec.pop("name", None), spec.pop("date", None)
    if name is None:
        raise ConfigError(f"{where} needs a 'name'")
    try:
        cfg = validate_config(sections, path=path)
        if kind == "forecast":
            job = ForecastJob.from_config(cfg, date=date, name=name)
        else:
            if date is not None:
                raise ConfigError("'date' is a forecast key; a backtest has backtest.start and backtest.end")
            job = BacktestJob.from_config(cfg, name=name)
        return dataclasses.replace(job, **spec) if spec else job
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RiskGridError) and not isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from exc
