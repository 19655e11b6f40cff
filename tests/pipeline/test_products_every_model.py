"""Every model's output attributes go into every product format; `riskgrid batch` writes every product of every model.

The GridHawkes batch job crashed on a bool attribute (``param_cross_excitation``)
and left a partial ``<job>.nc``; a failing write hid the FAILED line of another
job. These tests write the real attributes of every model (bools, ``None``,
tuples, dicts, numpy scalars and arrays) to every format and read them back.
"""

import json
import os
import textwrap

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import riskgrid as rg
from riskgrid import products
from riskgrid.cli import main
from riskgrid.models import available_models, make_model
from riskgrid.products.dataset import clean_attr

DATE = "2024-03-20"

#: small, fast settings for each model (every model must appear here)
PARAMS = {
    "CountHotspot": {"window_days": 60},
    "KDEHotspot": {"bandwidth_m": 250.0},
    "ProspectiveHotspot": {},
    "GridHawkes": {"spillover_rings": 1, "max_iter": 30},
    "GridHawkes-cross": {"spillover_rings": 0, "cross_excitation": True, "max_iter": 30},
    "SEPP": {"max_iter": 10, "max_days": 30, "max_distance_m": 500},
    "NearRepeat": {"n_permutations": 19},
    "FeatureForecaster": {"panel_days": 40.0, "max_rows": 20000, "validation_days": 14.0},
    "WalkForwardSearch": {"candidates": {"count": {"name": "CountHotspot", "params": {"window_days": 30}},
                                         "kde": {"name": "KDEHotspot", "params": {}}}, "n_folds": 2},
}


