"""The ``riskgrid`` command line (click): argument parsing and printing only.

Start-up is kept short (``riskgrid --help`` and a bad configuration answer in
well under half a second): this module and ``riskgrid/commands/*`` import
only click at the top; numpy, pandas, numba, xarray, dask and matplotlib are
imported inside the commands that use them.
"""

from __future__ import annotations

import os
import sys

import click

from ._version import __version__

DEMO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_config.toml")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="riskgrid")
def main():
    """riskgrid: spatiotemporal risk forecasts on H3 hexagons.

    Run `riskgrid COMMAND --help` for the options of each command.
    """


@main.command()
@click.option("--out", "out_dir", default="out/demo", show_default=True, help="Output root folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo(out_dir, quiet):
    """Run the nightly forecast job on an embedded simulated city (no download needed).

    Same code path, products and atomic writes as `riskgrid forecast`; the
    city is described by riskgrid/demo_config.toml.
    """
    import pandas as pd

    from .commands.forecast import run_and_report
    from .pipeline.config import load_config

    cfg = load_config(DEMO_CONFIG)
    sim = cfg["events"]["simulate"]  # the forecast starts the day after the simulated history
    date = (pd.Timestamp(sim.get("start", "2024-01-01")) + pd.Timedelta(days=float(sim["n_days"]))).strftime("%Y-%m-%d")
    click.echo(f"riskgrid demo: simulated city, forecast for {date} (config {DEMO_CONFIG})")
    run_and_report(cfg, date, out_dir, quiet=quiet)


# ---- sub-commands living in riskgrid/commands/<name>.py (one line each) ----
# (add `from .commands.NAME import command as _NAME; main.add_command(_NAME)`)
from .commands.batch import command as _batch; main.add_command(_batch, "batch")
from .commands.forecast import command as _forecast; main.add_command(_forecast, "forecast")
from .commands.backtest import command as _backtest; main.add_command(_backtest, "backtest")
from .commands.knox import command as _knox; main.add_command(_knox, "knox")
from .commands.audit import command as _audit; main.add_command(_audit, "audit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
