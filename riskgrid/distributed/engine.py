"""The task engine: the pipeline's functions scheduled on Dask, with per-task fault isolation.

* Every task calls the very function a serial run calls
  (:func:`riskgrid.pipeline.forecasting.fit_forecast` through
  :func:`~riskgrid.pipeline.forecasting.forecast`,
  :func:`riskgrid.pipeline.backtest.backtest_job` on one (variant, origin)),
  on events and grids from the per-worker cache (:mod:`.cache`), so results
  are bit-for-bit those of the serial API; ``client="serial"`` runs the very
  same tasks in the calling process.
* A backtest is split into one task per (job, model variant, origin),
  concatenated back in the serial order.
* Each task catches its own exception and returns it as data, so a failing
  job never stops the others; a task lost with its worker is rescheduled by
  Dask (``retries``), and a result that still cannot be had is reported as
  an error, never dropped.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import time
import traceback
import uuid
from typing import Iterable

import numpy as np
import pandas as pd

from .. import _runtime
from ..errors import ConfigError
from ..events import EventSet, to_days
from ..pipeline.backtest import backtest_job, job_origins
from ..pipeline.forecasting import forecast
from ..pipeline.specs import BacktestJob, ForecastJob
from .cache import job_events, job_grid
from .cluster import client_for, dashboard_address
from .results import TASK_COLUMNS, BatchResult

__all__ = ["run_jobs", "run_forecasts", "run_backtests", "check_names"]

logger = logging.getLogger("riskgrid.distributed")


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return f"local-{os.getpid()}"


def _run_task(kind: str, job, variant, origin, numba_threads, source=None) -> dict:
    """Run one task; never raises: returns ``{"ok", "value", "error", ...}``."""
    t0 = time.time()
    out = {"ok": False, "value": None, "error": None, "trace": None, "worker": _worker_name(), "start": t0}
    try:
        with _runtime.numba_threads(numba_threads):
            events = job_events(job, source)
            if kind == "forecast":  # the study area from this worker's cache, by the pipeline's rule
                out["value"] = forecast(job, events, study_area_of=lambda day: job_grid(job, events, day, source))
            elif kind == "origins":
                out["value"] = job_origins(job, events)
            else:
                grid = job_grid(job, events, events.to_days(job.start), source)
                out["value"] = backtest_job(job, events, grid, variant=variant, origin=origin)
        out["ok"] = True
    except Exception as exc:  # isolate the job: report, do not stop the batch
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["trace"] = traceback.format_exc()
    out["stop"] = time.time()
    return out


def check_names(jobs) -> None:
    names = [j.name for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"job names must be unique; repeated: {dup}")


def _task_row(job, variant, origin, out) -> dict:
    return {
        "job": job.name,
        "variant": variant,
        "origin": origin,
        "status": "ok" if out.get("ok") else "error",
        "worker": out.get("worker"),
        "start": out.get("start"),
        "stop": out.get("stop"),
        "seconds": (out["stop"] - out["start"]) if out.get("stop") is not None else np.nan,
        "error": out.get("error"),
    }


class _Engine:
    """Submit tasks, gather them as they finish, turn anything missing into an error.

    ``expand(spec, outcome)`` may return follow-up specs (a backtest's origin
    tasks once its origins are known); they are submitted at once.
    """

    #: seconds between checks of the cluster while no task finishes
    poll_s = 0.25

    def __init__(self, client, retries: int, numba_threads, progress: bool, desc: str,
                 no_worker_timeout: float = 60.0):
        self.client = client
        self.retries = int(retries)
        self.no_worker_timeout = float(no_worker_timeout)
        self.numba_threads = numba_threads
        self.progress = progress
        self.desc = desc
        self.run_id = uuid.uuid4().hex[:8]
        self.n_submitted = 0
        self.scattered: dict[int, tuple] = {}

    def _wire(self, job):
        """EventSet sources are scattered once per run: the task gets a light job and the data's future."""
        if not isinstance(job.source, EventSet):
            return job, None
        key = id(job.source)
        if key not in self.scattered:
            fut = self.client.scatter(job.source, broadcast=False, hash=False)
            self.scattered[key] = (f"scattered:{self.run_id}:{len(self.scattered)}", fut, job.source)
        token, fut, _ = self.scattered[key]
        light = copy.copy(job)
        object.__setattr__(light, "source", token)
        return light, fut

    def _submit(self, spec):
        kind, job, variant, origin = spec
        light, source = self._wire(job)
        label = "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in job.name)[:40]
        self.n_submitted += 1
        return self.client.submit(
            _run_task,
            kind,
            light,
            variant,
            origin,
            self.numba_threads,
            source,
            key=f"riskgrid-{kind}-{label}-{self.run_id}-{self.n_submitted}",
            retries=self.retries,
            pure=False,
        )

    def run(self, specs: list, expand) -> list[tuple]:
        """Run ``specs`` (``(kind, job, variant, origin)``) and their expansions; ``[(spec, outcome)]``."""
        from tqdm.auto import tqdm

        done: list[tuple] = []
        bar = tqdm(total=len(specs), desc=self.desc, unit="task", disable=not self.progress, file=sys.stderr)

        def follow(spec, out):
            new = list(expand(spec, out))
            if new:
                bar.total += len(new)
                bar.refresh()
            return new

        try:
            if self.client == "serial":
                queue = list(specs)
                while queue:
                    spec = queue.pop(0)
                    out = _run_task(spec[0], spec[1], spec[2], spec[3], self.numba_threads)
                    done.append((spec, out))
                    bar.update()
                    queue.extend(follow(spec, out))
                return done
            from distributed import as_completed

            futures = {}
            pending = {}  # key -> future still running (cancelled when the cluster has lost every worker)
            first = []
            for spec in specs:
                fut = self._submit(spec)
                futures[fut.key] = spec
                pending[fut.key] = fut
                first.append(fut)
            ac = as_completed(first, with_results=False, raise_errors=False, loop=self.client.loop)
            lost = None
            for fut in self._finished(ac):
                if fut is None:  # no worker left for no_worker_timeout seconds: report what is left, never hang
                    lost = (f"NoWorkers: the cluster had no worker for {self.no_worker_timeout:g} s (every worker "
                            f"lost, e.g. killed, and none came back); the task never finished")
                    logger.error("%s; %d task(s) reported as failed", lost, len(futures))
                    with contextlib.suppress(Exception):
                        self.client.cancel(list(pending.values()), force=True)
                    break
                pending.pop(fut.key, None)
                spec = futures.pop(fut.key)
                try:
                    out = fut.result()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # lost beyond retries (KilledWorker), cancelled, ...
                    out = _lost(f"{type(exc).__name__}: {exc}")
                    logger.warning("task %s failed on the cluster: %s", fut.key, out["error"])
                fut.release()
                done.append((spec, out))
                bar.update()
                for new in follow(spec, out):
                    f2 = self._submit(new)
                    futures[f2.key] = new
                    pending[f2.key] = f2
                    ac.add(f2)
            for spec in futures.values():  # never silently missing
                done.append((spec, _lost(lost or "ResultLost: the task's result never came back")))
        finally:
            bar.close()
            for _, fut, _ in self.scattered.values():
                fut.release()
        return done


    def _n_workers(self) -> int:
        try:
            return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        except Exception:  # the scheduler itself is gone: no worker either
            return 0

    def _finished(self, ac):
        """Futures of ``ac`` as they finish; ``None`` once the cluster has had no worker for ``no_worker_timeout`` s.

        Dask keeps tasks queued while no worker is connected (a LocalCluster
        whose nannies were killed never gets one back), so waiting on
        ``as_completed`` alone can block forever.
        """
        since = None
        while not ac.is_empty():
            if ac.has_ready():
                since = None
                yield from ac.next_batch(block=False)
                continue
            if self._n_workers() > 0:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= self.no_worker_timeout:
                yield None
                return
            time.sleep(self.poll_s)


