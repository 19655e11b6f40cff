"""riskgrid: high-performance spatiotemporal risk modelling on H3 hexagons."""

from ._version import __version__
from .errors import ConfigError, ConvergenceWarning, EventDataError, LeakageError, NotFittedError, RiskGridError
from .events import EventSet, read_events
from .geo import LocalProjection, haversine_m
from .grid import HexGrid, latlng_to_cells
from .simulate import simulate

__all__ = [
    "__version__",
    "EventSet",
    "read_events",
    "HexGrid",
    "latlng_to_cells",
    "LocalProjection",
    "haversine_m",
    "simulate",
    "RiskGridError",
    "EventDataError",
    "ConfigError",
    "LeakageError",
    "NotFittedError",
    "ConvergenceWarning",
]
