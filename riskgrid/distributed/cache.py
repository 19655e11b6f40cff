"""The per-worker cache: each process keeps the events and grids of the last few jobs it read.

The 52 origin tasks of a city-year backtest read the city's file once per
worker, not 52 times. Keys are the job's data fields (source, city, columns,
categories, ``on_invalid``, grid spec) plus the file's mtime and size, so a
rewritten file is read again. Loading and grids are the pipeline's own
(:func:`riskgrid.pipeline.source.load_job_events`,
:func:`riskgrid.pipeline.source.study_area`); this module only remembers them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

__all__ = ["clear_cache", "job_events", "job_grid"]

_CACHE_SIZE = 4
_cache: "OrderedDict[tuple, tuple]" = OrderedDict()  # key -> (events, {first_day: grid}, pinned source)
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}


def clear_cache() -> None:
    """Forget the events and grids kept by this process (workers keep the last few cities)."""
    with _cache_lock:
        _cache.clear()
        _key_locks.clear()


def _key(job, src) -> tuple:
    key = job.data_key()
    if isinstance(src, str) and "://" not in src and os.path.exists(src):
        st = os.stat(src)
        key = key + (st.st_mtime_ns, st.st_size)
    return key


def job_events(job, source=None):
    """The job's events (read with :func:`riskgrid.pipeline.source.load_events`), from the cache when possible.

    ``source`` replaces ``job.source`` (the EventSet a Dask task receives
    beside a light copy of its job).
    """
    from ..events import EventSet
    from ..pipeline.source import load_events

    src = job.source if source is None else source
    key = _key(job, src)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key][0]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # one reader per key; other threads wait and reuse
        with _cache_lock:
            if key in _cache:
                return _cache[key][0]
        events = load_events(src, columns=job.columns, city=job.city, categories=job.categories,
                             on_invalid=job.on_invalid, **job.load_options())
        with _cache_lock:
            # an in-memory source is keyed by id(): pin it so that the id cannot be reused
            _cache[key] = (events, {}, src if isinstance(src, EventSet) else None)
            while len(_cache) > _CACHE_SIZE:
                old, _ = _cache.popitem(last=False)
                _key_locks.pop(old, None)
        return events


def job_grid(job, events, first_day: float, source=None):
    """The study area of ``job`` for a forecast starting at ``first_day`` (the pipeline's rule), cached with its events."""
    from ..pipeline.source import study_area

    src = job.source if source is None else source
    key = _key(job, src)
    with _cache_lock:
        grids = _cache[key][1] if key in _cache and _cache[key][0] is events else None
        if grids is not None and first_day in grids:
            return grids[first_day]
    grid = study_area(job.grid, events, first_day, job.target)
    if grids is not None:
        with _cache_lock:
            grids[first_day] = grid
    return grid
