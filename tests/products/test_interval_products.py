"""Forecast intervals in the products: risk_lo / risk_hi / p_any per cell and the zone intervals survive NetCDF, Zarr,
GeoParquet, GeoJSON and CSV; ZoneSet.with_interval checks its input."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import riskgrid as rg
from riskgrid import products


@pytest.fixture(scope="module")
def forecast():
    df = rg.simulate(n_days=90, background_rate=6, theta=0.3, omega=0.3, sigma_m=60, extent_m=2500, seed=8)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    m = rg.models.KDEHotspot(bandwidth_m=200).fit(ev, grid)
    zones = rg.select_zones(m.predict(horizon_days=7), grid, n_zones=3, max_cells=4)
    iv = m.predict_interval(horizon_days=7, level=0.8, zones=zones.cell_zone - 1)
    zones = zones.with_interval(iv["zone_lo"].values, iv["zone_hi"].values, iv["zone_p_any"].values, 0.8,
                                iv.attrs["interval_method"])
    ds = products.risk_dataset(m.predict(horizon_days=7), zones=zones, interval=iv)
    return grid, zones, iv, ds


def test_dataset_variables_and_attributes(forecast):
    grid, zones, iv, ds = forecast
    for v in ("risk_lo", "risk_hi", "p_any"):
        np.testing.assert_array_equal(ds[v].values, iv[v].values)
    assert ds.attrs["interval_level"] == 0.8 and ds.attrs["interval_method"] == "poisson"
    assert ds["risk_lo"].attrs["long_name"] == "0.1 quantile of the count"
    assert ds["zone_number"].values.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(ds["zone_risk_lo"].values, iv["zone_lo"].values)
    np.testing.assert_array_equal(ds["zone_p_any"].values, iv["zone_p_any"].values)
    np.testing.assert_allclose(ds["zone_risk"].values, [ds["risk"].values[ds["zone"].values == k].sum() for k in (1, 2, 3)],
                               rtol=1e-12)
    # a Dataset passed back in keeps its interval
    again = products.risk_dataset(ds.drop_vars(["rank", "percentile"]))
    np.testing.assert_array_equal(again["risk_hi"].values, ds["risk_hi"].values)
    with pytest.raises(ValueError, match="cells"):
        products.risk_dataset(ds["risk"], interval=iv.isel(cell=slice(0, 5)))


@pytest.mark.parametrize("fmt, name", [("netcdf", "risk.nc"), ("zarr", "risk.zarr")])
def test_netcdf_and_zarr_round_trip(forecast, tmp_path, fmt, name):
    grid, zones, iv, ds = forecast
    products.write_product(fmt, ds, tmp_path / name, grid=grid)
    back = products.read_risk(tmp_path / name)
    for v in ("risk_lo", "risk_hi", "p_any", "zone_risk", "zone_risk_lo", "zone_risk_hi", "zone_p_any"):
        np.testing.assert_array_equal(back[v].values, ds[v].values)
    assert back.attrs["interval_level"] == 0.8 and back.attrs["interval_method"] == "poisson"
    assert back["zone_number"].values.tolist() == [1, 2, 3]


def test_vector_products_carry_the_interval(forecast, tmp_path):
    grid, zones, iv, ds = forecast
    products.write_product("parquet", ds, tmp_path / "h.parquet", grid=grid)
    t = pq.read_table(tmp_path / "h.parquet")
    assert json.loads(t.schema.metadata[b"riskgrid"])["interval_level"] == 0.8
    df = t.to_pandas()
    for v in ("risk_lo", "risk_hi", "p_any"):
        np.testing.assert_array_equal(df[v].to_numpy(), ds[v].values)
    products.write_product("geojson", ds, tmp_path / "h.geojson", grid=grid)
    gj = json.load(open(tmp_path / "h.geojson"))
    assert gj["riskgrid"]["interval_level"] == 0.8
    assert [f["properties"]["risk_hi"] for f in gj["features"]] == ds["risk_hi"].values.tolist()
    products.write_product("csv", ds, tmp_path / "h.csv")
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "h.csv")["p_any"].to_numpy(), ds["p_any"].values)
    products.write_zones_csv(zones, tmp_path / "z.csv", metadata={"model": "KDEHotspot"})
    z = pd.read_csv(tmp_path / "z.csv")
    assert z["zone"].tolist() == [1, 2, 3] and (z["model"] == "KDEHotspot").all()
    np.testing.assert_array_equal(z["expected_events_lo"].to_numpy(), iv["zone_lo"].values)
    products.write_product("zones", ds, tmp_path / "z.geojson", zones=zones)
    props = [f["properties"] for f in json.load(open(tmp_path / "z.geojson"))["features"]]
    assert [p["zone"] for p in props] == [1, 2, 3]
    assert [p["risk_hi"] for p in props] == iv["zone_hi"].values.tolist()
    assert all(p["interval_level"] == 0.8 and p["interval_method"] == "poisson" for p in props)
    d = zones.to_dict()
    assert d["interval_level"] == 0.8 and [z_["risk_lo"] for z_ in d["zones"]] == iv["zone_lo"].values.tolist()


def test_products_without_interval_are_unchanged(forecast, tmp_path):
    grid, zones, iv, ds = forecast
    plain = products.risk_dataset(ds["risk"].drop_attrs() if hasattr(ds["risk"], "drop_attrs") else ds["risk"])
    assert "risk_lo" not in plain and "interval_level" not in plain.attrs
    assert list(products.risk_table(plain).columns) == ["h3", "lat", "lon", "risk", "rank", "percentile"]
    assert "riskgrid" not in products.hexagon_geojson(plain, grid)


def test_with_interval_checks_its_input(forecast):
    grid, zones, iv, ds = forecast
    with pytest.raises(ValueError, match="one interval per zone"):
        zones.with_interval([0, 1], [1, 2], [0.5, 0.5], 0.9, "poisson")
    with pytest.raises(ValueError, match="lo <= hi"):
        zones.with_interval([3, 0, 0], [1, 2, 2], [0.5, 0.5, 0.5], 0.9, "poisson")
    with pytest.raises(ValueError, match="level"):
        zones.with_interval([0, 0, 0], [1, 2, 2], [0.5, 0.5, 0.5], 1.0, "poisson")
    z0 = rg.select_zones(ds["risk"].values, grid, n_zones=3, max_cells=4)
    assert z0.interval_level is None and np.isnan(z0.zones[0].risk_lo)
    assert "expected_events_lo" not in z0.to_frame().columns and "risk_lo" not in z0.to_dict()["zones"][0]
