"""The one configuration schema: forecast, backtest and batch files, one path resolver, clear errors."""

import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from riskgrid.cli import main
from riskgrid.distributed import BacktestJob, ForecastJob, load_jobs
from riskgrid.errors import ConfigError
from riskgrid.pipeline.config import BACKTEST_KEYS, OUTPUT_FORMATS, SCHEMA, load_config, resolve, validate_config

BASE = {"city": "x", "events": {"path": "data/events.parquet", "category": "category"}, "model": {"name": "CountHotspot"}}


def test_defaults_and_idempotent(tmp_path):
    cfg = validate_config(dict(BASE), path=str(tmp_path / "c.toml"))
    assert cfg["events"]["path"] == str(tmp_path / "data" / "events.parquet")
    assert cfg["forecast"] == {"train_days": 365, "horizon_days": 1, "max_staleness_days": 3, "allow_stale": False,
                               "interval": True, "interval_level": 0.9, "n_sims": 500}
    assert cfg["backtest"]["interval_levels"] == [0.5, 0.9] and cfg["backtest"]["n_sims"] == 100
    assert cfg["outputs"]["formats"] == list(OUTPUT_FORMATS)
    assert cfg["backtest"]["step_days"] == BACKTEST_KEYS["step_days"][1]
    assert validate_config(cfg) == cfg


@pytest.mark.parametrize("raw, match", [
    ({"forecast": {"interval_level": 1.0}}, r"forecast.interval_level must be a level in \(0, 1\)"),
    ({"forecast": {"interval_level": True}}, r"forecast.interval_level must be a integer or number, got True"),
    ({"forecast": {"n_sims": 0}}, r"forecast.n_sims must be >= 1"),
    ({"backtest": {"interval_levels": [0.5, 0.5]}}, r"backtest.interval_levels lists a level twice"),
    ({"backtest": {"interval_levels": [0.0]}}, r"backtest.interval_levels must be levels in \(0, 1\)"),
    ({"backtest": {"n_sims": 0}}, r"backtest.n_sims must be >= 1"),
    ({"grid": {"resolutoin": 9}}, r"unknown key\(s\) \['resolutoin'\] in \[grid\]; allowed keys: \['buffer_rings', 'geojson', 'resolution'\]"),
    ({"backtest": {"horizon": 3}}, r"unknown key\(s\) \['horizon'\] in \[backtest\]; allowed keys: \[.*'horizon_days'"),
    ({"grids": {}}, r"unknown section or key 'grids'; allowed: \[.*'grid'"),
    ({"forecast": {"train_days": 0}}, r"forecast.train_days must be > 0 \(days\)"),
    ({"backtest": {"step_days": -7}}, r"backtest.step_days must be > 0 \(days\)"),
    ({"backtest": {"on_error": "ignore"}}, r"backtest.on_error must be 'raise' or 'skip'"),
    ({"events": {"path": "a.csv", "on_invalid": "skip"}}, r"events.on_invalid must be 'raise' or 'drop'"),
    ({"grid": {"resolution": 16}}, r"grid.resolution must be an H3 resolution in 0..15"),
    ({"outputs": {"formats": ["netcdf", "shp"]}}, r"unknown output format\(s\) \['shp'\]"),
    ({"models": {"a": {"params": {}}}}, r"\[models.a\] needs a 'name'"),
])
def test_errors_name_the_setting_and_the_allowed_values(raw, match):
    with pytest.raises(ConfigError, match=match):
        validate_config({**BASE, **raw})


def test_output_is_the_deprecated_name_of_outputs(tmp_path):
    with pytest.warns(FutureWarning, match=r"\[output\] section is deprecated: rename it to \[outputs\]"):
        cfg = validate_config({**BASE, "output": {"dir": "results"}}, path=str(tmp_path / "c.toml"))
    assert cfg["outputs"]["dir"] == str(tmp_path / "results") and "output" not in cfg
    with pytest.raises(ConfigError, match=r"both \[output\] and \[outputs\]"):
        validate_config({**BASE, "output": {"dir": "a"}, "outputs": {"dir": "b"}})
    assert "output" not in SCHEMA  # one name in the schema


