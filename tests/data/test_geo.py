import numpy as np
import pytest

from riskgrid import LocalProjection, haversine_m


@pytest.mark.parametrize("lat0", [0.0, 41.85, -33.9, 64.1])
def test_projection_distance_error_below_0p1_percent_within_50km(lat0, rng):
    proj = LocalProjection(lat0, 12.5)
    n = 5000
    r = rng.uniform(0, 50_000, (2, n))
    a = rng.uniform(0, 2 * np.pi, (2, n))
    x, y = r * np.cos(a), r * np.sin(a)
    lat, lon = proj.inverse(x, y)
    d_true = haversine_m(lat[0], lon[0], lat[1], lon[1])
    X, Y = proj.forward(lat, lon)
    d_proj = np.hypot(X[0] - X[1], Y[0] - Y[1])
    keep = d_true > 100
    rel = np.abs(d_proj[keep] - d_true[keep]) / d_true[keep]
    assert rel.max() < 1e-3
    assert rel.max() < 2e-4  # the actual bound is ~1e-4


def test_inverse_round_trip(rng):
    proj = LocalProjection(41.85, -87.65)
    lat = 41.85 + rng.uniform(-0.4, 0.4, 1000)
    lon = -87.65 + rng.uniform(-0.5, 0.5, 1000)
    la2, lo2 = proj.inverse(*proj.forward(lat, lon))
    np.testing.assert_allclose(la2, lat, atol=1e-10)
    np.testing.assert_allclose(lo2, lon, atol=1e-10)


def test_distance_from_centre_is_exact(rng):
    proj = LocalProjection(41.85, -87.65)
    lat = 41.85 + rng.uniform(-0.4, 0.4, 100)
    lon = -87.65 + rng.uniform(-0.5, 0.5, 100)
    x, y = proj.forward(lat, lon)
    np.testing.assert_allclose(np.hypot(x, y), haversine_m(41.85, -87.65, lat, lon), rtol=1e-9)


# --------------------------------------------------------------------------- polygons
import h3  # noqa: E402

from naive_geometry import naive_point_in_polygons  # noqa: E402
from riskgrid.geo import load_geojson, load_polygons, points_in_polygons, polygon_area_m2  # noqa: E402


def _star(rng, cx, cy, r_lo, r_hi, n):
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(r_lo, r_hi, n)
    ring = np.c_[cx + r * np.cos(ang), cy + r * np.sin(ang)]
    return np.vstack([ring, ring[:1]])


@pytest.mark.parametrize("seed", range(5))
def test_points_in_polygons_matches_naive_reference(seed):
    rng = np.random.default_rng(seed)
    outer = _star(rng, -87.7, 41.85, 0.05, 0.2, 40)
    hole = _star(rng, -87.7, 41.85, 0.005, 0.04, 12)
    other = _star(rng, -87.55, 41.95, 0.02, 0.1, 25)  # may overlap the first: union
    polys = [[outer, hole], [other]]
    lat = rng.uniform(41.6, 42.1, 3000)
    lon = rng.uniform(-88.0, -87.4, 3000)
    # include the vertices' latitudes exactly (band edges) and repeated points
    lat[:40], lon[:40] = outer[:40, 1], outer[:40, 0] - 1e-7
    lat[40:80], lon[40:80] = lat[80:120], lon[80:120]
    got = points_in_polygons(lat, lon, polys)
    np.testing.assert_array_equal(got, naive_point_in_polygons(lat, lon, polys))
    assert 0 < got.sum() < got.size


def test_load_polygons_from_feature_collection_and_errors(tmp_path):
    sq = [[-87.7, 41.8], [-87.6, 41.8], [-87.6, 41.9], [-87.7, 41.9], [-87.7, 41.8]]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [sq]}},
            {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPolygon", "coordinates": [[sq], [sq]]}},
        ],
    }
    assert len(load_polygons(fc)) == 3
    with pytest.raises(ValueError, match="LineString"):
        load_geojson({"type": "Feature", "geometry": {"type": "LineString", "coordinates": sq}})
    with pytest.raises(ValueError, match="at least 3 finite"):
        load_polygons({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})
    with pytest.raises(ValueError, match="not valid JSON"):
        load_geojson("{not json")


def test_polygon_area_against_h3_cells_and_a_latitude_box():
    for res in (5, 9):
        c = h3.latlng_to_cell(41.85, -87.65, res)
        ring = np.array([(lng, lat) for lat, lng in h3.cell_to_boundary(c)] + [h3.cell_to_boundary(c)[0][::-1]])
        np.testing.assert_allclose(polygon_area_m2([[ring]]), h3.cell_area(c, unit="m^2"), rtol=1e-3)
    box = np.array([[10.0, 40.0], [11.0, 40.0], [11.0, 41.0], [10.0, 41.0], [10.0, 40.0]])
    R = 6_371_007.180918475
    exact = R**2 * np.radians(1.0) * (np.sin(np.radians(41.0)) - np.sin(np.radians(40.0)))
    np.testing.assert_allclose(polygon_area_m2([[box]]), exact, rtol=1e-12)
    hole = np.array([[10.2, 40.2], [10.4, 40.2], [10.4, 40.4], [10.2, 40.4], [10.2, 40.2]])
    assert polygon_area_m2([[box, hole]]) == pytest.approx(polygon_area_m2([[box]]) - polygon_area_m2([[hole]]))
