"""Baseline hotspot models (the maps analysts already use)."""

from __future__ import annotations

import numpy as np

from ._base import RiskModel

__all__ = ["CountHotspot"]


class CountHotspot(RiskModel):
    """Past counts per cell: the "naive" hotspot map.

    The forecast for a cell is its count in the last ``window_days`` days
    before the end of the fit window, scaled to a rate (events/day) and
    multiplied by the horizon: expected events in ``[start, start + horizon)``.

    Parameters
    ----------
    window_days : float or None
        Length of the look-back window in days (``None``: all training data).
    """

    model_name = "CountHotspot"

    def __init__(self, window_days: float | None = 365.0):
        self.window_days = window_days

    def _fit(self, events, grid, cell, end_days):
        if self.window_days is not None and not self.window_days > 0:
            raise ValueError(f"window_days must be > 0, got {self.window_days}")
        lo = -np.inf if self.window_days is None else end_days - float(self.window_days)
        use = (cell >= 0) & (events.t >= lo)
        self.counts_ = np.bincount(cell[use], weights=events.weight[use], minlength=len(grid)).astype(float)
        span = end_days - max(lo, float(events.t[0])) if self.window_days is None else float(self.window_days)
        self.window_used_days_ = max(span, 1e-9)
        self.rate_ = self.counts_ / self.window_used_days_  # events/day per cell

    def _predict(self, start_days, horizon_days):
        return self.rate_ * horizon_days
