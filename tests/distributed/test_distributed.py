"""riskgrid.distributed on a real LocalCluster (2 worker processes, 1 thread each).

The cluster is started once for the module. Every result is compared with
the serial path (``client="serial"``: the same tasks in this process) and
with the plain single-machine API (read_events → HexGrid → make_model →
fit → predict; riskgrid.backtest).
"""

import os
import signal
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import riskgrid as rg
from riskgrid.evaluation import backtest
from riskgrid.cli import main as cli_main
from riskgrid.distributed import (
    BacktestJob,
    BatchError,
    ForecastJob,
    GridSpec,
    ModelSpec,
    clear_cache,
    load_events,
    load_jobs,
    local_client,
    local_cluster_size,
    run_backtests,
    run_forecasts,
    run_jobs,
)
from riskgrid.distributed.cluster import QUIET_CLUSTER_CONFIG, quiet_cluster_config
from riskgrid.errors import ConfigError, EventDataError
from riskgrid.models import make_model

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

TIMING = ["fit_seconds", "predict_seconds", "interval_seconds"]
CENTRES = [(41.85, -87.65), (40.71, -74.00), (37.77, -122.42)]


@pytest.fixture(scope="module")
def cities(tmp_path_factory):
    """Three small simulated cities as Parquet files, and a Hive-partitioned dataset of all three."""
    d = tmp_path_factory.mktemp("cities")
    paths, frames = {}, []
    for i, centre in enumerate(CENTRES):
        df = rg.simulate(n_days=150, background_rate=12, theta=0.3, center=centre, seed=10 + i, categories=["A", "B"])
        df = df[["event_id", "timestamp", "lat", "lon", "category"]]
        paths[f"city{i}"] = d / f"city{i}.parquet"
        df.to_parquet(paths[f"city{i}"])
        frames.append(df.assign(city=f"city{i}"))
    hive = d / "all_cities"
    pd.concat(frames, ignore_index=True).to_parquet(hive, partition_cols=["city"])
    bad = d / "no_lat.parquet"  # malformed table: the latitude column is missing
    frames[0].drop(columns=["lat"]).to_parquet(bad)
    junk = d / "junk.parquet"  # not a Parquet file at all
    junk.write_bytes(b"this is not parquet" * 100)
    return {"paths": paths, "hive": hive, "no_lat": bad, "junk": junk, "dir": d}


def _direct_forecast(path, model, params, date, horizon, train_days=None, categories=None):
    """The single-machine path written out by hand (the study area: the events before the forecast date)."""
    ev = rg.read_events(path, category="category")
    if categories:
        ev = ev.select(categories)
    grid = rg.HexGrid.from_events(ev.between(None, date), resolution=9, buffer_rings=1)
    t = ev.to_days(date)
    train = ev if train_days is None else ev.between(t - train_days, None)
    risk = make_model(model, **params).fit(train, grid, end=date).predict(date, horizon)
    return risk


def _forecast_jobs(cities):
    p = cities["paths"]
    return [
        ForecastJob("c0-count", p["city0"], model=ModelSpec("CountHotspot", {"window_days": 60}), date="2024-05-01",
                    columns={"category": "category"}, grid=GridSpec(resolution=9, buffer_rings=1)),
        ForecastJob("c1-kde", p["city1"], model=ModelSpec("KDEHotspot", {"bandwidth_m": 250.0}), date="2024-05-10",
                    horizon_days=3, train_days=90, columns={"category": "category"}),
        ForecastJob("c2-prosp", p["city2"], model="ProspectiveHotspot", date="2024-05-01", categories=["A"]),
        ForecastJob("c1-hive", cities["hive"], city="city1", model=ModelSpec("CountHotspot", {"window_days": 30}),
                    date="2024-04-20", columns={"category": "category"}),
    ]


