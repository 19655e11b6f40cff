"""Compact vs greedy patrol zones on real data (Chicago 2017, NYC shootings), KDEHotspot 7-day forecasts, H3 res 9.

For several forecast origins, prints the share of the forecast risk captured by
(a) compact zones (``mode="compact"``), (b) the older greedy strings
(``mode="greedy"``), (c) the same number of best cells with no constraint, and
the zones' diameters. Needs ../shared/data (outside the repository).

Run: ``python examples/zones_compare.py``
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

import riskgrid as rg
from riskgrid.models import KDEHotspot

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CASES = {
    "chicago_all": ("chicago_2016_2017.parquet", None, ["2017-03-01", "2017-06-01", "2017-09-01", "2017-12-01"]),
    "chicago_burglary": ("chicago_2016_2017.parquet", "BURGLARY", ["2017-03-01", "2017-06-01", "2017-09-01", "2017-12-01"]),
    "nyc_shootings": ("nyc_shootings_2006_2019.parquet", None, ["2018-03-01", "2018-06-01", "2018-09-01", "2018-12-01"]),
}
SETTINGS = [dict(n_zones=4, max_cells=7, min_gap_rings=1), dict(n_zones=4, max_cells=12, min_gap_rings=1, max_diameter_m=1000.0)]


def run_case(name, fname, category, origins):
    path = DATA / fname
    if not path.exists():
        print(f"skipped {name}: {path} not found")
        return []
    events = rg.read_events(path, category="category")
    if category:
        events = events.select(category)
    grid = rg.HexGrid.from_events(events, resolution=9)
    rows = []
    for day in origins:
        risk = KDEHotspot(bandwidth_m=200.0, window_days=365).fit(events, grid, end=day).predict(day, horizon_days=7)
        for s in SETTINGS:
            t0 = time.perf_counter()
            comp = rg.select_zones(risk, grid, mode="compact", **s)
            t_comp = time.perf_counter() - t0
            g = {k: v for k, v in s.items() if k != "max_diameter_m"}
            greedy = rg.select_zones(risk, grid, mode="greedy", **g)
            rows.append({
                "case": name, "origin": day, "n_cells_grid": len(grid), "max_cells": s["max_cells"],
                "max_diameter_m": round(comp.params["max_diameter_m"]),
                "compact_share": comp.captured_share, "compact_cells": comp.n_cells,
                "compact_best_same_area": comp.best_unconstrained_share,
                "greedy_share": greedy.captured_share, "greedy_cells": greedy.n_cells,
                "greedy_best_same_area": greedy.best_unconstrained_share,
                "compact_max_diam_m": max(z.diameter_m for z in comp.zones),
                "greedy_max_diam_m": max(z.diameter_m for z in greedy.zones),
                "compact_exact": all(z.exact for z in comp.zones), "compact_s": t_comp,
            })
    return rows


def main():
    rows = []
    for name, (fname, cat, origins) in CASES.items():
        rows += run_case(name, fname, cat, origins)
    if not rows:
        return
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(df.round(4).to_string(index=False))
    print()
    agg = df.groupby(["case", "max_cells"])[["compact_share", "greedy_share", "compact_best_same_area", "greedy_best_same_area",
                                             "compact_max_diam_m", "greedy_max_diam_m", "compact_s"]].mean()
    print(agg.round(4).to_string())


if __name__ == "__main__":
    main()
