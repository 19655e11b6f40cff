"""Many cities x model variants x weekly origins on Dask (riskgrid.distributed).

Reads the real event tables in ``../shared/data`` (relative to the repository;
skipped with a message when absent) and runs, on a LocalCluster sized to this
machine (or on the cluster whose scheduler address is given as the first
argument):

* walk-forward backtests (weekly origins, one task per variant and origin) of
  CountHotspot and KDEHotspot on Chicago burglaries and robberies (2017) and
  New York shootings (2018);
* next-week forecasts for the same cities;
* one deliberately broken job (a missing file), reported without stopping
  the others.

Outputs go to ``out/distributed_batch/``; the key table is printed.

Usage::

    .venv/bin/python examples/distributed_batch.py                    # LocalCluster
    .venv/bin/python examples/distributed_batch.py tcp://host:8786    # existing cluster
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd

import riskgrid as rg
from riskgrid.distributed import BacktestJob, ForecastJob, ModelSpec, local_client, run_jobs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "out" / "distributed_batch"

VARIANTS = {
    "count365": ModelSpec("CountHotspot", {"window_days": 365.0}),
    "kde300": ModelSpec("KDEHotspot", {"bandwidth_m": 300.0, "window_days": 365.0}),
}


def make_jobs():
    chicago = DATA / "chicago_2016_2017.parquet"
    nyc = DATA / "nyc_shootings_2006_2019.parquet"
    cols = {"category": "category"}
    jobs = [
        BacktestJob("chicago-burglary", str(chicago), models=VARIANTS, categories=["BURGLARY"], columns=cols,
                    start="2017-01-02", end="2018-01-01", train_days=365),
        BacktestJob("chicago-robbery", str(chicago), models=VARIANTS, categories=["ROBBERY"], columns=cols,
                    start="2017-01-02", end="2018-01-01", train_days=365),
        BacktestJob("nyc-shootings", str(nyc), models=VARIANTS, columns=cols,
                    start="2018-01-01", end="2018-12-31", train_days=730),
        ForecastJob("chicago-burglary-next-week", str(chicago), model=VARIANTS["kde300"], categories=["BURGLARY"],
                    columns=cols, date="2018-01-01", train_days=365),
        ForecastJob("nyc-shootings-next-week", str(nyc), model=VARIANTS["kde300"], columns=cols,
                    date="2019-10-01", train_days=730),
        ForecastJob("broken-city", str(DATA / "no_such_city.parquet"), date="2018-01-01"),
    ]
    return jobs


def main(argv):
    if not (DATA / "chicago_2016_2017.parquet").exists():
        print(f"skipped: the real data folder {DATA} is not present (it lives outside the repository)")
        return 0
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = make_jobs()
    if len(argv) > 1:
        print(f"running {len(jobs)} jobs on the Dask cluster at {argv[1]}")
        res = run_jobs(jobs, argv[1], progress=True)
    else:
        with local_client() as client:
            info = client.scheduler_info()["workers"]
            print(f"LocalCluster: {len(info)} workers x {next(iter(info.values()))['nthreads']} thread(s), "
                  f"{client.riskgrid_numba_threads} Numba thread(s) per task; "
                  f"dashboard: {res_dash(client)}")
            res = run_jobs(jobs, client, progress=True)
    print(f"\n{res!r}")
    for line in res.failure_lines():
        print(f"FAILED {line}")

    rows = []
    for name, value in res.results.items():
        if isinstance(value, pd.DataFrame):
            value.drop(columns=[]).to_parquet(OUT / f"{name}.parquet")
            s = rg.summarize(value, reference="count365")
            s = s[(s.metric.isin(["hit_rate", "pai"])) & (s.coverage == 0.05)]
            for _, r in s.iterrows():
                rows.append({"job": name, "model": r.model, "metric": f"{r.metric}@5%", "mean": r["mean"],
                             "lo": r.lo, "hi": r.hi, "diff_vs_count": r["diff"], "origins": r.n_origins})
        else:
            value.to_netcdf(OUT / f"{name}.nc")
            top = value.sortby(value, ascending=False).isel(cell=slice(0, 3))
            print(f"{name}: {value.sizes['cell']} cells, expected {float(value.sum()):.1f} events in "
                  f"{value.attrs['horizon_days']:.0f} days from {value.attrs['forecast_start']}; "
                  f"top cells {[str(h) for h in top.h3.values]}")
    table = pd.DataFrame(rows)
    table.to_csv(OUT / "summary.csv", index=False)
    with pd.option_context("display.width", 140, "display.float_format", "{:.3f}".format):
        print("\nBacktest summary at 5 % coverage (mean across weekly origins, 95 % bootstrap interval):")
        print(table.to_string(index=False))
        print("\nWhere the time went (task seconds by job):")
        print(res.time_by("job").to_string())
        print(f"\nwall time {res.wall_seconds:.1f} s for {len(res.tasks)} tasks; outputs in {OUT}")
    return 0 if set(res.errors) == {"broken-city"} else 1


def res_dash(client):
    from riskgrid.distributed import dashboard_address

    return dashboard_address(client) or "not available (pip install 'bokeh>=3.1')"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
