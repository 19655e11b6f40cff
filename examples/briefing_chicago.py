"""A week of nightly runs on Chicago (all offences, 2017), the exposure log, its audit and the HTML briefing.

Each night from 2017-05-19 to 2017-06-01: KDEHotspot fit on the previous 365
days, a 7-day forecast, 4 compact patrol zones, the flagged cells appended to
the exposure log (with the number of training records per cell and how many
were police-discovered: NARCOTICS, WEAPONS VIOLATION, PUBLIC PEACE VIOLATION,
INTERFERENCE WITH PUBLIC OFFICER, LIQUOR LAW VIOLATION, PROSTITUTION,
GAMBLING, CONCEALED CARRY LICENSE VIOLATION are counted as discovered, as an
illustration). The last night's briefing is written to
``out/briefing_chicago/briefing.html`` with the audit of the log.

Needs ../shared/data (outside the repository). Run:
``python examples/briefing_chicago.py``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import riskgrid as rg
from riskgrid.audit import audit_exposure, write_audit
from riskgrid.exposure import append_exposure, exposure_table, read_exposure, source_counts
from riskgrid.models import KDEHotspot
from riskgrid.products import risk_dataset, write_png
from riskgrid.products.briefing import write_briefing, zone_flag_history, zone_map_png

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "chicago_2016_2017.parquet"
DISCOVERED = {"NARCOTICS", "WEAPONS VIOLATION", "PUBLIC PEACE VIOLATION", "INTERFERENCE WITH PUBLIC OFFICER",
              "LIQUOR LAW VIOLATION", "PROSTITUTION", "GAMBLING", "CONCEALED CARRY LICENSE VIOLATION"}
HORIZON = 7.0


def main():
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return
    out = ROOT / "out" / "briefing_chicago"
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_parquet(DATA, columns=["event_id", "timestamp", "lat", "lon", "category"])
    df["source"] = np.where(df["category"].isin(DISCOVERED), "discovered", "reported")
    events = rg.EventSet.from_frame(df, category="category")
    days = pd.date_range("2017-05-19", "2017-06-01", freq="D")
    grid = rg.HexGrid.from_events(events.between(None, events.to_days(days[0])), resolution=9)
    cell_all = grid.assign(df["lat"].to_numpy(), df["lon"].to_numpy())
    ts = df["timestamp"].to_numpy()
    for day in days:
        model = KDEHotspot(bandwidth_m=200.0, window_days=365).fit(events, grid, end=day)
        risk = model.predict(day, horizon_days=HORIZON)
        zs = rg.select_zones(risk, grid, n_zones=4, max_cells=7)
        w = (ts >= np.datetime64(day - pd.Timedelta(days=365))) & (ts < np.datetime64(day))
        n_tr, n_disc = source_counts(cell_all[w], df["source"].to_numpy()[w], len(grid))
        flagged = exposure_table(risk.values, grid.cell_ids, zs.cell_zone, top_n=50, n_train=n_tr, n_train_discovered=n_disc)
        append_exposure(out, day, flagged, model="KDEHotspot", horizon_days=HORIZON)
        print(f"{day:%Y-%m-%d}: zones capture {zs.captured_share:.2%} of the risk "
              f"(best same area {zs.best_unconstrained_share:.2%}), diameters "
              f"{', '.join(f'{z.diameter_m:.0f}' for z in zs.zones)} m")
    day = days[-1]
    # why: the model's own decomposition of each zone (explain) and the provenance of the records behind it
    cz = zs.cell_zone
    summary, drivers = model.explain(day, HORIZON, cells=np.flatnonzero(cz > 0)).by_zone(cz, top=10)
    drivers.to_csv(out / "zones_explained.csv", index=False)
    expl = {}
    for z in zs.zones:
        row = summary.loc[z.number]
        m = (ts >= np.datetime64(day - pd.Timedelta(days=365))) & (ts < np.datetime64(day)) & np.isin(cell_all, z.cells)
        expl[z.number] = {"background_share": float(row["background_share"]), "top_categories": row["category_shares"],
                          "n_events": int(row["n_driving_events"]), "first_event": row["driving_from"] or None,
                          "last_event": row["driving_to"] or None,
                          "discovered_share": float((df.loc[m, "source"] == "discovered").mean()) if m.any() else float("nan")}
    # recent skill: share of the next week's incidents inside the zones chosen at four earlier weekly origins
    shares, areas = [], []
    for k in range(1, 5):
        o = day - pd.Timedelta(days=7 * k + 7)
        r = KDEHotspot(bandwidth_m=200.0, window_days=365).fit(events, grid, end=o).predict(o, horizon_days=7)
        wk = (ts >= np.datetime64(o)) & (ts < np.datetime64(o + pd.Timedelta(days=7))) & (cell_all >= 0)
        obs = np.bincount(cell_all[wk], minlength=len(grid)).astype(float)
        shares.append(rg.zones_metric(r, obs, grid, n_zones=4, max_cells=7))
        areas.append(rg.select_zones(r, grid, n_zones=4, max_cells=7).area_km2 / (grid.area_m2.sum() / 1e6))
    skill = {"incidents of the following week inside the zones": f"{np.mean(shares):.1%} (4 weekly origins, "
                                                                  f"{min(shares):.1%} to {max(shares):.1%})",
             "share of the city's area in the zones": f"{np.mean(areas):.2%}",
             "ratio (PAI of the zones)": f"{np.mean(shares) / np.mean(areas):.1f}"}
    log = read_exposure(out)
    audit = audit_exposure(log, cells=grid.cell_ids)
    write_audit(audit, out)
    ds = risk_dataset(risk, zones=zs)
    png = out / "forecast.png"
    write_png(ds, png, zones=zs, grid=grid)
    path = write_briefing(out / "briefing.html", zs, forecast_start=day, horizon_days=HORIZON, map_png=png, city="Chicago",
                          model="KDEHotspot (200 m, 365 days)", units="incidents",
                          last_event=df.loc[ts < np.datetime64(day), "timestamp"].max(), explanations=expl,
                          trends=zone_flag_history(log, zs, last_n=7, before=day),
                          trend_label="share of the zone flagged in the previous runs", trend_percent=True, skill=skill,
                          skill_note="Measured on the four weeks before this run, same model and zone settings.",
                          audit=audit, zone_maps={z.number: zone_map_png(risk, grid, zs, z.number) for z in zs.zones})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
