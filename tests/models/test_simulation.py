import numpy as np
import pandas as pd
import pytest
from scipy import stats

import riskgrid as rg


@pytest.fixture(scope="module")
def big():
    """150,000 events: the statistical tests below are marked slow (deselect with -m "not slow")."""
    return rg.simulate(n_days=2000, background_rate=60, theta=0.4, omega=0.25, sigma_m=150, seed=11)


def test_seeded_and_deterministic():
    a = rg.simulate(n_days=50, seed=3)
    b = rg.simulate(n_days=50, seed=3)
    c = rg.simulate(n_days=50, seed=4)
    assert a.equals(b)
    k = min(len(a), len(c))  # another seed moves the events (and usually changes their number)
    assert k > 100
    assert not np.allclose(a[["lat", "lon"]].to_numpy()[:k], c[["lat", "lon"]].to_numpy()[:k])
    rg.EventSet.from_frame(a, category="category")  # valid input for EventSet


@pytest.mark.slow
def test_offspring_fraction_close_to_theta(big):
    # stationary branching process: a fraction theta of all events are children
    frac = (big.generation > 0).mean()
    n = len(big)
    assert n > 150_000
    assert frac == pytest.approx(0.4, abs=0.01)
    # children per event (those well before the end, so all children are observed)
    early = big.t_days < 2000 - 60
    parents = big.parent[big.parent >= 0]
    kids = np.bincount(parents, minlength=n)[early.to_numpy()]
    assert kids.mean() == pytest.approx(0.4, abs=0.01)
    assert kids.var() == pytest.approx(0.4, rel=0.05)  # Poisson: variance = mean


@pytest.mark.slow
def test_delays_and_displacements_follow_their_laws(big):
    child = big[big.parent >= 0]
    par = big.iloc[child.parent.to_numpy()]
    dt = child.t_days.to_numpy() - par.t_days.to_numpy()
    assert (dt >= 0).all()
    # delays are exponential(omega) (truncated by the window end; use early parents)
    keep = par.t_days.to_numpy() < 2000 - 80
    assert stats.kstest(dt[keep], "expon", args=(0, 1 / 0.25)).pvalue > 1e-3
    dx = child.x_m.to_numpy() - par.x_m.to_numpy()
    dy = child.y_m.to_numpy() - par.y_m.to_numpy()
    assert stats.kstest(dx / 150, "norm").pvalue > 1e-3
    assert stats.kstest(dy / 150, "norm").pvalue > 1e-3
    assert np.std(dx) == pytest.approx(150, rel=0.02)


@pytest.mark.slow
def test_background_rate(big):
    n_bg = (big.generation == 0).sum()
    assert n_bg / 2000 == pytest.approx(60, rel=0.02)


def test_cross_excitation_types():
    m = np.array([[0.0, 0.5], [0.0, 0.0]])
    df = rg.simulate(n_days=500, background_rate=20, categories=["A", "B"], cross_excitation=m, seed=5)
    child = df[df.parent >= 0]
    assert (child.category == "B").all()
    assert (df.category.iloc[child.parent.to_numpy()] == "A").all()
    with pytest.raises(ValueError, match="spectral radius"):
        rg.simulate(categories=["A", "B"], cross_excitation=np.array([[0.9, 0.5], [0.5, 0.9]]))


def test_xy_consistent_with_latlon():
    df = rg.simulate(n_days=30, seed=1, center=(40.7, -74.0))
    x, y = rg.LocalProjection(40.7, -74.0).forward(df.lat, df.lon)
    np.testing.assert_allclose(x, df.x_m, atol=1e-5)
    np.testing.assert_allclose(y, df.y_m, atol=1e-5)


@pytest.mark.slow
def test_background_follows_day_of_week_and_month_profiles():
    dow = np.array([1.0, 1.0, 1.0, 1.0, 1.5, 2.0, 0.5])
    month = np.linspace(0.6, 1.4, 12)
    df = rg.simulate(n_days=730, background_rate=40, theta=0.2, start="2023-01-01",
                     day_of_week_profile=dow, month_profile=month, seed=8)
    bg = df[df.generation == 0]
    # expected background count per (weekday, month) = rate × profile × days of that kind
    days = pd.date_range("2023-01-01", periods=730, freq="D")
    exp = np.zeros((7, 12))
    np.add.at(exp, (days.day_of_week, days.month - 1), 40 * dow[days.day_of_week] * month[days.month - 1])
    obs = np.zeros((7, 12))
    np.add.at(obs, (bg.timestamp.dt.day_of_week.to_numpy(), bg.timestamp.dt.month.to_numpy() - 1), 1)
    chi2 = np.sum((obs - exp) ** 2 / exp)
    assert stats.chi2.sf(chi2, df=84) > 1e-3
    assert obs.sum(axis=1)[5] / obs.sum(axis=1)[6] == pytest.approx(4.0, rel=0.08)
    assert df.attrs["simulation"]["day_of_week_profile"] == dow.tolist()
    with pytest.raises(ValueError, match="day_of_week_profile must be 7"):
        rg.simulate(n_days=10, day_of_week_profile=[1, 2, 3])
    with pytest.raises(ValueError, match="month_profile"):
        rg.simulate(n_days=10, month_profile=[-1.0] * 12)
