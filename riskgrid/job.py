"""The nightly forecast job: fit, predict, zone and publish every product atomically.

:func:`run_forecast` is what ``riskgrid forecast CONFIG.toml --date D`` and
``riskgrid demo`` run:

1. read the events (``[events]``) and hash the input file(s) (SHA-256);
2. build the grid (``[grid]``) from the events before ``D`` (or a polygon);
3. fit ``[model]`` on ``[D - train_days, D)``, predict ``[D, D + horizon_days)``;
4. choose the patrol zones (``[zones]``);
5. write every product of ``[outputs] formats`` into a temporary folder
   beside the target, then ``manifest.json`` (last), then rename the folder
   to ``OUT/<city>/<D>/``.

Atomicity: the target folder only ever appears complete (a directory rename
on one filesystem is atomic). When a previous output exists it is first
renamed aside (``.old-<D>-<pid>``), the new one renamed into place, and the
old one deleted; a kill between the two renames leaves no target and the
previous output aside, which the next run restores before anything else.
Leftover temporary folders of dead processes are removed on the next run.

Idempotency: the data files depend only on the configuration, the input
and riskgrid's version (no time stamps inside); only ``manifest.json``
holds wall times.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid

import numpy as np
import pandas as pd

from ._version import __version__
from .config import events_from_config, grid_from_config, load_config, model_from_spec, validate_config
from .errors import ConfigError, RiskGridError

__all__ = ["run_forecast", "output_folder", "PRODUCTS", "NoEventsError", "sha256_file", "config_sha256"]

log = logging.getLogger(__name__)

#: format -> file name inside the output folder
PRODUCTS = {
    "netcdf": "risk.nc",
    "zarr": "risk.zarr",
    "geojson": "risk_hexagons.geojson",
    "parquet": "risk_hexagons.parquet",
    "csv": "risk_hexagons.csv",
    "geotiff": "risk.tif",
    "png": "risk_map.png",
    "zones": "zones.geojson",
}
MANIFEST = "manifest.json"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


class NoEventsError(RiskGridError, ValueError):
    """No event in the training window of a forecast."""


# --------------------------------------------------------------------------- #
# hashing helpers
# --------------------------------------------------------------------------- #
def sha256_file(path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _public_config(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)


def config_sha256(cfg: dict) -> str:
    """SHA-256 of the canonical JSON of a validated configuration (``_``-keys left out)."""
    return hashlib.sha256(_canonical(_public_config(cfg)).encode()).hexdigest()


def _input_hashes(cfg: dict) -> dict:
    ev = cfg["events"]
    out = {}
    if ev.get("path"):
        p = ev["path"]
        if os.path.isdir(p):
            for root, _, files in sorted(os.walk(p)):
                for f in sorted(files):
                    fp = os.path.join(root, f)
                    out[fp] = sha256_file(fp)
        elif os.path.exists(p):
            out[p] = sha256_file(p)
    if ev.get("simulate") is not None:
        out["simulate"] = hashlib.sha256(_canonical(ev["simulate"]).encode()).hexdigest()
    if cfg["grid"].get("geojson") and os.path.exists(cfg["grid"]["geojson"]):
        out[cfg["grid"]["geojson"]] = sha256_file(cfg["grid"]["geojson"])
    return out


def _tree_files(folder: str) -> list[str]:
    """Relative paths of every file under ``folder``, sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/"))
    return sorted(out)


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        f = float(v)
        return f if np.isfinite(f) else str(f)
    if isinstance(v, float):
        return v if np.isfinite(v) else str(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (int, str)) or v is None:
        return v
    if isinstance(v, np.ndarray):
        if v.size <= 32:
            return [_jsonable(x) for x in v.ravel().tolist()]
        return {"shape": list(v.shape), "mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v][:64]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def _fit_summary(model) -> dict:
    """Parameters, learned scalars/small arrays and diagnostics of a fitted model."""
    learned = {}
    for name, value in sorted(vars(model).items()):
        if not name.endswith("_") or name.startswith("_") or name in ("grid_",):
            continue
        if isinstance(value, (int, float, str, bool, np.integer, np.floating, np.bool_, dict, list, tuple)) or (
            isinstance(value, np.ndarray)
        ):
            learned[name] = _jsonable(value)
    return {"model": type(model).__name__, "params": _jsonable(model.get_params()), "learned": learned}


# --------------------------------------------------------------------------- #
# folders
# --------------------------------------------------------------------------- #
def _parse_date(date) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(date)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--date must be a date YYYY-MM-DD, got {date!r}") from exc
    if ts is pd.NaT or ts != ts.normalize():
        raise ConfigError(f"--date must be a calendar day YYYY-MM-DD (midnight), got {date!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts


def output_folder(cfg: dict, date, out_dir) -> str:
    """``OUT/<city>/<YYYY-MM-DD>`` for a configuration and date."""
    return os.path.join(os.fspath(out_dir), cfg["city"], f"{_parse_date(date):%Y-%m-%d}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _owner_pid(name: str) -> int | None:
    # .tmp-<date>-<pid>-<hex> / .old-<date>-<pid>-<hex>
    try:
        return int(name.rsplit("-", 2)[1])
    except (IndexError, ValueError):
        return None


def _recover(parent: str, day: str, target: str) -> None:
    """Restore an output renamed aside by a killed run; remove dead runs' temporary folders."""
    if not os.path.isdir(parent):
        return
    for name in sorted(os.listdir(parent)):
        for prefix in (_TMP_PREFIX, _OLD_PREFIX):
            if not name.startswith(f"{prefix}{day}-"):
                continue
            pid = _owner_pid(name)
            if pid is not None and _pid_alive(pid):
                continue  # a live run owns it
            path = os.path.join(parent, name)
            if prefix == _OLD_PREFIX and not os.path.exists(target) and _manifest_ok(path):
                log.info("restoring previous output %s -> %s", path, target)
                os.rename(path, target)
            else:
                log.info("removing stale folder %s", path)
                shutil.rmtree(path, ignore_errors=True)


def _manifest_ok(folder: str, verify_hashes: bool = False) -> bool:
    """A folder holds a complete output: a readable manifest listing files that all exist."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as fh:
            man = json.load(fh)
        files = man["files"]
        for f in files:
            p = os.path.join(folder, f["path"])
            if os.path.getsize(p) != f["bytes"]:
                return False
            if verify_hashes and sha256_file(p) != f["sha256"]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _fsync_tree(folder: str) -> None:
    for root, _, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(root, f), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- #
# the job
# --------------------------------------------------------------------------- #
def run_forecast(config, date, out_dir, skip_existing: bool = False, progress: bool = False) -> dict:
    """Run the nightly forecast for one date and publish its products atomically.

    Parameters
    ----------
    config : str, path or dict
        A TOML file (see :mod:`riskgrid.config`) or an already loaded /
        validated configuration mapping.
    date : str, date or Timestamp
        First day of the forecast, ``YYYY-MM-DD`` (the model sees only events
        before its midnight, in the data's own clock).
    out_dir : str or path
        Root output folder; products go to ``out_dir/<city>/<date>/``.
    skip_existing : bool
        Return the existing manifest at once when that folder is complete.
    progress : bool
        Show a tqdm progress bar over the steps (stderr).

    Returns
    -------
    dict
        The manifest (also written as ``manifest.json``), with ``"folder"``
        (absolute path of the output) and ``"skipped"`` added.

    Raises
    ------
    ConfigError
        Bad configuration or date, missing input file.
    EventDataError
        Corrupt/unreadable input, invalid rows with ``on_invalid="raise"``.
    NoEventsError
        No event in the training window.
    """
    t_all = time.perf_counter()
    timings: dict[str, float] = {}

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
    day = _parse_date(date)
    day_s = f"{day:%Y-%m-%d}"
    out_dir = os.path.abspath(os.fspath(out_dir))
    parent = os.path.join(out_dir, cfg["city"])
    target = os.path.join(parent, day_s)

    _recover(parent, day_s, target)
    if skip_existing and os.path.isdir(target) and _manifest_ok(target):
        with open(os.path.join(target, MANIFEST), encoding="utf-8") as fh:
            man = json.load(fh)
        man["folder"] = target
        man["skipped"] = True
        return man

    formats = list(dict.fromkeys(cfg["outputs"]["formats"]))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=6 + len(formats), unit="step", leave=False, disable=None)  # off when not a TTY
    try:
        return _run(cfg, day, day_s, parent, target, formats, step, timings, t_all)
    finally:
        if bar is not None:
            bar.close()


def _run(cfg, day, day_s, parent, target, formats, step, timings, t_all) -> dict:
    from . import io as rio
    from .zones import select_zones

    train_days = float(cfg["forecast"]["train_days"])
    horizon = float(cfg["forecast"]["horizon_days"])
    with step("read events"):
        events = events_from_config(cfg)
        input_hashes = _input_hashes(cfg)
    start_days = events.to_days(day)
    train_start = start_days - train_days
    with step("select window"):
        history = events.between(None, start_days)
        train = history.between(train_start, start_days)
        if len(train) == 0:
            raise NoEventsError(
                f"no events in the training window {day - pd.Timedelta(days=train_days):%Y-%m-%d %H:%M} → "
                f"{day_s} (the input covers {events.start} → {events.end})"
            )
    with step("build grid"):
        grid = grid_from_config(cfg, history)
    with step("fit"):
        model = model_from_spec(cfg["model"])
        model.fit(train, grid, end=start_days)
    if model.n_events_ == 0:
        raise NoEventsError(f"none of the {len(train)} events of the training window falls inside the grid")
    with step("predict"):
        risk = model.predict(start_days, horizon_days=horizon)
    with step("zones"):
        zones = select_zones(risk, grid, **cfg["zones"])

    cfg_hash = config_sha256(cfg)
    provenance = {
        "city": cfg["city"],
        "riskgrid_version": __version__,
        "forecast_date": day_s,
        "forecast_end": str((day + pd.Timedelta(days=horizon)).round("s")),
        "train_days": train_days,
        "n_events_used": int(model.n_events_),
        "input_sha256": ";".join(f"{os.path.basename(k)}={v}" for k, v in sorted(input_hashes.items())),
    }
    ds = rio.risk_dataset(risk, zones=zones, extra_attrs=provenance)
    raster_crs = cfg["outputs"]["raster_crs"]
    pixel_m = float(cfg["outputs"]["raster_pixel_m"])
    writers = {
        "netcdf": lambda p: rio.write_netcdf(ds, p),
        "zarr": lambda p: rio.write_zarr(ds, p),
        "geojson": lambda p: rio.write_geojson(ds, p, grid=grid),
        "parquet": lambda p: rio.write_parquet(ds, p, grid=grid),
        "csv": lambda p: rio.write_csv(ds, p),
        "geotiff": lambda p: rio.write_geotiff(ds, p, pixel_m=pixel_m, crs=raster_crs, grid=grid),
        "png": lambda p: rio.write_png(ds, p, zones=zones, grid=grid,
                                       title=rio.default_title(ds) + f"\n{model.n_events_:,} events in "
                                       f"{train_days:g} training days; {len(zones)} zones hold "
                                       f"{zones.captured_share:.1%} of the risk"),
        "zones": lambda p: rio.write_zones_geojson(zones, p),
    }

    created = [d for d in (os.path.dirname(parent), parent) if not os.path.isdir(d)]
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f"{_TMP_PREFIX}{day_s}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(tmp)
    try:
        for fmt in formats:
            with step(f"write {fmt}"):
                writers[fmt](os.path.join(tmp, PRODUCTS[fmt]))
        with step("hash outputs"):
            files = [
                {"path": rel, "bytes": os.path.getsize(os.path.join(tmp, rel)), "sha256": sha256_file(os.path.join(tmp, rel))}
                for rel in _tree_files(tmp)
            ]
        fit = _fit_summary(model)
        fit["n_outside_grid"] = int(model.n_outside_)
        manifest = {
            "riskgrid_version": __version__,
            "city": cfg["city"],
            "forecast_date": day_s,
            "forecast_window": [str(day), str(day + pd.Timedelta(days=horizon))],
            "training_window": [str(day - pd.Timedelta(days=train_days)), str(day)],
            "config": _jsonable(_public_config(cfg)),
            "config_path": cfg.get("_path"),
            "config_sha256": cfg_hash,
            "inputs": [{"path": k, "sha256": v} for k, v in sorted(input_hashes.items())],
            "n_events_input": int(len(events)),
            "n_events_rejected": int(len(events.rejected)),
            "n_events_train": int(len(train)),
            "n_events_used": int(model.n_events_),
            "grid": {"n_cells": len(grid), "resolution": grid.resolution, "area_km2": float(grid.area_m2.sum() / 1e6)},
            "fit": fit,
            "zones": zones.to_dict(),
            "risk_total": float(ds["risk"].sum()),
            "products": {fmt: PRODUCTS[fmt] for fmt in formats},
            "files": files,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_times_s": dict(timings, total=round(time.perf_counter() - t_all, 4)),
        }
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, allow_nan=False)
            fh.write("\n")
        _fsync_tree(tmp)
        _publish(tmp, target, parent, day_s)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in reversed(created):  # leave no empty folders behind on failure
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise
    manifest["folder"] = target
    manifest["skipped"] = False
    return manifest


def _publish(tmp: str, target: str, parent: str, day_s: str) -> None:
    """Rename the finished temporary folder into place (previous output moved aside, then deleted)."""
    old = None
    if os.path.exists(target):
        old = os.path.join(parent, f"{_OLD_PREFIX}{day_s}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    os.rename(tmp, target)
    _fsync_dir(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
