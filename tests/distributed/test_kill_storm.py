"""Batches always end (issue 15): worker kill storms on a real LocalCluster end as reported errors, never a hang.

Two ways a cluster loses its work for good:

* a kill storm: every worker process is SIGKILLed again and again while the
  nannies restart them, so each task dies with its worker until Dask's
  ``allowed-failures`` are spent (``KilledWorker``);
* no worker left at all (workers without a nanny, all killed): Dask keeps
  the tasks queued forever; riskgrid reports them as ``NoWorkers`` after
  ``no_worker_timeout`` seconds.

Either way ``run_jobs`` returns with every job either complete or reported,
and ``riskgrid batch`` writes its status file and one FAILED line per job.
The bounds below (thread joins) only detect a hang; they are no timing
measurement.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

import riskgrid as rg
from riskgrid.distributed import run_jobs
from riskgrid.pipeline.specs import ForecastJob

distributed = pytest.importorskip("distributed")

HANG = 300  # seconds after which a batch that has not returned counts as hung


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("storm")
    df = rg.simulate(n_days=90, background_rate=10, theta=0.3, seed=5, categories=["A", "B"])
    path = d / "city.parquet"
    df[["event_id", "timestamp", "lat", "lon", "category"]].to_parquet(path)
    return path


def _jobs(city, n=4):
    return [ForecastJob(f"job{i}", str(city), model="CountHotspot", date="2024-03-01", horizon_days=1 + i,
                        train_days=60) for i in range(n)]


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["res"] = fn()
        except BaseException as exc:  # pragma: no cover - reported by the assertions
            box["exc"] = exc

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, box


def _kill(pid) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, TypeError):
        return False


def _settle(client, n=2, timeout=60):
    """Let the nannies finish restarting the last killed workers before the cluster closes.

    Closing a nanny whose new process has not started yet fails inside distributed ("can only join a started
    process"): a race of the teardown, not of the batch. On a loaded machine a nanny may instead give up on a
    worker killed while it was starting (the batch then reports NoWorkers); it then has no process to join, so
    the timeout is not a failure either.
    """
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:  # distributed's WorkerStartTimeoutError is one
        pass


def test_kill_storm_with_nannies_ends_with_every_job_complete_or_reported(city):
    """SIGKILL every worker process every ~0.5 s while the nannies restart them, until the batch returns."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  env={"NUMBA_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
        jobs = _jobs(city)
        th, box = _in_thread(lambda: run_jobs(jobs, client, retries=1, progress=False, no_worker_timeout=30))
        kills = 0
        deadline = time.monotonic() + HANG
        while th.is_alive() and time.monotonic() < deadline:
            for nanny in list(cluster.workers.values()):
                kills += _kill(getattr(nanny, "pid", None))
            time.sleep(0.5)
        th.join(max(1.0, deadline - time.monotonic()))
        assert not th.is_alive(), f"run_jobs hung after {kills} kills"
        _settle(client)
        assert "exc" not in box, box.get("exc")
        res = box["res"]
        assert kills >= 2
        assert set(res.results) | set(res.errors) == set(res.names) == {j.name for j in jobs}
        assert not set(res.results) & set(res.errors)
        for name, msg in res.errors.items():  # lost work is reported as such, never as something else
            assert "KilledWorker" in msg or "NoWorkers" in msg or "ResultLost" in msg, (name, msg)
        assert len(res.tasks) == len(jobs) and set(res.tasks["status"]) <= {"ok", "error"}


def _worker_procs(address, n=2):
    cmd = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny", "--nthreads", "1",
           "--no-dashboard"]
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


@pytest.fixture
def bare_cluster():
    """A scheduler with two nanny-less worker processes: once killed, nothing brings them back."""
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        procs = _worker_procs(cluster.scheduler_address)
        try:
            client.wait_for_workers(2, timeout=120)
            yield cluster, client, procs
        finally:
            for p in procs:
                _kill(p.pid)
                p.wait(30)


def test_no_worker_left_is_reported_not_a_hang(city, bare_cluster):
    cluster, client, procs = bare_cluster
    jobs = _jobs(city)
    th, box = _in_thread(lambda: run_jobs(jobs, client, retries=2, progress=False, no_worker_timeout=3))
    while th.is_alive() and not any(client.processing().values()):  # kill them while they work
        time.sleep(0.05)
    for p in procs:
        _kill(p.pid)
    th.join(HANG)
    assert not th.is_alive(), "run_jobs hung with no worker left"
    assert "exc" not in box, box.get("exc")
    res = box["res"]
    assert set(res.results) | set(res.errors) == set(res.names)
    assert res.errors, "every worker was killed before the jobs could finish"
    for msg in res.errors.values():
        assert "NoWorkers" in msg or "KilledWorker" in msg, msg
    assert any("NoWorkers" in m for m in res.errors.values())


def test_batch_command_writes_status_and_every_failed_line_when_workers_are_lost(city, bare_cluster, tmp_path):
    import dask
    from click.testing import CliRunner

    from riskgrid.cli import main

    cluster, client, procs = bare_cluster
    jobs_file = tmp_path / "jobs.toml"
    jobs_file.write_text("".join(
        f'[[forecast]]\nname = "job{i}"\nsource = "{city}"\nmodel = "CountHotspot"\ndate = "2024-03-01"\n'
        f"horizon_days = {1 + i}\ntrain_days = 60\n" for i in range(3)))
    out = tmp_path / "out"
    args = ["batch", str(jobs_file), "--scheduler", cluster.scheduler_address, "--out", str(out), "-q"]
    for p in procs:  # every worker gone before the batch starts: its tasks can only wait
        _kill(p.pid)
        p.wait(30)
    with dask.config.set({"riskgrid.no-worker-timeout": 3}):
        th, box = _in_thread(lambda: CliRunner().invoke(main, args))
        th.join(HANG)
    assert not th.is_alive(), "riskgrid batch hung with no worker left"
    res = box["res"]
    assert res.exit_code == 1, res.output
    status = json.loads((out / "batch_status.json").read_text())
    assert status["ok"] == [] and sorted(status["errors"]) == ["job0", "job1", "job2"]
    assert all("NoWorkers" in m for m in status["errors"].values())
    failed = [ln for ln in res.output.splitlines() if ln.startswith("FAILED ")]
    assert [ln.split(":")[0] for ln in failed] == ["FAILED job0", "FAILED job1", "FAILED job2"]
    tasks = pd.read_csv(out / "batch_tasks.csv")
    assert sorted(tasks["job"]) == ["job0", "job1", "job2"] and set(tasks["status"]) == {"error"}