def _lost(message: str) -> dict:
    return {"ok": False, "value": None, "error": message, "trace": None, "worker": None, "start": None, "stop": None}


def run_jobs(
    jobs: Iterable[ForecastJob | BacktestJob],
    client=None,
    *,
    retries: int = 2,
    progress: bool | None = None,
    numba_threads: int | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | float | None = "auto",
    no_worker_timeout: float | None = None,
) -> BatchResult:
    """Run forecasts and backtests together on a Dask cluster (or serially).

    Parameters
    ----------
    jobs : iterable of ForecastJob or BacktestJob
        Names must be unique.
    client : None, str, distributed.Client or "serial"
        ``None``: start a machine-sized LocalCluster (see :func:`local_client`;
        ``n_workers``, ``threads_per_worker``, ``memory_limit``,
        ``numba_threads`` size it) and close it afterwards. A string: the
        address of a running scheduler (``"tcp://host:8786"``). A Client: use
        it (it is left open). ``"serial"``: run the same tasks one after the
        other in this process.
    retries : int
        Dask retries of a task whose worker died or that raised outside the
        job's own error handling.
    progress : bool, optional
        tqdm progress bar on stderr (default: off, unless ``RISKGRID_PROGRESS=1``; the CLI turns it on).
    numba_threads : int, optional
        Numba threads per task (default: the local cluster's share of the
        cores; unchanged on a user's cluster).
    no_worker_timeout : float, optional
        Seconds the cluster may have no worker at all while tasks are left
        (default: the Dask setting ``riskgrid.no-worker-timeout``, else 60);
        then every unfinished task is cancelled and reported as a
        ``NoWorkers`` error (a batch always ends). A lost worker that its
        nanny restarts is back in a few seconds.

    Returns
    -------
    BatchResult
        Results and errors by job name, in job order.
    """
    jobs = list(jobs)
    for j in jobs:
        if not isinstance(j, (ForecastJob, BacktestJob)):
            raise TypeError(f"jobs must be ForecastJob or BacktestJob, got {type(j).__name__}")
    check_names(jobs)
    if no_worker_timeout is None:
        import dask

        no_worker_timeout = dask.config.get("riskgrid.no-worker-timeout", 60.0)
    if isinstance(no_worker_timeout, bool) or not 0 < float(no_worker_timeout) < float("inf"):
        raise ValueError(f"no_worker_timeout must be a finite number of seconds > 0, got {no_worker_timeout!r}")
    t0 = time.perf_counter()
    cluster_kwargs = dict(
        n_workers=n_workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit, numba_threads=numba_threads
    )
    show = _runtime.progress_enabled(progress)
    ctx = contextlib.nullcontext("serial") if client == "serial" else client_for(client, cluster_kwargs)
    with ctx as c:
        nt = numba_threads if numba_threads is not None else getattr(c, "riskgrid_numba_threads", None)
        dash = None if c == "serial" else dashboard_address(c)
        eng = _Engine(c, retries, nt, show, "riskgrid batch", no_worker_timeout=no_worker_timeout)
        results, errors, traces, rows = _execute(eng, jobs)
    tasks = pd.DataFrame(rows, columns=TASK_COLUMNS)
    return BatchResult(
        results=results,
        errors=errors,
        names=[j.name for j in jobs],
        tasks=tasks,
        wall_seconds=time.perf_counter() - t0,
        dashboard=dash,
        tracebacks=traces,
    )


