"""The application pipeline: one path from a job description to published products.

==============  ==============================================================
config.py       the one configuration schema (forecast, backtest, batch
                values) and the one path resolver
specs.py        job specifications (ForecastJob, BacktestJob, GridSpec,
                ModelSpec), validated once
source.py       the one event source (``read_events`` underneath) and the
                study-area rule
forecast.py     the one forecast: ``fit_forecast(job)`` / ``forecast(job)``
backtest.py     the one backtest job function, and ``riskgrid backtest``
publish.py      atomic folders and files, manifest, SHA-256 hashes
job.py          the nightly job ``run_forecast`` (forecast + zones +
                products + publish)
==============  ==============================================================

The CLI, :func:`riskgrid.run_forecast`, the backtest command and every Dask
task (:mod:`riskgrid.distributed`) call these functions; nothing above this
layer builds a grid, reads events or fits a model on its own. Heavy
libraries are imported inside the functions that need them, so importing
this package (or reading a bad configuration) stays fast.
"""

from __future__ import annotations

from .config import load_config, validate_config
from .specs import BacktestJob, ForecastJob, GridSpec, ModelSpec

__all__ = [
    "load_config",
    "validate_config",
    "ForecastJob",
    "BacktestJob",
    "GridSpec",
    "ModelSpec",
    "forecast",
    "fit_forecast",
    "backtest_job",
    "load_events",
    "study_area",
    "run_forecast",
]


def __getattr__(name):  # the functions below import numpy/pandas: loaded on first use
    if name in ("forecast", "fit_forecast"):
        from . import forecasting as _m
    elif name == "backtest_job":
        from . import backtest as _m
    elif name in ("load_events", "study_area"):
        from . import source as _m
    elif name == "run_forecast":
        from . import job as _m
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_m, name)
