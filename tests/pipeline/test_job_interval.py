"""The nightly job's forecast interval: every product carries ``risk_lo``, ``risk_hi``, ``p_any`` per cell and per
zone (zones numbered 1..n), the zone interval is the interval of the zone's total count (Poisson of the summed mean
for the baselines, the model's own simulations for GridHawkes), seeded from the job; ``interval = false`` turns it off."""

import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats
from test_job import small_config as job_config

import riskgrid as rg
from riskgrid.pipeline.config import validate_config
from riskgrid.pipeline.forecasting import fit_forecast, interval_seed
from riskgrid.pipeline.specs import ForecastJob

DATE = "2024-03-01"


def small_config(tmp_path, **over):
    """test_job's tiny city with a 7-day horizon and no exposure log."""
    cfg = job_config(tmp_path, forecast={"horizon_days": 7}, outputs={"exposure_log": False})
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def _quantile_inverted_cdf(x, q):
    """Naive empirical quantile: the smallest simulated value whose share of values <= it reaches q."""
    s = np.sort(x)
    return s[max(int(math.ceil(q * s.size)) - 1, 0)]


def test_every_product_carries_the_poisson_interval(tmp_path):
    cfg = small_config(tmp_path)
    cfg["outputs"]["formats"] = ["netcdf", "geojson", "parquet", "csv", "zones", "briefing"]
    man = rg.run_forecast(cfg, DATE, tmp_path / "out")
    folder = tmp_path / "out" / "testville" / DATE
    ds = rg.read_risk(folder / "risk.nc")
    r = ds["risk"].values
    assert ds.attrs["interval_level"] == 0.9 and ds.attrs["interval_method"] == "poisson"
    # cells: naive Poisson quantiles of the forecast mean
    lo = np.array([stats.poisson.ppf(0.05, m) if m > 0 else 0.0 for m in r])
    hi = np.array([stats.poisson.ppf(0.95, m) if m > 0 else 0.0 for m in r])
    np.testing.assert_array_equal(ds["risk_lo"].values, lo)
    np.testing.assert_array_equal(ds["risk_hi"].values, hi)
    np.testing.assert_allclose(ds["p_any"].values, 1 - np.exp(-r), rtol=1e-12)
    # zones 1..n: the Poisson interval of the zone's summed mean (a recount from the per-cell zone numbers)
    n = man["zones"]["n_zones"]
    assert n >= 2 and ds["zone_number"].values.tolist() == list(range(1, n + 1))
    zone = ds["zone"].values
    for k in range(1, n + 1):
        m = r[zone == k].sum()
        assert ds["zone_risk"].sel(zone_number=k).item() == pytest.approx(m, rel=1e-12)
        assert ds["zone_risk_lo"].sel(zone_number=k).item() == stats.poisson.ppf(0.05, m)
        assert ds["zone_risk_hi"].sel(zone_number=k).item() == stats.poisson.ppf(0.95, m)
        assert ds["zone_p_any"].sel(zone_number=k).item() == pytest.approx(1 - np.exp(-m), rel=1e-12)
    assert ds.attrs["zones_interval_level"] == 0.9 and ds.attrs["zones_interval_method"] == "poisson"
    # GeoJSON hexagons: per-feature values and the level/method as a foreign member
    gj = json.load(open(folder / "risk_hexagons.geojson"))
    assert gj["riskgrid"]["interval_level"] == 0.9 and gj["riskgrid"]["interval_method"] == "poisson"
    by_h3 = {f["properties"]["h3"]: f["properties"] for f in gj["features"]}
    for i, h in enumerate(ds["h3"].values):
        p = by_h3[h]
        assert (p["risk_lo"], p["risk_hi"]) == (lo[i], hi[i]) and p["p_any"] == ds["p_any"].values[i]
    # GeoParquet and CSV: columns, values, and the attributes in the Parquet metadata
    t = pq.read_table(folder / "risk_hexagons.parquet")
    meta = json.loads(t.schema.metadata[b"riskgrid"])
    assert meta["interval_level"] == 0.9 and meta["interval_method"] == "poisson"
    df = t.to_pandas()
    np.testing.assert_array_equal(df["risk_lo"].to_numpy(), lo)
    np.testing.assert_array_equal(df["p_any"].to_numpy(), ds["p_any"].values)
    csv = pd.read_csv(folder / "risk_hexagons.csv")
    assert list(csv.columns[:7]) == ["h3", "lat", "lon", "risk", "risk_lo", "risk_hi", "p_any"]
    np.testing.assert_array_equal(csv["risk_hi"].to_numpy(), hi)
    # zones.geojson and zones.csv: the same zone intervals, numbered 1..n
    zg = json.load(open(folder / "zones.geojson"))
    zc = pd.read_csv(folder / "zones.csv")
    assert [f["properties"]["zone"] for f in zg["features"]] == list(range(1, n + 1)) == zc["zone"].tolist()
    for f, (_, row) in zip(zg["features"], zc.iterrows()):
        k = f["properties"]["zone"]
        p = f["properties"]
        assert p["risk_lo"] == row["expected_events_lo"] == ds["zone_risk_lo"].sel(zone_number=k).item()
        assert p["risk_hi"] == row["expected_events_hi"] == ds["zone_risk_hi"].sel(zone_number=k).item()
        assert p["p_any"] == pytest.approx(row["p_any"], rel=1e-15)
        assert p["interval_level"] == row["interval_level"] == 0.9 and p["interval_method"] == "poisson"
        assert row["horizon_days"] == 7 and row["model"] == "CountHotspot"
    # the briefing's zone table: expected events, the interval and P(any)
    html = (folder / "briefing.html").read_text()
    for k in range(1, n + 1):
        a = int(ds["zone_risk_lo"].sel(zone_number=k).item())
        b = int(ds["zone_risk_hi"].sel(zone_number=k).item())
        assert f"(likely between {a} and {b}, 90% interval)" in html
    assert html.count("chance of at least one:") == n
    assert "it leaves out errors of the model" in html


