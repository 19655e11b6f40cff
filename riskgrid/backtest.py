"""Walk-forward (rolling-origin) backtests of risk models, their summary and plot.

* :func:`backtest` - fit every model at every origin on the past only, score
  the next ``horizon_days`` with the metrics of :mod:`riskgrid.metrics`.
* :func:`summarize` - mean and bootstrap interval of each metric across
  origins, and the paired difference against a reference model.
* :func:`plot_backtest` - hit rate against coverage and PAI over time (PNG).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._runtime import progress_enabled
from .events import EventSet
from .grid import HexGrid
from .metrics import DEFAULT_COVERAGE, _check_coverage, evaluate, poisson_loglik, risk_values
from .zones import zones_metric

__all__ = ["backtest", "summarize", "summary_table", "plot_backtest", "METRICS"]

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
)


def _origins(events: EventSet, start, end, step_days: float) -> np.ndarray:
    """Origins (days): ``start, start + step_days, ...`` strictly before ``end``."""
    t_start, t_end = events.to_days(start), events.to_days(end)
    if not t_end > t_start:
        raise ValueError(f"end ({end!r}) must be after start ({start!r})")
    origins = np.arange(t_start, t_end, float(step_days))
    return origins[origins < t_end]


def _run_origin(models, events, cell, grid, t, horizon_days, train_days, coverage, extra_metrics, on_error="raise"):
    """Fit and score every model at one origin ``t`` (days). Returns a list of row dicts."""
    n_cells = len(grid)
    lo = None if train_days is None else t - train_days
    train = events.between(lo, t)
    i0 = int(np.searchsorted(events.t, t, side="left"))
    i1 = int(np.searchsorted(events.t, t + horizon_days, side="left"))
    c = cell[i0:i1]
    ok = c >= 0
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
        model = clone(proto)
        t0 = time.perf_counter()
        error = ""
        try:
            model.fit(train, grid, end=t)
            t1 = time.perf_counter()
            risk = model.predict(t, horizon_days)
            t2 = time.perf_counter()
            r = risk_values(risk, n_cells)
        except Exception as exc:
            if on_error == "raise":  # add where it happened, keep the type
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(backtest: model {name!r} at origin {origin_ts})")
                raise
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
            log.warning("backtest: model %r failed at origin %s: %s", name, origin_ts, error)
            t1 = t2 = time.perf_counter()
            r = None
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
                "error": error,
            }
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
    n_jobs: int | None = None,
    extra_metrics: Mapping[str, Callable] | None = None,
    progress: bool | None = None,
    on_error: str = "raise",
    zones: Mapping[str, int] | None = DEFAULT_ZONES,
) -> pd.DataFrame:
    """Walk-forward (rolling-origin) backtest of several models.

    For every origin ``t = start, start + step_days, ...`` with ``t < end``,
    each model is cloned (:func:`sklearn.base.clone`: a fresh, unfitted copy
    with the same parameters), fitted on the events in
    ``[t - train_days, t)`` only (the model never receives a later event), and
    asked for the expected counts per cell in ``[t, t + horizon_days)``; the
    forecast is scored against the events of that window.

    No model amortises its refits: every origin is a fresh fit, so origins are
    independent (and can run in parallel with ``n_jobs``). The baselines fit
    in one pass over the events, so warm starts would gain nothing.

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
    n_jobs : int, optional
        Origins run in this many worker processes (joblib/loky; ``-1`` = all
        cores); ``None`` or 1 = serial. The result does not depend on it.
    extra_metrics : dict of str → callable, optional
        ``f(risk_values, observed_counts, grid) -> float`` (arrays of length
        ``n_cells``) evaluated per model and origin; added as a column of
        that name (the same value on every coverage row).
    progress : bool, optional
        Show a tqdm progress bar over origins (default: on, unless the
        environment variable ``RISKGRID_QUIET=1``).
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

    Returns
    -------
    pandas.DataFrame
        One row per model x origin x coverage with the columns ``model``,
        ``origin`` (Timestamp), ``origin_days``, ``coverage``,
        ``n_cells_flagged``, ``area_flagged_km2``, ``hit_rate``, ``pai``,
        ``pei``, ``pei_star``, ``auc``, ``loglik`` (per origin, nats),
        ``n_events`` (observed in the window, in the grid),
        ``n_train_events``, ``fit_seconds``, ``predict_seconds``, ``error``
        (empty unless ``on_error="skip"`` caught a failure) and the
        ``extra_metrics`` columns. Hit-rate metrics are NaN for windows
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
    cov = tuple(float(c) for c in _check_coverage(coverage))
    extra_metrics = dict(extra_metrics or {})
    if zones is not None:
        if "zones" in extra_metrics:
            raise ValueError("extra_metrics may not be named 'zones' while zones= is set (the zones metric uses that column)")
        extra_metrics["zones"] = functools.partial(zones_metric, **dict(zones))
    for k, f in extra_metrics.items():
        if not callable(f):
            raise TypeError(f"extra_metrics[{k!r}] must be callable (risk, observed, grid) -> float")
        if k in METRICS or k in _META or k == "error":
            raise ValueError(f"extra metric name {k!r} clashes with a standard column")
    if categories is not None:
        events = events.select(categories)
    if len(events) == 0:
        raise ValueError("no event left after the category filter")
    origins = _origins(events, start, end, step_days)
    cell = grid.assign(events)
    if progress is None:
        progress = progress_enabled()
    log.info("backtest: %d models x %d origins", len(models), origins.size)

    args = (events, cell, grid)
    if n_jobs is None or n_jobs == 1:
        jobs = (
            _run_origin(models, *args, float(t), float(horizon_days), train_days, cov, extra_metrics, on_error) for t in origins
        )
    else:
        from joblib import Parallel, delayed

        jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_run_origin)(models, *args, float(t), float(horizon_days), train_days, cov, extra_metrics, on_error)
            for t in origins
        )
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, total=origins.size, desc="backtest origins", unit="origin")
    rows = [r for chunk in jobs for r in chunk]
    cols = list(_META[:6]) + list(METRICS) + list(_META[6:]) + ["error"] + list(extra_metrics)
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
        "n_cells": len(grid),
        "h3_resolution": grid.resolution,
    }
    return df