def test_one_path_resolver(tmp_path):
    assert resolve("a/b.parquet", tmp_path) == str(tmp_path / "a" / "b.parquet")
    assert resolve("/abs/x.csv", tmp_path) == "/abs/x.csv"
    assert resolve("s3://bucket/x.parquet", tmp_path) == "s3://bucket/x.parquet"
    assert resolve("~/x", tmp_path) == os.path.expanduser("~/x")
    assert resolve(None, tmp_path) is None
    # a batch file and a configuration resolve the same relative path the same way
    (tmp_path / "sub").mkdir()
    cfg_path = tmp_path / "sub" / "city.toml"
    cfg_path.write_text(textwrap.dedent("""
        city = "c"
        [events]
        path = "../data/events.parquet"
        category = "category"
        [model]
        name = "CountHotspot"
        [backtest]
        start = "2024-01-01"
        end = "2024-02-01"
        [models.count]
        name = "CountHotspot"
        [outputs]
        dir = "out"
    """))
    batch = tmp_path / "jobs.toml"
    batch.write_text(textwrap.dedent("""
        [[forecast]]
        name = "direct"
        source = "data/events.parquet"
        [[forecast]]
        name = "from-config"
        config = "sub/city.toml"
        date = "2024-01-15"
        [[backtest]]
        name = "bt-from-config"
        config = "sub/city.toml"
        step_days = 14
    """))
    jobs, _ = load_jobs(batch)
    want = str(tmp_path / "data" / "events.parquet")
    assert [j.source for j in jobs] == [want, want, want]
    assert isinstance(jobs[1], ForecastJob) and jobs[1].date == "2024-01-15"
    bt = jobs[2]
    assert isinstance(bt, BacktestJob) and bt.step_days == 14 and list(bt.models) == ["count"]
    assert load_config(cfg_path)["outputs"]["dir"] == str(tmp_path / "sub" / "out")


def test_job_specs_share_the_checks_of_the_files():
    for bad, match in [
        (dict(horizon_days=0), r"horizon_days must be > 0 \(days\)"),
        (dict(train_days=-1), r"train_days must be > 0 \(days\) or None"),
        (dict(on_invalid="skip"), r"on_invalid must be 'raise' or 'drop'"),
        (dict(grid={"resolution": 16}), r"grid.resolution must be an H3 resolution in 0..15"),
    ]:
        with pytest.raises(ConfigError, match=match):
            ForecastJob("a", "x.parquet", **bad)


def test_interval_settings_reach_the_jobs():
    """[forecast] interval / interval_level / n_sims reach ForecastJob; [backtest] interval_levels / n_sims / seed
    reach the backtest's keyword arguments ([] turns the calibration columns off)."""
    cfg = validate_config({**BASE, "forecast": {"interval_level": 0.8, "n_sims": 50}})
    job = ForecastJob.from_config(cfg)
    assert (job.interval_level, job.n_sims) == (0.8, 50)
    assert ForecastJob.from_config(validate_config({**BASE, "forecast": {"interval": False}})).interval_level is None
    assert ForecastJob("a", "x.parquet").interval_level == 0.9
    with pytest.raises(ConfigError, match=r"interval_level must be a level in \(0, 1\)"):
        ForecastJob("a", "x.parquet", interval_level=1.5)
    with pytest.raises(ConfigError, match="n_sims must be an integer >= 1"):
        ForecastJob("a", "x.parquet", n_sims=0)
    bt = {"start": "2024-01-01", "end": "2024-02-01"}
    models = {"c": {"name": "CountHotspot"}}
    kw = BacktestJob.from_config(validate_config({**BASE, "backtest": bt, "models": models})).backtest_kwargs
    assert (kw["interval_levels"], kw["n_sims"], kw["seed"]) == ([0.5, 0.9], 100, 0)
    kw = BacktestJob.from_config(validate_config({**BASE, "backtest": {**bt, "interval_levels": [], "n_sims": 7},
                                                  "models": models})).backtest_kwargs
    assert kw["interval_levels"] is None and kw["n_sims"] == 7


def test_backtest_config_needs_start_end_and_variants(tmp_path):
    cfg = validate_config({**BASE, "models": {"c": {"name": "CountHotspot"}}})
    with pytest.raises(ConfigError, match=r"\[backtest\] needs 'start'"):
        BacktestJob.from_config(cfg)
    cfg = validate_config({**BASE, "backtest": {"start": "2024-01-01", "end": "2024-02-01"}})
    with pytest.raises(ConfigError, match="no model variant"):
        BacktestJob.from_config(cfg)