# --------------------------------------------------------------------------- forecasts
def test_forecasts_equal_serial_and_single_machine(client, cities):
    jobs = _forecast_jobs(cities)
    ev0 = rg.read_events(cities["paths"]["city0"], category="category")
    jobs.append(ForecastJob("c0-shipped", ev0, model="KDEHotspot", date="2024-05-01"))  # in-memory source
    dist = run_forecasts(jobs, client, progress=False)
    assert dist.ok, dist.errors
    assert list(dist.results) == [j.name for j in jobs]  # gathered in job order
    serial = run_forecasts(jobs, "serial", progress=False)
    for name in dist.names:
        xr.testing.assert_identical(dist.results[name], serial.results[name])
    p = cities["paths"]
    direct = {
        "c0-count": _direct_forecast(p["city0"], "CountHotspot", {"window_days": 60}, "2024-05-01", 7),
        "c1-kde": _direct_forecast(p["city1"], "KDEHotspot", {"bandwidth_m": 250.0}, "2024-05-10", 3, train_days=90),
        "c2-prosp": _direct_forecast(p["city2"], "ProspectiveHotspot", {}, "2024-05-01", 7, categories=["A"]),
        "c1-hive": _direct_forecast(p["city1"], "CountHotspot", {"window_days": 30}, "2024-04-20", 7),
        "c0-shipped": _direct_forecast(p["city0"], "KDEHotspot", {}, "2024-05-01", 7),
    }
    for name, ref in direct.items():
        got = dist.results[name]
        assert got.attrs.pop("job") == name
        got.attrs.pop("city", None)
        xr.testing.assert_identical(got, ref)  # bit for bit, attributes included
    # the work ran on both workers, one task per forecast job
    assert len(dist.tasks) == len(jobs) and dist.tasks["worker"].nunique() == 2


# --------------------------------------------------------------------------- backtests
def test_backtest_origins_spread_and_equal_to_plain_backtest(client, cities):
    models = {"count30": ModelSpec("CountHotspot", {"window_days": 30}), "kde": ModelSpec("KDEHotspot", {"bandwidth_m": 300.0})}
    job = BacktestJob("city0-bt", cities["paths"]["city0"], models=models, start="2024-03-01", end="2024-05-01",
                      step_days=7, horizon_days=7, train_days=60, coverage=(0.02, 0.1), columns={"category": "category"})
    job2 = BacktestJob("city2-bt", cities["hive"], city="city2", models={"count": "CountHotspot"}, start=19800.0,
                       end=19830.0, step_days=10, horizon_days=5)
    res = run_backtests([job, job2], client, progress=False)
    assert res.ok, res.errors
    ev = rg.read_events(cities["paths"]["city0"], category="category")
    grid = rg.HexGrid.from_events(ev.between(None, "2024-03-01"), resolution=9, buffer_rings=1)  # events before start
    ref = backtest({k: v.build() for k, v in models.items()}, ev, grid, "2024-03-01", "2024-05-01", step_days=7,
                   horizon_days=7, train_days=60, coverage=(0.02, 0.1), progress=False)
    got = res.results["city0-bt"]
    pd.testing.assert_frame_equal(got.drop(columns=TIMING), ref.drop(columns=TIMING))  # same rows, same order
    assert got.attrs == ref.attrs
    n_origins = ref["origin"].nunique()
    assert n_origins == 9
    per_origin = res.tasks[(res.tasks.job == "city0-bt") & res.tasks.origin.notna()]
    assert len(per_origin) == n_origins * len(models)  # one task per (variant, origin)
    assert per_origin["worker"].nunique() == 2  # origins of one city spread over the workers
    # the Hive dataset job equals the plain backtest on that city's own file
    ev2 = rg.read_events(cities["paths"]["city2"], category="category")
    ref2 = backtest({"count": make_model("CountHotspot")}, ev2, rg.HexGrid.from_events(ev2.between(None, 19800.0), 9, 1), 19800.0, 19830.0,
                    step_days=10, horizon_days=5, progress=False)
    pd.testing.assert_frame_equal(res.results["city2-bt"].drop(columns=TIMING), ref2.drop(columns=TIMING))
    serial = run_backtests([job, job2], "serial", progress=False)
    for name in res.names:
        pd.testing.assert_frame_equal(res.results[name].drop(columns=TIMING), serial.results[name].drop(columns=TIMING))
    assert set(res.concat()["job"]) == {"city0-bt", "city2-bt"}


