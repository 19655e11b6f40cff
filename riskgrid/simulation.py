"""Simulate a space-time self-exciting (Hawkes / ETAS-type) process with known parameters."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .geo import LocalProjection
from .kernels.simulate import simulate_offspring

__all__ = ["simulate"]


def simulate(
    n_days: float = 365.0,
    background_rate: float = 20.0,
    theta: float = 0.3,
    omega: float = 0.2,
    sigma_m: float = 100.0,
    extent_m: float = 10_000.0,
    n_hotspots: int = 6,
    hotspot_sd_m: float = 600.0,
    uniform_fraction: float = 0.3,
    center: tuple[float, float] = (41.85, -87.65),
    start: str | pd.Timestamp = "2024-01-01",
    categories: Sequence[str] | None = None,
    category_probs: Sequence[float] | None = None,
    cross_excitation: np.ndarray | None = None,
    day_of_week_profile: Sequence[float] | None = None,
    month_profile: Sequence[float] | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Simulate a self-exciting point process by its branching structure.

    Background ("immigrant") events arrive as a homogeneous Poisson process in
    time at ``background_rate`` events/day, placed in space by a mixture of a
    uniform square of side ``extent_m`` metres (weight ``uniform_fraction``)
    and ``n_hotspots`` isotropic Gaussian hotspots (sd ``hotspot_sd_m`` metres)
    with centres drawn uniformly in the central 80 % of the square. Every event
    has Poisson(``theta``) children, each delayed by Exponential(``omega``
    per day, mean ``1/omega`` days) and displaced by an isotropic Gaussian of
    sd ``sigma_m`` metres; children have children in turn. Events after
    ``n_days`` are cut off. Positions are converted to lat/lon with a local
    azimuthal equidistant projection centred on ``center`` (lat, lon).

    Parameters
    ----------
    categories : sequence of str, optional
        Event type labels (default one type, ``"A"``). Background events draw
        their type from ``category_probs`` (default equal).
    cross_excitation : (K, K) array, optional
        ``cross_excitation[a, b]`` = mean number of type-``b`` children of a
        type-``a`` event. Defaults to ``theta`` on the diagonal only.
    day_of_week_profile : sequence of 7 floats, optional
        Multipliers of the background rate by day of the week (Monday first):
        on a day ``d`` of month ``m`` (wall clock of ``start``) background
        events arrive at ``background_rate × day_of_week_profile[d] ×
        month_profile[m]`` events/day (thinning of a homogeneous process).
        ``None``: all ones. Offspring are not modulated.
    month_profile : sequence of 12 floats, optional
        Multipliers of the background rate by calendar month (January first);
        ``None``: all ones.
    seed : int, optional
        Makes the simulation reproducible.

    Returns
    -------
    pandas.DataFrame
        Sorted by time, with ``event_id``, ``timestamp``, ``lat``, ``lon``,
        ``category``, ``t_days`` (days since ``start``), ``x_m``, ``y_m``
        (metres), ``generation`` (0 = background) and ``parent`` (row position
        of the parent in this frame, -1 for background). ``df.attrs["simulation"]``
        holds the parameters.
    """
    if n_days <= 0 or background_rate <= 0:
        raise ValueError("n_days and background_rate must be positive")
    if omega <= 0 or sigma_m < 0:
        raise ValueError("omega must be > 0 (per day) and sigma_m >= 0 (metres)")
    if not 0 <= uniform_fraction <= 1:
        raise ValueError("uniform_fraction must be in [0, 1]")
    categories = list(categories) if categories is not None else ["A"]
    K = len(categories)
    if cross_excitation is None:
        if not 0 <= theta < 1:
            raise ValueError(f"theta must be in [0, 1) for a stable process, got {theta}")
        cross = np.eye(K) * theta
    else:
        cross = np.asarray(cross_excitation, dtype=float)
        if cross.shape != (K, K):
            raise ValueError(f"cross_excitation must be {K}x{K}, got shape {cross.shape}")
        if (cross < 0).any():
            raise ValueError("cross_excitation must be non-negative")
        if np.max(np.abs(np.linalg.eigvals(cross))) >= 1:
            raise ValueError("the spectral radius of cross_excitation must be < 1 for a stable process")
    probs = np.full(K, 1.0 / K) if category_probs is None else np.asarray(category_probs, float)
    if probs.shape != (K,) or (probs < 0).any() or not np.isclose(probs.sum(), 1):
        raise ValueError("category_probs must be K non-negative numbers summing to 1")

    dow_p = _profile(day_of_week_profile, 7, "day_of_week_profile")
    month_p = _profile(month_profile, 12, "month_profile")
    start_ts = pd.Timestamp(start)
    rng = np.random.default_rng(seed)
    modulated = day_of_week_profile is not None or month_profile is not None
    peak = float(dow_p.max() * month_p.max())
    n_bg = rng.poisson(background_rate * peak * n_days)
    t0 = np.sort(rng.uniform(0, n_days, n_bg))
    if modulated:
        # thinning: keep a point at time t with probability rate(t) / peak rate
        day = (start_ts + pd.to_timedelta(t0, unit="D")).normalize()
        keep_p = dow_p[day.day_of_week.to_numpy()] * month_p[day.month.to_numpy() - 1] / peak
        t0 = t0[rng.random(n_bg) < keep_p]
        n_bg = t0.size
    half = extent_m / 2
    hot = rng.uniform(-0.4 * extent_m, 0.4 * extent_m, size=(max(n_hotspots, 1), 2))
    is_uniform = rng.random(n_bg) < (uniform_fraction if n_hotspots > 0 else 1.0)
    which = rng.integers(0, max(n_hotspots, 1), n_bg)
    x0 = np.where(is_uniform, rng.uniform(-half, half, n_bg), hot[which, 0] + rng.normal(0, hotspot_sd_m, n_bg))
    y0 = np.where(is_uniform, rng.uniform(-half, half, n_bg), hot[which, 1] + rng.normal(0, hotspot_sd_m, n_bg))
    k0 = rng.choice(K, size=n_bg, p=probs).astype(np.int64)
    kseed = int(rng.integers(0, 2**31 - 1))
    t, x, y, k, gen, parent = simulate_offspring(
        t0, x0, y0, k0, np.ascontiguousarray(cross), float(omega), float(sigma_m), float(n_days), kseed
    )
    order = np.argsort(t, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    parent_sorted = parent[order]
    parent_sorted = np.where(parent_sorted >= 0, rank[np.maximum(parent_sorted, 0)], -1)
    proj = LocalProjection(float(center[0]), float(center[1]))
    lat, lon = proj.inverse(x[order], y[order])
    ts = start_ts + pd.to_timedelta(t[order], unit="D")
    df = pd.DataFrame(
        {
            "event_id": [f"sim-{i:07d}" for i in range(order.size)],
            "timestamp": ts.round("us"),
            "lat": lat,
            "lon": lon,
            "category": np.asarray(categories, dtype=object)[k[order]],
            "t_days": t[order],
            "x_m": x[order],
            "y_m": y[order],
            "generation": gen[order],
            "parent": parent_sorted,
        }
    )
    df.attrs["simulation"] = {
        "n_days": n_days,
        "background_rate_per_day": background_rate,
        "theta": theta,
        "cross_excitation": cross.tolist(),
        "omega_per_day": omega,
        "sigma_m": sigma_m,
        "extent_m": extent_m,
        "center": list(center),
        "start": str(start_ts),
        "categories": categories,
        "hotspots_xy_m": hot.tolist(),
        "day_of_week_profile": dow_p.tolist(),
        "month_profile": month_p.tolist(),
        "seed": seed,
    }
    return df


def _profile(value, n: int, name: str) -> np.ndarray:
    """``n`` non-negative finite multipliers (all ones for ``None``), not all zero."""
    if value is None:
        return np.ones(n)
    p = np.asarray(value, dtype=float)
    if p.shape != (n,) or not np.all(np.isfinite(p)) or (p < 0).any() or not (p > 0).any():
        raise ValueError(f"{name} must be {n} non-negative finite numbers, not all zero; got {value!r}")
    return p
