"""Summaries of a backtest table: bootstrap intervals, paired differences, a printable table and the plot.

* :func:`summarize` - mean and bootstrap interval of each metric across
  origins, and the paired difference against a reference model.
* :func:`summary_table` - the readable wide table the CLI prints.
* :func:`plot_backtest` - hit rate against coverage and PAI over time (PNG).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .walk_forward import META_COLUMNS, METRICS

__all__ = ["summarize", "summary_table", "plot_backtest"]


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
        known = set(METRICS) | set(META_COLUMNS)
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
