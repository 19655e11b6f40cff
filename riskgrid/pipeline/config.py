"""The one configuration schema (TOML) of forecast, backtest and batch files, and the one path resolver.

A forecast or backtest file looks like::

    city = "chicago"

    [events]
    path = "../../shared/data/chicago_2016_2017.parquet"   # relative to this file
    category = "category"
    categories = ["BURGLARY", "ROBBERY"]    # optional filter
    on_invalid = "drop"

    [grid]
    resolution = 9
    buffer_rings = 1
    # geojson = "city.geojson"             # a polygon: the study area (see below)

    [model]                                 # the forecast's model
    name = "GridHawkes"
    params = { spillover_rings = 1 }

    [forecast]
    train_days = 365
    horizon_days = 1
    max_staleness_days = 3                  # the job stops when the last event is older than this before --date
    # allow_stale = true                    # ... or runs anyway, recording the staleness
    interval = true                         # per-cell and per-zone interval of the count and P(any); false: none
    interval_level = 0.9                    # central interval: the 5 % and 95 % quantiles
    n_sims = 500                            # simulated futures (GridHawkes, SEPP; the baselines' interval is Poisson):
                                            # ~1 s for GridHawkes on a year of Chicago burglary (5,300 cells)

    [zones]
    n_zones = 4
    max_cells = 7
    min_gap_rings = 1

    [backtest]                              # only read by `riskgrid backtest`
    start = "2017-01-01"
    end = "2018-01-01"
    step_days = 7
    horizon_days = 7
    interval_levels = [0.5, 0.9]            # calibration columns (coverage per level, CRPS); [] for none
    n_sims = 100                            # simulated futures per origin for simulating models

    [models.count]                          # backtest variants, each like [model]
    name = "CountHotspot"

    [outputs]
    dir = "out"                             # relative to this file
    raster_pixel_m = 50
    raster_crs = "EPSG:3857"
    formats = ["netcdf", "zarr", "geojson", "parquet", "csv", "geotiff", "png", "zones", "briefing"]
    exposure_log = true                     # append the flagged cells to OUT/exposure/ (riskgrid audit)

Every section has one meaning in every command: ``[outputs]`` is the output
section of the forecast *and* the backtest (the backtest reads its ``dir``);
the older singular ``[output]`` is still accepted with a ``FutureWarning``
asking to rename it. Unknown sections and keys raise
:class:`~riskgrid.ConfigError` naming the key and the allowed ones.

Batch files (``riskgrid batch``) use the job fields of
:mod:`riskgrid.pipeline.specs`; their checks (:func:`check_days`,
:func:`check_on_invalid`, :func:`check_grid`) are the functions used here, so
a value means the same and fails the same way in every file. Every relative
path of every file (``events.path``, ``grid.geojson``, ``outputs.dir``, a
batch job's ``source``/``config``/``grid.geojson``) is resolved by
:func:`resolve` against the folder of the file that holds it.

This module imports no heavy library (the CLI reports a bad file in well
under a second).
"""

from __future__ import annotations

import copy
import os
import sys
import warnings
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError

__all__ = [
    "SCHEMA",
    "OUTPUT_FORMATS",
    "BACKTEST_KEYS",
    "load_config",
    "validate_config",
    "read_toml",
    "check_table",
    "check_model_spec",
    "check_days",
    "check_on_invalid",
    "check_grid",
    "check_name",
    "resolve",
    "resolve_path",
]

#: Every product the forecast job can write (``[outputs] formats``).
OUTPUT_FORMATS = ("netcdf", "zarr", "geojson", "parquet", "csv", "geotiff", "png", "zones", "briefing")

#: keys of ``[backtest]`` with their accepted types and defaults (``None``: optional, or required by the backtest)
BACKTEST_KEYS: dict[str, tuple] = {
    "start": ((str,), None),
    "end": ((str,), None),
    "step_days": ((int, float), 7),
    "horizon_days": ((int, float), 7),
    "train_days": ((int, float), None),
    "coverage": ((list,), [0.01, 0.02, 0.05, 0.10]),
    "categories": ((list, str), None),
    "reference": ((str,), None),
    "n_boot": ((int,), 2000),
    "seed": ((int,), 0),
    "n_jobs": ((int,), None),
    "on_error": ((str,), "raise"),
    "interval_levels": ((list,), [0.5, 0.9]),
    "n_sims": ((int,), 100),
}

