"""Exposure log: which cells every nightly run flagged, kept as an append-only Parquet dataset.

Layout under an output root::

    OUT_ROOT/exposure/
        part-2017-06-01--kdehotspot.parquet     one file per (run date, run name)
        part-2017-06-02--kdehotspot.parquet
        ...

Each part holds one row per flagged cell of one run (see
:data:`EXPOSURE_COLUMNS`): ``run_date``, ``name``, ``horizon_days``,
``model``, ``h3``, ``risk``, ``rank``, ``zone`` and, when the run knew its
training records' provenance, ``n_train`` and ``n_train_discovered``.

**Atomic**: :func:`append_exposure` writes the part to a hidden temporary file
in the same folder (``.tmp-...``), flushes and ``fsync``\\ s it, renames it
over the final name (``os.replace``, atomic on POSIX within one file system)
and ``fsync``\\ s the folder. A crash or SIGKILL at any point leaves either
the old part or the new one, never a torn file; the hidden temporary file it
may leave is ignored by :func:`read_exposure` (and by pyarrow / pandas, which
skip names starting with ``.``) and removed by the next append of the same
run.

**Idempotent**: the part name is derived from the run date and name, so a
rerun of the same date replaces that date's rows instead of adding more.

One writer per log at a time (the nightly job); readers may run at any time.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EXPOSURE_COLUMNS", "EXPOSURE_DIR", "exposure_table", "append_exposure", "read_exposure", "exposure_dir",
           "source_counts"]

#: folder of the log under the output root
EXPOSURE_DIR = "exposure"

#: columns of every part, with their Arrow types (``n_train*`` may be null)
EXPOSURE_COLUMNS = {
    "run_date": pa.string(),  # YYYY-MM-DD, the forecast date of the run
    "name": pa.string(),  # run / job name (a log may hold several jobs)
    "horizon_days": pa.float64(),
    "model": pa.string(),
    "h3": pa.string(),
    "risk": pa.float64(),  # expected events in the forecast window
    "rank": pa.int64(),  # 1 = highest risk of the grid
    "zone": pa.int64(),  # patrol zone 1..n, 0 = flagged by rank only
    "n_train": pa.int64(),  # training records in the cell (null when unknown)
    "n_train_discovered": pa.int64(),  # of which police-discovered (null when unknown)
}
_SCHEMA = pa.schema([pa.field(k, v, nullable=True) for k, v in EXPOSURE_COLUMNS.items()])
_PART = re.compile(r"^part-(\d{4}-\d{2}-\d{2})--([a-z0-9_.-]+)\.parquet$")


def exposure_dir(out_root) -> Path:
    """The log folder ``OUT_ROOT/exposure``."""
    return Path(os.fspath(out_root)) / EXPOSURE_DIR


def _run_date(run_date) -> str:
    try:
        ts = pd.Timestamp(run_date)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"run_date must be a date (e.g. '2017-06-01'), got {run_date!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"run_date must be a date, got {run_date!r}")
    return ts.strftime("%Y-%m-%d")


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9_.-]+", "-", str(name).strip().lower()).strip("-.")
    if not s:
        raise ValueError(f"name must contain a letter or digit, got {name!r}")
    return s


def source_counts(cell, source, n_cells: int, discovered=("discovered",)) -> tuple[np.ndarray, np.ndarray]:
    """Training records per cell and how many of them police discovered themselves.

    Parameters
    ----------
    cell : array of int
        Grid cell of every training record (-1 outside the grid: ignored).
    source : array of str
        Provenance label of every record (e.g. ``"reported"``, ``"discovered"``).
    n_cells : int
        Number of grid cells.
    discovered : sequence of str
        Labels that count as discovered (stops, narcotics arrests...).

    Returns
    -------
    n_train, n_train_discovered : int64 arrays (n_cells,)
    """
    cell = np.asarray(cell, dtype=np.int64)
    source = np.asarray(source, dtype=object)
    if cell.shape != source.shape:
        raise ValueError(f"cell and source must have the same length, got {cell.shape} and {source.shape}")
    inside = cell >= 0
    disc = np.isin(source, list(discovered)) & inside
    n = np.bincount(cell[inside], minlength=n_cells).astype(np.int64)
    d = np.bincount(cell[disc], minlength=n_cells).astype(np.int64)
    return n, d


def exposure_table(risk, h3_ids, zone=None, top_n: int = 0, n_train=None, n_train_discovered=None) -> pd.DataFrame:
    """The flagged cells of one run: every zone cell and the ``top_n`` highest-risk cells.

    Parameters
    ----------
    risk : array of float (n_cells,)
        Forecast per cell (expected events in the window).
    h3_ids : array of str (n_cells,)
        H3 id of every cell (``grid.cell_ids``).
    zone : array of int (n_cells,), optional
        Zone number per cell, 1-based, 0 outside (``ZoneSet.cell_zone``).
    top_n : int
        Also flag the ``top_n`` highest-risk cells (zone 0 unless in a zone).
    n_train, n_train_discovered : array of int (n_cells,), optional
        Training records per cell and how many were discovered
        (:func:`source_counts`); stored for the audit.

    Returns
    -------
    DataFrame
        ``h3``, ``risk``, ``rank`` (1 = highest, ties by cell order),
        ``zone``, ``n_train``, ``n_train_discovered`` (nullable Int64), one
        row per flagged cell, by rank.
    """
    r = np.asarray(risk, dtype=np.float64)
    ids = np.asarray(h3_ids).astype(str)
    if r.ndim != 1 or ids.shape != r.shape:
        raise ValueError(f"risk and h3_ids must be 1-D of the same length, got {r.shape} and {ids.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("risk holds non-finite values")
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 0:
        raise ValueError(f"top_n must be an integer >= 0, got {top_n!r}")
    z = np.zeros(r.size, dtype=np.int64) if zone is None else np.asarray(zone, dtype=np.int64)
    if z.shape != r.shape or (z < 0).any():
        raise ValueError(f"zone must hold one number >= 0 per cell ({r.size}), got shape {z.shape}")
    order = np.lexsort((np.arange(r.size), -r))
    rank = np.empty(r.size, dtype=np.int64)
    rank[order] = np.arange(1, r.size + 1)
    flagged = z > 0
    flagged[order[: min(int(top_n), r.size)]] = True
    idx = np.flatnonzero(flagged)
    idx = idx[np.argsort(rank[idx])]
    out = pd.DataFrame({"h3": ids[idx], "risk": r[idx], "rank": rank[idx], "zone": z[idx]})
    for col, v in (("n_train", n_train), ("n_train_discovered", n_train_discovered)):
        if v is None:
            out[col] = pd.array([pd.NA] * idx.size, dtype="Int64")
        else:
            v = np.asarray(v, dtype=np.int64)
            if v.shape != r.shape:
                raise ValueError(f"{col} must hold one count per cell ({r.size}), got shape {v.shape}")
            out[col] = pd.array(v[idx], dtype="Int64")
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_exposure(out_root, run_date, flagged: pd.DataFrame, *, model: str, horizon_days: float,
                    name: str | None = None) -> Path:
    """Add one run's flagged cells to the log, atomically; a rerun of the same date and name replaces its rows.

    Parameters
    ----------
    out_root : path
        Output root; the log is ``out_root/exposure/``.
    run_date : str or Timestamp
        Forecast date of the run (the day is kept).
    flagged : DataFrame
        ``h3``, ``risk``, ``rank``, ``zone`` and optionally ``n_train``,
        ``n_train_discovered`` (:func:`exposure_table`).
    model : str
        Model name.
    horizon_days : float
        Forecast horizon, days.
    name : str, optional
        Run / job name (default: the model name); parts are keyed by
        ``(run_date, name)``.

    Returns
    -------
    Path
        The part file written.
    """
    day = _run_date(run_date)
    key = _slug(model if name is None else name)
    missing = [c for c in ("h3", "risk", "rank", "zone") if c not in flagged.columns]
    if missing:
        raise ValueError(f"flagged is missing the column(s) {missing}; expected h3, risk, rank, zone")
    h = float(horizon_days)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"horizon_days must be a positive number of days, got {horizon_days!r}")
    n = len(flagged)
    cols = {
        "run_date": pa.array([day] * n, pa.string()),
        "name": pa.array([key] * n, pa.string()),
        "horizon_days": pa.array(np.full(n, h), pa.float64()),
        "model": pa.array([str(model)] * n, pa.string()),
        "h3": pa.array(flagged["h3"].astype(str).tolist(), pa.string()),
        "risk": pa.array(flagged["risk"].to_numpy(dtype=np.float64), pa.float64()),
        "rank": pa.array(flagged["rank"].to_numpy(dtype=np.int64), pa.int64()),
        "zone": pa.array(flagged["zone"].to_numpy(dtype=np.int64), pa.int64()),
    }
    for c in ("n_train", "n_train_discovered"):
        if c in flagged.columns:
            cols[c] = pa.array(pd.array(flagged[c], dtype="Int64"), pa.int64(), from_pandas=True)
        else:
            cols[c] = pa.nulls(n, pa.int64())
    table = pa.table(cols, schema=_SCHEMA)

    folder = exposure_dir(out_root)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"part-{day}--{key}.parquet"
    for stale in folder.glob(f".tmp-part-{day}--{key}.*"):  # left by a killed earlier attempt of this run
        stale.unlink(missing_ok=True)
    tmp = folder / f".tmp-part-{day}--{key}.{uuid.uuid4().hex}.parquet"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return final


def read_exposure(out_root, start=None, end=None, name: str | None = None) -> pd.DataFrame:
    """The log as one DataFrame (rows of complete parts only), sorted by run date, name and rank.

    Parameters
    ----------
    out_root : path
        Output root (the folder holding ``exposure/``).
    start, end : date-like, optional
        Keep runs with ``start <= run_date <= end``.
    name : str, optional
        Keep one run name.

    Returns
    -------
    DataFrame
        :data:`EXPOSURE_COLUMNS`; empty (with those columns) when there is no log.
    """
    folder = exposure_dir(out_root)
    lo = _run_date(start) if start is not None else None
    hi = _run_date(end) if end is not None else None
    key = _slug(name) if name is not None else None
    parts = []
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = _PART.match(p.name)
            if not m:
                continue
            day, k = m.groups()
            if (lo and day < lo) or (hi and day > hi) or (key and k != key):
                continue
            parts.append(pq.read_table(p, schema=_SCHEMA))
    table = pa.concat_tables(parts) if parts else _SCHEMA.empty_table()
    df = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    for c in ("rank", "zone"):
        df[c] = df[c].astype(np.int64)
    return df.sort_values(["run_date", "name", "rank"], kind="stable").reset_index(drop=True)
