"""``riskgrid knox EVENTS_FILE``: Knox near-repeat test of an event file, printed as a table.

Example::

    riskgrid knox ../shared/data/chicago_2016_2017.parquet --category BURGLARY \\
        --space 0,1,100,200,300,400,inf --time 0,7,14,21,28,inf --permutations 999 \\
        --csv out/knox.csv --png out/knox.png
"""

from __future__ import annotations

import os
import time

import click

__all__ = ["command", "parse_edges", "plot_knox"]


def parse_edges(text: str, name: str) -> list[float]:
    """``"0,1,100,inf"`` → ``[0.0, 1.0, 100.0, inf]`` (raises ``click.BadParameter``)."""
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated numbers (inf allowed), got {text!r}", param_hint=name) from exc
    return vals


def plot_knox(result, path: str, title: str | None = None) -> None:
    """Heat map of the Knox ratios with significance marks, written to ``path`` (PNG, Agg backend)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    from ..bands import significance_stars as _stars

    ratio = np.asarray(result.ratio, float)
    finite = ratio[np.isfinite(ratio)]
    hi = max(1.5, float(finite.max()) if finite.size else 1.5)
    lo = min(0.5, float(finite.min()) if finite.size else 0.5)
    ns, nt = ratio.shape
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * nt, 1.2 + 0.55 * ns))
    norm = TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi)
    im = ax.imshow(np.ma.masked_invalid(ratio), cmap="RdBu_r", norm=norm, aspect="auto")
    for s in range(ns):
        for b in range(nt):
            r = ratio[s, b]
            txt = "n/a" if not np.isfinite(r) else f"{r:.2f}{_stars(result.p_value[s, b])}"
            dark = np.isfinite(r) and abs(float(norm(r)) - 0.5) > 0.3
            ax.text(b, s, txt, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(nt), result.time_labels, rotation=30, ha="right")
    ax.set_yticks(range(ns), result.space_labels)
    ax.set_xlabel("time between events")
    ax.set_ylabel("distance between events")
    ax.set_title(title or f"Knox ratios ({result.n_events:,} events, {result.n_permutations} permutations)")
    fig.colorbar(im, ax=ax, label="observed / expected")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@click.command(name="knox")
@click.argument("events_file", type=click.Path(exists=True, dir_okay=True))
@click.option("--space", "space", default="0,1,100,200,300,400,inf", show_default=True, help="Space band edges, metres (comma-separated; inf allowed last).")
@click.option("--time", "time_", default="0,7,14,21,28,inf", show_default=True, help="Time band edges, days (comma-separated; inf allowed last).")
@click.option("--category", "categories", multiple=True, help="Keep only this category (repeat or comma-separate for several).")
@click.option("--permutations", default=999, show_default=True, type=int, help="Monte Carlo permutations.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the permutations.")
@click.option("--metric", type=click.Choice(["euclidean", "manhattan"]), default="euclidean", show_default=True)
@click.option("--start", default=None, help="Keep events at or after this time (e.g. 2016-01-01).")
@click.option("--end", default=None, help="Keep events before this time.")
@click.option("--threads", "--jobs", "n_threads", default=None, type=int,
              help="Numba threads (-1: all); --jobs is the older name of the same option.")
@click.option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False), help="Write the tidy table here.")
@click.option("--png", "png_path", default=None, type=click.Path(dir_okay=False), help="Write a heat map here.")
@click.option("--time-col", default="timestamp", show_default=True)
@click.option("--lat-col", default="lat", show_default=True)
@click.option("--lon-col", default="lon", show_default=True)
@click.option("--category-col", default="category", show_default=True, help="Column of the event type ('' for none).")
@click.option("--weight-col", default=None,
              help="Column of non-negative event weights: each pair then counts w_i·w_j (weights stay with their events "
                   "under permutation). Default: every pair counts 1.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(events_file, space, time_, categories, permutations, seed, metric, start, end, n_threads, csv_path, png_path,
            time_col, lat_col, lon_col, category_col, weight_col, quiet):
    """Knox near-repeat test: are events close in space also close in time?

    Pairs of events are counted by distance band (metres) and time band
    (days) and compared with 999 (--permutations) random re-assignments of
    the times to the locations. The table shows observed/expected ratios;
    * p ≤ 0.05, ** p ≤ 0.01, *** p ≤ 0.001.
    """
    from ..errors import RiskGridError
    from ..events import read_events
    from ..knox import knox_test

    space_edges = parse_edges(space, "--space")
    time_edges = parse_edges(time_, "--time")
    t0 = time.perf_counter()
    try:
        events = read_events(
            events_file, time=time_col, lat=lat_col, lon=lon_col, category=category_col or None,
            weight=weight_col or None, on_invalid="drop",
        )
    except (RiskGridError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if len(events.rejected):
        click.echo(f"note: {len(events.rejected):,} invalid rows dropped", err=True)
    cats = [c.strip() for group in categories for c in group.split(",") if c.strip()]
    if cats:
        if not category_col:
            raise click.UsageError("--category needs a category column (--category-col)")
        try:
            events = events.select(cats)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    if start is not None or end is not None:
        events = events.between(start, end)
    if len(events) < 2:
        raise click.ClickException(f"only {len(events)} event(s) left after filtering; the Knox test needs at least 2")
    try:
        res = knox_test(events, space_edges, time_edges, n_permutations=permutations, seed=seed, metric=metric,
                        n_jobs=n_threads, progress=not quiet, weights=bool(weight_col))
    except (ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    what = ", ".join(cats) if cats else "all categories"
    click.echo(f"Knox test: {os.path.basename(str(events_file))} ({what}), {events.start} → {events.end}")
    click.echo(repr(res))
    click.echo(f"{res.n_close_pairs:,} close pairs; time taken {time.perf_counter() - t0:.2f} s")
    for path in (csv_path, png_path):
        if path and os.path.dirname(os.path.abspath(path)):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if csv_path:
        res.to_frame().to_csv(csv_path, index=False)
        click.echo(f"wrote {csv_path}")
    if png_path:
        plot_knox(res, png_path, title=f"Knox ratios: {what} ({res.n_events:,} events)")
        click.echo(f"wrote {png_path}")