#: section -> {key: (accepted python types, default)}; ``None`` default = optional.
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
        "target": ((list, str), None),
        "indicators": ((list, str), None),
        "on_invalid": ((str,), "raise"),
        "id": ((str,), None),
        "time_format": ((str,), None),
        "year_range": ((list,), None),
        "bbox": ((list,), None),
        "within": ((str,), None),
        "far_km": ((str, int, float), "auto"),
        "keep_duplicates": ((bool,), None),
        "source_column": ((str,), None),
        "discovered": ((str, int, float), "keep"),
    },
    "grid": {
        "resolution": ((int,), 9),
        "buffer_rings": ((int,), 1),
        "geojson": ((str,), None),
    },
    "model": {
        "name": ((str,), None),
        "params": ((dict,), {}),
        "select": ((dict,), None),
    },
    "forecast": {
        "train_days": ((int, float), 365),
        "horizon_days": ((int, float), 1),
        "max_staleness_days": ((int, float), 3),
        "allow_stale": ((bool,), False),
        "interval": ((bool,), True),
        "interval_level": ((int, float), 0.9),
        "n_sims": ((int,), 500),
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
        "exposure_log": ((bool,), True),
    },
    "backtest": BACKTEST_KEYS,
    "models": "model-specs",  # table of model specs, each like [model]
}

#: deprecated section name -> its name in the schema
DEPRECATED_SECTIONS = {"output": "outputs"}

#: top-level scalar keys
TOP_LEVEL: dict[str, tuple] = {
    "city": ((str,), "city"),
    "description": ((str,), None),
}

#: (section, key) holding paths resolved against the configuration's folder
PATH_KEYS = (("events", "path"), ("grid", "geojson"), ("outputs", "dir"))

_RASTER_CRS = ("EPSG:3857", "EPSG:4326")


