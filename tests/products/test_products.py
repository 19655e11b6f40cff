"""Exports: NetCDF/Zarr round trips, RFC 7946 GeoJSON, Parquet/CSV tables, COG GeoTIFF, PNG map."""

import hashlib
import json
import struct

import h3
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskgrid as rg
import riskgrid.io as rio
from riskgrid.models import CountHotspot


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_dataset_rank_percentile(forecast):
    risk, grid, zones, ds = forecast
    r = ds["risk"].values
    rank = ds["rank"].values
    assert sorted(rank.tolist()) == list(range(1, len(grid) + 1))
    assert r[rank == 1][0] == r.max()
    order = np.argsort(rank)
    assert np.all(np.diff(r[order]) <= 0)  # rank follows risk
    pct = ds["percentile"].values
    assert pct[rank == 1][0] == 100.0 and (pct > 0).all() and (pct <= 100).all()
    i = 17
    assert pct[i] == pytest.approx(100 * np.mean(r <= r[i]))
    assert (ds["zone"].values == zones.cell_zone).all()
    assert ds.attrs["flag"] == 1 and ds.attrs["city"] == "sim" and ds.attrs["model"] == "CountHotspot"
    for v in ds.attrs.values():
        assert isinstance(v, (str, int, float))


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_array_round_trip(forecast, tmp_path, fmt):
    _, grid, _, ds = forecast
    path = tmp_path / ("r.nc" if fmt == "netcdf" else "r.zarr")
    (rio.write_netcdf if fmt == "netcdf" else rio.write_zarr)(ds, path)
    back = rg.read_risk(path)
    for v in ("risk", "rank", "percentile", "zone"):
        np.testing.assert_array_equal(back[v].values, ds[v].values)
    assert back["h3_int"].dtype == np.uint64
    np.testing.assert_array_equal(back["h3_int"].values, grid.cells)
    assert list(back["h3"].values) == list(grid.cell_ids)
    np.testing.assert_array_equal(back["lat"].values, grid.centroids_latlon[0])
    np.testing.assert_array_equal(back["lon"].values, grid.centroids_latlon[1])
    assert back.attrs == ds.attrs
    assert back["risk"].attrs["units"] == ds["risk"].attrs["units"]
    assert rio.grid_of(back).cells.tolist() == grid.cells.tolist()


def test_hexagon_geojson_rfc7946(forecast, tmp_path):
    _, grid, _, ds = forecast
    path = rio.write_geojson(ds, tmp_path / "h.geojson")
    fc = json.load(open(path))
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(grid)
    lat, lon = grid.centroids_latlon
    for i, f in enumerate(fc["features"]):
        g = f["geometry"]
        assert g["type"] == "Polygon" and len(g["coordinates"]) == 1
        ring = np.asarray(g["coordinates"][0])
        assert (ring[0] == ring[-1]).all() and len(ring) >= 4
        assert (np.abs(ring[:, 0]) <= 180).all() and (np.abs(ring[:, 1]) <= 90).all()
        area = 0.5 * np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
        assert area > 0  # counter-clockwise exterior
        # lon/lat order: the ring surrounds the cell centre (lon, lat)
        assert ring[:-1, 0].mean() == pytest.approx(lon[i], abs=2e-3)
        assert ring[:-1, 1].mean() == pytest.approx(lat[i], abs=2e-3)
        p = f["properties"]
        assert p["h3"] == grid.cell_ids[i]
        assert p["risk"] == ds["risk"].values[i] and p["rank"] == ds["rank"].values[i]
        assert p["percentile"] == ds["percentile"].values[i] and p["zone"] == ds["zone"].values[i]


def test_geojson_bytes_are_those_of_the_streaming_encoder(forecast, tmp_path):
    """write_geojson encodes with json.dumps (C encoder): byte for byte what json.dump (pure-Python encoder) wrote."""
    _, grid, zones, ds = forecast
    ref = tmp_path / "ref.geojson"
    with open(ref, "w", encoding="utf-8") as fh:
        json.dump(rio.hexagon_geojson(ds, grid), fh, separators=(",", ":"), allow_nan=False)
        fh.write("\n")
    assert open(rio.write_geojson(ds, tmp_path / "h.geojson", grid), "rb").read() == open(ref, "rb").read()
    bad = ds.copy(deep=True)
    bad["risk"].values[0] = np.nan
    with pytest.raises(ValueError):  # still no NaN in RFC 7946 output
        rio.write_geojson(bad, tmp_path / "nan.geojson", grid)


