"""The ``riskgrid`` command line (click)."""

from __future__ import annotations

import sys
import time

import click

from ._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="riskgrid")
def main():
    """riskgrid: spatiotemporal risk forecasts on H3 hexagons.

    Run `riskgrid COMMAND --help` for the options of each command.
    """


@main.command()
@click.option("--days", default=365, show_default=True, help="Length of the simulated history, days.")
@click.option("--rate", default=20.0, show_default=True, help="Background events per day.")
@click.option("--resolution", default=9, show_default=True, help="H3 resolution of the grid.")
@click.option("--seed", default=42, show_default=True, help="Random seed of the simulated city.")
def demo(days, rate, resolution, seed):
    """Simulate a city and summarise it (no download needed)."""
    from .events import EventSet
    from .grid import HexGrid
    from .simulate import simulate

    t0 = time.perf_counter()
    df = simulate(n_days=days, background_rate=rate, seed=seed)
    events = EventSet.from_frame(df, category="category")
    grid = HexGrid.from_events(events, resolution=resolution)
    cell = grid.assign(events)
    dt = time.perf_counter() - t0
    click.echo("riskgrid demo: simulated city")
    click.echo(f"  events      {len(events):,} ({(df.generation > 0).mean():.1%} triggered)")
    click.echo(f"  date range  {events.start} → {events.end}")
    click.echo(f"  grid        {len(grid):,} H3 cells at resolution {resolution} ({grid.area_m2.sum() / 1e6:.1f} km²)")
    click.echo(f"  busiest     {int(max(0, (cell >= 0).sum() and __import__('numpy').bincount(cell[cell >= 0]).max()))} events in one cell")
    click.echo(f"  time taken  {dt:.2f} s")


# ---- sub-commands living in riskgrid/commands/<name>.py (one line each) ----
# (add `from .commands.NAME import command as _NAME; main.add_command(_NAME)`)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
