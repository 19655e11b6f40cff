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


# --------------------------------------------------------------------------- #
# discovered vs reported (issue 14 item 5)
# --------------------------------------------------------------------------- #
def _fit_counts(cfg, grid=None):
    from riskgrid.pipeline.config import validate_config
    from riskgrid.pipeline.forecasting import fit_forecast
    from riskgrid.pipeline.specs import ForecastJob

    fc = fit_forecast(ForecastJob.from_config(validate_config(cfg), date=DATE), grid=grid)
    return fc


def test_discovered_exclude_and_down_weight_change_the_fit_as_documented(tmp_path):
    base = small_config(tmp_path)
    keep = _fit_counts(small_config(tmp_path, events={"source_column": "source"}))
    grid = keep.grid
    excl = _fit_counts(small_config(tmp_path, events={"source_column": "source", "discovered": "exclude"}), grid)
    half = _fit_counts(small_config(tmp_path, events={"source_column": "source", "discovered": 0.25}), grid)
    plain = _fit_counts(base, grid)
    np.testing.assert_array_equal(plain.model.counts_, keep.model.counts_)  # "keep" = no source column
    disc = keep.events.extra["source"].to_numpy() == "discovered"
    assert disc.sum() > 0 and len(excl.events) == len(keep.events) - disc.sum()
    assert (excl.events.extra["source"] == "reported").all()
    # CountHotspot counts: a discovered record counts as 0 (exclude) or 0.25 (down-weighted) of an event
    n_disc = keep.model.counts_ - excl.model.counts_
    assert n_disc.sum() > 0 and np.all(n_disc >= 0)
    cell = grid.assign(keep.train.lat, keep.train.lon)
    tr = keep.train
    in_win = (tr.t >= keep.date_days - 30) & (cell >= 0) & (tr.extra["source"].to_numpy() == "discovered")
    np.testing.assert_array_equal(n_disc, np.bincount(cell[in_win], minlength=len(grid)))
    np.testing.assert_allclose(half.model.counts_, excl.model.counts_ + 0.25 * n_disc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(half.risk.values.sum(), excl.risk.values.sum() + 0.25 * (keep.risk.values.sum()
                               - excl.risk.values.sum()), rtol=1e-12)


def test_discovered_settings_are_checked(tmp_path):
    from riskgrid.errors import ConfigError
    from riskgrid.pipeline.config import validate_config

    for bad in (0, 1, 1.5, -0.2, "drop", True):
        with pytest.raises(ConfigError, match="events.discovered"):
            validate_config(small_config(tmp_path, events={"source_column": "source", "discovered": bad}))
    with pytest.raises(ConfigError, match="needs events.source_column"):
        validate_config(small_config(tmp_path, events={"discovered": "exclude"}))
    with pytest.raises(ConfigError, match="'nosuch' is not a column"):
        job.run_forecast(small_config(tmp_path, events={"source_column": "nosuch", "discovered": "exclude"}), DATE,
                         tmp_path / "out")


# --------------------------------------------------------------------------- #
# [events] validation keys (issue 15) reach read_events, and the manifest records them
# --------------------------------------------------------------------------- #
def _with_rows(tmp_path, name, extra_rows=None, n_dup=0, fmt=None):
    """The small city's events plus some rows (dicts) and ``n_dup`` repeated rows, as Parquet (or CSV with ``fmt``)."""
    small_config(tmp_path)
    df = pd.read_parquet(tmp_path / "events.parquet")
    rows = [df]
    if n_dup:
        rows.append(df.iloc[100:100 + n_dup])
    if extra_rows:
        base = df.iloc[200]
        rows.append(pd.DataFrame([{**base.to_dict(), **r} for r in extra_rows]))
    out = pd.concat(rows, ignore_index=True)
    if fmt is not None:
        out["timestamp"] = pd.to_datetime(out["timestamp"]).dt.strftime(fmt)
        path = tmp_path / f"{name}.csv"
        out.to_csv(path, index=False)
    else:
        path = tmp_path / f"{name}.parquet"
        out.to_parquet(path)
    return str(path)


def _run(tmp_path, sub, **events):
    cfg = small_config(tmp_path, events=events, outputs={"formats": ["zones"], "exposure_log": False})
    return job.run_forecast(cfg, DATE, tmp_path / sub)


def test_id_column_rejects_duplicate_ids_and_keep_duplicates_keeps_them(tmp_path):
    path = _with_rows(tmp_path, "dups", n_dup=5)
    no_id = _run(tmp_path, "a", path=path, on_invalid="drop")
    assert no_id["n_events_rejected"] == 0  # pruned columns cannot tell duplicates apart: all kept
    man = _run(tmp_path, "b", path=path, on_invalid="drop", id="event_id")
    assert man["n_events_rejected"] == 5 and man["events"]["rejected_reasons"] == {"duplicate": 5}
    assert man["n_events_input"] == no_id["n_events_input"] - 5
    assert man["events"]["validation"]["duplicates"] == "same 'event_id'"
    kept = _run(tmp_path, "c", path=path, on_invalid="drop", id="event_id", keep_duplicates=True)
    assert kept["n_events_rejected"] == 0 and kept["n_events_input"] == no_id["n_events_input"]
    with pytest.raises(rg.EventDataError, match="duplicate"):
        _run(tmp_path, "d", path=path, id="event_id")


def test_time_format_is_used(tmp_path):
    path = _with_rows(tmp_path, "dayfirst", fmt="%d/%m/%Y %H:%M:%S.%f")
    ref = _run(tmp_path, "ref", path=str(tmp_path / "events.parquet"))
    man = _run(tmp_path, "a", path=path, time_format="%d/%m/%Y %H:%M:%S.%f")
    assert man["events"]["validation"]["time_format"] == "%d/%m/%Y %H:%M:%S.%f"
    assert man["n_events_train"] == ref["n_events_train"] and man["risk_total"] == pytest.approx(ref["risk_total"])
    with pytest.raises(rg.EventDataError):  # the wrong order is refused, never guessed
        _run(tmp_path, "b", path=path, time_format="%m/%d/%Y %H:%M:%S.%f")


def test_year_range_bbox_far_km_and_within(tmp_path):
    small = pd.read_parquet(small_config(tmp_path)["events"]["path"])
    lat0, lon0 = float(small["lat"].median()), float(small["lon"].median())
    old = [{"timestamp": pd.Timestamp("2023-12-30 10:00")}]
    path = _with_rows(tmp_path, "old", extra_rows=old)
    assert _run(tmp_path, "a", path=path, on_invalid="drop")["n_events_rejected"] == 0
    man = _run(tmp_path, "b", path=path, on_invalid="drop", year_range=[2024, 2025])
    assert man["events"]["rejected_reasons"] == {"time_out_of_range": 1}
    assert man["events"]["validation"]["year_range"] == [2024, 2025]
    # a point 20 km north: inside the automatic far-from-the-bulk threshold (50 km), outside a declared area
    north = [{"lat": lat0 + 0.18, "lon": lon0}]
    path = _with_rows(tmp_path, "north", extra_rows=north)
    assert _run(tmp_path, "c", path=path, on_invalid="drop")["n_events_rejected"] == 0
    bbox = [lon0 - 0.1, lat0 - 0.1, lon0 + 0.1, lat0 + 0.1]
    man = _run(tmp_path, "d", path=path, on_invalid="drop", bbox=bbox)
    assert man["events"]["rejected_reasons"] == {"outside_study_area": 1}
    man = _run(tmp_path, "e", path=path, on_invalid="drop", far_km=10)
    assert man["events"]["rejected_reasons"] == {"far_from_study_area": 1}
    ring = [[lon0 - 0.1, lat0 - 0.1], [lon0 + 0.1, lat0 - 0.1], [lon0 + 0.1, lat0 + 0.1], [lon0 - 0.1, lat0 + 0.1],
            [lon0 - 0.1, lat0 - 0.1]]
    poly = tmp_path / "area.geojson"
    poly.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    from riskgrid.pipeline.config import validate_config

    rel = small_config(tmp_path, events={"within": "area.geojson"})
    assert validate_config(rel, path=str(tmp_path / "city.toml"))["events"]["within"] == str(poly)  # like other paths
    man = _run(tmp_path, "f", path=path, on_invalid="drop", within=str(poly))
    assert man["events"]["rejected_reasons"] == {"outside_study_area": 1}
    cfg = small_config(tmp_path, events={"path": path, "on_invalid": "drop", "within": "grid"},
                       grid={"geojson": str(poly)}, outputs={"formats": ["zones"], "exposure_log": False})
    man = job.run_forecast(cfg, DATE, tmp_path / "g")
    assert man["events"]["rejected_reasons"] == {"outside_study_area": 1}


def test_event_key_values_are_checked(tmp_path):
    from riskgrid.errors import ConfigError
    from riskgrid.pipeline.config import validate_config

    bad = [({"year_range": [2025, 2024]}, "events.year_range"), ({"year_range": [2024]}, "events.year_range"),
           ({"bbox": [1, 2, 3]}, "events.bbox"), ({"bbox": [10, 50, 5, 60]}, "events.bbox"),
           ({"bbox": [0, -95, 1, 1]}, "events.bbox"), ({"far_km": "never"}, "events.far_km"),
           ({"far_km": -1}, "events.far_km"), ({"far_km": float("nan")}, "events.far_km"),
           ({"within": "grid"}, "needs \\[grid\\] geojson"), ({"time_format": " "}, "events.time_format"),
           ({"keep_duplicates": "yes"}, "events.keep_duplicates"), ({"id": 3}, "events.id")]
    for events, match in bad:
        with pytest.raises(ConfigError, match=match):
            validate_config(small_config(tmp_path, events=events))


# --------------------------------------------------------------------------- #
# --date only YYYY-MM-DD
# --------------------------------------------------------------------------- #
def test_date_only_iso_on_the_command_line_and_in_the_api(tmp_path):
    from click.testing import CliRunner

    from riskgrid.cli import main
    from riskgrid.errors import ConfigError

    cfg = small_config(tmp_path)
    toml = tmp_path / "city.toml"
    toml.write_text("\n".join([f'city = "{cfg["city"]}"', "[events]", f'path = "{cfg["events"]["path"]}"',
                               "[model]", 'name = "CountHotspot"', "[outputs]", 'formats = ["zones"]']))
    for bad in ("01/10/2019", "2019-1-10", "2019-01-10 12:00", "2019-02-30", "10.01.2019"):
        res = CliRunner().invoke(main, ["forecast", str(toml), "--date", bad, "--out", str(tmp_path / "o"), "-q"])
        assert res.exit_code == 1, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: --date"), lines
        assert "YYYY-MM-DD" in lines[0] or "is not a calendar date" in lines[0], lines
        assert not (tmp_path / "o").exists()
        with pytest.raises(ConfigError, match="--date"):
            job.run_forecast(cfg, bad, tmp_path / "o")
    res = CliRunner().invoke(main, ["audit", str(tmp_path), "--start", "01/10/2019"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
    assert job.run_forecast(cfg, pd.Timestamp(DATE), tmp_path / "p")["forecast_date"] == DATE


# --------------------------------------------------------------------------- #
# feed freshness
# --------------------------------------------------------------------------- #
def _stale_path(tmp_path, end):
    small_config(tmp_path)
    df = pd.read_parquet(tmp_path / "events.parquet")
    path = tmp_path / f"until-{end}.parquet"
    df[pd.to_datetime(df["timestamp"]) < pd.Timestamp(end)].to_parquet(path)
    return str(path)


def test_stale_feed_stops_the_job_naming_last_event_and_setting(tmp_path):
    from click.testing import CliRunner

    from riskgrid.cli import main

    path = _stale_path(tmp_path, "2024-02-20")  # 10 days before DATE
    cfg = small_config(tmp_path, events={"path": path})
    last = pd.read_parquet(path)["timestamp"].max()
    with pytest.raises(rg.EventDataError, match="stale feed") as err:
        job.run_forecast(cfg, DATE, tmp_path / "out")
    msg = str(err.value)
    assert f"{last:%Y-%m-%d %H:%M:%S}" in msg and "max_staleness_days = 3" in msg and "allow_stale" in msg
    assert not (tmp_path / "out" / "testville" / DATE).exists()
    toml = tmp_path / "stale.toml"
    toml.write_text("\n".join(['city = "testville"', "[events]", f'path = "{path}"', "[model]",
                               'name = "CountHotspot"', "[outputs]", 'formats = ["zones"]']))
    res = CliRunner().invoke(main, ["forecast", str(toml), "--date", DATE, "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 1 and res.output.startswith("error: stale feed") and len(res.output.splitlines()) == 1
    # a larger limit lets it run, recording the (non-stale) age of the feed
    man = job.run_forecast(small_config(tmp_path, events={"path": path}, forecast={"max_staleness_days": 14}),
                           DATE, tmp_path / "out14")
    st = man["staleness"]
    assert st["stale"] is False and st["stale_days"] == pytest.approx((pd.Timestamp(DATE) - last) / pd.Timedelta(days=1))


def test_allow_stale_runs_and_records_the_staleness(tmp_path):
    path = _stale_path(tmp_path, "2024-02-20")
    cfg = small_config(tmp_path, events={"path": path}, forecast={"allow_stale": True},
                       outputs={"formats": ["netcdf", "zones", "briefing"]})
    man = job.run_forecast(cfg, DATE, tmp_path / "out")
    last = pd.read_parquet(path)["timestamp"].max()
    days = (pd.Timestamp(DATE) - last) / pd.Timedelta(days=1)
    assert man["staleness"]["stale"] is True and man["staleness"]["stale_days"] == pytest.approx(days, abs=1e-5)
    assert man["staleness"]["last_event"] == f"{last:%Y-%m-%d %H:%M:%S}"
    ds = rg.read_risk(os.path.join(man["folder"], "risk.nc"))
    assert float(ds.attrs["stale_days"]) == pytest.approx(days, abs=1e-5)
    html = open(os.path.join(man["folder"], "briefing.html"), encoding="utf-8").read()
    assert "STALE DATA" in html
    fresh = job.run_forecast(small_config(tmp_path, outputs={"formats": ["netcdf"]}), DATE, tmp_path / "fresh")
    assert fresh["staleness"]["stale"] is False
    assert "stale_days" not in rg.read_risk(os.path.join(fresh["folder"], "risk.nc")).attrs


# --------------------------------------------------------------------------- #
# names, numeric ranges, leftovers of dead runs, disk full
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["new\nline", " ", "a\x00b", ".tmp-2024-03-01-1-x", ".hidden", "x" * 101, "a/b",
                                  "a\\b", "..", " lead", "tab\there"])
def test_bad_names_refused_before_any_work(tmp_path, name, monkeypatch):
    from riskgrid.errors import ConfigError
    from riskgrid.pipeline import source
    from riskgrid.pipeline.specs import ForecastJob

    def boom(*a, **k):  # pragma: no cover - reached only if the name check came too late
        raise AssertionError("events were read before the name was checked")

    monkeypatch.setattr(source, "load_job_events", boom)
    with pytest.raises(ConfigError, match="city"):
        job.run_forecast(small_config(tmp_path, city=name), DATE, tmp_path / "out")
    with pytest.raises(ConfigError, match="job name"):
        ForecastJob(name=name, source=str(tmp_path / "events.parquet"))
    assert not (tmp_path / "out").exists()


def test_good_names_accepted(tmp_path):
    from riskgrid.pipeline.config import validate_config

    for name in ("chicago", "New York City", "x" * 100, "são-paulo_2024", "a.b"):
        assert validate_config(small_config(tmp_path, city=name))["city"] == name


@pytest.mark.parametrize("section,key,value", [
    ("forecast", "horizon_days", 1e9), ("forecast", "train_days", float("inf")), ("forecast", "train_days", 1e6),
    ("forecast", "max_staleness_days", float("inf")), ("backtest", "step_days", 1e12),
    ("backtest", "train_days", float("inf")), ("outputs", "raster_pixel_m", float("inf"))])
def test_numeric_settings_out_of_range_name_the_setting(tmp_path, section, key, value):
    from riskgrid.errors import ConfigError
    from riskgrid.pipeline.config import validate_config

    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        validate_config(small_config(tmp_path, **{section: {key: value}}))


def test_leftovers_of_dead_runs_of_any_date_are_cleaned(tmp_path):
    from riskgrid.pipeline import publish

    out = tmp_path / "out"
    cfg = small_config(tmp_path, outputs={"formats": ["zones"], "exposure_log": False})
    job.run_forecast(cfg, "2024-02-28", out)
    city = out / "testville"
    dead = 2 ** 22 + 12345  # no such process
    while publish._pid_alive(dead):  # pragma: no cover
        dead += 1
    (city / f".tmp-2024-02-10-{dead}-aaaa").mkdir()
    (city / f".tmp-2024-02-10-{dead}-aaaa" / "risk.nc").write_text("partial")
    os.rename(city / "2024-02-28", city / f".old-2024-02-28-{dead}-bbbb")  # killed between the two renames
    (city / f".old-2024-01-05-{dead}-cccc").write_text("a date path that was a file")
    live = city / f".tmp-2024-02-11-{os.getpid()}-dddd"  # a live run's folder stays
    live.mkdir()
    job.run_forecast(cfg, DATE, out)
    assert sorted(os.listdir(city)) == sorted(["2024-02-28", DATE, live.name])
    assert publish.manifest_ok(str(city / "2024-02-28"))  # restored, complete


def test_date_path_that_is_a_file_is_replaced_without_leftover(tmp_path):
    out = tmp_path / "out"
    (out / "testville").mkdir(parents=True)
    (out / "testville" / DATE).write_text("not a folder")
    man = job.run_forecast(small_config(tmp_path, outputs={"formats": ["zones"]}), DATE, out)
    assert os.path.isdir(man["folder"]) and sorted(os.listdir(out / "testville")) == [DATE]


@pytest.mark.parametrize("fmt,writer", [("netcdf", "write_netcdf"), ("geotiff", "write_geotiff"),
                                        ("zones", "write_zones_geojson"), ("briefing", None), ("manifest", None)])
def test_disk_full_is_one_error_line_naming_the_file(tmp_path, monkeypatch, fmt, writer):
    import errno

    from click.testing import CliRunner

    import riskgrid.products as products
    from riskgrid.cli import main
    from riskgrid.errors import OutputWriteError
    from riskgrid.products import briefing

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if fmt == "briefing":
        monkeypatch.setattr(briefing, "write_briefing", full)
    elif fmt == "manifest":
        monkeypatch.setattr(job, "fsync_tree", full)  # the manifest's write + fsync
    else:
        monkeypatch.setattr(products, writer, full)
    cfg = small_config(tmp_path, outputs={"formats": ["netcdf", "geotiff", "zones", "briefing"]})
    name = {"netcdf": "risk.nc", "geotiff": "risk.tif", "zones": "zones.geojson", "briefing": "briefing.html",
            "manifest": "manifest.json"}[fmt]
    with pytest.raises(OutputWriteError, match=f"{name}: No space left on device") as err:
        job.run_forecast(cfg, DATE, tmp_path / "out")
    assert err.value.errno == errno.ENOSPC
    assert not (tmp_path / "out" / "testville").exists()  # nothing published, no empty folder left
    toml = tmp_path / "city.toml"
    toml.write_text("\n".join(['city = "testville"', "[events]", f'path = "{cfg["events"]["path"]}"', "[model]",
                               'name = "CountHotspot"', "[outputs]",
                               'formats = ["netcdf", "geotiff", "zones", "briefing"]']))
    res = CliRunner().invoke(main, ["forecast", str(toml), "--date", DATE, "--out", str(tmp_path / "o"), "-q"])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: cannot write"), res.output
    assert os.path.join("testville", DATE, name) in lines[0] and "No space left on device" in lines[0]


def test_netcdf_runtime_error_is_one_line(tmp_path, monkeypatch):
    import riskgrid.products as products
    from riskgrid.errors import OutputWriteError

    def hdf(*a, **k):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(products, "write_netcdf", hdf)
    with pytest.raises(OutputWriteError, match=r"risk.nc: RuntimeError: NetCDF: HDF error"):
        job.run_forecast(small_config(tmp_path, outputs={"formats": ["netcdf"]}), DATE, tmp_path / "out")
