"""``riskgrid forecast CONFIG.toml --date YYYY-MM-DD``: the nightly job (see :mod:`riskgrid.pipeline.job`)."""

from __future__ import annotations

import os
import sys

import click

from . import one_line

__all__ = ["command", "run_and_report"]


def run_and_report(config, date, out_dir, skip_existing=False, quiet=False) -> dict:
    """Run :func:`riskgrid.pipeline.job.run_forecast` and print what it wrote; one-line error and exit 1 on failure."""
    import logging
    import warnings

    from ..errors import RiskGridError
    from ..pipeline.job import run_forecast

    logging.getLogger("riskgrid").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            man = run_forecast(config, date, out_dir, skip_existing=skip_existing, progress=not quiet)
    except (RiskGridError, OSError, ValueError, TypeError, KeyError) as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
    folder = man["folder"]
    rel = os.path.relpath(folder)
    if rel.startswith(".."):
        rel = folder
    if man.get("skipped"):
        click.echo(f"{rel}: complete output exists, skipped (--skip-existing)")
        return man
    z = man["zones"]
    click.echo(
        f"{man['city']} {man['forecast_date']}: {man['fit']['model']} fitted on {man['n_events_used']:,} events, "
        f"{man['grid']['n_cells']:,} cells; {z['n_zones']} zones hold {z['captured_share']:.1%} of the risk "
        f"(best {z['n_cells']} cells: {z['best_unconstrained_share']:.1%}); "
        f"{man['wall_times_s']['total']:.1f} s"
    )
    click.echo(f"wrote {rel}/")
    tops = {}
    for f in man["files"]:
        top = f["path"].split("/")[0]
        n, b = tops.get(top, (0, 0))
        tops[top] = (n + 1, b + f["bytes"])
    for top, (n, b) in sorted(tops.items()):
        extra = f" ({n} files)" if n > 1 else ""
        click.echo(f"  {top:<28} {b / 1024:>9.1f} KiB{extra}")
    click.echo(f"  {'manifest.json':<28} {os.path.getsize(os.path.join(folder, 'manifest.json')) / 1024:>9.1f} KiB")
    return man


@click.command(name="forecast")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--date", "date", required=True, help="First day of the forecast, YYYY-MM-DD.")
@click.option("--out", "out_dir", default=None, help="Output root (default: [outputs] dir of the config, else ./out).")
@click.option("--skip-existing", is_flag=True, help="Do nothing when OUT/<city>/<date>/ is already complete.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or warnings.")
def command(config, date, out_dir, skip_existing, quiet):
    """Fit, forecast, choose patrol zones and publish every product for one date.

    Writes NetCDF, Zarr, GeoJSON, Parquet, CSV, a cloud-optimised GeoTIFF, a
    PNG map and the zones GeoJSON into OUT/<city>/<date>/ with a manifest.json,
    atomically (the folder appears only when complete).
    """
    from ..pipeline.config import load_config
    from ..errors import RiskGridError

    try:
        cfg = load_config(config)
    except RiskGridError as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
    if out_dir is None:
        out_dir = cfg["outputs"].get("dir") or "out"
    run_and_report(cfg, date, out_dir, skip_existing=skip_existing, quiet=quiet)
