"""Issue 15, data layer: study area, explicit times, duplicates, dtypes (EventSet.from_frame)."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from riskgrid import EventDataError, EventSet, HexGrid
from riskgrid.events import parse_date
from riskgrid.studyarea import FAR_FLOOR_KM, far_from_bulk


@pytest.fixture(scope="module")
def city():
    """A simulated Chicago-sized city (10 km square around 41.85, -87.65), no extra columns that tell rows apart."""
    df = rg.simulate(n_days=60, background_rate=20, seed=11)
    return df[["event_id", "timestamp", "lat", "lon", "category"]].copy()


def _grid_cells(es):
    return HexGrid.from_events(es, resolution=9, buffer_rings=1).cells


# --------------------------------------------------------------------------- study area
def test_one_swapped_row_is_rejected_and_the_grid_keeps_the_city_size(city):
    bad = city.copy()
    bad.loc[17, "lat"], bad.loc[17, "lon"] = city.loc[17, "lon"], city.loc[17, "lat"]
    with pytest.raises(EventDataError) as info:
        EventSet.from_frame(bad, category="category")
    msg = str(info.value)
    assert "[far_from_study_area]" in msg and "1 rows" in msg and "row 17 (lat=-87.6" in msg
    assert "1 of them lie near the bulk with lat and lon exchanged" in msg
    assert list(info.value.report["far_from_study_area"].index) == [17]
    es = EventSet.from_frame(bad, category="category", on_invalid="drop")
    assert list(es.rejected.index) == [17] and es.rejected.loc[17, "reason"] == "far_from_study_area"
    assert len(es) + len(es.rejected) == len(bad)
    clean = EventSet.from_frame(city.drop(index=17), category="category")
    np.testing.assert_array_equal(_grid_cells(es), _grid_cells(clean))
    assert es.lat.min() > 41.7 and es.lon.max() < -87.5


def test_three_points_in_paris_are_rejected(city):
    paris = city.iloc[:3].copy()
    paris["lat"], paris["lon"] = [48.85, 48.86, 48.87], [2.35, 2.34, 2.33]
    paris.index = [10_001, 10_002, 10_003]
    bad = pd.concat([city, paris])
    es = EventSet.from_frame(bad, category="category", on_invalid="drop")
    assert sorted(es.rejected.index) == [10_001, 10_002, 10_003]
    assert set(es.rejected.reason) == {"far_from_study_area"}
    np.testing.assert_array_equal(_grid_cells(es), _grid_cells(EventSet.from_frame(city, category="category")))
    info = es.validation["far_from_study_area"]
    assert info["threshold_km"] == FAR_FLOOR_KM  # 10 km city: the floor applies
    assert abs(info["centre"][0] - 41.85) < 0.05


def test_far_km_fixed_or_off(city):
    bad = city.copy()
    bad.loc[3, "lat"] += 0.3  # ~33 km north: inside the automatic threshold
    assert len(EventSet.from_frame(bad, on_invalid="drop").rejected) == 0
    es = EventSet.from_frame(bad, on_invalid="drop", far_km=20)
    assert list(es.rejected.index) == [3]
    bad.loc[4, ["lat", "lon"]] = [48.85, 2.35]
    assert len(EventSet.from_frame(bad, far_km=None)) == len(bad)
    assert len(EventSet.from_frame(bad, far_km="off")) == len(bad)
    for wrong in (-1, 0, "far", True, float("nan")):
        with pytest.raises(ValueError, match="far_km"):
            EventSet.from_frame(bad, far_km=wrong)


def test_far_rule_is_robust_to_a_large_minority():
    rng = np.random.default_rng(0)
    lat = np.r_[rng.normal(41.85, 0.05, 600), rng.normal(48.85, 0.01, 400)]
    lon = np.r_[rng.normal(-87.65, 0.05, 600), rng.normal(2.35, 0.01, 400)]
    far, info = far_from_bulk(lat, lon)
    assert far[600:].all() and not far[:600].any()


def test_whole_table_swapped_is_a_clear_error_in_both_modes(city):
    swapped = city.rename(columns={"lat": "lon", "lon": "lat"})
    for mode in ("raise", "drop"):
        with pytest.raises(EventDataError, match=r"lat='lat' and lon='lon' look swapped: \d+ of \d+ points have a latitude no city has"):
            EventSet.from_frame(swapped, on_invalid=mode)
    # San Francisco-like: latitudes beyond -90 after the swap
    sf = city.copy()
    sf["lat"], sf["lon"] = city["lon"] - 35.0, city["lat"] - 4.0
    with pytest.raises(EventDataError, match="look swapped"):
        EventSet.from_frame(sf, on_invalid="drop")


def test_declared_bbox_polygon_and_grid(city, tmp_path):
    bad = city.copy()
    bad.loc[[5, 6], "lat"] += 0.2  # 22 km north: plausible for the outlier rule, outside the declared box
    box = (-87.75, 41.75, -87.55, 41.95)
    es = EventSet.from_frame(bad, on_invalid="drop", bbox=box)
    assert sorted(es.rejected.index) == [5, 6] and set(es.rejected.reason) == {"outside_study_area"}
    assert es.validation["study_area"].startswith("bbox=(-87.75, 41.75")
    with pytest.raises(EventDataError, match=r"\[outside_study_area\].*study area bbox=.*2 rows, e.g. row 5"):
        EventSet.from_frame(bad, bbox=box)
    ring = [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]], [box[0], box[1]]]
    poly = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path = tmp_path / "area.geojson"
    path.write_text(json.dumps(poly))
    for within in (poly, str(path), json.dumps(poly)):
        es2 = EventSet.from_frame(bad, on_invalid="drop", within=within)
        assert sorted(es2.rejected.index) == [5, 6]
    grid = HexGrid.from_events(EventSet.from_frame(city), resolution=9, buffer_rings=0)
    es3 = EventSet.from_frame(bad, on_invalid="drop", within=grid)
    assert sorted(es3.rejected.index) == [5, 6]
    # a declared area wins over the distance rule: a far point inside the box is kept
    assert len(EventSet.from_frame(city, bbox=(-90, 40, -85, 44))) == len(city)
    with pytest.raises(ValueError, match="bbox"):
        EventSet.from_frame(city, bbox=(41.75, -87.75, 41.95, -87.55))


def test_declared_area_catches_a_swap_the_outlier_rule_cannot_see():
    # Paris swapped is a valid point in the Indian Ocean: only a declared area tells
    df = rg.simulate(n_days=20, background_rate=10, center=(48.85, 2.35), seed=2)
    swapped = df.rename(columns={"lat": "lon", "lon": "lat"})
    assert len(EventSet.from_frame(swapped)) == len(df)  # documented limit of the undeclared check
    with pytest.raises(EventDataError, match=r"look swapped: 0 of \d+ points lie in the declared study area"):
        EventSet.from_frame(swapped, bbox=(2.2, 48.8, 2.5, 48.95), on_invalid="drop")


# --------------------------------------------------------------------------- time
def _strings(city):
    s = city.copy()
    s["timestamp"] = s["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return s


def test_mixed_iso_and_day_first_fail_and_are_never_swapped(city):
    df = _strings(city)
    rows = [4, 9, 30]
    for r in rows:  # 2024-01-xx written day first; day <= 12 would read month first by guessing
        df.loc[r, "timestamp"] = city.loc[r, "timestamp"].strftime("%d/%m/%Y %H:%M")
    with pytest.raises(EventDataError) as info:
        EventSet.from_frame(df)
    msg = str(info.value)
    assert "[mixed_formats]" in msg and "3 rows" in msg
    assert "1611 rows read as 'ISO8601' (e.g. row 0" in msg and "'%d/%m/%Y %H:%M'" in msg and "row 4 '01/01/2024" in msg
    es = EventSet.from_frame(df, on_invalid="drop")
    assert sorted(es.rejected.index) == rows and set(es.rejected.reason) == {"mixed_formats"}
    np.testing.assert_array_equal(es.t, EventSet.from_frame(_strings(city).drop(index=rows)).t)


def test_day_first_column_read_with_its_format_and_ambiguity_refused():
    base = pd.DataFrame({"lat": [41.8] * 4, "lon": [-87.7, -87.71, -87.72, -87.73]})
    df = base.assign(timestamp=["01/02/2020", "25/02/2020", "03/04/2020", "13/12/2020"])
    es = EventSet.from_frame(df)  # only day-first reads every row
    assert list(es.timestamps.dt.strftime("%Y-%m-%d")) == ["2020-02-01", "2020-02-25", "2020-04-03", "2020-12-13"]
    assert es.validation["time_format"] == "%d/%m/%Y"
    amb = base.assign(timestamp=["01/02/2020", "05/02/2020", "03/04/2020", "12/12/2020"])
    for mode in ("raise", "drop"):
        with pytest.raises(EventDataError, match=r"ambiguous: formats '%m/%d/%Y' and '%d/%m/%Y'.*pass time_format="):
            EventSet.from_frame(amb, on_invalid=mode)
    es2 = EventSet.from_frame(amb, time_format="%d/%m/%Y")
    assert es2.timestamps.iloc[0] == pd.Timestamp("2020-02-01")
    iso = EventSet.from_frame(base.assign(timestamp=["2020-02-01"] * 4), time_format="ISO8601")
    assert iso.validation["time_format"] == "ISO8601"
    with pytest.raises(EventDataError, match=r"bad_timestamp.*time_format='%d/%m/%Y'"):
        EventSet.from_frame(base.assign(timestamp=["2020-02-01"] * 4), time_format="%d/%m/%Y")


def test_year_3019_in_strings_and_datetime64_us_is_a_rejection_not_a_crash(city):
    df = _strings(city)
    df.loc[7, "timestamp"] = "3019-01-05 10:00:00"
    with pytest.raises(EventDataError, match=r"\[time_out_of_range\].*1970\.\.\d{4}.*row 7 \(timestamp='3019-01-05 10:00:00'\)"):
        EventSet.from_frame(df)
    es = EventSet.from_frame(df, on_invalid="drop")
    assert list(es.rejected.index) == [7] and es.rejected.loc[7, "reason"] == "time_out_of_range"
    us = city.copy()
    us["timestamp"] = us["timestamp"].astype("datetime64[us]")
    us.loc[8, "timestamp"] = pd.Timestamp("3019-01-05").as_unit("us")
    assert us["timestamp"].dtype == "datetime64[us]"
    es = EventSet.from_frame(us, on_invalid="drop")
    assert list(es.rejected.index) == [8]
    np.testing.assert_array_equal(es.t, EventSet.from_frame(city.drop(index=8)).t)
    obj = city.copy()
    obj["timestamp"] = obj["timestamp"].astype(object)
    obj.loc[9, "timestamp"] = dt.datetime(3019, 1, 5)
    obj.loc[10, "timestamp"] = np.datetime64("300000-01-01", "D")  # beyond what pandas can hold
    es = EventSet.from_frame(obj, on_invalid="drop")
    assert sorted(es.rejected.index) == [9, 10] and set(es.rejected.reason) == {"time_out_of_range"}


def test_years_1900_and_2100_rejected_and_window_configurable(city):
    df = city.copy()
    df.loc[1, "timestamp"] = pd.Timestamp("1900-06-01")
    df.loc[2, "timestamp"] = pd.Timestamp("2100-06-01")
    es = EventSet.from_frame(df, on_invalid="drop")
    assert sorted(es.rejected.index) == [1, 2] and set(es.rejected.reason) == {"time_out_of_range"}
    assert es.validation["year_range"][0] == 1970 and es.validation["year_range"][1] == dt.date.today().year + 1
    assert len(EventSet.from_frame(df, year_range=(1900, 2100))) == len(df)
    es = EventSet.from_frame(df, year_range=(2000, 2030), on_invalid="drop")
    assert sorted(es.rejected.index) == [1, 2]
    for bad in [(2030, 2000), (1970,), ("a", 2000), (0, 2000)]:
        with pytest.raises(ValueError, match="year"):
            EventSet.from_frame(df, year_range=bad)


def test_parse_date_only_accepts_iso_dates():
    assert parse_date("2019-10-01") == pd.Timestamp("2019-10-01")
    assert parse_date(dt.date(2019, 10, 1)) == pd.Timestamp("2019-10-01")
    for bad in ["01/10/2019", "2019-1-10", "2019-10-01 12:00", "20191001", "", None, dt.datetime(2019, 10, 1)]:
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_date(bad)
    with pytest.raises(ValueError, match="not a calendar date"):
        parse_date("2019-02-30")


# --------------------------------------------------------------------------- duplicates
def test_duplicate_ids_are_rejected_by_default(city):
    dup = city.iloc[[3, 8]].copy()
    dup.index = [90_000, 90_001]
    df = pd.concat([city, dup])
    with pytest.raises(EventDataError, match=r"\[duplicate\].*same event_id: row 90000 repeats row 3"):
        EventSet.from_frame(df, id="event_id")
    es = EventSet.from_frame(df, id="event_id", on_invalid="drop")
    assert sorted(es.rejected.index) == [90_000, 90_001] and set(es.rejected.reason) == {"duplicate"}
    assert len(EventSet.from_frame(df, id="event_id", keep_duplicates=True)) == len(df)
    # same id, other content: still the same event recorded twice
    df.loc[90_000, "lat"] += 0.001
    assert 90_000 in EventSet.from_frame(df, id="event_id", on_invalid="drop").rejected.index
    # without id every column counts: the copied rows repeat event_id too
    assert sorted(EventSet.from_frame(df, on_invalid="drop").rejected.index) == [90_001]


def test_rows_sharing_time_place_category_are_kept_when_another_column_differs(city):
    twin = city.iloc[[5]].copy()
    twin.index = [77_700]
    twin["event_id"] = "other-record"
    df = pd.concat([city, twin])
    assert len(EventSet.from_frame(df, category="category")) == len(df)
    assert len(EventSet.from_frame(df, id="event_id", category="category")) == len(df)
    bare = df.drop(columns="event_id")  # nothing tells them apart
    es = EventSet.from_frame(bare, category="category", on_invalid="drop")
    assert list(es.rejected.index) == [77_700]
    # times compared as instants: another spelling of the same time is the same row
    s = _strings(city).drop(columns="event_id")
    s2 = s.iloc[[5]].copy()
    s2.index = [77_800]
    s2["timestamp"] = s2["timestamp"].str.replace(" ", "T")
    es = EventSet.from_frame(pd.concat([s, s2]), on_invalid="drop")
    assert list(es.rejected.index) == [77_800]
    with pytest.raises(ValueError, match="keep_duplicates"):
        EventSet.from_frame(df, keep_duplicates="no")


# --------------------------------------------------------------------------- dtypes
def test_bool_or_datetime_coordinate_columns_are_an_error(city):
    df = city.copy()
    df["lat"] = df["lat"] > 41.85
    with pytest.raises(EventDataError, match=r"column 'lat' \(lat\) has dtype bool; expected numbers"):
        EventSet.from_frame(df, on_invalid="drop")
    df = city.copy()
    df["lon"] = df["timestamp"]
    with pytest.raises(EventDataError, match=r"column 'lon' \(lon\) has dtype datetime64"):
        EventSet.from_frame(df)
    obj = city.copy()
    obj["lat"] = obj["lat"].astype(object)
    obj.loc[2, "lat"] = True
    obj.loc[3, "lat"] = "41.85"  # text holding a number is still a number
    es = EventSet.from_frame(obj, on_invalid="drop")
    assert list(es.rejected.index) == [2] and es.rejected.loc[2, "reason"] == "missing_coordinate"
    assert es.lat[es.index.get_loc(3)] == 41.85


# --------------------------------------------------------------------------- real data
REAL = ["chicago_2016_2017.parquet", "san_francisco_2003_2015_kaggle_train.parquet", "nyc_shootings_2006_2019.parquet"]


@pytest.mark.realdata
@pytest.mark.parametrize("name", REAL)
def test_real_cities_lose_no_row_to_the_new_rules(name):
    from conftest import shared_file

    df = pd.read_parquet(shared_file(name))
    es = EventSet.from_frame(df, category="category", id="event_id", on_invalid="drop")
    assert len(es) == len(df) and len(es.rejected) == 0
    assert es.validation["far_from_study_area"]["threshold_km"] >= FAR_FLOOR_KM


@pytest.mark.realdata
def test_real_chicago_one_swapped_row_and_the_time_place_category_rule():
    from conftest import shared_file

    df = pd.read_parquet(shared_file("chicago_2016_2017.parquet"), columns=["event_id", "timestamp", "lat", "lon", "category"])
    bad = df.copy()
    bad.loc[1000, "lat"], bad.loc[1000, "lon"] = df.loc[1000, "lon"], df.loc[1000, "lat"]
    es = EventSet.from_frame(bad, category="category", id="event_id", on_invalid="drop")
    assert list(es.rejected.index) == [1000] and es.rejected.loc[1000, "reason"] == "far_from_study_area"
    clean = EventSet.from_frame(df.drop(index=1000), category="category", id="event_id")
    g_bad = HexGrid.from_events(es, resolution=9, buffer_rings=0)
    g_clean = HexGrid.from_events(clean, resolution=9, buffer_rings=0)
    np.testing.assert_array_equal(g_bad.cells, g_clean.cells)
    # the README's 1,642 multi-offence rows: kept with an id or any telling column, rejected when nothing tells them apart
    bare = df[["timestamp", "lat", "lon", "category"]]
    assert len(EventSet.from_frame(bare, category="category", on_invalid="drop").rejected) == 1642


def test_read_events_forwards_the_rules_and_prunes_with_the_id(city, tmp_path):
    dup = city.iloc[[3]].copy()
    dup.index = [90_000]
    far = city.iloc[[4]].copy()
    far.index = [90_001]
    far["lat"], far["lon"] = 48.85, 2.35
    df = pd.concat([city, dup, far]).reset_index(drop=True)
    df["note"] = "x"  # a column the pruned read leaves out
    path = tmp_path / "ev.parquet"
    df.to_parquet(path)
    es = rg.read_events(path, id="event_id", prune_columns=True, on_invalid="drop", year_range=(2000, 2030))
    assert sorted(es.rejected.reason) == ["duplicate", "far_from_study_area"]
    assert list(es.extra.columns) == ["event_id"] and es.validation["year_range"] == (2000, 2030)
    # pruned without an id: the rows cannot be told apart from multi-offence records, so none is a duplicate
    es = rg.read_events(path, prune_columns=True, on_invalid="drop")
    assert list(es.rejected.reason) == ["far_from_study_area"]
    # every column read: the copy equals its original in all of them
    assert sorted(rg.read_events(path, on_invalid="drop").rejected.reason) == ["duplicate", "far_from_study_area"]


# --------------------------------------------------------------------------- timeparse details
from riskgrid.timeparse import parse_times  # noqa: E402


def _codes(r):
    return {k: np.flatnonzero(m).tolist() for k, m in r.masks.items() if m.any()}


@pytest.mark.parametrize("dtype", [object, "str"])
def test_parse_times_strings_whitespace_missing_and_dtype(dtype):
    s = pd.Series([" 2020-01-01 10:00 ", "2020-01-02 10:00", None, "", "   ", "2020-01-03"], dtype=dtype)
    r = parse_times(s)
    assert _codes(r) == {"bad_timestamp": [2, 3, 4]}
    assert list(r.parsed.iloc[[0, 1, 5]]) == [pd.Timestamp("2020-01-01 10:00"), pd.Timestamp("2020-01-02 10:00"), pd.Timestamp("2020-01-03")]
    assert r.time_format == "ISO8601"


def test_parse_times_offsets_and_repeated_values():
    s = pd.Series(["2020-01-01 12:00+02:00", "2020-01-01 12:00+00:00", "2020-01-01 12:00+02:00"] * 3)
    r = parse_times(s)
    assert str(r.parsed.dt.tz) == "UTC" and not _codes(r)
    assert list(r.parsed.iloc[:3].dt.hour) == [10, 12, 10]
    # a day-first minority among month-first rows, counted per row although values repeat
    s = pd.Series(["01/31/2020"] * 5 + ["12/25/2020"] * 4 + ["25/12/2020"] * 2)
    r = parse_times(s)
    assert r.time_format == "%m/%d/%Y" and _codes(r) == {"mixed_formats": [9, 10]}
    assert "9 rows read as '%m/%d/%Y'" in r.details["mixed_formats"] and "2 rows read as '%d/%m/%Y'" in r.details["mixed_formats"]


def test_parse_times_unusable_format_is_a_value_error():
    with pytest.raises(ValueError, match="time_format"):
        parse_times(pd.Series(["2020-01-01"]), time_format=5)
