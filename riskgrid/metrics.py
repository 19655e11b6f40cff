"""Hotspot forecast metrics: hit rate, PAI, PEI, PEI*, hit-rate AUC, Poisson log-likelihood.

Conventions (shared by every function here and by :func:`riskgrid.backtest`)
----------------------------------------------------------------------------
* **Flagged cells.** At coverage ``c`` (a fraction of the grid's *cells*) the
  ``k = max(1, floor(n_cells * c + 1e-9))`` highest-risk cells are flagged
  (:func:`n_flagged`; at least one cell, so small grids still get a value; the
  ``1e-9`` absorbs float noise such as ``0.29 * 100 = 28.999...``).
* **Ranking and ties.** Cells are ranked by risk, descending; equal risks are
  broken by cell index, ascending (``np.lexsort``), so the flagged set is a
  deterministic function of the risk map (:func:`rank_cells`).
* **Observed counts** are the (weighted) numbers of events per cell in the
  forecast window; events outside the grid are not counted.
* **Empty windows.** With no observed event, hit rate, PAI, PEI, PEI* and AUC
  are NaN (undefined), never an error; the log-likelihood is still defined.
* **PAI** (Chainey et al. 2008) ``= (n / N) / (a / A)`` with the real cell
  areas ``a`` (flagged) and ``A`` (whole grid).
* **PEI and PEI\\*** (Hunt 2016) compare with the *oracle*: the ``k`` cells
  with the most observed events (the best possible choice of the same number
  of cells, i.e. the same area up to the small differences between H3 cells;
  ties by smaller area, then cell index). ``PEI* = n / n*`` (in [0, 1]) and
  ``PEI = PAI / PAI_oracle = (n / a) / (n* / a*)`` (1 for a perfect
  forecast; it can exceed 1 by the tiny area differences between cells).
* **AUC** is the area under the hit-rate curve (hit rate against coverage,
  one step per cell, trapezoid rule, starting at (0, 0)) up to the row's
  coverage, divided by that coverage: 1 = every event in the first flagged
  cell, about ``c / 2`` for a random map.
* **Log-likelihood**: ``sum_c [y_c log(mu_c) - mu_c - lgamma(y_c + 1)]`` of the
  observed counts ``y`` under independent Poisson counts with the forecast
  expectations ``mu`` floored at :data:`LOGLIK_FLOOR` (so a zero forecast
  where an event happened costs a large finite penalty, not -inf).

References
----------
Chainey, S., Tompson, L. & Uhlig, S. (2008). The utility of hotspot mapping
for predicting spatial patterns of crime. *Security Journal* 21, 4-28.
Hunt, J. M. (2016). Do crime hot spots move? Exploring the effects of the
modifiable areal unit problem and modifiable temporal unit problem on crime
hot spot stability. PhD thesis, American University (PEI, PEI*).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.special import gammaln

__all__ = [
    "LOGLIK_FLOOR",
    "DEFAULT_COVERAGE",
    "check_coverage",
    "n_flagged",
    "rank_cells",
    "risk_values",
    "hit_rate",
    "pai",
    "pei",
    "pei_star",
    "hit_rate_auc",
    "poisson_loglik",
    "evaluate",
]

#: expected counts are floored at this value (events per cell) in :func:`poisson_loglik`
LOGLIK_FLOOR = 1e-9
DEFAULT_COVERAGE = (0.01, 0.02, 0.05, 0.10)


def check_coverage(coverage) -> np.ndarray:
    """Coverage fractions as a 1-D float64 array, each in (0, 1]; ``ValueError`` naming the bad values."""
    cov = np.atleast_1d(np.asarray(coverage, dtype=np.float64))
    if cov.ndim != 1 or cov.size == 0:
        raise ValueError(f"coverage must be a number or a non-empty 1-D sequence, got {coverage!r}")
    bad = ~((cov > 0) & (cov <= 1))
    if bad.any():
        raise ValueError(f"coverage values must be fractions of the cells in (0, 1], got {cov[bad].tolist()}")
    return cov


def n_flagged(n_cells: int, coverage: float) -> int:
    """Number of cells flagged at ``coverage``: ``max(1, floor(n_cells * coverage + 1e-9))``."""
    c = float(check_coverage(coverage)[0])
    return max(1, min(int(n_cells), int(math.floor(n_cells * c + 1e-9))))


def risk_values(risk, n_cells: int) -> np.ndarray:
    """A forecast (``risk`` DataArray or array) as a (n_cells,) float64 array.

    A ``category`` dimension (or the first axis of a 2-D array: categories x
    cells) is summed; the shape must match the grid and every value be finite.
    """
    if "category" in getattr(risk, "dims", ()):
        risk = risk.sum("category")
    r = np.asarray(getattr(risk, "values", risk), dtype=np.float64)
    if r.ndim == 2:
        r = r.sum(axis=0)
    if r.shape != (n_cells,):
        raise ValueError(
            f"risk must have one value per grid cell ({n_cells}), or categories x cells; got shape {r.shape}"
        )
    if not np.all(np.isfinite(r)):
        bad = np.flatnonzero(~np.isfinite(r))
        raise ValueError(f"risk has {bad.size} non-finite value(s), at cells {bad[:5].tolist()}")
    return r


def rank_cells(risk) -> np.ndarray:
    """Cell indices from highest to lowest risk; ties by cell index ascending.

    Raises ``ValueError`` when ``risk`` holds NaN.
    """
    risk = np.asarray(risk, dtype=np.float64)
    if risk.ndim != 1:
        raise ValueError(f"risk must be 1-D (one value per cell), got shape {risk.shape}")
    if np.isnan(risk).any():
        raise ValueError(f"risk holds {int(np.isnan(risk).sum())} NaN value(s), e.g. at cell {int(np.flatnonzero(np.isnan(risk))[0])}")
    return np.lexsort((np.arange(risk.size), -risk))


def _oracle_order(observed, area) -> np.ndarray:
    n = observed.size
    return np.lexsort((np.arange(n), area, -observed))


def _prepare(risk, observed, area=None):
    risk = np.asarray(risk, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    if risk.shape != observed.shape or risk.ndim != 1:
        raise ValueError(f"risk and observed must be 1-D arrays of the same length, got {risk.shape} and {observed.shape}")
    if risk.size == 0:
        raise ValueError("empty grid: risk has no cell")
    if (observed < 0).any() or not np.isfinite(observed).all():
        raise ValueError("observed counts must be finite and >= 0")
    if area is None:
        area = np.ones_like(risk)
    else:
        area = np.asarray(area, dtype=np.float64)
        if area.shape != risk.shape:
            raise ValueError(f"area must have one value per cell ({risk.size}), got shape {area.shape}")
        if not (area > 0).all():
            raise ValueError("cell areas must be > 0 (m²)")
    return risk, observed, area


def evaluate(risk, observed, area=None, coverage: Sequence[float] | float = DEFAULT_COVERAGE) -> dict:
    """Every coverage-dependent metric at once (one sort of the risk map).

    Parameters
    ----------
    risk : array (n_cells,)
        Forecast (any monotone score; expected counts for the likelihood).
    observed : array (n_cells,)
        Observed (weighted) event counts per cell in the forecast window.
    area : array (n_cells,), optional
        Cell areas in m² (default: equal areas).
    coverage : float or sequence of float
        Fractions of the cells to flag, each in (0, 1].

    Returns
    -------
    dict of ndarrays, one value per coverage
        ``coverage``, ``n_cells_flagged``, ``area_flagged_m2``, ``hits``,
        ``hit_rate``, ``pai``, ``pei``, ``pei_star``, ``auc``, and the scalar
        ``n_events`` (total observed).
    """
    risk, observed, area = _prepare(risk, observed, area)
    cov = check_coverage(coverage)
    n = risk.size
    order = rank_cells(risk)
    k = np.array([n_flagged(n, c) for c in cov], dtype=np.int64)
    cum_obs = np.concatenate([[0.0], np.cumsum(observed[order])])
    cum_area = np.concatenate([[0.0], np.cumsum(area[order])])
    best = _oracle_order(observed, area)
    cum_best = np.concatenate([[0.0], np.cumsum(observed[best])])
    cum_best_area = np.concatenate([[0.0], np.cumsum(area[best])])
    total = float(cum_obs[-1])
    total_area = float(area.sum())
    hits = cum_obs[k]
    a = cum_area[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = hits / total if total > 0 else np.full(k.size, np.nan)
        pai_v = hr / (a / total_area)
        n_star = cum_best[k]
        a_star = cum_best_area[k]
        pei_star_v = np.where(n_star > 0, hits / np.where(n_star > 0, n_star, 1.0), np.nan)
        pei_v = np.where(n_star > 0, (hits / a) / (n_star / a_star), np.nan)
        # trapezoid under (j / n, cum_obs[j] / total), j = 0..k, normalised by k / n
        if total > 0:
            y = cum_obs / total
            trap = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]))])
            auc = trap[k] / k
        else:
            auc = np.full(k.size, np.nan)
    return {
        "coverage": cov,
        "n_cells_flagged": k,
        "area_flagged_m2": a,
        "hits": hits,
        "hit_rate": np.asarray(hr, dtype=float),
        "pai": np.asarray(pai_v, dtype=float),
        "pei": np.asarray(pei_v, dtype=float),
        "pei_star": np.asarray(pei_star_v, dtype=float),
        "auc": np.asarray(auc, dtype=float),
        "n_events": total,
    }


def hit_rate(risk, observed, coverage: float) -> float:
    """Share of the observed events inside the top ``coverage`` of cells (NaN with no event)."""
    return float(evaluate(risk, observed, None, coverage)["hit_rate"][0])


def pai(risk, observed, area, coverage: float) -> float:
    """Predictive accuracy index (Chainey et al. 2008): hit rate / flagged area share."""
    return float(evaluate(risk, observed, area, coverage)["pai"][0])


def pei(risk, observed, area, coverage: float) -> float:
    """Predictive efficiency index (Hunt 2016): PAI / PAI of the best cells of the same number."""
    return float(evaluate(risk, observed, area, coverage)["pei"][0])


def pei_star(risk, observed, coverage: float) -> float:
    """PEI* (Hunt 2016): events caught / events the best cells of the same number would catch."""
    return float(evaluate(risk, observed, None, coverage)["pei_star"][0])


def hit_rate_auc(risk, observed, coverage: float) -> float:
    """Normalised area under the hit-rate curve on [0, coverage] (trapezoid, one step per cell)."""
    return float(evaluate(risk, observed, None, coverage)["auc"][0])


def poisson_loglik(expected, observed, floor: float = LOGLIK_FLOOR) -> float:
    """Held-out Poisson log-likelihood of the observed counts (nats).

    ``sum_c [y_c log(mu_c) - mu_c - lgamma(y_c + 1)]`` with
    ``mu_c = max(expected_c, floor)`` (:data:`LOGLIK_FLOOR` by default).
    Weighted (non-integer) counts use the same formula with ``lgamma``.
    """
    mu = np.asarray(expected, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    if mu.shape != y.shape:
        raise ValueError(f"expected and observed must have the same shape, got {mu.shape} and {y.shape}")
    if np.isnan(mu).any():
        raise ValueError("expected counts hold NaN")
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor}")
    mu = np.maximum(mu, floor)
    return float(np.sum(y * np.log(mu) - mu - gammaln(y + 1.0)))
