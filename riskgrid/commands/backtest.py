"""``riskgrid backtest CONFIG.toml``: walk-forward backtest of model variants from a TOML file.

The file uses the shared ``[events]`` and ``[grid]`` sections of
:mod:`riskgrid.config`, plus::

    city = "chicago"

    [backtest]
    start = "2017-01-01"          # first forecast origin
    end = "2018-01-01"            # origins before this date
    step_days = 7                 # days between origins
    horizon_days = 7              # forecast window, days
    train_days = 365              # training window, days (omit: all history)
    coverage = [0.01, 0.02, 0.05, 0.10]
    categories = ["BURGLARY"]     # optional filter (on top of events.categories)
    reference = "count"           # variant the others are compared with
    n_boot = 2000                 # bootstrap resamples of the summary
    seed = 0
    n_jobs = 1                    # worker processes over origins
    on_error = "raise"            # or "skip": a failing fit gives NaN rows and an `error` message

    [models.count]
    name = "CountHotspot"
    params = { window_days = 365 }

    [models.kde_200m]
    name = "KDEHotspot"
    params = { bandwidth_m = 200 }

    [output]
    dir = "out/backtest_chicago"  # relative to the configuration file

It writes ``backtest.csv``, ``backtest.parquet`` (one row per model x origin
x coverage), ``summary.csv`` (:func:`riskgrid.summarize`) and
``backtest.png`` (:func:`riskgrid.plot_backtest`) into the output folder, and
prints the summary at the middle coverage.
"""

from __future__ import annotations

import os
import sys
import time

import click

__all__ = ["command", "backtest_from_config", "BACKTEST_KEYS"]

#: keys of ``[backtest]`` with their accepted types and defaults (None: optional / required below)
BACKTEST_KEYS = {
    "start": ((str,), None),
    "end": ((str,), None),
    "step_days": ((int, float), 7),
    "horizon_days": ((int, float), 7),
    "train_days": ((int, float), None),
    "coverage": ((list,), [0.01, 0.02, 0.05, 0.10]),
    "categories": ((list, str), None),
    "reference": ((str,), None),
    "n_boot": ((int,), 2000),
    "seed": ((int,), 0),
    "n_jobs": ((int,), None),
    "on_error": ((str,), "raise"),
}
OUTPUT_KEYS = {"dir": ((str,), None)}


def _section(cfg: dict, name: str, spec: dict) -> dict:
    from ..config import check_table

    return check_table(name, cfg.get(name) or {}, spec)


