"""Validated, immutable event tables: :class:`EventSet` and :func:`read_events`.

Time convention
---------------
Times are stored as float64 **days since 1970-01-01 00:00** (:data:`EPOCH`).
For naive timestamps (local wall-clock time, as most police data are) this is
wall-clock days; for time-zone-aware timestamps the instants are converted to
UTC first. The original timestamps are kept in :attr:`EventSet.timestamps`.
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import EventDataError, EventFileNotFoundError
from .geo import LocalProjection

__all__ = ["EventSet", "read_events", "EPOCH", "REASONS"]

EPOCH = pd.Timestamp("1970-01-01")
_NS_PER_DAY = 86_400 * 10**9

#: Validation rules: reason code → human description.
REASONS = {
    "missing_coordinate": "latitude or longitude missing, NaN or not a number",
    "lat_out_of_range": "latitude outside [-90, 90]",
    "lon_out_of_range": "longitude outside [-180, 180]",
    "null_island": "placeholder point (0, 0)",
    "bad_timestamp": "timestamp missing or unparseable",
    "mixed_timezones": "time-zone-aware and naive timestamps mixed in one column (minority kind flagged)",
    "bad_weight": "weight negative, NaN or infinite",
    "missing_category": "category missing",
}


# --------------------------------------------------------------------------- #
# parsing helpers
# --------------------------------------------------------------------------- #
def _is_null(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _parse_times(col: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse a timestamp column.

    Returns ``(parsed, bad, mixed)``: ``parsed`` a datetime64 Series (naive, or
    UTC when the column is time-zone aware), boolean masks of rows that are
    missing/unparseable and of rows whose time-zone kind is the minority.
    """
    n = len(col)
    no = np.zeros(n, dtype=bool)
    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC")
        return parsed, parsed.isna().to_numpy(), no
    if pd.api.types.is_datetime64_dtype(dtype):
        return col, col.isna().to_numpy(), no
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        # numbers are not timestamps: every row is flagged, nothing is guessed
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns]"), np.ones(n, dtype=bool), no
    # strings / objects: fast vectorised path first
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # format-inference chatter
            parsed = pd.to_datetime(col, errors="raise")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC")
        if pd.api.types.is_datetime64_any_dtype(parsed.dtype):
            return parsed, parsed.isna().to_numpy(), no
    except (ValueError, TypeError, OverflowError):
        pass
    # slow, exact path: element by element
    values = col.to_numpy(dtype=object)
    stamps = np.empty(n, dtype=object)
    bad = np.zeros(n, dtype=bool)
    aware = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if _is_null(v):
            bad[i] = True
            continue
        try:
            ts = pd.Timestamp(v)
        except (ValueError, TypeError, OverflowError):
            bad[i] = True
            continue
        if ts is pd.NaT or _is_null(ts):
            bad[i] = True
            continue
        stamps[i] = ts
        aware[i] = ts.tzinfo is not None
    good = ~bad
    n_aware = int((aware & good).sum())
    n_naive = int((~aware & good).sum())
    mixed = np.zeros(n, dtype=bool)
    use_aware = n_aware > n_naive
    if n_aware and n_naive:
        mixed = good & (aware != use_aware)
    ok = good & ~mixed
    out = np.full(n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    for i in np.flatnonzero(ok):
        ts = stamps[i]
        if use_aware:
            ts = ts.tz_convert("UTC").tz_localize(None)
        out[i] = np.datetime64(ts.to_datetime64(), "ns")
    parsed = pd.Series(out, index=col.index)
    if use_aware:
        parsed = parsed.dt.tz_localize("UTC")
    return parsed, bad, mixed


def _days(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps → float64 days since :data:`EPOCH` (UTC epoch for aware times)."""
    idx = pd.DatetimeIndex(ts)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    ns = idx.as_unit("ns").asi8.astype(np.int64)
    whole = ns // _NS_PER_DAY
    frac = (ns - whole * _NS_PER_DAY) / _NS_PER_DAY
    return whole.astype(np.float64) + frac


def _plain(v):
    """numpy scalar → Python scalar, so messages read ``lat=95.0`` not ``np.float64(95.0)``."""
    return v.item() if isinstance(v, np.generic) else v


def _fmt_rows(frame: pd.DataFrame, mask: np.ndarray, cols: Sequence[str], k: int = 5) -> str:
    idx = np.flatnonzero(mask)[:k]
    parts = []
    for i in idx:
        label = frame.index[i]
        vals = ", ".join(f"{c}={_plain(frame[c].iloc[i])!r}" for c in cols if c in frame.columns)
        parts.append(f"row {label!r} ({vals})")
    return "; ".join(parts)


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
    ) -> "EventSet":
        """Validate a DataFrame of events and build an :class:`EventSet`.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per event.
        time, lat, lon : str
            Column names of the timestamp and the WGS84 coordinates (degrees).
        category : str, optional
            Column holding the event type (kept as integer codes + labels).
        weight : str, optional
            Column of non-negative weights (e.g. number of victims).
        on_invalid : {"raise", "drop"}
            ``"raise"``: any invalid row raises :class:`~riskgrid.EventDataError`
            listing, per rule, the count and the first five offending rows.
            ``"drop"``: invalid rows go to :attr:`rejected` with a ``reason``.

        Raises
        ------
        EventDataError
            Missing columns, invalid rows (``on_invalid="raise"``) or no valid
            row left.
        """
        if on_invalid not in ("raise", "drop"):
            raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        needed = {"time": time, "lat": lat, "lon": lon}
        if category is not None:
            needed["category"] = category
        if weight is not None:
            needed["weight"] = weight
        missing = [f"{role}={name!r}" for role, name in needed.items() if name not in df.columns]
        if missing:
            raise EventDataError(
                f"column(s) not found: {', '.join(missing)}; the table has columns {list(map(str, df.columns))}"
            )
        if not df.index.is_unique:
            df = df.reset_index(drop=True)
        if len(df) == 0:
            raise EventDataError("the event table is empty (0 rows)")

        n = len(df)
        la = pd.to_numeric(df[lat], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        lo = pd.to_numeric(df[lon], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        masks: dict[str, np.ndarray] = {}
        masks["missing_coordinate"] = np.isnan(la) | np.isnan(lo)
        with np.errstate(invalid="ignore"):
            masks["lat_out_of_range"] = ~np.isnan(la) & ~((la >= -90) & (la <= 90))
            masks["lon_out_of_range"] = ~np.isnan(lo) & ~((lo >= -180) & (lo <= 180))
        masks["null_island"] = (la == 0) & (lo == 0)
        parsed, bad_t, mixed_t = _parse_times(df[time])
        masks["bad_timestamp"] = bad_t
        masks["mixed_timezones"] = mixed_t
        if weight is not None:
            w = pd.to_numeric(df[weight], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                masks["bad_weight"] = ~np.isfinite(w) | (w < 0)
        else:
            w = np.ones(n)
        if category is not None:
            masks["missing_category"] = df[category].isna().to_numpy()

        cols_for = {
            "missing_coordinate": [lat, lon],
            "lat_out_of_range": [lat],
            "lon_out_of_range": [lon],
            "null_island": [lat, lon],
            "bad_timestamp": [time],
            "mixed_timezones": [time],
            "bad_weight": [weight] if weight else [],
            "missing_category": [category] if category else [],
        }
        any_bad = np.zeros(n, dtype=bool)
        for m in masks.values():
            any_bad |= m
        rejected = df.iloc[0:0].copy()
        rejected["reason"] = pd.Series(dtype=object)
        if any_bad.any():
            if on_invalid == "raise":
                lines = [f"{int(any_bad.sum())} of {n} event rows are invalid:"]
                report = {}
                for code, m in masks.items():
                    if m.any():
                        report[code] = df.loc[m]
                        lines.append(
                            f"  [{code}] {REASONS[code]}: {int(m.sum())} rows, e.g. "
                            + _fmt_rows(df, m, cols_for[code])
                        )
                lines.append("Pass on_invalid='drop' to keep the valid rows (rejected rows go to EventSet.rejected).")
                raise EventDataError("\n".join(lines), report)
            reasons = np.array(
                ["; ".join(code for code, m in masks.items() if m[i]) for i in np.flatnonzero(any_bad)],
                dtype=object,
            )
            rejected = df.loc[any_bad].copy()
            rejected["reason"] = reasons
        keep = ~any_bad
        if not keep.any():
            counts = ", ".join(f"{code}: {int(m.sum())}" for code, m in masks.items() if m.any())
            raise EventDataError(f"no valid event left: all {n} rows were rejected ({counts})", {})

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
        return cls(
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
        for key, cells in self._cells_cache.items():
            sub = cells[idx]
            sub.flags.writeable = False
            out._cells_cache[key] = sub
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
        unknown = [c for c in categories if c not in self.categories]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {list(self.categories)}")
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
        ``category`` and ``weight`` (what a Dask worker needs), after checking
        that they exist.

    Raises
    ------
    EventFileNotFoundError
        The path does not exist.
    EventDataError
        Unreadable file, missing columns, no rows for ``city``, invalid rows.
    """
    path = os.fspath(path)
    if prune_columns and is_parquet(path):
        roles = {"time": "timestamp", "lat": "lat", "lon": "lon", "category": None, "weight": None}
        roles.update({k: v for k, v in kwargs.items() if k in roles})
        want = [c for c in roles.values() if c is not None]
        names = parquet_columns(path)
        missing = [f"{r}={c!r}" for r, c in roles.items() if c is not None and c not in names]
        if city is not None and "city" not in names:
            missing.append("city (needed by the city filter)")
        if missing:
            raise EventDataError(f"column(s) not found in {path}: {', '.join(missing)}; the table has columns {names}")
        df = read_table(path, columns=want, filters=[("city", "=", city)] if city is not None else None)
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
