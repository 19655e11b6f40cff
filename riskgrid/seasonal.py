"""Calendar phases (day of the week, month) and multiplicative seasonal factors.

Used by models whose background rate varies with the calendar: the rate at
time ``t`` is ``base × F[day_of_week(t), month(t)]`` with ``F`` a (7, 12)
table of factors normalised so that its average over the fit window is 1
(``sum F × exposure = window length``), so the base rate keeps its meaning
of mean events/day.

Times are riskgrid's float days since 1970-01-01 (:data:`riskgrid.events.EPOCH`):
UTC for time-zone-aware data, wall clock for naive data. Phases are taken on
the data's own wall clock: with aware data the days run from local midnight
to local midnight (23 or 25 hours long around daylight-saving changes), so a
Saturday in Chicago is a Saturday.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SEASONALITIES", "Calendar", "seasonal_factor"]

#: accepted values of a model's ``seasonality`` parameter
SEASONALITIES = (None, "day_of_week", "month", "day_of_week+month")

_NS_PER_DAY = 86_400 * 10**9
#: smallest factor relative to the mean (a phase with no background event keeps a tiny rate)
_FACTOR_FLOOR = 1e-6

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def check_seasonality(value):
    """Validate a ``seasonality`` parameter; returns ``(use_day_of_week, use_month)``."""
    if value not in SEASONALITIES:
        raise ValueError(f"seasonality must be one of {SEASONALITIES}, got {value!r}")
    return value is not None and "day_of_week" in value, value is not None and "month" in value


class Calendar:
    """Day-of-week and month phases of riskgrid times (days since 1970-01-01).

    Parameters
    ----------
    tz : str or tzinfo, optional
        Time zone of the data (``EventSet.tz``). ``None``: times are wall clock.
    """

    def __init__(self, tz=None):
        self.tz = tz

    def wall(self, t) -> np.ndarray:
        """Wall-clock days since 1970-01-01 of times ``t`` (days since 1970-01-01, UTC when aware)."""
        t = np.asarray(t, dtype=np.float64)
        if self.tz is None:
            return t
        ns = np.round(t * _NS_PER_DAY).astype(np.int64)
        local = pd.DatetimeIndex(ns.ravel(), tz="UTC").tz_convert(self.tz).tz_localize(None)
        return (local.asi8 / _NS_PER_DAY).reshape(t.shape)

    def _unwall_days(self, day: np.ndarray) -> np.ndarray:
        """Times (days since 1970-01-01, UTC when aware) of the wall-clock midnights ``day`` (integers)."""
        day = np.asarray(day, dtype=np.int64)
        if self.tz is None:
            return day.astype(np.float64)
        idx = pd.DatetimeIndex(day * _NS_PER_DAY).tz_localize(
            self.tz, ambiguous=np.zeros(day.size, dtype=bool), nonexistent="shift_forward"
        )
        return idx.tz_convert("UTC").tz_localize(None).asi8 / _NS_PER_DAY

    @staticmethod
    def _phases_of_days(day: np.ndarray):
        dow = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12  # January = 0
        return dow.astype(np.int64), month.astype(np.int64)

    def phases(self, t):
        """``(day_of_week, month)`` of times ``t``: integer arrays, Monday = 0, January = 0."""
        day = np.floor(self.wall(t)).astype(np.int64)
        return self._phases_of_days(day)

    def exposure(self, a: float, b: float) -> np.ndarray:
        """(7, 12) array: days of ``[a, b)`` falling on each (day of week, month), wall clock.

        ``a`` and ``b`` are days since 1970-01-01 like event times; the entries
        are elapsed days (a 23-hour local day counts 23/24) and sum to
        ``b - a``.
        """
        out = np.zeros((7, 12))
        if not b > a:
            return out
        wa, wb = self.wall(np.array([a, b]))
        day = np.arange(int(np.floor(wa)) - 1, int(np.ceil(wb)) + 1, dtype=np.int64)
        edges = self._unwall_days(np.append(day, day[-1] + 1))
        overlap = np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0.0, None)
        dow, month = self._phases_of_days(day)
        np.add.at(out, (dow, month), overlap)
        return out


def seasonal_factor(weight: np.ndarray, exposure: np.ndarray, day_of_week: bool, month: bool, n_iter: int = 50):
    """Maximum-likelihood multiplicative factors from event weights per phase.

    Parameters
    ----------
    weight : (7, 12) array
        Sum of the (background) event weights in each (day of week, month).
    exposure : (7, 12) array
        Days of the fit window in each (day of week, month) (:meth:`Calendar.exposure`).
    day_of_week, month : bool
        Which factors to fit; the other is held at 1.

    Returns
    -------
    (F, a, b)
        ``F[d, m] = a[d] × b[m]``, normalised so that ``sum(F × exposure) =
        sum(exposure)`` (mean factor 1 over the window); ``a`` (7,) and ``b``
        (12,) the two factors (mean 1 over the window each). With both
        factors the Poisson likelihood ``sum W log F - sum F E`` is maximised
        by alternating closed-form updates (iterative proportional fitting).
    """
    W = np.asarray(weight, dtype=np.float64)
    E = np.asarray(exposure, dtype=np.float64)
    span, total = float(E.sum()), float(W.sum())
    a, b = np.ones(7), np.ones(12)
    if total <= 0 or span <= 0:
        return np.ones((7, 12)), a, b
    for _ in range(n_iter if (day_of_week and month) else 1):
        a_old, b_old = a, b
        if day_of_week:
            den = E @ b
            a = np.where(den > 0, W.sum(axis=1) / np.where(den > 0, den, 1.0), 1.0)
        if month:
            den = a @ E
            b = np.where(den > 0, W.sum(axis=0) / np.where(den > 0, den, 1.0), 1.0)
        if np.allclose(a, a_old, rtol=1e-12) and np.allclose(b, b_old, rtol=1e-12):
            break
    # mean 1 over the window for each factor, a floor for phases without events
    for f, ex in ((a, E.sum(axis=1)), (b, E.sum(axis=0))):
        f *= span / float(f @ ex)
        np.maximum(f, _FACTOR_FLOOR, out=f)
    F = np.outer(a, b)
    F *= span / float(np.sum(F * E))
    return F, a, b
