"""One exception hierarchy for riskgrid.

Plain bad arguments (a negative bandwidth, an unknown option) raise the
built-in ``ValueError`` / ``TypeError``; problems with the *data* or the
*configuration* raise a subclass of :class:`RiskGridError`.
"""

from __future__ import annotations

__all__ = [
    "RiskGridError",
    "EventDataError",
    "ConfigError",
    "LeakageError",
    "NotFittedError",
    "OutputWriteError",
    "NoEventsError",
    "EventFileNotFoundError",
    "BatchError",
    "ConvergenceWarning",
]


class RiskGridError(Exception):
    """Root of every riskgrid-specific error."""


class EventDataError(RiskGridError, ValueError):
    """An event table failed validation (see ``EventSet.from_frame``).

    Attributes
    ----------
    report : dict
        ``{reason_code: pandas.DataFrame of offending rows}``.
    """

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report or {}


class ConfigError(RiskGridError, ValueError):
    """A configuration file or job specification is invalid."""


class LeakageError(RiskGridError, ValueError):
    """A prediction was asked for a time that the model has already seen."""


class NotFittedError(RiskGridError, AttributeError):
    """A model method needing a fitted model was called before ``fit``."""


class EventFileNotFoundError(RiskGridError, FileNotFoundError):
    """An event file or dataset path does not exist (also a ``FileNotFoundError``)."""


class NoEventsError(RiskGridError, ValueError):
    """No event in the training window of a forecast (or none of them inside the grid)."""


class OutputWriteError(RiskGridError, OSError):
    """A product could not be written (disk full, I/O error, NetCDF/HDF or GDAL write failure); names the file."""


class BatchError(RiskGridError):
    """One or more jobs of a batch failed (raised by ``BatchResult.raise_if_failed``)."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped before meeting its tolerance, or is unstable."""
