"""Real city data from ../shared/data (skipped when that folder is absent)."""

import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from conftest import shared_file

pytestmark = pytest.mark.realdata

CASES = [
    ("chicago_2016_2017.parquet", 532_222, "2016-01-01", "2017-12-31 23:58", 27_225, "BURGLARY"),
    ("san_francisco_2003_2015_kaggle_train.parquet", 875_627, "2003-01-06 00:01", "2015-05-13 23:53", 36_598, "BURGLARY"),
    ("nyc_shootings_2006_2019.parquet", 16_862, "2006-01-01 02:00", "2019-09-30 13:49", 3_214, "SHOOTING (FATAL)"),
]


@pytest.mark.parametrize("name,n,first,last,n_cat,cat", CASES)
def test_real_file_loads_and_assigns(name, n, first, last, n_cat, cat):
    path = shared_file(name)
    ev = rg.read_events(path, category="category")
    assert len(ev) == n and len(ev.rejected) == 0
    assert ev.start.floor("min") == pd.Timestamp(first).floor("min")
    assert ev.end.floor("min") == pd.Timestamp(last).floor("min")
    assert (ev.codes == ev.categories.index(cat)).sum() == n_cat
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=0)
    idx = grid.assign(ev)
    assert (idx >= 0).all()
    assert np.bincount(idx, minlength=len(grid)).sum() == n
    assert "event_id" in ev.extra.columns
