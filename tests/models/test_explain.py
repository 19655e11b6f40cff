"""model.explain: background + triggered parts add up to the forecast, and each listed event's
contribution equals a naive recomputation from the fitted parameters (issue 14)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from h3.api import basic_str as h3s

import riskgrid as rg
from riskgrid.models import (
    SEPP,
    CountHotspot,
    GridHawkes,
    KDEHotspot,
    NearRepeat,
    ProspectiveHotspot,
)
from riskgrid.errors import LeakageError
from riskgrid.models.sepp import cell_samples
from riskgrid.zones import select_zones

RTOL = 1e-9
# short fits: the decomposition is exact whether or not EM has converged
pytestmark = pytest.mark.filterwarnings("ignore:.*did not converge:UserWarning")


@pytest.fixture(scope="module")
def city():
    df = rg.simulate(n_days=120, background_rate=8, theta=0.4, omega=0.5, sigma_m=150, extent_m=4000,
                     categories=["A", "B"], seed=11, start="2021-01-01")
    df["case"] = [f"C{i:05d}" for i in range(len(df))]
    ev = rg.EventSet.from_frame(df, time="timestamp", lat="lat", lon="lon", category="category", id="case")
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
    return ev, grid


def _risk_total(model, start, H):
    r = model.predict(start, H)
    return (r.sum("category") if "category" in r.dims else r).values


def _check_sums(model, start, H, cells=None):
    ex = model.explain(start, H, cells=cells)
    risk = _risk_total(model, start, H)[ex.cells.index.to_numpy()]
    np.testing.assert_allclose(ex.cells["background"] + ex.cells["triggered"], risk, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(ex.cells["risk"], risk, rtol=RTOL)
    # the listed contributions of each part add up to that part
    for part in ("background", "triggered"):
        sub = ex.contributions[ex.contributions["part"] == part]
        if len(sub):
            got = sub.groupby("cell")["contribution"].sum().reindex(ex.cells.index, fill_value=0.0)
            np.testing.assert_allclose(got.to_numpy(), ex.cells[part].to_numpy(), rtol=RTOL, atol=1e-15)
    return ex


def test_gridhawkes_parts_and_naive_contributions(city):
    ev, grid = city
    m = GridHawkes(spillover_rings=1, cross_excitation=True, max_iter=60).fit(ev, grid, end="2021-04-25")
    start, H = "2021-04-25", 7.0
    ex = _check_sums(m, start, H)
    assert len(ex.cells) == m.EXPLAIN_DEFAULT_CELLS
    assert (ex.contributions["part"] == "triggered").all() and len(ex.contributions) > 0
    # naive: theta(k_i -> all targets) * w[ring] * weight * (decay integral over the window), ring by h3
    th = np.asarray(m.theta_)
    s = ev.to_days(start)
    lag = m.min_lag_minutes / 1440.0
    cats = list(m.categories_)
    for _, row in ex.top(3).iterrows():
        ring = h3s.grid_distance(row["h3"], h3s.latlng_to_cell(row["lat"], row["lon"], 9))
        t = ev.to_days(row["time"])
        src = t + lag
        f = np.exp(-m.omega_ * max(s - src, 0)) - np.exp(-m.omega_ * max(s + H - src, 0))
        k = cats.index(row["category"])
        naive = th[k].sum() * m.w_[ring] * f
        assert row["contribution"] == pytest.approx(naive, rel=1e-10)
        assert row["event_id"] == ev.extra["case"].to_numpy()[list(ev.index).index(row["event"])]


def test_gridhawkes_target_only(city):
    ev, grid = city
    m = GridHawkes(spillover_rings=1, cross_excitation=True).fit(ev, grid, end="2021-04-25", target="A")
    _check_sums(m, "2021-04-26", 3.5)


def test_sepp_parts_and_naive_contributions(city):
    ev, grid = city
    A = ev.select("A")
    m = SEPP(max_iter=40).fit(A, grid, end="2021-04-25")
    start, H = "2021-04-25", 7.0
    ex = _check_sums(m, start, H)
    s = ev.to_days(start)
    px, py, pw, pc = cell_samples(grid)
    x, y = A.xy(grid.projection)
    sig2 = m.sigma_m_ ** 2
    for _, row in ex.top(2).iterrows():
        i = list(A.index).index(row["event"])
        lag0 = s - A.t[i]
        time_part = m.theta_ * (np.exp(-m.omega_ * min(lag0, m.max_days_)) - np.exp(-m.omega_ * min(lag0 + H, m.max_days_)))
        total = 0.0
        for q in np.flatnonzero(pc == row["cell"]):
            d2 = (px[q] - x[i]) ** 2 + (py[q] - y[i]) ** 2
            if d2 <= m.max_distance_m_ ** 2:
                total += pw[q] * np.exp(-0.5 * d2 / sig2) / (2 * np.pi * sig2)
        assert row["contribution"] == pytest.approx(time_part * total, rel=1e-9)


def test_sepp_histogram_parts(city):
    ev, grid = city
    m = SEPP(trigger="histogram", max_days=30, max_distance_m=500, max_iter=30).fit(ev.select("A"), grid, end="2021-04-25")
    _check_sums(m, "2021-04-25", 7.0)


def test_baselines(city):
    ev, grid = city
    A = ev.select("A")
    end, H = "2021-04-25", 7.0
    cnt = CountHotspot(window_days=60).fit(A, grid, end=end)
    ex = _check_sums(cnt, end, H)
    assert (ex.cells["triggered"] == 0).all() and (ex.contributions["part"] == "background").all()
    # naive: each event of the window counts 1/60 * 7 in its own cell
    assert np.allclose(ex.contributions["contribution"], 7.0 / 60.0)
    assert (ex.contributions["h3"] == [h3s.latlng_to_cell(a, b, 9) for a, b in ex.contributions[["lat", "lon"]].to_numpy()]).all()
    kde = KDEHotspot(bandwidth_m=250, window_days=90).fit(A, grid, end=end)
    ex = _check_sums(kde, end, H)
    row = ex.contributions.iloc[0]
    h = 250.0
    naive = np.exp(-0.5 * row["distance_m"] ** 2 / h**2) / (2 * np.pi * h**2) * grid.area_m2[row["cell"]] / 90 * H
    assert row["contribution"] == pytest.approx(naive, rel=1e-9)
    kq = KDEHotspot(bandwidth_m=400, window_days=90, kernel="quartic").fit(A, grid, end=end)
    _check_sums(kq, end, H)
    pro = ProspectiveHotspot(bandwidth_rings=2, window_weeks=6).fit(A, grid, end=end)
    ex = _check_sums(pro, "2021-04-28", H)
    assert (ex.cells["background"] == 0).all()
    nr = NearRepeat(space_bands=(0, 200, 400), time_bands=(0, 7, 14), n_permutations=99, seed=1).fit(A, grid, end=end)
    _check_sums(nr, end, H)


def test_cells_argument_and_errors(city):
    ev, grid = city
    m = CountHotspot().fit(ev, grid, end="2021-04-25")
    ids = list(grid.cell_ids[:3])
    a = m.explain("2021-04-25", 7, cells=ids)
    b = m.explain("2021-04-25", 7, cells=[0, 1, 2])
    pd.testing.assert_frame_equal(a.cells, b.cells)
    with pytest.raises(ValueError, match="not a cell of the grid"):
        m.explain("2021-04-25", 7, cells=["89283082813ffff"])
    with pytest.raises(ValueError, match="twice"):
        m.explain("2021-04-25", 7, cells=[0, 0])
    with pytest.raises(LeakageError):
        m.explain("2021-01-10", 7)


def test_by_zone_matches_naive_recount(city):
    ev, grid = city
    m = GridHawkes(spillover_rings=1).fit(ev, grid, end="2021-04-25")
    risk = m.predict("2021-04-25", 7.0)
    zones = select_zones(risk, grid, n_zones=2, max_cells=4)
    cz = np.asarray(zones.cell_zone)
    cells = np.flatnonzero(cz > 0)
    ex = m.explain("2021-04-25", 7.0, cells=cells)
    summary, top = ex.by_zone(cz, top=5)
    assert list(summary.index) == sorted(set(cz[cz > 0]))
    for z, row in summary.iterrows():
        zc = np.flatnonzero(cz == z)
        assert row["risk"] == pytest.approx(float(_risk_total(m, "2021-04-25", 7.0)[zc].sum()), rel=1e-9)
        sub = ex.contributions[ex.contributions["cell"].isin(zc)]
        naive = sub.groupby("event")["contribution"].sum().sort_values(ascending=False)
        got = top[top["zone"] == z]
        assert list(got["rank"]) == list(range(1, len(got) + 1))
        np.testing.assert_allclose(got["contribution"].to_numpy(), naive.to_numpy()[: len(got)], rtol=1e-12)
        assert 0 <= row["background_share"] <= 1
        # driving events: the fewest, largest first, making up half of the event-attributed part
        k = next(i + 1 for i in range(len(naive)) if naive.iloc[: i + 1].sum() >= 0.5 * naive.sum())
        assert row["n_driving_events"] == (k if naive.sum() >= 0.01 * row["risk"] else 0)
    with pytest.raises(ValueError, match="not explained"):
        m.explain("2021-04-25", 7.0, cells=cells[:1]).by_zone(cz)


def test_feature_forecaster_contributions_add_up(city):
    from riskgrid.models import FeatureForecaster

    ev, grid = city
    m = FeatureForecaster(horizon_days=7, estimator="glm", panel_days=60, refit_every_days=None).fit(
        ev, grid, end="2021-04-25", target="A")
    fc = m.feature_contributions("2021-04-25")
    risk = m.predict("2021-04-25", 7.0).values
    np.testing.assert_allclose(np.exp(fc["log_rate"].to_numpy()), risk, rtol=1e-9)
    assert list(fc.index) == list(grid.cell_ids)
    some = m.feature_contributions("2021-04-25", cells=[3, 5])
    pd.testing.assert_frame_equal(some, fc.iloc[[3, 5]])
    with pytest.raises(NotImplementedError, match="cannot decompose"):
        m.explain("2021-04-25", 7.0)
    m.estimator_ = "gbm"  # (a tree estimator: no additive decomposition)
    with pytest.raises(NotImplementedError, match="glm"):
        m.feature_contributions()


def test_walk_forward_search_explains_and_intervals_with_the_selected_model(city):
    from riskgrid.models import WalkForwardSearch

    ev, grid = city
    A = ev.select("A")
    m = WalkForwardSearch(candidates={"CountHotspot": {"name": "CountHotspot"}, "KDEHotspot": {"name": "KDEHotspot"}},
                          n_folds=2, horizon_days=7.0).fit(A, grid, end="2021-04-25")
    a = m.explain("2021-04-25", 7.0, cells=[1, 2])
    b = m.best_model_.explain("2021-04-25", 7.0, cells=[1, 2])
    pd.testing.assert_frame_equal(a.contributions, b.contributions)
    assert a.model == m.best_name_
    ia = m.predict_interval("2021-04-25", 7.0, level=0.9)
    ib = m.best_model_.predict_interval("2021-04-25", 7.0, level=0.9)
    np.testing.assert_array_equal(ia["risk_hi"].values, ib["risk_hi"].values)
