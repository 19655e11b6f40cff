"""Vector products: GeoJSON hexagons (RFC 7946), GeoParquet, CSV and the patrol-zones GeoJSON."""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from ..grid import HexGrid
from .dataset import INTERVAL_VARS, as_dataset, check_grid, risk_table

__all__ = ["hexagon_geojson", "write_geojson", "write_parquet", "write_csv", "write_zones_geojson", "write_zones_csv"]


def _json_dump(obj, path):
    # json.dumps, not json.dump: dump streams through the pure-Python encoder (about 5x slower on the hexagons);
    # dumps uses the C encoder and gives the same bytes
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.write("\n")


def hexagon_geojson(obj, grid: HexGrid | None = None) -> dict:
    """FeatureCollection of the cells with ``h3, risk`` (+ ``risk_lo, risk_hi, p_any``), ``rank, percentile``
    (+ ``zone``).

    With an interval the collection's foreign member ``"riskgrid"`` says its
    ``interval_level`` and ``interval_method``.
    """
    ds = as_dataset(obj)
    grid = check_grid(grid, ds)
    props = {"risk": ds["risk"].values}
    props.update({v: ds[v].values for v in INTERVAL_VARS if v in ds})
    props.update(rank=ds["rank"].values, percentile=ds["percentile"].values)
    if "zone" in ds:
        props["zone"] = ds["zone"].values
    out = grid.to_geojson(properties=props)
    if "risk_lo" in ds:
        out["riskgrid"] = {k: ds.attrs[k] for k in ("interval_level", "interval_method", "units")
                           if k in ds.attrs}
    return out


def write_geojson(obj, path, grid: HexGrid | None = None) -> str:
    """GeoJSON FeatureCollection of the hexagons (RFC 7946)."""
    _json_dump(hexagon_geojson(obj, grid), os.fspath(path))
    return os.fspath(path)


def _wkb_polygon(ring) -> bytes:
    """Little-endian WKB of a single-ring polygon."""
    pts = np.asarray(ring, dtype="<f8")
    return struct.pack("<BII I", 1, 3, 1, pts.shape[0]) + pts.tobytes()


def write_parquet(obj, path, grid: HexGrid | None = None) -> str:
    """Parquet table with an ``h3`` column and a GeoParquet 1.0 WKB ``geometry`` column.

    Columns: ``h3`` (string, what deck.gl's ``H3HexagonLayer`` and kepler.gl
    read), ``lat``, ``lon``, ``risk`` (+ ``risk_lo``, ``risk_hi``, ``p_any``
    when the forecast has an interval; its level and method are in the
    ``riskgrid`` schema metadata with the other attributes), ``rank``,
    ``percentile`` (+ ``zone``)
    and ``geometry`` (hexagon polygon, WKB, OGC:CRS84, counter-clockwise).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = as_dataset(obj)
    grid = check_grid(grid, ds)
    df = risk_table(ds)
    rings = grid.boundaries_lonlat()
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.append_column("geometry", pa.array([_wkb_polygon(r) for r in rings], type=pa.binary()))
    allpts = grid.vertices_lonlat
    geo = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Polygon"],
                "orientation": "counterclockwise",
                "bbox": [float(allpts[:, 0].min()), float(allpts[:, 1].min()),
                         float(allpts[:, 0].max()), float(allpts[:, 1].max())],
            }
        },
    }
    meta = dict(table.schema.metadata or {})
    meta[b"geo"] = json.dumps(geo).encode()
    meta[b"riskgrid"] = json.dumps({k: v for k, v in ds.attrs.items()}, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    pq.write_table(table, os.fspath(path), compression="zstd")
    return os.fspath(path)


def write_zones_csv(zones, path, metadata: dict | None = None) -> str:
    """CSV of the patrol zones, one row per zone (:meth:`ZoneSet.to_frame`: ``zone`` 1..n, expected events and,
    with an interval, ``expected_events_lo``, ``expected_events_hi``, ``p_any``, ...), plus a column per
    ``metadata`` entry (window, horizon, units, model) and ``interval_level`` / ``interval_method`` when set."""
    df = zones.to_frame()
    if zones.interval_level is not None:
        df["interval_level"] = float(zones.interval_level)
        df["interval_method"] = str(zones.interval_method)
    for k, v in (metadata or {}).items():
        if k in df.columns:
            raise ValueError(f"metadata may not override the zone column {k!r}")
        df[k] = v
    df.to_csv(os.fspath(path), index=False, lineterminator="\n")
    return os.fspath(path)


def write_csv(obj, path) -> str:
    """CSV with ``h3, lat, lon, risk`` (+ ``risk_lo, risk_hi, p_any``), ``rank, percentile`` (+ ``zone``); full
    float precision."""
    risk_table(obj).to_csv(os.fspath(path), index=False, lineterminator="\n")
    return os.fspath(path)


def write_zones_geojson(zones, path, metadata: dict | None = None, zone_properties: dict | None = None) -> str:
    """GeoJSON of the patrol zones (:meth:`ZoneSet.to_geojson`); ``metadata`` (window, horizon, units, model)
    goes into every zone's properties and the collection's ``"riskgrid"`` member; ``zone_properties``
    (zone number -> values, e.g. the explanation summary) into that zone's only."""
    _json_dump(zones.to_geojson(metadata=metadata, zone_properties=zone_properties), os.fspath(path))
    return os.fspath(path)

