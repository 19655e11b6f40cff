"""Hotspot metrics against hand computations and tests/naive_metrics.py."""

import math

import numpy as np
import pytest
from scipy.stats import poisson

from riskgrid import metrics as M

import naive_metrics as nm

KEYS = ("hit_rate", "pai", "pei", "pei_star", "auc")


def test_hand_made_case_with_ties():
    risk = np.array([0, 3, 3, 5, 0, 0, 0, 0, 0, 1], float)
    obs = np.array([2, 0, 4, 1, 0, 0, 0, 0, 0, 3], float)
    r = M.evaluate(risk, obs, None, [0.2])
    # flagged: cell 3 (risk 5), then cell 1 (risk 3, beats cell 2 on index)
    assert r["n_cells_flagged"][0] == 2
    assert r["hits"][0] == 1.0
    assert r["hit_rate"][0] == pytest.approx(0.1)
    assert r["pai"][0] == pytest.approx(0.1 / 0.2)
    # oracle: cells 2 (4 events) and 9 (3 events)
    assert r["pei_star"][0] == pytest.approx(1 / 7)
    assert r["pei"][0] == pytest.approx((1 / 2) / (7 / 2))
    # curve (0,0) → (0.1, 0.1) → (0.2, 0.1): area 0.015, normalised by 0.2
    assert r["auc"][0] == pytest.approx(0.075)
    assert r["n_events"] == 10


def test_ties_broken_by_cell_index():
    risk = np.ones(6)
    obs = np.array([0, 0, 0, 0, 5, 1], float)
    assert M.rank_cells(risk).tolist() == [0, 1, 2, 3, 4, 5]
    assert M.hit_rate(risk, obs, 0.5) == 0.0  # cells 0..2 flagged
    assert M.rank_cells(np.array([1.0, 2.0, 2.0, -1.0])).tolist() == [1, 2, 0, 3]


def test_pai_uses_real_areas():
    risk = np.array([3.0, 2.0, 1.0, 0.0])
    obs = np.array([1.0, 1.0, 1.0, 1.0])
    area = np.array([1.0, 2.0, 3.0, 4.0])
    # k = 1: cell 0 flagged, 1/4 of events in 1/10 of the area
    assert M.pai(risk, obs, area, 0.25) == pytest.approx(0.25 / 0.1)
    # oracle of the same number of cells: tie on counts → smallest area (cell 0): PEI = 1
    assert M.pei(risk, obs, area, 0.25) == pytest.approx(1.0)
    assert M.pei(risk[::-1], obs, area, 0.25) == pytest.approx((1 / 4) / (1 / 1))


def test_empty_window_gives_nan_not_error():
    risk = np.array([1.0, 2.0, 0.5])
    obs = np.zeros(3)
    r = M.evaluate(risk, obs, np.ones(3), M.DEFAULT_COVERAGE)
    for k in KEYS:
        assert np.isnan(r[k]).all(), k
    assert r["n_events"] == 0
    assert M.poisson_loglik(risk, obs) == pytest.approx(-3.5)


def test_all_events_in_one_cell():
    n = 50
    risk = np.linspace(1, 0, n)
    obs = np.zeros(n)
    obs[0] = 7
    r = M.evaluate(risk, obs, None, [0.02, 0.1])
    np.testing.assert_allclose(r["hit_rate"], 1.0)
    np.testing.assert_allclose(r["pei_star"], 1.0)
    np.testing.assert_allclose(r["pei"], 1.0)
    np.testing.assert_allclose(r["pai"], [50.0, 10.0])
    # curve jumps to 1 at the first cell: area = 0.5 + (k - 1), normalised by k
    np.testing.assert_allclose(r["auc"], [(0.5 + 0) / 1, (0.5 + 4) / 5])
    # the same events in the cell ranked last are missed
    obs2 = obs[::-1].copy()
    r2 = M.evaluate(risk, obs2, None, [0.1])
    assert r2["hit_rate"][0] == 0 and r2["pai"][0] == 0 and r2["pei_star"][0] == 0 and r2["auc"][0] == 0


def test_n_flagged_rule():
    assert M.n_flagged(100, 0.29) == 29  # 0.29 * 100 = 28.999999999999996
    assert M.n_flagged(100, 0.001) == 1  # at least one cell
    assert M.n_flagged(1073, 0.05) == 53
    assert M.n_flagged(10, 1.0) == 10
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="coverage"):
            M.n_flagged(10, bad)


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_match_naive(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    # integer risks make many ties; sparse Poisson counts make oracle ties
    risk = rng.integers(0, 5, n).astype(float) if seed % 2 else rng.gamma(0.5, 1.0, n)
    obs = rng.poisson(0.3, n).astype(float)
    if seed % 3 == 0:
        obs = obs * rng.uniform(0.5, 2, n)  # weighted counts
    area = rng.uniform(0.9e5, 1.1e5, n)
    cov = [0.01, 0.02, 0.05, 0.1, 0.37, 1.0]
    r = M.evaluate(risk, obs, area, cov)
    for j, c in enumerate(cov):
        ref = nm.metrics(risk, obs, area, c)
        assert r["n_cells_flagged"][j] == ref["n_cells_flagged"]
        for k in KEYS:
            np.testing.assert_allclose(r[k][j], ref[k], rtol=1e-10, atol=1e-12, err_msg=f"{k} at {c}")
    assert M.poisson_loglik(risk, obs) == pytest.approx(nm.poisson_loglik(risk, obs), rel=1e-10, abs=1e-9)


def test_poisson_loglik_against_scipy_and_floor():
    rng = np.random.default_rng(1)
    mu = rng.gamma(1.0, 0.5, 100)
    y = rng.poisson(mu)
    assert M.poisson_loglik(mu, y) == pytest.approx(poisson.logpmf(y, mu).sum(), rel=1e-12)
    # a zero forecast where an event happened is floored, not -inf
    ll = M.poisson_loglik(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    assert ll == pytest.approx(math.log(M.LOGLIK_FLOOR) - M.LOGLIK_FLOOR - 1.0)
    with pytest.raises(ValueError, match="NaN"):
        M.poisson_loglik(np.array([np.nan]), np.array([1.0]))


def test_input_validation():
    with pytest.raises(ValueError, match="NaN"):
        M.evaluate(np.array([np.nan, 1.0]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="same length"):
        M.evaluate(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="observed"):
        M.evaluate(np.ones(2), np.array([-1.0, 1.0]))
    with pytest.raises(ValueError, match="area"):
        M.evaluate(np.ones(2), np.ones(2), np.array([1.0, 0.0]))
