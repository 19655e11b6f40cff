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
