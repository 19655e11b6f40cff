"""NetCDF-4 and Zarr stores of the forecast Dataset, and reading them back."""

from __future__ import annotations

import os

import xarray as xr

from .dataset import as_dataset, clean_attrs, str_objects

__all__ = ["write_netcdf", "write_zarr", "read_risk"]


def write_netcdf(obj, path) -> str:
    """NetCDF-4 file (netCDF4 engine, zlib level 4) of :func:`risk_dataset`."""
    ds = as_dataset(obj)
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars}
    ds.to_netcdf(os.fspath(path), engine="netcdf4", format="NETCDF4", encoding=enc)
    return os.fspath(path)


def write_zarr(obj, path) -> str:
    """Zarr store (format 2, consolidated metadata) of :func:`risk_dataset`."""
    ds = as_dataset(obj)
    ds.to_zarr(os.fspath(path), mode="w", zarr_format=2, consolidated=True)
    return os.fspath(path)


def read_risk(path) -> xr.Dataset:
    """Read a NetCDF file or Zarr store written by this module back (loaded in memory)."""
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(".zarr"):
        ds = xr.open_zarr(path, consolidated=True).load()
    else:
        with xr.open_dataset(path, engine="netcdf4") as f:
            ds = f.load()
    if "h3" in ds.coords:
        ds = ds.assign_coords(h3=("cell", str_objects(ds["h3"].values)))
    ds.attrs = clean_attrs(ds.attrs)  # NetCDF gives numbers back as numpy scalars
    return ds

