"""Cost of the plausibility rules (issue 15) on the real Chicago table, beside the checks they add to.

Group ``validate-chicago``: ``EventSet.from_frame`` on 532,222 rows with the
duplicate search off (``keep_duplicates=True``, the reference: the rules that
existed before plus the distance and time-window rules), by event id, and by
every column (the default without an id); ISO strings instead of datetimes.
Group ``study-area``: a declared polygon (point-in-polygon on every row).

Run: ``pytest benchmarks/test_bench_validation.py --benchmark-only``.
"""

from pathlib import Path

import pandas as pd
import pytest

from riskgrid import EventSet

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chicago_2016_2017.parquet"


@pytest.fixture(scope="module")
def chicago():
    if not DATA.exists():
        pytest.skip(f"{DATA} not present")
    return pd.read_parquet(DATA)


VARIANTS = {
    "keep_duplicates (reference)": dict(keep_duplicates=True),
    "duplicates by id": dict(id="event_id"),
    "duplicates by every column": dict(),
}


@pytest.mark.benchmark(group="validate-chicago")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_from_frame_chicago(benchmark, chicago, variant):
    es = benchmark.pedantic(lambda: EventSet.from_frame(chicago, category="category", **VARIANTS[variant]), rounds=3, iterations=1)
    assert len(es) == len(chicago)
    benchmark.extra_info["n_events"] = len(chicago)


@pytest.mark.benchmark(group="validate-chicago")
def test_from_frame_chicago_iso_strings(benchmark, chicago):
    df = chicago[["event_id", "timestamp", "lat", "lon", "category"]].copy()
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    es = benchmark.pedantic(lambda: EventSet.from_frame(df, category="category", id="event_id"), rounds=3, iterations=1)
    assert len(es) == len(df) and es.validation["time_format"] == "ISO8601"


@pytest.mark.benchmark(group="study-area")
def test_declared_polygon_chicago(benchmark, chicago):
    ring = [[-87.94, 41.64], [-87.52, 41.64], [-87.52, 42.03], [-87.70, 42.05], [-87.94, 42.03], [-87.94, 41.64]]
    poly = {"type": "Polygon", "coordinates": [ring]}
    es = benchmark.pedantic(
        lambda: EventSet.from_frame(chicago, category="category", keep_duplicates=True, within=poly), rounds=3, iterations=1
    )
    assert len(es) == len(chicago)
