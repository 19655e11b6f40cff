"""The nightly forecast job: the one forecast, patrol zones, every product, published atomically.

:func:`run_forecast` is what ``riskgrid forecast CONFIG.toml --date D`` and
``riskgrid demo`` run:

1. build the job of the configuration (:meth:`ForecastJob.from_config`),
   read its events with the one event source and hash the input file(s);
2. :func:`riskgrid.pipeline.forecasting.fit_forecast`: the study area (the
   polygon, or the events before ``D``), fit on ``[D - train_days, D)``,
   predict ``[D, D + horizon_days)``;
3. choose the patrol zones (``[zones]``);
4. write every product of ``[outputs] formats``
   (:func:`riskgrid.products.write_product`) into a temporary folder, then
   ``manifest.json``, then publish the folder as ``OUT/<city>/<D>/``
   (:mod:`riskgrid.pipeline.publish`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import time

from .._version import __version__
from ..errors import ConfigError, NoEventsError
from .config import load_config, validate_config
from .publish import (
    MANIFEST,
    config_sha256,
    fit_summary,
    fsync_tree,
    input_hashes,
    jsonable,
    manifest_ok,
    output_folder,
    parse_date,
    publish,
    recover,
    sha256_file,
    temporary_folder,
    tree_files,
)

__all__ = ["run_forecast", "output_folder", "PRODUCTS", "NoEventsError", "sha256_file", "config_sha256"]

#: highest-risk cells flagged in the exposure log besides the zone cells
EXPOSURE_TOP_N = 50

#: the zones table (one row per zone, 1..n: expected events, interval, P(any)) written with the "zones" format
ZONES_CSV = "zones.csv"

#: the per-zone explanation tables written beside zones.geojson (top driving events of each zone)
ZONES_EXPLAINED = ("zones_explained.csv", "zones_explained.parquet")
#: driving events listed per zone in zones_explained
ZONE_EXPLAIN_TOP = 10


def explain_zones(model, zones, start, horizon_days: float):
    """``(summary, events)`` of :meth:`Explanation.by_zone <riskgrid.models.explain.Explanation.by_zone>` for
    the zone cells, or ``None`` when there is no zone or the model cannot decompose its forecast."""
    import numpy as np

    cz = np.asarray(zones.cell_zone)
    cells = np.flatnonzero(cz > 0)
    if cells.size == 0:
        return None
    try:
        explanation = model.explain(start, horizon_days, cells=cells)
    except NotImplementedError:  # e.g. FeatureForecaster's trees: no additive decomposition
        return None
    return explanation.by_zone(cz, top=ZONE_EXPLAIN_TOP)


#: families of features named per zone when the model cannot decompose its forecast (FeatureForecaster)
ZONE_DRIVERS_TOP = 3
#: ... and only those raising the zone's forecast by at least this factor
ZONE_DRIVER_MIN_FACTOR = 1.1


def zone_drivers(model, zones, start) -> dict | None:
    """Zone number -> ``[(family, factor), ...]``: what raises each zone's forecast, for models without a
    background / triggered decomposition that can say it family by family
    (:meth:`FeatureForecaster.feature_group_effects
    <riskgrid.models.FeatureForecaster.feature_group_effects>`); ``None`` for the other models or no zone.

    The :data:`ZONE_DRIVERS_TOP` largest factors of at least :data:`ZONE_DRIVER_MIN_FACTOR`, largest first
    (a zone may have none). A model selection (:class:`~riskgrid.models.WalkForwardSearch`) speaks for the
    model it selected.
    """
    import numpy as np

    effects = getattr(getattr(model, "best_model_", model), "feature_group_effects", None)
    cz = np.asarray(zones.cell_zone)
    if effects is None or not (cz > 0).any():
        return None
    cells = np.flatnonzero(cz > 0)
    table = effects(cells, start, labels=cz[cells])  # the features are built once for every zone
    out = {}
    for z in table.columns:
        f = table[z].sort_values(ascending=False)
        f = f[f >= ZONE_DRIVER_MIN_FACTOR].head(ZONE_DRIVERS_TOP)
        out[int(z)] = [(str(k), float(v)) for k, v in f.items()]
    return out


def drivers_text(drivers) -> str:
    """``"family ×4.2; family ×1.3"`` (the zones.geojson property), ``""`` when there is none."""
    return "; ".join(f"{k} ×{v:.2g}" for k, v in drivers)


def zone_explanation_properties(explained, drivers=None) -> dict | None:
    """Zone number -> JSON-ready explanation summary for zones.geojson (NaN written as null).

    ``drivers`` (:func:`zone_drivers`) become a ``drivers`` property when there is no decomposition.
    """
    import math

    if explained is None:
        return None if drivers is None else {z: {"drivers": drivers_text(d)} for z, d in drivers.items()}
    keys = ("background", "triggered", "background_share", "top_categories", "n_driving_events", "driving_from",
            "driving_to")
    out = {}
    for z, row in explained[0].iterrows():
        vals = {}
        for k in keys:
            v = row[k]
            if isinstance(v, float) and math.isnan(v):
                v = None
            vals[k] = v.item() if hasattr(v, "item") else v
        out[int(z)] = vals
    return out


def briefing_explanations(explained, drivers=None) -> dict | None:
    """Zone number -> the briefing's "why" inputs (background share, categories, driving events; or the
    families of features that raise the zone's forecast, ``drivers``, when there is no decomposition)."""
    if explained is None:
        return None if drivers is None else {z: {"drivers": list(d)} for z, d in drivers.items()}
    return {int(z): {"background_share": float(r["background_share"]), "top_categories": r["category_shares"],
                     "n_events": int(r["n_driving_events"]), "first_event": r["driving_from"] or None,
                     "last_event": r["driving_to"] or None}
            for z, r in explained[0].iterrows()}


