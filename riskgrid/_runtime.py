"""Run-time switches shared by the public layer: progress bars and Numba thread counts.

One meaning per knob: ``n_threads`` is a number of Numba threads (checked by
:func:`check_n_threads`), ``n_jobs`` a number of worker processes. Library
calls draw no progress bar unless asked (``progress=True``, or
``RISKGRID_PROGRESS=1`` in the environment); the CLI asks.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numba
import numpy as np

__all__ = ["check_n_threads", "check_n_jobs", "numba_threads", "progress_enabled", "threads_for_work"]

#: below this many operations a kernel call runs on one thread (thread start-up and
#: barriers cost more than they save, badly so on a busy machine)
PARALLEL_MIN_WORK = 2_000_000


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show a progress bar: ``progress`` when given, else off unless ``RISKGRID_PROGRESS=1``."""
    if progress is None:
        return os.environ.get("RISKGRID_PROGRESS", "0") == "1" and os.environ.get("RISKGRID_QUIET", "0") != "1"
    return bool(progress)


def check_n_threads(n_threads, name: str = "n_threads") -> int | None:
    """Validate a number of Numba threads: ``None`` (all), ``-1`` (all) or ``1..NUMBA_NUM_THREADS``."""
    if n_threads is None:
        return None
    if not isinstance(n_threads, (int, np.integer)) or isinstance(n_threads, bool):
        raise TypeError(f"{name} must be an int or None, got {type(n_threads).__name__}")
    maxt = numba.config.NUMBA_NUM_THREADS
    n = maxt if int(n_threads) == -1 else int(n_threads)
    if not 1 <= n <= maxt:
        raise ValueError(f"{name} must be -1, None or in 1..{maxt} (NUMBA_NUM_THREADS), got {n_threads}")
    return n


def check_n_jobs(n_jobs) -> int | None:
    """Deprecated name of :func:`check_n_threads` for the Numba-thread ``n_jobs`` of older signatures."""
    return check_n_threads(n_jobs, "n_jobs")


@contextmanager
def numba_threads(n: int | None):
    """Run the block with ``n`` Numba threads (clamped to 1..NUMBA_NUM_THREADS); ``None``/0: unchanged."""
    old = numba.get_num_threads()
    if n:
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


def threads_for_work(work: float):
    """One thread for the block when ``work`` (operations) is small; results are identical either way."""
    return numba_threads(None if work >= PARALLEL_MIN_WORK else 1)
