"""Calendar phases and seasonal background factors: the Calendar against pandas and
minute-by-minute sampling, the factor M-step against its likelihood equations, and
SEPP(seasonality=...) against simulated day-of-week / month profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from riskgrid.models import SEPP

import naive_sepp as naive
from riskgrid.seasonal import Calendar, seasonal_factor

DOW = np.array([1.0, 1.0, 1.0, 1.0, 1.5, 2.0, 0.5])
MONTH = np.linspace(0.6, 1.4, 12)
EPOCH = pd.Timestamp("1970-01-01")


def _days(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Days since 1970-01-01 (UTC for aware times), computed independently of riskgrid."""
    idx = pd.DatetimeIndex(ts)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return np.asarray((idx - EPOCH) / pd.Timedelta(days=1), dtype=float)


def _brute_exposure(a, b, tz, step_min=1.0):
    """Exposure table by sampling the midpoints of ``step_min``-minute slices of [a, b)."""
    n = int(round((b - a) * 1440 / step_min))
    mids = a + (np.arange(n) + 0.5) * (step_min / 1440)
    ts = EPOCH + pd.to_timedelta(np.round(mids * 86_400e9).astype(np.int64), unit="ns")
    if tz is not None:
        ts = ts.tz_localize("UTC").tz_convert(tz)
    out = np.zeros((7, 12))
    np.add.at(out, (ts.day_of_week, ts.month - 1), step_min / 1440)
    return out


def _brute_factor_table(t, tz):
    ts = EPOCH + pd.to_timedelta(np.round(np.asarray(t) * 86_400e9).astype(np.int64), unit="ns")
    if tz is not None:
        ts = ts.tz_localize("UTC").tz_convert(tz)
    return ts.day_of_week.to_numpy(), ts.month.to_numpy() - 1


# --------------------------------------------------------------------------- #
# Calendar
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tz", [None, "America/Chicago", "Australia/Lord_Howe"])
def test_calendar_phases_match_pandas(rng, tz):
    t = rng.uniform(17_000, 20_000, 5_000)  # 2016 .. 2024, includes DST changes
    t = np.concatenate([t, np.floor(t[:200]), np.floor(t[:200]) - 1e-7])  # exact and almost-midnights (naive)
    dow, month = Calendar(tz).phases(t)
    ref_dow, ref_month = _brute_factor_table(t, tz)
    np.testing.assert_array_equal(dow, ref_dow)
    np.testing.assert_array_equal(month, ref_month)


@pytest.mark.parametrize("tz", [None, "America/Chicago", "Europe/London"])
def test_calendar_exposure_matches_minute_sampling(rng, tz):
    cal = Calendar(tz)
    # windows across a spring-forward and a fall-back change, month ends, and tiny ones
    for a, b in [(17_230.3, 17_260.9), (17_470.0, 17_480.25), (17_501.6, 17_501.7), (17_000.0, 17_400.0)]:
        a, b = float(a) + 1 / 1440 * rng.integers(0, 60), float(b)
        got = cal.exposure(a, b)
        assert got.sum() == pytest.approx(b - a, rel=1e-12)
        np.testing.assert_allclose(got, _brute_exposure(a, b, tz), atol=2.1 / 1440)
    assert cal.exposure(5.0, 5.0).sum() == 0 and cal.exposure(6.0, 5.0).sum() == 0


def test_dst_days_have_their_real_length():
    cal = Calendar("America/Chicago")
    spring = _days(pd.DatetimeIndex([pd.Timestamp("2017-03-12", tz="America/Chicago")]))[0]
    e = cal.exposure(spring, spring + 2)  # Sunday 12 March (23 h) and Monday 13 March (24 h)
    assert e[6, 2] == pytest.approx(23 / 24) and e[0, 2] == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# the factor M-step
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kinds", [(True, False), (False, True), (True, True)])
def test_seasonal_factor_solves_the_likelihood_equations(rng, kinds):
    E = rng.uniform(0.5, 8.0, (7, 12))
    W = rng.poisson(E * np.outer(DOW, MONTH) * 5.0).astype(float)
    F, a, b = seasonal_factor(W, E, *kinds)
    span, N = E.sum(), W.sum()
    assert np.sum(F * E) == pytest.approx(span, rel=1e-12)  # mean factor 1 over the window
    lam = F * N / span  # the fitted Poisson rate per (day, month) cell
    if kinds[0]:  # score equations of a multiplicative Poisson model: fitted margins = observed margins
        np.testing.assert_allclose((lam * E).sum(axis=1), W.sum(axis=1), rtol=1e-8)
    else:
        assert np.ptp(F, axis=0).max() < 1e-12
    if kinds[1]:
        np.testing.assert_allclose((lam * E).sum(axis=0), W.sum(axis=0), rtol=1e-8)
    else:
        assert np.ptp(F, axis=1).max() < 1e-12
    np.testing.assert_allclose(F / F[0, 0], np.outer(a, b) / (a[0] * b[0]), rtol=1e-12)
    # the likelihood is not improved by any nearby multiplicative table
    ll = lambda G: float(np.sum(W * np.log(G)) - np.sum(G * E) * N / span)  # noqa: E731
    for _ in range(20):
        G = F * np.exp(0.01 * np.add.outer(rng.normal(size=7) * kinds[0], rng.normal(size=12) * kinds[1]))
        G *= span / np.sum(G * E)
        assert ll(G) <= ll(F) + 1e-9


