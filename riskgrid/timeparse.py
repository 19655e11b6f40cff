"""Timestamp columns read explicitly: one format per column, a year window, never a per-row guess.

Used by :meth:`riskgrid.EventSet.from_frame`; :func:`parse_date` reads a
command-line date (``YYYY-MM-DD`` only).

Rules (each a rejection reason of ``from_frame``)
-------------------------------------------------
``bad_timestamp``
    Missing, a number or a bool (numbers are never read as epoch times), or a
    string that no format found in the column reads.
``mixed_formats``
    A string column whose values need more than one format (e.g. ISO
    ``2020-01-31 10:00`` and ``31/01/2020 10:00``). Without ``time_format``,
    the formats present are found with ``pandas``' format guesser (month-first
    and day-first variants of every sampled value); the format reading the
    most rows is used, and the rows that only another format reads, or that
    two formats present read as different dates (``01/02/2020`` beside
    ``25/01/2020``), are flagged. When two formats read exactly the same rows
    with different dates (every day <= 12) the column is ambiguous and an
    :class:`~riskgrid.EventDataError` asks for ``time_format``.
``mixed_timezones``
    Time-zone-aware and naive values mixed in one column: the minority kind.
``time_out_of_range``
    A year outside ``year_range`` (default 1970 .. next calendar year),
    including values pandas cannot represent (a ``datetime`` of year 300000).
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import EventDataError

__all__ = ["parse_date", "parse_times", "year_window", "ISO8601", "DEFAULT_FIRST_YEAR", "ParsedTimes"]

#: The ``time_format`` of pandas' ISO 8601 reader (date, optional time, optional offset).
ISO8601 = "ISO8601"
#: First year accepted by default (police records before the Unix epoch are typos or placeholders).
DEFAULT_FIRST_YEAR = 1970
#: Distinct unreadable values sampled per round when looking for the formats of a column.
_SAMPLE = 200
#: At most this many distinct values are given to the format guesser in all.
_MAX_GUESSES = 2000

_AWARE_ISO = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|UTC|[+-]\d{2}(?::?\d{2})?)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text) -> pd.Timestamp:
    """A calendar date written ``YYYY-MM-DD`` (e.g. the CLI's ``--date``) as a naive midnight Timestamp.

    A :class:`datetime.date` (not a datetime), as TOML gives, is accepted too.
    Anything else (``01/10/2019``, ``2019-1-10``, ``2019-01-10 12:00``) raises
    ``ValueError`` saying the expected form: no day/month guess is made.
    """
    if isinstance(text, _dt.date) and not isinstance(text, _dt.datetime):
        return pd.Timestamp(text)
    if not isinstance(text, str) or not _DATE_ONLY.match(text.strip()):
        raise ValueError(f"date must be written YYYY-MM-DD (e.g. 2019-10-01), got {text!r}")
    try:
        return pd.Timestamp(_dt.date.fromisoformat(text.strip()))
    except ValueError as exc:
        raise ValueError(f"date {text!r} is not a calendar date ({exc})") from None


def year_window(year_range=None) -> tuple[int, int]:
    """``year_range`` checked: ``None`` → (1970, next calendar year); else two integer years, first <= last."""
    if year_range is None:
        return DEFAULT_FIRST_YEAR, _dt.date.today().year + 1
    try:
        first, last = year_range
    except (TypeError, ValueError):
        raise ValueError(f"year_range must be (first_year, last_year), got {year_range!r}") from None
    for v in (first, last):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= int(v) <= 9999:
            raise ValueError(f"year_range must hold two integer years in 1..9999, got {year_range!r}")
    if first > last:
        raise ValueError(f"year_range first year {first} is after last year {last}")
    return int(first), int(last)


@dataclass
class ParsedTimes:
    """Result of :func:`parse_times`.

    ``parsed``: datetime64 Series (naive, or UTC-aware), NaT where a row is
    not usable; ``masks``: reason code → boolean row mask; ``details``: reason
    code → sentence for the error report; ``time_format``: the format used for
    strings (``None`` for datetime columns).
    """

    parsed: pd.Series
    masks: dict
    details: dict = field(default_factory=dict)
    time_format: str | None = None


@dataclass
class _Read:
    ok: np.ndarray  # bool per string row
    us: np.ndarray  # int64 microseconds (UTC instant when aware, wall clock when naive)
    aware: np.ndarray  # bool per string row


def _read(strings: pd.Series, fmt: str) -> _Read:
    """Read every string with one format (vectorised, strict)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # one time-zone kind and offset (the usual case): awareness is the result's
            res = pd.to_datetime(strings, format=fmt, errors="coerce")
            aware = np.full(len(strings), isinstance(res.dtype, pd.DatetimeTZDtype))
            if aware.any():
                res = res.dt.tz_convert("UTC")
        except ValueError as exc:
            if "Mixed timezones" not in str(exc) and "mixed time" not in str(exc).lower():
                raise ValueError(f"time_format {fmt!r} is not a usable format: {exc}") from None
            res = pd.to_datetime(strings, format=fmt, errors="coerce", utc=True)
            if fmt == ISO8601:
                aware = strings.str.contains(_AWARE_ISO, regex=True).to_numpy(dtype=bool, na_value=False)
            else:
                aware = np.full(len(strings), "%z" in fmt or "%Z" in fmt)
        except TypeError as exc:
            raise ValueError(f"time_format {fmt!r} is not a usable format: {exc}") from None
    ok = res.notna().to_numpy()
    us = np.zeros(len(strings), dtype=np.int64)
    if ok.any():
        idx = pd.DatetimeIndex(res[ok]).as_unit("us")
        us[ok] = (idx.tz_localize(None) if idx.tz is not None else idx).asi8
    return _Read(ok, us, aware & ok)


def _guess(values, tried: set) -> list[str]:
    from pandas.tseries.api import guess_datetime_format

    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in values:
            tried.add(v)
            for dayfirst in (False, True):
                f = guess_datetime_format(v, dayfirst=dayfirst)
                if f and f not in found:
                    found.append(f)
    return found


def _examples(labels, strings: np.ndarray, mask: np.ndarray, k: int = 3) -> str:
    idx = np.flatnonzero(mask)[:k]
    return ", ".join(f"row {_plain(labels[i])!r} {strings[i]!r}" for i in idx)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _read_strings(strings: pd.Series, labels, column: str, time_format: str | None, counts=None):
    """Read distinct strings. Returns ``(us, ok, aware, masks, details, format)`` over them.

    ``counts``: rows holding each string (for the row counts of the choice and
    the messages); ``labels``: the label of a row holding it.
    """
    n = len(strings)
    counts = np.ones(n, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)

    def rows(mask) -> int:
        return int(counts[mask].sum())

    details: dict[str, str] = {}
    none = np.zeros(n, dtype=bool)
    if time_format is not None:
        if not isinstance(time_format, str) or not time_format:
            raise ValueError(f"time_format must be a strftime pattern or 'ISO8601', got {time_format!r}")
        r = _read(strings, time_format)
        if not r.ok.all():
            details["bad_timestamp"] = f"values of column {column!r} not written as time_format={time_format!r}"
        return r.us, r.ok, r.aware, {"bad_timestamp": ~r.ok, "mixed_formats": none}, details, time_format
    reads: dict[str, _Read] = {}
    iso = _read(strings, ISO8601)
    if iso.ok.all():
        return iso.us, iso.ok, iso.aware, {"bad_timestamp": none, "mixed_formats": none}, details, ISO8601
    if iso.ok.any():
        reads[ISO8601] = iso
    covered = iso.ok.copy()
    tried: set = set()
    arr = strings.to_numpy(dtype=object)
    while not covered.all() and len(tried) < _MAX_GUESSES:
        sample = []
        for v in pd.unique(arr[~covered]):
            if v not in tried:
                sample.append(v)
                if len(sample) >= _SAMPLE:
                    break
        if not sample:
            break
        for f in _guess(sample, tried):
            if f not in reads:
                r = _read(strings, f)
                if r.ok.any():
                    reads[f] = r
                    covered |= r.ok
    if not reads:
        return np.zeros(n, np.int64), none, none, {"bad_timestamp": np.ones(n, bool), "mixed_formats": none}, details, None
    order = sorted(reads, key=lambda f: -rows(reads[f].ok))  # stable: ISO first on ties
    best = reads[order[0]]
    for f in order[1:]:
        r = reads[f]
        if rows(r.ok) < rows(best.ok):
            break
        both = best.ok & r.ok
        if np.array_equal(r.ok, best.ok) and (r.us[both] != best.us[both]).any():
            i = int(np.flatnonzero(both & (r.us != best.us))[0])
            raise EventDataError(
                f"timestamps in column {column!r} are ambiguous: formats {order[0]!r} and {f!r} read the same "
                f"{rows(best.ok)} rows as different dates (row {_plain(labels[i])!r} {arr[i]!r} is "
                f"{pd.Timestamp(best.us[i], unit='us')} or {pd.Timestamp(r.us[i], unit='us')}); "
                f"pass time_format= (e.g. time_format={order[0]!r})"
            )
    # formats present: each reads rows that the ones before it do not
    present, seen = [order[0]], best.ok.copy()
    for f in order[1:]:
        if (reads[f].ok & ~seen).any():
            present.append(f)
            seen |= reads[f].ok
    mixed = seen & ~best.ok
    for f in present[1:]:
        r = reads[f]
        mixed |= best.ok & r.ok & (r.us != best.us)  # read differently by two formats present
    bad = ~seen
    if len(present) > 1:
        parts = []
        for f in present:
            only = reads[f].ok & ~np.logical_or.reduce([reads[g].ok for g in present if g != f])
            alt = [g for g in reads if g not in present and (reads[g].ok & reads[f].ok & ~best.ok).any()] if f != order[0] else []
            also = f" (or {', '.join(map(repr, alt))})" if alt else ""
            parts.append(
                f"{rows(reads[f].ok)} rows read as {f!r}{also} (e.g. {_examples(labels, arr, only if only.any() else reads[f].ok)})"
            )
        details["mixed_formats"] = (
            f"column {column!r} mixes formats: " + "; ".join(parts)
            + f"; the majority format {order[0]!r} is used and no row is guessed: pass time_format= to choose"
        )
    return best.us, best.ok & ~mixed, best.aware & ~mixed, {"bad_timestamp": bad, "mixed_formats": mixed}, details, order[0]


def parse_times(col: pd.Series, time_format: str | None = None, year_range=None) -> ParsedTimes:
    """Read a timestamp column by the rules of the module docstring.

    Parameters
    ----------
    col : pandas.Series
        datetime64 (naive or aware), or strings / datetime objects (object or
        string dtype). Numbers and bools are never read as times.
    time_format : str, optional
        strftime pattern (e.g. ``"%d/%m/%Y %H:%M"``) or ``"ISO8601"`` for the
        string values; ``None`` finds the format (see the module docstring).
    year_range : (int, int), optional
        First and last accepted year, inclusive; default (1970, next year).

    Returns
    -------
    ParsedTimes
        With masks ``bad_timestamp``, ``mixed_formats``, ``mixed_timezones``
        and ``time_out_of_range``.
    """
    first, last = year_window(year_range)
    n = len(col)
    no = np.zeros(n, dtype=bool)
    masks = {"bad_timestamp": no, "mixed_formats": no, "mixed_timezones": no, "time_out_of_range": no}
    dtype = col.dtype
    details: dict[str, str] = {}
    used_format = None
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC")
        masks["bad_timestamp"] = parsed.isna().to_numpy()
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = col
        masks["bad_timestamp"] = col.isna().to_numpy()
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        # numbers are not timestamps: every row is flagged, nothing is guessed
        parsed = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us]")
        masks["bad_timestamp"] = np.ones(n, dtype=bool)
        details["bad_timestamp"] = f"column {col.name!r} holds numbers ({dtype}), not timestamps"
    else:
        parsed, masks, details, used_format = _parse_objects(col, time_format, masks, details)
    # year window (and values pandas cannot represent, flagged in _parse_objects)
    usable = parsed.notna().to_numpy()
    if usable.any():
        years = np.full(n, first, dtype=np.int64)
        years[usable] = pd.DatetimeIndex(parsed[usable]).year.to_numpy()
        out = usable & ((years < first) | (years > last))
        if out.any():
            masks["time_out_of_range"] = masks["time_out_of_range"] | out
            parsed = parsed.where(~out)
    if masks["time_out_of_range"].any():
        details["time_out_of_range"] = f"accepted years {first}..{last}"
    return ParsedTimes(parsed=parsed, masks=masks, details=details, time_format=used_format)


