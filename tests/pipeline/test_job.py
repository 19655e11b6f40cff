"""The nightly job: products + manifest, idempotency, atomicity under SIGKILL, clean one-line errors."""

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import riskgrid as rg
from riskgrid.cli import main
from riskgrid.pipeline import job, publish
from riskgrid.pipeline.config import validate_config

DATE = "2024-03-01"

# The SIGKILL test's fork server imports this module (see set_forkserver_preload below) with this
# variable set: it runs the job once, so that every forked child starts warm (imports, numba cache,
# matplotlib fonts) and the random kill times spread over the job's own steps.
_WARM_ENV = "RISKGRID_TEST_FORKSERVER_WARMUP"
if os.environ.get(_WARM_ENV):  # pragma: no cover - runs in the fork server only
    _warm = json.loads(os.environ[_WARM_ENV])
    job.run_forecast(_warm["cfg"], _warm["date"], _warm["out"])


def small_config(tmp_path, **over):
    """A tiny simulated city read from a Parquet file (the real code path), CountHotspot, coarse raster."""
    data = tmp_path / "events.parquet"
    if not data.exists():
        df = rg.simulate(n_days=75, background_rate=8, theta=0.3, omega=0.3, sigma_m=80, extent_m=3000,
                         n_hotspots=3, start="2024-01-01", seed=3)
        df[["event_id", "timestamp", "lat", "lon", "category"]].to_parquet(data)
    cfg = {
        "city": "testville",
        "events": {"path": str(data), "category": "category"},
        "grid": {"resolution": 9, "buffer_rings": 1},
        "model": {"name": "CountHotspot", "params": {"window_days": 30}},
        "forecast": {"train_days": 40, "horizon_days": 1},
        "zones": {"n_zones": 3, "max_cells": 5, "min_gap_rings": 1},
        "outputs": {"raster_pixel_m": 60},
    }
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def write_toml(cfg, path):
    lines = []
    for k, v in cfg.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {json.dumps(v)}")
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    vv = "{ " + ", ".join(f"{a} = {json.dumps(b)}" for a, b in vv.items()) + " }"
                else:
                    vv = json.dumps(vv)
                lines.append(f"{kk} = {vv}")
    path.write_text("\n".join(lines) + "\n")
    return path


def data_hashes(folder):
    man = json.load(open(os.path.join(folder, "manifest.json")))
    return {f["path"]: f["sha256"] for f in man["files"]}


def test_job_writes_every_product_and_manifest(tmp_path):
    cfg = small_config(tmp_path)
    man = rg.run_forecast(cfg, DATE, tmp_path / "out")
    folder = tmp_path / "out" / "testville" / DATE
    assert man["folder"] == str(folder) and not man["skipped"]
    assert sorted(os.listdir(tmp_path / "out" / "testville")) == [DATE]  # no temporary folder left
    names = set(os.listdir(folder))
    assert names == set(job.PRODUCTS.values()) | {job.ZONES_CSV} | set(job.ZONES_EXPLAINED) | {"manifest.json"}
    on_disk = json.load(open(folder / "manifest.json"))
    assert on_disk["files"] == man["files"]
    for f in man["files"]:  # every file listed with its true hash and size
        p = folder / f["path"]
        assert p.stat().st_size == f["bytes"] and publish.sha256_file(p) == f["sha256"]
    listed = {f["path"].split("/")[0] for f in man["files"]}
    assert listed == set(job.PRODUCTS.values()) | {job.ZONES_CSV} | set(job.ZONES_EXPLAINED)
    assert man["riskgrid_version"] == rg.__version__
    valid = validate_config(cfg)
    assert man["config_sha256"] == publish.config_sha256(valid)
    assert validate_config(valid) == valid  # validating twice changes nothing (run_forecast relies on it)
    assert man["inputs"][0]["sha256"] == publish.sha256_file(cfg["events"]["path"])
    # fitted on [date - 40 d, date) only
    ev = rg.read_events(cfg["events"]["path"], category="category")
    n_train = len(ev.between(pd.Timestamp(DATE) - pd.Timedelta(days=40), DATE))
    assert man["n_events_train"] == n_train and 0 < man["n_events_used"] <= n_train
    assert man["fit"]["model"] == "CountHotspot" and man["fit"]["params"]["window_days"] == 30
    assert set(man["wall_times_s"]) >= {"read events", "fit", "predict", "zones", "write geotiff", "total"}
    assert 0 < man["zones"]["captured_share"] <= man["zones"]["best_unconstrained_share"] <= 1
    ds = rg.read_risk(folder / "risk.nc")
    assert ds.attrs["forecast_date"] == DATE and ds.attrs["city"] == "testville"
    assert ds.attrs["forecast_start"].startswith(DATE)


