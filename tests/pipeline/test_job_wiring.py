"""The nightly job's wiring of issue 14/15 pieces: zones metadata, exposure log, briefing, discovered records,
event validation settings, feed freshness, names and writer errors."""

import json
import os

import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from riskgrid.exposure import read_exposure
from riskgrid.pipeline import job

DATE = "2024-03-01"


def small_config(tmp_path, **over):
    """A tiny simulated city read from a Parquet file, CountHotspot; ``source`` marks every 4th row discovered."""
    data = tmp_path / "events.parquet"
    if not data.exists():
        df = rg.simulate(n_days=75, background_rate=8, theta=0.3, omega=0.3, sigma_m=80, extent_m=3000,
                         n_hotspots=3, start="2024-01-01", seed=3)
        df = df[["event_id", "timestamp", "lat", "lon", "category"]].copy()
        df["source"] = np.where(np.arange(len(df)) % 4 == 0, "discovered", "reported")
        df.to_parquet(data)
    cfg = {
        "city": "testville",
        "events": {"path": str(data), "category": "category"},
        "grid": {"resolution": 9, "buffer_rings": 1},
        "model": {"name": "CountHotspot", "params": {"window_days": 30}},
        "forecast": {"train_days": 40, "horizon_days": 2},
        "zones": {"n_zones": 3, "max_cells": 5, "min_gap_rings": 1},
        "outputs": {"raster_pixel_m": 80, "formats": ["zones", "png", "briefing"]},
    }
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def test_zones_geojson_carries_window_horizon_units_model(tmp_path):
    man = job.run_forecast(small_config(tmp_path), DATE, tmp_path / "out")
    with open(os.path.join(man["folder"], "zones.geojson"), encoding="utf-8") as fh:
        gj = json.load(fh)
    meta = gj["riskgrid"]
    assert meta["window_start"] == DATE
    assert meta["window_end"].startswith("2024-03-03")
    assert meta["horizon_days"] == 2.0
    assert meta["model"] == "CountHotspot"
    assert "expected events" in meta["units"]
    assert len(gj["features"]) == man["zones"]["n_zones"] > 0
    for i, f in enumerate(gj["features"], start=1):
        assert f["properties"]["zone"] == i
        for k in ("window_start", "horizon_days", "units", "model"):
            assert f["properties"][k] == meta[k]


def test_exposure_log_appended_once_per_date(tmp_path):
    cfg = small_config(tmp_path, events={"source_column": "source"})
    out = tmp_path / "out"
    man = job.run_forecast(cfg, DATE, out)
    log = read_exposure(out, name="testville")
    zone_cells = sum(z["n_cells"] for z in man["zones"]["zones"])
    assert set(log["run_date"]) == {DATE}
    assert (log["zone"] > 0).sum() == zone_cells
    assert len(log) >= max(zone_cells, job.EXPOSURE_TOP_N)
    assert log["n_train"].notna().all() and (log["n_train_discovered"] <= log["n_train"]).all()
    assert "exposure" not in os.listdir(man["folder"])  # outside the dated folder
    assert sorted(os.listdir(out)) == ["exposure", "testville"]
    job.run_forecast(cfg, DATE, out)  # rerun: rows replaced, not duplicated
    pd.testing.assert_frame_equal(read_exposure(out, name="testville"), log)
    job.run_forecast(cfg, "2024-03-02", out)
    assert read_exposure(out, name="testville")["run_date"].nunique() == 2


def test_exposure_log_switch_and_no_source_column(tmp_path):
    out = tmp_path / "out"
    man = job.run_forecast(small_config(tmp_path), DATE, out)
    log = read_exposure(os.path.dirname(os.path.dirname(man["folder"])), name="testville")
    assert len(log) > 0 and log["n_train"].isna().all()
    out2 = tmp_path / "out2"
    man = job.run_forecast(small_config(tmp_path, outputs={"exposure_log": False}), DATE, out2)
    assert len(read_exposure(os.path.dirname(os.path.dirname(man["folder"])), name="testville")) == 0


def test_briefing_product_listed_and_trend_from_log(tmp_path):
    out = tmp_path / "out"
    cfg = small_config(tmp_path)
    job.run_forecast(cfg, "2024-02-28", out)
    man = job.run_forecast(cfg, DATE, out)
    assert man["products"]["briefing"] == "briefing.html"
    paths = [f["path"] for f in man["files"]]
    assert "briefing.html" in paths
    html = open(os.path.join(man["folder"], "briefing.html"), encoding="utf-8").read()
    assert "data:image/png;base64," in html
    assert "testville" in html and "CountHotspot" in html
    for z in man["zones"]["zones"]:
        assert f"Zone {z['zone']}" in html
    assert "02-28" in html  # the previous run's flags are the zone's trend
    assert "NOT a zero-tolerance initiative" in html


def test_briefing_without_png_product(tmp_path):
    man = job.run_forecast(small_config(tmp_path, outputs={"formats": ["briefing"]}), DATE, tmp_path / "out")
    assert [f["path"] for f in man["files"]] == ["briefing.html"]
    html = open(os.path.join(man["folder"], "briefing.html"), encoding="utf-8").read()
    assert "data:image/png;base64," in html