def _wkb_ring(b):
    order, kind, nrings, npts = struct.unpack("<BIII", b[:13])
    assert order == 1 and kind == 3 and nrings == 1
    return np.frombuffer(b[13:], dtype="<f8").reshape(npts, 2)


@pytest.mark.parametrize("where", ["chicago-r9", "pentagons-r2", "pentagons-r3", "antimeridian-r7"])
def test_boundaries_equal_one_oriented_ring_per_cell(where):
    """The vectorised rings of every export: exactly oriented_ring(ccw=True) of each h3 boundary, pentagons (5 and
    distorted 7..10-vertex boundaries) included; the vertex array is their concatenation."""
    from h3.api import numpy_int as h3i

    from riskgrid.geo import oriented_ring

    if where == "chicago-r9":
        cells = h3i.grid_disk(h3i.latlng_to_cell(41.85, -87.65, 9), 12)
    elif where.startswith("pentagons"):
        cells = np.unique(np.concatenate([h3i.grid_disk(p, 2) for p in h3i.get_pentagons(int(where[-1]))]))
    else:
        cells = h3i.grid_disk(h3i.latlng_to_cell(0.0, 179.99, 7), 4)
    grid = rg.HexGrid.from_cells(np.asarray(cells, dtype=np.uint64))
    ref = [oriented_ring([(lng, lat) for lat, lng in h3i.cell_to_boundary(int(c))], ccw=True) for c in grid.cells]
    rings = grid.boundaries_lonlat()
    assert rings == ref
    assert all(type(v) is float for r in rings for p in r for v in p)
    if where.startswith("pentagons"):  # closed rings of pentagons (5 or 10 vertices) and their neighbours (6 or 7)
        assert {len(r) for r in rings} == ({6, 7} if where.endswith("2") else {7, 8, 11})
    np.testing.assert_array_equal(grid.vertices_lonlat, np.concatenate([np.asarray(r) for r in ref]))


def test_parquet_and_csv_tables(forecast, tmp_path):
    import pyarrow.parquet as pq

    _, grid, _, ds = forecast
    pq_path = rio.write_parquet(ds, tmp_path / "h.parquet")
    t = pq.read_table(pq_path)
    assert str(t.schema.field("h3").type) in ("string", "large_string")
    df = t.to_pandas()
    assert df["h3"].tolist() == list(grid.cell_ids)
    np.testing.assert_array_equal(df["risk"].to_numpy(), ds["risk"].values)
    geo = json.loads(t.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    rings = grid.boundaries_lonlat()
    for i in (0, len(grid) // 2, len(grid) - 1):
        np.testing.assert_array_equal(_wkb_ring(df["geometry"].iloc[i]), np.asarray(rings[i]))
    csv_path = rio.write_csv(ds, tmp_path / "h.csv")
    c = pd.read_csv(csv_path)
    assert list(c.columns) == ["h3", "lat", "lon", "risk", "rank", "percentile", "zone"]
    assert c["h3"].tolist() == list(grid.cell_ids)
    np.testing.assert_array_equal(c["risk"].to_numpy(), ds["risk"].values)  # full precision
    np.testing.assert_array_equal(c["lat"].to_numpy(), grid.centroids_latlon[0])


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:4326"])
def test_geotiff_read_back(forecast, tmp_path, crs):
    import rasterio

    _, grid, _, ds = forecast
    path = rio.write_geotiff(ds, tmp_path / "r.tif", pixel_m=15, crs=crs)
    values, transform, index = rio.rasterize(ds, pixel_m=15, crs=crs)
    with rasterio.open(path) as src:
        assert src.crs.to_string() == crs
        assert src.transform.almost_equals(transform)
        assert src.nodata == rio.NODATA and src.dtypes[0] == "float32"
        assert src.width > 256 and src.overviews(1)  # internal overviews
        assert src.profile["tiled"] and src.profile["blockxsize"] == 256
        assert src.compression.name.lower() == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "COG") == "COG"
        assert src.tags()["model"] == "CountHotspot"
        band = src.read(1)
    np.testing.assert_array_equal(band, values)
    # sampled pixel centres: value of the hexagon containing the centre, nodata outside
    rng = np.random.default_rng(0)
    rows = rng.integers(0, band.shape[0], 400)
    cols = rng.integers(0, band.shape[1], 400)
    risk32 = ds["risk"].values.astype(np.float32)
    n_in = 0
    for r, c in zip(rows, cols):
        x, y = transform @ (c + 0.5, r + 0.5)
        if crs == "EPSG:3857":
            lon = np.degrees(x / 6378137.0)
            lat = np.degrees(2 * np.arctan(np.exp(y / 6378137.0)) - np.pi / 2)
        else:
            lon, lat = x, y
        cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, grid.resolution))
        k = grid.index_of(np.array([cell], dtype=np.uint64))[0]
        if k >= 0:
            n_in += 1
            assert band[r, c] == risk32[k]
        else:
            assert band[r, c] == rio.NODATA
    assert 50 < n_in < 400  # both inside and outside pixels were sampled
    # the frame covers the grid: every cell has at least one pixel at 15 m
    assert np.unique(index[index >= 0]).size == len(grid)