def backtest_from_config(cfg: dict, out_dir: str | None = None, n_jobs: int | None = None, progress: bool = True) -> dict:
    """Run the backtest a validated configuration describes and write its outputs.

    Parameters
    ----------
    cfg : dict
        From :func:`riskgrid.config.load_config`.
    out_dir : str, optional
        Output folder (default: ``[output] dir``, else ``out/backtest_<city>``
        next to the configuration file).
    n_jobs : int, optional
        Overrides ``backtest.n_jobs``.
    progress : bool
        tqdm progress bar over origins.

    Returns
    -------
    dict
        ``table`` (DataFrame), ``summary`` (DataFrame), ``files`` (paths
        written), ``seconds`` (wall time).
    """
    from ..backtest import backtest, plot_backtest, summarize
    from ..config import events_from_config, grid_from_config, model_from_spec, resolve_path
    from ..errors import ConfigError, RiskGridError

    t0 = time.perf_counter()
    bt = _section(cfg, "backtest", BACKTEST_KEYS)
    out = _section(cfg, "output", OUTPUT_KEYS)
    for key in ("start", "end"):
        if bt[key] is None:
            raise ConfigError(f"[backtest] needs '{key}' (a date such as \"2017-01-01\")")
    specs = cfg.get("models") or {}
    if not specs:
        raise ConfigError("no model variant: add at least one [models.<name>] table with name = ... and params = {...}")
    models = {variant: model_from_spec(spec) for variant, spec in specs.items()}
    if bt["reference"] is not None and bt["reference"] not in models:
        raise ConfigError(f"backtest.reference {bt['reference']!r} is not one of the variants {list(models)}")
    events = events_from_config(cfg)
    grid = grid_from_config(cfg, events)
    try:
        table = backtest(
            models,
            events,
            grid,
            bt["start"],
            bt["end"],
            step_days=bt["step_days"],
            horizon_days=bt["horizon_days"],
            train_days=bt["train_days"],
            coverage=bt["coverage"],
            categories=bt["categories"],
            n_jobs=n_jobs if n_jobs is not None else bt["n_jobs"],
            progress=progress,
            on_error=bt["on_error"],
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RiskGridError):
            raise
        raise ConfigError(f"backtest: {exc}") from exc
    summary = summarize(table, reference=bt["reference"], n_boot=bt["n_boot"], seed=bt["seed"])
    if out_dir is None:
        out_dir = resolve_path(cfg, out["dir"] or f"out/backtest_{cfg.get('city', 'city')}")
    os.makedirs(out_dir, exist_ok=True)
    files = {
        "csv": os.path.join(out_dir, "backtest.csv"),
        "parquet": os.path.join(out_dir, "backtest.parquet"),
        "summary": os.path.join(out_dir, "summary.csv"),
        "png": os.path.join(out_dir, "backtest.png"),
    }
    table.to_csv(files["csv"], index=False)
    plain = table.copy()
    plain.attrs = {}
    plain.to_parquet(files["parquet"], index=False)
    summary.to_csv(files["summary"], index=False)
    plot_backtest(table, files["png"], title=f"{cfg.get('city', '')} walk-forward backtest".strip())
    return {"table": table, "summary": summary, "files": files, "seconds": time.perf_counter() - t0,
            "n_events": len(events), "n_cells": len(grid)}


@click.command(name="backtest")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=None, help="Output folder (default: [output] dir of the config).")
@click.option("--n-jobs", "n_jobs", type=int, default=None, help="Worker processes over origins (-1: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(config, out_dir, n_jobs, quiet):
    """Walk-forward backtest of the model variants in CONFIG.toml.

    Writes backtest.csv/.parquet (model x origin x coverage), summary.csv
    (means with 95 % bootstrap intervals and paired differences against the
    reference) and backtest.png into the output folder.
    """
    import pandas as pd

    from ..backtest import summary_table
    from ..config import load_config
    from ..errors import RiskGridError
    from .forecast import _one_line

    try:
        cfg = load_config(config)
        res = backtest_from_config(cfg, out_dir=out_dir, n_jobs=n_jobs, progress=not quiet)
    except (RiskGridError, OSError, ValueError, TypeError) as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(1)
    table, summary = res["table"], res["summary"]
    covs = sorted(table["coverage"].unique())
    mid = covs[len(covs) // 2]
    n_origins = table["origin"].nunique()
    click.echo(
        f"{cfg.get('city')}: {table['model'].nunique()} variants x {n_origins} origins on {res['n_events']:,} events, "
        f"{res['n_cells']:,} cells ({res['seconds']:.1f} s)"
    )
    click.echo(f"summary at {mid:.0%} coverage (mean [95% bootstrap interval]; Δ = paired difference vs "
               f"{summary.attrs['summary']['reference']!r}):")
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.max_colwidth", 40):
        click.echo(summary_table(summary, coverage=mid).to_string(index=False))
    failed = table[table["error"].fillna("").astype(str) != ""].drop_duplicates(["model", "origin"])
    for name, g in failed.groupby("model", sort=False):
        click.echo(f"warning: {name} failed at {len(g)} origin(s) (NaN rows), first: {g['error'].iloc[0][:160]}")
    click.echo("wrote:")
    for path in res["files"].values():
        click.echo(f"  {os.path.relpath(path)}")
