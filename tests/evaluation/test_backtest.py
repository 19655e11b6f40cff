"""Walk-forward backtest: metrics, no leakage, summary, plot."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import riskgrid as rg
from riskgrid.models import CountHotspot, KDEHotspot, ProspectiveHotspot, RiskModel

import naive_metrics as nm

BASELINES = {
    "count": CountHotspot(window_days=60),
    "kde": KDEHotspot(bandwidth_m=150, window_days=60),
    "prospective": ProspectiveHotspot(bandwidth_rings=1, window_weeks=4),
}


@pytest.fixture(scope="module")
def city():
    df = rg.simulate(n_days=120, background_rate=12, theta=0.3, omega=0.3, sigma_m=80, seed=11)
    events = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(events, resolution=9)
    return df, events, grid


def _origin0(events):
    return float(np.floor(events.t[0])) + 70.0


def test_table_matches_independent_recomputation(city):
    _, events, grid = city
    t0 = _origin0(events)
    df = rg.backtest(BASELINES, events, grid, t0, t0 + 21, step_days=7, horizon_days=7, train_days=50,
                     coverage=(0.02, 0.1), progress=False)
    assert len(df) == 3 * 3 * 2
    expected_cols = {"model", "origin", "coverage", "n_cells_flagged", "hit_rate", "pai", "pei", "pei_star", "auc",
                     "loglik", "n_events", "fit_seconds", "predict_seconds"}
    assert expected_cols <= set(df.columns)
    cell = grid.assign(events)
    for t in (t0, t0 + 7, t0 + 14):
        w = (events.t >= t) & (events.t < t + 7) & (cell >= 0)
        obs = np.bincount(cell[w], minlength=len(grid)).astype(float)
        train = events.between(t - 50, t)
        for name, proto in BASELINES.items():
            risk = clone(proto).fit(train, grid, end=t).predict(t, 7).values
            rows = df[(df.model == name) & (df.origin_days == t)]
            assert (rows.n_events == obs.sum()).all()
            assert rows.loglik.iloc[0] == pytest.approx(nm.poisson_loglik(risk, obs), rel=1e-10)
            # patrol-zone metric: share of the window's events inside the 4 zones chosen from this forecast
            zs = rg.select_zones(risk, grid, n_zones=4, max_cells=7, min_gap_rings=1)
            inside = np.zeros(len(grid), dtype=bool)
            for z in zs.zones:
                inside[z.cells] = True
            assert len(zs.zones) == 4
            assert (rows.zones == obs[inside].sum() / obs.sum()).all()
            for _, row in rows.iterrows():
                ref = nm.metrics(risk, obs, grid.area_m2, row.coverage)
                assert row.n_cells_flagged == ref["n_cells_flagged"]
                for k in ("hit_rate", "pai", "pei", "pei_star", "auc"):
                    assert row[k] == pytest.approx(ref[k], rel=1e-10), (name, t, k)


def test_empty_window_and_categories():
    df = rg.simulate(n_days=60, background_rate=8, theta=0.2, categories=["A", "B"], seed=2)
    start = df.timestamp.min().normalize()
    gap = (df.timestamp >= start + pd.Timedelta(days=40)) & (df.timestamp < start + pd.Timedelta(days=47))
    events = rg.EventSet.from_frame(df[~gap], category="category")
    grid = rg.HexGrid.from_events(events, resolution=9)
    res = rg.backtest({"count": CountHotspot()}, events, grid, start + pd.Timedelta(days=33),
                      start + pd.Timedelta(days=48), coverage=(0.05,), categories="B", progress=False)
    assert len(res) == 3
    empty = res[res.origin == start + pd.Timedelta(days=40)]
    assert empty.n_events.iloc[0] == 0 and np.isnan(empty.hit_rate.iloc[0]) and np.isnan(empty.pai.iloc[0])
    assert np.isfinite(empty.loglik.iloc[0])
    full = res[res.origin == start + pd.Timedelta(days=33)]
    ev_b = events.select("B")
    t = ev_b.to_days(start + pd.Timedelta(days=33))
    n_b = ((ev_b.t >= t) & (ev_b.t < t + 7) & (grid.assign(ev_b) >= 0)).sum()
    assert full.n_events.iloc[0] == n_b > 0
    s = rg.summarize(res)
    hr = s[s.metric == "hit_rate"].iloc[0]
    assert hr.n_origins == 2  # the empty window is left out
    assert hr["mean"] == pytest.approx(res.hit_rate.mean())


def test_no_leakage_adversarial_future(city):
    """Put M events after each origin in the cells the model ranks lowest: a model
    that only uses the past cannot flag them, so each origin's hit rate must be
    exactly hits / (N + M), well below the plain hit rate."""
    df, events, grid = city
    t0 = _origin0(events)
    origins = [t0, t0 + 7, t0 + 14]
    lat_c, lon_c = grid.centroids_latlon
    n_low, per_cell = 5, 16
    for name, proto in BASELINES.items():
        frame = df[["timestamp", "lat", "lon"]].copy()
        expected = []
        for t in origins:
            ev = rg.EventSet.from_frame(frame)
            model = clone(proto).fit(ev.between(t - 50, t), grid, end=t)
            risk = model.predict(t, 7).values
            low = rg.metrics.rank_cells(risk)[-n_low:]
            cell = grid.assign(ev)
            w = (ev.t >= t) & (ev.t < t + 7) & (cell >= 0)
            obs = np.bincount(cell[w], minlength=len(grid)).astype(float)
            hits = rg.metrics.evaluate(risk, obs, grid.area_m2, [0.05])["hits"][0]
            expected.append(hits / (obs.sum() + n_low * per_cell))
            when = rg.EventSet.origin + pd.to_timedelta(t + np.linspace(0.5, 6.5, per_cell), unit="D")
            adv = pd.DataFrame({"timestamp": np.repeat(when.values[None, :], n_low, 0).ravel(),
                                "lat": np.repeat(lat_c[low], per_cell), "lon": np.repeat(lon_c[low], per_cell)})
            frame = pd.concat([frame, adv], ignore_index=True)
        attacked = rg.EventSet.from_frame(frame)
        plain = rg.backtest({name: proto}, events, grid, t0, t0 + 21, train_days=50, coverage=(0.05,), progress=False)
        res = rg.backtest({name: proto}, attacked, grid, t0, t0 + 21, train_days=50, coverage=(0.05,), progress=False)
        np.testing.assert_allclose(res.hit_rate.to_numpy(), expected, rtol=1e-12, err_msg=name)
        assert res.hit_rate.mean() < 0.7 * plain.hit_rate.mean(), name
        assert (res.n_events.to_numpy() == plain.n_events.to_numpy() + n_low * per_cell).all()


SEEN = []


class SpyModel(RiskModel):
    """Wraps a model; records (end, latest and earliest event time passed to fit, predict start)."""

    model_name = "Spy"

    def __init__(self, inner=None):
        self.inner = inner

    def fit(self, events, grid, end=None, target=None):
        SEEN.append(("fit", float(end), float(events.t.max()), float(events.t.min())))
        self.inner_ = clone(self.inner).fit(events, grid, end=end, target=target)
        self.grid_ = grid
        return self

    def predict(self, start=None, horizon_days=1.0):
        SEEN.append(("predict", float(start), float(horizon_days)))
        return self.inner_.predict(start, horizon_days)


def test_no_model_sees_an_event_at_or_after_its_origin(city):
    _, events, grid = city
    # the spy itself notices future events (so this test can fail)
    SEEN.clear()
    SpyModel(CountHotspot()).fit(events, grid, end=events.t[100])
    assert SEEN[0][2] >= SEEN[0][1]

    SEEN.clear()
    t0 = _origin0(events)
    origins = t0 + np.arange(0, 28, 7.0)
    rg.backtest({"spy": SpyModel(KDEHotspot())}, events, grid, t0, t0 + 28, train_days=30, progress=False)
    fits = [s for s in SEEN if s[0] == "fit"]
    preds = [s for s in SEEN if s[0] == "predict"]
    assert len(fits) == len(preds) == origins.size
    for (_, end, latest, earliest), t in zip(fits, origins):
        assert end == t
        assert latest < t, f"model saw an event at {latest} >= origin {t}"
        assert earliest >= t - 30
    assert [p[1] for p in preds] == list(origins)


def test_parallel_equals_serial_and_extra_metrics(city):
    _, events, grid = city
    t0 = _origin0(events)

    def top_cell_events(risk, observed, grid):
        return float(observed[np.argmax(risk)])

    kw = dict(train_days=50, coverage=(0.05,), progress=False, extra_metrics={"top_cell": top_cell_events})
    models = {"count": BASELINES["count"], "pro": BASELINES["prospective"]}
    a = rg.backtest(models, events, grid, t0, t0 + 14, **kw)
    b = rg.backtest(models, events, grid, t0, t0 + 14, n_jobs=2, **kw)
    cols = [c for c in a.columns if not c.endswith("_seconds")]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert "top_cell" in a.columns and (a.top_cell >= 0).all()


def test_backtest_argument_errors(city):
    _, events, grid = city
    t0 = _origin0(events)
    with pytest.raises(TypeError, match="dict"):
        rg.backtest([CountHotspot()], events, grid, t0, t0 + 7)
    with pytest.raises(ValueError, match="end"):
        rg.backtest({"c": CountHotspot()}, events, grid, t0, t0 - 7)
    with pytest.raises(ValueError, match="coverage"):
        rg.backtest({"c": CountHotspot()}, events, grid, t0, t0 + 7, coverage=(0.0,))
    with pytest.raises(ValueError, match="no training event"):
        rg.backtest({"c": CountHotspot()}, events, grid, events.t[0] - 30, events.t[0], progress=False)


def _synthetic_table(rng, n_origins=200):
    origins = pd.date_range("2020-01-06", periods=n_origins, freq="7D")
    a = rng.normal(0.3, 0.15, n_origins)
    b = a + rng.normal(0.02, 0.01, n_origins)  # paired: b beats a by 0.02 on average
    rows = []
    for name, v in (("a", a), ("b", b), ("a_again", a)):
        for o, x in zip(origins, v):
            rows.append({"model": name, "origin": o, "coverage": 0.05, "hit_rate": x, "pai": x * 20,
                         "pei": np.nan, "pei_star": x, "auc": x, "loglik": -x})
    return pd.DataFrame(rows), a, b


def test_summarize_bootstrap_and_paired_differences(rng):
    df, a, b = _synthetic_table(rng)
    s = rg.summarize(df, reference="a", n_boot=4000, seed=1)
    row = s[(s.model == "b") & (s.metric == "hit_rate")].iloc[0]
    assert row["mean"] == pytest.approx(b.mean())
    se = b.std(ddof=1) / np.sqrt(b.size)
    assert row.hi - row.lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert row.lo < row["mean"] < row.hi
    d = b - a
    assert row["diff"] == pytest.approx(d.mean())
    assert row.diff_hi - row.diff_lo == pytest.approx(2 * 1.96 * d.std(ddof=1) / np.sqrt(d.size), rel=0.15)
    assert row.diff_lo > 0  # the paired interval sees the improvement ...
    assert row.lo < s[(s.model == "a") & (s.metric == "hit_rate")].iloc[0].hi  # ... the marginal ones overlap
    same = s[(s.model == "a_again") & (s.metric == "pai")].iloc[0]
    assert same["diff"] == 0 and same.diff_lo == 0 and same.diff_hi == 0
    ref = s[s.model == "a"]
    assert ref["diff"].isna().all()
    pei = s[(s.model == "b") & (s.metric == "pei")].iloc[0]
    assert pei.n_origins == 0 and np.isnan(pei["mean"])
    # reproducible for a seed, different for another
    s2 = rg.summarize(df, reference="a", n_boot=4000, seed=1)
    pd.testing.assert_frame_equal(s, s2)
    assert not np.allclose(rg.summarize(df, reference="a", n_boot=4000, seed=2).lo.to_numpy(dtype=float)[:3],
                           s.lo.to_numpy(dtype=float)[:3])
    with pytest.raises(ValueError, match="reference"):
        rg.summarize(df, reference="zzz")


def test_plot_backtest_writes_png(city, tmp_path):
    _, events, grid = city
    t0 = _origin0(events)
    df = rg.backtest({"count": BASELINES["count"], "kde": BASELINES["kde"]}, events, grid, t0, t0 + 21,
                     train_days=50, progress=False)
    path = rg.plot_backtest(df, tmp_path / "sub" / "bt.png", title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with pytest.raises(ValueError, match="coverage_over_time"):
        rg.plot_backtest(df, tmp_path / "x.png", coverage_over_time=0.33)


CONFIG = """
city = "simtown"
[events]
simulate = {{ n_days = 90, background_rate = 8, theta = 0.3, seed = 3 }}
category = "category"
[grid]
resolution = 9
[backtest]
start = "2024-03-01"
end = "2024-03-15"
train_days = 50
coverage = [0.02, 0.05]
reference = "count"
n_boot = 200
{extra}
[models.count]
name = "CountHotspot"
params = {{ window_days = 50 }}
[models.pro]
name = "ProspectiveHotspot"
params = {{ bandwidth_rings = 1, window_weeks = 4 }}
[output]
dir = "bt_out"
"""


def test_cli_backtest_writes_outputs(tmp_path):
    from click.testing import CliRunner

    from riskgrid.cli import main

    cfg = tmp_path / "bt.toml"
    cfg.write_text(CONFIG.format(extra=""))
    r = CliRunner().invoke(main, ["backtest", str(cfg), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "2 variants x 2 origins" in r.output and "hit_rate" in r.output
    out = tmp_path / "bt_out"
    table = pd.read_parquet(out / "backtest.parquet")
    assert len(table) == 2 * 2 * 2
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "backtest.csv")[["model", "hit_rate"]], table[["model", "hit_rate"]], check_dtype=False
    )
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.model) == {"count", "pro"} and (summary.reference == "count").all()
    assert {"interval_coverage_50", "interval_coverage_90", "crps"} <= set(summary.metric)  # the calibration columns
    assert (table["interval_method"] == "poisson").all() and table["crps"].notna().all()
    assert (out / "backtest.png").stat().st_size > 10_000
    # unknown keys are refused with a one-line error naming them
    cfg.write_text(CONFIG.format(extra="horizon = 3"))
    r = CliRunner().invoke(main, ["backtest", str(cfg)])
    assert r.exit_code == 1 and "horizon" in r.output and "allowed" in r.output


def test_cli_backtest_runs_the_feature_forecaster(tmp_path):
    """`riskgrid backtest` takes FeatureForecaster from the config like any model and scores it at every origin."""
    from click.testing import CliRunner

    from riskgrid.cli import main

    text = CONFIG.format(extra="").replace("train_days = 50\n", "")
    pro = '[models.pro]\nname = "ProspectiveHotspot"\nparams = { bandwidth_rings = 1, window_weeks = 4 }'
    assert pro in text
    text = text.replace(pro, '[models.ff]\nname = "FeatureForecaster"\nparams = { panel_days = 60.0, min_history_days = 7.0, max_rows = 20000 }')
    cfg = tmp_path / "bt.toml"
    cfg.write_text(text)
    r = CliRunner().invoke(main, ["backtest", str(cfg), "--quiet"])
    assert r.exit_code == 0, r.output
    table = pd.read_parquet(tmp_path / "bt_out" / "backtest.parquet")
    ff = table[table.model == "ff"]
    assert len(ff) == 2 * 2 and (ff["error"] == "").all() and ff["loglik"].notna().all()


class FailsLate(CountHotspot):
    """Raises when fitted after a given day (to test on_error)."""

    def __init__(self, window_days=365.0, fail_after=0.0):
        super().__init__(window_days)
        self.fail_after = fail_after

    def _fit(self, events, grid, cell, end_days):
        if end_days > self.fail_after:
            raise FloatingPointError("boom")
        super()._fit(events, grid, cell, end_days)


def test_on_error_skip_keeps_going(city):
    _, events, grid = city
    t0 = _origin0(events)
    models = {"ok": CountHotspot(), "late": FailsLate(fail_after=t0 + 3)}
    with pytest.raises(FloatingPointError, match="boom"):
        rg.backtest(models, events, grid, t0, t0 + 14, coverage=(0.05,), progress=False)
    df = rg.backtest(models, events, grid, t0, t0 + 14, coverage=(0.05,), progress=False, on_error="skip")
    late = df[df.model == "late"].set_index("origin_days")
    assert late.loc[t0, "error"] == "" and np.isfinite(late.loc[t0, "hit_rate"])
    assert "boom" in late.loc[t0 + 7, "error"] and np.isnan(late.loc[t0 + 7, ["hit_rate", "loglik"]].astype(float)).all()
    assert (df[df.model == "ok"].error == "").all()
    s = rg.summarize(df, reference="ok")
    assert s[(s.model == "late") & (s.metric == "hit_rate")].n_paired.iloc[0] == 1


class WarnsEveryFit(CountHotspot):
    """Warns at every fit, with the end of the fit in the message (to test the warnings column)."""

    def _fit(self, events, grid, cell, end_days):
        import warnings

        from riskgrid.errors import ConvergenceWarning

        warnings.warn(f"slow at day {end_days:.0f}\n  (second line)", ConvergenceWarning)
        warnings.warn(f"slow at day {end_days:.0f}\n  (second line)", ConvergenceWarning)  # the same again
        warnings.warn("odd", UserWarning)
        super()._fit(events, grid, cell, end_days)


def test_warnings_are_recorded_per_origin_and_reported_once_per_model(city):
    """A model's warnings go to the table's `warnings` column (distinct ones, per origin), and the backtest raises
    one warning per model that warned, naming how many origins and the first origin's warnings."""
    import warnings

    _, events, grid = city
    t0 = _origin0(events)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = rg.backtest({"quiet": CountHotspot(window_days=50), "noisy": WarnsEveryFit(window_days=50)}, events, grid,
                         t0, t0 + 21, step_days=7, horizon_days=7, train_days=50, zones=None, progress=False)
    assert [str(w.message).split(" warned")[0] for w in caught] == ["backtest: model 'noisy'"]
    assert caught[0].category is RuntimeWarning and "warned at 3 of 3 origins" in str(caught[0].message)
    assert "ConvergenceWarning: slow at day" in str(caught[0].message)
    assert (df[df.model == "quiet"].warnings == "").all()
    noisy = df[df.model == "noisy"].drop_duplicates("origin")
    for t, text in zip(noisy.origin_days, noisy.warnings):
        assert text == f"ConvergenceWarning: slow at day {t:.0f} (second line) | UserWarning: odd"
    assert rg.summarize(df, reference="quiet") is not None  # the text column does not disturb the summary


