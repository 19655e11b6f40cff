"""How much room is there above the heat map? PAI of static maps that see the test period.

For each forecast window of the walk-forward comparison in
``examples/forecast_skill.py`` (same targets, grid and origins), two maps that
no forecaster could have are scored like a forecast:

* ``test period, window left out``: every target event of the whole test
  period (e.g. all of 2017) counted per cell, except the events of the window
  being scored - the long-run map of the very period being forecast;
* ``all data, window left out``: the same with every earlier year added
  (the longest-run map the data hold, past and future);
* ``the window itself (ceiling)``: the window's own counts (the ceiling of
  any map).

Ties (cells with equal counts) are broken by the all-data counts, then by
cell index, as ``riskgrid.metrics`` ranks.

A forecaster whose PAI is at or above the first two gains nothing more from
knowing where the period's events concentrate: what is left above it is
short-term dynamics (near repeats, flare-ups), which a weekly window holds
few of. Compare the output with the PAI columns of ``forecast_skill.py``.

Reads ``../shared/data`` (outside the repository) and prints
``skipped: ...`` without it::

    .venv/bin/python examples/skill_headroom.py burglary --horizon 7
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

import riskgrid as rg
from riskgrid.evaluation import backtest_origins
from forecast_skill import TARGETS, load_target


def headroom(events: rg.EventSet, grid: rg.HexGrid, start, end, horizon_days: float) -> pd.DataFrame:
    """Mean PAI@1 % and @5 % of the oracle maps over the windows ``[origin, origin + horizon_days)``.

    ``events`` are the target events; windows start every ``horizon_days``
    days from ``start`` up to ``end`` (timestamps), as in ``rg.backtest``.
    Windows without an event are left out (their PAI is undefined).
    """
    cell = grid.assign(events)
    inside = cell >= 0
    origins = backtest_origins(events, start, end, horizon_days)  # the walk-forward's own origins
    n = len(grid)
    period = inside & (events.t >= origins[0]) & (events.t < events.to_days(end))
    total = np.bincount(cell[period], weights=events.weight[period], minlength=n)
    everything = np.bincount(cell[inside], weights=events.weight[inside], minlength=n)
    rows = []
    for origin in origins:
        win = inside & (events.t >= origin) & (events.t < origin + horizon_days)
        observed = np.bincount(cell[win], weights=events.weight[win], minlength=n)
        if observed.sum() == 0:
            continue
        rest_all = everything - observed
        tie = 1e-6 * rest_all / max(rest_all.max(), 1.0)  # below one count: only orders equal counts
        maps = {
            "test period, window left out": total - observed + tie,
            "all data, window left out": rest_all + tie,
            "the window itself (ceiling)": observed + tie,
        }
        for name, risk in maps.items():
            rows.append((name, *rg.metrics.evaluate(risk, observed, grid.area_m2, (0.01, 0.05))["pai"]))
    df = pd.DataFrame(rows, columns=["map", "PAI@1%", "PAI@5%"])
    return df.groupby("map", sort=False).mean()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("--horizon", type=float, default=7.0, help="window length, days (default 7)")
    ap.add_argument("--resolution", type=int, default=9)
    args = ap.parse_args(argv)
    loaded = load_target(args.target, no_indicators=True, resolution=args.resolution)
    if loaded is None:
        return 0
    events, grid, _, _, start, end = loaded  # without indicators: the target events only
    out = headroom(events, grid, start, end, args.horizon)
    print(f"{args.target}, {args.horizon:g}-day windows from {start} to {end}, {len(grid)} cells:")
    print(out.round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
