"""Target and indicator categories through the configuration, the one forecast and the backtest job."""

import numpy as np
import pytest

import riskgrid as rg
from riskgrid.errors import ConfigError
from riskgrid.pipeline.config import validate_config
from riskgrid.pipeline.specs import BacktestJob, ForecastJob

SIM = {"n_days": 200, "background_rate": 12, "theta": 0.3, "omega": 0.5, "sigma_m": 50, "seed": 4,
       "categories": ["A", "B", "C"], "category_probs": [0.5, 0.3, 0.2]}


def _cfg(**events):
    return validate_config({"city": "t", "events": {"simulate": dict(SIM), "category": "category", **events},
                            "model": {"name": "CountHotspot"}, "forecast": {"horizon_days": 7, "train_days": 150}})


def test_target_and_indicators_are_validated():
    cfg = _cfg(target="A", indicators=["B"])
    assert cfg["events"]["target"] == ["A"] and cfg["events"]["indicators"] == ["B"]
    with pytest.raises(ConfigError, match="need events.target"):
        _cfg(indicators=["B"])
    with pytest.raises(ConfigError, match=r"both in events.target and events.indicators"):
        _cfg(target=["A"], indicators=["A"])
    with pytest.raises(ConfigError, match="non-empty list"):
        _cfg(target=[])
    with pytest.raises(ConfigError, match=r"not in the events.categories filter"):
        _cfg(target=["A"], categories=["B"])


def test_unknown_label_names_the_known_ones_with_a_hint():
    job = ForecastJob.from_config(_cfg(target=["a"]), date="2024-06-01")
    # the message names where the label came from (the filter is target + indicators here)
    with pytest.raises(ConfigError, match=r"target / indicators: unknown categories \['a'\]; known: \['A', 'B', 'C'\].*"
                                          r"did you mean 'A'"):
        from riskgrid.pipeline.forecasting import fit_forecast

        fit_forecast(job)


def test_forecast_holds_target_risk_only():
    from riskgrid.pipeline.forecasting import fit_forecast

    job = ForecastJob.from_config(_cfg(target=["A"], indicators=["B"]), date="2024-06-01")
    assert job.categories == ("A", "B")
    fc = fit_forecast(job)
    assert fc.risk.attrs["target"] == "A" and fc.risk.attrs["indicators"] == "B"
    only = ForecastJob.from_config(_cfg(categories=["A"]), date="2024-06-01")
    ref = fit_forecast(only)
    np.testing.assert_array_equal(fc.risk.values, ref.risk.values)  # CountHotspot ignores indicators


def test_model_select_builds_a_walk_forward_search():
    cfg = validate_config({**_cfg(), "model": {"select": {
        "candidates": {"count": {"name": "CountHotspot"}, "kde": {"name": "KDEHotspot", "params": {"bandwidth_m": 300}}},
        "n_folds": 2}}})
    assert cfg["model"]["name"] == "WalkForwardSearch"
    assert validate_config(cfg)["model"] == cfg["model"]  # idempotent
    from riskgrid.pipeline.forecasting import fit_forecast

    fc = fit_forecast(ForecastJob.from_config(cfg, date="2024-06-01"))
    assert fc.model.best_name_ in ("count", "kde")
    assert fc.risk.attrs["selected_model"] == fc.model.best_name_
    with pytest.raises(ConfigError, match="either name/params or select"):
        validate_config({**_cfg(), "model": {"name": "CountHotspot", "select": {"candidates": {"c": {"name": "KDEHotspot"}}}}})
    with pytest.raises(ConfigError, match="unknown key"):
        validate_config({**_cfg(), "model": {"select": {"candidates": {"c": {"name": "KDEHotspot"}}, "folds": 3}}})


def test_backtest_job_scores_target_events_only():
    from riskgrid.pipeline.backtest import backtest_job

    base = _cfg(target=["A"], indicators=["B", "C"])
    base["backtest"].update(start="2024-05-01", end="2024-06-01")
    base["models"] = {"count": {"name": "CountHotspot", "params": {}}}
    df = backtest_job(BacktestJob.from_config(base))
    ref_cfg = _cfg(categories=["A"])
    ref_cfg["backtest"].update(start="2024-05-01", end="2024-06-01")
    ref_cfg["models"] = base["models"]
    ref = backtest_job(BacktestJob.from_config(ref_cfg))
    np.testing.assert_array_equal(df["n_events"].to_numpy(), ref["n_events"].to_numpy())
    np.testing.assert_allclose(df["loglik"].to_numpy(), ref["loglik"].to_numpy())
