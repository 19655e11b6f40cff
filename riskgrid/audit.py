"""Audit of the exposure log: who gets flagged, how often, how persistently, and on what evidence.

Predictive policing can close a feedback loop: patrols find more crime where
they patrol, those records raise the forecast there, and the same
neighbourhoods are flagged night after night (Lum & Isaac 2016, "To predict
and serve?"; Ensign et al. 2018, "Runaway feedback loops in predictive
policing"). Records police *discovered* themselves (stops, narcotics arrests)
drive that loop; calls from residents do not. :func:`audit_exposure` reads
the exposure log (:mod:`riskgrid.exposure`) and reports:

* per cell and per region (user polygons, cells assigned by centroid): the
  number of flags over the period, the share of runs with a flag, the
  persistence (longest stretch of consecutive runs with a flag; consecutive
  in the log's run sequence, a night without a run is no break), and the
  share of discovered records in the training data behind the flags
  (``n_train_discovered / n_train`` summed over the flagged rows, when the
  log carries those counts);
* concentration: the Gini coefficient of the flag counts over all cells of
  the study area (0 = every cell flagged equally often, towards 1 = the same
  few cells every time) and its trend (Gini of the cumulative counts after
  every run);
* a **warning** for every region whose flag share keeps rising while its
  share of resident-reported events does not (rule in
  :func:`audit_exposure`).

:func:`write_audit` writes the tables as CSV, a JSON summary and a PNG map.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import h3
import numpy as np
import pandas as pd

__all__ = ["AuditResult", "audit_exposure", "gini", "longest_streak", "assign_regions", "write_audit", "run_audit"]

NO_REGION = ""


def gini(counts) -> float:
    """Gini coefficient of non-negative counts: mean absolute difference / (2 x mean).

    0 when all counts are equal (or all zero), ``1 - 1/n`` when one cell holds
    everything.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    n = x.size
    if n == 0 or x.sum() <= 0:
        return 0.0
    if (x < 0).any():
        raise ValueError("gini needs non-negative counts")
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * x.sum()))


def longest_streak(flags) -> int:
    """Longest run of consecutive True values along the last axis (int, or int array for 2-D input)."""
    f = np.asarray(flags, dtype=bool)
    if f.ndim == 1:
        f = f[None, :]
        one = True
    else:
        one = False
    best = np.zeros(f.shape[0], dtype=np.int64)
    cur = np.zeros(f.shape[0], dtype=np.int64)
    for t in range(f.shape[1]):
        cur = np.where(f[:, t], cur + 1, 0)
        best = np.maximum(best, cur)
    return int(best[0]) if one else best


# ---------------------------------------------------------------- regions
def _rings_contain(lon, lat, rings) -> np.ndarray:
    """Even-odd rule over all rings of one polygon (exterior and holes)."""
    inside = np.zeros(lon.size, dtype=bool)
    for ring in rings:
        r = np.asarray(ring, dtype=float)
        x0, y0 = r[:-1, 0], r[:-1, 1]
        x1, y1 = r[1:, 0], r[1:, 1]
        for a, b, c, d in zip(x0, y0, x1, y1):
            crosses = (b > lat) != (d > lat)
            with np.errstate(divide="ignore", invalid="ignore"):
                xint = a + (lat - b) * (c - a) / (d - b)
            inside ^= crosses & (lon < xint)
    return inside


def _load_regions(regions) -> dict:
    if regions is None:
        return {"type": "FeatureCollection", "features": []}
    if isinstance(regions, (str, os.PathLike)):
        with open(regions, encoding="utf-8") as fh:
            regions = json.load(fh)
    if not isinstance(regions, dict) or regions.get("type") != "FeatureCollection":
        raise ValueError("regions must be a GeoJSON FeatureCollection (dict or path) of Polygon/MultiPolygon features")
    return regions


