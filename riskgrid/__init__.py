"""riskgrid: high-performance spatiotemporal risk modelling on H3 hexagons."""

from ._version import __version__
from .errors import ConfigError, ConvergenceWarning, EventDataError, LeakageError, NotFittedError, RiskGridError
from .events import EventSet, read_events
from .geo import LocalProjection, haversine_m
from .grid import HexGrid, latlng_to_cells
from .simulate import simulate
from .knox import KnoxResult, knox_test
from .zones import select_zones, zones_metric
from . import io  # registers the .riskgrid xarray accessor
from .io import read_risk, risk_dataset
from .job import run_forecast
from .backtest import backtest, plot_backtest, summarize

__all__ = [
    "__version__",
    "EventSet",
    "read_events",
    "HexGrid",
    "latlng_to_cells",
    "LocalProjection",
    "haversine_m",
    "simulate",
    "knox_test",
    "KnoxResult",
    "select_zones",
    "zones_metric",
    "io",
    "risk_dataset",
    "read_risk",
    "run_forecast",
    "backtest",
    "summarize",
    "plot_backtest",
    "RiskGridError",
    "EventDataError",
    "ConfigError",
    "LeakageError",
    "NotFittedError",
    "ConvergenceWarning",
]
