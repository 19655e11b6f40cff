"""The briefing: one self-contained HTML page per run that analysts bring to the meeting.

:func:`render_briefing` fills the Jinja2 template ``templates/briefing.html.j2``
(autoescaped) with the map (a PNG embedded as base64, so the file opens with
no network), one table per patrol zone (where, how big, expected events and
their interval, why the zone was chosen, the trend over the last runs), the
model's recent backtest skill, data freshness, an optional audit section and
plain-language caveats. :func:`write_briefing` writes it atomically.

Everything except the zones is optional; what is not given is said to be
missing rather than left out silently.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h3
import numpy as np
import pandas as pd

__all__ = ["render_briefing", "write_briefing", "zone_flag_history", "zone_map_png", "CAVEATS"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: the caveats every briefing carries (plain language; more can be added per run)
CAVEATS = (
    "The numbers are expected counts of recorded incidents: an average of what the records of past weeks make "
    "likely in each area during the window, not a prediction that any particular incident will happen, nor that "
    "it will not happen elsewhere.",
    "They describe places and times, never people. Nothing in this briefing says that anyone living in, or passing "
    "through, a zone is more likely to offend; it is no ground to stop, search or question anyone.",
    "This is NOT a zero-tolerance initiative. Time in a zone is for being visible, solving problems with residents "
    "and businesses and building relationships, not for raising stop, citation or arrest counts.",
    "The forecast learns from police records. Where police patrol more, they record more (stops, narcotics "
    "arrests), and those records raise the forecast there again: a feedback loop. Incidents that are rarely "
    "reported do not show up at all. Read the audit section and the share of police-discovered records with that "
    "in mind.",
    "Zones are drawn to catch the most expected incidents within a compact area a patrol can cover; the hexagons "
    "just outside a zone can be almost as high. The map shows the whole forecast.",
    "Records can arrive late or be corrected: the forecast only knows the records up to the data date shown at the "
    "top.",
)


def _fmt_events(v) -> str:
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.1f}" if abs(v) < 10 else f"{v:.0f}"


def _fmt_count(v) -> str:
    """A bound of a count interval: whole numbers as such (3, not 3.0)."""
    v = float(v)
    return f"{v:.0f}" if math.isfinite(v) and v.is_integer() else _fmt_events(v)


def _pct(v) -> str:
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    return f"{100 * v:.1f}%" if abs(v) < 0.1 else f"{100 * v:.0f}%"


def _extent_m(h3_ids) -> float:
    """Largest great-circle distance between two vertices of the zone's hexagons, metres."""
    from ..geo import haversine_m

    pts = np.array([p for c in h3_ids for p in h3.cell_to_boundary(c)], dtype=float)
    if pts.shape[0] == 0:
        return float("nan")
    d = haversine_m(pts[:, None, 0], pts[:, None, 1], pts[None, :, 0], pts[None, :, 1])
    return float(d.max())


def _read_png(map_png) -> str | None:
    if map_png is None:
        return None
    if isinstance(map_png, (bytes, bytearray, memoryview)):
        data = bytes(map_png)
    else:
        data = Path(os.fspath(map_png)).read_bytes()
    if not data.startswith(_PNG_MAGIC):
        raise ValueError("map_png must be PNG bytes or the path of a PNG file (the data does not start with the PNG signature)")
    return base64.b64encode(data).decode("ascii")


def _per_zone(obj, name: str) -> dict:
    """Mapping zone number -> value, from a Mapping or a DataFrame with a ``zone`` column."""
    if obj is None:
        return {}
    if isinstance(obj, pd.DataFrame):
        if "zone" not in obj.columns:
            raise ValueError(f"{name} must have a 'zone' column (1-based zone numbers), got {list(obj.columns)}")
        return {int(r["zone"]): r.drop(labels="zone").to_dict() for _, r in obj.iterrows()}
    if isinstance(obj, Mapping):
        return {int(k): v for k, v in obj.items()}
    raise TypeError(f"{name} must be a mapping of zone number to values or a DataFrame with a 'zone' column")


