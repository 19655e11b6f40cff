"""Where events may lie: a declared study area, the far-from-the-bulk rule, and lat/lon swap checks.

Used by :meth:`riskgrid.EventSet.from_frame` so that one mis-geocoded row never
decides the extent of the grid or the raster.

Rules
-----
``outside_study_area`` (a declared area)
    ``bbox=(min_lon, min_lat, max_lon, max_lat)`` (degrees, GeoJSON order;
    ``min_lon > max_lon`` crosses the antimeridian) and/or ``within=`` a
    GeoJSON Polygon/MultiPolygon/Feature/FeatureCollection (dict, text or
    path) or a :class:`~riskgrid.HexGrid` (a point is inside when its H3 cell
    is in the grid). With both, a point must lie in both.
``far_from_study_area`` (no declared area)
    Distance ``d`` (great circle, km) of every point from the coordinate-wise
    median location; a point is flagged when
    ``d > max(FAR_FLOOR_KM, median(d) + FAR_MAD_K × 1.4826 × MAD(d))``, MAD the
    median absolute deviation of ``d`` (× 1.4826: a standard deviation for
    normal data). With ``FAR_FLOOR_KM = 50`` and ``FAR_MAD_K = 10`` the
    threshold is 67 km for Chicago 2016-17 (median 9.2 km, scaled MAD 5.8 km,
    farthest real row 26.9 km), 50 km for San Francisco (farthest 9.9 km) and
    91 km for the New York shootings (farthest 34.8 km): the farthest real row
    of each city is at k ≈ 3.1, 4.6 and 3.0 scaled MADs, the rule fires at 10.
    The median is robust: up to half the rows can be anywhere without moving
    it much. ``far_km=`` a number fixes the threshold; ``None`` or ``"off"``
    turns the rule off (e.g. a national table).
Swapped columns (an :class:`~riskgrid.EventDataError`, whatever ``on_invalid``)
    With a declared area: fewer than half the points lie in it but more than
    half would after exchanging lat and lon. Without one: more than half the
    points have a latitude no city has (outside ``INHABITED_LAT`` = -60..80°,
    or beyond ±90°) while their longitude would be an ordinary latitude. This
    catches American and Asian tables (|lon| > 60 becomes a polar "latitude")
    but not a table near the Greenwich meridian (Paris swapped is a valid
    point in the Indian Ocean): declare the area to catch those.
"""

from __future__ import annotations

import numpy as np

from .geo import haversine_m, load_polygons, points_in_polygons

__all__ = [
    "StudyArea",
    "far_from_bulk",
    "swap_diagnosis",
    "FAR_FLOOR_KM",
    "FAR_MAD_K",
    "INHABITED_LAT",
]

#: Smallest threshold of the far-from-the-bulk rule, km.
FAR_FLOOR_KM = 50.0
#: Scaled MADs of the distance from the median location beyond the median distance.
FAR_MAD_K = 10.0
#: Normal-consistency factor of the MAD.
_MAD_SD = 1.4826
#: Latitudes (degrees) between which every city with police data lies (Ushuaia -54.8, Longyearbyen 78.2).
INHABITED_LAT = (-60.0, 80.0)
#: Share of the points above which a table-level swap is reported.
_SWAP_SHARE = 0.5


