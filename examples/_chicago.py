"""Shared loader of the examples: Chicago burglaries from ../shared/data (outside the repository)."""

from __future__ import annotations

from pathlib import Path

import riskgrid as rg

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "chicago_2016_2017.parquet"


def burglaries(out_name: str):
    """``(events, out_dir)`` for Chicago burglaries 2016-2017, or ``None`` (with a message) without the data.

    ``out_dir`` is ``out/<out_name>/`` under the repository, created.
    """
    if not DATA.exists():
        print(f"skipped: {DATA} not found (the shared data folder ../shared/data is outside the repository)")
        return None
    out = ROOT / "out" / out_name
    out.mkdir(parents=True, exist_ok=True)
    return rg.read_events(DATA, category="category").select("BURGLARY"), out