def _parse_objects(col: pd.Series, time_format, masks, details):
    n = len(col)
    values = col.to_numpy(dtype=object)
    labels = col.index
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:  # pandas' str dtype: strings or missing
        is_str = col.notna().to_numpy()
        is_dt = np.zeros(n, dtype=bool)
    else:
        is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=n)
        is_dt = np.fromiter((isinstance(v, (_dt.datetime, _dt.date, np.datetime64)) for v in values), dtype=bool, count=n)
    us = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    aware = np.zeros(n, dtype=bool)
    bad = ~(is_str | is_dt)  # missing, numbers, bools, anything else
    out_of_range = np.zeros(n, dtype=bool)
    mixed_formats = np.zeros(n, dtype=bool)
    used_format = None
    if is_str.any():
        pos = np.flatnonzero(is_str)
        strings = pd.Series(values[pos], dtype=object).str.strip()
        # each distinct string is read once (police data repeat timestamps a lot)
        codes, uniq = pd.factorize(strings)
        counts = np.bincount(codes, minlength=len(uniq))
        first = np.unique(codes, return_index=True)[1]  # first row of each distinct string (codes 0..k-1)
        u = pd.Series(np.asarray(uniq, dtype=object), dtype=object)
        u_us, u_ok, u_aware, u_masks, s_details, used_format = _read_strings(
            u, labels[pos][first], str(col.name), time_format, counts
        )
        details.update(s_details)
        empty = (strings == "").to_numpy()
        us[pos], ok[pos], aware[pos] = u_us[codes], u_ok[codes], u_aware[codes]
        bad[pos] = u_masks["bad_timestamp"][codes] | empty
        mixed_formats[pos] = u_masks["mixed_formats"][codes] & ~empty
    for i in np.flatnonzero(is_dt):
        v = values[i]
        try:
            ts = pd.Timestamp(v)
            if ts is pd.NaT:
                bad[i] = True
                continue
            aware[i] = ts.tzinfo is not None
            if aware[i]:
                ts = ts.tz_convert("UTC").tz_localize(None)
            us[i] = np.datetime64(ts.to_datetime64(), "us").astype(np.int64)
            ok[i] = True
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            out_of_range[i] = True
        except (ValueError, TypeError):
            bad[i] = True
    good = ok & ~bad
    n_aware = int((aware & good).sum())
    n_naive = int((~aware & good).sum())
    use_aware = n_aware > n_naive
    mixed_tz = good & (aware != use_aware) if (n_aware and n_naive) else np.zeros(n, dtype=bool)
    keep = good & ~mixed_tz
    arr = np.full(n, np.datetime64("NaT", "us"), dtype="datetime64[us]")
    arr[keep] = us[keep].view("datetime64[us]")
    parsed = pd.Series(arr, index=col.index)
    if use_aware:
        parsed = parsed.dt.tz_localize("UTC")
    masks = dict(masks)
    masks["bad_timestamp"] = bad
    masks["mixed_formats"] = mixed_formats
    masks["mixed_timezones"] = mixed_tz
    masks["time_out_of_range"] = out_of_range
    return parsed, masks, details, used_format
