"""Walk-forward (rolling-origin) backtests of risk models.

:func:`backtest` fits every model at every origin on the past only and scores
the next ``horizon_days`` with the metrics of :mod:`riskgrid.metrics`;
:func:`backtest_origins` gives its origins. Summaries and plots of the table
are in :mod:`riskgrid.evaluation.summary`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from .._runtime import progress_enabled
from ..events import EventSet
from ..grid import HexGrid
from ..models._base import COUNT_UNITS, match_horizon, split_target
from ..models.uncertainty import count_calibration, forecast_samples
from ..metrics import DEFAULT_COVERAGE, check_coverage, evaluate, poisson_loglik, risk_values
from ..zones import zones_metric

__all__ = ["backtest", "backtest_origins", "METRICS", "META_COLUMNS", "DEFAULT_ZONES", "DEFAULT_INTERVAL_LEVELS",
           "interval_columns", "origin_seeds"]

log = logging.getLogger(__name__)

#: default patrol-zone settings of the ``zones`` metric (see :func:`riskgrid.select_zones`)
DEFAULT_ZONES = {"n_zones": 4, "max_cells": 7, "min_gap_rings": 1}

#: metric columns of a backtest table (summarised by :func:`summarize` by default)
METRICS = ("hit_rate", "pai", "pei", "pei_star", "auc", "loglik")
_META = (
    "model",
    "origin",
    "origin_days",
    "coverage",
    "n_cells_flagged",
    "area_flagged_km2",
    "n_events",
    "n_train_events",
    "fit_seconds",
    "predict_seconds",
    "interval_seconds",
)
#: the non-metric columns of a backtest table (besides ``error``, ``warnings`` and extra metrics)
META_COLUMNS = _META
#: longest text kept in the ``error`` and ``warnings`` columns (characters)
_TEXT_LIMIT = 500


@contextlib.contextmanager
def _recording_warnings():
    """Record the warnings of the block into the list it yields - in a process's main thread only.

    Python's warning capture is process-wide state, not thread-safe: in a
    thread (a Dask worker's task) the block's warnings pass through as usual
    and the list stays empty.
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _warning_text(caught) -> str:
    """The distinct warnings of one model at one origin, ``"Category: message"`` joined by ``" | "``."""
    texts = dict.fromkeys(f"{w.category.__name__}: {' '.join(str(w.message).split())}" for w in caught)
    return " | ".join(texts)[:_TEXT_LIMIT]


def _report_warnings(df: pd.DataFrame) -> None:
    """One warning per model that warned: at how many origins, and the first origin's warnings.

    The per-origin warnings were recorded in the ``warnings`` column instead of
    being shown once per origin (a 181-origin backtest of a model that warns
    at every fit printed 181 near-identical messages).
    """
    first = df.drop_duplicates(["model", "origin"])
    for name, g in first.groupby("model", sort=False):
        warned = g[g["warnings"] != ""]
        if len(warned):
            warnings.warn(
                f"backtest: model {name!r} warned at {len(warned)} of {len(g)} origins (each origin's warnings are in "
                f"the table's 'warnings' column); first, at {warned['origin'].iloc[0]}: {warned['warnings'].iloc[0]}",
                RuntimeWarning,
                stacklevel=3,
            )


#: interval levels whose calibration a backtest reports by default (``interval_coverage_50``, ``interval_coverage_90``)
DEFAULT_INTERVAL_LEVELS = (0.5, 0.9)


def interval_columns(levels) -> list[str]:
    """Column names of the interval calibration of ``levels``: ``interval_coverage_<percent>`` each, then ``crps``."""
    return [f"interval_coverage_{100 * float(lev):g}".replace(".", "_") for lev in levels] + ["crps"]


def origin_seeds(seed: int, t: float) -> tuple[int, np.random.SeedSequence]:
    """The seeds of one origin ``t`` (days): of the forward simulation (an int) and of the randomized PIT.

    Derived from ``seed`` and the origin's time alone, so an origin's numbers do
    not depend on the other origins, their order or the number of workers;
    every model gets the same draws at an origin (paired comparisons).
    """
    key = int(np.float64(t).view(np.uint64))
    sim = int(np.random.SeedSequence([int(seed), key, 0]).generate_state(1, np.uint64)[0] >> np.uint64(2))
    return sim, np.random.SeedSequence([int(seed), key, 1])


def _calibration(model, risk, r, observed, t, horizon_days, calibration) -> dict:
    """Interval coverage per level and mean CRPS of one forecast (NaN for models forecasting a score)."""
    levels, n_sims, seed = calibration
    cols = interval_columns(levels)
    if str(risk.attrs.get("units", COUNT_UNITS)) != COUNT_UNITS:
        return dict.fromkeys(cols, np.nan) | {"interval_method": ""}
    sim_seed, pit_seed = origin_seeds(seed, t)
    samples = forecast_samples(model, t, horizon_days, n_sims, sim_seed)
    if samples is None:
        cal, method = count_calibration(observed, mean=r, levels=levels, seed=pit_seed), "poisson"
    else:
        cal, method = count_calibration(observed, samples=samples, levels=levels, seed=pit_seed), "simulation"
    out = {c: cal[float(lev)] for c, lev in zip(cols, levels)}
    out["crps"] = cal["crps"]
    out["interval_method"] = method
    return out


def backtest_origins(events: EventSet, start, end, step_days: float) -> np.ndarray:
    """Origins (days): ``start, start + step_days, ...`` strictly before ``end``."""
    t_start, t_end = events.to_days(start), events.to_days(end)
    if not t_end > t_start:
        raise ValueError(f"end ({end!r}) must be after start ({start!r})")
    origins = np.arange(t_start, t_end, float(step_days))
    return origins[origins < t_end]


def _warm(model) -> bool:
    """Whether a model asks to be refitted in place across origins (scikit-learn ``warm_start``)."""
    return bool(model.get_params(deep=False).get("warm_start", False)) if hasattr(model, "get_params") else False


def _run_origin(models, events, cell, grid, t, horizon_days, train_days, coverage, extra_metrics, on_error="raise",
                target=None, calibration=None):
    """Fit and score every model at one origin ``t`` (days). Returns a list of row dicts.

    ``target`` (category labels, ``None`` = all) is passed to every model's
    ``fit``; only target events are counted as observed. ``calibration``:
    ``(levels, n_sims, seed)`` of the interval columns, or ``None``.
    """
    n_cells = len(grid)
    lo = None if train_days is None else t - train_days
    train = events.between(lo, t)
    i0 = int(np.searchsorted(events.t, t, side="left"))
    i1 = int(np.searchsorted(events.t, t + horizon_days, side="left"))
    c = cell[i0:i1]
    ok = c >= 0
    if target is not None:
        ok &= np.isin(events.codes[i0:i1], [events.categories.index(k) for k in target])
    observed = np.bincount(c[ok], weights=events.weight[i0:i1][ok], minlength=n_cells).astype(float)
    origin_ts = events.to_timestamp(t)
    if len(train) == 0:
        raise ValueError(
            f"no training event before origin {origin_ts} (window "
            f"{'start of data' if lo is None else events.to_timestamp(lo)} → {origin_ts}); start the backtest later"
        )
    area = grid.area_m2
    rows = []
    for name, proto in models.items():
        # a warm-starting model is the caller's live instance (kept across origins), others a fresh clone
        model = proto if _warm(proto) else match_horizon(clone(proto), horizon_days)
        t0 = time.perf_counter()
        error = ""
        try:
            with _recording_warnings() as caught:
                model.fit(train, grid, end=t, target=target)
                t1 = time.perf_counter()
                risk = model.predict(t, horizon_days)
                t2 = time.perf_counter()
                r = risk_values(risk, n_cells)
                cal = _calibration(model, risk, r, observed, t, horizon_days, calibration) if calibration else {}
                t3 = time.perf_counter()
        except Exception as exc:
            if on_error == "raise":  # add where it happened, keep the type
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(backtest: model {name!r} at origin {origin_ts})")
                raise
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:_TEXT_LIMIT]
            log.warning("backtest: model %r failed at origin %s: %s", name, origin_ts, error)
            t1 = t2 = t3 = time.perf_counter()
            r = None
            cal = dict.fromkeys(interval_columns(calibration[0]), np.nan) | {"interval_method": ""} if calibration else {}
        if r is None:
            m = evaluate(np.zeros(n_cells), observed, area, coverage)
            for key in ("hits", "area_flagged_m2", "hit_rate", "pai", "pei", "pei_star", "auc"):
                m[key] = np.full(len(coverage), np.nan)
            ll = np.nan
            extras = {k: np.nan for k in (extra_metrics or {})}
        else:
            m = evaluate(r, observed, area, coverage)
            ll = poisson_loglik(r, observed)
            extras = {k: float(f(r, observed, grid)) for k, f in (extra_metrics or {}).items()}
        for j, cov in enumerate(m["coverage"]):
            row = {
                "model": name,
                "origin": origin_ts,
                "origin_days": t,
                "coverage": float(cov),
                "n_cells_flagged": int(m["n_cells_flagged"][j]),
                "area_flagged_km2": float(m["area_flagged_m2"][j]) / 1e6,
                "hit_rate": m["hit_rate"][j],
                "pai": m["pai"][j],
                "pei": m["pei"][j],
                "pei_star": m["pei_star"][j],
                "auc": m["auc"][j],
                "loglik": ll,
                "n_events": float(m["n_events"]),
                "n_train_events": len(train),
                "fit_seconds": t1 - t0,
                "predict_seconds": t2 - t1,
                "interval_seconds": t3 - t2,
                "error": error,
                "warnings": _warning_text(caught),
            }
            row.update(cal)
            row.update(extras)
            rows.append(row)
    return rows