def _categories_text(cats) -> str:
    if cats is None or (isinstance(cats, float) and math.isnan(cats)):
        return ""
    if isinstance(cats, str):
        return cats
    if isinstance(cats, Mapping):
        cats = list(cats.items())
    parts = []
    for c in cats:
        if isinstance(c, (tuple, list)) and len(c) == 2:
            parts.append(f"{str(c[0]).lower()} ({_pct(c[1])})")
        else:
            parts.append(str(c).lower())
    return ", ".join(parts)


def _drivers_text(drivers) -> str:
    """What raises a zone's forecast, family of inputs by family: ``[(family, factor), ...]``, largest first."""
    items = list(drivers.items()) if isinstance(drivers, Mapping) else list(drivers)
    if not items:
        return ("None of the model's input families, each set in turn to an average cell's, changes this "
                "forecast much: no single part of the area's record stands out.")
    said = [f"its {str(name)} were an average cell's, {_factor_text(float(f))}" for name, f in items]
    return "What the model sees here: if " + "; if ".join(said) + "."


def _factor_text(f: float) -> str:
    if not math.isfinite(f):
        return "the forecast would be near zero"
    return f"the forecast would be {f:.2g} times lower"


def _why_text(z, expl: Mapping | None, units_text: str) -> str:
    where = "in the study area" if z.number == 1 else "left after the zones above"
    base = (f"Of all compact areas {where}, this one holds the most expected {units_text} "
            f"({_fmt_events(z.risk)}, {_pct(z.share)} of the whole area's forecast in {z.area_km2:.2f} km²).")
    if not expl:
        return base + " No breakdown into long-term background and recent incidents was supplied for this model."
    parts = [base]
    if expl.get("drivers") is not None:  # models without a decomposition (FeatureForecaster)
        parts.append(_drivers_text(expl["drivers"]))
    bg = expl.get("background_share")
    if bg is not None and math.isfinite(float(bg)):
        bg = float(bg)
        if bg >= 1.0:
            parts.append("All of its expected count is long-term background (a place with incidents week after week); "
                         "this model has no short-term (repeat or near-repeat) part.")
        else:
            parts.append(f"{_pct(bg)} of its expected count is long-term background (a place with incidents week "
                         f"after week); {_pct(1 - bg)} comes from recent incidents nearby (short-term repeat and "
                         f"near-repeat risk).")
    n = expl.get("n_events")
    if n is not None and not (isinstance(n, float) and math.isnan(n)) and int(n) > 0:
        first, last = expl.get("first_event"), expl.get("last_event")
        span = ""
        if first is not None and last is not None and not pd.isna(first) and not pd.isna(last):
            span = f" between {pd.Timestamp(first):%d %b %Y} and {pd.Timestamp(last):%d %b %Y}"
        if bg is not None and math.isfinite(float(bg)) and float(bg) >= 1.0:
            parts.append(f"{int(n)} past incident{'s' if int(n) != 1 else ''}{span} make up that background.")
        elif bg is not None and math.isfinite(float(bg)):
            parts.append(f"{int(n)} recent incident{'s' if int(n) != 1 else ''}{span} drive the short-term part.")
        else:
            parts.append(f"{int(n)} incident{'s' if int(n) != 1 else ''} were recorded in the zone{span} "
                         f"(the recent records behind it).")
    cats = _categories_text(expl.get("top_categories"))
    if cats:
        parts.append(f"Main incident types: {cats}.")
    disc = expl.get("discovered_share")
    if disc is not None and math.isfinite(float(disc)):
        parts.append(f"{_pct(float(disc))} of the records behind it were discovered by police (stops, arrests) rather "
                     f"than reported by residents.")
    return " ".join(parts)