# --------------------------------------------------------------------------- failures
def test_failing_jobs_are_reported_while_the_others_finish(client, cities):
    good = _forecast_jobs(cities)[:2]
    p = cities["paths"]
    jobs = [
        good[0],
        ForecastJob("missing-file", cities["dir"] / "nope.parquet", date="2024-05-01"),
        ForecastJob("no-lat-column", cities["no_lat"], date="2024-05-01"),
        ForecastJob("junk-file", cities["junk"], date="2024-05-01"),
        ForecastJob("model-error", p["city0"], model=ModelSpec("CountHotspot", {"window_days": -5}), date="2024-05-01"),
        ForecastJob("unknown-city", cities["hive"], city="atlantis", date="2024-05-01"),
        good[1],
        BacktestJob("bt-missing", cities["dir"] / "gone.parquet", models={"c": "CountHotspot"}, start="2024-03-01",
                    end="2024-04-01"),
        BacktestJob("bt-model-error", p["city1"], models={"ok": "CountHotspot", "bad": ModelSpec("KDEHotspot", {"bandwidth_m": -1.0})},
                    start="2024-03-01", end="2024-03-20"),
    ]
    res = run_jobs(jobs, client, progress=False)
    assert not res.ok
    assert list(res.results) == ["c0-count", "c1-kde"]
    assert list(res.errors) == ["missing-file", "no-lat-column", "junk-file", "model-error", "unknown-city",
                                "bt-missing", "bt-model-error"]
    assert set(res.results) | set(res.errors) == set(res.names)
    e = res.errors
    assert e["missing-file"].startswith("EventFileNotFoundError") and "nope.parquet" in e["missing-file"]
    assert e["no-lat-column"].startswith("EventDataError") and "lat='lat'" in e["no-lat-column"]
    assert e["junk-file"].startswith("EventDataError: cannot read event file")
    assert e["model-error"].startswith("ValueError") and "window_days" in e["model-error"]
    assert e["unknown-city"].startswith("EventDataError") and "atlantis" in e["unknown-city"]
    assert e["bt-missing"].startswith("EventFileNotFoundError")
    assert "variant 'bad'" in e["bt-model-error"] and "3 of 6 tasks failed" in e["bt-model-error"]
    serial = run_jobs(jobs, "serial", progress=False)
    assert serial.errors == res.errors
    for name in res.results:
        xr.testing.assert_identical(res.results[name], serial.results[name])
    with pytest.raises(BatchError, match="7 of 9 job"):
        res.raise_if_failed()
    with pytest.raises(BatchError, match="missing-file"):
        res["missing-file"]


def test_worker_killed_mid_run_loses_nothing(client, cities):
    """SIGKILL one worker process while tasks run: Dask reruns its tasks; every job is accounted for."""
    models = {"kde": ModelSpec("KDEHotspot", {"bandwidth_m": 300.0}), "count": "CountHotspot"}
    jobs = [
        BacktestJob(f"bt{i}", cities["paths"][f"city{i}"], models=models, start="2024-02-01", end="2024-04-20",
                    step_days=7, train_days=60)
        for i in range(3)
    ] + _forecast_jobs(cities)
    pids = client.run(os.getpid)
    victim_addr, victim_pid = sorted(pids.items())[0]
    box = {}

    def run():
        box["res"] = run_jobs(jobs, client, retries=2, progress=False)

    th = threading.Thread(target=run)
    th.start()
    killed = False
    deadline = time.time() + 90
    while th.is_alive() and time.time() < deadline:
        busy = client.processing()
        if busy.get(victim_addr):  # the victim is running a task right now
            time.sleep(0.2)
            os.kill(victim_pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    th.join(120)
    assert not th.is_alive()
    assert killed, "the worker could not be killed while busy (the batch finished too fast)"
    res = box["res"]
    assert set(res.results) | set(res.errors) == set(res.names)  # none silently missing
    assert res.ok, res.errors  # Dask reran the lost tasks on the surviving/restarted worker
    serial = run_jobs(jobs, "serial", progress=False)
    for name in res.names:
        a, b = res.results[name], serial.results[name]
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING))
        else:
            xr.testing.assert_identical(a, b)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_lost_results_are_reported_never_missing(client, cities):
    """Tasks cancelled on the cluster behind the batch's back come back as errors, not as gaps."""
    jobs = [
        BacktestJob(f"bt{i}", cities["paths"][f"city{i}"], models={"kde": "KDEHotspot"}, start="2024-02-01",
                    end="2024-04-20", train_days=60)
        for i in range(3)
    ]
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("res", run_jobs(jobs, client, progress=False)))
    th.start()
    cancelled = []
    deadline = time.time() + 30
    while th.is_alive() and time.time() < deadline and not cancelled:
        keys = [k for k in list(client.futures) if str(k).startswith("riskgrid-origin-bt1")]
        if len(keys) >= 3:
            cancelled = keys[-3:]
            client.cancel([distributed.Future(k, client) for k in cancelled], force=True)
        time.sleep(0.02)
    th.join(120)
    assert cancelled
    res = box["res"]
    assert set(res.results) | set(res.errors) == set(res.names)
    assert "bt1" in res.errors and "CancelledError" in res.errors["bt1"], res.errors
    assert {"bt0", "bt2"} <= set(res.results)


