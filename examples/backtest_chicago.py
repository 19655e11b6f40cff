"""Walk-forward backtest on Chicago burglaries, 2017, weekly (see backtest_chicago.toml).

Compares CountHotspot, KDEHotspot, ProspectiveHotspot, GridHawkes (spill-over
0 and 1 ring) and SEPP: each is refitted every Sunday of 2017 on the
previous 365 days and scored on the following week. Variants whose model is
not in ``riskgrid.models`` are skipped with a note. Writes the table, the
summary and a PNG into ``out/backtest_chicago/`` and prints the summary.

Run from the repository root::

    .venv/bin/python examples/backtest_chicago.py [--n-jobs 2] [--quiet]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import pandas as pd

from riskgrid.evaluation import summary_table
from riskgrid.models import available_models
from riskgrid.pipeline.backtest import run_backtest
from riskgrid.pipeline.config import load_config

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "backtest_chicago.toml")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-jobs", type=int, default=None, help="worker processes over origins")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    cfg = load_config(CONFIG)
    data = cfg["events"]["path"]
    if not os.path.exists(data):
        print(f"skipped: {data} not found (the shared data folder ../shared/data is outside the repository)")
        return 0
    known = set(available_models())
    for variant, spec in list(cfg["models"].items()):
        if spec["name"] not in known:
            print(f"note: skipping variant {variant!r}: model {spec['name']} is not in riskgrid.models yet")
            del cfg["models"][variant]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_backtest(cfg, out_dir=os.path.join(HERE, "..", "out", "backtest_chicago"),
                                   n_jobs=args.n_jobs, progress=not args.quiet)
    table, summary = res["table"], res["summary"]
    kinds = {}
    for w in caught:
        key = f"{w.category.__name__}: {str(w.message)[:90]}"
        kinds[key.split("(")[0]] = kinds.get(key.split("(")[0], 0) + 1
    for k, n in kinds.items():
        print(f"warning x{n}: {k}")

    print(f"\nChicago BURGLARY: {res['n_events']:,} events, {res['n_cells']:,} H3 res-9 cells, "
          f"{table.origin.nunique()} weekly origins, train 365 days ({res['seconds']:.0f} s)")
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.max_colwidth", 40):
        hr = table.pivot_table(index="model", columns="coverage", values="hit_rate", aggfunc="mean", sort=False)
        hr.columns = [f"hit@{c:.0%}" for c in hr.columns]
        speed = table.drop_duplicates(["model", "origin"]).groupby("model", sort=False)[["fit_seconds", "predict_seconds"]].mean()
        print("\nmean hit rate by coverage, and mean seconds per origin:")
        print(hr.join(speed).round(3).to_string())
        for cov in (0.01, 0.05):
            print(f"\nsummary at {cov:.0%} coverage: mean [95% bootstrap interval]; "
                  f"Δ = paired difference vs {summary.attrs['summary']['reference']!r}")
            print(summary_table(summary, coverage=cov).to_string(index=False))
    failed = table[table["error"].fillna("").astype(str) != ""].drop_duplicates(["model", "origin"])
    for name, g in failed.groupby("model", sort=False):
        print(f"\nnote: {name} failed at {len(g)} of {table.origin.nunique()} origins (left out of its summary); "
              f"first: {g['error'].iloc[0][:200]}")
    print("\nwrote:")
    for p in res["files"].values():
        print("  " + os.path.relpath(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
