"""Run many forecasts and backtests on a Dask cluster (``dask.distributed``): scheduling only.

Partnerships work with many cities at once, and model comparisons multiply
cities by model variants by backtest origins. This package spreads that work
over a Dask cluster: an embedded :class:`~distributed.LocalCluster` sized to
the machine by default, or any running cluster given by its scheduler address
(``"tcp://host:8786"``) or a :class:`~distributed.Client`.

=============  ===============================================================
engine.py      tasks: the pipeline's ``forecast`` / ``backtest_job`` per job,
               (variant, origin); fault isolation, retries, lost results
cache.py       per-worker cache of events and grids
cluster.py     LocalCluster sizing (workers x threads x Numba threads),
               scheduler addresses
results.py     :class:`BatchResult`
batchfile.py   ``riskgrid batch`` job files
=============  ===============================================================

Jobs are the pipeline's specs (:class:`ForecastJob`, :class:`BacktestJob`,
re-exported here); paths are read **on the worker** by the pipeline's one
event source, and every task calls the very function a serial run calls, so
results are bit-for-bit those of :func:`riskgrid.run_forecast` /
``riskgrid forecast`` for the same job and date.

Examples
--------
>>> from riskgrid.distributed import ForecastJob, ModelSpec, run_forecasts
>>> jobs = [ForecastJob("chicago", "chicago.parquet", date="2017-06-01",
...                     model=ModelSpec("CountHotspot", {"window_days": 90}))]
>>> res = run_forecasts(jobs)                                # doctest: +SKIP
>>> res.raise_if_failed()["chicago"]                         # doctest: +SKIP
"""

from __future__ import annotations

from ..errors import BatchError
from ..pipeline.backtest import backtest_job
from ..pipeline.forecasting import forecast
from ..pipeline.source import load_events
from ..pipeline.specs import BacktestJob, ForecastJob, GridSpec, ModelSpec
from .batchfile import load_jobs
from .cache import clear_cache
from .cluster import dashboard_address, local_client, local_cluster_size
from .engine import run_backtests, run_forecasts, run_jobs
from .results import BatchResult

__all__ = [
    "GridSpec",
    "ModelSpec",
    "ForecastJob",
    "BacktestJob",
    "BatchResult",
    "BatchError",
    "forecast",
    "backtest_job",
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
