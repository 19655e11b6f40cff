"""Library etiquette: one exception root, one event loader with one error, no unasked progress bars, no shadowed modules."""

import importlib

import pytest

import riskgrid as rg
from riskgrid import errors
from riskgrid.distributed import ForecastJob, run_jobs
from riskgrid.pipeline.config import validate_config
from riskgrid.pipeline.source import events_from_config, load_events


def test_every_exception_is_under_riskgriderror_and_exported():
    classes = [getattr(errors, n) for n in errors.__all__ if n != "ConvergenceWarning"]
    assert {"NoEventsError", "BatchError", "EventFileNotFoundError"} <= set(errors.__all__)
    for cls in classes:
        assert issubclass(cls, rg.RiskGridError), cls
        assert getattr(rg, cls.__name__) is cls and cls.__name__ in rg.__all__
    assert issubclass(rg.EventFileNotFoundError, FileNotFoundError)  # still an OSError for callers that expect one
    assert issubclass(rg.NoEventsError, ValueError)


def test_one_loader_one_error_for_a_missing_file(tmp_path):
    missing = str(tmp_path / "nope.parquet")
    want = f"event file not found: {missing}"
    for call in (
        lambda: rg.read_events(missing),
        lambda: load_events(missing),
        lambda: events_from_config(validate_config({"events": {"path": missing}})),
    ):
        with pytest.raises(rg.EventFileNotFoundError) as info:
            call()
        assert str(info.value) == want
    res = run_jobs([ForecastJob("a", missing)], "serial")
    assert res.errors["a"] == f"EventFileNotFoundError: {want}"


def test_library_calls_draw_no_progress_bar_unless_asked(sim_city, capsys, monkeypatch):
    from riskgrid.models import CountHotspot

    monkeypatch.delenv("RISKGRID_QUIET", raising=False)
    monkeypatch.delenv("RISKGRID_PROGRESS", raising=False)
    _, events, grid = sim_city
    t0 = events.t[0] + 100
    rg.backtest({"c": CountHotspot()}, events, grid, t0, t0 + 14)
    assert capsys.readouterr().err == ""
    rg.backtest({"c": CountHotspot()}, events, grid, t0, t0 + 14, progress=True)
    assert "backtest origins" in capsys.readouterr().err
    run_jobs([ForecastJob("a", events, date=t0)], "serial")
    assert capsys.readouterr().err == ""


def test_no_module_is_shadowed_by_a_function():
    assert callable(rg.backtest) and callable(rg.simulate)
    for name in ("riskgrid.backtest", "riskgrid.simulate", "riskgrid.pipeline.forecast"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)
    assert importlib.import_module("riskgrid.simulation").simulate is rg.simulate
    assert importlib.import_module("riskgrid.evaluation.walk_forward").backtest is rg.backtest
    import riskgrid.pipeline as pipeline

    assert pipeline.forecast is importlib.import_module("riskgrid.pipeline.forecasting").forecast


def test_a_date_before_every_event_is_a_clear_error(sim_city):
    from riskgrid.distributed import BacktestJob
    from riskgrid.pipeline.backtest import backtest_job

    _, events, _ = sim_city
    early = events.t[0] - 10
    with pytest.raises(rg.NoEventsError, match="no event before .* to build the study area"):
        backtest_job(BacktestJob("b", events, models={"c": "CountHotspot"}, start=early, end=early + 14))
    res = run_jobs([ForecastJob("f", events, date=early)], "serial")
    assert res.errors["f"].startswith("NoEventsError: no events in the training window")