# --------------------------------------------------------------------------- clusters, CLI, specs
def test_local_cluster_sizing_and_numba_threads(cities, monkeypatch):
    monkeypatch.setattr("riskgrid.distributed.cluster._cores", lambda: 8)
    assert local_cluster_size() == (8, 1, 1)
    assert local_cluster_size(n_workers=2) == (2, 1, 4)
    assert local_cluster_size(n_workers=2, threads_per_worker=2) == (2, 2, 2)
    assert local_cluster_size(n_workers=3, numba_threads=2) == (3, 1, 2)
    monkeypatch.undo()
    jobs = _forecast_jobs(cities)[:1]
    with local_client(n_workers=1, threads_per_worker=1, numba_threads=1, dashboard_address=":0") as c:
        env = c.run(lambda: (os.environ.get("NUMBA_NUM_THREADS"), __import__("numba").config.NUMBA_NUM_THREADS))
        assert list(env.values()) == [("1", 1)]
        assert c.riskgrid_numba_threads == 1
        quiet = {k: v[1] for k, v in QUIET_CLUSTER_CONFIG.items()}
        assert list(c.run(lambda: {k: dask.config.get(k) for k in quiet}).values()) == [quiet]  # in the workers
        res = run_forecasts(jobs, c, progress=False)
    assert c.status == "closed"
    xr.testing.assert_identical(res.results["c0-count"], run_forecasts(jobs, "serial", progress=False).results["c0-count"])


def test_quiet_cluster_config_leaves_the_users_settings():
    """The LocalCluster's quieter timers replace Dask's defaults only, never a value the user's config sets."""
    keys = list(QUIET_CLUSTER_CONFIG)
    with dask.config.set({k: v[0] for k, v in QUIET_CLUSTER_CONFIG.items()}):
        assert quiet_cluster_config() == {k: v[1] for k, v in QUIET_CLUSTER_CONFIG.items()}
        with dask.config.set({keys[0]: "7ms"}):
            assert keys[0] not in quiet_cluster_config() and set(quiet_cluster_config()) == set(keys[1:])


