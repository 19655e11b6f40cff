"""Forecast intervals of event counts: Poisson intervals and summaries of simulated futures.

Every model's point forecast is an expected count per cell. This module turns
either a Poisson assumption (the baselines: :func:`poisson_interval`) or a set
of simulated futures (the self-exciting models' forward simulation:
:func:`sample_interval`) into per-cell (and per-zone) central intervals,
``P(at least one event)`` and calibration scores, and wraps them in one
``xarray.Dataset`` layout (:func:`interval_dataset`): ``risk`` (expected
count), ``risk_lo`` / ``risk_hi`` (the central ``level`` interval of the
count) and ``p_any``.

Counts are discrete, so a central interval of level 0.9 covers at least 90 %
of outcomes (often more for small means). Calibration is therefore checked
with the randomized probability integral transform (Czado, Gneiting & Held
2009, Biometrics 65): ``u = F(y - 1) + V (F(y) - F(y - 1))`` with ``V``
uniform is uniform on (0, 1) when the forecast distribution ``F`` is right, and
the *randomized coverage* ``P((1 - level) / 2 <= u <= (1 + level) / 2)`` equals
``level`` exactly (:func:`randomized_coverage`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from ..errors import LeakageError
from ..events import to_days
from ._base import check_int, check_number

__all__ = [
    "poisson_interval",
    "sample_interval",
    "zone_sums",
    "randomized_coverage",
    "crps_samples",
    "crps_poisson",
    "interval_dataset",
    "forecast_samples",
    "count_calibration",
]


def _check_level(level: float) -> float:
    if not isinstance(level, (int, float, np.floating)) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(level)


def poisson_interval(mean, level: float = 0.9):
    """Central ``level`` interval and ``P(N >= 1)`` of Poisson counts with the given means.

    Parameters
    ----------
    mean : array_like
        Expected counts (events in the forecast window), >= 0.
    level : float
        Probability of the central interval, in (0, 1).

    Returns
    -------
    lo, hi : ndarray
        ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of Poisson(mean) (counts).
    p_any : ndarray
        ``1 - exp(-mean)``.
    """
    level = _check_level(level)
    mean = np.asarray(mean, dtype=np.float64)
    if not np.all(np.isfinite(mean)) or (mean < 0).any():
        raise ValueError("mean must be finite and >= 0")
    a = (1.0 - level) / 2.0
    lo = stats.poisson.ppf(a, mean)
    hi = stats.poisson.ppf(1.0 - a, mean)
    lo = np.where(mean > 0, lo, 0.0)
    hi = np.where(mean > 0, hi, 0.0)
    return lo, hi, -np.expm1(-mean)


def sample_interval(samples, level: float = 0.9):
    """Central interval, mean and ``P(N >= 1)`` from simulated counts.

    Parameters
    ----------
    samples : (n_sims, ...) array
        Simulated counts, first axis the simulations.
    level : float

    Returns
    -------
    mean, lo, hi, p_any : ndarray (shape ``samples.shape[1:]``)
        ``lo``/``hi`` are the empirical ``(1 -+ level) / 2`` quantiles
        (inverted CDF: always one of the simulated counts).
    """
    level = _check_level(level)
    x = np.asarray(samples, dtype=np.float64)
    a = (1.0 - level) / 2.0
    lo = np.quantile(x, a, axis=0, method="inverted_cdf")
    hi = np.quantile(x, 1.0 - a, axis=0, method="inverted_cdf")
    return x.mean(axis=0), lo, hi, (x > 0).mean(axis=0)


def zone_sums(values, zone_of_cell, n_zones: int | None = None):
    """Sum per zone along the last axis: ``zone_of_cell[c]`` is the zone of cell ``c`` (-1: none)."""
    v = np.asarray(values, dtype=np.float64)
    z = np.asarray(zone_of_cell, dtype=np.int64)
    if z.shape != (v.shape[-1],):
        raise ValueError(f"zone_of_cell must have one entry per cell ({v.shape[-1]}), got shape {z.shape}")
    nz = int(z.max()) + 1 if n_zones is None else int(n_zones)
    ok = z >= 0
    flat = v.reshape(-1, v.shape[-1])[:, ok]
    out = np.zeros((flat.shape[0], max(nz, 0)))
    for r in range(flat.shape[0]):
        out[r] = np.bincount(z[ok], weights=flat[r], minlength=nz)[:nz]
    return out.reshape(v.shape[:-1] + (max(nz, 0),))


def randomized_coverage(y, cdf_below, cdf_at, level: float = 0.9, seed=None) -> float:
    """Share of outcomes whose randomized PIT falls in the central ``level`` band.

    Parameters
    ----------
    y : array
        Observed counts (only used for its shape).
    cdf_below, cdf_at : array
        ``F(y - 1)`` and ``F(y)`` of each outcome's forecast distribution.
    level : float
    seed : int, optional
        Seed of the uniform ``V``.

    Returns
    -------
    float
        ``level`` in expectation for a calibrated forecast.
    """
    level = _check_level(level)
    lo_c = np.asarray(cdf_below, dtype=np.float64)
    hi_c = np.asarray(cdf_at, dtype=np.float64)
    v = np.random.default_rng(seed).random(np.shape(y))
    u = lo_c + v * (hi_c - lo_c)
    a = (1.0 - level) / 2.0
    return float(np.mean((u >= a) & (u <= 1.0 - a)))


def crps_samples(samples, y):
    """CRPS of simulated counts (first axis the simulations) at outcomes ``y``: ``E|X - y| - E|X - X'| / 2``.

    Uses the sorted-sample identity ``E|X - X'| = 2 / n^2 sum_i (2 i - n - 1) x_(i)``.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=0)
    n = x.shape[0]
    y = np.asarray(y, dtype=np.float64)
    term1 = np.mean(np.abs(x - y[None, ...]), axis=0)
    i = np.arange(1, n + 1, dtype=np.float64).reshape((n,) + (1,) * (x.ndim - 1))
    term2 = np.sum((2 * i - n - 1) * x, axis=0) / (n * n)
    return term1 - term2


