"""``riskgrid backtest CONFIG.toml``: walk-forward backtest of model variants from a TOML file.

The file uses the one schema of :mod:`riskgrid.pipeline.config`: the shared
``[events]``, ``[grid]`` and ``[outputs]`` sections, plus::

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
    n_jobs = 1                    # worker processes over origins (processes, not threads)
    on_error = "raise"            # or "skip": a failing fit gives NaN rows and an `error` message

    [models.count]
    name = "CountHotspot"
    params = { window_days = 365 }

    [models.kde_200m]
    name = "KDEHotspot"
    params = { bandwidth_m = 200 }

    [outputs]
    dir = "out/backtest_chicago"  # relative to the configuration file ([output] still works, deprecated)

The grid is the polygon or the events before ``start`` (the study-area rule
of :mod:`riskgrid.pipeline.source`). It writes ``backtest.csv``, ``backtest.parquet`` (one row per model x origin
x coverage), ``summary.csv`` (:func:`riskgrid.summarize`) and
``backtest.png`` (:func:`riskgrid.plot_backtest`) into the output folder, and
prints the summary at the middle coverage.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["command", "backtest_from_config"]


def backtest_from_config(cfg: dict, out_dir: str | None = None, n_jobs: int | None = None, progress: bool = True) -> dict:
    """:func:`riskgrid.pipeline.backtest.run_backtest` with a progress bar by default (what the command runs)."""
    from ..pipeline.backtest import run_backtest

    return run_backtest(cfg, out_dir=out_dir, n_jobs=n_jobs, progress=progress)


@click.command(name="backtest")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=None, help="Output folder (default: [outputs] dir of the config).")
@click.option("--n-jobs", "n_jobs", type=int, default=None, help="Worker processes over origins (-1: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(config, out_dir, n_jobs, quiet):
    """Walk-forward backtest of the model variants in CONFIG.toml.

    Writes backtest.csv/.parquet (model x origin x coverage), summary.csv
    (means with 95 % bootstrap intervals and paired differences against the
    reference) and backtest.png into the output folder.
    """
    from ..errors import RiskGridError
    from ..pipeline.config import load_config
    from . import one_line

    try:
        cfg = load_config(config)
        res = backtest_from_config(cfg, out_dir=out_dir, n_jobs=n_jobs, progress=not quiet)
    except (RiskGridError, OSError, ValueError, TypeError) as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
    import pandas as pd

    from ..evaluation.summary import summary_table

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