def test_rerun_is_byte_identical_and_skip_existing_does_no_work(tmp_path, monkeypatch):
    cfg = small_config(tmp_path)
    out = tmp_path / "out"
    m1 = rg.run_forecast(cfg, DATE, out)
    h1 = data_hashes(m1["folder"])
    m2 = rg.run_forecast(cfg, DATE, out)  # overwrite in place
    assert data_hashes(m2["folder"]) == h1
    assert sorted(os.listdir(out / "testville")) == [DATE]
    import riskgrid.pipeline.forecasting as forecasting

    def no_work(*args, **kwargs):
        raise AssertionError("skip_existing must not read, fit or write anything")

    with monkeypatch.context() as mp:
        mp.setattr(forecasting, "fit_forecast", no_work)
        mp.setattr(job, "_run", no_work)
        m3 = rg.run_forecast(cfg, DATE, out, skip_existing=True)
    assert m3["skipped"]
    assert data_hashes(m3["folder"]) == h1
    # a broken output folder is not "complete": skip_existing recomputes it
    os.remove(os.path.join(m1["folder"], "risk.tif"))
    m4 = rg.run_forecast(cfg, DATE, out, skip_existing=True)
    assert not m4["skipped"] and data_hashes(m4["folder"]) == h1


def _cli(args):
    r = CliRunner().invoke(main, args)
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(
    "case, match",
    [
        ("bad_key", "unknown key(s) ['resolutoin'] in [grid]"),
        ("missing_file", "event file not found"),
        ("no_events", "no events in the training window"),
        ("invalid_rows", "invalid"),
        ("truncated", "cannot read event file"),
        ("bad_date", "--date"),
        ("unknown_model", "unknown model"),
    ],
)
def test_failures_give_one_line_error_and_no_output(tmp_path, case, match):
    cfg = small_config(tmp_path)
    date = DATE
    if case == "bad_key":
        cfg["grid"]["resolutoin"] = 9
    elif case == "missing_file":
        cfg["events"]["path"] = str(tmp_path / "nope.parquet")
    elif case == "no_events":
        date = "2023-01-01"
    elif case == "invalid_rows":
        df = pd.read_parquet(cfg["events"]["path"])
        df.loc[5, "lat"] = 95.0
        df.to_csv(tmp_path / "bad.csv", index=False)
        cfg["events"]["path"] = str(tmp_path / "bad.csv")
    elif case == "truncated":
        raw = open(cfg["events"]["path"], "rb").read()
        (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) // 2])
        cfg["events"]["path"] = str(tmp_path / "cut.parquet")
    elif case == "bad_date":
        date = "2024-13-45"
    elif case == "unknown_model":
        cfg["model"]["name"] = "NoSuchModel"
    toml = write_toml(cfg, tmp_path / "job.toml")
    code, out, err = _cli(["forecast", str(toml), "--date", date, "--out", str(tmp_path / "out"), "-q"])
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err
    assert not (tmp_path / "out").exists()