class StudyArea:
    """A declared study area: a bounding box and/or a polygon or grid (see the module docstring).

    Parameters
    ----------
    bbox : (min_lon, min_lat, max_lon, max_lat), optional
        Degrees, GeoJSON order.
    within : dict, str, path or HexGrid, optional
        GeoJSON polygon(s) or a grid.
    """

    def __init__(self, bbox=None, within=None):
        if bbox is None and within is None:
            raise ValueError("a StudyArea needs bbox= and/or within=")
        self.bbox = None if bbox is None else _check_bbox(bbox)
        self.within = within
        self._grid = None
        self._polygons = None
        if within is not None:
            if hasattr(within, "assign") and hasattr(within, "cells"):  # a HexGrid (no import: grid imports events)
                self._grid = within
            else:
                self._polygons = load_polygons(within)

    def contains(self, lat, lon) -> np.ndarray:
        """Whether each point (degrees) lies in the area."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        inside = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            in_lon = (lon >= x0) & (lon <= x1) if x0 <= x1 else (lon >= x0) | (lon <= x1)
            inside &= in_lon & (lat >= y0) & (lat <= y1)
        if self._grid is not None and inside.any():
            pos = np.flatnonzero(inside)
            inside[pos] = self._grid.assign(lat[pos], lon[pos]) >= 0
        if self._polygons is not None and inside.any():
            pos = np.flatnonzero(inside)
            inside[pos] = points_in_polygons(lat[pos], lon[pos], self._polygons)
        return inside

    def __str__(self) -> str:
        parts = []
        if self.bbox is not None:
            parts.append("bbox=({:g}, {:g}, {:g}, {:g})".format(*self.bbox))
        if self._grid is not None:
            parts.append(f"within={self._grid!r}")
        elif self._polygons is not None:
            src = self.within if isinstance(self.within, str) and not self.within.lstrip().startswith("{") else "GeoJSON"
            parts.append(f"within={src} ({len(self._polygons)} polygon(s))")
        return " and ".join(parts)


def _check_bbox(bbox) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be (min_lon, min_lat, max_lon, max_lat) in degrees, got {bbox!r}") from None
    if isinstance(bbox, str) or not all(np.isfinite([x0, y0, x1, y1])):
        raise ValueError(f"bbox must be four finite numbers (min_lon, min_lat, max_lon, max_lat), got {bbox!r}")
    if not (-90 <= y0 < y1 <= 90) or not (-180 <= x0 <= 180 and -180 <= x1 <= 180) or x0 == x1:
        raise ValueError(
            f"bbox {bbox!r} is not (min_lon, min_lat, max_lon, max_lat) with -90 <= min_lat < max_lat <= 90 "
            "and longitudes in [-180, 180] (min_lon > max_lon crosses the antimeridian)"
        )
    return x0, y0, x1, y1


def _median_lon(lon: np.ndarray) -> float:
    """Median longitude, taken across the antimeridian when the points straddle it."""
    shifted = lon % 360.0
    q = np.percentile(lon, [25, 75])
    qs = np.percentile(shifted, [25, 75])
    if qs[1] - qs[0] < q[1] - q[0]:
        m = float(np.median(shifted))
        return m - 360.0 if m > 180.0 else m
    return float(np.median(lon))


def far_from_bulk(lat, lon, far_km="auto") -> tuple[np.ndarray, dict]:
    """Points far from the bulk of the data (the ``far_from_study_area`` rule).

    Parameters
    ----------
    lat, lon : ndarray of float
        Valid points (finite, in range), degrees.
    far_km : "auto", float, "off" or None
        ``"auto"``: the data-driven threshold of the module docstring; a
        positive number: that threshold in km; ``None`` or ``"off"`` (for
        TOML, which has no null): nothing is flagged.

    Returns
    -------
    mask : ndarray of bool
        Flagged points.
    info : dict
        ``centre`` (lat, lon) degrees, ``median_km``, ``mad_km`` (scaled),
        ``threshold_km`` (empty when the rule is off or there is no point).
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if isinstance(far_km, str) and far_km not in ("auto", "off"):
        raise ValueError(f"far_km must be 'auto', a positive number of km, 'off' or None, got {far_km!r}")
    if far_km is None or far_km == "off" or lat.size == 0:
        return np.zeros(lat.size, dtype=bool), {}
    if not isinstance(far_km, str) and (isinstance(far_km, bool) or not isinstance(far_km, (int, float, np.integer, np.floating)) or not far_km > 0):
        raise ValueError(f"far_km must be 'auto', a positive number of km, 'off' or None, got {far_km!r}")
    c_lat, c_lon = float(np.median(lat)), _median_lon(lon)
    d = haversine_m(c_lat, c_lon, lat, lon) / 1000.0
    med = float(np.median(d))
    mad = _MAD_SD * float(np.median(np.abs(d - med)))
    threshold = max(FAR_FLOOR_KM, med + FAR_MAD_K * mad) if far_km == "auto" else float(far_km)
    info = {"centre": (c_lat, c_lon), "median_km": med, "mad_km": mad, "threshold_km": threshold, "rule": far_km}
    return d > threshold, info


def swap_diagnosis(lat, lon, area: StudyArea | None = None) -> str | None:
    """A sentence explaining why the lat/lon columns look swapped, or ``None``.

    ``lat``/``lon``: finite points that are not (0, 0), degrees, possibly out
    of range. See the module docstring for the rule.
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    n = lat.size
    if n == 0:
        return None
    can_swap = (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    if area is not None:
        inside = int(area.contains(lat, lon).sum())
        inside_swapped = int(area.contains(np.where(can_swap, lon, np.nan), lat).sum())
        if inside < _SWAP_SHARE * n < inside_swapped:
            return (
                f"{inside} of {n} points lie in the declared study area ({area}), "
                f"{inside_swapped} would with latitude and longitude exchanged"
            )
        return None
    lo, hi = INHABITED_LAT
    odd = ~((lat >= lo) & (lat <= hi))
    fine_swapped = can_swap & (lon >= lo) & (lon <= hi)
    k = int((odd & fine_swapped).sum())
    if k > _SWAP_SHARE * n:
        return (
            f"{k} of {n} points have a latitude no city has (outside {lo:g}..{hi:g} degrees; median "
            f"{float(np.median(lat)):.4g}) while their longitude (median {float(np.median(lon)):.4g}) "
            "would be an ordinary latitude"
        )
    return None