def write_zones_explained(events, path, meta: dict) -> str:
    """The zones' top driving events as CSV or Parquet (by the file suffix), with the forecast window and model."""
    table = events.copy()
    table["time"] = table["time"].astype(str)
    for k in ("window_start", "window_end", "horizon_days", "model"):
        table[k] = meta[k]
    if path.endswith(".csv"):
        table.to_csv(path, index=False, lineterminator="\n")
    else:
        table.to_parquet(path, index=False)
    return path


#: format -> file name inside the output folder (the names live in riskgrid.products.PRODUCT_FILES)
PRODUCTS = {
    "netcdf": "risk.nc",
    "zarr": "risk.zarr",
    "geojson": "risk_hexagons.geojson",
    "parquet": "risk_hexagons.parquet",
    "csv": "risk_hexagons.csv",
    "geotiff": "risk.tif",
    "png": "risk_map.png",
    "zones": "zones.geojson",
    "briefing": "briefing.html",
}


def run_forecast(config, date, out_dir, skip_existing: bool = False, progress: bool = False) -> dict:
    """Run the nightly forecast for one date and publish its products atomically.

    Parameters
    ----------
    config : str, path or dict
        A TOML file (see :mod:`riskgrid.pipeline.config`) or an already loaded /
        validated configuration mapping.
    date : str, date or Timestamp
        First day of the forecast, ``YYYY-MM-DD`` (the model sees only events
        before its midnight, in the data's own clock).
    out_dir : str or path
        Root output folder; products go to ``out_dir/<city>/<date>/``.
    skip_existing : bool
        Return the existing manifest at once when that folder is complete.
    progress : bool
        Show a tqdm progress bar over the steps (stderr). Off by default.

    Returns
    -------
    dict
        The manifest (also written as ``manifest.json``), with ``"folder"``
        (absolute path of the output) and ``"skipped"`` added.

    Raises
    ------
    ConfigError
        Bad configuration or date.
    EventFileNotFoundError
        Missing input file.
    EventDataError
        Corrupt/unreadable input, invalid rows with ``on_invalid="raise"``.
    NoEventsError
        No event in the training window.
    """
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    bar = None

    @contextlib.contextmanager
    def step(name):
        t0 = time.perf_counter()
        if bar is not None:
            bar.set_description(name)
        yield
        timings[name] = round(time.perf_counter() - t0, 4)
        if bar is not None:
            bar.update(1)

    cfg = validate_config(config) if isinstance(config, dict) else load_config(config)
    if "model" not in cfg:
        raise ConfigError("the configuration has no [model] section (e.g. name = \"GridHawkes\")")
    day = parse_date(date)
    day_s = f"{day:%Y-%m-%d}"
    out_dir = os.path.abspath(os.fspath(out_dir))
    parent = os.path.join(out_dir, cfg["city"])
    target = os.path.join(parent, day_s)

    recover(parent, day_s, target)
    if skip_existing and os.path.isdir(target) and manifest_ok(target):
        with open(os.path.join(target, MANIFEST), encoding="utf-8") as fh:
            man = json.load(fh)
        man["folder"] = target
        man["skipped"] = True
        return man

    formats = list(dict.fromkeys(cfg["outputs"]["formats"]))
    if progress:
        from tqdm.auto import tqdm

        n_steps = 8 + len(formats) + ("zones" in formats) + bool(cfg["outputs"].get("exposure_log", True))  # (8: read ... zones, explain, hash)
        bar = tqdm(total=n_steps, unit="step", leave=False, disable=None)  # off when not a TTY
    try:
        return _run(cfg, day, day_s, parent, target, formats, step, timings, t_all)
    finally:
        if bar is not None:
            bar.close()


