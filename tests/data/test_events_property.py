"""Property test (issue 15): a few corrupted rows of every class mixed into a valid simulated city.

In drop mode the corrupted rows must be exactly the rejected ones (each with
the reason of its class), rows in = kept + rejected, and the kept events (and
so the grid and a forecast) must equal those built from the clean rows alone.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import riskgrid as rg
from riskgrid import EventSet, HexGrid
from riskgrid.models.hotspot import CountHotspot

KW = dict(category="category", weight="w", id="event_id")


@lru_cache(maxsize=None)
def clean_city(seed: int) -> pd.DataFrame:
    df = rg.simulate(n_days=20, background_rate=15, theta=0.3, seed=seed)
    out = df[["event_id", "timestamp", "lat", "lon", "category"]].copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")  # text, as from a CSV
    out["w"] = np.random.default_rng(seed).integers(1, 4, len(out)).astype(float)
    out["lat"] = out["lat"].astype(object)  # lets a row hold text or a bool, as a messy CSV column would
    return out


def _day_first(ts: str) -> str:
    t = pd.Timestamp(ts)
    return t.strftime("%d/%m/%Y %H:%M:%S")


#: corruption class -> (function of a copied clean row and a draw, expected reason)
def _corrupt(kind, row, draw):
    row = row.copy()
    if kind == "swapped":
        row["lat"], row["lon"] = row["lon"], float(row["lat"])
        return row, "far_from_study_area"
    if kind == "far_away":
        row["lat"] = draw(st.floats(-55, -1) | st.floats(1, 70))  # never the (0, 0) placeholder
        row["lon"] = draw(st.floats(-40, 170))  # >= 3,900 km from Chicago's longitude
        return row, "far_from_study_area"
    if kind == "bad_timestamp":
        row["timestamp"] = draw(st.sampled_from(["not a date", "", "2024-13-45 10:00:00", "??"]))
        return row, "bad_timestamp"
    if kind == "number_timestamp":
        row["timestamp"] = draw(st.integers(0, 2_000_000_000))
        return row, "bad_timestamp"
    if kind == "out_of_range":
        year = draw(st.sampled_from([1900, 1969, 2100, 3019, 9999]))
        row["timestamp"] = f"{year}" + row["timestamp"][4:]
        if row["timestamp"][5:10] == "02-29":
            row["timestamp"] = row["timestamp"][:8] + "28" + row["timestamp"][10:]
        return row, "time_out_of_range"
    if kind == "mixed_format":
        row["timestamp"] = _day_first(row["timestamp"])
        return row, "mixed_formats"
    if kind == "duplicate":
        return row, "duplicate"
    if kind == "nan_lat":
        row["lat"] = draw(st.sampled_from([np.nan, None, "n/a", True]))
        return row, "missing_coordinate"
    if kind == "lat_range":
        row["lat"] = draw(st.sampled_from([95.0, -91.0, np.inf]))
        return row, "lat_out_of_range"
    if kind == "null_island":
        row["lat"], row["lon"] = 0.0, 0.0
        return row, "null_island"
    if kind == "bad_weight":
        row["w"] = draw(st.sampled_from([-1.0, np.nan, np.inf]))
        return row, "bad_weight"
    if kind == "missing_category":
        row["category"] = None
        return row, "missing_category"
    raise AssertionError(kind)


KINDS = [
    "swapped",
    "far_away",
    "bad_timestamp",
    "number_timestamp",
    "out_of_range",
    "mixed_format",
    "duplicate",
    "nan_lat",
    "lat_range",
    "null_island",
    "bad_weight",
    "missing_category",
]


@st.composite
def corrupted_cities(draw):
    seed = draw(st.integers(0, 3))
    clean = clean_city(seed)
    n = len(clean)
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=10))
    rows, expected = [], {}
    for j, kind in enumerate(kinds):
        src = draw(st.integers(0, n - 1))
        row, code = _corrupt(kind, clean.iloc[src], draw)
        label = 100_000 + j
        # a duplicate comes after its original; other rows anywhere
        pos = draw(st.integers(src + 1 if kind == "duplicate" else 0, n))
        rows.append((pos, j, label, row))
        expected[label] = code
    parts, last = [], 0
    for pos, _, label, row in sorted(rows, key=lambda r: (r[0], r[1])):
        parts.append(clean.iloc[last:pos])
        parts.append(pd.DataFrame([row.to_dict()], index=[label]))
        last = pos
    parts.append(clean.iloc[last:])
    mixed = pd.concat(parts)
    return seed, mixed, expected


def _same_events(a: EventSet, b: EventSet):
    assert list(a.index) == list(b.index)
    for name in ("t", "lat", "lon", "weight", "codes"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.categories == b.categories
    assert list(a.timestamps) == list(b.timestamps)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(corrupted_cities())
def test_corrupted_rows_are_exactly_the_rejected_ones(case):
    seed, mixed, expected = case
    clean = EventSet.from_frame(clean_city(seed), **KW)
    assert len(clean.rejected) == 0
    es = EventSet.from_frame(mixed, on_invalid="drop", **KW)
    assert len(es) + len(es.rejected) == len(mixed)
    assert dict(zip(es.rejected.index, es.rejected.reason)) == expected
    _same_events(es, clean)
    # raise mode names every broken rule
    with pytest.raises(rg.EventDataError) as info:
        EventSet.from_frame(mixed, **KW)
    for code in set(expected.values()):
        assert f"[{code}]" in str(info.value)
        assert set(info.value.report[code].index) == {k for k, c in expected.items() if c == code}


@pytest.mark.parametrize("seed", [0, 1])
def test_forecast_on_corrupted_input_equals_the_clean_forecast(seed):
    clean_df = clean_city(seed)
    bad = clean_df.copy()
    bad.loc[5, "lat"], bad.loc[5, "lon"] = clean_df.loc[5, "lon"], float(clean_df.loc[5, "lat"])  # swapped row
    extra = clean_df.iloc[[7, 8, 9]].copy()
    extra.index = [200_001, 200_002, 200_003]
    extra["lat"], extra["lon"] = [48.85, 48.86, 48.87], [2.35, 2.34, 2.33]  # three points in Paris
    extra.loc[200_003, "timestamp"] = "3019-01-01 00:00:00.000000"
    bad = pd.concat([bad, extra, clean_df.iloc[[11]]])  # and a duplicate of row 11
    es = EventSet.from_frame(bad, on_invalid="drop", **KW)
    ok = EventSet.from_frame(clean_df.drop(index=5), **KW)
    _same_events(es, ok)
    grids = [HexGrid.from_events(e, resolution=9, buffer_rings=1) for e in (es, ok)]
    np.testing.assert_array_equal(grids[0].cells, grids[1].cells)
    end = ok.end.ceil("D")
    risks = [CountHotspot(window_days=14).fit(e, g, end=end).predict(end, 1.0) for e, g in zip((es, ok), grids)]
    np.testing.assert_array_equal(risks[0].values, risks[1].values)
    assert float(risks[0].sum()) > 0
