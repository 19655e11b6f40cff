"""Slow, obvious references for riskgrid.geo's polygon helpers."""

import numpy as np


def naive_point_in_polygons(lat, lon, polygons):
    """Even-odd crossing count per polygon, one point and one edge at a time (union over polygons)."""
    out = np.zeros(len(lat), dtype=bool)
    for i, (y, x) in enumerate(zip(lat, lon)):
        for rings in polygons:
            inside = False
            for ring in rings:
                m = len(ring)
                for j in range(m):
                    x1, y1 = ring[j]
                    x2, y2 = ring[(j + 1) % m]
                    if (y1 <= y < y2) or (y2 <= y < y1):
                        if x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                            inside = not inside
            if inside:
                out[i] = True
                break
    return out
