"""The per-worker cache remembers events once per source and one grid per forecast date (the study-area rule)."""

import os

import numpy as np

import riskgrid as rg
from riskgrid.distributed import ForecastJob, clear_cache
from riskgrid.distributed.cache import job_events, job_grid
from riskgrid.pipeline.source import study_area


def test_cache_keeps_events_once_and_a_grid_per_date(tmp_path):
    df = rg.simulate(n_days=60, background_rate=8, extent_m=3000, start="2024-01-01", seed=2)
    path = tmp_path / "e.parquet"
    df[["event_id", "timestamp", "lat", "lon"]].to_parquet(path)
    clear_cache()
    early, late = ForecastJob("a", path, date="2024-01-20"), ForecastJob("b", path, date="2024-02-25")
    ev = job_events(early)
    assert job_events(late) is ev  # same source and filters: read once
    g1 = job_grid(early, ev, ev.to_days("2024-01-20"))
    g2 = job_grid(late, ev, ev.to_days("2024-02-25"))
    assert job_grid(early, ev, ev.to_days("2024-01-20")) is g1
    np.testing.assert_array_equal(g1.cells, study_area(early.grid, ev, ev.to_days("2024-01-20")).cells)
    np.testing.assert_array_equal(g2.cells, study_area(late.grid, ev, ev.to_days("2024-02-25")).cells)
    assert len(g1) < len(g2)  # the earlier forecast's grid knows only the earlier events
    os.utime(path, ns=(0, 0))  # a rewritten file (another mtime) is read again
    assert job_events(early) is not ev
    clear_cache()