def _region_names(fc: dict, key: str | None) -> list[str]:
    names = []
    for k, f in enumerate(fc["features"]):
        props = f.get("properties") or {}
        if key is not None:
            if key not in props:
                raise ValueError(f"region feature {k} has no property {key!r} (properties: {sorted(props)})")
            names.append(str(props[key]))
        else:
            v = next((props[c] for c in ("name", "NAME", "region", "id", "district") if c in props), None)
            names.append(str(v) if v is not None else f"region {k + 1}")
    if len(set(names)) != len(names):
        raise ValueError(f"region names must be unique, got {names}")
    return names


def assign_regions(lat, lon, regions, key: str | None = None) -> np.ndarray:
    """Region name of every point (the first polygon containing it; ``""`` outside all).

    Parameters
    ----------
    lat, lon : arrays of float
        Points in degrees (cell centroids).
    regions : dict or path
        GeoJSON FeatureCollection of Polygon / MultiPolygon features (lon/lat).
    key : str, optional
        Property naming each region (default: ``name``, ``region``, ``id`` or
        ``district``, else ``"region k"``).
    """
    fc = _load_regions(regions)
    names = _region_names(fc, key)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    out = np.full(lat.size, NO_REGION, dtype=object)
    for name, f in zip(names, fc["features"]):
        g = f.get("geometry") or {}
        if g.get("type") == "Polygon":
            polys = [g["coordinates"]]
        elif g.get("type") == "MultiPolygon":
            polys = g["coordinates"]
        else:
            raise ValueError(f"region {name!r}: geometry must be Polygon or MultiPolygon, got {g.get('type')!r}")
        inside = np.zeros(lat.size, dtype=bool)
        for rings in polys:
            inside |= _rings_contain(lon, lat, rings)
        out[(out == NO_REGION) & inside] = name
    return out