def _execute(eng: _Engine, jobs: list) -> tuple[dict, dict, dict, list]:
    # backtests first: one small task per job finds its origins (and fails fast on a bad source);
    # its (variant, origin) tasks are submitted as soon as it returns
    specs = [("origins", j, None, None) for j in jobs if isinstance(j, BacktestJob)]
    specs += [("forecast", j, None, None) for j in jobs if isinstance(j, ForecastJob)]
    planned: dict[str, list] = {}

    def expand(spec, out):
        kind, j, _, _ = spec
        if kind != "origins" or not out["ok"]:
            return []
        new = [("origin", j, v, float(t)) for t in out["value"] for v in j.models]  # serial row order
        planned[j.name] = new
        return new

    done = eng.run(specs, expand)
    outcome = {(s[0], s[1].name, s[2], s[3]): o for s, o in done}
    results: dict = {}
    errors: dict = {}
    traces: dict = {}
    rows = [_task_row(s[1], s[2], s[3], o) for s, o in done]
    for j in jobs:
        if isinstance(j, ForecastJob):
            o = outcome[("forecast", j.name, None, None)]
            if o["ok"]:
                results[j.name] = o["value"]
            else:
                errors[j.name], traces[j.name] = o["error"], o.get("trace")
            continue
        o = outcome[("origins", j.name, None, None)]
        if not o["ok"]:
            errors[j.name], traces[j.name] = o["error"], o.get("trace")
            continue
        mine = planned.get(j.name, [])
        if not mine:
            errors[j.name] = f"ValueError: no backtest origin in [{j.start}, {j.end}) with step_days={j.step_days}"
            continue
        outs = [outcome[(s[0], j.name, s[2], s[3])] for s in mine]
        bad = [(s, o) for s, o in zip(mine, outs) if not o["ok"]]
        if bad:
            (_, _, v, t), o = bad[0]
            errors[j.name] = f"{o['error']} (variant {v!r}, origin {_fmt_day(t)}; {len(bad)} of {len(mine)} tasks failed)"
            traces[j.name] = o.get("trace")
        else:
            results[j.name] = _merge_backtest(j, [o["value"] for o in outs])
    return results, errors, traces, rows