# --------------------------------------------------------------------------- #
def _boot_means(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return x[idx].mean(axis=1)


def summarize(
    df: pd.DataFrame,
    reference: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean and bootstrap interval of each metric across origins, per model and coverage.

    Origins are resampled with replacement (percentile bootstrap, ``n_boot``
    resamples); origins where a metric is NaN (no event in the window) are
    left out of that metric. The paired difference ``model - reference`` is
    computed per origin on the origins both have, then bootstrapped the same
    way.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`backtest`.
    reference : str, optional
        Model to compare with (default: the first model of ``df``).
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling (the same resampled origin sets are used for
        every model and metric with the same number of origins).
    metrics : list of str, optional
        Columns to summarise (default: :data:`METRICS` plus any extra metric
        columns of ``df``).
    level : float
        Interval coverage (0.95 = 2.5 % and 97.5 % percentiles).

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per ``model`` x ``coverage`` x ``metric`` with
        ``n_origins``, ``mean``, ``lo``, ``hi``, ``reference``, ``diff``
        (mean paired difference), ``diff_lo``, ``diff_hi`` and
        ``n_paired`` (NaN differences for the reference itself).
    """
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError("summarize needs a non-empty backtest DataFrame")
    need = {"model", "origin", "coverage"}
    if not need <= set(df.columns):
        raise ValueError(f"df lacks column(s) {sorted(need - set(df.columns))}; pass the output of backtest()")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1):
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    model_names = list(dict.fromkeys(df["model"]))
    if reference is None:
        reference = model_names[0]
    if reference not in model_names:
        raise ValueError(f"reference model {reference!r} not in the table; models: {model_names}")
    if metrics is None:
        known = set(METRICS) | set(_META)
        extra = [c for c in df.columns if c not in known and c != "error" and pd.api.types.is_numeric_dtype(df[c])]
        metrics = [m for m in METRICS if m in df.columns] + extra
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metric column(s) {missing} not in the table")
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    idx_cache: dict[int, np.ndarray] = {}

    def boot(x: np.ndarray):
        x = x[~np.isnan(x)]
        n = x.size
        if n == 0:
            return 0, np.nan, np.nan, np.nan
        if n not in idx_cache:
            idx_cache[n] = np.random.default_rng([seed, n]).integers(0, n, size=(n_boot, n))
        b = _boot_means(x, idx_cache[n])
        lo, hi = np.percentile(b, q)
        return n, float(x.mean()), float(lo), float(hi)

    ref = df[df["model"] == reference].set_index(["coverage", "origin"])
    out = []
    for (name, cov), g in df.groupby(["model", "coverage"], sort=False):
        g = g.set_index("origin")
        if g.index.has_duplicates:
            raise ValueError(f"model {name!r}, coverage {cov}: duplicated origins in the table")
        r = ref.loc[cov] if cov in ref.index.get_level_values(0) else None
        for m in metrics:
            n, mean, lo, hi = boot(g[m].to_numpy(dtype=float))
            row = {"model": name, "coverage": cov, "metric": m, "n_origins": n, "mean": mean, "lo": lo, "hi": hi,
                   "reference": reference}
            if name != reference and r is not None:
                both = pd.merge(g[[m]], r[[m]], left_index=True, right_index=True, how="inner", suffixes=("", "_ref"))
                d = (both[m] - both[f"{m}_ref"]).to_numpy(dtype=float)
                n_p, dm, dlo, dhi = boot(d)
                row.update(diff=dm, diff_lo=dlo, diff_hi=dhi, n_paired=n_p)
            else:
                row.update(diff=np.nan, diff_lo=np.nan, diff_hi=np.nan, n_paired=0)
            out.append(row)
    res = pd.DataFrame(out)
    res.attrs["summary"] = {"n_boot": int(n_boot), "seed": int(seed), "level": float(level), "reference": reference}
    return res


def summary_table(
    summary: pd.DataFrame,
    metrics: Sequence[str] = ("hit_rate", "pai", "pei_star", "auc", "loglik"),
    coverage: float | None = None,
    digits: int = 3,
) -> pd.DataFrame:
    """Readable wide table of a :func:`summarize` result: ``mean [lo, hi]`` per metric.

    One row per model (and coverage, unless ``coverage`` picks one); for
    models other than the reference a ``<metric> Δ`` column shows the paired
    difference ``diff [diff_lo, diff_hi]``. Strings, for printing.
    """
    s = summary[summary["metric"].isin(metrics)]
    if coverage is not None:
        s = s[np.isclose(s["coverage"], coverage)]
        if s.empty:
            raise ValueError(f"coverage {coverage} not in the summary")

    def fmt(m, lo, hi):
        if not np.isfinite(m):
            return "-"
        return f"{m:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"

    rows = {}
    for _, r in s.iterrows():
        key = (r["model"], r["coverage"])
        row = rows.setdefault(key, {"model": r["model"], "coverage": r["coverage"]})
        row[r["metric"]] = fmt(r["mean"], r["lo"], r["hi"])
        row[f"{r['metric']} Δ"] = fmt(r["diff"], r["diff_lo"], r["diff_hi"])
    out = pd.DataFrame(list(rows.values()))
    cols = ["model", "coverage"] + [c for m in metrics for c in (m, f"{m} Δ") if c in out.columns]
    out = out[cols]
    if coverage is not None:
        out = out.drop(columns="coverage")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- #
def plot_backtest(df: pd.DataFrame, path, coverage_over_time: float | None = None, title: str | None = None):
    """Save a PNG: hit rate against coverage (left) and PAI over time (right), per model.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`backtest`.
    path : str or path-like
        Where the PNG is written (folders are created).
    coverage_over_time : float, optional
        Coverage whose PAI is drawn over time (default: the one closest to 5 %).
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError("plot_backtest needs a non-empty backtest DataFrame")
    covs = np.sort(df["coverage"].unique())
    if coverage_over_time is None:
        coverage_over_time = float(covs[np.argmin(np.abs(covs - 0.05))])
    elif not np.isclose(covs, coverage_over_time).any():
        raise ValueError(f"coverage_over_time={coverage_over_time} is not in the table's coverages {covs.tolist()}")
    fig = Figure(figsize=(12, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for name in dict.fromkeys(df["model"]):
        g = df[df["model"] == name]
        curve = g.groupby("coverage")["hit_rate"].agg(["mean", lambda s: s.quantile(0.25), lambda s: s.quantile(0.75)])
        curve.columns = ["mean", "q25", "q75"]
        x = curve.index.to_numpy() * 100
        line = ax1.plot(x, curve["mean"] * 100, marker="o", label=name)[0]
        ax1.fill_between(x, curve["q25"] * 100, curve["q75"] * 100, color=line.get_color(), alpha=0.15, linewidth=0)
        ts = g[np.isclose(g["coverage"], coverage_over_time)].sort_values("origin")
        ax2.plot(pd.to_datetime(ts["origin"]), ts["pai"], marker=".", label=name, color=line.get_color())
    ax1.set_xlabel("coverage (% of grid cells flagged)")
    ax1.set_ylabel("hit rate (% of events in flagged cells)")
    ax1.set_title("Hit rate vs coverage (mean; band: IQR across origins)")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("forecast origin (date)")
    ax2.set_ylabel(f"PAI at {coverage_over_time:.0%} coverage (hit rate / area share)")
    ax2.set_title("PAI over time")
    ax2.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax2.grid(alpha=0.3)
    for lab in ax2.get_xticklabels():
        lab.set_rotation(30)
        lab.set_horizontalalignment("right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
