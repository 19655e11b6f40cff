"""Job configuration files (TOML): loading, validation and builders.

One schema serves the nightly forecast job (``riskgrid forecast``) and the
walk-forward backtest. A file looks like::

    city = "chicago"

    [events]
    path = "../../shared/data/chicago_2016_2017.parquet"   # relative to this file
    category = "category"
    categories = ["BURGLARY", "ROBBERY"]    # optional filter
    on_invalid = "drop"

    [grid]
    resolution = 9
    buffer_rings = 1

    [model]
    name = "GridHawkes"
    params = { spillover_rings = 1 }

    [forecast]
    train_days = 365
    horizon_days = 1

    [zones]
    n_zones = 4
    max_cells = 7
    min_gap_rings = 1

    [outputs]
    raster_pixel_m = 50
    raster_crs = "EPSG:3857"
    formats = ["netcdf", "zarr", "geojson", "parquet", "csv", "geotiff", "png", "zones"]

The backtest reads its own ``[backtest]``, ``[models.<variant>]`` (each a
model spec like ``[model]``) and ``[output]`` tables; this module only checks
that the variants are model specs and resolves nothing else there.

Unknown keys or sections raise :class:`~riskgrid.ConfigError` naming the key
and the allowed ones. Relative paths (``events.path``, ``grid.geojson``,
``outputs.dir``) are resolved against the folder of the configuration file.
:func:`load_config` fills the defaults of the sections it knows and keeps the
file's location in ``cfg["_path"]`` (and its folder in ``cfg["_dir"]``).
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

__all__ = [
    "SCHEMA",
    "OUTPUT_FORMATS",
    "load_config",
    "validate_config",
    "events_from_config",
    "grid_from_config",
    "model_from_spec",
    "resolve_path",
]

#: Every product the forecast job can write (``[outputs] formats``).
OUTPUT_FORMATS = ("netcdf", "zarr", "geojson", "parquet", "csv", "geotiff", "png", "zones")

_ANY = object()  # "any value accepted" marker

#: section -> {key: (accepted python types, default)}; ``None`` default = optional.
#: A section mapped to ``_ANY`` is passed through unchecked (owned by another command).
SCHEMA: dict[str, Any] = {
    "events": {
        "path": ((str,), None),
        "simulate": ((dict,), None),
        "time": ((str,), "timestamp"),
        "lat": ((str,), "lat"),
        "lon": ((str,), "lon"),
        "category": ((str,), None),
        "weight": ((str,), None),
        "categories": ((list,), None),
        "on_invalid": ((str,), "raise"),
    },
    "grid": {
        "resolution": ((int,), 9),
        "buffer_rings": ((int,), 1),
        "geojson": ((str,), None),
    },
    "model": {
        "name": ((str,), None),
        "params": ((dict,), {}),
    },
    "forecast": {
        "train_days": ((int, float), 365),
        "horizon_days": ((int, float), 1),
    },
    "zones": {
        "n_zones": ((int,), 4),
        "max_cells": ((int,), 7),
        "min_gap_rings": ((int,), 1),
    },
    "outputs": {
        "dir": ((str,), None),
        "raster_pixel_m": ((int, float), 50.0),
        "raster_crs": ((str,), "EPSG:3857"),
        "formats": ((list,), list(OUTPUT_FORMATS)),
    },
    # owned by the backtest command: accepted, checked there
    "backtest": _ANY,
    "output": _ANY,
    "models": "model-specs",  # table of model specs, each like [model]
}

#: top-level scalar keys
TOP_LEVEL: dict[str, tuple] = {
    "city": ((str,), "city"),
    "description": ((str,), None),
}

#: (section, key) holding paths resolved against the configuration's folder
PATH_KEYS = (("events", "path"), ("grid", "geojson"), ("outputs", "dir"))

_RASTER_CRS = ("EPSG:3857", "EPSG:4326")


def _type_name(types: tuple) -> str:
    names = {int: "integer", float: "number", str: "string", list: "list", dict: "table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_value(where: str, value, types: tuple):
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ConfigError(f"{where} must be a {_type_name(types)}, got {value!r} ({type(value).__name__})")


def check_table(name: str, table, spec: dict) -> dict:
    """Validate one TOML table against ``spec`` = {key: ((types...), default)}; fill defaults.

    ``None`` stands for "not set" where the default is ``None`` (TOML has no
    null, but a validated configuration holds them), so validating twice gives
    the same result.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(spec))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{name}]; allowed keys: {sorted(spec)}")
    out = {}
    for key, (types, default) in spec.items():
        if key in table and not (table[key] is None and default is None):
            _check_value(f"{name}.{key}", table[key], types)
            out[key] = copy.deepcopy(table[key])
        else:
            out[key] = copy.deepcopy(default)
    return out