# --------------------------------------------------------------------------- #
# value checks shared by configuration files and job specs
# --------------------------------------------------------------------------- #
def _type_name(types: tuple) -> str:
    names = {int: "integer", float: "number", str: "string", list: "list", dict: "table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_value(where: str, value, types: tuple):
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ConfigError(f"{where} must be a {_type_name(types)}, got {value!r} ({type(value).__name__})")


def check_days(where: str, value, optional: bool = False):
    """A positive number of days (``None`` allowed when ``optional``); :class:`ConfigError` otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ConfigError(f"{where} must be a number of days > 0{' or None' if optional else ''}, got {value!r}")
    if not float(value) > 0:
        raise ConfigError(f"{where} must be > 0 (days){' or None' if optional else ''}, got {value}")
    if not float(value) <= MAX_DAYS:
        raise ConfigError(f"{where} must be at most {MAX_DAYS:,} days (100 years; dates are only representable up "
                          f"to the year 2262), got {value}")
    return value


#: longest period (days) a setting may span (a date plus it must stay representable)
MAX_DAYS = 36_525

#: longest city / job name (characters); names become folder and file names
MAX_NAME = 100


def check_interval_level(where: str, value, many: bool = False):
    """A forecast interval level in (0, 1), or (``many``) a list of distinct ones (empty: no interval)."""
    values = value if many else [value]
    if many and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list of levels in (0, 1) (e.g. [0.5, 0.9]; [] for none), got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < float(v) < 1:
            raise ConfigError(f"{where} must be {'levels' if many else 'a level'} in (0, 1) (e.g. 0.9 for the 5 % "
                              f"and 95 % quantiles), got {value!r}")
    if many and len(set(float(v) for v in values)) != len(values):
        raise ConfigError(f"{where} lists a level twice: {value!r}")
    return value


def check_name(where: str, name) -> str:
    """A city or job name usable as a folder name: printable text of 1..100 characters, no path separator,
    no leading dot (so never ``.tmp-``/``.old-``, the job's own temporary names), no surrounding spaces."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where} must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise ConfigError(f"{where} must be at most {MAX_NAME} characters, got {len(name)}: {name[:40]!r}...")
    if not name.isprintable():
        raise ConfigError(f"{where} must be printable text (no newline, tab or NUL), got {name!r}")
    if name != name.strip():
        raise ConfigError(f"{where} must not start or end with a space, got {name!r}")
    if any(c in name for c in "/\\"):
        raise ConfigError(f"{where} must be a plain folder name (no '/' or '\\'), got {name!r}")
    if name.startswith("."):
        raise ConfigError(f"{where} must not start with a dot (names beginning '.tmp-'/'.old-' are the job's "
                          f"temporary folders), got {name!r}")
    return name


def check_on_invalid(where: str, value) -> str:
    """``"raise"`` or ``"drop"`` (see :meth:`riskgrid.EventSet.from_frame`)."""
    if value not in ("raise", "drop"):
        raise ConfigError(f"{where} must be 'raise' or 'drop', got {value!r}")
    return value


def check_grid(where: str, resolution, buffer_rings) -> None:
    """An H3 resolution in 0..15 and a ring count >= 0."""
    for key, v in (("resolution", resolution), ("buffer_rings", buffer_rings)):
        if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__")):
            raise ConfigError(f"{where}.{key} must be an integer, got {v!r}")
    if not 0 <= resolution <= 15:
        raise ConfigError(f"{where}.resolution must be an H3 resolution in 0..15, got {resolution}")
    if buffer_rings < 0:
        raise ConfigError(f"{where}.buffer_rings must be >= 0, got {buffer_rings}")


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


def check_discovered(where: str, value):
    """``"keep"``, ``"exclude"`` or a weight strictly between 0 and 1 for police-discovered records."""
    if isinstance(value, str) and value in ("keep", "exclude"):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise ConfigError(f"{where} must be 'keep', 'exclude' or a weight in (0, 1) for discovered records, got {value!r}")


def check_event_options(ev: dict, cfg: dict) -> None:
    """Check the validation keys of ``[events]`` (``year_range``, ``bbox``, ``within``, ``far_km``,
    ``time_format``, ``source_column``/``discovered``) in place; ``within`` is resolved as a path, or
    ``"grid"``: the ``[grid] geojson`` polygon."""
    yr = ev["year_range"]
    if yr is not None and (len(yr) != 2 or not all(isinstance(y, int) and not isinstance(y, bool) for y in yr)
                           or yr[0] > yr[1]):
        raise ConfigError(f"events.year_range must be [first_year, last_year] (integers, first <= last), got {yr!r}")
    bb = ev["bbox"]
    if bb is not None:
        if len(bb) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bb):
            raise ConfigError(f"events.bbox must be [min_lon, min_lat, max_lon, max_lat] (degrees), got {bb!r}")
        if not (-180 <= bb[0] < bb[2] <= 180 and -90 <= bb[1] < bb[3] <= 90):
            raise ConfigError(f"events.bbox must be [min_lon, min_lat, max_lon, max_lat] with min < max, longitudes "
                              f"in [-180, 180] and latitudes in [-90, 90], got {bb!r}")
    far = ev["far_km"]
    if isinstance(far, str):
        if far not in ("auto", "off"):
            raise ConfigError(f"events.far_km must be 'auto', 'off' or a distance in km > 0, got {far!r}")
    elif not (far > 0 and far < float("inf")):
        raise ConfigError(f"events.far_km must be 'auto', 'off' or a finite distance in km > 0, got {far!r}")
    if ev["time_format"] is not None and not ev["time_format"].strip():
        raise ConfigError("events.time_format must be a strftime pattern (e.g. \"%d/%m/%Y %H:%M\") or \"ISO8601\"")
    if ev["within"] == "grid":
        if not cfg["grid"].get("geojson"):
            raise ConfigError("events.within = \"grid\" needs [grid] geojson (the polygon of the study area)")
    elif ev["within"] is not None:
        ev["within"] = resolve_path(cfg, ev["within"])
    ev["discovered"] = check_discovered("events.discovered", ev["discovered"])
    if ev["discovered"] != "keep" and ev["source_column"] is None:
        raise ConfigError("events.discovered needs events.source_column (the column saying reported / discovered)")


def event_options(ev: dict, grid_geojson: str | None = None) -> dict:
    """Keyword arguments of :meth:`riskgrid.EventSet.from_frame` from a validated ``[events]`` table."""
    out = {}  # only what differs from from_frame's defaults (equal configurations give equal jobs)
    for key in ("time_format", "keep_duplicates"):
        if ev.get(key) is not None:
            out[key] = ev[key]
    if ev.get("far_km", "auto") != "auto":
        out["far_km"] = ev["far_km"]
    if ev.get("year_range") is not None:
        out["year_range"] = tuple(ev["year_range"])
    if ev.get("bbox") is not None:
        out["bbox"] = tuple(float(v) for v in ev["bbox"])
    if ev.get("within") is not None:
        out["within"] = grid_geojson if ev["within"] == "grid" else ev["within"]
    return out


#: keys of ``[model] select = {...}``: the parameters of riskgrid.models.WalkForwardSearch
SELECT_KEYS = {
    "candidates": ((dict,), None),
    "n_folds": ((int,), 4),
    "metric": ((str,), "loglik"),
    "coverage": ((int, float), 0.01),
    "step_days": ((int, float), None),
    "train_days": ((int, float), None),
}


def check_model_spec(where: str, spec) -> dict:
    """A ``{name, params}`` model spec; ``select = {candidates = {...}, ...}`` becomes a WalkForwardSearch.

    ``select`` picks among its candidates (each a ``{name, params}`` spec) by
    walk-forward validation inside each training window (see
    :class:`riskgrid.models.WalkForwardSearch`); it replaces ``name``.
    """
    out = check_table(where, spec, SCHEMA["model"])
    select = out.pop("select")
    if select is not None:
        if out["name"] not in (None, "WalkForwardSearch") or out["params"]:
            raise ConfigError(f"[{where}] takes either name/params or select = {{candidates = ...}}, not both")
        sel = check_table(f"{where}.select", select, SELECT_KEYS)
        cands = sel.pop("candidates")
        if not cands:
            raise ConfigError(f"{where}.select needs candidates = {{ <label> = {{ name = ..., params = {{...}} }}, ... }}")
        sel["candidates"] = {label: check_model_spec(f"{where}.select.candidates.{label}", c) for label, c in cands.items()}
        return {"name": "WalkForwardSearch", "params": {k: v for k, v in sel.items() if v is not None}}
    if out["name"] is None:
        raise ConfigError(f"[{where}] needs a 'name' (a model class name, e.g. \"GridHawkes\" or \"CountHotspot\")")
    return out


# --------------------------------------------------------------------------- #
# paths
# --------------------------------------------------------------------------- #
def resolve(path: str | os.PathLike | None, base: str | os.PathLike | None) -> str | None:
    """The one path resolver: ``path`` made absolute against the folder ``base`` (cwd when ``None``).

    ``~`` is expanded; URLs (``s3://...``) and ``None`` come back unchanged.
    """
    if path is None:
        return None
    path = os.fspath(path)
    if "://" in path:
        return path
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(os.fspath(base) if base else os.getcwd(), path))