def _fmt_day(t) -> str:
    try:
        return str((EventSet.origin + pd.to_timedelta(float(t), unit="D")).round("s"))
    except Exception:  # pragma: no cover
        return str(t)


def _merge_backtest(job: BacktestJob, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate the per-(origin, variant) frames (origin-major, like the serial backtest) and its ``attrs``."""
    out = pd.concat(frames, ignore_index=True)
    attrs = dict(frames[0].attrs.get("backtest", {}))
    if attrs:
        attrs["models"] = {}
        for f in frames:
            attrs["models"].update(f.attrs["backtest"]["models"])
        attrs["end_days"] = to_days(job.end)
    out.attrs = {"backtest": attrs} if attrs else {}
    return out


# =========================================================================== #
# public entry points
# =========================================================================== #
def run_forecasts(jobs: Iterable[ForecastJob], client=None, **kwargs) -> BatchResult:
    """Run :class:`ForecastJob` s on Dask (one task per job); see :func:`run_jobs` for the arguments.

    ``result.results[name]`` is the ``risk`` DataArray :func:`forecast` gives
    for the job in a single process, bit for bit.
    """
    jobs = list(jobs)
    bad = [type(j).__name__ for j in jobs if not isinstance(j, ForecastJob)]
    if bad:
        raise TypeError(f"run_forecasts takes ForecastJob objects, got {sorted(set(bad))}")
    return run_jobs(jobs, client, **kwargs)


def run_backtests(jobs: Iterable[BacktestJob], client=None, **kwargs) -> BatchResult:
    """Run :class:`BacktestJob` s on Dask, one task per (job, variant, origin); see :func:`run_jobs`.

    ``result.results[name]`` equals :func:`riskgrid.backtest.backtest` on the
    job's events and grid (timing columns aside), rows in the same order.
    """
    jobs = list(jobs)
    bad = [type(j).__name__ for j in jobs if not isinstance(j, BacktestJob)]
    if bad:
        raise TypeError(f"run_backtests takes BacktestJob objects, got {sorted(set(bad))}")
    return run_jobs(jobs, client, **kwargs)


