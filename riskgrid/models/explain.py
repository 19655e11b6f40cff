"""Why a cell (or a patrol zone) is forecast where it is: background vs triggered parts and the events behind them.

Every count model of riskgrid forecasts a cell's expected number of events in
``[start, start + horizon)`` as a sum: a long-term *background* part plus,
for the self-exciting and near-repeat models, a short-term *triggered* part
that is itself a sum over past events. :meth:`RiskModel.explain
<riskgrid.models.RiskModel.explain>` returns that decomposition as an
:class:`Explanation`:

* ``cells``: one row per explained cell, ``risk = background + triggered``
  (expected events in the window, or the model's score units);
* ``contributions``: one row per (cell, past event) with a non-zero share of
  the cell's forecast: the event's row label and id, time, category, distance
  from the cell centre (metres), the part it belongs to and its contribution
  (same units as ``risk``).

What "background" and "triggered" mean per model:

================  ===========================================  ==========================================
model             background                                   triggered (listed event by event)
================  ===========================================  ==========================================
GridHawkes        ``mu_c * horizon`` (smoothed per-cell rate)  each past event's offspring expected in
                                                               the cell (theta, decay, ring weight)
SEPP              KDE background integrated over the cell      each past event's trigger kernel
                                                               integrated over the cell and window
NearRepeat        far-band Knox excess (same for every cell)   each event's near-band Knox excess
ProspectiveHot.   none                                         each event's ``1/(1+d)/(1+weeks)`` share
CountHotspot      everything (listed: each event in the cell)  none
KDEHotspot        everything (listed: each event's kernel      none
                  mass at the cell centre)
================  ===========================================  ==========================================

The parts and the listed contributions are recomputed from the fitted
parameters independently of ``predict``; the tests check that they add up to
the forecast (relative 1e-9) and that each contribution equals a naive
recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Explanation", "Parts", "event_table"]

#: the driving events of a zone: the fewest (largest first) that make up this share of its event-attributed forecast
DRIVING_SHARE = 0.5
#: an event-attributed part below this share of the zone's forecast (e.g. collapsed triggering) drives nothing
MIN_ATTRIBUTED_SHARE = 0.01


@dataclass
class Parts:
    """What a model's ``_explain_parts`` returns (arrays over the explained cells / contributions).

    ``background``, ``triggered``: per explained cell; ``pos``: explained
    cell (0..n_sel-1) of each contribution; ``event``: position of the
    contributing event in the model's training :class:`~riskgrid.EventSet`
    (``model.training_events_``); ``value``: its contribution; ``part``:
    ``"background"`` or ``"triggered"`` per contribution.
    """

    background: np.ndarray
    triggered: np.ndarray
    pos: np.ndarray
    event: np.ndarray
    value: np.ndarray
    part: np.ndarray


def concat_parts(background, triggered, rows) -> Parts:
    """Build :class:`Parts` from per-cell arrays and a list of ``(pos, event, value, part)`` row blocks."""
    if rows:
        pos = np.concatenate([np.full(len(r[1]), r[0], dtype=np.int64) for r in rows])
        ev = np.concatenate([np.asarray(r[1], dtype=np.int64) for r in rows])
        val = np.concatenate([np.asarray(r[2], dtype=np.float64) for r in rows])
        part = np.concatenate([np.full(len(r[1]), r[3], dtype=object) for r in rows])
    else:
        pos, ev, val, part = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object))
    keep = val != 0.0
    return Parts(np.asarray(background, dtype=np.float64), np.asarray(triggered, dtype=np.float64),
                 pos[keep], ev[keep], val[keep], part[keep])


def event_table(events, idx: np.ndarray, grid=None) -> pd.DataFrame:
    """Identity of the events at positions ``idx`` of ``events``: row label, id, time, category, lat, lon (and x, y in metres)."""
    idx = np.asarray(idx, dtype=np.int64)
    out = pd.DataFrame({
        "event": np.asarray(events.index)[idx],
        "time": pd.DatetimeIndex(events.timestamps.iloc[idx]) if len(idx) else pd.DatetimeIndex([]),
        "category": np.asarray(events.categories, dtype=object)[events.codes[idx]] if len(idx) else [],
        "lat": events.lat[idx],
        "lon": events.lon[idx],
    })
    extra = getattr(events, "extra", None)
    id_col = (getattr(events, "validation", None) or {}).get("id_column")
    if extra is not None and id_col in getattr(extra, "columns", ()):
        out.insert(1, "event_id", np.asarray(extra[id_col])[idx])
    else:
        out.insert(1, "event_id", out["event"].to_numpy())
    if grid is not None:
        x, y = events.xy(grid.projection)
        out["x_m"], out["y_m"] = x[idx], y[idx]
    return out


@dataclass
class Explanation:
    """Decomposition of a forecast into background and triggered parts, with the events behind it.

    Attributes
    ----------
    cells : DataFrame
        One row per explained cell (index: cell position in the grid):
        ``h3``, ``risk``, ``background``, ``triggered``, ``background_share``
        (``background / risk``; NaN where risk is 0).
    contributions : DataFrame
        One row per (explained cell, past event) with a non-zero
        contribution, largest first within each cell: ``cell``, ``h3``,
        ``event`` (row label of the event table), ``event_id``, ``time``,
        ``category``, ``lat``, ``lon``, ``distance_m`` (event to cell centre,
        metres), ``part``, ``contribution`` (units of ``risk``), ``share``
        (contribution / the cell's risk).
    model, units : str
        The model and the units of ``risk`` (expected events in the window
        for every model but NearRepeat, whose forecast is a score).
    start, horizon_days : pandas.Timestamp, float
        The forecast window ``[start, start + horizon_days)``.
    """

    cells: pd.DataFrame
    contributions: pd.DataFrame
    model: str
    units: str
    start: pd.Timestamp
    horizon_days: float
    meta: dict = field(default_factory=dict)

    def top(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` largest contributions of each explained cell."""
        c = self.contributions
        return c.groupby("cell", sort=False, group_keys=False).head(int(n)).reset_index(drop=True)

    def by_zone(self, cell_zone, top: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Zone-level summary and top driving events.

        Parameters
        ----------
        cell_zone : array of int (n_cells of the grid,)
            Zone number of each grid cell (1..n), 0 or -1 outside every zone.
            Every zone cell must be among the explained cells.
        top : int
            Events listed per zone.

        Returns
        -------
        summary : DataFrame indexed by zone
            ``n_cells``, ``risk``, ``background``, ``triggered``,
            ``background_share``, ``top_categories`` (the categories of the
            event-attributed part, largest share first, as ``"LABEL 55%; ..."``;
            ``category_shares`` holds the same as ``(label, share)`` pairs),
            ``n_driving_events`` (the fewest events, largest first, that make
            up half of the zone's event-attributed forecast; none when that
            part is itself under 1 % of the zone's forecast), ``driving_from``
            / ``driving_to`` (their first and last dates).
        events : DataFrame
            The ``top`` events of each zone by their contribution summed over
            the zone's cells: ``zone``, ``rank`` (1 = largest), the event's
            identity, ``part``, ``contribution``, ``share_of_zone``,
            ``distance_m`` (to the nearest zone cell centre).
        """
        cz = np.asarray(cell_zone)
        zone_cells = {int(z): np.flatnonzero(cz == z) for z in np.unique(cz) if z > 0}
        missing = sorted(set(np.concatenate(list(zone_cells.values())) if zone_cells else []) - set(self.cells.index))
        if missing:
            raise ValueError(f"zone cells {missing[:5]} were not explained; pass cells=every zone cell to explain()")
        rows, lists = [], []
        contrib = self.contributions
        for z, cells in zone_cells.items():
            c = self.cells.loc[cells]
            risk, bg, trig = float(c["risk"].sum()), float(c["background"].sum()), float(c["triggered"].sum())
            sub = contrib[contrib["cell"].isin(cells)]
            ident = ["event", "event_id", "time", "category", "lat", "lon"]
            agg = (sub.groupby("event", sort=False)
                   .agg(**{k: (k, "first") for k in ident[1:]}, part=("part", "first"),
                        contribution=("contribution", "sum"), distance_m=("distance_m", "min"))
                   .reset_index().sort_values(["contribution", "time"], ascending=[False, False], kind="mergesort"))
            attributed = float(agg["contribution"].sum())
            live = attributed > 0 and attributed >= MIN_ATTRIBUTED_SHARE * risk
            cum = np.cumsum(agg["contribution"].to_numpy())
            n_drive = int(np.searchsorted(cum, DRIVING_SHARE * attributed, side="left")) + 1 if live else 0
            driving = agg.iloc[:n_drive]
            cats = agg.groupby("category", sort=False)["contribution"].sum().sort_values(ascending=False, kind="mergesort")
            pairs = [(str(k), float(v / attributed)) for k, v in cats.head(3).items()] if attributed > 0 else []
            top_cats = "; ".join(f"{k} {v:.0%}" for k, v in pairs)
            rows.append({
                "zone": z, "n_cells": int(cells.size), "risk": risk, "background": bg, "triggered": trig,
                "background_share": bg / risk if risk > 0 else np.nan, "top_categories": top_cats,
                "category_shares": pairs,
                "n_driving_events": int(len(driving)),
                "driving_from": str(driving["time"].min().date()) if len(driving) else "",
                "driving_to": str(driving["time"].max().date()) if len(driving) else "",
            })
            head = agg.head(int(top)).copy()
            head.insert(0, "rank", np.arange(1, len(head) + 1))
            head.insert(0, "zone", z)
            head["share_of_zone"] = head["contribution"] / risk if risk > 0 else np.nan
            lists.append(head)
        summary = pd.DataFrame(rows).set_index("zone") if rows else pd.DataFrame(
            columns=["n_cells", "risk", "background", "triggered", "background_share", "top_categories",
                     "category_shares", "n_driving_events", "driving_from", "driving_to"])
        events = pd.concat(lists, ignore_index=True) if lists else pd.DataFrame(
            columns=["zone", "rank", "event", "event_id", "time", "category", "lat", "lon", "part", "contribution",
                     "distance_m", "share_of_zone"])
        return summary, events


def build_explanation(model, parts: Parts, cells: np.ndarray, start_days: float, horizon_days: float,
                      units: str) -> Explanation:
    """Assemble an :class:`Explanation` from a model's :class:`Parts` for the grid cells ``cells``."""
    from ..events import EventSet

    grid, events = model.grid_, model.training_events_
    risk = parts.background + parts.triggered
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(risk > 0, parts.background / np.where(risk > 0, risk, 1.0), np.nan)
    table = pd.DataFrame({"h3": grid.cell_ids[cells], "risk": risk, "background": parts.background,
                          "triggered": parts.triggered, "background_share": share}, index=pd.Index(cells, name="cell"))
    ev = event_table(events, parts.event, grid)
    cx, cy = grid.centroids_xy
    cell_of = cells[parts.pos]
    ev.insert(0, "h3", grid.cell_ids[cell_of])
    ev.insert(0, "cell", cell_of)
    ev["distance_m"] = np.hypot(ev.pop("x_m").to_numpy() - cx[cell_of], ev.pop("y_m").to_numpy() - cy[cell_of])
    ev["part"] = parts.part
    ev["contribution"] = parts.value
    cell_risk = risk[parts.pos]
    ev["share"] = np.where(cell_risk > 0, parts.value / np.where(cell_risk > 0, cell_risk, 1.0), np.nan)
    # largest first within each cell, cells in the order asked
    ev = ev.iloc[np.lexsort((-ev["contribution"].to_numpy(), parts.pos))].reset_index(drop=True)
    start = EventSet.origin + pd.to_timedelta(start_days, unit="D")
    return Explanation(cells=table, contributions=ev, model=model.model_name, units=units, start=start,
                       horizon_days=float(horizon_days))