def _run(cfg, day, day_s, parent, target, formats, step, timings, t_all) -> dict:
    import pandas as pd

    from .. import products
    from ..zones import select_zones
    from .forecasting import fit_forecast, forecast_interval
    from .source import load_job_events
    from .specs import ForecastJob

    train_days = float(cfg["forecast"]["train_days"])
    horizon = float(cfg["forecast"]["horizon_days"])
    with step("read events"):
        job = ForecastJob.from_config(cfg, date=day)  # (a simulated city is simulated here)
        events = load_job_events(job)
        hashes = input_hashes(cfg)
    staleness = check_staleness(cfg, events, day)
    fc = fit_forecast(job, events, step=step)
    model, grid, risk = fc.model, fc.grid, fc.risk
    with step("zones"):
        zones = select_zones(risk, grid, **cfg["zones"])
    with step("interval"):  # per cell and per zone (the zone's total count), seeded from the job
        interval = forecast_interval(fc, job, zones)
        if interval is not None:
            zones = zones.with_interval(interval["zone_lo"].values, interval["zone_hi"].values,
                                        interval["zone_p_any"].values, interval.attrs["interval_level"],
                                        interval.attrs["interval_method"])
    with step("explain zones"):
        explained = explain_zones(model, zones, day, horizon)
        drivers = zone_drivers(model, zones, day) if explained is None else None

    provenance = {
        "city": cfg["city"],
        "riskgrid_version": __version__,
        "forecast_date": day_s,
        "forecast_end": str((day + pd.Timedelta(days=horizon)).round("s")),
        "train_days": train_days,
        "n_events_used": int(model.n_events_),
        "input_sha256": ";".join(f"{os.path.basename(k)}={v}" for k, v in sorted(hashes.items())),
        "last_event": staleness["last_event"],
    }
    if staleness["stale"]:
        provenance["stale_days"] = staleness["stale_days"]
    ds = products.risk_dataset(risk, zones=zones, extra_attrs=provenance, interval=interval)
    title = (products.default_title(ds) + f"\n{model.n_events_:,} events in {train_days:g} training days; "
             f"{len(zones)} zones hold {zones.captured_share:.1%} of the risk")
    if staleness["stale"]:
        title += f"\nSTALE DATA: last event {staleness['last_event']}, {staleness['stale_days']:.1f} days before"
    zone_meta = {  # what a web map loading zones.geojson needs to read the numbers
        "window_start": day_s,
        "window_end": provenance["forecast_end"],
        "horizon_days": horizon,
        "units": str(ds["risk"].attrs.get("units", "expected events per cell in the forecast window")),
        "model": cfg["model"]["name"],
    }
    options = dict(grid=grid, zones=zones, pixel_m=float(cfg["outputs"]["raster_pixel_m"]),
                   crs=cfg["outputs"]["raster_crs"], title=title, metadata=zone_meta,
                   zone_properties=zone_explanation_properties(explained, drivers))

    created = [d for d in (os.path.dirname(parent), parent) if not os.path.isdir(d)]
    os.makedirs(parent, exist_ok=True)
    tmp = temporary_folder(parent, day_s)
    try:
        for fmt in formats:
            if fmt == "briefing":
                continue  # written last: it embeds the map and reads the exposure log
            with step(f"write {fmt}"), writing(os.path.join(tmp, PRODUCTS[fmt]), target, fmt):
                products.write_product(fmt, ds, os.path.join(tmp, PRODUCTS[fmt]), **options)
        if "zones" in formats and explained is not None:
            with step("write zones_explained"):
                for name in ZONES_EXPLAINED:
                    with writing(os.path.join(tmp, name), target, "zones_explained"):
                        write_zones_explained(explained[1], os.path.join(tmp, name), zone_meta)
        if "zones" in formats:
            with writing(os.path.join(tmp, ZONES_CSV), target, "zones table"):
                products.write_zones_csv(zones, os.path.join(tmp, ZONES_CSV), metadata=zone_meta)
        if "briefing" in formats:
            with step("write briefing"), writing(os.path.join(tmp, PRODUCTS["briefing"]), target, "briefing"):
                _write_briefing(cfg, tmp, parent, day, day_s, horizon, ds, risk, grid, zones, fc, options, explained,
                                drivers)
        if cfg["outputs"].get("exposure_log", True):
            with step("exposure log"), writing(os.path.join(os.path.dirname(parent), "exposure"), None, "exposure log"):
                _append_exposure(cfg, parent, day, horizon, risk, grid, zones, fc)
        with step("hash outputs"):
            files = [
                {"path": rel, "bytes": os.path.getsize(os.path.join(tmp, rel)), "sha256": sha256_file(os.path.join(tmp, rel))}
                for rel in tree_files(tmp)
            ]
        fit = fit_summary(model)
        fit["n_outside_grid"] = int(model.n_outside_)
        manifest = {
            "riskgrid_version": __version__,
            "city": cfg["city"],
            "forecast_date": day_s,
            "forecast_window": [str(day), str(day + pd.Timedelta(days=horizon))],
            "training_window": [str(day - pd.Timedelta(days=train_days)), str(day)],
            "config": jsonable({k: v for k, v in cfg.items() if not k.startswith("_")}),
            "config_path": cfg.get("_path"),
            "config_sha256": config_sha256(cfg),
            "inputs": [{"path": k, "sha256": v} for k, v in sorted(hashes.items())],
            "n_events_input": int(len(events)),
            "n_events_rejected": int(len(events.rejected)),
            "staleness": staleness,
            "events": _events_record(cfg, events),
            "n_events_train": int(len(fc.train)),
            "n_events_used": int(model.n_events_),
            "grid": {"n_cells": len(grid), "resolution": grid.resolution, "area_km2": float(grid.area_m2.sum() / 1e6),
                     "study_area": (f"polygon {cfg['grid']['geojson']}" if cfg["grid"].get("geojson") else
                                    f"cells of the events before {day_s} + {cfg['grid']['buffer_rings']} ring(s)")},
            "fit": fit,
            "zones": zones.to_dict(),
            "risk_total": float(ds["risk"].sum()),
            "products": {fmt: PRODUCTS[fmt] for fmt in formats},
            "files": files,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_times_s": dict(timings, total=round(time.perf_counter() - t_all, 4)),
        }
        with writing(os.path.join(tmp, MANIFEST), target, "manifest"):
            with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2, allow_nan=False)
                fh.write("\n")
            fsync_tree(tmp)
        with writing(target, None, "output folder"):
            publish(tmp, target, parent, day_s)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in reversed(created):  # leave no empty folders behind on failure
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise
    manifest["folder"] = target
    manifest["skipped"] = False
    return manifest


