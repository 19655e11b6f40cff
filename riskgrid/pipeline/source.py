"""The one event source of every job, and the study-area rule.

:func:`load_events` is what every entry point reads events with (the CLI,
:func:`riskgrid.run_forecast`, the backtest command, each Dask worker): a
path goes through :func:`riskgrid.read_events` (Parquet columns pruned to
those the job names, a Hive-partitioned dataset filtered by ``city``), an
in-memory :class:`~riskgrid.EventSet` is used as it is, then the category
filter. The same missing file gives the same
:class:`~riskgrid.errors.EventFileNotFoundError` everywhere.

Study-area rule (:func:`study_area`)
------------------------------------
The grid of a forecast for date ``D`` is the configuration's polygon
(``[grid] geojson``) when one is given; otherwise the H3 cells of the (target) events
strictly **before** ``D`` (after the category filter) plus ``buffer_rings``
rings. A later event never shapes an earlier forecast, so the grid of a
forecast does not depend on how much data happens to follow ``D``. A backtest
uses one grid for all its origins: the one of its first origin (``start``),
so a backtest origin at ``D`` and a forecast for ``D`` share their grid.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from ..errors import ConfigError, NoEventsError

__all__ = ["load_events", "load_job_events", "simulated_events", "study_area", "events_from_config", "apply_discovered"]


def load_events(
    source,
    *,
    columns: Mapping[str, str | None] | None = None,
    city: str | None = None,
    categories: Sequence[str] | None = None,
    on_invalid: str = "raise",
    options: Mapping | None = None,
    source_column: str | None = None,
    discovered="keep",
):
    """Read and validate the events of one job (what a worker does first).

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
    options : dict, optional
        Further keywords of :meth:`riskgrid.EventSet.from_frame` (``time_format``,
        ``year_range``, ``bbox``, ``within``, ``far_km``, ``keep_duplicates``);
        not used for an EventSet (already validated).
    source_column : str, optional
        Column holding each record's provenance (``reported`` / ``discovered``);
        read in full (a Parquet file is then not pruned to the role columns).
    discovered : {"keep", "exclude"} or float
        See :func:`apply_discovered`.

    Raises
    ------
    EventFileNotFoundError
        The path does not exist (a ``FileNotFoundError`` too).
    EventDataError
        Unreadable file, missing columns, no rows for ``city``, invalid rows.
    ConfigError
        A category of the filter is not in the data.
    """
    from ..events import EventSet, read_events
    from .specs import check_columns

    cols = check_columns(columns, categories)
    if isinstance(source, EventSet):
        events = source
    else:
        events = read_events(os.fspath(source), city=city, prune_columns=source_column is None, on_invalid=on_invalid,
                             **cols, **dict(options or {}))
    if categories:
        try:
            events = events.select(list(categories))
        except ValueError as exc:
            # the filter is [events] categories, or target + indicators when no filter is given
            raise ConfigError(f"events.categories / target / indicators: {exc}") from exc
    return apply_discovered(events, source_column, discovered)


#: provenance labels of ``[events] source_column``
SOURCE_LABELS = ("reported", "discovered")


def apply_discovered(events, source_column: str | None, discovered="keep"):
    """Keep, drop or down-weight the police-discovered records of an EventSet (model-independent).

    Parameters
    ----------
    events : EventSet
    source_column : str or None
        Column of ``events.extra`` with ``reported`` / ``discovered`` (case
        and surrounding spaces ignored); ``None``: nothing to do.
    discovered : {"keep", "exclude"} or float
        ``"exclude"`` drops the discovered records before anything else (the
        study area included); a number ``w`` in (0, 1) multiplies their event
        weights by ``w`` (a weight is a multiplicity: CountHotspot counts a
        discovered record as ``w`` of an event).

    Raises
    ------
    ConfigError
        The column is missing, or holds values other than the two labels
        (naming the count and the first values).
    """
    import numpy as np

    if source_column is None:
        return events
    if source_column not in events.extra.columns:
        raise ConfigError(f"events.source_column {source_column!r} is not a column of the events; "
                          f"they have {list(map(str, events.extra.columns))}")
    if discovered == "keep":
        return events
    labels = events.extra[source_column].astype("string").str.strip().str.lower()
    bad = ~labels.isin(SOURCE_LABELS).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        vals = sorted(set(map(str, events.extra[source_column][bad].tolist())))[:5]
        raise ConfigError(f"events.source_column {source_column!r}: {int(bad.sum())} record(s) are neither "
                          f"'reported' nor 'discovered' (e.g. {vals})")
    disc = (labels == "discovered").to_numpy(dtype=bool)
    if discovered == "exclude":
        return events._take(np.flatnonzero(~disc))
    return events.with_weights(np.where(disc, events.weight * float(discovered), events.weight))


def load_job_events(job):
    """:func:`load_events` with the source fields of a :class:`~riskgrid.pipeline.specs.ForecastJob` / ``BacktestJob``."""
    return load_events(job.source, columns=job.columns, city=job.city, categories=job.categories,
                       on_invalid=job.on_invalid, **job.load_options())


def simulated_events(cfg: dict):
    """The :class:`~riskgrid.EventSet` of ``[events] simulate`` (keyword arguments of :func:`riskgrid.simulate`),
    with ``[events] categories`` applied."""
    from ..events import EventSet
    from ..simulation import simulate

    ev = cfg["events"]
    try:
        df = simulate(**ev["simulate"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"events.simulate: {exc}") from exc
    events = EventSet.from_frame(df, time="timestamp", lat="lat", lon="lon", category="category",
                                 weight=ev["weight"], on_invalid=ev["on_invalid"])
    events.source = "simulate"
    if ev.get("categories"):
        try:
            events = events.select(ev["categories"])
        except ValueError as exc:
            raise ConfigError(f"events.categories: {exc}") from exc
    return events


def events_from_config(cfg: dict):
    """The events a validated configuration describes (``[events]``: a file, or a simulated city).

    Raises
    ------
    ConfigError
        Neither ``path`` nor ``simulate`` given, unknown category in the filter.
    EventFileNotFoundError
        The file does not exist.
    EventDataError
        Unreadable/corrupt file or invalid rows with ``on_invalid="raise"``.
    """
    ev = cfg["events"]
    if ev.get("path") is None and ev.get("simulate") is None:
        raise ConfigError("[events] needs 'path' (an event file) or 'simulate' (a table of rg.simulate arguments)")
    from .specs import ForecastJob

    job = ForecastJob.from_config({**cfg, "model": cfg.get("model") or {"name": "CountHotspot", "params": {}}})
    return load_job_events(job)


def study_area(grid_spec, events, first_day: float, target=None):
    """The grid of a forecast starting at ``first_day`` (days): the polygon, or the events before that day.

    See the module docstring for the rule. ``grid_spec`` is a
    :class:`~riskgrid.pipeline.specs.GridSpec`. With ``target`` categories,
    only the target events shape the grid (indicators never widen the area
    whose risk is forecast).
    """
    if grid_spec.geojson:
        return grid_spec.build(None)
    if target is not None:
        events = events.select(list(target))
    before = events.between(None, float(first_day))
    if len(before) == 0:
        raise NoEventsError(
            f"no event before {events.to_timestamp(float(first_day))} to build the study area from (the input covers "
            f"{events.start} → {events.end}); choose a later date or give [grid] geojson"
        )
    return grid_spec.build(before)