def test_cli_batch_on_a_scheduler_address(client, cities, tmp_path):
    p = cities["paths"]
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(textwrap.dedent(f"""
        [defaults]
        horizon_days = 7
        columns = {{ category = "category" }}
        grid = {{ resolution = 9, buffer_rings = 1 }}

        [[forecast]]
        name = "city0"
        source = "{p['city0']}"
        date = "2024-05-01"
        model = {{ name = "CountHotspot", params = {{ window_days = 60 }} }}

        [[forecast]]
        name = "broken"
        source = "does_not_exist.parquet"
        date = "2024-05-01"

        [[backtest]]
        name = "city1-bt"
        source = "{p['city1']}"
        start = "2024-04-01"
        end = "2024-04-20"
        models = {{ count = {{ name = "CountHotspot" }}, kde = {{ name = "KDEHotspot", params = {{ bandwidth_m = 250.0 }} }} }}
    """))
    out = tmp_path / "out"
    r = CliRunner().invoke(cli_main, ["batch", str(jobs), "--scheduler", client.scheduler.address, "--out", str(out), "-q"])
    assert r.exit_code == 1, r.output
    assert "FAILED broken: EventFileNotFoundError" in r.output
    assert "2 of 3 job(s) succeeded" in r.output
    risk = xr.open_dataarray(out / "city0.nc")
    ref = _direct_forecast(p["city0"], "CountHotspot", {"window_days": 60}, "2024-05-01", 7)
    np.testing.assert_array_equal(risk.values, ref.values)
    bt = pd.read_parquet(out / "city1-bt.parquet")
    assert len(bt) == 3 * 2 * 4  # origins x variants x default coverages
    # relative sources resolve against the batch file's folder; a fully good file exits 0
    good = tmp_path / "good.toml"
    good.write_text(f'[[forecast]]\nname = "a"\nsource = "{p["city2"]}"\ndate = "2024-05-01"\n')
    r = CliRunner().invoke(cli_main, ["batch", str(good), "--serial", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output


def test_job_specs_and_loading_errors(cities, tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        run_jobs([ForecastJob("a", "x.parquet"), ForecastJob("a", "y.parquet")], "serial")
    with pytest.raises(ConfigError, match="horizon_days"):
        ForecastJob("a", "x.parquet", horizon_days=0)
    with pytest.raises(ConfigError, match="unknown column role"):
        ForecastJob("a", "x.parquet", columns={"latitude": "lat"})
    with pytest.raises(ConfigError, match="start and end"):
        BacktestJob("b", "x.parquet", models={"c": "CountHotspot"})
    with pytest.raises(TypeError, match="ForecastJob"):
        run_forecasts([BacktestJob("b", "x.parquet", models={"c": "CountHotspot"}, start=0, end=7)], "serial")
    assert ModelSpec.coerce({"name": "KDEHotspot", "params": {"bandwidth_m": 5.0}}) == ModelSpec("KDEHotspot", {"bandwidth_m": 5.0})
    bad = tmp_path / "bad.toml"
    bad.write_text('[[forecast]]\nname = "a"\nsource = "x.parquet"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_jobs(bad)
    job = '[[forecast]]\nname = "a"\nsource = "x.parquet"\n'
    for text, msg in [
        ('[defaults]\nhorizon_day = 3\n' + job, r"unknown key\(s\) \['horizon_day'\] in \[defaults\]"),  # a typo is not dropped
        (job + 'horizon_days = "7"\n', r"\[\[forecast\]\] #1 \('a'\)"),  # wrong type: names the job
        ('cluster = 3\n' + job, r"\[cluster\] must be a table"),
        ('forecast = [1]\n', r"\[\[forecast\]\] #1 must be a table"),
        ('[cluster]\nretries = "x"\n' + job, r"retries must be an integer"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_jobs(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text('[cluster]\nn_workers = 3\n[[backtest]]\nname = "b"\nsource = "data/x.parquet"\nstart = "2024-01-01"\n'
                  'end = "2024-02-01"\nmodels = { c = { name = "CountHotspot" } }\n')
    jobs, cluster = load_jobs(ok)
    assert cluster == {"n_workers": 3}
    assert jobs[0].source == str(tmp_path / "data" / "x.parquet") and jobs[0].models["c"] == ModelSpec("CountHotspot")
    # hive filtering reads only that city's rows; a city filter on a table without a city column is a clear error
    ev = load_events(cities["hive"], city="city2", columns={"category": "category"})
    ref = rg.read_events(cities["paths"]["city2"], category="category")
    np.testing.assert_array_equal(ev.t, ref.t)
    np.testing.assert_array_equal(ev.lat, ref.lat)
    with pytest.raises(EventDataError, match="city"):
        load_events(cities["paths"]["city0"], city="city0")
    clear_cache()