# ---------------------------------------------------------------- audit
@dataclass
class AuditResult:
    """What :func:`audit_exposure` found.

    Attributes
    ----------
    runs : list of str
        Run dates covered (``YYYY-MM-DD``), in order.
    cells : DataFrame
        Per cell: ``h3``, ``region``, ``n_flags``, ``share_of_runs``,
        ``longest_streak``, ``n_zone_flags`` (flags inside a patrol zone),
        ``n_train``, ``n_train_discovered``, ``discovered_share``.
    regions : DataFrame
        Per region: ``region``, ``n_cells``, ``n_flags`` (cell flags),
        ``flag_share`` (of all cell flags), ``runs_flagged``,
        ``share_of_runs``, ``longest_streak``, ``discovered_share``,
        ``flag_share_change``, ``reported_share_change``, ``excess_share_end``
        (flag share minus reported share over the last third of the runs),
        ``warning``.
    per_run : DataFrame
        Per run and region: ``run_date``, ``region``, ``n_flags``,
        ``flag_share``, ``reported_share`` (NaN without events).
    concentration : DataFrame
        Per run: ``run_date``, ``gini_run`` (Gini of that run's flags),
        ``gini_cumulative`` (of the counts up to that run).
    gini : float
        Gini of the flag counts over the whole period.
    gini_trend : float
        Least-squares slope of ``gini_cumulative`` per run.
    warnings : list of str
    params : dict
    """

    runs: list
    cells: pd.DataFrame
    regions: pd.DataFrame
    per_run: pd.DataFrame
    concentration: pd.DataFrame
    gini: float
    gini_trend: float
    warnings: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready summary (no per-cell table)."""
        return {
            "runs": len(self.runs),
            "first_run": self.runs[0] if self.runs else None,
            "last_run": self.runs[-1] if self.runs else None,
            "n_cells": int(len(self.cells)),
            "n_cells_flagged": int((self.cells["n_flags"] > 0).sum()) if len(self.cells) else 0,
            "gini": self.gini,
            "gini_trend_per_run": self.gini_trend,
            "warnings": list(self.warnings),
            "regions": json.loads(self.regions.to_json(orient="records")),
            "params": dict(self.params),
        }


def _slope(y) -> float:
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    t = np.arange(y.size, dtype=float)[ok]
    y = y[ok]
    t = t - t.mean()
    return float(np.sum(t * (y - y.mean())) / np.sum(t * t))


def audit_exposure(log: pd.DataFrame, *, cells=None, regions=None, region_key: str | None = None, events=None,
                   reported_sources=("reported",), reported_window_days: float = 28.0, min_rise: float = 0.1,
                   start=None, end=None, name: str | None = None) -> AuditResult:
    """Flag counts, persistence, concentration and discovered shares from the exposure log.

    Parameters
    ----------
    log : DataFrame
        The exposure log (:func:`riskgrid.exposure.read_exposure`).
    cells : array of str, optional
        H3 ids of the whole study area (``grid.cell_ids``), so that cells
        never flagged count in the concentration; default: the cells in the log.
    regions : dict or path, optional
        GeoJSON FeatureCollection of user regions; cells are assigned by centroid.
    region_key : str, optional
        Property naming the regions (see :func:`assign_regions`).
    events : DataFrame, optional
        Event table with ``timestamp``, ``lat``, ``lon`` and optionally
        ``source``: the reported events (``source`` in ``reported_sources``;
        all rows without a ``source`` column) of the ``reported_window_days``
        before each run give each region's share of resident-reported events
        (an event counts for the region holding the centre of its H3 cell,
        as the flagged cells do).
    reported_sources : sequence of str
        ``source`` values that count as reported by residents.
    reported_window_days : float
        Look-back of the reported-event share, days.
    min_rise : float
        Warning rule, all three at once: (1) the least-squares change of the
        region's per-run flag share over the period (slope x (runs - 1)) is at
        least ``min_rise`` (absolute share, default 0.1 = 10 points); (2) the
        change of its reported-event share over the same runs is at most half
        of that; (3) over the last third of the runs its flag share exceeds
        its reported-event share by at least ``min_rise`` (a region merely
        returning to its fair share is not warned about). Needs ``regions``,
        ``events`` and at least 3 runs.
    start, end : date-like, optional
        Period (inclusive run dates).
    name : str, optional
        Keep one run name of the log.

    Returns
    -------
    AuditResult
    """
    need = {"run_date", "h3", "zone"}
    if not need <= set(log.columns):
        raise ValueError(f"log must have the columns {sorted(need)} (see riskgrid.exposure), got {list(log.columns)}")
    lg = log.copy()
    lg["run_date"] = lg["run_date"].astype(str)
    if name is not None and "name" in lg:
        lg = lg[lg["name"] == name]
    if start is not None:
        lg = lg[lg["run_date"] >= pd.Timestamp(start).strftime("%Y-%m-%d")]
    if end is not None:
        lg = lg[lg["run_date"] <= pd.Timestamp(end).strftime("%Y-%m-%d")]
    runs = sorted(lg["run_date"].unique().tolist())
    if cells is None:
        universe = np.array(sorted(lg["h3"].astype(str).unique()), dtype=object)
    else:
        universe = np.array(sorted(set(np.asarray(cells).astype(str).tolist())), dtype=object)
        extra = set(lg["h3"].astype(str)) - set(universe)
        if extra:
            raise ValueError(f"{len(extra)} flagged cell(s) of the log are not in cells, e.g. {sorted(extra)[:3]}")
    pos = {c: i for i, c in enumerate(universe)}
    run_pos = {r: i for i, r in enumerate(runs)}
    n_c, n_r = universe.size, len(runs)
    ci = lg["h3"].astype(str).map(pos).to_numpy(dtype=np.int64)
    ri = lg["run_date"].map(run_pos).to_numpy(dtype=np.int64)
    flags = np.zeros((n_c, n_r), dtype=bool)
    flags[ci, ri] = True  # a cell listed twice in one run (two jobs) is one flag
    n_flags = flags.sum(axis=1)
    zone_flags = np.zeros((n_c, n_r), dtype=bool)
    zmask = lg["zone"].to_numpy(dtype=np.int64) > 0
    zone_flags[ci[zmask], ri[zmask]] = True

    def _count(col):
        if col not in lg:
            return np.zeros(n_c, dtype=np.int64), np.zeros(n_c, dtype=bool)
        v = pd.to_numeric(lg[col], errors="coerce").to_numpy(dtype=float)
        known = np.isfinite(v)
        out = np.zeros(n_c, dtype=np.int64)
        np.add.at(out, ci[known], v[known].astype(np.int64))
        has = np.zeros(n_c, dtype=bool)
        has[ci[known]] = True
        return out, has

    n_train, has_train = _count("n_train")
    n_disc, _ = _count("n_train_discovered")

    lat = np.empty(n_c)
    lon = np.empty(n_c)
    for i, c in enumerate(universe):
        lat[i], lon[i] = h3.cell_to_latlng(c)
    fc = _load_regions(regions)
    region = assign_regions(lat, lon, fc, region_key) if fc["features"] else np.full(n_c, NO_REGION, dtype=object)

    with np.errstate(invalid="ignore", divide="ignore"):
        cell_disc_share = np.where(n_train > 0, n_disc / np.maximum(n_train, 1), np.nan)
    cells_df = pd.DataFrame({
        "h3": universe.astype(str), "lat": lat, "lon": lon, "region": region.astype(str),
        "n_flags": n_flags.astype(np.int64), "share_of_runs": n_flags / n_r if n_r else np.zeros(n_c),
        "longest_streak": longest_streak(flags) if n_c else np.zeros(0, dtype=np.int64),
        "n_zone_flags": zone_flags.sum(axis=1).astype(np.int64),
        "n_train": pd.array(np.where(has_train, n_train, 0), dtype="Int64"),
        "n_train_discovered": pd.array(np.where(has_train, n_disc, 0), dtype="Int64"),
        "discovered_share": cell_disc_share,
    })
    cells_df.loc[~has_train, ["n_train", "n_train_discovered"]] = pd.NA

    # concentration and its trend
    cum = np.cumsum(flags, axis=1)
    conc = pd.DataFrame({
        "run_date": runs,
        "gini_run": [gini(flags[:, t]) for t in range(n_r)],
        "gini_cumulative": [gini(cum[:, t]) for t in range(n_r)],
    })
    g_all = gini(n_flags)
    g_trend = _slope(conc["gini_cumulative"].to_numpy()) if n_r >= 2 else float("nan")

    # regions
    names = _region_names(fc, region_key) if fc["features"] else []
    total_flags_run = flags.sum(axis=0).astype(float)
    reported_share = _reported_shares(events, runs, universe, fc, region_key, names, reported_sources,
                                      reported_window_days)
    per_run_rows, reg_rows, warnings = [], [], []
    for nm in names:
        m = region == nm
        rf = flags[m].sum(axis=0).astype(float)
        any_run = flags[m].any(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share_run = np.where(total_flags_run > 0, rf / total_flags_run, np.nan)
        rep = reported_share.get(nm, np.full(n_r, np.nan))
        for t in range(n_r):
            per_run_rows.append({"run_date": runs[t], "region": nm, "n_flags": int(rf[t]), "flag_share": share_run[t],
                                 "reported_share": rep[t]})
        flag_change = _slope(share_run) * (n_r - 1) if n_r >= 3 else float("nan")
        rep_change = _slope(rep) * (n_r - 1) if n_r >= 3 else float("nan")
        third = max(1, n_r // 3)
        excess_end = _nanmean(share_run[-third:]) - _nanmean(rep[-third:]) if n_r else float("nan")
        warn = bool(n_r >= 3 and np.isfinite(flag_change) and np.isfinite(rep_change) and np.isfinite(excess_end)
                    and flag_change >= min_rise and rep_change <= 0.5 * flag_change and excess_end >= min_rise)
        if warn:
            warnings.append(
                f"region {nm!r}: its share of the flagged cells rose by {flag_change:+.1%} over {n_r} runs "
                f"({runs[0]} to {runs[-1]}) while its share of resident-reported events changed by {rep_change:+.1%}; "
                f"check for a feedback loop (discovered records in the training data behind its flags: "
                f"{_ratio(n_disc[m & has_train].sum(), n_train[m & has_train].sum()):.0%})")
        reg_rows.append({
            "region": nm, "n_cells": int(m.sum()), "n_flags": int(n_flags[m].sum()),
            "flag_share": float(n_flags[m].sum() / n_flags.sum()) if n_flags.sum() else 0.0,
            "runs_flagged": int(any_run.sum()), "share_of_runs": float(any_run.mean()) if n_r else 0.0,
            "longest_streak": longest_streak(any_run) if n_r else 0,
            "discovered_share": _ratio(n_disc[m & has_train].sum(), n_train[m & has_train].sum()),
            "flag_share_change": flag_change, "reported_share_change": rep_change, "excess_share_end": excess_end,
            "warning": warn,
        })
    reg_cols = ["region", "n_cells", "n_flags", "flag_share", "runs_flagged", "share_of_runs", "longest_streak",
                "discovered_share", "flag_share_change", "reported_share_change", "excess_share_end", "warning"]
    params = {"region_key": region_key, "reported_sources": list(reported_sources), "reported_window_days": float(reported_window_days),
              "min_rise": float(min_rise), "name": name, "n_cells_outside_regions": int((region == NO_REGION).sum())
              if names else None}
    return AuditResult(
        runs=runs, cells=cells_df, regions=pd.DataFrame(reg_rows, columns=reg_cols),
        per_run=pd.DataFrame(per_run_rows, columns=["run_date", "region", "n_flags", "flag_share", "reported_share"]),
        concentration=conc, gini=g_all, gini_trend=g_trend, warnings=warnings, params=params)


def _nanmean(v) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _ratio(a, b) -> float:
    return float(a) / float(b) if b else float("nan")


def _reported_shares(events, runs, universe, fc, region_key, names, reported_sources, window_days) -> dict:
    """Per region, per run: share of the reported events of the look-back window that lie in the region."""
    if events is None or not names or not runs:
        return {}
    need = {"timestamp", "lat", "lon"}
    if not need <= set(events.columns):
        raise ValueError(f"events must have the columns {sorted(need)} (and optionally source), got {list(events.columns)}")
    ev = events
    if "source" in ev.columns:
        ev = ev[ev["source"].isin(list(reported_sources))]
    from .grid import latlng_to_cells

    # each event goes to the region holding the centre of its H3 cell (at the log's resolution), as cells do
    res = h3.get_resolution(str(universe[0]))
    ts = pd.to_datetime(ev["timestamp"]).to_numpy()
    ev_cells = latlng_to_cells(ev["lat"].to_numpy(dtype=float), ev["lon"].to_numpy(dtype=float), res)
    uniq, inverse = np.unique(ev_cells, return_inverse=True)
    ll = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in uniq], dtype=float).reshape(-1, 2)
    ev_region = assign_regions(ll[:, 0], ll[:, 1], fc, region_key)[inverse.ravel()] if uniq.size else \
        np.zeros(0, dtype=object)
    out = {nm: np.full(len(runs), np.nan) for nm in names}
    win = np.timedelta64(int(round(window_days * 86400)), "s")
    for t, r in enumerate(runs):
        day = np.datetime64(pd.Timestamp(r).to_datetime64())
        w = (ts >= day - win) & (ts < day) & (ev_region != NO_REGION)
        tot = int(w.sum())
        if tot == 0:
            continue
        for nm in names:
            out[nm][t] = float(np.sum(w & (ev_region == nm)) / tot)
    return out


# ---------------------------------------------------------------- outputs
def write_audit(result: AuditResult, out_dir, regions=None, title: str | None = None) -> dict:
    """Write ``audit_cells.csv``, ``audit_regions.csv``, ``audit_per_run.csv``,
    ``audit_concentration.csv``, ``audit.json`` and ``audit_map.png`` into ``out_dir``.

    Returns ``{kind: path}``. The PNG shows every cell coloured by its share
    of runs flagged, with region outlines and names when ``regions`` is given.
    """
    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, df in (("cells", result.cells), ("regions", result.regions), ("per_run", result.per_run),
                     ("concentration", result.concentration)):
        p = out / f"audit_{kind}.csv"
        df.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
        paths[kind] = p
    p = out / "audit.json"
    p.write_text(json.dumps(result.summary(), indent=2, sort_keys=True, default=_json_default) + "\n", encoding="utf-8")
    paths["summary"] = p
    paths["map"] = write_audit_png(result, out / "audit_map.png", regions=regions, title=title)
    return paths


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"not JSON serialisable: {type(v)}")


def write_audit_png(result: AuditResult, path, regions=None, title: str | None = None, dpi: int = 110,
                    size_in: float = 7.0) -> Path:
    """PNG map of the share of runs each cell was flagged (deterministic, Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    cells = result.cells
    fig = Figure(figsize=(size_in, size_in), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.13, 0.08, 0.69, 0.82))
    cax = fig.add_axes((0.86, 0.15, 0.03, 0.66))
    polys = [np.array([(b, a) for a, b in h3.cell_to_boundary(c)]) for c in cells["h3"]]
    pc = PolyCollection(polys, array=cells["share_of_runs"].to_numpy(dtype=float), cmap="magma_r", edgecolors="face",
                        linewidths=0.05)
    pc.set_clim(0.0, 1.0)
    ax.add_collection(pc)
    if polys:
        pts = np.concatenate(polys)
        pad = 0.02 * max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1e-3)
        ax.set_xlim(pts[:, 0].min() - pad, pts[:, 0].max() + pad)
        ax.set_ylim(pts[:, 1].min() - pad, pts[:, 1].max() + pad)
        ax.set_aspect(1.0 / math.cos(math.radians(float(pts[:, 1].mean()))), adjustable="box", anchor="C")
    fc = _load_regions(regions)
    if fc["features"]:
        names = _region_names(fc, result.params.get("region_key"))
        warned = set(result.regions.loc[result.regions["warning"], "region"]) if len(result.regions) else set()
        for nm, f in zip(names, fc["features"]):
            g = f["geometry"]
            gp = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
            for rings in gp:
                ring = np.asarray(rings[0], dtype=float)
                ax.plot(ring[:, 0], ring[:, 1], color="#d62728" if nm in warned else "#1f77b4", linewidth=1.2)
            ring = np.asarray(gp[0][0], dtype=float)
            ax.annotate(nm + (" (!)" if nm in warned else ""), tuple(ring[:-1].mean(axis=0)), fontsize=8,
                        color="#d62728" if nm in warned else "#1f77b4", ha="center")
    cb = fig.colorbar(pc, cax=cax)
    cb.set_label("share of runs flagged")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    if title is None:
        r = result.runs
        title = f"Flags {r[0]} to {r[-1]} ({len(r)} runs), Gini {result.gini:.2f}" if r else "No runs in the log"
    ax.set_title(title, fontsize=10)
    fig.savefig(os.fspath(path), format="png", metadata={"Software": None})
    return Path(os.fspath(path))


def run_audit(out_root, *, regions=None, region_key: str | None = None, events=None, cells=None, out_dir=None,
              start=None, end=None, name: str | None = None, **kwargs) -> tuple[AuditResult, dict]:
    """Read the exposure log under ``out_root``, audit it and write the outputs (what ``riskgrid audit`` runs).

    Parameters
    ----------
    out_root : path
        Output root holding ``exposure/`` (:mod:`riskgrid.exposure`).
    regions : dict or path, optional
        GeoJSON FeatureCollection of regions (``--regions REGIONS.geojson``).
    region_key, events, cells, start, end, name, **kwargs
        As for :func:`audit_exposure`.
    out_dir : path, optional
        Where to write (default ``out_root/audit``).

    Returns
    -------
    (AuditResult, dict of paths written)
    """
    from .exposure import read_exposure

    log = read_exposure(out_root, start=start, end=end, name=name)
    fc = _load_regions(regions) if regions is not None else None
    res = audit_exposure(log, cells=cells, regions=fc, region_key=region_key, events=events, **kwargs)
    paths = write_audit(res, Path(os.fspath(out_root)) / "audit" if out_dir is None else out_dir, regions=fc)
    return res, paths