def test_cli_subprocess_truncated_input(tmp_path):
    """The real executable: exit status 1, exactly one stderr line, no output folder."""
    cfg = small_config(tmp_path)
    raw = open(cfg["events"]["path"], "rb").read()
    (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) - 100])
    cfg["events"]["path"] = str(tmp_path / "cut.parquet")
    bad = write_toml(cfg, tmp_path / "bad.toml")
    p = subprocess.run([sys.executable, "-m", "riskgrid.cli", "forecast", str(bad), "--date", DATE, "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and p.stderr.startswith("error: cannot read event file")
    assert p.stdout == "" and not (tmp_path / "o").exists()


def _visible(parent):
    return sorted(n for n in os.listdir(parent) if not n.startswith(".")) if os.path.isdir(parent) else []


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_partial_output(tmp_path, monkeypatch):
    """Run the job in child processes, SIGKILL them at random times (>= 20 kills) and check the invariants.

    Children are forked from a fresh fork server with the libraries preloaded,
    so they start at once and the kill times (uniform over the job's duration)
    fall on every step: reading, fitting, each writer, hashing, the renames.
    """
    cfg = validate_config(small_config(tmp_path))
    out = str(tmp_path / "out")
    monkeypatch.setenv(_WARM_ENV, json.dumps({"cfg": cfg, "date": DATE, "out": str(tmp_path / "warm")}))
    here = os.path.dirname(os.path.abspath(__file__))  # (the fork server ignores sys.path before 3.12)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["riskgrid", "riskgrid.pipeline.job", __name__])  # __name__: runs the warm-up job
    parent = os.path.join(out, "testville")
    target = os.path.join(parent, DATE)

    def run_child(kill_after=None):
        p = ctx.Process(target=job.run_forecast, args=(cfg, DATE, out))
        t0 = time.perf_counter()
        p.start()
        p.join(120 if kill_after is None else kill_after)
        if kill_after is None:
            assert p.exitcode == 0
            return time.perf_counter() - t0
        if p.exitcode is None:
            os.kill(p.pid, signal.SIGKILL)
            p.join(30)
            return p.exitcode == -signal.SIGKILL
        return False

    run_child()  # starts the (warm) fork server
    duration = run_child()  # overwrites: a complete output is in place
    reference = data_hashes(target)
    rng = np.random.default_rng(2024)
    n_killed = n_runs = 0
    while n_killed < 20:
        n_runs += 1
        assert n_runs <= 40, f"only {n_killed} of {n_runs} runs were killed before they finished"
        if n_runs % 5 == 0:
            shutil_rm(target)  # also kill first-time runs (no previous output)
        existed = os.path.isdir(target)
        n_killed += run_child(kill_after=float(rng.uniform(0.0, duration)))
        vis = _visible(parent)
        assert vis in ([], [DATE]), vis
        if vis:  # a visible folder is always complete, with a valid manifest and true hashes
            assert publish.manifest_ok(target, verify_hashes=True)
            assert data_hashes(target) == reference
        elif existed:
            # killed between the two renames: the previous output is aside, restored by the next run
            publish.recover(parent, DATE, target)
            assert _visible(parent) == [DATE] and data_hashes(target) == reference
    # the next run cleans every leftover temporary folder and gives the same bytes
    run_child()
    assert os.listdir(parent) == [DATE]
    assert data_hashes(target) == reference


def shutil_rm(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_gridhawkes_job(tmp_path):
    cfg = small_config(tmp_path, model={"name": "GridHawkes", "params": {"spillover_rings": 1}})
    cfg["outputs"]["formats"] = ["netcdf", "zones"]
    man = rg.run_forecast(cfg, DATE, tmp_path / "out")
    assert man["fit"]["model"] == "GridHawkes" and man["fit"]["params"]["spillover_rings"] == 1
    assert sorted(f["path"] for f in man["files"]) == ["risk.nc", "zones.csv", "zones.geojson", "zones_explained.csv", "zones_explained.parquet"]
    assert man["risk_total"] > 0


def test_demo_runs_the_same_job(tmp_path):
    code, out, err = _cli(["demo", "--out", str(tmp_path), "-q"])
    assert code == 0, err
    assert "risk_map.png" in out and "manifest.json" in out
    folder = tmp_path / "simulated-city" / "2024-12-31"
    man = json.load(open(folder / "manifest.json"))
    assert {f["path"].split("/")[0] for f in man["files"]} == (set(job.PRODUCTS.values()) | {job.ZONES_CSV}
                                                                | set(job.ZONES_EXPLAINED))
    assert man["inputs"][0]["path"] == "simulate"
