"""``riskgrid audit OUT_ROOT``: who has been flagged, from the exposure log of the nightly runs.

Example::

    riskgrid audit out --name chicago --regions community_areas.geojson --region-key community \\
        --events ../shared/data/chicago_2016_2017.parquet --source-column source --start 2017-05-01

Writes ``OUT_ROOT/audit/`` (CSV tables, ``audit.json``, ``audit_map.png``; see
:func:`riskgrid.audit.run_audit`) and prints the summary and any feedback-loop
warning.
"""

from __future__ import annotations

import click

from . import date_option

__all__ = ["command"]


@click.command("audit")
@click.argument("out_root", type=click.Path(exists=True, file_okay=False))
@click.option("--regions", type=click.Path(exists=True, dir_okay=False),
              help="GeoJSON FeatureCollection of regions (neighbourhoods, districts, tracts); cells by centroid.")
@click.option("--region-key", default=None, help="Property that names each region (default: name/region/id/district).")
@click.option("--events", "events_path", type=click.Path(exists=True),
              help="Event table (Parquet/CSV with timestamp, lat, lon[, source]) for the reported-event shares.")
@click.option("--source-column", default="source", show_default=True,
              help="Column of --events holding the provenance (reported / discovered).")
@click.option("--reported", default="reported", show_default=True,
              help="Comma-separated provenance values that count as reported by residents.")
@click.option("--start", default=None, callback=date_option, help="First run date (YYYY-MM-DD).")
@click.option("--end", default=None, callback=date_option, help="Last run date (YYYY-MM-DD).")
@click.option("--name", default=None, help="Only this run name of the log.")
@click.option("--out", "out_dir", default=None, help="Output folder (default OUT_ROOT/audit).")
def command(out_root, regions, region_key, events_path, source_column, reported, start, end, name, out_dir):
    """Flag counts, persistence, concentration and discovered shares per cell and region, from OUT_ROOT/exposure."""
    import pandas as pd

    from ..audit import run_audit

    events = None
    if events_path is not None:
        if str(events_path).endswith((".parquet", ".pq")):
            events = pd.read_parquet(events_path)
        else:
            events = pd.read_csv(events_path)
        missing = [c for c in ("timestamp", "lat", "lon") if c not in events.columns]
        if missing:
            raise click.BadParameter(f"the event table lacks the column(s) {missing}", param_hint="--events")
        if source_column in events.columns:
            events = events.rename(columns={source_column: "source"})
        elif source_column != "source":
            raise click.BadParameter(f"no column {source_column!r} in the event table", param_hint="--source-column")
    try:
        res, paths = run_audit(out_root, regions=regions, region_key=region_key, events=events, start=start, end=end,
                               name=name, out_dir=out_dir,
                               reported_sources=tuple(v.strip() for v in reported.split(",") if v.strip()))
    except ValueError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    if not res.runs:
        click.echo(f"no runs in the exposure log under {out_root}")
    else:
        s = res.summary()
        click.echo(f"{s['runs']} runs from {s['first_run']} to {s['last_run']}: {s['n_cells_flagged']} of {s['n_cells']} "
                   f"cells flagged at least once; Gini of the flag counts {res.gini:.3f} "
                   f"(trend {res.gini_trend:+.4f} per run)")
        if len(res.regions):
            click.echo(res.regions[["region", "n_flags", "flag_share", "runs_flagged", "longest_streak",
                                    "discovered_share"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for w in res.warnings:
        click.echo(f"WARNING: {w}")
    for kind, p in paths.items():
        click.echo(f"wrote {kind}: {p}")