def _check_model_spec(where: str, spec) -> dict:
    out = check_table(where, spec, SCHEMA["model"])
    if out["name"] is None:
        raise ConfigError(f"[{where}] needs a 'name' (a model class name, e.g. \"GridHawkes\" or \"CountHotspot\")")
    return out


def resolve_path(cfg: dict, path: str | os.PathLike | None) -> str | None:
    """A path from the configuration, made absolute against the file's folder."""
    if path is None:
        return None
    path = os.path.expanduser(os.fspath(path))
    if os.path.isabs(path):
        return os.path.normpath(path)
    base = cfg.get("_dir") or os.getcwd()
    return os.path.normpath(os.path.join(base, path))


def validate_config(raw: dict, path: str | None = None) -> dict:
    """Check a configuration mapping against :data:`SCHEMA` and fill defaults.

    Parameters
    ----------
    raw : dict
        As parsed from TOML (or built in code).
    path : str, optional
        The file it came from; relative paths are resolved against its folder
        (the current directory when ``None``).

    Returns
    -------
    dict
        A new, validated mapping; sections of the schema that the input lacks
        are filled with their defaults, except ``[model]`` (kept absent) and
        the backtest's sections (passed through).

    Raises
    ------
    ConfigError
        Unknown sections or keys (naming the allowed ones), wrong types, bad
        values.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration must be a table/dict, got {type(raw).__name__}")
    allowed = sorted(set(SCHEMA) | set(TOP_LEVEL))
    cfg: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if key not in SCHEMA and key not in TOP_LEVEL:
            raise ConfigError(f"unknown section or key {key!r}; allowed: {allowed}")
    for key, (types, default) in TOP_LEVEL.items():
        if key in raw and not (raw[key] is None and default is None):
            _check_value(key, raw[key], types)
            cfg[key] = raw[key]
        else:
            cfg[key] = default
    if not cfg["city"] or any(c in cfg["city"] for c in "/\\") or cfg["city"] in (".", ".."):
        raise ConfigError(f"city must be a plain folder name (no '/'), got {cfg['city']!r}")
    for section, spec in SCHEMA.items():
        if spec is _ANY:
            if section in raw:
                if not isinstance(raw[section], dict):
                    raise ConfigError(f"[{section}] must be a table, got {type(raw[section]).__name__}")
                cfg[section] = copy.deepcopy(raw[section])
            continue
        if spec == "model-specs":
            if section in raw:
                if not isinstance(raw[section], dict):
                    raise ConfigError(f"[{section}] must be a table of model specs, got {type(raw[section]).__name__}")
                cfg[section] = {
                    variant: _check_model_spec(f"{section}.{variant}", s) for variant, s in raw[section].items()
                }
            continue
        if section == "model":
            if section in raw:
                cfg[section] = _check_model_spec(section, raw[section])
            continue
        cfg[section] = check_table(section, raw.get(section, {}), spec)

    cfg["_path"] = os.path.abspath(path) if path is not None else raw.get("_path")
    cfg["_dir"] = os.path.dirname(cfg["_path"]) if cfg["_path"] else raw.get("_dir", os.getcwd())
    for section, key in PATH_KEYS:
        if cfg.get(section, {}).get(key) is not None:
            cfg[section][key] = resolve_path(cfg, cfg[section][key])

    # ---- value checks of the sections the forecast job owns
    ev = cfg["events"]
    if ev["on_invalid"] not in ("raise", "drop"):
        raise ConfigError(f"events.on_invalid must be 'raise' or 'drop', got {ev['on_invalid']!r}")
    if ev["categories"] is not None:
        if ev["category"] is None:
            raise ConfigError("events.categories (a filter) needs events.category (the column holding the type)")
        if not ev["categories"] or not all(isinstance(c, str) for c in ev["categories"]):
            raise ConfigError(f"events.categories must be a non-empty list of strings, got {ev['categories']!r}")
    if ev["path"] is not None and ev["simulate"] is not None:
        raise ConfigError("[events] takes either 'path' (an event file) or 'simulate' (rg.simulate arguments), not both")
    g = cfg["grid"]
    if not 0 <= g["resolution"] <= 15:
        raise ConfigError(f"grid.resolution must be an H3 resolution in 0..15, got {g['resolution']}")
    if g["buffer_rings"] < 0:
        raise ConfigError(f"grid.buffer_rings must be >= 0, got {g['buffer_rings']}")
    fc = cfg["forecast"]
    for key in ("train_days", "horizon_days"):
        if not fc[key] > 0:
            raise ConfigError(f"forecast.{key} must be > 0 (days), got {fc[key]}")
    z = cfg["zones"]
    if z["n_zones"] < 0 or z["max_cells"] < 1 or z["min_gap_rings"] < 0:
        raise ConfigError(
            f"zones: need n_zones >= 0, max_cells >= 1, min_gap_rings >= 0; got {z['n_zones']}, "
            f"{z['max_cells']}, {z['min_gap_rings']}"
        )
    o = cfg["outputs"]
    if not o["raster_pixel_m"] > 0:
        raise ConfigError(f"outputs.raster_pixel_m must be > 0 (metres), got {o['raster_pixel_m']}")
    if o["raster_crs"].upper() not in _RASTER_CRS:
        raise ConfigError(f"outputs.raster_crs must be one of {list(_RASTER_CRS)}, got {o['raster_crs']!r}")
    o["raster_crs"] = o["raster_crs"].upper()
    bad = [f for f in o["formats"] if f not in OUTPUT_FORMATS]
    if bad:
        raise ConfigError(f"unknown output format(s) {bad} in outputs.formats; allowed: {list(OUTPUT_FORMATS)}")
    return cfg


def load_config(path: str | os.PathLike) -> dict:
    """Read and validate a TOML job configuration.

    Parameters
    ----------
    path : str or path-like
        The ``.toml`` file.

    Returns
    -------
    dict
        Validated configuration with defaults filled in, absolute paths, and
        ``"_path"`` (the file) / ``"_dir"`` (its folder).

    Raises
    ------
    ConfigError
        Missing or unreadable file, TOML syntax error, unknown key or section
        (the message names the key and the allowed ones), bad value.
    """
    path = os.fspath(path)
    return validate_config(read_toml(path, "configuration file"), path)


def read_toml(path: str | os.PathLike, what: str = "file") -> dict:
    """Parse a TOML file; a missing, unreadable or malformed file is a :class:`ConfigError`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def events_from_config(cfg: dict):
    """Build the :class:`~riskgrid.EventSet` described by ``[events]``.

    Either reads ``events.path`` (Parquet/CSV, via :func:`riskgrid.read_events`)
    or simulates a city with :func:`riskgrid.simulate` (``events.simulate`` =
    its keyword arguments), then keeps ``events.categories`` when given.

    Raises
    ------
    ConfigError
        Neither ``path`` nor ``simulate`` given, file not found, unknown
        category in the filter.
    EventDataError
        Unreadable/corrupt file or invalid rows with ``on_invalid="raise"``.
    """
    from .events import EventSet, read_events
    from .simulate import simulate

    ev = cfg["events"]
    kwargs = dict(time=ev["time"], lat=ev["lat"], lon=ev["lon"], category=ev["category"], weight=ev["weight"],
                  on_invalid=ev["on_invalid"])
    if ev.get("path") is not None:
        path = resolve_path(cfg, ev["path"])
        if not os.path.exists(path):
            raise ConfigError(f"events.path: event file not found: {path}")
        events = read_events(path, **kwargs)
    elif ev.get("simulate") is not None:
        try:
            df = simulate(**ev["simulate"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"events.simulate: {exc}") from exc
        kwargs.update(time="timestamp", lat="lat", lon="lon", category="category")
        events = EventSet.from_frame(df, **kwargs)
        events.source = "simulate"
    else:
        raise ConfigError("[events] needs 'path' (an event file) or 'simulate' (a table of rg.simulate arguments)")
    if ev.get("categories"):
        try:
            events = events.select(ev["categories"])
        except ValueError as exc:
            raise ConfigError(f"events.categories: {exc}") from exc
    return events


def grid_from_config(cfg: dict, events):
    """Build the study-area :class:`~riskgrid.HexGrid` from ``[grid]``.

    ``grid.geojson`` (a polygon file) wins; otherwise every cell holding one
    of ``events`` plus ``grid.buffer_rings`` rings around them.
    """
    from .distributed import GridSpec

    g = cfg["grid"]
    geojson = resolve_path(cfg, g["geojson"]) if g.get("geojson") else None
    return GridSpec(resolution=g["resolution"], buffer_rings=g["buffer_rings"], geojson=geojson).build(events)


def model_from_spec(spec: dict):
    """Build an unfitted model from ``{"name": ..., "params": {...}}``.

    Uses :func:`riskgrid.models.make_model`; unknown models or parameters raise
    :class:`~riskgrid.ConfigError` naming the accepted ones.
    """
    from .models import make_model

    spec = _check_model_spec("model", spec)
    return make_model(spec["name"], **spec["params"])
