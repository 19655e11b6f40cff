"""Distance/time bands shared by the Knox test, NearRepeat, SEPP and the CLI: edge checks, metrics, significance marks.

These helpers were private names of :mod:`riskgrid.knox` imported by other
modules (``_check_edges``, ``_METRICS``, ``_stars``); they are public here,
in the analysis layer, for every module that needs them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DISTANCE_METRICS", "check_band_edges", "significance_stars"]

#: distance metrics of the Knox test and NearRepeat (on local projected metres)
DISTANCE_METRICS = ("euclidean", "manhattan")


def check_band_edges(edges, name: str, unit: str) -> np.ndarray:
    """Validate band edges: >= 2, non-negative, strictly increasing, only the last may be inf.

    Parameters
    ----------
    edges : sequence of float
        Band edges, in ``unit`` (bands are ``[edges[i], edges[i + 1])``).
    name, unit : str
        The setting's name and unit, for the error message.

    Returns
    -------
    numpy.ndarray
        The edges as float64.

    Raises
    ------
    ValueError
        Naming the setting, the unit and the offending edge.
    """
    try:
        arr = np.asarray(edges, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers ({unit}), got {edges!r}") from exc
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 edges ({unit}) to make one band, got {arr.tolist()}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN: {arr.tolist()}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative ({unit}), got {arr.tolist()}")
    if np.isinf(arr[:-1]).any():
        raise ValueError(f"{name}: only the last edge may be inf, got {arr.tolist()}")
    bad = np.flatnonzero(np.diff(arr) <= 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} must be strictly increasing ({unit}); edge {i + 1} ({arr[i + 1]:g}) "
            f"is not greater than edge {i} ({arr[i]:g}) in {arr.tolist()}"
        )
    return arr


def significance_stars(p: float) -> str:
    """``***`` for p <= 0.001, ``**`` <= 0.01, ``*`` <= 0.05, else ``""`` (NaN: ``""``)."""
    if not np.isfinite(p):
        return ""
    return "***" if p <= 0.001 else "**" if p <= 0.01 else "*" if p <= 0.05 else ""
