"""The rasteriser (riskgrid.products.raster) and its kernels (riskgrid.kernels.raster) against slow references.

Every pixel must get exactly the H3 cell of its centre (tests/kernels/naive_raster.py: one H3 call per
pixel); the block-fill kernel against a loop, the polygon stage at high latitude, coarse and fine
resolutions, a pentagon, and the antimeridian fallback.
"""

import h3
import numpy as np
from h3.api import numpy_int as h3i
import pytest

import riskgrid.io as rio
import riskgrid.products.raster as rraster
from naive_raster import naive_fill, naive_raster_ids
from riskgrid.kernels.raster import fill_uniform_blocks


def test_rasterize_exact_against_per_pixel_h3(forecast):
    _, grid, _, ds = forecast
    for pixel_m in (60.0, 20.0):  # stride 1 (direct) and stride 4 (block filling)
        x0, y0, dx, dy, w, h = rraster._raster_frame(grid, pixel_m, "EPSG:3857")
        lon, lat = rio.pixel_centres_lonlat(x0, y0, dx, dy, w, h, "EPSG:3857")
        sl = (slice(0, min(h, 120)), slice(0, min(w, 160)))
        fast = rraster._rasterize_ids(lat[sl[0]], lon[sl[1]], grid.resolution, grid.edge_length_m / pixel_m)
        np.testing.assert_array_equal(fast, naive_raster_ids(lat[sl[0]], lon[sl[1]], grid.resolution))


def _pentagon_centre(res):
    import h3

    return h3.cell_to_latlng(h3.get_pentagons(res)[3])


@pytest.mark.parametrize(
    "lat,lon,res,pixel_m",
    [
        (41.85, -87.65, 9, 20.0),  # Chicago, the usual case
        (64.13, -21.90, 8, 45.0),  # Reykjavik: high latitude
        (-0.18, -78.47, 6, 700.0),  # Quito: coarse cells (edge ~3.7 km), equator
        (-33.87, 151.21, 12, 1.2),  # Sydney: fine cells (edge ~10 m)
        ("pentagon", None, 7, 80.0),  # a pentagon and the icosahedron face edges around it
    ],
)
def test_polygon_stage_matches_per_pixel_h3(lat, lon, res, pixel_m):
    from riskgrid.kernels.raster import assign_by_polygons

    if lat == "pentagon":
        lat, lon = _pentagon_centre(res)
    h, w = 150, 170
    dlat = pixel_m / 111_195.0
    lat_rows = lat + dlat * (h / 2 - np.arange(h) - 0.5) + 0.123 * dlat
    lon_cols = lon + dlat / np.cos(np.radians(lat)) * (np.arange(w) - w / 2 + 0.5)
    ref = naive_raster_ids(lat_rows, lon_cols, res)
    # the whole rasteriser is exact
    edge_px = h3i.average_hexagon_edge_length(res, unit="m") / pixel_m
    np.testing.assert_array_equal(rraster._rasterize_ids(lat_rows, lon_cols, res, edge_px), ref)
    # and the polygon stage does the bulk of the work, never wrongly
    stride = int(round(edge_px))
    rows = np.unique(np.append(np.arange(0, h, stride), h - 1)).astype(np.int64)
    cols = np.unique(np.append(np.arange(0, w, stride), w - 1)).astype(np.int64)
    lattice = np.ascontiguousarray(ref[np.ix_(rows, cols)])
    out = np.zeros((h, w), dtype=np.uint64)
    known = np.zeros((h, w), dtype=bool)
    fill_uniform_blocks(lattice, rows, cols, out, known)
    before = known.sum()
    poly_ids = np.unique(lattice)
    planes = rraster._cell_planes(*rraster._cell_boundaries(poly_ids))
    assign_by_polygons(lattice, rows, cols, lat_rows, lon_cols, poly_ids, *planes,
                       rraster._M_PER_DEG, rraster._polygon_margin_m(res, abs(lat)), out, known)
    np.testing.assert_array_equal(out[known], ref[known])
    assert known.sum() > before and (~known).mean() < 0.02


def test_rasterize_across_the_antimeridian_falls_back_to_h3():
    lat_rows = np.linspace(-16.70, -16.80, 40)  # Fiji
    lon_cols = np.concatenate([np.linspace(179.95, 179.999, 25), np.linspace(-179.999, -179.95, 25)])
    ref = naive_raster_ids(lat_rows, lon_cols, 8)
    np.testing.assert_array_equal(rraster._rasterize_ids(lat_rows, lon_cols, 8, 8.0), ref)


def test_cell_planes_give_signed_distances():
    # a cell's own centre is inside every edge by about the inradius (sqrt(3)/2 of the edge)
    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    lat0, lon0, cos0, eptr, nx, ny, off = rraster._cell_planes(*rraster._cell_boundaries(np.array([c], dtype=np.uint64)))
    clat, clon = h3i.cell_to_latlng(c)
    x = (clon - lon0[0]) * cos0[0] * 111_195.08
    y = (clat - lat0[0]) * 111_195.08
    d = nx * x + ny * y - off
    edge = h3i.average_hexagon_edge_length(9, unit="m")
    assert np.all(d > 0.8 * edge) and np.all(d < 0.95 * edge)
    np.testing.assert_allclose(np.hypot(nx, ny), 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_fill_uniform_blocks_kernel_against_reference(seed):
    # a random convex partition (Voronoi cells of random sites, with ties broken by site order)
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 60, 2)
    sites = rng.uniform(0, max(h, w), size=(rng.integers(1, 12), 2))
    ii, jj = np.mgrid[0:h, 0:w]
    d = (ii[..., None] - sites[:, 0]) ** 2 + (jj[..., None] - sites[:, 1]) ** 2
    ids = (np.argmin(d, axis=-1) + 100).astype(np.uint64)
    stride = int(rng.integers(1, 7))
    rows = np.unique(np.append(np.arange(0, h, stride), h - 1)).astype(np.int64)
    cols = np.unique(np.append(np.arange(0, w, stride), w - 1)).astype(np.int64)
    out = np.zeros((h, w), dtype=np.uint64)
    known = np.zeros((h, w), dtype=bool)
    fill_uniform_blocks(np.ascontiguousarray(ids[np.ix_(rows, cols)]), rows, cols, out, known)
    ref_out, ref_known = naive_fill(ids, rows, cols)
    np.testing.assert_array_equal(known, ref_known)
    np.testing.assert_array_equal(out[known], ref_out[known])
    np.testing.assert_array_equal(out[known], ids[known])  # convex cells: filled pixels are right
