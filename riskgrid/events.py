"""Validated, immutable event tables: :class:`EventSet` and :func:`read_events`.

Time convention
---------------
Times are stored as float64 **days since 1970-01-01 00:00** (:data:`EPOCH`).
For naive timestamps (local wall-clock time, as most police data are) this is
wall-clock days; for time-zone-aware timestamps the instants are converted to
UTC first. The original timestamps are kept in :attr:`EventSet.timestamps`.

Validation
----------
:meth:`EventSet.from_frame` checks every row against the rules of
:data:`REASONS` (in :mod:`riskgrid.validation`); the time rules are documented in :mod:`riskgrid.timeparse`,
the study-area rules (declared area, far-from-the-bulk, swapped columns) in
:mod:`riskgrid.studyarea`. ``on_invalid="raise"`` reports every broken rule
(count and first rows with their values); ``"drop"`` keeps the valid rows and
records the others in :attr:`EventSet.rejected` (rows in = kept + rejected).
Table-level problems (missing columns, a non-numeric coordinate dtype,
swapped lat/lon, ambiguous day/month order) always raise.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import EventDataError, EventFileNotFoundError
from .geo import LocalProjection
from .studyarea import StudyArea
from .timeparse import parse_date
from .validation import REASONS, check_rows

__all__ = ["EventSet", "read_events", "parse_date", "EPOCH", "REASONS"]

EPOCH = pd.Timestamp("1970-01-01")
_NS_PER_DAY = 86_400 * 10**9

_PER_DAY = {"s": 86_400, "ms": 86_400 * 10**3, "us": 86_400 * 10**6, "ns": _NS_PER_DAY}


def _days(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps → float64 days since :data:`EPOCH` (UTC epoch for aware times).

    Exact in the column's own unit (no conversion to nanoseconds, which would
    overflow beyond 2262); the same floats as a nanosecond computation.
    """
    idx = pd.DatetimeIndex(ts)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    per_day = _PER_DAY[idx.unit]
    v = idx.asi8.astype(np.int64)
    whole = v // per_day
    frac = (v - whole * per_day) / per_day
    return whole.astype(np.float64) + frac