def _trend_text(hist, as_percent: bool = False) -> str:
    if hist is None:
        return ""
    if isinstance(hist, str):
        return hist
    items = list(hist.items()) if isinstance(hist, Mapping) else list(hist)
    if not items:
        return ""
    cells = []
    vals = []
    for it in items:
        if isinstance(it, (tuple, list)) and len(it) == 2:
            label, v = it
        else:
            label, v = None, it
        v = float(v)
        vals.append(v)
        txt = f"{100 * v:.0f}%" if as_percent else _fmt_events(v)
        cells.append(f"{label}: {txt}" if label is not None else txt)
    direction = ""
    if len(vals) >= 3:
        t = np.arange(len(vals), dtype=float)
        slope = float(np.polyfit(t, np.asarray(vals), 1)[0])
        scale = max(abs(float(np.mean(vals))), 1e-12)
        direction = " (rising)" if slope * (len(vals) - 1) > 0.1 * scale else (
            " (falling)" if slope * (len(vals) - 1) < -0.1 * scale else " (steady)")
    return " → ".join(cells) + direction


def zone_map_png(risk, grid, zones, number: int, pad_rings: int = 3, size_in: float = 3.4, dpi: int = 90) -> bytes:
    """A close-up PNG of one zone: the hexagons within ``pad_rings`` rings of it coloured by risk, the zone outlined
    (other zones in view dashed and numbered).

    Parameters
    ----------
    risk : array or DataArray
        Forecast per grid cell (as for :func:`riskgrid.select_zones`).
    grid : HexGrid
    zones : ZoneSet
    number : int
        Zone number (1-based).
    pad_rings : int
        Rings of context around the zone.
    size_in, dpi : float, int
        Figure size (inches) and resolution.

    Returns
    -------
    bytes
        PNG (deterministic: Agg backend, no software metadata). The colour
        scale is the same for every zone (0 to the grid's largest risk,
        square-root stretched), with a 200 m scale bar.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    from ..geo import LocalProjection
    from ..metrics import risk_values

    r = risk_values(risk, len(grid))
    z = next((z for z in zones.zones if z.number == number), None)
    if z is None:
        raise ValueError(f"no zone {number}; the zones are numbered 1..{len(zones)}")
    indptr, indices, _ = grid.neighbours(int(pad_rings))
    near = np.unique(np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in z.cells]))
    rings = grid.boundaries_lonlat()
    lat0, lon0 = (float(np.mean(v)) for v in (grid.centroids_latlon[0][z.cells], grid.centroids_latlon[1][z.cells]))
    proj = LocalProjection(lat0, lon0)

    def xy(ring):
        a = np.asarray(ring, dtype=float)
        x, y = proj.forward(a[:, 1], a[:, 0])
        return np.column_stack([x, y])

    fig = Figure(figsize=(size_in, size_in), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9))
    vmax = float(r.max()) if r.size and r.max() > 0 else 1.0
    pc = PolyCollection([xy(rings[i]) for i in near], array=r[near], cmap="inferno_r",
                        norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax), edgecolors="#ffffff", linewidths=0.4)
    ax.add_collection(pc)
    near_set = set(near.tolist())
    for other, feat in zip(zones.zones, zones.to_geojson()["features"]):
        if other.number != z.number and not near_set.intersection(other.cells.tolist()):
            continue
        geom = feat["geometry"]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for rings_z in polys:
            p = xy(rings_z[0])
            if other.number == z.number:
                ax.plot(p[:, 0], p[:, 1], color="#0077cc", linewidth=2.2)
            else:  # a neighbouring zone in view: dashed, labelled
                ax.plot(p[:, 0], p[:, 1], color="#0077cc", linewidth=1.2, linestyle="--")
                cx, cy = p[:-1].mean(axis=0)
                ax.annotate(str(other.number), (cx, cy), color="#0077cc", fontsize=9, fontweight="bold", ha="center",
                            va="center")
    pts = np.concatenate([xy(rings[i]) for i in near])
    pad = 20.0
    ax.set_xlim(pts[:, 0].min() - pad, pts[:, 0].max() + pad)
    ax.set_ylim(pts[:, 1].min() - pad, pts[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    x0, y0 = pts[:, 0].min() + 10, pts[:, 1].min() + 10
    ax.plot([x0, x0 + 200.0], [y0, y0], color="#111111", linewidth=2)
    ax.annotate("200 m", (x0 + 100.0, y0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7)
    ax.set_title(f"Zone {z.number} (north up; other zones dashed)", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def zone_flag_history(log: pd.DataFrame, zones, last_n: int = 7, before=None) -> dict:
    """How much of each zone the last runs already flagged, from the exposure log.

    Parameters
    ----------
    log : DataFrame
        Exposure log (:func:`riskgrid.exposure.read_exposure`).
    zones : ZoneSet
        Today's zones.
    last_n : int
        Number of most recent runs to show.
    before : date-like, optional
        Only runs before this date (e.g. today's run date, so that a rerun
        does not count itself).

    Returns
    -------
    dict
        Zone number -> list of ``(run_date, share of the zone's cells flagged
        in that run)``, oldest first; ready for ``render_briefing(trends=...)``.
    """
    lg = log
    if before is not None:
        lg = lg[lg["run_date"].astype(str) < pd.Timestamp(before).strftime("%Y-%m-%d")]
    runs = sorted(lg["run_date"].astype(str).unique().tolist())[-int(last_n):]
    flagged = {r: set(lg.loc[lg["run_date"].astype(str) == r, "h3"].astype(str)) for r in runs}
    return {z.number: [(r[5:], sum(c in flagged[r] for c in z.h3) / len(z)) for r in runs] for z in zones.zones}


def render_briefing(zones, *, forecast_start, horizon_days: float, map_png=None, title: str | None = None,
                    city: str | None = None, model: str | None = None, units: str = "incidents",
                    last_event=None, issued=None, explanations=None, intervals=None, interval_level: str | None = None,
                    trends=None, trend_label: str | None = None, trend_percent: bool = False,
                    skill: Mapping | None = None,
                    skill_note: str | None = None, audit=None, places: Mapping | None = None,
                    extra_caveats: Sequence[str] = (), zone_maps: Mapping | None = None) -> str:
    """The briefing as one self-contained HTML string.

    Parameters
    ----------
    zones : ZoneSet
        Today's patrol zones (:func:`riskgrid.select_zones`), numbered 1..n.
    forecast_start : date-like
        Start of the forecast window.
    horizon_days : float
        Length of the window, days.
    map_png : bytes or path, optional
        The map (e.g. the job's PNG with the zones outlined), embedded as base64.
    title, city, model : str, optional
        Page title (default "Patrol briefing: CITY, WINDOW"), city and model names.
    units : str
        What is counted, plural (e.g. ``"burglaries"``); default ``"incidents"``.
    last_event : date-like, optional
        Time of the latest record used (data freshness).
    issued : date-like, optional
        When the briefing was made (left out when not given, so the same run
        gives the same file).
    explanations : mapping or DataFrame, optional
        Per zone (1-based): ``background_share`` (0-1), ``top_categories``
        (list of names or ``(name, share)`` pairs, or text), ``n_events``,
        ``first_event``, ``last_event`` (the recent events driving the
        triggered part), ``discovered_share`` (0-1).
    intervals : mapping or DataFrame, optional
        Per zone: ``(low, high)`` of the expected events (or columns
        ``low``/``high``); ``interval_level`` says what it is (e.g. "90% interval").
        Default: the zones' own intervals when they carry one
        (:meth:`ZoneSet.with_interval`; with the chance of at least one
        event and a caveat on what the interval is).
    trends : mapping or DataFrame, optional
        Per zone: a sequence of values or ``(label, value)`` pairs over the last
        runs, oldest first (:func:`zone_flag_history`), or a ready text.
    trend_label : str, optional
        What the trend values are (shown before them).
    trend_percent : bool
        Show the trend values as percentages (shares, as from :func:`zone_flag_history`).
    skill : mapping, optional
        Recent backtest skill, label -> value (floats are formatted).
    skill_note : str, optional
        One line on how the skill was measured.
    audit : AuditResult, optional
        From :func:`riskgrid.audit.audit_exposure`: a section with the flag
        concentration, the regions and any feedback-loop warning.
    places : mapping, optional
        Zone number -> a place name ("near 63rd St and Halsted").
    extra_caveats : sequence of str
        More caveats, after the standard ones (:data:`CAVEATS`).
    zone_maps : mapping, optional
        Zone number -> PNG bytes or path of a close-up map
        (:func:`zone_map_png`), embedded in that zone's table.

    Returns
    -------
    str
        HTML5 document (UTF-8 text).
    """
    import jinja2

    from .._version import __version__

    h = float(horizon_days)
    if not math.isfinite(h) or h <= 0:
        raise ValueError(f"horizon_days must be a positive number of days, got {horizon_days!r}")
    start = pd.Timestamp(forecast_start)
    end = start + pd.to_timedelta(h, unit="D")
    fmt = "%a %d %b %Y %H:%M" if (start.hour or start.minute or end.hour or end.minute) else "%a %d %b %Y"
    window_text = f"{start.strftime(fmt)} to {end.strftime(fmt)}"
    horizon_text = f"{h:g} day{'s' if h != 1 else ''}"
    units_text = str(units)
    zone_level = getattr(zones, "interval_level", None)
    if intervals is None and zone_level is not None:
        intervals = {z.number: (z.risk_lo, z.risk_hi) for z in zones.zones}
        if interval_level is None:
            interval_level = f"{float(zone_level):.0%} interval"
        extra_caveats = [
            f"The interval of a zone is where its count of recorded {units} falls with {float(zone_level):.0%} "
            f"probability if the model is right ({zones.interval_method}); it leaves out errors of the model "
            "itself, so the real uncertainty is larger.", *extra_caveats]
    expl = _per_zone(explanations, "explanations")
    ints = _per_zone(intervals, "intervals")
    trs = _per_zone(trends, "trends")
    places = {int(k): str(v) for k, v in (places or {}).items()}
    zmaps = {int(k): _read_png(v) for k, v in (zone_maps or {}).items()}
    numbers = {z.number for z in zones.zones}
    for name, d in (("explanations", expl), ("intervals", ints), ("trends", trs), ("places", places),
                    ("zone_maps", zmaps)):
        unknown = sorted(set(d) - numbers)
        if unknown:
            raise ValueError(f"{name} names zone(s) {unknown}, but the zones are numbered {sorted(numbers)}")

    frame = zones.to_frame().set_index("zone") if len(zones) else None
    zrows = []
    for z in zones.zones:
        iv = ints.get(z.number)
        if isinstance(iv, Mapping):
            iv = (iv["low"], iv["high"])
        if iv is not None:
            iv = (float(iv[0]), float(iv[1]))
            if not iv[0] <= iv[1]:
                raise ValueError(f"intervals: zone {z.number} has low > high: {iv}")
        tr = trs.get(z.number)
        if isinstance(tr, Mapping) and "trend" in tr:
            tr = tr["trend"]
        trend_text = _trend_text(tr, as_percent=trend_percent)
        if trend_text and trend_label:
            trend_text = f"{trend_label}: {trend_text}"
        ex = expl.get(z.number)
        zrows.append({
            "number": z.number, "place": places.get(z.number, ""), "lat": float(frame.loc[z.number, "lat"]),
            "lon": float(frame.loc[z.number, "lon"]), "n_cells": len(z), "h3": list(z.h3), "area_km2": z.area_km2,
            "diameter_m": z.diameter_m, "extent_m": _extent_m(z.h3), "risk": z.risk, "share": z.share,
            "interval": iv, "p_any": float(z.p_any) if math.isfinite(getattr(z, "p_any", float("nan"))) else None,
            "why": _why_text(z, ex, units_text), "trend_text": trend_text,
            "map_data": zmaps.get(z.number),
        })

    skill_rows = []
    for k, v in (skill or {}).items():
        if isinstance(v, (float, np.floating)):
            v = f"{float(v):.3g}"
        skill_rows.append((str(k), str(v)))

    audit_ctx = _audit_context(audit) if audit is not None else None
    last_txt, age_txt = None, None
    if last_event is not None:
        le = pd.Timestamp(last_event)
        last_txt = le.strftime("%a %d %b %Y %H:%M") if (le.hour or le.minute) else le.strftime("%a %d %b %Y")
        age = (start - le) / pd.Timedelta(days=1)
        if age >= 0:
            age_txt = f"{age:.1f} days before the window starts"
            if age > 3:
                age_txt += "; the data are not fresh, read the forecast with care"
        else:
            age_txt = "after the window start: the forecast was made with records from inside its own window"

    if title is None:
        title = f"Patrol briefing: {city + ', ' if city else ''}{window_text}"
    env = jinja2.Environment(loader=jinja2.PackageLoader("riskgrid.products", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    tpl = env.get_template("briefing.html.j2")
    return tpl.render(
        title=title, version=__version__, window_text=window_text, horizon_text=horizon_text, model=model,
        issued=(pd.Timestamp(issued).strftime("%Y-%m-%d %H:%M") if issued is not None else None),
        last_event=last_txt, data_age_text=age_txt, n_zones=len(zones), total_area_km2=zones.area_km2,
        captured_risk=zones.captured_risk, total_risk=zones.total_risk, captured_share=zones.captured_share,
        best_share=zones.best_unconstrained_share, gap_share=zones.gap_share, units_text=units_text,
        map_data=_read_png(map_png), zones=zrows, skill_rows=skill_rows, skill_note=skill_note, audit=audit_ctx,
        interval_level=interval_level, caveats=list(CAVEATS) + [str(c) for c in extra_caveats],
        fmt_events=_fmt_events, fmt_count=_fmt_count, pct=_pct,
    )


def _audit_context(audit) -> dict:
    runs = audit.runs
    if not runs:
        return {"text": "The exposure log holds no runs yet.", "warnings": [], "rows": []}
    n_flagged = int((audit.cells["n_flags"] > 0).sum())
    trend = audit.gini_trend
    trend_txt = "" if not math.isfinite(trend) else (
        f", {'rising' if trend > 0.001 else 'falling' if trend < -0.001 else 'steady'} ({trend:+.3f} per run)")
    text = (f"Over {len(runs)} runs from {runs[0]} to {runs[-1]}, {n_flagged} of {len(audit.cells)} hexagons were "
            f"flagged at least once. Concentration of the flags (Gini, 0 = spread evenly, 1 = always the same "
            f"places): {audit.gini:.2f}{trend_txt}.")
    rows = []
    for _, r in audit.regions.iterrows():
        disc = r["discovered_share"]
        disc_txt = "unknown" if disc is None or not math.isfinite(float(disc)) else _pct(float(disc))
        rows.append({"region": r["region"], "text": f"{_pct(r['flag_share'])} · {int(r['runs_flagged'])} of {len(runs)} "
                                                    f"· {int(r['longest_streak'])} runs · {disc_txt}"})
    return {"text": text, "warnings": list(audit.warnings), "rows": rows}


def write_briefing(path, zones, **kwargs) -> Path:
    """Render the briefing (:func:`render_briefing` keywords) and write it atomically to ``path`` (UTF-8).

    Returns the path written.
    """
    html = render_briefing(zones, **kwargs)
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(html)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
