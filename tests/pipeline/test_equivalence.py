"""Five entry points, one forecast: byte-identical risk arrays and the same grid for one config and date.

`riskgrid forecast`, `run_forecast`, `run_jobs([...], "serial")`, `run_jobs` on
a real LocalCluster and a `riskgrid batch` file (on that cluster) all call
`riskgrid.pipeline.forecasting.fit_forecast`; a backtest origin at the same date
with the same model and window scores the very same risk vector on the same grid.
"""

import textwrap

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import riskgrid as rg
from riskgrid.cli import main
from riskgrid.distributed import BacktestJob, ForecastJob, run_jobs
from riskgrid.pipeline import load_config
from riskgrid.pipeline.backtest import backtest_job

distributed = pytest.importorskip("distributed")

DATE = "2024-03-10"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """A file-based city whose events continue well after DATE (so a grid from all events would differ)."""
    d = tmp_path_factory.mktemp("equiv")
    df = rg.simulate(n_days=120, background_rate=10, theta=0.3, omega=0.3, sigma_m=80, extent_m=4000, n_hotspots=3,
                     categories=["A", "B"], start="2024-01-01", seed=21)
    df[["event_id", "timestamp", "lat", "lon", "category"]].to_parquet(d / "events.parquet")
    cfg = d / "city.toml"
    cfg.write_text(textwrap.dedent("""
        city = "equiv"
        [events]
        path = "events.parquet"
        category = "category"
        categories = ["A", "B"]
        [grid]
        resolution = 9
        buffer_rings = 1
        [model]
        name = "KDEHotspot"
        params = { bandwidth_m = 220.0, window_days = 45 }
        [forecast]
        train_days = 50
        horizon_days = 7
        [outputs]
        formats = ["netcdf"]
    """))
    return cfg


def _cells_and_bytes(risk):
    return np.asarray(risk["h3_int"].values, dtype=np.uint64), np.ascontiguousarray(risk.values, dtype=np.float64).tobytes()


def test_five_entry_points_give_the_same_forecast(config, client, tmp_path):
    runs = {}
    # 1. the CLI
    r = CliRunner().invoke(main, ["forecast", str(config), "--date", DATE, "--out", str(tmp_path / "cli"), "-q"])
    assert r.exit_code == 0, r.output
    runs["riskgrid forecast"] = rg.read_risk(tmp_path / "cli" / "equiv" / DATE / "risk.nc")["risk"]
    # 2. the API
    man = rg.run_forecast(config, DATE, tmp_path / "api")
    runs["run_forecast"] = rg.read_risk(f"{man['folder']}/risk.nc")["risk"]
    # 3./4. Dask serial and on a real LocalCluster
    job = ForecastJob.from_config(load_config(config), date=DATE)
    serial = run_jobs([job], "serial", progress=False)
    cluster = run_jobs([job], client, progress=False)
    assert serial.ok and cluster.ok, (serial.errors, cluster.errors)
    runs["run_jobs serial"] = serial.results["equiv"]
    runs["run_jobs LocalCluster"] = cluster.results["equiv"]
    assert cluster.tasks["worker"].iloc[0].startswith("tcp://")  # it really ran on a worker
    # 5. a batch file naming the configuration, on the cluster
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[[forecast]]\nname = "equiv"\nconfig = "{config}"\ndate = "{DATE}"\n')
    r = CliRunner().invoke(main, ["batch", str(jobs), "--scheduler", client.scheduler.address, "--out",
                                  str(tmp_path / "batch"), "-q"])
    assert r.exit_code == 0, r.output
    runs["riskgrid batch"] = xr.open_dataarray(tmp_path / "batch" / "equiv.nc").load()

    cells, data = _cells_and_bytes(runs["riskgrid forecast"])
    for name, risk in runs.items():
        c, b = _cells_and_bytes(risk)
        np.testing.assert_array_equal(c, cells, err_msg=name)  # the same grid
        assert b == data, f"{name}: risk bytes differ from riskgrid forecast"
    # the study-area rule: the grid is that of the events before DATE, not of all events
    events = rg.read_events(config.parent / "events.parquet", category="category")
    before = rg.HexGrid.from_events(events.between(None, DATE), resolution=9, buffer_rings=1)
    every = rg.HexGrid.from_events(events, resolution=9, buffer_rings=1)
    np.testing.assert_array_equal(before.cells, cells)
    assert len(every) > len(before)  # the data continue after DATE: the rule matters here
    assert man["grid"]["n_cells"] == len(before)
    assert man["grid"]["study_area"] == f"cells of the events before {DATE} + 1 ring(s)"


def test_backtest_origin_scores_the_forecast_of_that_date(config):
    cfg = load_config(config)
    fc = rg.run_forecast(cfg, DATE, config.parent / "out")
    risk = rg.read_risk(f"{fc['folder']}/risk.nc")["risk"]
    seen = []

    def capture(r, observed, grid):
        seen.append((np.array(r), grid.cells.copy()))
        return 0.0

    m = cfg["model"]
    job = BacktestJob("equiv-bt", cfg["events"]["path"], models={"kde": m}, start=DATE, end="2024-03-11", step_days=7,
                      horizon_days=cfg["forecast"]["horizon_days"], train_days=cfg["forecast"]["train_days"],
                      categories=cfg["events"]["categories"], columns={"category": "category"},
                      backtest_kwargs={"extra_metrics": {"capture": capture}})
    table = backtest_job(job)
    assert table["origin"].nunique() == 1 and len(seen) == 1
    r, cells = seen[0]
    np.testing.assert_array_equal(cells, np.asarray(risk["h3_int"].values, np.uint64))
    assert r.tobytes() == np.ascontiguousarray(risk.values, dtype=np.float64).tobytes()
