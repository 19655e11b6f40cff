"""Row checks of an event table: every rule of :data:`REASONS`, one mask per rule, and the report.

:func:`check_rows` is the validation half of :meth:`riskgrid.EventSet.from_frame`
(which documents the parameters); the time rules are in
:mod:`riskgrid.timeparse`, the study-area rules in :mod:`riskgrid.studyarea`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import EventDataError
from .geo import haversine_m
from .studyarea import FAR_FLOOR_KM, FAR_MAD_K, StudyArea, far_from_bulk, swap_diagnosis
from .timeparse import parse_times, year_window

__all__ = ["REASONS", "check_rows", "CheckedRows"]

#: Validation rules: reason code → human description.
REASONS = {
    "missing_coordinate": "latitude or longitude missing, NaN or not a number",
    "lat_out_of_range": "latitude outside [-90, 90]",
    "lon_out_of_range": "longitude outside [-180, 180]",
    "null_island": "placeholder point (0, 0)",
    "outside_study_area": "point outside the declared study area (bbox= / within=)",
    "far_from_study_area": "point far from the bulk of the events (robust distance from the median location)",
    "bad_timestamp": "timestamp missing or unparseable",
    "mixed_formats": "timestamp written in another format than the column's (no per-row guess)",
    "mixed_timezones": "time-zone-aware and naive timestamps mixed in one column (minority kind flagged)",
    "time_out_of_range": "timestamp year outside the accepted window (year_range=)",
    "bad_weight": "weight negative, NaN or infinite",
    "missing_category": "category missing",
    "duplicate": "exact duplicate of an earlier row (the first one is kept; keep_duplicates=True keeps all)",
}


# --------------------------------------------------------------------------- #
# parsing helpers
# --------------------------------------------------------------------------- #
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


def _coordinates(col: pd.Series, role: str, name: str) -> np.ndarray:
    """A coordinate column as float64 degrees (NaN where a value is not a number).

    Whole columns of the wrong kind are an error (bools would be 0/1 degrees);
    single non-numbers (including bools in a text column) become NaN and are
    reported row by row as ``missing_coordinate``.
    """
    dtype = col.dtype
    if (
        pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    ):
        raise EventDataError(
            f"column {name!r} ({role}) has dtype {dtype}; expected numbers (decimal degrees, float), "
            "not booleans, times or complex numbers"
        )
    if dtype == object:
        values = col.to_numpy(dtype=object)
        flags = np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), dtype=bool, count=len(values))
        if flags.any():
            col = col.mask(flags)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _duplicates(df, valid, parsed, la, lo, time, lat, lon, id_col) -> tuple[np.ndarray, np.ndarray]:
    """Rows (among ``valid``) equal to an earlier valid row, and the position of that first row.

    With ``id_col``: equal id (missing ids never match). Without: equal in every
    column, the time as parsed instants and the coordinates as numbers.
    """
    n = len(df)
    dup = np.zeros(n, dtype=bool)
    first_of = np.arange(n)
    pos = np.flatnonzero(valid)
    if pos.size < 2:
        return dup, first_of
    if id_col is not None:
        ids = df[id_col].iloc[pos].reset_index(drop=True)
        usable = ids.notna().to_numpy()
        ids, pos = ids[usable].reset_index(drop=True), pos[usable]
        is_dup = ids.duplicated(keep="first").to_numpy()
        if is_dup.any():
            first_pos = pd.Series(pos[~is_dup], index=ids[~is_dup].to_numpy())
            dup[pos[is_dup]] = True
            first_of[pos[is_dup]] = first_pos.loc[ids[is_dup].to_numpy()].to_numpy()
        return dup, first_of
    else:
        key = df.iloc[pos].drop(columns=[time, lat, lon]).reset_index(drop=True)
        key["__time"] = pd.DatetimeIndex(parsed.iloc[pos]).asi8
        key["__lat"], key["__lon"] = la[pos], lo[pos]
    # rows with a unique hash cannot repeat another row: compare only the others exactly
    try:
        hashed = pd.util.hash_pandas_object(key, index=False)
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        key = key.map(repr)
        hashed = pd.util.hash_pandas_object(key, index=False)
    maybe = hashed.duplicated(keep=False).to_numpy()
    if not maybe.any():
        return dup, first_of
    key, pos = key.loc[maybe].reset_index(drop=True), pos[maybe]
    try:
        codes = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        key = key.map(repr)
        codes = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    if len(codes) == 0:
        return dup, first_of
    first = np.full(codes.max() + 1, -1, dtype=np.int64)
    # first occurrence of every group, in row order
    uniq, idx = np.unique(codes, return_index=True)
    first[uniq] = idx
    is_dup = first[codes] != np.arange(len(codes))
    dup[pos[is_dup]] = True
    first_of[pos[is_dup]] = pos[first[codes[is_dup]]]
    return dup, first_of


@dataclass
class CheckedRows:
    """Result of :func:`check_rows`: which rows to keep, their parsed values, the rejected rows and the settings used."""

    keep: np.ndarray
    parsed: pd.Series
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray
    rejected: pd.DataFrame
    settings: dict


def check_rows(
    df: pd.DataFrame,
    *,
    time: str,
    lat: str,
    lon: str,
    category: str | None,
    weight: str | None,
    id: str | None,
    on_invalid: str,
    time_format: str | None,
    year_range,
    area: StudyArea | None,
    far_km,
    keep_duplicates: bool,
) -> CheckedRows:
    """Check every row of ``df`` (unique index, at least one row, columns present).

    Raises :class:`~riskgrid.EventDataError` for table-level problems, for
    invalid rows with ``on_invalid="raise"`` (per rule: the count and the first
    five rows with their values) and when no row is left.
    """
    n = len(df)
    la = _coordinates(df[lat], "lat", lat)
    lo = _coordinates(df[lon], "lon", lon)
    masks: dict[str, np.ndarray] = {}
    details: dict[str, str] = {}
    masks["missing_coordinate"] = np.isnan(la) | np.isnan(lo)
    with np.errstate(invalid="ignore"):
        masks["lat_out_of_range"] = ~np.isnan(la) & ~((la >= -90) & (la <= 90))
        masks["lon_out_of_range"] = ~np.isnan(lo) & ~((lo >= -180) & (lo <= 180))
    masks["null_island"] = (la == 0) & (lo == 0)
    finite = np.isfinite(la) & np.isfinite(lo) & ~masks["null_island"]
    why = swap_diagnosis(la[finite], lo[finite], area)
    if why is not None:
        raise EventDataError(
            f"columns lat={lat!r} and lon={lon!r} look swapped: {why}; "
            f"pass lat={lon!r}, lon={lat!r} if the columns are exchanged",
            {},
        )
    placed = finite & ~masks["lat_out_of_range"] & ~masks["lon_out_of_range"]
    validation: dict = {}
    if area is not None:
        masks["outside_study_area"] = placed & ~area.contains(la, lo)
        details["outside_study_area"] = f"study area {area}"
        validation["study_area"] = str(area)
    else:
        far = np.zeros(n, dtype=bool)
        flagged, info = far_from_bulk(la[placed], lo[placed], far_km)
        far[placed] = flagged
        masks["far_from_study_area"] = far
        if info:
            validation["far_from_study_area"] = info
            c_lat, c_lon = info["centre"]
            rule = (
                f"max({FAR_FLOOR_KM:g} km, median {info['median_km']:.1f} km + {FAR_MAD_K:g} x scaled MAD "
                f"{info['mad_km']:.1f} km)" if info["rule"] == "auto" else "far_km"
            )
            text = (
                f"more than {info['threshold_km']:.1f} km (= {rule}) from the median location "
                f"({c_lat:.5f}, {c_lon:.5f}); declare the area with bbox=/within= or set far_km="
            )
            if far.any():
                swappable = np.abs(lo[far]) <= 90
                back = swappable & (haversine_m(c_lat, c_lon, np.where(swappable, lo[far], 0.0), la[far]) / 1000.0 <= info["threshold_km"])
                if back.any():
                    text += f"; {int(back.sum())} of them lie near the bulk with lat and lon exchanged (swapped in the source?)"
            details["far_from_study_area"] = text

    times = parse_times(df[time], time_format=time_format, year_range=year_range)
    parsed = times.parsed
    for code in ("bad_timestamp", "mixed_formats", "mixed_timezones", "time_out_of_range"):
        masks[code] = times.masks[code]
    details.update(times.details)
    validation["time_format"] = times.time_format
    validation["year_range"] = year_window(year_range)
    if weight is not None:
        w = pd.to_numeric(df[weight], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            masks["bad_weight"] = ~np.isfinite(w) | (w < 0)
    else:
        w = np.ones(n)
    if category is not None:
        masks["missing_category"] = df[category].isna().to_numpy()

    any_bad = np.zeros(n, dtype=bool)
    for m in masks.values():
        any_bad |= m
    if keep_duplicates:
        masks["duplicate"] = np.zeros(n, dtype=bool)
    else:
        masks["duplicate"], first_of = _duplicates(df, ~any_bad, parsed, la, lo, time, lat, lon, id)
    validation["duplicates"] = "kept" if keep_duplicates else (f"same {id!r}" if id else "equal in every column")
    if masks["duplicate"].any():
        pairs = ", ".join(
            f"row {_plain(df.index[i])!r} repeats row {_plain(df.index[first_of[i]])!r}"
            for i in np.flatnonzero(masks["duplicate"])[:3]
        )
        details["duplicate"] = (f"same {id}" if id else "equal in every column") + f": {pairs}"
        any_bad |= masks["duplicate"]

    cols_for = {
        "missing_coordinate": [lat, lon],
        "lat_out_of_range": [lat],
        "lon_out_of_range": [lon],
        "null_island": [lat, lon],
        "outside_study_area": [lat, lon],
        "far_from_study_area": [lat, lon],
        "bad_timestamp": [time],
        "mixed_formats": [time],
        "mixed_timezones": [time],
        "time_out_of_range": [time],
        "bad_weight": [weight] if weight else [],
        "missing_category": [category] if category else [],
        "duplicate": [id] if id else [time, lat, lon] + ([category] if category else []),
    }
    rejected = df.iloc[0:0].copy()
    rejected["reason"] = pd.Series(dtype=object)
    if any_bad.any():
        if on_invalid == "raise":
            lines = [f"{int(any_bad.sum())} of {n} event rows are invalid:"]
            report = {}
            for code, m in masks.items():
                if m.any():
                    report[code] = df.loc[m]
                    extra = f"; {details[code]}" if code in details else ""
                    lines.append(
                        f"  [{code}] {REASONS[code]}{extra}: {int(m.sum())} rows, e.g. "
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

    return CheckedRows(keep=keep, parsed=parsed, lat=la, lon=lo, weight=w, rejected=rejected, settings=validation)
