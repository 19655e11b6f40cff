"""Publishing a job's products: atomic output folders, the manifest, SHA-256 hashes.

Atomicity: the target folder only ever appears complete (a directory rename
on one filesystem is atomic). Products are written into a temporary folder
beside the target (:func:`temporary_folder`), then ``manifest.json`` (last),
then :func:`publish` renames the folder to ``OUT/<city>/<D>/``. When a
previous output exists it is first renamed aside (``.old-<D>-<pid>``), the
new one renamed into place, and the old one deleted; a kill between the two
renames leaves no target and the previous output aside, which the next run
restores (:func:`recover`) before anything else. Leftover temporary folders
of dead processes are removed on the next run.

Idempotency: the data files depend only on the configuration, the input and
riskgrid's version (no time stamps inside); only ``manifest.json`` holds wall
times. :func:`atomic_file` gives single files (batch products) the same
guarantee: a failed write leaves no partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid

import numpy as np

from ..errors import ConfigError

__all__ = [
    "temporary_folder",
    "MANIFEST",
    "sha256_file",
    "config_sha256",
    "input_hashes",
    "tree_files",
    "jsonable",
    "fit_summary",
    "parse_date",
    "output_folder",
    "recover",
    "manifest_ok",
    "fsync_tree",
    "publish",
    "atomic_file",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


# --------------------------------------------------------------------------- #
# hashing helpers
# --------------------------------------------------------------------------- #
def sha256_file(path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _public_config(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)


def config_sha256(cfg: dict) -> str:
    """SHA-256 of the canonical JSON of a validated configuration (``_``-keys left out)."""
    return hashlib.sha256(_canonical(_public_config(cfg)).encode()).hexdigest()


def input_hashes(cfg: dict) -> dict:
    ev = cfg["events"]
    out = {}
    if ev.get("path"):
        p = ev["path"]
        if os.path.isdir(p):
            for root, _, files in sorted(os.walk(p)):
                for f in sorted(files):
                    fp = os.path.join(root, f)
                    out[fp] = sha256_file(fp)
        elif os.path.exists(p):
            out[p] = sha256_file(p)
    if ev.get("simulate") is not None:
        out["simulate"] = hashlib.sha256(_canonical(ev["simulate"]).encode()).hexdigest()
    if cfg["grid"].get("geojson") and os.path.exists(cfg["grid"]["geojson"]):
        out[cfg["grid"]["geojson"]] = sha256_file(cfg["grid"]["geojson"])
    return out


def tree_files(folder: str) -> list[str]:
    """Relative paths of every file under ``folder``, sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/"))
    return sorted(out)


def jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        f = float(v)
        return f if np.isfinite(f) else str(f)
    if isinstance(v, float):
        return v if np.isfinite(v) else str(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (int, str)) or v is None:
        return v
    if isinstance(v, np.ndarray):
        if v.size <= 32:
            return [jsonable(x) for x in v.ravel().tolist()]
        return {"shape": list(v.shape), "mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v][:64]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return str(v)


def fit_summary(model) -> dict:
    """Parameters, learned scalars/small arrays and diagnostics of a fitted model."""
    learned = {}
    for name, value in sorted(vars(model).items()):
        if not name.endswith("_") or name.startswith("_") or name in ("grid_",):
            continue
        if isinstance(value, (int, float, str, bool, np.integer, np.floating, np.bool_, dict, list, tuple)) or (
            isinstance(value, np.ndarray)
        ):
            learned[name] = jsonable(value)
    return {"model": type(model).__name__, "params": jsonable(model.get_params()), "learned": learned}


# --------------------------------------------------------------------------- #
# folders
# --------------------------------------------------------------------------- #
def parse_date(date):
    """A forecast date (``YYYY-MM-DD``, midnight) as a naive ``pandas.Timestamp``; ConfigError otherwise.

    A string must be written ``YYYY-MM-DD`` (:func:`riskgrid.events.parse_date`: ``01/10/2019`` is refused, never
    read month- or day-first); a date / Timestamp at midnight is accepted as it is.
    """
    import pandas as pd

    if isinstance(date, str):
        from ..timeparse import parse_date as _iso_date

        try:
            return _iso_date(date)
        except ValueError as exc:
            raise ConfigError(f"--date: {exc}") from None
    try:
        ts = pd.Timestamp(date)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--date must be a date YYYY-MM-DD, got {date!r}") from exc
    if ts is pd.NaT or ts != ts.normalize():
        raise ConfigError(f"--date must be a calendar day YYYY-MM-DD (midnight), got {date!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts


def temporary_folder(parent: str, day_s: str) -> str:
    """A new, empty temporary folder beside the target, named so that :func:`recover` knows its owner."""
    tmp = os.path.join(parent, f"{_TMP_PREFIX}{day_s}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(tmp)
    return tmp


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds, delete it otherwise.

    Works for files and folders (a Zarr store). A failed write never leaves
    a partial ``path`` behind (nor a previous one half-overwritten).
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}")
    try:
        yield tmp
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        raise


def output_folder(cfg: dict, date, out_dir) -> str:
    """``OUT/<city>/<YYYY-MM-DD>`` for a configuration and date."""
    return os.path.join(os.fspath(out_dir), cfg["city"], f"{parse_date(date):%Y-%m-%d}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _owner_pid(name: str) -> int | None:
    # .tmp-<date>-<pid>-<hex> / .old-<date>-<pid>-<hex>
    try:
        return int(name.rsplit("-", 2)[1])
    except (IndexError, ValueError):
        return None


def recover(parent: str, day: str, target: str) -> None:
    """Restore outputs renamed aside by killed runs; remove dead runs' temporary folders.

    Every date under ``parent`` (the city's folder) is looked at, not only
    ``day``: a killed run of another date leaves nothing behind after the
    next run of any date. An ``.old-<D>-…`` folder whose date ``D`` has no
    output is restored when complete; otherwise (an output exists, or it is
    incomplete, or ``OUT/<city>/<D>`` is a file) it is removed. Folders of
    live processes are left alone.
    """
    if not os.path.isdir(parent):
        return
    for name in sorted(os.listdir(parent)):
        for prefix in (_TMP_PREFIX, _OLD_PREFIX):
            if not name.startswith(prefix):
                continue
            pid = _owner_pid(name)
            if pid is not None and _pid_alive(pid):
                continue  # a live run owns it
            path = os.path.join(parent, name)
            d = name[len(prefix):len(prefix) + 10]
            its_target = target if d == day else os.path.join(parent, d)
            if prefix == _OLD_PREFIX and not os.path.lexists(its_target) and manifest_ok(path):
                log.info("restoring previous output %s -> %s", path, its_target)
                os.rename(path, its_target)
            elif os.path.isdir(path) and not os.path.islink(path):
                log.info("removing stale folder %s", path)
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)


def manifest_ok(folder: str, verify_hashes: bool = False) -> bool:
    """A folder holds a complete output: a readable manifest listing files that all exist."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as fh:
            man = json.load(fh)
        files = man["files"]
        for f in files:
            p = os.path.join(folder, f["path"])
            if os.path.getsize(p) != f["bytes"]:
                return False
            if verify_hashes and sha256_file(p) != f["sha256"]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def fsync_tree(folder: str) -> None:
    for root, _, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(root, f), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(tmp: str, target: str, parent: str, day_s: str) -> None:
    """Rename the finished temporary folder into place (previous output moved aside, then deleted)."""
    old = None
    if os.path.exists(target):
        old = os.path.join(parent, f"{_OLD_PREFIX}{day_s}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    os.rename(tmp, target)
    _fsync_dir(parent)
    if old is not None:
        if os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old, ignore_errors=True)
        else:  # the date's path was a file (or a link): never left behind as .old-...
            with contextlib.suppress(OSError):
                os.remove(old)
