"""Grid Hawkes (Mohler 2015 + neighbour spill-over) on Chicago burglaries, 2016-2017.

1. Fits riskgrid.models.GridHawkes on 2016 (end = 2017-01-01) with
   spillover_rings = 0 (the PredPol / Mohler et al. 2015 model), 1 and 2, and
   prints the fitted parameters.
2. Forecasts each week of 2017: every Sunday the model is **refitted on the
   trailing 365 days** (``time_window_days=365``) and predicts the expected
   number of burglaries per H3 cell for the next 7 days. The weekly hit rate at
   5 % coverage (share of the week's burglaries inside the 5 % of cells with
   the highest forecast) is compared with a 365-day count hotspot map.
3. Writes a bar plot of the spill-over profile (share of offspring per ring)
   to ``out/grid_hawkes_chicago/spillover_profile.png`` and the weekly table
   to ``out/grid_hawkes_chicago/weekly_hit_rate.csv``.

Run from the repository root::

    .venv/bin/python examples/grid_hawkes_chicago.py
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np
import pandas as pd

import riskgrid as rg
from riskgrid.models import CountHotspot, GridHawkes

from _chicago import burglaries  # noqa: E402  (examples/ is on sys.path when run as a script)
COVERAGE = 0.05


def hit_rate(risk: np.ndarray, cells_of_events: np.ndarray, coverage: float = COVERAGE) -> float:
    """Share of the events whose cell is among the top ``coverage`` share of cells by risk."""
    n_flag = max(1, math.ceil(coverage * risk.size))
    flagged = np.zeros(risk.size, bool)
    flagged[np.argsort(-risk, kind="stable")[:n_flag]] = True
    return float(flagged[cells_of_events].mean()) if cells_of_events.size else float("nan")


def describe(name: str, m: GridHawkes, seconds: float) -> list[str]:
    prof = ", ".join(f"{p:.3f}" for p in m.spillover_profile_)
    return [
        f"{name}: {m.n_events_used_:,} events, window {m.window_days_:.0f} days, "
        f"{m.n_iter_} EM steps, converged={m.converged_}, {seconds:.1f} s",
        f"  theta (branching ratio)  {m.theta_:.4f}",
        f"  omega                    {m.omega_:.4f} / day -> mean delay {1 / m.omega_:.1f} days",
        f"  w_ (one cell at ring r)  {np.array2string(m.w_, precision=4)}",
        f"  share of offspring/ring  [{prof}]",
        f"  background               {m.mu_.sum():.2f} events/day over {m.mu_.shape[1]} cells",
        f"  log-likelihood           {m.log_likelihood_:.1f}",
    ]


def main() -> int:
    loaded = burglaries("grid_hawkes_chicago")
    if loaded is None:
        return 0
    events, out = loaded
    grid = rg.HexGrid.from_events(events, resolution=9, buffer_rings=1)
    print(f"{len(events):,} burglaries {events.start:%Y-%m-%d} .. {events.end:%Y-%m-%d}; {grid}")

    # ------------------------------------------------------------ 1. fit on 2016
    fits, seconds = {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rg.ConvergenceWarning)
        for R in (0, 1, 2):
            t0 = time.perf_counter()
            fits[R] = GridHawkes(spillover_rings=R).fit(events, grid, end="2017-01-01")
            seconds[R] = time.perf_counter() - t0
    for w in caught:
        print(f"warning: {w.message}")
    print("\nFitted on 2016 (end = 2017-01-01)")
    for R, m in fits.items():
        print("\n".join(describe(f"GridHawkes(spillover_rings={R})", m, seconds[R])))
    # held-out January 2017; cells without a 2016 burglary have mu = 0 and (far from
    # recent events) zero intensity, so the score is taken on cells with a background
    held = events.between("2017-01-01", "2017-02-01")
    seen = fits[0].mu_.sum(axis=0) > 0
    cell_held = grid.assign(held)
    keep = (cell_held >= 0) & seen[np.maximum(cell_held, 0)]
    held_seen = rg.EventSet.from_frame(held.to_frame()[keep], category="category")
    print(f"\nHeld-out log-likelihood per event, January 2017 (fit on 2016, no refit; {keep.sum()} of "
          f"{(cell_held >= 0).sum()} burglaries, those in cells with a 2016 burglary):")
    for R, m in fits.items():
        print(f"  rings={R}: {m.score(held_seen):.4f}")

    # ------------------------------------------------------------ 2. weekly forecasts in 2017
    sundays = pd.date_range("2017-01-01", "2017-12-24", freq="W-SUN")
    cell_all = grid.assign(events)
    rows = []
    t_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rg.ConvergenceWarning)
        for origin in sundays:
            o = events.to_days(origin)
            wk = (events.t >= o) & (events.t < o + 7) & (cell_all >= 0)
            row = {"week_start": origin.date(), "n_events": int(wk.sum())}
            for name, model in (
                ("hawkes_r1", GridHawkes(spillover_rings=1, time_window_days=365)),
                ("hawkes_r0", GridHawkes(spillover_rings=0, time_window_days=365)),
                ("count_365d", CountHotspot(window_days=365)),
            ):
                risk = model.fit(events, grid, end=origin).predict(origin, horizon_days=7).values
                row[name] = hit_rate(risk, cell_all[wk])
                if name == "hawkes_r1":
                    row["theta_r1"] = model.theta_
                    row["expected_r1"] = float(risk.sum())
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "weekly_hit_rate.csv", index=False)
    elapsed = time.perf_counter() - t_start
    print(f"\nWeekly forecasts for 2017 ({len(table)} weeks, refit every Sunday on the trailing 365 days, "
          f"{elapsed:.0f} s): hit rate at {COVERAGE:.0%} of {len(grid)} cells")
    monthly = table.assign(month=pd.to_datetime(table.week_start).dt.strftime("%Y-%m")).groupby("month").agg(
        weeks=("n_events", "size"), burglaries=("n_events", "sum"), expected_r1=("expected_r1", "sum"),
        hawkes_r1=("hawkes_r1", "mean"), hawkes_r0=("hawkes_r0", "mean"), count_365d=("count_365d", "mean"),
        theta_r1=("theta_r1", "mean"))
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(monthly.to_string())
    pooled = {k: float(np.average(table[k], weights=table.n_events)) for k in ("hawkes_r1", "hawkes_r0", "count_365d")}
    print("mean weekly hit rate:  " + ", ".join(f"{k} {table[k].mean():.3f}" for k in pooled))
    print("pooled over events:    " + ", ".join(f"{k} {v:.3f}" for k, v in pooled.items()))

    # ------------------------------------------------------------ 3. spill-over profile plot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    m2 = fits[2]
    rings = np.arange(m2.w_.size)
    ax.bar(rings - 0.2, fits[2].spillover_profile_, width=0.4, label="share of offspring in ring r")
    ax.bar(rings + 0.2, fits[2].w_, width=0.4, label="w_[r] (one cell of ring r)")
    ax.set_xticks(rings)
    ax.set_xlabel("H3 ring distance from the triggering event's cell (res 9, ~200 m edge)")
    ax.set_ylabel("share")
    ax.set_title(f"Chicago burglary 2016: spill-over profile (theta={m2.theta_:.3f}, "
                 f"1/omega={1 / m2.omega_:.1f} d)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "spillover_profile.png", dpi=120)
    print(f"\nwrote {out / 'spillover_profile.png'} and {out / 'weekly_hit_rate.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
