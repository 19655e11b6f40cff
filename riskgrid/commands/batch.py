"""``riskgrid batch JOBS.toml``: many forecasts and backtests on a Dask cluster.

Outputs per job: ``<job>.nc`` (the forecast's ``risk`` DataArray, attributes
made NetCDF-safe) and, with ``--formats``, the other products of
:mod:`riskgrid.products` (``<job>.zarr``, ``<job>.geojson``,
``<job>_hexagons.parquet``, ``<job>_hexagons.csv``, ``<job>.tif``,
``<job>.png``, ``<job>_zones.geojson``); ``<job>.csv``/``<job>.parquet`` for
backtests. Every file is written atomically: a failed write leaves no partial
file, is reported as that job's failure, and the other jobs are written and
reported all the same (one ``FAILED`` line per failed job).
"""

from __future__ import annotations

import os
import sys

import click


def _file_stem(name: str) -> str:
    """A job name as a file name (characters other than letters, digits, '-', '_', '.' become '_')."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


_RESERVED_STEMS = {"batch_tasks", "batch_status"}

#: forecast product -> file name suffix after the job's stem
FORECAST_FILES = {
    "netcdf": ".nc",
    "zarr": ".zarr",
    "geojson": ".geojson",
    "parquet": "_hexagons.parquet",
    "csv": "_hexagons.csv",
    "geotiff": ".tif",
    "png": ".png",
    "zones": "_zones.geojson",
}


def _parse_formats(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    if names == ["all"]:
        return list(FORECAST_FILES)
    bad = [f for f in names if f not in FORECAST_FILES]
    if bad or not names:
        raise click.BadParameter(f"unknown format(s) {bad}; allowed: {list(FORECAST_FILES)} or 'all'",
                                 param_hint="--formats")
    return list(dict.fromkeys(names))


def write_forecast(risk, stem_path: str, formats) -> list[str]:
    """Write the products of one forecast (each atomically); the paths written."""
    from ..pipeline.publish import atomic_file
    from ..products import clean_attrs, grid_of, risk_dataset, write_product

    written = []
    ds = risk_dataset(risk)
    grid = zones = None
    if any(f in formats for f in ("geojson", "parquet", "geotiff", "png", "zones")):
        grid = grid_of(ds)
    if "zones" in formats or "png" in formats:
        from ..zones import select_zones

        zones = select_zones(ds["risk"].values, grid)
    for fmt in formats:
        path = stem_path + FORECAST_FILES[fmt]
        with atomic_file(path) as tmp:
            if fmt == "netcdf":  # the model's DataArray itself, attributes made NetCDF-safe
                plain = risk.copy()
                plain.attrs = clean_attrs(risk.attrs)
                plain.to_netcdf(tmp)
            else:
                write_product(fmt, ds, tmp, grid=grid, zones=zones)
        written.append(path)
    return written


@click.command()
@click.argument("jobs_file", type=click.Path(dir_okay=False))
@click.option("--scheduler", "scheduler", default=None, metavar="ADDRESS",
              help="Address of a running Dask scheduler (e.g. tcp://host:8786); default: a LocalCluster on this machine.")
@click.option("--workers", "n_workers", type=int, default=None, help="LocalCluster: number of worker processes (default: one per core).")
@click.option("--threads-per-worker", type=int, default=None, help="LocalCluster: threads per worker (default 1).")
@click.option("--memory-limit", default=None, help="LocalCluster: memory per worker, e.g. 4GiB (default: share of the RAM).")
@click.option("--numba-threads", type=int, default=None,
              help="Numba threads per task (default: cores / (workers x threads) on a LocalCluster).")
@click.option("--retries", type=int, default=None, help="Dask retries per task (default 2).")
@click.option("--serial", is_flag=True, help="Run the same tasks one after the other in this process (no Dask).")
@click.option("--out", "out_dir", default="out/batch", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the results: <job>.nc (forecasts), <job>.csv/.parquet (backtests), batch_tasks.csv.")
@click.option("--formats", "formats", default="netcdf", show_default=True,
              help="Forecast products, comma-separated (netcdf, zarr, geojson, parquet, csv, geotiff, png, zones) or 'all'.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(jobs_file, scheduler, n_workers, threads_per_worker, memory_limit, numba_threads, retries, serial, out_dir,
            formats, quiet):
    """Run every [[forecast]] and [[backtest]] job of JOBS_FILE on Dask.

    Jobs run in parallel (a backtest as one task per variant and origin);
    a failing job does not stop the others. Exit status 1 when any job
    failed, with one line per failed job.
    """
    from contextlib import nullcontext

    from ..distributed import dashboard_address, load_jobs, local_client, run_jobs
    from ..errors import ConfigError

    formats = _parse_formats(formats)
    try:
        jobs, cluster = load_jobs(jobs_file)
        stems = [_file_stem(j.name) for j in jobs]
        clash = sorted({j.name for j, s in zip(jobs, stems) if stems.count(s) > 1 or s in _RESERVED_STEMS})
        if clash:
            raise ConfigError(f"job names {clash} would write the same output files (or clash with "
                              f"{sorted(_RESERVED_STEMS)}); rename them")
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    scheduler = scheduler or cluster.get("scheduler")
    retries = retries if retries is not None else int(cluster.get("retries", 2))
    sizing = dict(
        n_workers=n_workers or cluster.get("n_workers"),
        threads_per_worker=threads_per_worker or cluster.get("threads_per_worker"),
        memory_limit=memory_limit or cluster.get("memory_limit", "auto"),
        numba_threads=numba_threads or cluster.get("numba_threads"),
    )
    n_fc = sum(type(j).__name__ == "ForecastJob" for j in jobs)
    click.echo(f"riskgrid batch: {n_fc} forecast job(s), {len(jobs) - n_fc} backtest job(s) from {jobs_file}")
    if serial:
        ctx = nullcontext("serial")
    elif scheduler:
        from distributed import Client

        try:
            ctx = Client(scheduler, set_as_default=False, timeout="20s")
        except (OSError, ValueError, TypeError) as exc:  # unreachable, or not an address at all
            click.echo(f"error: cannot reach the Dask scheduler at {scheduler}: {exc}", err=True)
            sys.exit(2)
    else:
        ctx = local_client(**sizing)
    import time

    t_start = time.perf_counter()
    got = []  # the BatchResult, kept even when closing the cluster fails afterwards
    try:
        _run_batch(ctx, jobs, retries, quiet, sizing, scheduler, serial, got)
    except Exception as exc:  # the cluster itself failed (or closing it did): still report every job
        if not got:
            got.append(_stopped_batch(jobs, exc, time.perf_counter() - t_start))
    _report(got[0], out_dir, formats)


def _stopped_batch(jobs, exc, seconds):
    """A BatchResult in which every job failed because the batch could not run to its end."""
    import pandas as pd

    from ..distributed.results import TASK_COLUMNS, BatchResult

    msg = f"the batch stopped: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return BatchResult(results={}, errors={j.name: msg for j in jobs}, names=[j.name for j in jobs],
                       tasks=pd.DataFrame(columns=TASK_COLUMNS), wall_seconds=seconds)


def _run_batch(ctx, jobs, retries, quiet, sizing, scheduler, serial, got):
    from ..distributed import dashboard_address, run_jobs

    with ctx as client:
        if client == "serial":
            click.echo("  running serially in this process")
        else:
            info = client.scheduler_info()
            nthreads = sum(w.get("nthreads", 0) for w in info.get("workers", {}).values())
            click.echo(f"  Dask scheduler {client.scheduler.address}: {len(info.get('workers', {}))} workers, {nthreads} threads")
            link = dashboard_address(client)
            click.echo(f"  dashboard: {link}" if link else "  dashboard: not available (pip install 'bokeh>=3.1')")
        res = run_jobs(jobs, client, retries=retries, progress=not quiet,
                       numba_threads=sizing["numba_threads"] if scheduler or serial else None)
        got.append(res)


def _report(res, out_dir, formats):
    """Write the results, ``batch_tasks.csv`` and ``batch_status.json``; one FAILED line per failed job."""
    os.makedirs(out_dir, exist_ok=True)
    from ..pipeline.publish import atomic_file

    written = []
    failures = dict(res.errors)  # job -> message, run errors first, then write errors
    for name, value in res.results.items():
        stem = os.path.join(out_dir, _file_stem(name))
        try:
            if hasattr(value, "to_netcdf"):
                written += write_forecast(value, stem, formats)
            else:
                frame = value.copy()
                frame.attrs = {}  # Parquet would store the attrs as JSON metadata
                for ext in ("csv", "parquet"):
                    with atomic_file(f"{stem}.{ext}") as tmp:
                        frame.to_csv(tmp, index=False) if ext == "csv" else frame.to_parquet(tmp, index=False)
                    written.append(f"{stem}.{ext}")
        except Exception as exc:  # one job's products failing must not hide the others
            failures[name] = f"writing its products failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
    import json

    with atomic_file(os.path.join(out_dir, "batch_tasks.csv")) as tmp:
        res.tasks.to_csv(tmp, index=False)
    with atomic_file(os.path.join(out_dir, "batch_status.json")) as tmp, open(tmp, "w") as fh:
        json.dump({"ok": sorted(set(res.results) - set(failures)), "errors": failures,
                   "wall_seconds": res.wall_seconds}, fh, indent=2)

    n_ok = len(res.names) - len(failures)
    click.echo(f"  {n_ok} of {len(res.names)} job(s) succeeded in {res.wall_seconds:.1f} s; "
               f"{len(written)} file(s) in {out_dir}")
    if failures:
        for name in res.names:
            if name in failures:
                msg = str(failures[name]).strip()
                click.echo(f"FAILED {name}: {msg.splitlines()[0] if msg else msg}", err=True)
        sys.exit(1)