# --------------------------------------------------------------------------- #
# SEPP with a seasonal background
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def seasonal_city():
    """Three years, about 20,000 events, background modulated by weekday and month."""
    df = rg.simulate(n_days=1095, background_rate=10, theta=0.4, omega=0.2, sigma_m=100, extent_m=20000,
                     hotspot_sd_m=1500, start="2021-01-01", day_of_week_profile=DOW, month_profile=MONTH, seed=5)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=9)
    return df, ev, grid


def _true_factors(start, n_days):
    days = pd.date_range(start, periods=n_days, freq="D")
    return DOW / DOW[days.day_of_week].mean(), MONTH / MONTH[days.month - 1].mean()


def test_sepp_recovers_day_of_week_and_month_factors(seasonal_city):
    df, ev, grid = seasonal_city
    plain = SEPP(bandwidth_m=400.0).fit(ev, grid)
    m = SEPP(bandwidth_m=400.0, seasonality="day_of_week+month").fit(ev, grid)
    dow_true, month_true = _true_factors("2021-01-01", 1095)
    np.testing.assert_allclose(m.day_of_week_factor_.to_numpy(), dow_true, rtol=0.08)
    np.testing.assert_allclose(m.month_factor_.to_numpy(), month_true, rtol=0.10)
    assert list(m.day_of_week_factor_.index) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for p, true in (("theta_", 0.4), ("omega_", 0.2), ("sigma_m_", 100.0)):
        assert getattr(m, p) == pytest.approx(true, rel=0.10)
    assert m.log_likelihood_ > plain.log_likelihood_ + 500
    np.testing.assert_array_equal(plain.day_of_week_factor_.to_numpy(), np.ones(7))
    # day of week alone: the same weekday factors, months left flat
    d = SEPP(bandwidth_m=400.0, seasonality="day_of_week").fit(ev, grid)
    np.testing.assert_allclose(d.day_of_week_factor_.to_numpy(), dow_true, rtol=0.08)
    np.testing.assert_array_equal(d.month_factor_.to_numpy(), np.ones(12))