@pytest.mark.filterwarnings("ignore::riskgrid.errors.ConvergenceWarning")
def test_interval_calibration_columns_match_naive_recount(city):
    """Coverage of the 50 % / 90 % intervals (randomized PIT) and CRPS per origin and model equal a naive
    recomputation: Poisson for a baseline, the model's own forward simulation (same per-origin seed) for GridHawkes;
    NaN for NearRepeat (a score); summarised like the other metrics."""
    from scipy import stats

    _, events, grid = city
    t0 = _origin0(events)
    models = {"count": CountHotspot(window_days=60),
              "hawkes": rg.models.GridHawkes(spillover_rings=0, max_iter=30),
              "near": rg.models.NearRepeat(n_permutations=19)}
    df = rg.backtest(models, events, grid, t0, t0 + 14, step_days=7, horizon_days=7, train_days=50,
                     coverage=(0.05,), n_sims=40, seed=5, zones=None)
    for c in ("interval_coverage_50", "interval_coverage_90", "crps", "interval_method", "interval_seconds"):
        assert c in df.columns
    cell = grid.assign(events)
    for t in (t0, t0 + 7):
        w = (events.t >= t) & (events.t < t + 7) & (cell >= 0)
        y = np.bincount(cell[w], minlength=len(grid)).astype(float)
        train = events.between(t - 50, t)
        sim_seed, pit_seed = rg.evaluation.walk_forward.origin_seeds(5, t)
        v = np.random.default_rng(pit_seed).random(y.size)
        # Poisson baseline
        m = CountHotspot(window_days=60).fit(train, grid, end=t)
        mu = m.predict(t, 7).values
        u = stats.poisson.cdf(y - 1, mu) + v * stats.poisson.pmf(y, mu)
        row = df[(df.model == "count") & (df.origin_days == t)].iloc[0]
        assert row.interval_method == "poisson"
        assert row.interval_coverage_50 == np.mean((u >= 0.25) & (u <= 0.75))
        assert row.interval_coverage_90 == np.mean((u >= 0.05) & (u <= 0.95))
        crps = np.mean(sum((stats.poisson.cdf(k, mu) - (y <= k)) ** 2 for k in range(80)))  # CRPS = sum over k
        assert row.crps == pytest.approx(crps, rel=1e-9)
        # GridHawkes: its simulation with the origin's seed
        h = rg.models.GridHawkes(spillover_rings=0, max_iter=30).fit(train, grid, end=t)
        x = h.simulate_forecast(t, 7.0, n_sims=40, seed=sim_seed).sum(axis=1)
        u = np.array([np.mean(x[:, i] < y[i]) + v[i] * np.mean(x[:, i] == y[i]) for i in range(y.size)])
        row = df[(df.model == "hawkes") & (df.origin_days == t)].iloc[0]
        assert row.interval_method == "simulation"
        assert row.interval_coverage_90 == np.mean((u >= 0.05) & (u <= 0.95))
        crps = np.mean([np.mean(np.abs(x[:, i] - y[i])) - 0.5 * np.mean(np.abs(x[:, i][:, None] - x[:, i][None, :]))
                        for i in range(y.size)])
        assert row.crps == pytest.approx(crps, rel=1e-9)
    near = df[df.model == "near"]
    assert near.crps.isna().all() and near.interval_coverage_90.isna().all()
    s = rg.summarize(df, n_boot=50)
    assert {"interval_coverage_50", "interval_coverage_90", "crps"} <= set(s.metric)
    off = rg.backtest({"count": CountHotspot(window_days=60)}, events, grid, t0, t0 + 7, horizon_days=7,
                      interval_levels=None, zones=None)
    assert "crps" not in off.columns
    with pytest.raises(ValueError, match="interval_levels"):
        rg.backtest({"count": CountHotspot()}, events, grid, t0, t0 + 7, interval_levels=(0.9, 1.2))


def test_warnings_pass_through_in_a_thread(city):
    """Outside the main thread (a Dask worker's task) warnings are not captured (process-wide, not thread-safe
    state): they reach the caller's filters as usual and the column stays empty."""
    import threading
    import warnings

    _, events, grid = city
    t0 = _origin0(events)
    out = {}

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out["df"] = rg.backtest({"noisy": WarnsEveryFit(window_days=50)}, events, grid, t0, t0 + 7, step_days=7,
                                    horizon_days=7, train_days=50, zones=None, progress=False)
        out["caught"] = caught

    th = threading.Thread(target=run)
    th.start()
    th.join()
    assert (out["df"].warnings == "").all()
    assert {w.category.__name__ for w in out["caught"]} == {"ConvergenceWarning", "UserWarning"}
