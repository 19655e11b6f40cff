"""Batch files (``riskgrid batch JOBS.toml``): ``[[forecast]]``/``[[backtest]]`` job tables, ``[defaults]``, ``[cluster]``.

Values are checked by the job specs (:mod:`riskgrid.pipeline.specs`, the
same checks as configuration files) and every relative path by the one
resolver (:func:`riskgrid.pipeline.config.resolve`) against the batch file's
folder. A job may instead name a configuration file (``config = ...``) of
``riskgrid forecast`` / ``riskgrid backtest``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping

from ..errors import ConfigError, RiskGridError
from ..pipeline.config import load_config, read_toml, resolve
from ..pipeline.specs import BacktestJob, ForecastJob, GridSpec
from .engine import check_names

__all__ = ["load_jobs"]

_FORECAST_KEYS = {f.name for f in dataclasses.fields(ForecastJob)} | {"config"}
_BACKTEST_KEYS = {f.name for f in dataclasses.fields(BacktestJob)} | {"config"}
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
            spec = {k: v for k, v in defaults.items() if k in allowed}
            spec.update(table)
            where = f"[[{kind}]] #{i + 1}" + (f" ({spec['name']!r})" if "name" in spec else "")
            bad = sorted(set(spec) - allowed)
            if bad:
                raise ConfigError(f"unknown key(s) {bad} in {where}; allowed: {sorted(allowed)}")
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