def test_png_map(forecast, tmp_path):
    import matplotlib.image as mpimg

    _, grid, zones, ds = forecast
    p1 = rio.write_png(ds, tmp_path / "a.png", zones=zones)
    p2 = rio.write_png(ds, tmp_path / "b.png", zones=zones)
    raw = open(p1, "rb").read()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 20_000
    assert b"Software" not in raw  # no version/time metadata
    assert _sha(p1) == _sha(p2)
    img = mpimg.imread(p1)
    assert img.shape[0] > 500 and img.shape[1] > 500
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert np.unique(rgb, axis=0).shape[0] > 50  # a colour ramp, not a blank canvas
    assert (rgb.std(axis=0) > 10).all()
    # the zones' outline colour is drawn
    assert np.any(np.all(np.abs(rgb.astype(int) - [0, 180, 255]) < 30, axis=1))


def test_read_back_dataset_keeps_provenance_and_exports(forecast, tmp_path):
    import matplotlib

    risk, grid, zones, ds = forecast
    back = rio.read_risk(rio.write_netcdf(ds, tmp_path / "r.nc"))
    again = rio.risk_dataset(back, zones=zones, extra_attrs={"note": "x"})
    for key in ("forecast_start_days", "horizon_days", "model", "city"):
        assert again.attrs[key] == ds.attrs[key]
    assert again.attrs["note"] == "x" and "long_name" not in again.attrs
    rio.write_parquet(back, tmp_path / "r.parquet")  # attributes read back from NetCDF are JSON-serialisable
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        rio.write_png(back, tmp_path / "r.png")
        assert matplotlib.get_backend() == "svg"  # the caller's backend is left alone
    finally:
        matplotlib.use(before)
    bare = risk.copy()
    bare.attrs = {}
    assert rio.default_title(rio.risk_dataset(bare)) == "forecast"
    with pytest.raises(ValueError, match=r"missing \['lat'\]"):
        rio.risk_dataset(risk.drop_vars("lat"))


def test_writers_are_deterministic(forecast, tmp_path):
    _, grid, zones, ds = forecast
    for name, f in [("x.nc", rio.write_netcdf), ("x.geojson", rio.write_geojson), ("x.parquet", rio.write_parquet),
                    ("x.csv", rio.write_csv), ("x.tif", lambda d, p: rio.write_geotiff(d, p, pixel_m=40))]:
        f(ds, tmp_path / ("1" + name))
        f(ds, tmp_path / ("2" + name))
        assert _sha(tmp_path / ("1" + name)) == _sha(tmp_path / ("2" + name)), name


def test_accessor(forecast, tmp_path):
    risk, grid, _, ds = forecast
    assert isinstance(risk.riskgrid.grid, rg.HexGrid)
    risk.riskgrid.to_csv(tmp_path / "a.csv")
    ds.riskgrid.to_netcdf(tmp_path / "a.nc")
    fc = risk.riskgrid.to_geojson()
    assert len(fc["features"]) == len(grid)
    zs = risk.riskgrid.zones(n_zones=2, max_cells=3)
    assert len(zs) == 2
    t = risk.riskgrid.table()
    assert list(t.columns[:6]) == ["h3", "lat", "lon", "risk", "rank", "percentile"]
    # (category, cell) forecasts are summed for the products and kept whole in the dataset
    two = xr.concat([risk, risk], dim="category").assign_coords(category=["A", "B"]).transpose("category", "cell")
    d2 = rg.risk_dataset(two)
    np.testing.assert_allclose(d2["risk"].values, 2 * risk.values)
    assert d2["risk_by_category"].shape == (2, len(grid))
    with pytest.raises(ValueError, match="crs"):
        rio.rasterize(ds, crs="EPSG:32616")
    with pytest.raises(TypeError):
        rg.risk_dataset(np.ones(3))