def test_a_bad_config_is_reported_without_loading_heavy_libraries(tmp_path):
    """The CLI's error path imports no numerical library (what keeps it well under 0.5 s)."""
    bad = tmp_path / "bad.toml"
    bad.write_text('city = "x"\n[grid]\nresolutoin = 9\n')
    code = textwrap.dedent(f"""
        import sys
        from riskgrid.cli import main
        try:
            main(["forecast", {str(bad)!r}, "--date", "2024-01-01"])
        except SystemExit as exc:
            assert exc.code == 1, exc.code
        heavy = sorted(m for m in ("numpy", "pandas", "numba", "xarray", "dask", "matplotlib", "sklearn", "scipy",
                                   "rasterio", "h3", "pyarrow") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "unknown key(s) ['resolutoin'] in [grid]" in p.stderr, p.stderr
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr
    p = subprocess.run([sys.executable, "-c", "import sys; from riskgrid.cli import main\n"
                        "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
                        "print('HEAVY', sorted(m for m in ('numpy', 'pandas', 'numba', 'xarray', 'dask') if m in sys.modules))"],
                       capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in p.stdout and "batch" in p.stdout, p.stdout + p.stderr


def test_cli_backtest_accepts_the_deprecated_output_section(tmp_path):
    cfg = tmp_path / "bt.toml"
    cfg.write_text('city = "x"\n[events]\npath = "nope.parquet"\n[backtest]\nstart = "2024-01-01"\nend = "2024-02-01"\n'
                   '[models.c]\nname = "CountHotspot"\n[output]\ndir = "o"\n')
    r = CliRunner().invoke(main, ["backtest", str(cfg), "-q"])
    assert r.exit_code == 1 and "event file not found" in r.output  # got past the schema to the data


def test_batch_jobs_in_the_configuration_schema_equal_the_other_forms(tmp_path, monkeypatch):
    """A job written with the sections of a configuration file, a `config =` job and a job-field job are one job."""
    (tmp_path / "city.toml").write_text(textwrap.dedent("""
        [events]
        path = "data/e.parquet"
        category = "category"
        categories = ["A"]
        [model]
        name = "KDEHotspot"
        params = { bandwidth_m = 200.0 }
        [forecast]
        train_days = 30
        horizon_days = 7
    """))
    batch = tmp_path / "jobs.toml"
    batch.write_text(textwrap.dedent("""
        [defaults]
        forecast = { train_days = 30, horizon_days = 7 }
        [[forecast]]
        name = "j"
        date = "2024-01-15"
        events = { path = "data/e.parquet", category = "category", categories = ["A"] }
        model = { name = "KDEHotspot", params = { bandwidth_m = 200.0 } }
        [[forecast]]
        name = "j"
        date = "2024-01-15"
        config = "city.toml"
        [[forecast]]
        name = "j"
        date = "2024-01-15"
        source = "data/e.parquet"
        categories = ["A"]
        columns = { category = "category" }
        train_days = 30
        horizon_days = 7
        model = { name = "KDEHotspot", params = { bandwidth_m = 200.0 } }
    """))
    with pytest.raises(ConfigError, match="unique"):  # the three are the same job under one name
        load_jobs(batch)
    from riskgrid.distributed import batchfile

    monkeypatch.setattr(batchfile, "check_names", lambda jobs: None)
    jobs, _ = load_jobs(batch)
    monkeypatch.undo()
    assert jobs[0] == jobs[1] == jobs[2]
    # the inline form is checked by the configuration schema, and not mixed with the job fields
    for text, match in [
        ('[[forecast]]\nname = "x"\nevents = { path = "b", colour = "red" }\n', r"unknown key\(s\) \['colour'\] in \[events\]"),
        ('[[forecast]]\nname = "x"\nsource = "a.parquet"\nevents = { path = "b" }\n', r"\['source'\] belong to the job-field form"),
        ('[[forecast]]\nname = "x"\nevents = { path = "b" }\n', r"no \[model\] section"),
        ('[[backtest]]\nname = "x"\nevents = { path = "b" }\nmodels = { c = { name = "CountHotspot" } }\n',
         r"\[backtest\] needs 'start'"),
    ]:
        batch.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_jobs(batch)
