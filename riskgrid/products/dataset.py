"""The forecast Dataset: ``risk``, ``rank``, ``percentile`` (+ ``zone``) over ``cell``, attributes safe for every format.

Definitions: ``rank`` is 1 for the highest risk (ties broken by cell order);
``percentile`` is the percentage of cells whose risk is lower than or equal to
the cell's own (100 for the top cell).

Attributes: a model's ``predict`` carries its parameters and fit diagnostics
as attributes of any Python type (bools, ``None``, arrays, dicts). NetCDF
refuses bools, ``None`` and nested values, Zarr refuses NaN in strict JSON;
:func:`clean_attrs` makes every value a string or a finite number
(bools → 0/1, numpy scalars → Python numbers, arrays/lists/dicts → sorted
JSON text, ``None`` left out, non-finite floats → text), so every product
accepts the attributes of every model.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import xarray as xr

from ..grid import HexGrid
from ..metrics import rank_cells

__all__ = ["clean_attr", "clean_attrs", "rank_percentile", "risk_dataset", "as_dataset", "grid_of", "check_grid",
           "risk_table", "str_objects", "INTERVAL_VARS"]


def _json_default(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return str(v)


def clean_attr(v):
    """An attribute value that NetCDF, Zarr and GeoTIFF tags all accept (str or finite number), or ``None`` to drop."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    if isinstance(v, (int, str)):
        return v
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return clean_attr(v.item())
    try:
        return json.dumps(v, sort_keys=True, default=_json_default)
    except (TypeError, ValueError):
        return str(v)


def clean_attrs(attrs: dict) -> dict:
    """:func:`clean_attr` of every value; keys as strings; ``None`` values left out."""
    out = {}
    for k, v in attrs.items():
        v = clean_attr(v)
        if v is not None:
            out[str(k)] = v
    return out


