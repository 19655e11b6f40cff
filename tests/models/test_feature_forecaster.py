"""FeatureForecaster: recovery, leakage, determinism, errors; target/indicator handling of every model."""

import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from riskgrid.models import CountHotspot, FeatureForecaster, GridHawkes, KDEHotspot
from riskgrid.models._panel import FeatureSpec, build_features


def _poisson_city(rates_per_day, grid, n_days, seed, start="2024-01-01"):
    """Stationary inhomogeneous Poisson events: cell c gets Poisson(rate_c * n_days) events at its centroid."""
    rng = np.random.default_rng(seed)
    lat, lon = grid.centroids_latlon
    n = rng.poisson(rates_per_day * n_days)
    cell = np.repeat(np.arange(len(grid)), n)
    t = rng.uniform(0, n_days, cell.size)
    ts = pd.Timestamp(start) + pd.to_timedelta(t, unit="D")
    df = pd.DataFrame({"timestamp": ts, "lat": lat[cell], "lon": lon[cell], "category": "A"})
    return rg.EventSet.from_frame(df, category="category")


@pytest.fixture(scope="module")
def poisson_city():
    base = rg.simulate(n_days=30, background_rate=20, theta=0.0, seed=3)
    grid = rg.HexGrid.from_events(rg.EventSet.from_frame(base, category="category"), resolution=9, buffer_rings=0)
    rng = np.random.default_rng(0)
    rates = rng.gamma(0.5, 0.04, len(grid))  # events/day per cell: skewed, many near-empty cells
    return _poisson_city(rates, grid, 500, seed=1), grid, rates


@pytest.mark.parametrize("estimator", ["glm", "gbm"])
def test_recovers_stationary_rates(poisson_city, estimator):
    """On a stationary Poisson city the forecast approaches the true per-cell rates.

    Tolerances: total expected count within 10 % of the truth; the forecast's
    mean absolute error per cell within 10 % of the default 365-day count
    map's (on stationary data a long count window is near-optimal, and the
    learned model must find that out from the panel alone; measured: GLM
    1.04x, boosted trees ~1.3x of the count map's error, so only the GLM is
    held to it).
    """
    events, grid, rates = poisson_city
    end = events.to_days("2024-01-01") + 480
    m = FeatureForecaster(horizon_days=7, estimator=estimator, refit_every_days=None).fit(events, grid, end=end)
    pred = m.predict(end, 7).values
    truth = rates * 7
    assert pred.sum() == pytest.approx(truth.sum(), rel=0.10)
    count = CountHotspot(window_days=365).fit(events, grid, end=end).predict(end, 7).values
    factor = 1.10 if estimator == "glm" else 1.40
    assert np.abs(pred - truth).mean() <= np.abs(count - truth).mean() * factor
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)


def test_beats_counts_on_self_exciting_data():
    """With near-repeat triggering the learned forecast beats past counts in held-out likelihood."""
    df = rg.simulate(n_days=420, background_rate=12, theta=0.5, omega=0.3, sigma_m=60, seed=11)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=9)
    df_bt = rg.backtest({"count": CountHotspot(), "ff": FeatureForecaster(estimator="glm")}, ev, grid,
                        ev.start + pd.Timedelta(days=380), ev.start + pd.Timedelta(days=415),
                        step_days=7, horizon_days=7, zones=None, progress=False)
    ll = df_bt.groupby("model")["loglik"].mean()
    assert ll["ff"] > ll["count"]


