"""What a batch gives back: :class:`BatchResult` (results, errors, per-task timings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import BatchError

__all__ = ["BatchResult", "TASK_COLUMNS"]

#: columns of the per-task timing table (:attr:`BatchResult.tasks`)
TASK_COLUMNS = ["job", "variant", "origin", "status", "worker", "start", "stop", "seconds", "error"]


@dataclass
class BatchResult:
    """Outcome of a batch: results and errors by job name, in job order.

    Attributes
    ----------
    results : dict
        Job name → ``xarray.DataArray`` (forecast) or ``pandas.DataFrame``
        (backtest), for the jobs that succeeded, in job order.
    errors : dict
        Job name → ``"ExceptionType: message"`` for every job that failed
        (including results lost with a worker), in job order.
    names : list of str
        Every job's name, in job order.
    tasks : pandas.DataFrame
        One row per task: ``job``, ``variant``, ``origin`` (days), ``status``,
        ``worker``, ``start``/``stop`` (Unix seconds), ``seconds``, ``error``.
    wall_seconds : float
        Wall time of the whole batch.
    dashboard : str or None
        Address of the Dask dashboard, when one was running.
    """

    results: dict
    errors: dict
    names: list
    tasks: pd.DataFrame
    wall_seconds: float = 0.0
    dashboard: str | None = None
    tracebacks: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when every job succeeded."""
        return not self.errors

    def __getitem__(self, name: str):
        if name in self.results:
            return self.results[name]
        if name in self.errors:
            raise BatchError(f"job {name!r} failed: {self.errors[name]}")
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.names)

    def raise_if_failed(self) -> dict:
        """Return :attr:`results`, or raise :class:`BatchError` listing every failed job."""
        if self.errors:
            lines = [f"{len(self.errors)} of {len(self.names)} job(s) failed:"]
            lines += [f"  {line}" for line in self.failure_lines()]
            raise BatchError("\n".join(lines))
        return self.results

    def failure_lines(self) -> list[str]:
        """One line per failed job: ``name: ExceptionType: first line of the message``."""
        return [f"{name}: {_first_line(msg)}" for name, msg in self.errors.items()]

    def concat(self) -> pd.DataFrame:
        """Backtest results of every successful job in one frame with a leading ``job`` column."""
        frames = [df.assign(job=name) for name, df in self.results.items() if isinstance(df, pd.DataFrame)]
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        return out[["job"] + [c for c in out.columns if c != "job"]]

    def time_by(self, by: str = "job") -> pd.DataFrame:
        """Task seconds summed by ``job``, ``variant`` or ``worker`` (where the time goes)."""
        t = self.tasks
        if t.empty:
            return pd.DataFrame(columns=["tasks", "seconds", "mean_seconds"])
        g = t.groupby(by, sort=False)["seconds"]
        return pd.DataFrame({"tasks": g.size(), "seconds": g.sum(), "mean_seconds": g.mean()})

    def __repr__(self) -> str:
        return (
            f"BatchResult({len(self.results)} ok, {len(self.errors)} failed of {len(self.names)} jobs, "
            f"{self.wall_seconds:.1f} s)"
        )


def _first_line(msg: str) -> str:
    return str(msg).strip().splitlines()[0] if str(msg).strip() else str(msg)


