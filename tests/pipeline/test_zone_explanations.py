"""The nightly job explains its zones: zones_explained.csv/.parquet and the summary in zones.geojson (issue 14)."""

import json

import numpy as np
import pandas as pd
import pytest
from test_job import small_config

import riskgrid as rg
from riskgrid.pipeline import job


@pytest.mark.parametrize("model", [("GridHawkes", {"spillover_rings": 1, "max_iter": 60}), ("CountHotspot", {"window_days": 30})])
def test_job_writes_zone_explanations(tmp_path, model):
    name, params = model
    cfg = small_config(tmp_path, model={"name": name, "params": params})
    man = job.run_forecast(cfg, "2024-03-01", tmp_path / "out")
    folder = man["folder"]
    csv = pd.read_csv(f"{folder}/zones_explained.csv")
    pq = pd.read_parquet(f"{folder}/zones_explained.parquet")
    assert len(csv) == len(pq) > 0
    np.testing.assert_allclose(csv["contribution"], pq["contribution"], rtol=1e-12)
    geo = json.load(open(f"{folder}/zones.geojson"))
    n = len(geo["features"])
    assert sorted(csv["zone"].unique()) == list(range(1, n + 1))  # every zone explained, numbered 1..n
    assert (csv.groupby("zone")["rank"].min() == 1).all()
    assert set(csv["model"]) == {name} and set(csv["horizon_days"]) == {1.0}
    for f in geo["features"]:
        p = f["properties"]
        # background + triggered add up to the zone's forecast
        assert p["background"] + p["triggered"] == pytest.approx(p["risk"], rel=1e-9)
        assert 0.0 <= p["background_share"] <= 1.0
        if p["n_driving_events"]:
            assert p["driving_from"] <= p["driving_to"]
        else:  # nothing drives it: the event-attributed part is under 1 % of the zone's forecast
            attributed = p["background"] if name == "CountHotspot" else p["triggered"]
            assert attributed < 0.01 * p["risk"] and p["driving_from"] == ""
        assert p["top_categories"]
        top = csv[csv["zone"] == p["zone"]]
        assert (np.diff(top["contribution"].to_numpy()) <= 0).all()
    if name == "CountHotspot":  # all background: the events listed are the zone's own window events
        assert all(f["properties"]["background_share"] == pytest.approx(1.0) for f in geo["features"])
        assert set(csv["part"]) == {"background"}
    else:
        assert "triggered" in set(csv["part"])
    html = open(f"{folder}/briefing.html", encoding="utf-8").read()
    assert "long-term background" in html  # the briefing's "why" of every zone uses the explanation
    props = [f["properties"] for f in geo["features"]]
    short = sum(p["n_driving_events"] > 0 and p["background_share"] < 1 for p in props)
    assert html.count("drive the short-term part") == short
    assert html.count("make up that background") == sum(p["n_driving_events"] > 0 for p in props) - short
    if name == "CountHotspot":
        assert short == 0 and html.count("make up that background") == n


def test_zone_properties_cannot_override(tmp_path):
    ev = rg.EventSet.from_frame(rg.simulate(n_days=30, background_rate=5, seed=1))
    grid = rg.HexGrid.from_events(ev, resolution=9)
    risk = rg.models.CountHotspot().fit(ev, grid).predict(None, 1.0)
    from riskgrid.zones import select_zones

    zones = select_zones(risk, grid, n_zones=2, max_cells=3)
    with pytest.raises(ValueError, match="override"):
        zones.to_geojson(zone_properties={1: {"risk": 3.0}})
    with pytest.raises(ValueError, match="do not exist"):
        zones.to_geojson(zone_properties={9: {"x": 1}})
    g = zones.to_geojson(zone_properties={2: {"note": "x"}})
    assert g["features"][1]["properties"]["note"] == "x" and "note" not in g["features"][0]["properties"]



def test_feature_forecaster_zones_name_what_raises_them(tmp_path):
    """FeatureForecaster has no background / triggered decomposition: its zones are explained family by family
    (feature_group_effects) in zones.geojson and in the briefing, and no zones_explained table is written."""
    from riskgrid.pipeline.config import validate_config
    from riskgrid.pipeline.forecasting import fit_forecast
    from riskgrid.pipeline.specs import ForecastJob
    from riskgrid.zones import select_zones

    date = "2024-03-16"
    params = {"panel_days": 30.0, "max_rows": 20000, "validation_days": 10.0, "estimator": "glm"}
    cfg = small_config(tmp_path, model={"name": "FeatureForecaster", "params": params},
                       forecast={"train_days": 70, "horizon_days": 1})
    man = job.run_forecast(cfg, date, tmp_path / "out")
    folder = man["folder"]
    assert not any(f["path"].startswith("zones_explained") for f in man["files"])
    geo = json.load(open(f"{folder}/zones.geojson"))
    # the same forecast and zones through the pipeline's own functions: the job wrote these drivers
    fc = fit_forecast(ForecastJob.from_config(validate_config(cfg), date=date))
    zones = select_zones(fc.risk, fc.grid, **cfg["zones"])
    drivers = job.zone_drivers(fc.model, zones, date)
    assert sorted(drivers) == [f["properties"]["zone"] for f in geo["features"]]
    # a model selection that picked FeatureForecaster speaks for it; a model without the method gives None
    from types import SimpleNamespace

    assert job.zone_drivers(SimpleNamespace(best_model_=fc.model), zones, date) == drivers
    assert job.zone_drivers(SimpleNamespace(best_model_=object()), zones, date) is None
    html = open(f"{folder}/briefing.html", encoding="utf-8").read()
    for f in geo["features"]:
        d = drivers[f["properties"]["zone"]]
        assert f["properties"]["drivers"] == job.drivers_text(d)
        assert "background" not in f["properties"]
        factors = [x for _, x in d]
        assert factors == sorted(factors, reverse=True) and len(d) <= job.ZONE_DRIVERS_TOP
        assert all(x >= job.ZONE_DRIVER_MIN_FACTOR for x in factors)
        cells = np.flatnonzero(np.asarray(zones.cell_zone) == f["properties"]["zone"])
        all_families = fc.model.feature_group_effects(cells, date)
        assert [k for k, _ in d] == [k for k, v in all_families.items() if v >= job.ZONE_DRIVER_MIN_FACTOR][:3]
    n_named = sum(bool(d) for d in drivers.values())
    assert n_named > 0
    assert html.count("What the model sees here") == n_named
    assert html.count("changes this forecast much") == len(drivers) - n_named
    assert "No breakdown into long-term background" not in html