def str_objects(values) -> np.ndarray:
    """Any string array (fixed width, StringDType, object) as an object array of ``str``."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=object)


def rank_percentile(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rank`` (1 = highest, ties by position) and ``percentile`` (% of cells <= value)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    order = rank_cells(v)
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(1, n + 1, dtype=np.int32)
    srt = np.sort(v)
    pct = 100.0 * np.searchsorted(srt, v, side="right") / max(n, 1)
    return rank, pct


#: per-cell interval variables a forecast Dataset may carry (:meth:`riskgrid.models.RiskModel.predict_interval`)
INTERVAL_VARS = ("risk_lo", "risk_hi", "p_any")


def risk_dataset(risk, zones=None, extra_attrs: dict | None = None, interval=None) -> xr.Dataset:
    """The standard export Dataset of a forecast.

    Parameters
    ----------
    risk : xarray.DataArray or xarray.Dataset
        The ``risk`` DataArray of ``model.predict`` (dims ``cell`` or
        ``(category, cell)``), or a Dataset holding one.
    zones : ZoneSet, optional
        Adds ``zone`` (int32 per cell: its zone number 1..n, 0 outside every
        zone), the zones summary attributes, and per zone (dimension
        ``zone_number``, coordinate 1..n) ``zone_risk`` (expected events) and,
        when the zones carry an interval (:meth:`ZoneSet.with_interval`),
        ``zone_risk_lo``, ``zone_risk_hi`` (interval of the zone's total
        count) and ``zone_p_any``.
    extra_attrs : dict, optional
        More provenance attributes (str/number values).
    interval : xarray.Dataset, optional
        A model's ``predict_interval`` (same cells): adds ``risk_lo``,
        ``risk_hi`` (central interval of each cell's count, events) and
        ``p_any`` (probability of at least one event) and the attributes
        ``interval_level``, ``interval_method`` (and ``interval_n_sims``,
        ``interval_seed`` for simulated intervals). A Dataset ``risk`` that
        already holds them keeps them.

    Returns
    -------
    xarray.Dataset
        ``risk`` (total over categories, expected events per cell in the
        window), ``rank`` (1 = highest), ``percentile`` (0-100], optional
        ``risk_by_category`` and ``zone``; coordinates ``h3`` (str),
        ``h3_int`` (uint64), ``lat``, ``lon`` (degrees); attributes of the
        forecast (model, parameters, window, units) made serialisable.
    """
    attrs = None
    if isinstance(risk, xr.Dataset):
        if "rank" in risk and "percentile" in risk and zones is None and not extra_attrs:
            return risk
        ds_in = risk
        attrs = dict(ds_in.attrs)  # the forecast's provenance lives on the Dataset
        if interval is None and all(v in ds_in for v in INTERVAL_VARS):
            interval = ds_in  # (its interval attributes are among attrs already)
        risk = ds_in["risk"]
        if "risk_by_category" in ds_in:
            risk = ds_in["risk_by_category"]
    if not isinstance(risk, xr.DataArray):
        raise TypeError(f"risk must be an xarray DataArray/Dataset from a model's predict, got {type(risk).__name__}")
    missing = [k for k in ("h3", "h3_int", "lat", "lon") if k not in risk.coords]
    if "cell" not in risk.dims or missing:
        raise ValueError(
            f"risk must have a 'cell' dimension with 'h3', 'h3_int', 'lat' and 'lon' coordinates; "
            f"got dims {risk.dims}, missing {missing}"
        )
    if attrs is None:
        attrs = dict(risk.attrs)
    total = risk.sum("category") if "category" in risk.dims else risk
    values = np.asarray(total.values, dtype=np.float64)
    rank, pct = rank_percentile(values)
    coords = {
        "h3": ("cell", str_objects(risk.coords["h3"].values)),
        "h3_int": ("cell", np.asarray(risk.coords["h3_int"].values)),
        "lat": ("cell", np.asarray(risk.coords["lat"].values, dtype=np.float64), {"units": "degrees_north"}),
        "lon": ("cell", np.asarray(risk.coords["lon"].values, dtype=np.float64), {"units": "degrees_east"}),
    }
    data = {
        "risk": ("cell", values, {"units": attrs.get("units", "expected events per cell in the forecast window"),
                                  "long_name": "forecast risk"}),
        "rank": ("cell", rank, {"long_name": "rank of the cell by risk (1 = highest)"}),
        "percentile": ("cell", pct, {"units": "percent", "long_name": "share of cells with lower or equal risk"}),
    }
    if "category" in risk.dims:
        data["risk_by_category"] = (("category", "cell"), np.asarray(risk.values, dtype=np.float64),
                                    {"units": attrs.get("units", "")})
        coords["category"] = [str(c) for c in risk.coords["category"].values]
    if interval is not None:
        data.update(_interval_data(interval, values.size))
        for key in ("interval_level", "interval_method"):
            if key not in interval.attrs:
                raise ValueError(f"interval lacks the attribute {key!r}; pass a model's predict_interval()")
            attrs[key] = interval.attrs[key]
        for key in ("n_sims", "seed"):
            if key in interval.attrs:
                attrs[f"interval_{key}"] = interval.attrs[key]
    if zones is not None:
        data["zone"] = ("cell", zones.cell_zone.astype(np.int32), {"long_name": "patrol zone (1-based, 0 none)"})
        if len(zones):
            coords["zone_number"] = ("zone_number", np.arange(1, len(zones) + 1, dtype=np.int32),
                                     {"long_name": "patrol zone number (1-based)"})
            data["zone_risk"] = ("zone_number", np.array([z.risk for z in zones.zones], dtype=np.float64),
                                 {"units": "expected events in the zone in the forecast window"})
            if zones.interval_level is not None:
                lev = float(zones.interval_level)
                for name, key, text in (("zone_risk_lo", "risk_lo", f"{(1 - lev) / 2:g} quantile of the zone's count"),
                                        ("zone_risk_hi", "risk_hi", f"{(1 + lev) / 2:g} quantile of the zone's count")):
                    data[name] = ("zone_number", np.array([getattr(z, key) for z in zones.zones], dtype=np.float64),
                                  {"units": "events in the zone in the forecast window", "long_name": text})
                data["zone_p_any"] = ("zone_number", np.array([z.p_any for z in zones.zones], dtype=np.float64),
                                      {"units": "1", "long_name": "probability of at least one event in the zone"})
                attrs.update(zones_interval_level=lev, zones_interval_method=str(zones.interval_method))
        attrs.update(
            zones_n=len(zones),
            zones_captured_share=float(zones.captured_share),
            zones_best_unconstrained_share=float(zones.best_unconstrained_share),
            zones_params=json.dumps(zones.params, sort_keys=True),
        )
    attrs.update(extra_attrs or {})
    ds = xr.Dataset(data, coords=coords, attrs=clean_attrs(attrs))
    return ds


def _interval_data(interval, n_cells: int) -> dict:
    """``risk_lo``, ``risk_hi``, ``p_any`` (cell) of a ``predict_interval`` Dataset, checked."""
    if not isinstance(interval, xr.Dataset) or any(v not in interval for v in INTERVAL_VARS):
        raise TypeError(f"interval must be an xarray Dataset with {list(INTERVAL_VARS)} (a model's predict_interval)")
    level = float(interval.attrs.get("interval_level", float("nan")))
    out = {}
    for name, text in (("risk_lo", f"{(1 - level) / 2:g} quantile of the count"),
                       ("risk_hi", f"{(1 + level) / 2:g} quantile of the count"),
                       ("p_any", "probability of at least one event in the forecast window")):
        v = np.asarray(interval[name].values, dtype=np.float64)
        if v.shape != (n_cells,):
            raise ValueError(f"interval {name} has shape {v.shape}, the forecast has {n_cells} cells")
        out[name] = ("cell", v, {"units": "1" if name == "p_any" else "events in the forecast window", "long_name": text})
    return out


def as_dataset(obj) -> xr.Dataset:
    return risk_dataset(obj) if not (isinstance(obj, xr.Dataset) and "rank" in obj) else obj


def grid_of(obj) -> HexGrid:
    """The :class:`HexGrid` a forecast is defined on (rebuilt from ``h3_int``)."""
    cells = np.asarray(obj["h3_int"].values, dtype=np.uint64)
    grid = HexGrid.from_cells(cells)
    if not np.array_equal(grid.cells, cells):
        raise ValueError("the forecast's cells are not in sorted grid order; pass grid= explicitly")
    return grid


def check_grid(grid: HexGrid, ds: xr.Dataset) -> HexGrid:
    if grid is None:
        return grid_of(ds)
    if len(grid) != ds.sizes["cell"] or not np.array_equal(grid.cells, np.asarray(ds["h3_int"].values, np.uint64)):
        raise ValueError(f"grid ({len(grid)} cells) does not match the forecast ({ds.sizes['cell']} cells)")
    return grid


def risk_table(obj) -> pd.DataFrame:
    """One row per cell: ``h3, lat, lon, risk`` (+ ``risk_lo, risk_hi, p_any``), ``rank, percentile`` (+ ``zone``)."""
    ds = as_dataset(obj)
    cols = {
        "h3": str_objects(ds["h3"].values),
        "lat": ds["lat"].values,
        "lon": ds["lon"].values,
        "risk": ds["risk"].values,
        **{v: ds[v].values for v in INTERVAL_VARS if v in ds},
        "rank": ds["rank"].values,
        "percentile": ds["percentile"].values,
    }
    if "zone" in ds:
        cols["zone"] = ds["zone"].values
    return pd.DataFrame(cols)

