"""The PNG map of a forecast (hexagons by risk, colour bar with units, window in the title, zones outlined)."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from ..grid import HexGrid
from .dataset import as_dataset, check_grid

__all__ = ["write_png", "default_title", "forecast_window"]


def write_png(obj, path, zones=None, grid: HexGrid | None = None, title: str | None = None,
              dpi: int = 120, size_in: float = 8.0) -> str:
    """PNG map: hexagons coloured by risk, colour bar with units, window in the title, zones outlined.

    Deterministic (Agg backend, no ``Software`` metadata).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    ds = as_dataset(obj)
    grid = check_grid(grid, ds)
    rings = grid.boundaries_lonlat()
    values = np.asarray(ds["risk"].values, dtype=float)
    fig = Figure(figsize=(size_in, size_in), dpi=dpi)
    FigureCanvasAgg(fig)
    # fixed layout (no "tight" bounding box: one draw instead of two)
    ax = fig.add_axes((0.1, 0.07, 0.72, 0.84))
    cax = fig.add_axes((0.86, 0.15, 0.03, 0.68))
    vmax = float(np.max(values)) if values.size and np.max(values) > 0 else 1.0
    pc = PolyCollection([np.asarray(r) for r in rings], array=values, cmap="inferno_r",
                        norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax), edgecolors="face", linewidths=0.05)
    ax.add_collection(pc)
    pts = grid.vertices_lonlat
    pad = 0.01 * max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1e-3)
    ax.set_xlim(pts[:, 0].min() - pad, pts[:, 0].max() + pad)
    ax.set_ylim(pts[:, 1].min() - pad, pts[:, 1].max() + pad)
    ax.set_aspect(1.0 / math.cos(math.radians(float(np.mean(pts[:, 1])))), adjustable="box", anchor="C")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    if zones is not None and len(zones):
        for k, feat in enumerate(zones.to_geojson()["features"]):
            g = feat["geometry"]
            polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
            for rings_z in polys:
                ring = np.asarray(rings_z[0])
                ax.plot(ring[:, 0], ring[:, 1], color="#00b4ff", linewidth=1.6, label="patrol zones" if k == 0 else None)
            cx, cy = np.asarray(polys[0][0]).mean(axis=0)
            ax.annotate(str(k + 1), (cx, cy), xytext=(6, 6), textcoords="offset points", color="#0077cc",
                        fontsize=9, fontweight="bold")
        ax.legend(loc="lower left", fontsize=8,
                  title=f"{zones.captured_share:.1%} of risk in {zones.n_cells} cells", title_fontsize=8)
    units = ds["risk"].attrs.get("units", ds.attrs.get("units", ""))
    cb = fig.colorbar(pc, cax=cax)
    cb.set_label(f"risk: {units}")
    if title is None:
        title = default_title(ds)
    ax.set_title(title, fontsize=10)
    fig.savefig(os.fspath(path), format="png", metadata={"Software": None})
    return os.fspath(path)


def forecast_window(ds) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start and end of the forecast window from the attributes."""
    start = pd.Timestamp("1970-01-01") + pd.to_timedelta(float(ds.attrs["forecast_start_days"]), unit="D")
    end = start + pd.to_timedelta(float(ds.attrs["horizon_days"]), unit="D")
    return start.round("s"), end.round("s")


def default_title(ds) -> str:
    city = ds.attrs.get("city", "")
    model = ds.attrs.get("model", "")
    head = f"{city}: " if city else ""
    if "forecast_start_days" not in ds.attrs or "horizon_days" not in ds.attrs:
        return f"{head}{model} forecast".strip()
    start, end = forecast_window(ds)
    return f"{head}{model} forecast, {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"