def _toml(v) -> str:
    """A value as TOML (inline tables for dicts)."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def _name(key):
    return key.split("-")[0]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    df = rg.simulate(n_days=80, background_rate=10, theta=0.3, omega=0.3, sigma_m=80, extent_m=3000, n_hotspots=3,
                     categories=["A", "B"], start="2024-01-01", seed=4)
    path = d / "events.parquet"
    df[["event_id", "timestamp", "lat", "lon", "category"]].to_parquet(path)
    events = rg.read_events(path, category="category")
    grid = rg.HexGrid.from_events(events.between(None, DATE), resolution=9)
    return path, events, grid


def test_every_model_is_covered():
    assert {_name(k) for k in PARAMS} >= set(available_models())


@pytest.mark.parametrize("value, expected", [
    (True, 1), (np.bool_(False), 0), (None, None), (np.int64(3), 3), (np.float32(0.5), 0.5), ("x", "x"),
    (float("nan"), "nan"), ((0, 100, 200), "[0, 100, 200]"), ({"b": 1, "a": [True, None]}, '{"a": [true, null], "b": 1}'),
    (np.array([1.5, 2.0]), "[1.5, 2.0]"), (np.array(7), 7),
])
def test_clean_attr(value, expected):
    assert clean_attr(value) == expected


@pytest.mark.parametrize("key", sorted(PARAMS))
def test_every_model_attributes_in_every_format(city, key, tmp_path):
    if _name(key) not in available_models():
        pytest.skip(f"{_name(key)} is not in this tree")
    _, events, grid = city
    model = make_model(_name(key), **PARAMS[key])
    t = events.to_days(DATE)
    risk = model.fit(events.between(t - 60, t), grid, end=DATE).predict(DATE, 1.0)
    ds = products.risk_dataset(risk, zones=rg.select_zones(risk, grid))
    for k, v in ds.attrs.items():  # only strings and finite numbers survive to the files
        assert isinstance(v, (str, int, float)) and not isinstance(v, bool), (k, v)
    zones = rg.select_zones(risk, grid)
    for fmt in products.FORMATS:  # every format of riskgrid.products, under its nightly-job file name
        path = tmp_path / rg.job.PRODUCTS[fmt]
        products.write_product(fmt, ds, path, grid=grid, zones=zones, pixel_m=100.0)
        assert path.exists(), fmt
    for name in ("risk.nc", "risk.zarr"):
        back = products.read_risk(tmp_path / name)
        assert back.attrs == ds.attrs, name
        np.testing.assert_array_equal(back["risk"].values, ds["risk"].values)
    meta = json.loads(__import__("pyarrow.parquet", fromlist=["x"]).read_schema(tmp_path / "risk_hexagons.parquet")
                      .metadata[b"riskgrid"])
    assert meta == ds.attrs


def _batch_file(path, data, keys):
    blocks = []
    for key in keys:
        params = ", ".join(f"{k} = {_toml(v)}" for k, v in PARAMS[key].items())
        blocks.append(textwrap.dedent(f"""
            [[forecast]]
            name = "{key}"
            source = "{data}"
            date = "{DATE}"
            train_days = 60
            horizon_days = 1
            columns = {{ category = "category" }}
            model = {{ name = "{_name(key)}", params = {{ {params} }} }}
        """))
    path.write_text("\n".join(blocks))
    return path


def test_batch_writes_every_product_of_every_model(city, tmp_path):
    data, _, _ = city
    keys = [k for k in sorted(PARAMS) if _name(k) in available_models()]
    jobs = _batch_file(tmp_path / "jobs.toml", data, keys)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["batch", str(jobs), "--serial", "--formats", "all", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    from riskgrid.commands.batch import FORECAST_FILES

    for key in keys:
        for fmt, suffix in FORECAST_FILES.items():
            assert (out / f"{key}{suffix}").exists(), (key, fmt)
        risk = xr.open_dataarray(out / f"{key}.nc")
        assert risk.attrs["job"] == key
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]  # no leftovers
    status = json.loads((out / "batch_status.json").read_text())
    assert sorted(status["ok"]) == sorted(keys) and status["errors"] == {}


def test_a_failed_write_leaves_no_partial_file_and_hides_no_failure(city, tmp_path, monkeypatch):
    """One job's product write fails, another job fails to run: both FAILED lines, no partial file."""
    data, _, _ = city
    jobs = tmp_path / "jobs.toml"
    _batch_file(jobs, data, ["CountHotspot", "KDEHotspot"])
    with open(jobs, "a") as fh:
        fh.write(f'\n[[forecast]]\nname = "missing"\nsource = "nope.parquet"\ndate = "{DATE}"\n')
    real = products.write_product

    def flaky(fmt, ds, path, **kw):
        if fmt == "geotiff" and ds.attrs.get("job") == "KDEHotspot":
            with open(path, "wb") as fh:  # a partial file, then the failure
                fh.write(b"II*\x00partial")
            raise OSError("disk full")
        return real(fmt, ds, path, **kw)

    monkeypatch.setattr(products, "write_product", flaky)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["batch", str(jobs), "--serial", "--formats", "netcdf,geotiff,csv", "--out", str(out),
                                  "-q"])
    assert r.exit_code == 1
    assert "FAILED KDEHotspot: writing its products failed: OSError: disk full" in r.output
    assert "FAILED missing: EventFileNotFoundError" in r.output
    assert "1 of 3 job(s) succeeded" in r.output
    assert not (out / "KDEHotspot.tif").exists()
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    assert (out / "CountHotspot.tif").exists() and (out / "CountHotspot_hexagons.csv").exists()
    status = json.loads((out / "batch_status.json").read_text())
    assert status["ok"] == ["CountHotspot"] and set(status["errors"]) == {"KDEHotspot", "missing"}


def test_atomic_file_replaces_or_leaves_the_old(tmp_path):
    from riskgrid.pipeline.publish import atomic_file

    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    with atomic_file(path) as tmp:
        open(tmp, "w").write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]
    store = tmp_path / "s.zarr"
    for text in ("one", "two"):
        with atomic_file(store) as tmp:
            os.mkdir(tmp)
            open(os.path.join(tmp, "x"), "w").write(text)
    assert (store / "x").read_text() == "two" and sorted(os.listdir(tmp_path)) == ["a.txt", "s.zarr"]