def _write_briefing(cfg, tmp, parent, day, day_s, horizon, ds, risk, grid, zones, fc, options, explained=None,
                    drivers=None) -> None:
    """``briefing.html`` in the temporary folder: map (the job's PNG), zones, close-ups, trend from the exposure log."""
    from .. import products
    from ..exposure import read_exposure
    from ..products.briefing import write_briefing, zone_flag_history, zone_map_png

    png = os.path.join(tmp, PRODUCTS["png"])
    scratch = None
    if not os.path.exists(png):  # no PNG product: draw the map for the briefing only
        scratch = png = os.path.join(tmp, ".briefing-map.png")
        products.write_png(ds, png, zones=zones, grid=grid, title=options["title"])
    try:
        before = fc.events.between(None, fc.date_days)
        write_briefing(
            os.path.join(tmp, PRODUCTS["briefing"]), zones, forecast_start=day, horizon_days=horizon, map_png=png,
            city=cfg["city"], model=cfg["model"]["name"], units="incidents",
            explanations=briefing_explanations(explained, drivers),
            last_event=before.timestamps.iloc[-1] if len(before) else None,
            trends=zone_flag_history(read_exposure(os.path.dirname(parent), name=cfg["city"]), zones, before=day),
            trend_percent=True,
            extra_caveats=[f"STALE DATA: the latest record is from {ds.attrs.get('last_event')}, "
                           f"{float(ds.attrs['stale_days']):.1f} days before the forecast starts; the forecast "
                           f"misses everything recorded since and is likely too low."] if "stale_days" in ds.attrs
            else [],
            zone_maps={z.number: zone_map_png(risk, grid, zones, z.number) for z in zones.zones},
        )
    finally:
        if scratch is not None:
            with contextlib.suppress(OSError):
                os.remove(scratch)


