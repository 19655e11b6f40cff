"""Local metric projection and great-circle distance.

riskgrid works in metres on a *spherical azimuthal equidistant* (AEQD)
projection centred on the data (radius :data:`EARTH_RADIUS_M`, the IUGG mean
Earth radius, the same sphere H3 uses). Distances from the centre are exact on
the sphere; between two points within 50 km of the centre the relative error
against the great-circle (haversine) distance is below 1e-4 (the scale factor
across the radial direction is ``c / sin(c)``, c the angular distance from the
centre), far inside the 0.1 % the models need.

It also holds the plain-geometry helpers of the data layer: reading GeoJSON
polygons (:func:`load_polygons`), a point-in-polygon test on lon/lat
(:func:`points_in_polygons`) and the area of a lon/lat polygon on the sphere
(:func:`polygon_area_m2`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_M = 6_371_007.180918475  # H3's authalic radius, metres

__all__ = [
    "EARTH_RADIUS_M",
    "LocalProjection",
    "haversine_m",
    "oriented_ring",
    "signed_area",
    "load_geojson",
    "load_polygons",
    "points_in_polygons",
    "polygon_area_m2",
]


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres between points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class LocalProjection:
    """Spherical azimuthal equidistant projection centred on ``(lat0, lon0)``.

    ``forward(lat, lon)`` gives ``(x, y)`` in metres (x east, y north);
    ``inverse(x, y)`` gives degrees back.
    """

    lat0: float
    lon0: float

    @classmethod
    def centred_on(cls, lat, lon) -> "LocalProjection":
        """Projection centred on the middle of the bounding box of the points."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        if lat.size == 0:
            raise ValueError("cannot centre a projection on zero points")
        return cls(float((lat.min() + lat.max()) / 2), float((lon.min() + lon.max()) / 2))

    def forward(self, lat, lon):
        """Degrees → metres. Returns two float64 arrays ``(x_m, y_m)``."""
        phi = np.radians(np.asarray(lat, dtype=float))
        lmb = np.radians(np.asarray(lon, dtype=float) - self.lon0)
        phi0 = np.radians(self.lat0)
        cos_c = np.sin(phi0) * np.sin(phi) + np.cos(phi0) * np.cos(phi) * np.cos(lmb)
        c = np.arccos(np.clip(cos_c, -1.0, 1.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(c < 1e-12, 1.0, c / np.sin(c))
        x = EARTH_RADIUS_M * k * np.cos(phi) * np.sin(lmb)
        y = EARTH_RADIUS_M * k * (np.cos(phi0) * np.sin(phi) - np.sin(phi0) * np.cos(phi) * np.cos(lmb))
        return x, y

    def inverse(self, x, y):
        """Metres → degrees. Returns ``(lat, lon)``."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        phi0 = np.radians(self.lat0)
        rho = np.hypot(x, y)
        c = rho / EARTH_RADIUS_M
        sin_c, cos_c = np.sin(c), np.cos(c)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(rho > 0, y * sin_c / np.where(rho > 0, rho, 1.0), 0.0)
        phi = np.arcsin(np.clip(cos_c * np.sin(phi0) + ratio * np.cos(phi0), -1.0, 1.0))
        lmb = np.arctan2(x * sin_c, rho * np.cos(phi0) * cos_c - y * np.sin(phi0) * sin_c)
        lon = (np.degrees(lmb) + self.lon0 + 180.0) % 360.0 - 180.0
        return np.degrees(phi), lon


def signed_area(ring) -> float:
    """Shoelace area of a planar ring of (x, y) points (e.g. lon, lat), positive when counter-clockwise."""
    a = np.asarray(ring, dtype=float)
    x, y = a[:, 0], a[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def oriented_ring(ring, ccw: bool) -> list:
    """The ring as a closed list of ``[x, y]`` float pairs, counter-clockwise when ``ccw`` else clockwise."""
    pts = [[float(p[0]), float(p[1])] for p in ring]
    if pts[0] != pts[-1]:
        pts.append(list(pts[0]))
    if (signed_area(pts) > 0) != ccw:
        pts = pts[::-1]
    return pts


# --------------------------------------------------------------------------- #
# GeoJSON polygons
# --------------------------------------------------------------------------- #
def load_geojson(geojson) -> list[dict]:
    """The Polygon/MultiPolygon geometries of a GeoJSON object, as plain dicts.

    ``geojson`` is a dict (geometry, Feature or FeatureCollection), a JSON
    string or a path to a file. Coordinates are lon/lat (RFC 7946).

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        Not JSON, not a polygon type, or a geometry without coordinates.
    TypeError
        Neither a dict, a JSON string nor a path.
    """
    is_text = isinstance(geojson, str) and geojson.lstrip().startswith("{")
    if isinstance(geojson, (str, os.PathLike)) and not is_text:
        path = os.fspath(geojson)
        if not os.path.exists(path):
            raise FileNotFoundError(f"GeoJSON file not found: {path}")
        try:
            with open(path) as fh:
                geojson = json.load(fh)
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    elif is_text:
        try:
            geojson = json.loads(geojson)
        except ValueError as exc:
            raise ValueError(f"the GeoJSON text is not valid JSON: {exc}") from exc
    if not isinstance(geojson, dict):
        raise TypeError(f"geojson must be a dict, a JSON string or a path, got {type(geojson).__name__}")
    kind = geojson.get("type")
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") if isinstance(f, dict) else None for f in geojson.get("features") or []]
    elif kind == "Feature":
        geoms = [geojson.get("geometry")]
    elif kind in ("Polygon", "MultiPolygon"):
        geoms = [geojson]
    else:
        raise ValueError(f"expected a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection, got type {kind!r}")
    for g in geoms:
        if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
            got = g.get("type") if isinstance(g, dict) else g
            raise ValueError(f"unsupported geometry type {got!r} (Polygon or MultiPolygon expected)")
        if not isinstance(g.get("coordinates"), (list, tuple)):
            raise ValueError(f"a {g['type']} geometry without a 'coordinates' list")
    return geoms


def load_polygons(geojson) -> list[list[np.ndarray]]:
    """Every polygon of a GeoJSON object as a list of rings, each an ``(n, 2)`` float array of (lon, lat) degrees.

    The first ring of a polygon is its exterior, the others its holes. Accepts
    what :func:`load_geojson` accepts (or its list of geometries).
    """
    geoms = geojson if isinstance(geojson, list) else load_geojson(geojson)
    polys = []
    for g in geoms:
        parts = [g["coordinates"]] if g["type"] == "Polygon" else list(g["coordinates"])
        for part in parts:
            rings = []
            for ring in part:
                a = np.asarray(ring, dtype=float)
                if a.ndim != 2 or a.shape[1] < 2 or a.shape[0] < 3 or not np.isfinite(a[:, :2]).all():
                    raise ValueError("a polygon ring must be a list of at least 3 finite [lon, lat] positions")
                rings.append(np.ascontiguousarray(a[:, :2]))
            if rings:
                polys.append(rings)
    if not polys:
        raise ValueError("the GeoJSON holds no polygon")
    return polys


def points_in_polygons(lat, lon, polygons) -> np.ndarray:
    """Whether each point lies inside any of ``polygons`` (holes excluded).

    Even-odd ray casting in the lon/lat plane (edges are straight lines in
    degrees, as RFC 7946 draws them; polygons crossing the antimeridian are
    not supported). A point exactly on an edge may fall on either side.
    Points are sorted by latitude once so that each edge only visits the
    points in its latitude band: about ``O(n log n + sum of band sizes)``.

    Parameters
    ----------
    lat, lon : array_like of float
        Points in degrees.
    polygons : list
        As returned by :func:`load_polygons`.

    Returns
    -------
    ndarray of bool
    """
    lat = np.asarray(lat, dtype=float).ravel()
    lon = np.asarray(lon, dtype=float).ravel()
    order = np.argsort(lat, kind="stable")
    ys, xs = lat[order], lon[order]
    inside = np.zeros(lat.size, dtype=bool)
    for rings in polygons:
        parity = np.zeros(lat.size, dtype=bool)
        for ring in rings:
            x1, y1 = ring[:, 0], ring[:, 1]
            x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
            for a, b, c, d in zip(x1.tolist(), y1.tolist(), x2.tolist(), y2.tolist()):
                if b == d:
                    continue  # horizontal edges never cross a horizontal ray
                lo, hi = (b, d) if b < d else (d, b)
                i0 = int(np.searchsorted(ys, lo, side="left"))
                i1 = int(np.searchsorted(ys, hi, side="left"))  # half-open band [lo, hi)
                if i0 == i1:
                    continue
                yy = ys[i0:i1]
                x_cross = a + (yy - b) * (c - a) / (d - b)
                parity[i0:i1] ^= xs[i0:i1] < x_cross
        inside |= parity
    out = np.empty(lat.size, dtype=bool)
    out[order] = inside
    return out


def polygon_area_m2(polygons) -> float:
    """Area in square metres of lon/lat polygons on the sphere of radius :data:`EARTH_RADIUS_M`.

    Exterior rings minus holes, each ring by the spherical-excess line
    integral of Chamberlain & Duquette (2007, "Some algorithms for polygons
    on a sphere", JPL), the formula of Mapbox's ``geojson-area``. Overlaps
    between polygons are counted twice (an upper bound, as needed for a
    size estimate).
    """
    total = 0.0
    for rings in polygons:
        for k, ring in enumerate(rings):
            lon = np.radians(ring[:, 0])
            lat = np.radians(ring[:, 1])
            lon2, lat2 = np.roll(lon, -1), np.roll(lat, -1)
            a = abs(float(np.sum((lon2 - lon) * (2.0 + np.sin(lat) + np.sin(lat2))))) * EARTH_RADIUS_M**2 / 2.0
            total += a if k == 0 else -a
    return max(total, 0.0)