def crps_poisson(mean, y, max_count: int | None = None):
    """CRPS of Poisson(mean) forecasts at counts ``y`` (sum over k of (F(k) - 1{y <= k})^2)."""
    mean = np.asarray(mean, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    top = int(max_count if max_count is not None else max(np.max(y), stats.poisson.ppf(1 - 1e-12, max(mean.max(), 1e-12))) + 1)
    out = np.zeros(np.broadcast(mean, y).shape)
    for k in range(top + 1):
        F = stats.poisson.cdf(k, mean)
        out += (F - (y <= k)) ** 2
    return out


def interval_dataset(risk: xr.DataArray, lo, hi, p_any, level: float, method: str, extra_attrs=None) -> xr.Dataset:
    """The standard interval Dataset: ``risk`` (the point forecast) plus ``risk_lo``, ``risk_hi``, ``p_any``.

    ``lo``, ``hi`` and ``p_any`` have ``risk``'s shape.
    """
    attrs = dict(risk.attrs)
    attrs.update(interval_level=float(level), interval_method=method)
    attrs.update(extra_attrs or {})
    ds = xr.Dataset(
        {
            "risk": risk,
            "risk_lo": (risk.dims, np.asarray(lo, dtype=np.float64)),
            "risk_hi": (risk.dims, np.asarray(hi, dtype=np.float64)),
            "p_any": (risk.dims, np.asarray(p_any, dtype=np.float64)),
        },
        attrs=attrs,
    )
    ds["risk_lo"].attrs.update(units="events in the forecast window", description=f"{(1 - level) / 2:g} quantile of the count")
    ds["risk_hi"].attrs.update(units="events in the forecast window", description=f"{(1 + level) / 2:g} quantile of the count")
    ds["p_any"].attrs.update(units="1", description="probability of at least one event in the forecast window")
    return ds


def simulation_setup(model, start, horizon_days, n_sims: int, seed, t_history):
    """Checked inputs of a model's ``simulate_forecast``: ``(start day, horizon days, one seed per simulation)``.

    ``start`` defaults to the end of the fit window and may not precede the
    last history event ``t_history`` (days; :class:`~riskgrid.LeakageError`);
    ``numpy.random.default_rng(seed)`` draws the simulations' seeds.
    """
    check_int("n_sims", n_sims, 1)
    check_number("horizon_days", horizon_days, unit="days")
    s = model.fit_end_ if start is None else float(to_days(start))
    if t_history.size and s < float(t_history.max()):
        raise LeakageError(f"simulation start (day {s:g}) is before the last history event "
                           f"(day {float(t_history.max()):g})")
    seeds = np.random.default_rng(seed).integers(0, 2**62, size=int(n_sims), dtype=np.int64)
    return s, float(horizon_days), seeds


def simulated_interval_dataset(risk: xr.DataArray, samples, level: float, n_sims: int, seed=None,
                               zones=None) -> xr.Dataset:
    """The interval Dataset of a model that simulates its future (GridHawkes, SEPP).

    ``risk``: the model's exact mean per cell (categories summed); ``samples``:
    simulated counts per (simulation, cell). ``zones`` (zone of each cell, -1:
    none) adds ``zone_risk``, ``zone_lo``, ``zone_hi`` and ``zone_p_any`` over a
    ``zone`` dimension: the interval of each zone's total count, from the same
    simulations, so the dependence between cells is kept (a sum of cell
    quantiles is not a quantile of the sum).
    """
    _, lo, hi, p_any = sample_interval(samples, level)
    if risk.ndim == 2:
        risk = risk.sum("category", keep_attrs=True)
    ds = interval_dataset(risk, lo, hi, p_any, level, "forward simulation of the fitted branching process",
                          {"n_sims": int(n_sims), "seed": "None" if seed is None else int(seed)})
    if zones is not None:
        _, zlo, zhi, zp = sample_interval(zone_sums(samples, zones), level)
        ds["zone_risk"] = ("zone", zone_sums(risk.values, zones))
        ds["zone_lo"] = ("zone", zlo)
        ds["zone_hi"] = ("zone", zhi)
        ds["zone_p_any"] = ("zone", zp)
    return ds


class SimulatedInterval:
    """``predict_interval`` of a model that simulates its future (GridHawkes, SEPP), written once.

    The model provides ``simulate_forecast(start, horizon_days, n_sims, seed,
    events)`` (per-category counts), ``_simulated_total(samples)`` (the counts
    summed over the forecast categories, per simulation and cell) and
    ``_mean_given_events(risk, start_day, horizon_days, events)`` (``predict``'s
    DataArray ``risk`` with the exact mean per cell given the training events
    plus ``events`` instead).
    """

    def predict_interval(self, start=None, horizon_days: float = 7.0, level: float = 0.9, n_sims: int = 1000,
                         seed=None, zones=None, events=None):
        """Forecast with an interval: per-cell quantiles of the count and ``P(at least one event)``.

        From :meth:`simulate_forecast` (the full branching process; counts
        summed over the forecast categories: all, or the ``target`` of
        :meth:`fit`).

        Parameters
        ----------
        start, horizon_days, n_sims, seed, events
            As :meth:`simulate_forecast`.
        level : float
            Probability of the central interval (e.g. 0.9: the 5 % and 95 % quantiles).
        zones : array of int (n_cells,), optional
            Zone of each cell (-1: none). Adds ``zone_risk``, ``zone_lo``,
            ``zone_hi`` and ``zone_p_any`` over a ``zone`` dimension: the
            interval of the zone's total count (from the same simulations, so
            the dependence between cells is kept).

        Returns
        -------
        xarray.Dataset
            ``risk`` (expected count per cell, the model's exact mean:
            :meth:`predict`, or given ``events``), ``risk_lo``, ``risk_hi``
            (quantiles of the simulated count), ``p_any``.
        """
        self._check_fitted()
        samples = self.simulate_forecast(start, horizon_days, n_sims, seed, events)
        risk = self.predict(start, horizon_days)
        if events is not None:
            risk = self._mean_given_events(risk, self._start_days(start), float(horizon_days), events)
        return simulated_interval_dataset(risk, self._simulated_total(samples), level, n_sims, seed, zones)


def forecast_samples(model, start, horizon_days: float, n_sims: int, seed=None):
    """Simulated counts per (simulation, cell), summed over the forecast categories; ``None`` for models that do not simulate.

    A model simulates when it has a ``simulate_forecast(start, horizon_days,
    n_sims=..., seed=...)`` method (GridHawkes, SEPP); its per-category
    output ``(n_sims, n_categories, n_cells)`` is summed over the target
    categories (``model._target_total_rows()`` when the model has it, else all).

    Returns
    -------
    ndarray (n_sims, n_cells) or None
    """
    sim = getattr(model, "simulate_forecast", None)
    if sim is None:
        return None
    x = sim(start, horizon_days, n_sims=n_sims, seed=seed)
    total = getattr(model, "_simulated_total", None)  # a SimulatedInterval model sums its own categories
    x = np.asarray(x if total is None else total(x), dtype=np.float64)
    if x.ndim == 3:
        rows = model._target_total_rows() if hasattr(model, "_target_total_rows") else slice(None)
        x = x[:, rows, :].sum(axis=1)
    if x.ndim != 2:
        raise ValueError(f"simulate_forecast must give (n_sims, n_cells) or (n_sims, n_categories, n_cells), got {x.shape}")
    return x


def count_calibration(y, mean=None, samples=None, levels=(0.5, 0.9), seed=None) -> dict:
    """Randomized-PIT coverage of the central intervals and the mean CRPS of count forecasts against outcomes.

    Exactly one of ``mean`` (Poisson forecasts with these means) and
    ``samples`` (simulated counts, first axis the simulations) is given.

    Parameters
    ----------
    y : (n,) array
        Observed counts (events per cell in the window).
    mean : (n,) array, optional
        Poisson means (expected events).
    samples : (n_sims, n) array, optional
        Simulated counts; ``F(k)`` is the share of simulations ``<= k``.
    levels : sequence of float
        Interval levels in (0, 1).
    seed : int or SeedSequence, optional
        Seed of the PIT's uniform draw (the same draw for every level, so
        the coverages are nested).

    Returns
    -------
    dict
        ``{level: coverage}`` (share of cells whose randomized PIT lies in
        the central band; ``level`` in expectation when calibrated) and
        ``"crps"``: mean CRPS over the cells (events).
    """
    y = np.asarray(y, dtype=np.float64)
    if (mean is None) == (samples is None):
        raise ValueError("give exactly one of mean (Poisson) and samples (simulated counts)")
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64)
        if mean.shape != y.shape:
            raise ValueError(f"mean must have the shape of y {y.shape}, got {mean.shape}")
        f_below = np.where(y >= 1, stats.poisson.cdf(y - 1, mean), 0.0)
        f_at = stats.poisson.cdf(y, mean)
        crps = crps_poisson(mean, y)
    else:
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 2 or x.shape[1:] != y.shape:
            raise ValueError(f"samples must be (n_sims, {y.size}), got {x.shape}")
        f_below = (x <= (y - 1)[None, :]).mean(axis=0)
        f_at = (x <= y[None, :]).mean(axis=0)
        crps = crps_samples(x, y)
    out = {float(lev): randomized_coverage(y, f_below, f_at, lev, seed=seed) for lev in levels}
    out["crps"] = float(np.mean(crps)) if crps.size else float("nan")
    return out
