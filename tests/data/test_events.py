import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import riskgrid as rg
from riskgrid import EventDataError, EventSet


def good_frame(n=20, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2020-01-01") + pd.to_timedelta(r.uniform(0, 30, n), unit="D"),
            "lat": r.uniform(41.7, 41.9, n),
            "lon": r.uniform(-87.8, -87.6, n),
            "kind": r.choice(["A", "B"], n),
            "w": r.uniform(0, 3, n),
            "note": [f"n{i}" for i in range(n)],
        }
    )


BAD_VALUES = {
    "missing_coordinate": ("lat", np.nan),
    "lat_out_of_range": ("lat", 91.5),
    "lon_out_of_range": ("lon", -181.0),
    "bad_timestamp": ("timestamp", "not a date"),
    "bad_weight": ("w", -1.0),
    "missing_category": ("kind", None),
}


@st.composite
def bad_frames(draw):
    n = draw(st.integers(8, 40))
    df = good_frame(n, seed=draw(st.integers(0, 1000)))
    df["timestamp"] = df["timestamp"].astype(object)
    df["kind"] = df["kind"].astype(object)
    rules = draw(st.lists(st.sampled_from(sorted(BAD_VALUES) + ["null_island", "nan_weight", "inf_lat"]), min_size=1, max_size=4))
    expected = {}
    for rule in rules:
        rows = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5, unique=True))
        for r in rows:
            if r in expected:  # one broken value per row keeps the expectation exact
                continue
            if rule == "null_island":
                df.loc[r, ["lat", "lon"]] = 0.0
                code = "null_island"
            elif rule == "nan_weight":
                df.loc[r, "w"] = np.nan
                code = "bad_weight"
            elif rule == "inf_lat":
                df.loc[r, "lat"] = np.inf
                code = "lat_out_of_range"
            else:
                col, val = BAD_VALUES[rule]
                df.at[r, col] = val
                code = rule
            expected.setdefault(r, set()).add(code)
    return df, expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad_frames())
def test_every_rule_is_reported_never_dropped(case):
    df, expected = case
    kwargs = dict(category="kind", weight="w")
    if len(expected) == len(df):
        with pytest.raises(EventDataError):
            EventSet.from_frame(df, on_invalid="drop", **kwargs)
        return
    with pytest.raises(EventDataError) as info:
        EventSet.from_frame(df, **kwargs)
    msg = str(info.value)
    all_codes = set().union(*expected.values())
    for code in all_codes:
        assert f"[{code}]" in msg
        assert set(info.value.report[code].index) == {r for r, c in expected.items() if code in c}
    es = EventSet.from_frame(df, on_invalid="drop", **kwargs)
    # nothing silently lost: kept + rejected == input
    assert len(es) + len(es.rejected) == len(df)
    assert set(es.rejected.index) == set(expected)
    for r, codes in expected.items():
        assert set(es.rejected.loc[r, "reason"].split("; ")) == codes
    assert set(es.index).isdisjoint(es.rejected.index)


def test_error_message_names_rows_and_values():
    df = good_frame(10)
    df.loc[[2, 5, 7], "lat"] = 95.0
    with pytest.raises(EventDataError) as info:
        EventSet.from_frame(df)
    msg = str(info.value)
    assert "lat_out_of_range" in msg and "3 rows" in msg
    assert "row 2 (lat=95.0)" in msg and "row 7" in msg


def test_mixed_timezones_flag_minority():
    df = good_frame(6)
    ts = [
        "2020-01-01 10:00",
        "2020-01-02 10:00",
        "2020-01-03 10:00+02:00",
        "2020-01-04 10:00",
        "2020-01-05 10:00",
        "2020-01-06 10:00",
    ]
    df["timestamp"] = ts
    with pytest.raises(EventDataError, match="mixed_timezones"):
        EventSet.from_frame(df)
    es = EventSet.from_frame(df, on_invalid="drop")
    assert list(es.rejected.index) == [2]
    assert es.rejected.loc[2, "reason"] == "mixed_timezones"


def test_aware_timestamps_with_different_offsets_are_converted_to_utc():
    df = good_frame(2)
    df["timestamp"] = ["2020-01-01 12:00+02:00", "2020-01-01 12:00+00:00"]
    es = EventSet.from_frame(df)
    assert es.t[1] - es.t[0] == pytest.approx(2 / 24)


def test_missing_column_and_empty():
    df = good_frame(5)
    with pytest.raises(EventDataError, match="time='when'"):
        EventSet.from_frame(df, time="when")
    with pytest.raises(EventDataError, match="empty"):
        EventSet.from_frame(df.iloc[:0])
    bad = good_frame(3)
    bad["lat"] = np.nan
    with pytest.raises(EventDataError, match="no valid event left"):
        EventSet.from_frame(bad, on_invalid="drop")


def test_numeric_timestamps_are_rejected_not_guessed():
    df = good_frame(4)
    df["timestamp"] = np.arange(4)
    with pytest.raises(EventDataError, match="bad_timestamp"):
        EventSet.from_frame(df)


def test_sorted_immutable_and_days_since_epoch():
    df = good_frame(50).sample(frac=1, random_state=3)
    es = EventSet.from_frame(df, category="kind", weight="w")
    assert np.all(np.diff(es.t) >= 0)
    expected = (df["timestamp"].sort_values() - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    np.testing.assert_allclose(es.t, expected.to_numpy(), rtol=0, atol=1e-9)
    with pytest.raises(ValueError):
        es.t[0] = 1.0
    assert es.categories == ("A", "B")
    assert list(es.extra.columns) == ["note"]
    assert es.extra["note"].tolist() == df.loc[es.index, "note"].tolist()
    frame = es.to_frame()
    assert len(frame) == 50 and set(frame.category) == {"A", "B"}


def test_stable_sort_on_ties():
    df = good_frame(6)
    df["timestamp"] = pd.Timestamp("2021-05-05")
    es = EventSet.from_frame(df)
    assert list(es.index) == list(range(6))


def test_between_and_select():
    es = EventSet.from_frame(good_frame(200), category="kind")
    sub = es.between("2020-01-10", "2020-01-20")
    assert len(sub) > 0
    assert sub.timestamps.min() >= pd.Timestamp("2020-01-10")
    assert sub.timestamps.max() < pd.Timestamp("2020-01-20")
    assert len(es.between(None, "2020-01-10")) + len(sub) + len(es.between("2020-01-20")) == len(es)
    b = es.select("B")
    assert b.categories == ("B",) and np.all(b.codes == 0)
    assert len(b) == int((es.codes == 1).sum())
    with pytest.raises(ValueError, match="unknown categories"):
        es.select("C")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_events(tmp_path, fmt):
    df = good_frame(30)
    path = tmp_path / f"ev.{fmt}"
    df.to_parquet(path) if fmt == "parquet" else df.to_csv(path, index=False)
    es = rg.read_events(path, category="kind", weight="w")
    assert len(es) == 30 and es.source == str(path)


def test_read_events_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        rg.read_events(tmp_path / "nope.parquet")
    p = tmp_path / "bad.parquet"
    good_frame(100).to_parquet(p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(EventDataError, match="cannot read"):
        rg.read_events(p)