def resolve_path(cfg: dict, path: str | os.PathLike | None) -> str | None:
    """A path from a configuration, made absolute against the file's folder (``cfg["_dir"]``)."""
    return resolve(path, cfg.get("_dir"))


# --------------------------------------------------------------------------- #
# files
# --------------------------------------------------------------------------- #
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
        are filled with their defaults, except ``[model]`` and ``[models]``
        (kept absent). Idempotent.

    Raises
    ------
    ConfigError
        Unknown sections or keys (naming the allowed ones), wrong types, bad
        values.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration must be a table/dict, got {type(raw).__name__}")
    raw = dict(raw)
    for old, new in DEPRECATED_SECTIONS.items():
        if old in raw:
            if new in raw:
                raise ConfigError(f"both [{old}] and [{new}] given; [{old}] is the deprecated name of [{new}]: merge them")
            warnings.warn(
                f"the [{old}] section is deprecated: rename it to [{new}] (same keys); [{old}] will stop working "
                f"in a later version", FutureWarning, stacklevel=3,
            )
            raw[new] = raw.pop(old)
    allowed = sorted(set(SCHEMA) | set(TOP_LEVEL))
    cfg: dict[str, Any] = {}
    for key in raw:
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
    check_name("city", cfg["city"])
    for section, spec in SCHEMA.items():
        if spec == "model-specs":
            if section in raw:
                if not isinstance(raw[section], dict):
                    raise ConfigError(f"[{section}] must be a table of model specs, got {type(raw[section]).__name__}")
                cfg[section] = {
                    variant: check_model_spec(f"{section}.{variant}", s) for variant, s in raw[section].items()
                }
            continue
        if section == "model":
            if section in raw:
                cfg[section] = check_model_spec(section, raw[section])
            continue
        cfg[section] = check_table(section, raw.get(section, {}), spec)

    cfg["_path"] = os.path.abspath(path) if path is not None else raw.get("_path")
    cfg["_dir"] = os.path.dirname(cfg["_path"]) if cfg["_path"] else raw.get("_dir", os.getcwd())
    for section, key in PATH_KEYS:
        if cfg.get(section, {}).get(key) is not None:
            cfg[section][key] = resolve_path(cfg, cfg[section][key])

    ev = cfg["events"]
    check_on_invalid("events.on_invalid", ev["on_invalid"])
    if ev["categories"] is not None:
        if ev["category"] is None:
            raise ConfigError("events.categories (a filter) needs events.category (the column holding the type)")
        if not ev["categories"] or not all(isinstance(c, str) for c in ev["categories"]):
            raise ConfigError(f"events.categories must be a non-empty list of strings, got {ev['categories']!r}")
    for key in ("target", "indicators"):
        if isinstance(ev[key], str):
            ev[key] = [ev[key]]
        if ev[key] is not None and (not ev[key] or not all(isinstance(c, str) for c in ev[key])):
            raise ConfigError(f"events.{key} must be a non-empty list of category labels, got {ev[key]!r}")
    if ev["indicators"] and not ev["target"]:
        raise ConfigError("events.indicators need events.target (the categories that are forecast)")
    if ev["target"] is not None:
        if ev["category"] is None:
            raise ConfigError("events.target needs events.category (the column holding the type)")
        both = sorted(set(ev["target"]) & set(ev["indicators"] or ()))
        if both:
            raise ConfigError(f"categories {both} are both in events.target and events.indicators")
        if ev["categories"] is not None:
            missing = sorted(set(ev["target"]) | set(ev["indicators"] or ()) - set(ev["categories"]))
            if missing:
                raise ConfigError(f"events.target/indicators {missing} are not in the events.categories filter {ev['categories']}")
    if ev["path"] is not None and ev["simulate"] is not None:
        raise ConfigError("[events] takes either 'path' (an event file) or 'simulate' (rg.simulate arguments), not both")
    check_event_options(ev, cfg)
    check_grid("grid", cfg["grid"]["resolution"], cfg["grid"]["buffer_rings"])
    for key in ("train_days", "horizon_days", "max_staleness_days"):
        check_days(f"forecast.{key}", cfg["forecast"][key])
    check_interval_level("forecast.interval_level", cfg["forecast"]["interval_level"])
    if cfg["forecast"]["n_sims"] < 1:
        raise ConfigError(f"forecast.n_sims must be >= 1 (simulated futures), got {cfg['forecast']['n_sims']}")
    z = cfg["zones"]
    if z["n_zones"] < 0 or z["max_cells"] < 1 or z["min_gap_rings"] < 0:
        raise ConfigError(
            f"zones: need n_zones >= 0, max_cells >= 1, min_gap_rings >= 0; got {z['n_zones']}, "
            f"{z['max_cells']}, {z['min_gap_rings']}"
        )
    bt = cfg["backtest"]
    for key in ("step_days", "horizon_days"):
        check_days(f"backtest.{key}", bt[key])
    check_days("backtest.train_days", bt["train_days"], optional=True)
    if bt["on_error"] not in ("raise", "skip"):
        raise ConfigError(f"backtest.on_error must be 'raise' or 'skip', got {bt['on_error']!r}")
    check_interval_level("backtest.interval_levels", bt["interval_levels"], many=True)
    if bt["n_sims"] < 1:
        raise ConfigError(f"backtest.n_sims must be >= 1 (simulated futures per origin), got {bt['n_sims']}")
    o = cfg["outputs"]
    if not 0 < o["raster_pixel_m"] < float("inf"):
        raise ConfigError(f"outputs.raster_pixel_m must be > 0 (metres), got {o['raster_pixel_m']}")
    if o["raster_crs"].upper() not in _RASTER_CRS:
        raise ConfigError(f"outputs.raster_crs must be one of {list(_RASTER_CRS)}, got {o['raster_crs']!r}")
    o["raster_crs"] = o["raster_crs"].upper()
    bad = [f for f in o["formats"] if f not in OUTPUT_FORMATS]
    if bad:
        raise ConfigError(f"unknown output format(s) {bad} in outputs.formats; allowed: {list(OUTPUT_FORMATS)}")
    return cfg


def load_config(path: str | os.PathLike) -> dict:
    """Read and validate a TOML configuration file (forecast and/or backtest).

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
