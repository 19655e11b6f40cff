"""Near-repeat (Knox) analysis of Chicago burglaries, 2016-2017.

Reads ``../shared/data/chicago_2016_2017.parquet`` (relative to the
repository), keeps the BURGLARY events, runs the Knox test with 999
permutations on Near Repeat Calculator style bands and writes the tidy table
(CSV), a heat map (PNG) and a NearRepeat risk map for 2018-01-01 (GeoJSON)
to ``out/knox_chicago/``.

Run: ``.venv/bin/python examples/knox_chicago.py``
"""

from __future__ import annotations

import sys
import time

import numpy as np

import riskgrid as rg
from riskgrid.commands.knox import plot_knox
from riskgrid.models import NearRepeat

from _chicago import burglaries  # noqa: E402  (examples/ is on sys.path when run as a script)

SPACE_M = [0, 1, 100, 200, 300, 400, np.inf]
TIME_DAYS = [0, 7, 14, 21, 28, np.inf]


def main() -> int:
    loaded = burglaries("knox_chicago")
    if loaded is None:
        return 0
    events, out = loaded
    print(f"Chicago burglaries: {len(events):,} events, {events.start} → {events.end}")

    t0 = time.perf_counter()
    res = rg.knox_test(events, SPACE_M, TIME_DAYS, n_permutations=999, seed=2016)
    elapsed = time.perf_counter() - t0
    print(res)
    print(f"{res.n_close_pairs:,} pairs within 400 m; Knox test with 999 permutations took {elapsed:.2f} s")

    res.to_frame().to_csv(out / "knox_burglary.csv", index=False)
    plot_knox(res, str(out / "knox_burglary.png"), title="Chicago burglary 2016-2017: Knox ratios")

    grid = rg.HexGrid.from_events(events, resolution=9, buffer_rings=0)
    model = NearRepeat.from_knox(res, alpha=0.05).fit(events, grid)
    risk = model.predict(start="2018-01-01", horizon_days=7)
    top = risk.sortby(risk, ascending=False)[:5]
    print("Significant excess (ratio - 1) used by NearRepeat:")
    print(np.array2string(model.excess_, precision=2, suppress_small=True))
    print("Top 5 cells for the week from 2018-01-01 (near-repeat score):")
    for h3, v in zip(top["h3"].values, top.values):
        print(f"  {h3}  {v:.2f}")
    import json

    with open(out / "near_repeat_risk.geojson", "w") as fh:
        json.dump(grid.to_geojson({"risk": risk.values}), fh)
    print(f"wrote {out}/knox_burglary.csv, knox_burglary.png, near_repeat_risk.geojson")
    return 0


if __name__ == "__main__":
    sys.exit(main())