# --------------------------------------------------------------------------- #
class EventSet:
    """A validated, immutable, time-sorted table of point events.

    Build one with :meth:`from_frame` or :func:`read_events`; do not call the
    constructor directly.

    Attributes
    ----------
    t : ndarray of float64
        Event times in **days since** :attr:`origin` (1970-01-01 00:00).
    lat, lon : ndarray of float64
        WGS84 degrees.
    weight : ndarray of float64
        Non-negative event weights (1.0 when no weight column was given).
    codes : ndarray of int64
        Category code of each event, an index into :attr:`categories`.
    categories : tuple of str
        Category labels (``("all",)`` when no category column was given).
    timestamps : pandas.Series
        The original (parsed) timestamps, in sorted order.
    index : pandas.Index
        The original row labels, in sorted order.
    extra : pandas.DataFrame
        Every other column of the input, in sorted order.
    rejected : pandas.DataFrame
        Rows rejected with ``on_invalid="drop"``, with a ``reason`` column
        (several reasons joined by ``"; "``). Empty otherwise.
    validation : dict
        Settings the validation used (``time_format``, ``year_range``,
        ``study_area`` or ``far_from_study_area`` with its centre and
        threshold in km, ``duplicates``), for manifests.
    local_tz : tzinfo or None
        The time zone the timestamps came with (a pandas tz-aware column, e.g.
        ``America/Chicago``), used for calendar effects (weekday, month) on
        the local wall clock; UTC for aware timestamps parsed from strings
        with offsets; ``None`` for naive (wall-clock) timestamps.
    """

    origin = EPOCH

    def __init__(self, t, lat, lon, weight, codes, categories, timestamps, extra, rejected, source=None, local_tz=None):
        self.t = self._ro(np.ascontiguousarray(t, dtype=np.float64))
        self.lat = self._ro(np.ascontiguousarray(lat, dtype=np.float64))
        self.lon = self._ro(np.ascontiguousarray(lon, dtype=np.float64))
        self.weight = self._ro(np.ascontiguousarray(weight, dtype=np.float64))
        self.codes = self._ro(np.ascontiguousarray(codes, dtype=np.int64))
        self.categories = tuple(str(c) for c in categories)
        self.timestamps = timestamps
        self.extra = extra
        self.rejected = rejected
        self.source = source
        self.local_tz = local_tz if local_tz is not None else getattr(timestamps.dt, "tz", None)
        self._projection = None
        #: settings the validation used (time format, year window, study area, duplicate rule)
        self.validation: dict = {}
        # grid token -> cell index per event (HexGrid.assign memo; slices travel with between/select)
        self._cells_cache: dict[str, np.ndarray] = {}

    @staticmethod
    def _ro(a: np.ndarray) -> np.ndarray:
        a.flags.writeable = False
        return a

    # ------------------------------------------------------------------ build
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        time: str = "timestamp",
        lat: str = "lat",
        lon: str = "lon",
        category: str | None = None,
        weight: str | None = None,
        on_invalid: str = "raise",
        *,
        id: str | None = None,
        time_format: str | None = None,
        year_range: tuple[int, int] | None = None,
        bbox: Sequence[float] | None = None,
        within=None,
        far_km: float | str | None = "auto",
        keep_duplicates: bool = False,
    ) -> "EventSet":
        """Validate a DataFrame of events and build an :class:`EventSet`.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per event.
        time, lat, lon : str
            Column names of the timestamp and the WGS84 coordinates (degrees).
            The coordinate columns must be numeric (or text holding numbers):
            a bool, datetime or complex column is an error, never 0/1 degrees.
        category : str, optional
            Column holding the event type (kept as integer codes + labels).
        weight : str, optional
            Column of non-negative weights (e.g. number of victims).
        on_invalid : {"raise", "drop"}
            ``"raise"``: any invalid row raises :class:`~riskgrid.EventDataError`
            listing, per rule, the count and the first five offending rows.
            ``"drop"``: invalid rows go to :attr:`rejected` with a ``reason``.
        id : str, optional
            Column of event identifiers. Rows repeating an earlier row's id
            are ``duplicate`` (missing ids never are).
        time_format : str, optional
            strftime pattern (``"%d/%m/%Y %H:%M"``) or ``"ISO8601"`` for string
            timestamps. ``None`` finds the column's one format; a column
            needing several is reported row by row (``mixed_formats``), an
            ambiguous one (every day <= 12) raises. See :mod:`riskgrid.timeparse`.
        year_range : (int, int), optional
            First and last accepted year (inclusive); default 1970 to next
            year. Rows outside are ``time_out_of_range``.
        bbox : (min_lon, min_lat, max_lon, max_lat), optional
            Declared study area, degrees. Points outside are ``outside_study_area``.
        within : GeoJSON (dict, text, path) or HexGrid, optional
            Declared study area as polygon(s) or grid cells (with ``bbox``: both apply).
        far_km : "auto", float or None
            Without a declared area: points farther than this from the median
            location are ``far_from_study_area``; ``"auto"`` = max(50 km,
            median distance + 10 scaled MADs), see :mod:`riskgrid.studyarea`;
            ``None`` or ``"off"`` turns the rule off. Ignored with ``bbox``/``within``.
        keep_duplicates : bool
            ``False`` (default): a row equal to an earlier valid row is a
            ``duplicate`` (the first is kept). With ``id``, equal means the
            same id; without, equal in **every** column (time compared as
            parsed instants), so rows telling events apart by any column (an
            event id, a description) are all kept: the Chicago 2016-17 file
            has 1,642 rows sharing time, point and category with another row
            but with their own record id, and none is rejected.

        Raises
        ------
        EventDataError
            Missing columns, a non-numeric coordinate column, lat/lon that
            look swapped, ambiguous timestamps, invalid rows
            (``on_invalid="raise"``) or no valid row left.

        Notes
        -----
        The result's :attr:`validation` records the settings used (time
        format, year window, study area or distance threshold, duplicate rule)
        for manifests.
        """
        if on_invalid not in ("raise", "drop"):
            raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        if not isinstance(keep_duplicates, (bool, np.bool_)):
            raise ValueError(f"keep_duplicates must be True or False, got {keep_duplicates!r}")
        needed = {"time": time, "lat": lat, "lon": lon}
        if category is not None:
            needed["category"] = category
        if weight is not None:
            needed["weight"] = weight
        if id is not None:
            needed["id"] = id
        missing = [f"{role}={name!r}" for role, name in needed.items() if name not in df.columns]
        if missing:
            raise EventDataError(
                f"column(s) not found: {', '.join(missing)}; the table has columns {list(map(str, df.columns))}"
            )
        area = StudyArea(bbox=bbox, within=within) if (bbox is not None or within is not None) else None
        if not df.index.is_unique:
            df = df.reset_index(drop=True)
        if len(df) == 0:
            raise EventDataError("the event table is empty (0 rows)")

        rows = check_rows(
            df, time=time, lat=lat, lon=lon, category=category, weight=weight, id=id, on_invalid=on_invalid,
            time_format=time_format, year_range=year_range, area=area, far_km=far_km, keep_duplicates=keep_duplicates,
        )
        keep, parsed, rejected, validation = rows.keep, rows.parsed, rows.rejected, rows.settings
        la, lo, w = rows.lat, rows.lon, rows.weight
        kept = df.loc[keep]
        ts = parsed[keep]
        t = _days(ts)
        order = np.argsort(t, kind="stable")
        if category is not None:
            cat = pd.Categorical(kept[category].astype(str))
            codes = cat.codes.astype(np.int64)
            labels = list(cat.categories)
        else:
            codes = np.zeros(len(kept), dtype=np.int64)
            labels = ["all"]
        used = {time, lat, lon} | ({category} if category else set()) | ({weight} if weight else set())
        extra = kept[[c for c in kept.columns if c not in used]].iloc[order]
        ts_sorted = ts.iloc[order]
        out = cls(
            t=t[order],
            lat=la[keep][order],
            lon=lo[keep][order],
            weight=w[keep][order],
            codes=codes[order],
            categories=labels,
            timestamps=ts_sorted,
            extra=extra,
            rejected=rejected,
            local_tz=df[time].dtype.tz if isinstance(df[time].dtype, pd.DatetimeTZDtype) else None,
        )
        out.validation = validation if id is None else {**validation, "id_column": str(id)}
        return out

    def _take(self, idx: np.ndarray, codes=None, categories=None) -> "EventSet":
        idx = np.asarray(idx)
        out = EventSet(
            t=self.t[idx],
            lat=self.lat[idx],
            lon=self.lon[idx],
            weight=self.weight[idx],
            codes=self.codes[idx] if codes is None else codes,
            categories=self.categories if categories is None else categories,
            timestamps=self.timestamps.iloc[idx],
            extra=self.extra.iloc[idx],
            rejected=self.rejected,
            source=self.source,
            local_tz=self.local_tz,
        )
        out._projection = self._projection
        out.validation = self.validation
        for key, cells in self._cells_cache.items():
            sub = cells[idx]
            sub.flags.writeable = False
            out._cells_cache[key] = sub
        return out

    def with_weights(self, weight) -> "EventSet":
        """A copy with other event weights (same events, order, categories and validation record).

        Parameters
        ----------
        weight : array of float (n_events,)
            New non-negative, finite weights, in this set's (time) order; e.g.
            ``events.weight * factor`` to down-weight some records.

        Raises
        ------
        ValueError
            Wrong length, or a negative / non-finite weight (naming the count and first positions).
        """
        w = np.array(weight, dtype=np.float64, copy=True).reshape(-1)
        if w.shape[0] != len(self):
            raise ValueError(f"weight must hold one value per event ({len(self)}), got {w.shape[0]}")
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise ValueError(f"weights must be finite and >= 0; {bad.size} bad value(s) at positions {bad[:5].tolist()}")
        out = self._take(np.arange(len(self)))
        out.weight = out._ro(np.ascontiguousarray(w))
        return out

    # ------------------------------------------------------------- accessors
    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def index(self) -> pd.Index:
        """Original row labels of the events, in time order."""
        return self.timestamps.index

    @property
    def tz(self):
        """Time zone of the timestamps (``None`` for naive wall-clock times; UTC when aware)."""
        return getattr(self.timestamps.dt, "tz", None)

    @property
    def start(self) -> pd.Timestamp:
        """Timestamp of the first event."""
        return self.to_timestamp(self.t[0]) if len(self) else None

    @property
    def end(self) -> pd.Timestamp:
        """Timestamp of the last event."""
        return self.to_timestamp(self.t[-1]) if len(self) else None

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    def to_days(self, when) -> float:
        """Convert a timestamp (str, datetime, Timestamp) or a number of days to days since :attr:`origin`."""
        return to_days(when, tz=self.tz)

    def to_timestamp(self, days: float) -> pd.Timestamp:
        """Days since :attr:`origin` → Timestamp (UTC when the data are time-zone aware)."""
        ts = EPOCH + pd.to_timedelta(float(days), unit="D")
        if self.tz is not None:
            ts = ts.tz_localize("UTC")
        return ts.round("us")

    def between(self, start=None, end=None) -> "EventSet":
        """Events with ``start <= time < end`` (half-open). ``None`` leaves a side open.

        ``start``/``end`` may be timestamps, strings or days since the origin.
        """
        lo = 0 if start is None else int(np.searchsorted(self.t, self.to_days(start), side="left"))
        hi = len(self) if end is None else int(np.searchsorted(self.t, self.to_days(end), side="left"))
        return self._take(np.arange(lo, max(lo, hi)))

    def select(self, categories: str | Iterable[str]) -> "EventSet":
        """Events of the given category label(s), re-coded in the order given."""
        if isinstance(categories, str):
            categories = [categories]
        categories = list(categories)
        check_labels(self.categories, categories)
        old = np.array([self.categories.index(c) for c in categories])
        remap = np.full(len(self.categories), -1, dtype=np.int64)
        remap[old] = np.arange(len(old))
        new_codes = remap[self.codes]
        idx = np.flatnonzero(new_codes >= 0)
        return self._take(idx, codes=new_codes[idx], categories=tuple(categories))

    def to_frame(self) -> pd.DataFrame:
        """The events as a DataFrame (original row labels, time-sorted)."""
        df = pd.DataFrame(
            {
                "timestamp": self.timestamps.to_numpy(),
                "t_days": self.t,
                "lat": self.lat,
                "lon": self.lon,
                "category": pd.Categorical.from_codes(self.codes, self.categories),
                "weight": self.weight,
            },
            index=self.index,
        )
        if self.tz is not None:
            df["timestamp"] = self.timestamps
        for c in self.extra.columns:
            df[c] = self.extra[c].to_numpy()
        return df

    @property
    def projection(self) -> LocalProjection:
        """Azimuthal equidistant projection centred on the data's bounding box (see :mod:`riskgrid.geo`)."""
        if self._projection is None:
            self._projection = LocalProjection.centred_on(self.lat, self.lon)
        return self._projection

    def xy(self, projection: LocalProjection | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Event coordinates in **metres** on a local azimuthal equidistant projection.

        By default the projection is centred on the data (:attr:`projection`);
        pass ``grid.projection`` to share a frame with a :class:`~riskgrid.HexGrid`.
        """
        return (projection or self.projection).forward(self.lat, self.lon)

    def __repr__(self) -> str:
        if not len(self):
            return "EventSet(0 events)"
        return (
            f"EventSet({len(self)} events, {self.start} → {self.end}, "
            f"{len(self.categories)} categories, {len(self.rejected)} rejected)"
        )


def check_labels(known, labels, what: str = "categories") -> None:
    """Raise ``ValueError`` for labels not among ``known``, listing the known ones and case-insensitive matches."""
    bad = [lab for lab in labels if lab not in known]
    if not bad:
        return
    lower = {str(c).lower(): c for c in known}
    hints = [f"{b!r} → did you mean {lower[str(b).lower()]!r}?" for b in bad if str(b).lower() in lower]
    raise ValueError(f"unknown {what} {bad}; known: {list(known)}" + (f" ({'; '.join(hints)})" if hints else ""))


def to_days(when, tz=None) -> float:
    """Timestamp-like or number → float days since 1970-01-01 (UTC for aware times)."""
    if isinstance(when, (int, float, np.integer, np.floating)) and not isinstance(when, bool):
        return float(when)
    if isinstance(when, (str, _dt.date, np.datetime64, pd.Timestamp)):
        ts = pd.Timestamp(when)
        if ts is pd.NaT:
            raise ValueError(f"cannot interpret {when!r} as a time")
        if ts.tzinfo is not None:  # naive input is read in the data's own convention
            ts = ts.tz_convert("UTC").tz_localize(None)
        return float(_days(pd.DatetimeIndex([ts]))[0])
    raise TypeError(f"cannot interpret {when!r} ({type(when).__name__}) as a time")


def read_events(path: str | os.PathLike, *, city: str | None = None, prune_columns: bool = False, **kwargs) -> EventSet:
    """Read a Parquet or CSV file of events and validate it (the one event loader of riskgrid).

    Keyword arguments are those of :meth:`EventSet.from_frame`
    (``time``, ``lat``, ``lon``, ``category``, ``weight``, ``on_invalid``).
    Parquet is recognised by the ``.parquet``/``.pq`` suffix or a directory
    (a partitioned dataset); everything else is read as CSV.

    Parameters
    ----------
    city : str, optional
        Keep only the rows whose ``city`` column (or Hive partition) equals
        this value; a Parquet dataset is filtered by pyarrow, so the other
        cities' files are never read.
    prune_columns : bool
        Parquet: read only the columns named by ``time``, ``lat``, ``lon``,
        ``category``, ``weight`` and ``id`` (what a Dask worker needs), after
        checking that they exist. Without ``id`` the pruned table cannot tell
        an exact duplicate from several offences at one time and place, so
        duplicates are kept (``keep_duplicates=True``) unless asked otherwise.

    Raises
    ------
    EventFileNotFoundError
        The path does not exist.
    EventDataError
        Unreadable file, missing columns, no rows for ``city``, invalid rows.
    """
    path = os.fspath(path)
    if prune_columns and is_parquet(path):
        roles = {"time": "timestamp", "lat": "lat", "lon": "lon", "category": None, "weight": None, "id": None}
        roles.update({k: v for k, v in kwargs.items() if k in roles})
        want = [c for c in roles.values() if c is not None]
        names = parquet_columns(path)
        missing = [f"{r}={c!r}" for r, c in roles.items() if c is not None and c not in names]
        if city is not None and "city" not in names:
            missing.append("city (needed by the city filter)")
        if missing:
            raise EventDataError(f"column(s) not found in {path}: {', '.join(missing)}; the table has columns {names}")
        df = read_table(path, columns=want, filters=[("city", "=", city)] if city is not None else None)
        if kwargs.get("id") is None:  # the columns that tell rows apart were not read
            kwargs.setdefault("keep_duplicates", True)
    else:
        df = read_table(path, filters=[("city", "=", city)] if city is not None and is_parquet(path) else None)
        if city is not None and not is_parquet(path):
            if "city" not in df.columns:
                raise EventDataError(f"no 'city' column in {path} (needed by the city filter)")
            df = df.loc[df["city"].astype(str) == str(city)]
    if city is not None and len(df) == 0:
        raise EventDataError(f"no event for city={city!r} in {path}")
    es = EventSet.from_frame(df, **kwargs)
    es.source = path
    return es


def parquet_columns(path: str) -> list[str]:
    """Column names of a Parquet file or Hive-partitioned dataset (partition keys included)."""
    import pyarrow.dataset as pads

    if "://" not in path and not os.path.exists(path):
        raise EventFileNotFoundError(f"event file not found: {path}")
    try:
        return list(pads.dataset(path, format="parquet", partitioning="hive").schema.names)
    except Exception as exc:  # corrupt footers and the like
        raise EventDataError(f"cannot read event file {path}: {type(exc).__name__}: {exc}") from exc


def is_parquet(path: str) -> bool:
    """Parquet by name: a ``.parquet``/``.pq`` file, a (partitioned) folder, or a URL."""
    return "://" in path or path.lower().endswith((".parquet", ".pq")) or os.path.isdir(path)


def read_table(path: str, columns=None, filters=None, what: str = "event file") -> pd.DataFrame:
    """The raw table of an event source: Parquet (see :func:`is_parquet`, Hive partitions read as
    columns, optional pyarrow ``columns``/``filters``) or CSV (``.tsv``: tab-separated).

    Raises :class:`EventFileNotFoundError` (a ``FileNotFoundError``) for a missing local path and :class:`EventDataError`
    (naming ``what`` and the path) for an unreadable, corrupt or truncated file.
    """
    path = os.fspath(path)
    if "://" not in path and not os.path.exists(path):
        raise EventFileNotFoundError(f"{what} not found: {path}")
    try:
        if is_parquet(path):
            return pd.read_parquet(path, columns=columns, filters=filters)
        return pd.read_csv(path, sep="\t" if path.lower().endswith(".tsv") else ",")
    except Exception as exc:  # pyarrow and pandas raise many types for corrupt files
        raise EventDataError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from exc
