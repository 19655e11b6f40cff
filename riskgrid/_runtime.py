"""Run-time switches shared by the public layer: progress bars and Numba thread counts."""

from __future__ import annotations

import os
from contextlib import contextmanager

import numba
import numpy as np

__all__ = ["check_n_jobs", "numba_threads", "progress_enabled", "threads_for_work"]

#: below this many operations a kernel call runs on one thread (thread start-up and
#: barriers cost more than they save, badly so on a busy machine)
PARALLEL_MIN_WORK = 2_000_000


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show a progress bar: ``progress`` when given, else on unless ``RISKGRID_QUIET=1``."""
    if progress is None:
        return os.environ.get("RISKGRID_QUIET", "0") != "1"
    return bool(progress)


def check_n_jobs(n_jobs) -> int | None:
    """Validate an ``n_jobs`` argument (Numba threads): ``None`` (all), ``-1`` (all) or ``1..NUMBA_NUM_THREADS``."""
    if n_jobs is None:
        return None
    if not isinstance(n_jobs, (int, np.integer)) or isinstance(n_jobs, bool):
        raise TypeError(f"n_jobs must be an int or None, got {type(n_jobs).__name__}")
    maxt = numba.config.NUMBA_NUM_THREADS
    n = maxt if int(n_jobs) == -1 else int(n_jobs)
    if not 1 <= n <= maxt:
        raise ValueError(f"n_jobs must be -1, None or in 1..{maxt} (NUMBA_NUM_THREADS), got {n_jobs}")
    return n


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