def test_features_ignore_events_at_or_after_origin(sim_city):
    """Spy: changing or adding events at/after an origin leaves that origin's features unchanged."""
    _, events, grid = sim_city
    cell = grid.assign(events)
    o = float(events.t[len(events) // 2])
    origins = np.array([o - 20.0, o])
    codes = np.arange(len(events.categories))
    spec = FeatureSpec()
    X1, names, _ = build_features(events, cell, grid, origins, 7.0, codes[:1], codes[1:], spec, float(events.t[0]))
    past = events.between(None, o)
    X2, _, _ = build_features(past, grid.assign(past), grid, origins, 7.0, codes[:1], codes[1:], spec, float(events.t[0]))
    # equal up to the rounding of the prefix sums (a leaked event would move a feature by ~1e-4 or more)
    np.testing.assert_allclose(X1, X2, rtol=1e-8, atol=1e-12)
    assert len(names) == X1.shape[-1]


def test_shrunk_count_feature_matches_reference():
    """``target_eb_<w>d``: each cell's window count shrunk toward its ring neighbourhood's mean, ``(n + nu m) /
    (1 + nu)`` per observed day, with ``nu`` and the neighbourhood (1-4 rings) maximising the negative-binomial
    marginal of the counts (scipy's bounded optimum), against brute-force counts and H3 ring distances."""
    from scipy.optimize import minimize_scalar

    from naive_hawkes import nb_marginal_naive, ring_matrix

    df = rg.simulate(n_days=120, background_rate=4, theta=0.3, extent_m=3000, seed=8)
    events = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(events, resolution=9, buffer_rings=1)
    cell = grid.assign(events)
    codes = np.arange(len(events.categories))
    t0 = float(events.t[0])
    origins = t0 + np.array([20.0, 60.0, 119.0])
    spec = FeatureSpec(windows_days=(), ring_windows_days=(), rings=0, decay_days=(), kde_windows_days=(),
                       point_kde_windows_days=(), indicator_windows_days=(), calendar=False,
                       shrunk_windows_days=(28.0, np.inf))
    X, names, _ = build_features(events, cell, grid, origins, 7.0, codes, codes[:0], spec, t0)
    assert names == ["target_eb_28d", "target_eb_alld", "log_area_km2"]
    D = ring_matrix(grid.cells, 4)
    n_ring = np.stack([(D == r).sum(axis=1) for r in range(1, 5)], axis=1)
    for j, w in enumerate((28.0, np.inf)):
        for i, o in enumerate(origins):
            n = np.bincount(cell[(events.t < o) & (events.t >= o - w) & (cell >= 0)], minlength=len(grid)).astype(float)
            best = None
            for s in range(1, 5):
                m = (((D >= 1) & (D <= s)).astype(float) @ n + n.mean()) / (n_ring[:, :s].sum(axis=1) + 1.0)
                pos = n > 0
                # counts of zero enter the marginal as nu m log(nu / (1 + nu)): scipy over the full marginal
                f = lambda z: -(nb_marginal_naive(n[pos], m[pos], np.exp(z))[0]  # noqa: E731
                                + np.exp(z) * m[~pos].sum() * np.log(np.exp(z) / (1 + np.exp(z))))
                res = minimize_scalar(f, bounds=(-7.0, 8.0), method="bounded", options={"xatol": 1e-12})
                z = min([(res.x, res.fun), (-7.0, f(-7.0)), (8.0, f(8.0))], key=lambda v: v[1])[0]
                if best is None or -f(z) > best[0]:
                    best = (-f(z), m, np.exp(z))
            _, m, nu = best
            span = max(min(w, o - t0), 1.0)
            np.testing.assert_allclose(X[i, :, j], (n + nu * m) / (1.0 + nu) / span, rtol=1e-6, atol=1e-12)
    assert np.all(X[..., :2] > 0)  # every cell, empty or not, keeps a positive rate


def test_no_leakage_from_future_events(sim_city):
    """Adversarial future: a burst of events after the fit end does not change fit or forecast."""
    df, events, grid = sim_city
    end = events.t[0] + 150.0
    burst = df.iloc[:500].copy()
    burst["timestamp"] = events.to_timestamp(end + 1.0).tz_localize(None) if events.tz is None else events.to_timestamp(end + 1.0)
    poisoned = rg.EventSet.from_frame(pd.concat([df, burst], ignore_index=True), category="category")
    a = FeatureForecaster(estimator="blend").fit(events, grid, end=end).predict(end, 7)
    b = FeatureForecaster(estimator="blend").fit(poisoned, grid, end=end).predict(end, 7)
    np.testing.assert_array_equal(a.values, b.values)


def test_deterministic_and_auto_selection(sim_city):
    _, events, grid = sim_city
    end = events.t[0] + 150.0
    a = FeatureForecaster(estimator="auto").fit(events, grid, end=end)
    b = FeatureForecaster(estimator="auto").fit(events, grid, end=end)
    np.testing.assert_array_equal(a.predict(end, 7).values, b.predict(end, 7).values)
    assert a.estimator_ in ("glm", "gbm", "blend")
    assert set(a.validation_scores_) == {"glm", "gbm", "blend"}
    scores, se = a.validation_scores_, a.validation_standard_errors_
    best = max(scores.values())
    # the one-standard-error rule: the simplest within one standard error of the best
    within = [k for k in ("glm", "blend", "gbm") if best - scores[k] <= se[k]]
    assert a.estimator_ == within[0]
    imp = a.feature_importances_
    assert list(imp.index) != [] and set(imp.index) == set(a.feature_names_)


def test_horizon_rescaling_and_pai_selection(sim_city):
    _, events, grid = sim_city
    end = events.t[0] + 150.0
    m = FeatureForecaster(horizon_days=3.5, estimator="glm").fit(events, grid, end=end)
    np.testing.assert_allclose(m.predict(end, 7).values, 2 * m.predict(end, 3.5).values, rtol=1e-12)
    p = FeatureForecaster(estimator="auto", selection_metric="pai", top_weight=3.0).fit(events, grid, end=end)
    assert p.estimator_ in ("glm", "gbm", "blend")


def test_clear_errors(sim_city):
    _, events, grid = sim_city
    with pytest.raises(ValueError, match="at least 4 training origins"):
        FeatureForecaster().fit(events, grid, end=events.t[0] + 30)
    with pytest.raises(ValueError, match="estimator must be one of"):
        FeatureForecaster(estimator="xgb").fit(events, grid)
    with pytest.raises(ValueError, match="feature settings are"):
        FeatureForecaster(features={"ringz": 3}).fit(events, grid)
    with pytest.raises(ValueError, match="did you mean 'A'"):
        CountHotspot().fit(events, grid, target="a")


def test_panel_origins_need_history(sim_city):
    """Panel origins start once half the longest finite look-back window (365 days: 182.5) has been observed,
    or half the history before the last origin when the fit window is shorter; ``min_history_days`` sets it."""
    _, events, grid = sim_city
    start = events.t[0]
    end = start + 150.0
    short = {"windows_days": [7, 91, float("inf")], "ring_windows_days": [28], "kde_windows_days": [28, 91],
             "point_kde_windows_days": [91, float("inf")], "indicator_windows_days": [28]}
    for params, expect in (({}, (150.0 - 7.0) / 2),  # 365-day windows, but only 143 days before the last origin
                           ({"features": short}, 91.0 / 2),  # half the longest finite window
                           ({"min_history_days": 0.0}, 7.0),  # never less than min(28, horizon_days)
                           ({"min_history_days": 60.0}, 60.0)):
        m = FeatureForecaster(refit_every_days=None, **params).fit(events, grid, end=end)
        first = m.panel_origins_[0] - start
        assert expect <= first < expect + 7.0, params  # the first origin on the weekly schedule back from the end
        assert m.panel_origins_[-1] == pytest.approx(end - 7.0)
    with pytest.raises(ValueError, match="min_history_days must be a finite number >= 0"):
        FeatureForecaster(min_history_days=-1.0).fit(events, grid)


@pytest.mark.parametrize("features, match", [
    ({"windows_days": [7, -28]}, r"features.windows_days\[1\] = -28: .*positive numbers \(inf = all history\)"),
    ({"shrunk_windows_days": [0.0]}, r"features.shrunk_windows_days\[0\] = 0.0"),
    ({"decay_days": [3.0, float("inf")]}, r"features.decay_days\[1\] = inf: .*positive finite numbers, in days"),
    ({"kde_bandwidths_m": [float("nan")]}, r"features.kde_bandwidths_m\[0\] = nan: .*in metres"),
    ({"point_kde_windows_days": ["365"]}, r"features.point_kde_windows_days\[0\] = '365'"),
    ({"rings": -1}, r"features.rings must be an integer >= 0"),
    ({"rings": 1.5}, r"features.rings must be an integer"),
    ({"calendar": "yes"}, r"features.calendar must be True or False"),
    ({"ring_windows_days": 28}, r"features.ring_windows_days must be a list of numbers"),
])
def test_bad_feature_settings_name_the_field(sim_city, features, match):
    """A negative or zero window used to give an empty count silently; now every setting is checked."""
    _, events, grid = sim_city
    with pytest.raises(ValueError, match=match):
        FeatureForecaster(features=features).fit(events, grid)


def test_all_history_windows_are_accepted(sim_city):
    _, events, grid = sim_city
    spec = FeatureForecaster(features={"windows_days": [7, float("inf")], "kde_windows_days": [float("inf")]})
    assert spec._check_params()[2].windows_days == (7, float("inf"))


def test_covariates_enter_as_features(sim_city):
    _, events, grid = sim_city
    end = events.t[0] + 150.0
    cov = pd.DataFrame({"bars": np.arange(len(grid)) % 3}, index=grid.cell_ids)
    m = FeatureForecaster(estimator="glm", covariates=cov).fit(events, grid, end=end)
    assert "cov_bars" in m.feature_names_
    assert "<table of" in m.predict(end, 7).attrs["param_covariates"]


# ------------------------------------------------------------------ target / indicators
@pytest.fixture(scope="module")
def two_type_city():
    # type "I" (indicator) excites type "T" (target) only
    cross = np.array([[0.0, 0.0], [0.45, 0.0]])  # rows: parent type (T, I), columns: child type
    df = rg.simulate(n_days=900, background_rate=12, theta=0.0, omega=0.5, sigma_m=1.0, categories=["T", "I"],
                     category_probs=[0.4, 0.6], cross_excitation=cross, seed=5)
    ev = rg.EventSet.from_frame(df, category="category")
    return ev, rg.HexGrid.from_events(ev, resolution=9)


def test_baselines_ignore_indicators(two_type_city):
    ev, grid = two_type_city
    end = ev.t[0] + 800
    for cls in (CountHotspot, KDEHotspot):
        a = cls().fit(ev, grid, end=end, target="T").predict(end, 7)
        b = cls().fit(ev.select("T"), grid, end=end).predict(end, 7)
        np.testing.assert_array_equal(a.values, b.values)
        assert a.attrs["target"] == "T" and a.attrs["indicators"] == "I"


def test_feature_forecaster_uses_indicators(two_type_city):
    ev, grid = two_type_city
    end = ev.t[0] + 800
    m = FeatureForecaster(estimator="glm").fit(ev, grid, end=end, target="T")
    assert any(n.startswith("I_") for n in m.feature_names_)
    only = FeatureForecaster(estimator="glm").fit(ev.select("T"), grid, end=end)
    assert not any(n.startswith("I_") for n in only.feature_names_)
    assert not np.array_equal(m.predict(end, 7).values, only.predict(end, 7).values)


_FAMILIES = [
    ("target_cnt_7d_r0", "incidents of the forecast types in the past two weeks"),
    ("target_cnt_14d_r1", "incidents of the forecast types in the past two weeks"),
    ("target_dec_14d_r1", "incidents of the forecast types in the past two weeks"),
    ("target_cnt_28d_r1", "incidents of the forecast types in the past weeks to months"),
    ("target_dec_60d", "incidents of the forecast types in the past weeks to months"),
    ("target_kde_261m_364.5d", "incidents of the forecast types in the past weeks to months"),
    ("target_kde_522m_365d", "incidents of the forecast types in the past year and longer"),
    ("target_pkde_174m_alld", "incidents of the forecast types in the past year and longer"),
    ("target_eb_alld", "incidents of the forecast types in the past year and longer"),
    ("CRIMINAL DAMAGE_cnt_28d_r1", "CRIMINAL DAMAGE incidents"),
    ("target_2_cnt_7d_r0", "target_2 incidents"),  # an indicator whose label starts like the target columns
    ("dow_cos", "calendar"), ("log_area_km2", "cell area"), ("cov_bars", "covariates"),
]


def test_build_features_records_each_family():
    """Every column's family is recorded where build_features makes it: the target features by their time scale
    (window or e-folding time: up to 14 days, under a year, a year or more), each indicator category's columns
    together (even one whose label starts like the target columns), calendar, cell area, covariates."""
    df = rg.simulate(n_days=60, background_rate=6, categories=["T", "CRIMINAL DAMAGE", "target_2"],
                     category_probs=[0.5, 0.3, 0.2], seed=4)
    events = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(events, resolution=9)
    codes = np.array([events.categories.index(c) for c in ("T", "CRIMINAL DAMAGE", "target_2")])
    spec = FeatureSpec(windows_days=(7.0,), ring_windows_days=(14.0, 28.0), rings=1, decay_days=(14.0, 60.0),
                       kde_bandwidths_m=(261.0, 522.0), kde_windows_days=(364.5, 365.0),
                       point_kde_bandwidths_m=(174.0,), point_kde_windows_days=(np.inf,),
                       indicator_windows_days=(7.0, 28.0), shrunk_windows_days=(np.inf,))
    t0 = float(events.t[0])
    X, names, families = build_features(events, grid.assign(events), grid, t0 + np.array([30.0, 50.0]), 7.0,
                                        codes[:1], codes[1:], spec, t0, np.ones((len(grid), 1)), ("bars",))
    assert len(names) == len(families) == X.shape[-1]
    fam = dict(zip(names, families))
    for name, family in _FAMILIES:
        assert fam[name] == family, name
    assert {f for n, f in fam.items() if n.startswith("target_2_")} == {"target_2 incidents"}
    assert set(families) == {f for _, f in _FAMILIES}


def test_fitted_forecaster_keeps_the_families(two_type_city):
    ev, grid = two_type_city
    m = FeatureForecaster(estimator="glm").fit(ev, grid, end=ev.t[0] + 800, target="T")
    assert len(m.feature_families_) == len(m.feature_names_)
    assert dict(zip(m.feature_names_, m.feature_families_))["I_cnt_28d_r1"] == "I incidents"
    assert not m.log_cols_[m.feature_names_.index("log_area_km2")] and m.log_cols_[0]


def test_feature_group_effects_equal_a_naive_glm_recomputation(two_type_city):
    """A zone's factor per family equals exp(intercept + coef . T(x)) summed over the zone, recomputed by hand
    with that family's raw features set to the grid's average, over the same sum with the zone's own features."""
    ev, grid = two_type_city
    end = ev.t[0] + 800
    m = FeatureForecaster(estimator="glm").fit(ev, grid, end=end, target="T")
    risk = m.predict(end, 7).values
    zone = np.argsort(risk)[::-1][:7]  # the seven highest-risk cells
    eff = m.feature_group_effects(grid.cell_ids[zone], start=end)
    X = m._features(np.array([end]))[0][0]
    glm = m.models_["glm"]

    def total(rows):  # the GLM by hand: log rate = intercept + coef . standardised transform
        Z = rows[:, m.log_cols_]
        T = np.hstack([np.log(Z + 0.05 * m.offsets_), np.log(Z + m.offsets_), rows[:, ~m.log_cols_]])
        return np.exp(glm.intercept_ + ((T - m.mean_) / m.scale_) @ glm.coef_).sum()

    families = np.array(m.feature_families_)
    assert "calendar" not in eff.index  # the same in every cell: left out
    assert set(eff.index) == set(families) - {"calendar"}
    assert "I incidents" in eff.index
    base = total(X[zone])
    assert base == pytest.approx(risk[zone].sum() * m.horizon_days_ / 7, rel=1e-9)
    for fam, factor in eff.items():
        alt = X[zone].copy()
        cols = families == fam
        alt[:, cols] = X[:, cols].mean(axis=0)
        assert factor == pytest.approx(base / total(alt), rel=1e-9), fam
    assert (np.diff(eff.to_numpy()) <= 0).all()  # largest first
    # the highest-risk cells owe their rank to their long record; the lowest-risk cells are held down by it
    assert eff["incidents of the forecast types in the past year and longer"] > 1.5
    low = m.feature_group_effects(np.argsort(risk)[:7], start=end)
    assert low["incidents of the forecast types in the past year and longer"] < 1.0
    # several sets at once (one feature build): each column equals the set's own call
    both = m.feature_group_effects(np.concatenate([zone, np.argsort(risk)[:7]]), start=end, labels=[2] * 7 + [1] * 7)
    assert list(both.columns) == [1, 2]
    pd.testing.assert_series_equal(both[2].sort_values(ascending=False), eff, check_names=False)
    pd.testing.assert_series_equal(both[1].sort_values(ascending=False), low, check_names=False)
    with pytest.raises(ValueError, match="one label per cell"):
        m.feature_group_effects(zone, start=end, labels=[1, 2])


def test_feature_group_effects_work_with_boosted_trees(two_type_city):
    ev, grid = two_type_city
    end = ev.t[0] + 800
    m = FeatureForecaster(estimator="gbm").fit(ev, grid, end=end, target="T")
    risk = m.predict(end, 7).values
    eff = m.feature_group_effects(np.argsort(risk)[::-1][:7], start=end)
    assert np.isfinite(eff).all() and (eff > 0).all() and eff.max() > 1.0
    with pytest.raises(ValueError, match="at least one cell"):
        m.feature_group_effects([], start=end)


def test_grid_hawkes_learns_indicator_to_target_and_forecasts_target_only(two_type_city):
    ev, grid = two_type_city
    m = GridHawkes(spillover_rings=0, cross_excitation=True).fit(ev, grid, target="T")
    k_t, k_i = m.categories_.index("T"), m.categories_.index("I")
    theta = np.asarray(m.theta_)
    assert theta[k_i, k_t] == pytest.approx(0.45, rel=0.15)  # indicator -> target recovered
    assert theta[k_t, k_i] < 0.05
    risk = m.predict(horizon_days=7)
    assert "category" not in risk.dims or list(risk["category"].values) == ["T"]


def test_backtest_counts_target_events_only(two_type_city):
    ev, grid = two_type_city
    kw = dict(step_days=7, horizon_days=7, zones=None, progress=False)
    start, end = ev.start + pd.Timedelta(days=820), ev.start + pd.Timedelta(days=860)
    a = rg.backtest({"count": CountHotspot()}, ev, grid, start, end, target=["T"], indicators=["I"], **kw)
    b = rg.backtest({"count": CountHotspot()}, ev.select("T"), grid, start, end, **kw)
    pd.testing.assert_series_equal(a["n_events"], b["n_events"])
    np.testing.assert_allclose(a["loglik"], b["loglik"])
    with pytest.raises(ValueError, match="both target and indicator"):
        rg.backtest({"count": CountHotspot()}, ev, grid, start, end, target=["T"], indicators=["T"], **kw)


# ------------------------------------------------------------------ walk-forward selection
def test_walk_forward_search_picks_the_validation_best_and_never_looks_ahead(sim_city):
    from riskgrid.models import WalkForwardSearch, select_model

    _, events, grid = sim_city
    end = events.t[0] + 150.0
    cands = {"kde100": {"name": "KDEHotspot", "params": {"bandwidth_m": 100}},
             "kde400": {"name": "KDEHotspot", "params": {"bandwidth_m": 400}},
             "count": CountHotspot(window_days=60)}
    s = select_model(cands, events, grid, end=end, horizon_days=7, n_folds=3)
    # naive recomputation of the selection
    from riskgrid.metrics import poisson_loglik
    cell = grid.assign(events)
    means = {}
    for name, proto in (("kde100", KDEHotspot(bandwidth_m=100)), ("kde400", KDEHotspot(bandwidth_m=400)),
                        ("count", CountHotspot(window_days=60))):
        sc = []
        for o in end - 7 - 7 * np.arange(3)[::-1]:
            m = KDEHotspot(**proto.get_params()) if name != "count" else CountHotspot(**proto.get_params())
            r = m.fit(events.between(None, o), grid, end=o).predict(o, 7).values
            sel = (events.t >= o) & (events.t < o + 7) & (cell >= 0)
            sc.append(poisson_loglik(r, np.bincount(cell[sel], minlength=len(grid)).astype(float)))
        means[name] = np.mean(sc)
    assert s.best_name_ == max(means, key=means.get)
    np.testing.assert_allclose(s.mean_scores_[list(means)].to_numpy(), list(means.values()), rtol=1e-12)
    ref = type(s.best_model_)(**s.best_model_.get_params()).fit(events, grid, end=end)
    np.testing.assert_array_equal(s.predict(end, 7).values, ref.predict(end, 7).values)
    assert s.predict(end, 7).attrs["selected_model"] == s.best_name_
    # adversarial future: events after the end change nothing
    df = events.to_frame().reset_index(drop=True)
    fut = df.iloc[:300].copy()
    fut["timestamp"] = events.to_timestamp(end + 2)
    poisoned = rg.EventSet.from_frame(pd.concat([df, fut], ignore_index=True)[["timestamp", "lat", "lon", "category"]],
                                      category="category")
    s2 = WalkForwardSearch(cands, n_folds=3, horizon_days=7).fit(poisoned, grid, end=end)
    assert s2.best_name_ == s.best_name_
    np.testing.assert_array_equal(s2.predict(end, 7).values, s.predict(end, 7).values)
    with pytest.raises(ValueError, match="metric must be one of"):
        WalkForwardSearch(cands, metric="auc").fit(events, grid, end=end)


def test_amortised_refits_equal_cold_fits(sim_city):
    """warm_start reuses the estimator of the same refit-schedule point: a backtest equals cold fits exactly."""
    _, events, grid = sim_city
    kw = dict(step_days=7, horizon_days=7, zones=None, progress=False)
    start, end = events.start + pd.Timedelta(days=150), events.start + pd.Timedelta(days=185)
    warm = FeatureForecaster(estimator="glm", refit_every_days=28, warm_start=True)
    cold = FeatureForecaster(estimator="glm", refit_every_days=28, warm_start=False)
    a = rg.backtest({"m": warm}, events, grid, start, end, **kw)
    b = rg.backtest({"m": cold}, events, grid, start, end, **kw)
    np.testing.assert_array_equal(a["loglik"].to_numpy(), b["loglik"].to_numpy())
    # the schedule: a fit learns on the panel ending at the last multiple of 28 days (since 1970) before its end
    t = events.to_days(start) + 10
    m = FeatureForecaster(estimator="glm", refit_every_days=28).fit(events, grid, end=t)
    assert m.learn_end_ == np.floor(t / 28) * 28
    assert m.panel_origins_[-1] + 7 <= m.learn_end_


def test_constant_panel_column_does_not_blow_up(sim_city):
    """Weekly panel origins share one weekday; a forecast on another weekday must not extrapolate it.

    (Regression: the weekday column had a floating-point standard deviation
    of ~1e-17 and the standardised value at a new weekday was ~1e16.)
    """
    _, events, grid = sim_city
    end = np.floor(events.t[0]) + 150.0
    a = FeatureForecaster(estimator="glm", refit_every_days=None).fit(events, grid, end=end)
    b = FeatureForecaster(estimator="glm", refit_every_days=28).fit(events, grid, end=end)
    assert b.learn_end_ < end
    pa, pb = a.predict(end, 7).values, b.predict(end, 7).values
    assert np.all(np.isfinite(pb))
    assert pb.sum() == pytest.approx(pa.sum(), rel=0.25)


@pytest.mark.parametrize("gains, expected", [
    # gbm ahead of the glm by far less than the week-to-week noise: the glm
    ((0.0, 0.0, 0.03), "glm"),
    # gbm ahead by much more than the noise, blend within noise of it: the blend (simpler)
    ((0.0, 4.9, 5.0), "blend"),
    # gbm clearly ahead of both
    ((0.0, 2.0, 5.0), "gbm"),
])
def test_auto_takes_the_simplest_within_one_standard_error(sim_city, monkeypatch, gains, expected):
    """Per-origin validation scores made to order: the rule, not the learners, decides."""
    _, events, grid = sim_city
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, size=64)  # shared by the candidates: paired differences have spread 0.3 below
    calls = iter(range(3))

    def fake(self, mu, y, n_cells):
        i = next(calls)  # called for glm, blend, gbm in that order
        n = mu.size // n_cells
        return noise[:n] + gains[i] + 0.3 * rng.normal(size=n)

    monkeypatch.setattr(FeatureForecaster, "_origin_scores", fake)
    m = FeatureForecaster(estimator="auto", validation_days=91).fit(events, grid, end=events.t[0] + 150.0)
    assert m.estimator_ == expected
    sc, se = m.validation_scores_, m.validation_standard_errors_
    assert se[max(sc, key=sc.get)] == 0.0
