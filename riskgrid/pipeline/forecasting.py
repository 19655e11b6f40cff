"""The one forecast: events → study area → fit on the training window → predict the horizon.

:func:`fit_forecast` is the only place riskgrid turns a job into a forecast.
``riskgrid forecast``, ``riskgrid demo``, :func:`riskgrid.run_forecast`,
:func:`riskgrid.distributed.run_jobs` (serial or on any Dask cluster) and
``riskgrid batch`` all call it, so for one job and date they give the same
grid and bit-for-bit the same risk. A backtest origin runs the same steps
through :func:`riskgrid.evaluation.walk_forward.backtest` on the same window
(checked by tests/pipeline/test_equivalence.py).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

from ..errors import NoEventsError

__all__ = ["Forecast", "fit_forecast", "forecast", "forecast_day", "forecast_interval", "interval_seed"]


@dataclass
class Forecast:
    """A fitted forecast and what it was made from.

    Attributes
    ----------
    risk : xarray.DataArray
        Expected events per cell in ``[date, date + horizon_days)``.
    model : RiskModel
        The fitted model.
    grid : HexGrid
        The study area (see :func:`riskgrid.pipeline.source.study_area`).
    events : EventSet
        Every event the job read (after its filters).
    train : EventSet
        The events of the training window ``[date - train_days, date)``.
    date_days : float
        Forecast start, days since 1970-01-01 in the data's clock.
    """

    risk: Any
    model: Any
    grid: Any
    events: Any
    train: Any
    date_days: float


def forecast_day(job, events) -> float:
    """Start of the job's forecast (days): ``job.date``, or midnight after the last event."""
    if job.date is None:
        return float(math.floor(events.t[-1]) + 1.0)
    return float(events.to_days(job.date))


def _no_step(name):
    return contextlib.nullcontext()


def fit_forecast(job, events=None, grid=None, step=_no_step, study_area_of=None) -> Forecast:
    """Run one :class:`~riskgrid.pipeline.specs.ForecastJob` here.

    Parameters
    ----------
    job : ForecastJob
        What to forecast.
    events : EventSet, optional
        The job's events (default: :func:`riskgrid.pipeline.source.load_job_events`).
    grid : HexGrid, optional
        The job's study area, when the caller has it already.
    study_area_of : callable, optional
        ``study_area_of(date_days) -> HexGrid``: where the study area comes
        from when ``grid`` is not given (the Dask workers pass their cache,
        which applies the same rule); default
        :func:`riskgrid.pipeline.source.study_area` on the job's events.
    step : callable, optional
        ``step(name)`` returns a context manager around each step (the
        nightly job times them with it).

    Raises
    ------
    NoEventsError
        No event in the training window, or none of them inside the grid.
    """
    from .source import load_job_events, study_area

    if events is None:
        with step("read events"):
            events = load_job_events(job)
    date = forecast_day(job, events)
    with step("select window"):
        history = events.between(None, date)
        train = history if job.train_days is None else history.between(date - float(job.train_days), date)
        if len(train) == 0:
            start = "the start of the data" if job.train_days is None else events.to_timestamp(date - float(job.train_days))
            raise NoEventsError(
                f"no events in the training window {_fmt(start)} → {_fmt(events.to_timestamp(date))} "
                f"(the input covers {events.start} → {events.end})"
            )
    if grid is None:
        with step("build grid"):
            grid = study_area(job.grid, events, date, job.target) if study_area_of is None else study_area_of(date)
    with step("fit"):
        from ..models._base import match_horizon

        model = match_horizon(job.model.build(), job.horizon_days)
        model.fit(train, grid, end=date, target=job.target)
    if model.n_events_ == 0:
        raise NoEventsError(f"none of the {len(train)} events of the training window falls inside the grid")
    with step("predict"):
        risk = model.predict(date, job.horizon_days)
    risk.attrs["job"] = job.name
    if job.city is not None:
        risk.attrs["city"] = job.city
    return Forecast(risk=risk, model=model, grid=grid, events=events, train=train, date_days=date)


def interval_seed(job, date_days: float) -> int:
    """Seed of a job's forecast interval: a function of the job's name and the forecast start (days) only.

    The same job and date give the same interval on every entry point and
    rerun; different dates get independent draws.
    """
    import zlib

    return int(zlib.crc32(f"{job.name}|{float(date_days)!r}".encode()))


def forecast_interval(fc: Forecast, job, zones=None):
    """The forecast's interval (``model.predict_interval``) at the job's level, seeded from the job.

    Parameters
    ----------
    fc : Forecast
        From :func:`fit_forecast`.
    job : ForecastJob
        Its ``interval_level`` (``None``: no interval) and ``n_sims``.
    zones : ZoneSet, optional
        Patrol zones: the Dataset then holds ``zone_risk``, ``zone_lo``,
        ``zone_hi``, ``zone_p_any`` (zone ``k`` at position ``k - 1``): the
        interval of each zone's *total* count, from the model (the same
        simulations for simulating models; Poisson of the summed mean for
        the baselines).

    Returns
    -------
    xarray.Dataset or None
        ``risk`` (equal to ``fc.risk`` summed over categories), ``risk_lo``,
        ``risk_hi``, ``p_any`` per cell; ``None`` when the job asks for no
        interval or the model forecasts a score (NearRepeat), not a count.

    Notes
    -----
    Cost: the Poisson interval is closed form (milliseconds). A simulating
    model runs ``n_sims`` forward simulations of the window.
    """
    from ..models._base import COUNT_UNITS

    if job.interval_level is None or str(fc.risk.attrs.get("units", COUNT_UNITS)) != COUNT_UNITS:
        return None
    zone_of_cell = None if zones is None else zones.cell_zone - 1
    ds = fc.model.predict_interval(fc.date_days, job.horizon_days, level=job.interval_level, n_sims=job.n_sims,
                                   seed=interval_seed(job, fc.date_days), zones=zone_of_cell)
    return ds


def _fmt(ts) -> str:
    return f"{ts:%Y-%m-%d %H:%M}" if hasattr(ts, "strftime") else str(ts)


def forecast(job, events=None, grid=None, study_area_of=None):
    """The ``risk`` DataArray of :func:`fit_forecast` (with ``job`` and ``city`` attributes).

    The function every forecast task of :func:`riskgrid.distributed.run_jobs` calls.
    """
    return fit_forecast(job, events, grid, study_area_of=study_area_of).risk
