"""Dask clusters for riskgrid: a machine-sized LocalCluster, a scheduler address, or the user's Client.

Numba threads: each task sets ``numba.set_num_threads(numba_threads)`` for
its own thread (Numba's thread count is per calling thread). The default
local cluster uses ``n_workers × threads_per_worker <= cores`` and gives each
task ``cores // (n_workers × threads_per_worker)`` Numba threads (also
exported as ``NUMBA_NUM_THREADS`` to the worker processes), so the machine is
never oversubscribed.
"""

from __future__ import annotations

import contextlib
import logging
import os

__all__ = ["local_cluster_size", "local_client", "dashboard_address", "client_for"]

logger = logging.getLogger("riskgrid.distributed")


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


#: Dask settings riskgrid's LocalCluster changes when they still hold Dask's default: ``key -> (default, ours)``.
#: Every process of a LocalCluster (client + scheduler, nannies, workers) wakes up on these timers; with the
#: defaults the cluster's own bookkeeping took ~11 % of one core (idle or busy, measured on 2 cores with 2
#: workers), with these ~2 %. They only make the event-loop-blocked warnings, the dashboard's system graphs and
#: its profile coarser, and the nanny's memory limit checked every 0.5 s instead of 0.1 s.
QUIET_CLUSTER_CONFIG = {
    "distributed.admin.tick.interval": ("20ms", "500ms"),
    "distributed.admin.system-monitor.interval": ("500ms", "2s"),
    "distributed.worker.memory.monitor-interval": ("100ms", "500ms"),
    "distributed.worker.profile.interval": ("10ms", "100ms"),
}


def quiet_cluster_config() -> dict:
    """The :data:`QUIET_CLUSTER_CONFIG` values for the settings the user's Dask config leaves at their default."""
    import dask

    return {k: ours for k, (default, ours) in QUIET_CLUSTER_CONFIG.items() if dask.config.get(k, None) == default}


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
    :class:`distributed.LocalCluster` (e.g. ``dashboard_address``). The cluster's periodic
    bookkeeping runs less often (:data:`QUIET_CLUSTER_CONFIG`) unless the Dask config sets those keys.
    """
    import dask
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
    quiet = quiet_cluster_config()  # fewer wake-ups of the cluster's own timers (see QUIET_CLUSTER_CONFIG)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": pre, **quiet}), LocalCluster(**kwargs) as cluster, Client(cluster, set_as_default=False) as client:
        client.riskgrid_numba_threads = nt
        link = dashboard_address(client)
        logger.info(
            "LocalCluster %s: %d workers x %d threads, %d Numba threads per task; dashboard %s",
            cluster.scheduler_address, nw, tpw, nt, link or "not available (install bokeh>=3.1)",
        )
        yield client


@contextlib.contextmanager
def client_for(client, cluster_kwargs: dict):
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