@pytest.mark.filterwarnings("ignore::riskgrid.errors.ConvergenceWarning")
def test_gridhawkes_zone_interval_is_a_quantile_of_the_simulated_zone_totals(tmp_path):
    cfg = small_config(tmp_path, model={"name": "GridHawkes", "params": {"spillover_rings": 1}},
                       forecast={"n_sims": 300, "interval_level": 0.8})
    cfg["outputs"]["formats"] = ["netcdf", "zones"]
    rg.run_forecast(cfg, DATE, tmp_path / "out")
    folder = tmp_path / "out" / "testville" / DATE
    ds = rg.read_risk(folder / "risk.nc")
    assert ds.attrs["interval_level"] == 0.8 and ds.attrs["interval_n_sims"] == 300
    assert "simulation" in ds.attrs["interval_method"]
    # naive recount: refit the job's model, draw its simulations with the job's seed, sum them per zone
    job = ForecastJob.from_config(validate_config(cfg), date=pd.Timestamp(DATE))
    fc = fit_forecast(job)
    np.testing.assert_array_equal(fc.risk.values if fc.risk.ndim == 1 else fc.risk.sum("category").values,
                                  ds["risk"].values)
    x = fc.model.simulate_forecast(fc.date_days, 7.0, n_sims=300, seed=interval_seed(job, fc.date_days)).sum(axis=1)
    zone = ds["zone"].values
    n = int(zone.max())
    assert n >= 1
    for k in range(1, n + 1):
        tot = x[:, zone == k].sum(axis=1)
        assert ds["zone_risk_lo"].sel(zone_number=k).item() == _quantile_inverted_cdf(tot, 0.1)
        assert ds["zone_risk_hi"].sel(zone_number=k).item() == _quantile_inverted_cdf(tot, 0.9)
        assert ds["zone_p_any"].sel(zone_number=k).item() == np.mean(tot > 0)
    for i in range(0, zone.size, 7):
        assert ds["risk_hi"].values[i] == _quantile_inverted_cdf(x[:, i], 0.9)
    zg = json.load(open(folder / "zones.geojson"))
    assert [f["properties"]["risk_hi"] for f in zg["features"]] == ds["zone_risk_hi"].values.tolist()
    # rerun: the same seed, the same bytes
    h1 = (folder / "risk.nc").read_bytes()
    rg.run_forecast(cfg, DATE, tmp_path / "out")
    assert (folder / "risk.nc").read_bytes() == h1


def test_interval_off_and_score_models_have_none(tmp_path):
    cfg = small_config(tmp_path, forecast={"interval": False})
    cfg["outputs"]["formats"] = ["netcdf", "zones"]
    rg.run_forecast(cfg, DATE, tmp_path / "out")
    folder = tmp_path / "out" / "testville" / DATE
    ds = rg.read_risk(folder / "risk.nc")
    assert "risk_lo" not in ds and "zone_risk_lo" not in ds and "interval_level" not in ds.attrs
    assert "zone_risk" in ds
    assert "expected_events_lo" not in pd.read_csv(folder / "zones.csv").columns
    assert "risk_lo" not in json.load(open(folder / "zones.geojson"))["features"][0]["properties"]
    # NearRepeat forecasts a score: the job writes no interval (and does not fail)
    cfg = small_config(tmp_path, city="nr", model={"name": "NearRepeat", "params": {"n_permutations": 19}})
    cfg["outputs"]["formats"] = ["netcdf"]
    rg.run_forecast(cfg, DATE, tmp_path / "out")
    assert "risk_lo" not in rg.read_risk(tmp_path / "out" / "nr" / DATE / "risk.nc")


@pytest.mark.filterwarnings("ignore::riskgrid.errors.ConvergenceWarning")
def test_sepp_job_uses_the_models_own_simulation(tmp_path):
    """The job calls whatever predict_interval a model has: SEPP's forward simulation, zone totals recounted."""
    if "predict_interval" not in rg.models.SEPP.__dict__:
        pytest.skip("SEPP has no predict_interval of its own in this checkout")
    cfg = small_config(tmp_path, model={"name": "SEPP", "params": {}}, forecast={"n_sims": 200})
    cfg["outputs"]["formats"] = ["netcdf"]
    rg.run_forecast(cfg, DATE, tmp_path / "out")
    ds = rg.read_risk(tmp_path / "out" / "testville" / DATE / "risk.nc")
    assert "simulation" in ds.attrs["interval_method"] and ds.attrs["interval_n_sims"] == 200
    job = ForecastJob.from_config(validate_config(cfg), date=pd.Timestamp(DATE))
    fc = fit_forecast(job)
    x = np.asarray(fc.model.simulate_forecast(fc.date_days, 7.0, n_sims=200, seed=interval_seed(job, fc.date_days)))
    x = x if x.ndim == 2 else x.sum(axis=1)
    zone = ds["zone"].values
    for k in range(1, int(zone.max()) + 1):
        tot = x[:, zone == k].sum(axis=1)
        assert ds["zone_risk_lo"].sel(zone_number=k).item() == _quantile_inverted_cdf(tot, 0.05)
        assert ds["zone_risk_hi"].sel(zone_number=k).item() == _quantile_inverted_cdf(tot, 0.95)
        assert ds["zone_p_any"].sel(zone_number=k).item() == np.mean(tot > 0)
