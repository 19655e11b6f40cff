"""The one backtest job function, and the ``riskgrid backtest`` run of a configuration file.

:func:`backtest_job` runs a :class:`~riskgrid.pipeline.specs.BacktestJob`
(all origins, or one ``(variant, origin)``: what each Dask task does) through
:func:`riskgrid.evaluation.walk_forward.backtest`. Its grid follows the
study-area rule of :mod:`riskgrid.pipeline.source` for the first origin, so
every origin of the backtest, every Dask task of it and a forecast job for
that first day share one grid.
"""

from __future__ import annotations

import os
import time

from ..errors import ConfigError, RiskGridError

__all__ = ["backtest_job", "job_origins", "backtest_grid", "run_backtest"]


def backtest_grid(job, events):
    """The study area of a backtest: the rule of :func:`~riskgrid.pipeline.source.study_area` at ``job.start``."""
    from .source import study_area

    return study_area(job.grid, events, events.to_days(job.start), job.target)


def job_origins(job, events):
    """Backtest origins (days) of a job, exactly as :func:`riskgrid.evaluation.walk_forward.backtest` makes them."""
    from ..evaluation.walk_forward import backtest_origins

    return backtest_origins(events, job.start, job.end, job.step_days)


def backtest_job(job, events=None, grid=None, variant: str | None = None, origin: float | None = None,
                 progress: bool | None = None):
    """Run a backtest job here: every (variant, origin), or the single one given.

    Parameters
    ----------
    job : BacktestJob
    events, grid : optional
        The job's events and study area when already loaded by the same rule
        (the Dask workers' cache); read with the one event source otherwise.
    variant, origin : optional
        Only this model variant at this origin (days): the rows are exactly
        those of the full backtest for that pair (the backtest is called
        with ``start=origin`` and ``end`` half a step later).
    progress : bool, optional
        tqdm bar over origins (default off).

    Returns
    -------
    pandas.DataFrame
        The table of :func:`riskgrid.evaluation.walk_forward.backtest`.
    """
    from ..evaluation.walk_forward import backtest
    from .source import load_job_events

    if events is None:
        events = load_job_events(job)
    if grid is None:
        grid = backtest_grid(job, events)
    kwargs = dict(job.backtest_kwargs)
    if job.target is not None:
        kwargs.update(target=job.target, indicators=job.indicators)
    if job.coverage is not None:
        kwargs["coverage"] = job.coverage
    if progress is not None:
        kwargs["progress"] = progress
    models = {v: s.build() for v, s in job.models.items() if variant is None or v == variant}
    start, end = job.start, job.end
    if origin is not None:
        start, end = float(origin), float(origin) + 0.5 * float(job.step_days)
        kwargs["progress"] = False
        kwargs.pop("n_jobs", None)
    return backtest(models, events, grid, start=start, end=end, step_days=job.step_days,
                    horizon_days=job.horizon_days, train_days=job.train_days, **kwargs)


def run_backtest(cfg: dict, out_dir: str | None = None, n_jobs: int | None = None, progress: bool = False) -> dict:
    """Run the backtest a validated configuration describes and write its outputs (``riskgrid backtest``).

    Writes ``backtest.csv``, ``backtest.parquet`` (one row per model x origin
    x coverage), ``summary.csv`` (:func:`riskgrid.summarize`) and
    ``backtest.png`` (:func:`riskgrid.plot_backtest`), each atomically.

    Parameters
    ----------
    cfg : dict
        From :func:`riskgrid.pipeline.config.load_config`.
    out_dir : str, optional
        Output folder (default: ``[outputs] dir``, else ``out/backtest_<city>``
        next to the configuration file).
    n_jobs : int, optional
        Worker processes over origins; overrides ``backtest.n_jobs``.
    progress : bool
        tqdm progress bar over origins.

    Returns
    -------
    dict
        ``table`` (DataFrame), ``summary`` (DataFrame), ``files`` (paths
        written), ``seconds`` (wall time), ``n_events``, ``n_cells``.
    """
    from ..evaluation.summary import plot_backtest, summarize
    from .config import resolve_path
    from .publish import atomic_file
    from .source import load_job_events
    from .specs import BacktestJob

    t0 = time.perf_counter()
    over = {"n_jobs": n_jobs} if n_jobs is not None else {}
    job = BacktestJob.from_config(cfg, **over)
    bt = cfg["backtest"]
    events = load_job_events(job)
    grid = backtest_grid(job, events)
    try:
        table = backtest_job(job, events, grid, progress=progress)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RiskGridError):
            raise
        raise ConfigError(f"backtest: {exc}") from exc
    summary = summarize(table, reference=bt["reference"], n_boot=bt["n_boot"], seed=bt["seed"])
    if out_dir is None:
        out_dir = resolve_path(cfg, cfg["outputs"]["dir"] or f"out/backtest_{cfg.get('city', 'city')}")
    os.makedirs(out_dir, exist_ok=True)
    files = {
        "csv": os.path.join(out_dir, "backtest.csv"),
        "parquet": os.path.join(out_dir, "backtest.parquet"),
        "summary": os.path.join(out_dir, "summary.csv"),
        "png": os.path.join(out_dir, "backtest.png"),
    }
    plain = table.copy()
    plain.attrs = {}  # Parquet would store the attrs as JSON metadata
    with atomic_file(files["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(files["parquet"]) as tmp:
        plain.to_parquet(tmp, index=False)
    with atomic_file(files["summary"]) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_file(files["png"]) as tmp:
        plot_backtest(table, tmp, title=f"{cfg.get('city', '')} walk-forward backtest".strip())
    return {"table": table, "summary": summary, "files": files, "seconds": time.perf_counter() - t0,
            "n_events": len(events), "n_cells": len(grid)}