def backtest(
    models: Mapping[str, object],
    events: EventSet,
    grid: HexGrid,
    start,
    end,
    step_days: float = 7,
    horizon_days: float = 7,
    train_days: float | None = None,
    coverage: Sequence[float] = DEFAULT_COVERAGE,
    categories: Sequence[str] | str | None = None,
    target: Sequence[str] | str | None = None,
    indicators: Sequence[str] | str | None = None,
    n_jobs: int | None = None,
    extra_metrics: Mapping[str, Callable] | None = None,
    progress: bool | None = None,
    on_error: str = "raise",
    zones: Mapping[str, int] | None = DEFAULT_ZONES,
    interval_levels: Sequence[float] | None = DEFAULT_INTERVAL_LEVELS,
    n_sims: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Walk-forward (rolling-origin) backtest of several models.

    For every origin ``t = start, start + step_days, ...`` with ``t < end``,
    each model is cloned (:func:`sklearn.base.clone`: a fresh, unfitted copy
    with the same parameters), fitted on the events in
    ``[t - train_days, t)`` only (the model never receives a later event), and
    asked for the expected counts per cell in ``[t, t + horizon_days)``; the
    forecast is scored against the events of that window.

    Amortised refits: a model with ``warm_start=True`` (GridHawkes: EM from
    the previous origin's parameters; FeatureForecaster with
    ``refit_every_days``: the estimator learned at the last point of its
    fixed refit schedule) is not cloned per origin in a serial run: one live
    copy is refitted at each origin in time order. Each such model documents
    why its result equals a cold fit (exactly, or within its EM tolerance);
    with ``n_jobs > 1`` every origin is a cold fit. The baselines fit in one
    pass over the events, so warm starts would gain nothing.

    ``horizon_days``: a model whose own ``horizon_days`` parameter is
    ``None`` (FeatureForecaster, WalkForwardSearch) is given the backtest's.

    Parameters
    ----------
    models : dict of str → model
        Unfitted models (anything with scikit-learn ``get_params`` and the
        riskgrid ``fit(events, grid, end=...)`` / ``predict(start,
        horizon_days)`` interface); parameter variants are separate entries.
    events : EventSet
        All events (training and test).
    grid : HexGrid
        Study area; events outside it are neither trained on nor counted.
    start, end : timestamp-like or float days
        First origin, and the end of the origins (exclusive).
    step_days, horizon_days : float
        Days between origins, and length of each forecast window (days).
    train_days : float, optional
        Length of the training window (days); ``None`` = all events before ``t``.
    coverage : sequence of float
        Fractions of the grid's cells to flag (see :mod:`riskgrid.metrics` for
        the number of cells, ties and every metric's definition).
    categories : str or list of str, optional
        Keep only these event categories (for training and scoring). A model
        that forecasts per category is scored on the sum over categories.
    target, indicators : str or list of str, optional
        Target categories (forecast and scored: only their events count as
        observed) and indicator categories (passed to the models that use
        them, never scored). Default: every category (after ``categories``)
        is a target, no indicators. With ``target`` set, the events are cut
        to ``target + indicators``.
    n_jobs : int, optional
        Origins run in this many worker processes (joblib/loky; ``-1`` = all
        cores); ``None`` or 1 = serial. The result does not depend on it.
    extra_metrics : dict of str → callable, optional
        ``f(risk_values, observed_counts, grid) -> float`` (arrays of length
        ``n_cells``) evaluated per model and origin; added as a column of
        that name (the same value on every coverage row).
    progress : bool, optional
        Show a tqdm progress bar over origins (default: off; the CLI turns it
        on, as does the environment variable ``RISKGRID_PROGRESS=1``).
    zones : dict, optional
        Patrol-zone settings (``n_zones``, ``max_cells``, ``min_gap_rings``,
        see :func:`riskgrid.select_zones`); adds the column ``zones``: the
        share of the window's events inside the zones chosen from each
        forecast (same value on every coverage row). ``None`` leaves it out.
        Default: 4 zones of at most 7 cells, 1 ring apart.
    on_error : {"raise", "skip"}
        ``"raise"``: a model failing at an origin stops the backtest (the
        exception gets a note naming the model and origin). ``"skip"``: its
        rows for that origin get NaN metrics and the message in ``error``
        (logged as a warning); the other models and origins go on.
    interval_levels : sequence of float, optional
        Calibration of the forecast's count distribution per cell (the one of
        :meth:`~riskgrid.models.RiskModel.predict_interval`: Poisson with the
        forecast as mean for the baselines and FeatureForecaster, the forward
        simulation for models with ``simulate_forecast``, e.g. GridHawkes):
        per level a column ``interval_coverage_<percent>`` (default 50 and
        90): the share of the grid's cells whose observed count falls in the
        central interval by the randomized probability integral transform
        (Czado, Gneiting & Held 2009; ``level`` in expectation for a
        calibrated forecast, exactly, even for discrete counts), and ``crps``:
        the continuous ranked probability score of the count averaged over
        the cells (events; lower is better; exact for Poisson, from the
        samples for simulated forecasts). ``interval_method`` says which.
        NaN for models forecasting a score (NearRepeat). ``None``: no
        columns.
    n_sims : int
        Simulated futures per origin for simulating models (cost: one
        forward simulation of ``n_sims`` futures per origin and model; 100
        keeps the test suite fast, CRPS from ``n`` samples is biased upward
        by ``E|X - X'| / (2 n)``).
    seed : int
        Base seed of the simulations and of the randomized PIT; each origin
        gets its own seeds from it and its time (:func:`origin_seeds`), so
        results do not depend on ``n_jobs``.

    Returns
    -------
    pandas.DataFrame
        One row per model x origin x coverage with the columns ``model``,
        ``origin`` (Timestamp), ``origin_days``, ``coverage``,
        ``n_cells_flagged``, ``area_flagged_km2``, ``hit_rate``, ``pai``,
        ``pei``, ``pei_star``, ``auc``, ``loglik`` (per origin, nats),
        ``n_events`` (observed in the window, in the grid),
        ``n_train_events``, ``fit_seconds``, ``predict_seconds``,
        ``interval_seconds``, ``error``
        (empty unless ``on_error="skip"`` caught a failure), ``warnings``
        (the distinct warnings the model raised while fitting and forecasting
        at that origin, ``"Category: message"`` joined by ``" | "``; empty if
        none: they are recorded here instead of shown at every origin, and
        one warning per model that warned says at how many origins; in a
        thread other than the main one, e.g. a Dask worker's task, they are
        shown as usual and not recorded) and the
        ``extra_metrics`` columns, then the interval columns
        (``interval_coverage_50``, ``interval_coverage_90``, ``crps``,
        ``interval_method``). Hit-rate metrics are NaN for windows
        without an event. ``df.attrs["backtest"]`` records the settings.

    Examples
    --------
    >>> df = rg.backtest({"count": make_model("CountHotspot"), "kde": make_model("KDEHotspot")},
    ...                  events, grid, "2017-01-01", "2018-01-01", train_days=365)  # doctest: +SKIP
    >>> rg.summarize(df, reference="count")  # doctest: +SKIP
    """
    if not isinstance(models, Mapping) or not models:
        raise TypeError("models must be a non-empty dict of name -> unfitted model")
    for name, m in models.items():
        if not isinstance(name, str):
            raise TypeError(f"model names must be strings, got {name!r}")
        for attr in ("fit", "predict", "get_params"):
            if not hasattr(m, attr):
                raise TypeError(f"models[{name!r}] ({type(m).__name__}) has no {attr}(); expected a riskgrid model")
    if not isinstance(events, EventSet):
        raise TypeError(f"events must be an EventSet, got {type(events).__name__}")
    if not isinstance(grid, HexGrid):
        raise TypeError(f"grid must be a HexGrid, got {type(grid).__name__}")
    if not step_days > 0:
        raise ValueError(f"step_days must be > 0, got {step_days}")
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    if train_days is not None and not train_days > 0:
        raise ValueError(f"train_days must be > 0 or None, got {train_days}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    cov = tuple(float(c) for c in check_coverage(coverage))
    calibration = None
    if interval_levels is not None:
        levels = tuple(float(v) for v in np.atleast_1d(interval_levels))
        if not levels or not all(0 < v < 1 for v in levels) or len(set(levels)) != len(levels):
            raise ValueError(f"interval_levels must be distinct numbers in (0, 1), got {interval_levels!r}")
        if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 1:
            raise ValueError(f"n_sims must be an integer >= 1, got {n_sims!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        calibration = (levels, int(n_sims), int(seed))
    extra_metrics = dict(extra_metrics or {})
    if zones is not None:
        if "zones" in extra_metrics:
            raise ValueError("extra_metrics may not be named 'zones' while zones= is set (the zones metric uses that column)")
        extra_metrics["zones"] = functools.partial(zones_metric, **dict(zones))
    for k, f in extra_metrics.items():
        if not callable(f):
            raise TypeError(f"extra_metrics[{k!r}] must be callable (risk, observed, grid) -> float")
        if k in METRICS or k in _META or k in ("error", "warnings") or (
                calibration and k in interval_columns(calibration[0])):
            raise ValueError(f"extra metric name {k!r} clashes with a standard column")
    if categories is not None:
        events = events.select(categories)
    target, indicators = split_target(events.categories, target, indicators)
    if target is not None:
        events = events.select(list(target) + list(indicators))
    if len(events) == 0:
        raise ValueError("no event left after the category filter")
    origins = backtest_origins(events, start, end, step_days)
    cell = grid.assign(events)
    if progress is None:
        progress = progress_enabled()
    log.info("backtest: %d models x %d origins", len(models), origins.size)

    args = (events, cell, grid)
    if n_jobs is None or n_jobs == 1:
        # models with warm_start=True keep one live copy across the (time-ordered) origins; they
        # must give the result of a cold fit (each model's warm_start documents how it does)
        models = {k: match_horizon(clone(m), horizon_days) if _warm(m) else m for k, m in models.items()}
        jobs = (
            _run_origin(models, *args, float(t), float(horizon_days), train_days, cov, extra_metrics, on_error, target,
                        calibration)
            for t in origins
        )
    else:
        from joblib import Parallel, delayed

        models = {k: m.set_params(warm_start=False) if _warm(m) else m for k, m in
                  ((k, clone(m)) for k, m in models.items())}  # origins in other processes: cold fits
        jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_run_origin)(models, *args, float(t), float(horizon_days), train_days, cov, extra_metrics, on_error,
                                 target, calibration)
            for t in origins
        )
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, total=origins.size, desc="backtest origins", unit="origin")
    rows = [r for chunk in jobs for r in chunk]
    cols = list(_META[:6]) + list(METRICS) + list(_META[6:]) + ["error", "warnings"] + list(extra_metrics)
    if calibration:
        cols += interval_columns(calibration[0]) + ["interval_method"]
    df = pd.DataFrame(rows, columns=cols)
    df["model"] = df["model"].astype(str)
    df.attrs["backtest"] = {
        "models": {k: f"{type(m).__name__}({m.get_params()})" for k, m in models.items()},
        "start_days": float(events.to_days(start)),
        "end_days": float(events.to_days(end)),
        "step_days": float(step_days),
        "horizon_days": float(horizon_days),
        "train_days": None if train_days is None else float(train_days),
        "coverage": list(cov),
        "categories": None if categories is None else list(np.atleast_1d(categories)),
        "target": None if target is None else list(target),
        "indicators": list(indicators),
        "n_cells": len(grid),
        "h3_resolution": grid.resolution,
        "interval_levels": None if calibration is None else list(calibration[0]),
        "n_sims": None if calibration is None else calibration[1],
        "seed": None if calibration is None else calibration[2],
    }
    _report_warnings(df)
    return df


