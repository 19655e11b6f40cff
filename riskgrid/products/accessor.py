"""The ``.riskgrid`` accessor of xarray objects: a forecast's exports and helpers.

Only xarray is imported here; the products are imported on use, so the
accessor can be registered as soon as xarray is (see :func:`register`).
"""

from __future__ import annotations

import xarray as xr

__all__ = ["RiskGridAccessor", "register"]


class RiskGridAccessor:
    """``.riskgrid`` on a forecast DataArray/Dataset: exports and helpers.

    Examples
    --------
    >>> risk.riskgrid.to_netcdf("risk.nc")              # doctest: +SKIP
    >>> risk.riskgrid.to_geotiff("risk.tif", pixel_m=25, crs="EPSG:4326")  # doctest: +SKIP
    >>> zones = risk.riskgrid.zones(n_zones=4)          # doctest: +SKIP
    """

    def __init__(self, obj):
        self._obj = obj

    @property
    def grid(self):
        """The :class:`~riskgrid.HexGrid` of the forecast."""
        from .dataset import grid_of

        return grid_of(self._obj)

    def dataset(self, zones=None) -> xr.Dataset:
        """:func:`~riskgrid.products.risk_dataset` of the object."""
        from .dataset import risk_dataset

        return risk_dataset(self._obj, zones=zones)

    def table(self):
        """:func:`~riskgrid.products.risk_table` (a pandas DataFrame)."""
        from .dataset import risk_table

        return risk_table(self._obj)

    def zones(self, n_zones: int = 4, max_cells: int = 7, min_gap_rings: int = 1):
        """:func:`riskgrid.select_zones` on the total risk."""
        from ..zones import select_zones
        from .dataset import as_dataset, grid_of

        ds = as_dataset(self._obj)
        return select_zones(ds["risk"].values, grid_of(ds), n_zones=n_zones, max_cells=max_cells,
                            min_gap_rings=min_gap_rings)

    def to_netcdf(self, path):
        from .netcdf import write_netcdf

        return write_netcdf(self._obj, path)

    def to_zarr(self, path):
        from .netcdf import write_zarr

        return write_zarr(self._obj, path)

    def to_geojson(self, path=None):
        """Write the hexagon FeatureCollection to ``path``, or return it as a dict."""
        from .vector import hexagon_geojson, write_geojson

        if path is None:
            return hexagon_geojson(self._obj)
        return write_geojson(self._obj, path)

    def to_parquet(self, path):
        from .vector import write_parquet

        return write_parquet(self._obj, path)

    def to_csv(self, path):
        from .vector import write_csv

        return write_csv(self._obj, path)

    def rasterize(self, pixel_m: float = 50.0, crs: str = "EPSG:3857"):
        from .raster import rasterize

        return rasterize(self._obj, pixel_m=pixel_m, crs=crs)

    def to_geotiff(self, path, pixel_m: float = 50.0, crs: str = "EPSG:3857"):
        from .raster import write_geotiff

        return write_geotiff(self._obj, path, pixel_m=pixel_m, crs=crs)

    def to_png(self, path, zones=None, title: str | None = None):
        from .plot import write_png

        return write_png(self._obj, path, zones=zones, title=title)


_registered = False


def register() -> None:
    """Register ``.riskgrid`` on ``xarray.DataArray`` and ``xarray.Dataset`` (once)."""
    global _registered
    if not _registered:
        xr.register_dataarray_accessor("riskgrid")(RiskGridAccessor)
        xr.register_dataset_accessor("riskgrid")(RiskGridAccessor)
        _registered = True


register()