def test_seasonal_loglik_predict_and_score_match_naive(seasonal_city):
    df, ev, grid = seasonal_city
    fit_ev = ev.between(None, "2021-12-20")
    m = SEPP(bandwidth_m=400.0, seasonality="day_of_week+month", max_days=50.0, max_distance_m=500.0).fit(fit_ev, grid, end="2021-12-20")
    t = fit_ev.t
    T0, T = float(t[0]), float(fit_ev.to_days("2021-12-20"))
    # the factor table, rebuilt from the marginal factors and normalised by minute sampling
    E = _brute_exposure(T0, T, None, step_min=5.0)
    F = np.outer(m.day_of_week_factor_.to_numpy(), m.month_factor_.to_numpy())
    F *= E.sum() / np.sum(F * E)
    # it solves the factor equations for the background probabilities
    d, mo = _brute_factor_table(t, None)
    W = np.zeros((7, 12))
    np.add.at(W, (d, mo), m.background_probability_)
    lam_tab = F * W.sum() / E.sum()
    np.testing.assert_allclose((lam_tab * E).sum(axis=1), W.sum(axis=1), rtol=2e-3)
    np.testing.assert_allclose((lam_tab * E).sum(axis=0), W.sum(axis=0), rtol=2e-3)
    # log-likelihood with the background rebuilt independently: KDE x weekday-month factor
    x, y = fit_ev.xy(grid.projection)
    mu = m.background_rate_ * naive.kde(x, y, m._kde.w, m.bandwidth_m_, x, y) / m._bg_norm * F[d, mo]
    lam, _, _ = naive.estep_expgauss(t, x, y, mu, m.theta_, m.omega_, m.sigma_m_, m.max_days_, m.max_distance_m_)
    ll = naive.loglik_expgauss(lam, t, T, m.background_rate_ * (T - T0), m.theta_, m.omega_)
    assert m.log_likelihood_ == pytest.approx(ll, rel=1e-3)

    def naive_predict(start, H):
        bg = m.background_rate_ * np.sum(F * _brute_exposure(start, start + H, None, step_min=5.0)) * m._bg_cell_mass
        lag = start - t
        recent = lag < m.max_days_
        tw = m.theta_ * (np.exp(-m.omega_ * np.clip(lag, 0, m.max_days_)) - np.exp(-m.omega_ * np.clip(lag + H, 0, m.max_days_)))
        return bg + m._trigger_mass_per_cell(tw[recent], x[recent], y[recent])  # trigger part: see test_sepp

    sat = float(ev.to_days("2021-12-25"))  # a Saturday
    for start, H in ((sat, 1.0), (sat + 1.0, 1.0), (sat + 13.5 / 24, 3.5), (sat, 7.0)):
        np.testing.assert_allclose(m.predict(start=start, horizon_days=H).values, naive_predict(start, H), rtol=1e-3)
    r_sat = m.predict(start=sat, horizon_days=1.0).values.sum()
    r_sun = m.predict(start=sat + 1.0, horizon_days=1.0).values.sum()
    assert r_sat > 2.5 * r_sun  # true weekday profile: Sat 2.0 vs Sun 0.5
    # score: held-out events until mid-January, compensator with the calendar-weighted background
    s = m.score(ev, end="2022-01-15")
    s_flat = SEPP(bandwidth_m=400.0, max_days=50.0, max_distance_m=500.0).fit(fit_ev, grid, end="2021-12-20").score(ev, end="2022-01-15")
    assert np.isfinite(s) and s > s_flat  # the calendar helps on held-out data


def test_timezone_aware_data_use_local_weekdays(seasonal_city):
    df, ev, grid = seasonal_city
    sub = df[df.t_days < 400].copy()
    naive = rg.EventSet.from_frame(sub, category="category")
    sub["timestamp"] = sub["timestamp"].dt.tz_localize("America/Chicago", nonexistent="shift_forward", ambiguous=False)
    aware = rg.EventSet.from_frame(sub, category="category")
    assert str(aware.tz) == "UTC" and str(aware.local_tz) == "America/Chicago"
    assert str(aware.between(None, "2021-03-01").local_tz) == "America/Chicago" and naive.local_tz is None
    kw = dict(bandwidth_m=400.0, seasonality="day_of_week", max_days=50.0, max_distance_m=500.0)
    a = SEPP(**kw).fit(aware, grid)
    n = SEPP(**kw).fit(naive, grid)
    # same wall-clock weekdays (UTC weekdays would shift every evening event to the next day)
    np.testing.assert_allclose(a.day_of_week_factor_.to_numpy(), n.day_of_week_factor_.to_numpy(), rtol=0.02)
    # the same instants with the zone forgotten (UTC weekdays) give visibly different factors
    sub["timestamp"] = sub["timestamp"].dt.tz_convert("UTC").astype(str)
    utc = rg.EventSet.from_frame(sub, category="category")
    assert str(utc.local_tz) == "UTC"
    u = SEPP(**kw).fit(utc, grid)
    assert np.max(np.abs(u.day_of_week_factor_.to_numpy() / n.day_of_week_factor_.to_numpy() - 1)) > 0.15


def test_seasonality_validation(seasonal_city):
    df, ev, grid = seasonal_city
    with pytest.raises(ValueError, match="seasonality must be one of"):
        SEPP(seasonality="weekly").fit(ev, grid)
    short = ev.between("2021-01-01", "2021-04-01")
    with pytest.raises(ValueError, match="all 12 months.*misses Apr, May"):
        SEPP(bandwidth_m=400.0, seasonality="month").fit(short, grid)
    tiny = ev.between("2021-01-04", "2021-01-07")
    with pytest.raises(ValueError, match="every day of the week"):
        SEPP(bandwidth_m=400.0, seasonality="day_of_week", max_days=2.0, max_distance_m=300.0).fit(tiny, grid, end="2021-01-07")
