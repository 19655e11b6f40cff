"""Forecasting models: all follow ``fit(events, grid)`` / ``predict(start, horizon_days)``."""

from ._base import RiskModel, risk_dataarray

__all__ = ["RiskModel", "risk_dataarray"]
