"""Forecasting models: all follow ``fit(events, grid)`` / ``predict(start, horizon_days)``.

Each model module adds its class to the imports below; :func:`make_model`
builds any of them from a name and parameters (configuration files, Dask jobs).
"""

from ..errors import ConfigError
from ._base import RiskModel, risk_dataarray
from .hotspot import CountHotspot, KDEHotspot, ProspectiveHotspot
from .grid_hawkes import GridHawkes
from .sepp import SEPP
from .near_repeat import NearRepeat
from .feature_forecaster import FeatureForecaster
from .selection import WalkForwardSearch, select_model

__all__ = ["RiskModel", "risk_dataarray", "make_model", "available_models", "CountHotspot", "KDEHotspot", "ProspectiveHotspot", "GridHawkes", "SEPP", "NearRepeat", "FeatureForecaster", "WalkForwardSearch", "select_model"]


def available_models() -> list[str]:
    """Names accepted by :func:`make_model`."""
    return sorted(
        name
        for name, obj in globals().items()
        if isinstance(obj, type) and issubclass(obj, RiskModel) and obj is not RiskModel
    )


def make_model(name: str, **params) -> RiskModel:
    """Build a model from its class name and keyword parameters.

    Raises :class:`~riskgrid.ConfigError` naming the known models, or the
    parameters the model accepts, when either is wrong.
    """
    cls = globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, RiskModel)) or cls is RiskModel:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    valid = cls._get_param_names()
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ConfigError(f"model {name} has no parameter(s) {bad}; it accepts {valid}")
    return cls(**params)