def _append_exposure(cfg, parent, day, horizon, risk, grid, zones, fc) -> None:
    """Append this run's flagged cells to the log ``OUT/exposure/`` under the name of the city (a rerun of the
    date replaces its rows; see :func:`riskgrid.exposure.append_exposure`)."""
    from ..exposure import append_exposure, exposure_table, source_counts

    counts = {}
    col = cfg["events"].get("source_column")
    if col and col in fc.train.extra.columns:
        cells = grid.assign(fc.train.lat, fc.train.lon)
        n_tr, n_disc = source_counts(cells, fc.train.extra[col].astype(str).to_numpy(), len(grid))
        counts = {"n_train": n_tr, "n_train_discovered": n_disc}
    flagged = exposure_table(zones_risk(risk, len(grid)), grid.cell_ids, zones.cell_zone,
                             top_n=EXPOSURE_TOP_N, **counts)
    append_exposure(os.path.dirname(parent), day, flagged, model=cfg["model"]["name"], horizon_days=horizon,
                    name=cfg["city"])


def zones_risk(risk, n_cells: int):
    """The per-cell risk the zones were chosen on (categories summed)."""
    from ..metrics import risk_values

    return risk_values(risk, n_cells)


def _events_record(cfg, events) -> dict:
    """The validation settings the events were read with and the rejected rows counted per reason."""
    reasons: dict[str, int] = {}
    if len(events.rejected) and "reason" in events.rejected.columns:
        for text in events.rejected["reason"].astype(str):
            for r in text.split("; "):
                reasons[r] = reasons.get(r, 0) + 1
    ev = cfg["events"]
    return {
        "validation": jsonable(getattr(events, "validation", {}) or {}),
        "rejected_reasons": dict(sorted(reasons.items())),
        "source_column": ev.get("source_column"),
        "discovered": ev.get("discovered", "keep"),
    }


def check_staleness(cfg, events, day) -> dict:
    """How old the feed is at the forecast date; a stalled feed stops the job unless ``allow_stale``.

    Returns ``last_event`` (the latest event before ``day``, ISO text),
    ``stale_days`` (days from it to the forecast start), ``max_staleness_days``,
    ``allow_stale`` and ``stale`` (``stale_days > max_staleness_days``).

    Raises
    ------
    EventDataError
        The feed is stale and ``[forecast] allow_stale`` is false: the message
        names the last event's date and the setting.
    """
    from ..errors import EventDataError

    fc = cfg["forecast"]
    limit = float(fc.get("max_staleness_days", 3))
    allow = bool(fc.get("allow_stale", False))
    d = events.to_days(day)
    before = events.between(None, d)
    if len(before) == 0:  # nothing to be stale about: the fit reports the empty training window
        return {"last_event": None, "stale_days": None, "max_staleness_days": limit, "allow_stale": allow,
                "stale": False}
    last = before.timestamps.iloc[-1]
    last_s = f"{last:%Y-%m-%d %H:%M:%S}"
    stale_days = float(d - before.t[-1])
    out = {"last_event": last_s, "stale_days": round(stale_days, 6), "max_staleness_days": limit,
           "allow_stale": allow, "stale": stale_days > limit}
    if out["stale"] and not allow:
        raise EventDataError(
            f"stale feed: the last event is from {last_s}, {stale_days:.1f} days before the forecast date "
            f"{day:%Y-%m-%d} (forecast.max_staleness_days = {limit:g}); the forecast would miss everything since "
            f"and come out too low. Check the data feed, or set [forecast] allow_stale = true to run anyway (the "
            f"staleness is then recorded in the manifest, the risk attributes, the map and the briefing)"
        )
    return out


@contextlib.contextmanager
def writing(path: str, target: str | None, what: str):
    """Turn a failed write (disk full, I/O error, a NetCDF/HDF or GDAL error) into one
    :class:`~riskgrid.errors.OutputWriteError` naming the file (as it will be published under ``target``)."""
    from ..errors import OutputWriteError, RiskGridError

    try:
        yield
    except (RiskGridError, ValueError, TypeError, KeyError, MemoryError):
        raise  # riskgrid's own errors and bad values say what is wrong already
    except Exception as exc:  # OSError, netCDF4's RuntimeError, rasterio's CPLE_* errors ...
        name = os.path.basename(path)
        shown = os.path.join(target, name) if target else path
        if isinstance(exc, OSError) and exc.errno is not None:
            reason = os.strerror(exc.errno)
        else:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            reason = f"{type(exc).__name__}: {reason}"
        err = OutputWriteError(f"cannot write {what} {shown}: {reason} (nothing was published)")
        err.errno = getattr(exc, "errno", None)
        raise err from exc
