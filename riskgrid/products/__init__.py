"""Products of a forecast: the Dataset, its array, vector and raster exports, the map, the ``.riskgrid`` accessor.

=================  ===========================================================
dataset.py         :func:`risk_dataset` (``risk``, ``rank``, ``percentile``,
                   ``zone``; coordinates ``h3``/``h3_int``/``lat``/``lon``),
                   attributes made safe for every format
netcdf.py          NetCDF-4 / Zarr stores, :func:`read_risk`
vector.py          GeoJSON hexagons (RFC 7946), GeoParquet (WKB + ``h3``),
                   CSV, the zones GeoJSON
raster.py          :func:`rasterize` (exact hexagon → pixel sampling), the
                   cloud-optimised GeoTIFF (EPSG:3857 / EPSG:4326)
plot.py            the PNG map
accessor.py        ``DataArray.riskgrid`` / ``Dataset.riskgrid``
=================  ===========================================================

All writers are deterministic: the same forecast gives byte-identical files
(no time stamps, no software versions that change between runs).
:func:`write_product` writes one product by format name (what the nightly job
and ``riskgrid batch`` call).
"""

from __future__ import annotations

from . import accessor  # noqa: F401  (registers the .riskgrid accessor)
from .dataset import clean_attrs, grid_of, rank_percentile, risk_dataset, risk_table
from .netcdf import read_risk, write_netcdf, write_zarr
from .plot import default_title, forecast_window, write_png
from .raster import NODATA, pixel_centres_lonlat, rasterize, write_geotiff
from .vector import hexagon_geojson, write_csv, write_geojson, write_parquet, write_zones_csv, write_zones_geojson

__all__ = [
    "FORMATS",
    "write_product",
    "risk_dataset",
    "grid_of",
    "risk_table",
    "rank_percentile",
    "clean_attrs",
    "write_netcdf",
    "write_zarr",
    "read_risk",
    "hexagon_geojson",
    "write_geojson",
    "write_parquet",
    "write_csv",
    "rasterize",
    "pixel_centres_lonlat",
    "write_geotiff",
    "NODATA",
    "write_png",
    "default_title",
    "forecast_window",
    "write_zones_geojson",
    "write_zones_csv",
]

#: every product format, in the order the nightly job writes them
FORMATS = ("netcdf", "zarr", "geojson", "parquet", "csv", "geotiff", "png", "zones", "briefing")


def write_product(fmt: str, ds, path, *, grid=None, zones=None, pixel_m: float = 50.0, crs: str = "EPSG:3857",
                  title: str | None = None, metadata: dict | None = None, zone_properties: dict | None = None) -> str:
    """Write one product of the forecast Dataset ``ds`` (:func:`risk_dataset`) to ``path``.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    grid : HexGrid, optional
        The forecast's grid (rebuilt from ``h3_int`` when omitted).
    zones : ZoneSet, optional
        Needed by ``"zones"``; outlined on the ``"png"`` map.
    pixel_m, crs :
        Raster pixel size (ground metres) and CRS of ``"geotiff"``.
    title : str, optional
        Title of the ``"png"`` map.
    metadata : dict, optional
        ``"zones"``: JSON-ready forecast metadata (window start, horizon,
        units, model) put into every zone's properties.
    zone_properties : dict, optional
        ``"zones"``: zone number -> JSON-ready values for that zone (the
        explanation summary of the nightly job).
    """
    if fmt == "netcdf":
        return write_netcdf(ds, path)
    if fmt == "zarr":
        return write_zarr(ds, path)
    if fmt == "geojson":
        return write_geojson(ds, path, grid=grid)
    if fmt == "parquet":
        return write_parquet(ds, path, grid=grid)
    if fmt == "csv":
        return write_csv(ds, path)
    if fmt == "geotiff":
        return write_geotiff(ds, path, pixel_m=pixel_m, crs=crs, grid=grid)
    if fmt == "png":
        return write_png(ds, path, zones=zones, grid=grid, title=title)
    if fmt == "zones":
        if zones is None:
            raise ValueError("the 'zones' product needs zones= (a ZoneSet from riskgrid.select_zones)")
        return write_zones_geojson(zones, path, metadata=metadata, zone_properties=zone_properties)
    if fmt == "briefing":
        if zones is None:
            raise ValueError("the 'briefing' product needs zones= (a ZoneSet from riskgrid.select_zones)")
        return _write_plain_briefing(ds, path, grid, zones, title)
    raise ValueError(f"unknown product format {fmt!r}; allowed: {list(FORMATS)}")


def _write_plain_briefing(ds, path, grid, zones, title) -> str:
    """``briefing.html`` from the forecast alone: map, zones and their close-ups (the nightly job adds the trend
    from the exposure log, data freshness and staleness; see :func:`riskgrid.products.briefing.render_briefing`)."""
    import os

    from .briefing import write_briefing, zone_map_png

    path = os.fspath(path)
    start, _ = forecast_window(ds)
    png = f"{path}.map-{os.getpid()}.png"
    try:
        write_png(ds, png, zones=zones, grid=grid, title=title)
        write_briefing(path, zones, forecast_start=start, horizon_days=float(ds.attrs["horizon_days"]), map_png=png,
                       city=ds.attrs.get("city") or None, model=ds.attrs.get("model") or None,
                       zone_maps={z.number: zone_map_png(ds["risk"].values, grid if grid is not None else grid_of(ds),
                                                         zones, z.number) for z in zones.zones})
    finally:
        if os.path.exists(png):
            os.remove(png)
    return path
