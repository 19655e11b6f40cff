import json

import h3
import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from riskgrid import HexGrid


def test_assign_agrees_with_h3_including_cell_edges(rng):
    lat = rng.uniform(41.7, 41.95, 3000)
    lon = rng.uniform(-87.8, -87.55, 3000)
    # points a hair away from cell vertices and edge midpoints
    cells = {h3.latlng_to_cell(a, b, 9) for a, b in zip(lat[:200], lon[:200])}
    edge_pts = []
    for c in cells:
        bnd = h3.cell_to_boundary(c)
        for (a1, b1), (a2, b2) in zip(bnd, bnd[1:] + bnd[:1]):
            for f in (0.0, 0.5, 0.999):
                for eps in (1e-9, -1e-9):
                    edge_pts.append((a1 + f * (a2 - a1) + eps, b1 + f * (b2 - b1) - eps))
    ep = np.array(edge_pts)
    lat = np.concatenate([lat, ep[:, 0]])
    lon = np.concatenate([lon, ep[:, 1]])
    expected = np.array([h3.str_to_int(h3.latlng_to_cell(a, b, 9)) for a, b in zip(lat, lon)], dtype=np.uint64)
    np.testing.assert_array_equal(rg.latlng_to_cells(lat, lon, 9), expected)
    df = pd.DataFrame({"timestamp": pd.Timestamp("2020-01-01"), "lat": lat, "lon": lon})
    # cell vertices are shared by neighbouring cells: the same point at the same time repeats on purpose
    ev = rg.EventSet.from_frame(df, keep_duplicates=True)
    assert len(ev) == len(df)
    grid = HexGrid.from_events(ev, resolution=9, buffer_rings=0)
    idx = grid.assign(ev)
    assert (idx >= 0).all()
    ev_cells = rg.latlng_to_cells(ev.lat, ev.lon, 9)
    np.testing.assert_array_equal(grid.cells[idx], ev_cells)
    # outside the grid -> -1
    assert grid.assign(np.array([10.0]), np.array([10.0]))[0] == -1


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_csr_neighbours_match_grid_disk(sim_city, k):
    _, _, grid = sim_city
    indptr, indices, ring = grid.neighbours(k)
    assert indptr.shape == (len(grid) + 1,)
    cellset = set(int(c) for c in grid.cells)
    for i in range(0, len(grid), max(1, len(grid) // 150)):
        c = int(grid.cells[i])
        got = grid.cells[indices[indptr[i]:indptr[i + 1]]]
        exp = {d for d in h3.api.basic_int.grid_disk(c, k) if d in cellset}
        assert set(int(g) for g in got) == exp
        assert len(got) == len(exp)
        assert got[0] == c and ring[indptr[i]] == 0
        for g, r in zip(got, ring[indptr[i]:indptr[i + 1]]):
            assert h3.api.basic_int.grid_distance(c, int(g)) == r


def test_from_events_buffer_and_properties(sim_city):
    _, events, grid = sim_city
    grid0 = HexGrid.from_events(events, resolution=9, buffer_rings=0)
    assert len(grid) > len(grid0)
    assert np.all(np.diff(grid.cells.astype(np.int64)) > 0) or np.all(grid.cells[1:] > grid.cells[:-1])
    assert grid.cells.dtype == np.uint64
    np.testing.assert_allclose(grid.area_m2.mean(), 105_333, rtol=0.05)
    lat, lon = grid.centroids_latlon
    c0 = h3.cell_to_latlng(h3.int_to_str(int(grid.cells[0])))
    assert (lat[0], lon[0]) == pytest.approx(c0)
    x, y = grid.centroids_xy
    assert np.abs(x).max() < 20_000


def test_geojson_round_trip_and_rfc7946(sim_city):
    _, _, grid = sim_city
    gj = grid.to_geojson({"value": np.arange(len(grid))})
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(grid)
    for f in gj["features"][:50]:
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1]
        xs, ys = np.array(ring).T
        assert np.all((xs < -87) & (xs > -88.5)) and np.all((ys > 41) & (ys < 42.5))  # lon, lat order
        area = np.sum(xs[:-1] * ys[1:] - xs[1:] * ys[:-1])
        assert area > 0  # counter-clockwise
    sub = {"type": "FeatureCollection", "features": gj["features"][:40]}
    back = HexGrid.from_geojson(json.dumps({"type": "MultiPolygon", "coordinates": [f["geometry"]["coordinates"] for f in sub["features"]]}), 9)
    assert set(back.cells) == set(grid.cells[:40])


def test_from_geojson_polygon_with_hole(tmp_path):
    outer = [[-87.70, 41.80], [-87.60, 41.80], [-87.60, 41.90], [-87.70, 41.90], [-87.70, 41.80]]
    hole = [[-87.67, 41.83], [-87.63, 41.83], [-87.63, 41.87], [-87.67, 41.87], [-87.67, 41.83]]
    full = HexGrid.from_geojson({"type": "Polygon", "coordinates": [outer]}, 9)
    path = tmp_path / "area.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [outer, hole]}}))
    holed = HexGrid.from_geojson(str(path), 9)
    assert 0 < len(holed) < len(full)
    lat, lon = holed.centroids_latlon
    inside_hole = (lat > 41.835) & (lat < 41.865) & (lon > -87.665) & (lon < -87.635)
    assert not inside_hole.any()
    with pytest.raises(ValueError, match="Polygon"):
        HexGrid.from_geojson({"type": "Point", "coordinates": [0, 0]}, 9)


def test_bad_resolution():
    with pytest.raises(ValueError, match="resolution"):
        HexGrid.from_cells([h3.str_to_int(h3.latlng_to_cell(41.8, -87.7, 9))], resolution=16)
    # every cell is checked: one finer cell among hundreds (it sorts last) is caught
    disk = [h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(41.8, -87.7, 9), 12)]
    with pytest.raises(ValueError, match=r"resolution\(s\) \[9, 10\]"):
        HexGrid.from_cells(disk + [h3.str_to_int(h3.latlng_to_cell(41.9, -87.6, 10))], resolution=9)
    with pytest.raises(ValueError, match="at least one cell"):
        HexGrid.from_cells([])


def test_from_geojson_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.geojson"):
        HexGrid.from_geojson(tmp_path / "nope.geojson")
    (tmp_path / "bad.geojson").write_text("not json")
    with pytest.raises(ValueError, match="bad.geojson is not valid JSON"):
        HexGrid.from_geojson(str(tmp_path / "bad.geojson"))


def test_assign_memo_is_per_grid_and_travels_with_slices(sim_city):
    _, events, grid = sim_city
    fresh = rg.EventSet.from_frame(events.to_frame().reset_index(drop=True), category="category")
    direct = grid.assign(fresh.lat, fresh.lon)
    memo = grid.assign(fresh)
    np.testing.assert_array_equal(memo, direct)
    assert grid.assign(fresh) is memo  # memoised
    sub = fresh.between(fresh.t[100], fresh.t[500]).select(fresh.categories[0])
    np.testing.assert_array_equal(grid.assign(sub), grid.assign(sub.lat, sub.lon))
    # a different grid (here: one ring smaller) never reuses another grid's assignment
    small = HexGrid.from_events(fresh, resolution=9, buffer_rings=0)
    np.testing.assert_array_equal(small.assign(fresh), small.index_of(rg.latlng_to_cells(fresh.lat, fresh.lon, 9)))
    assert not np.array_equal(small.assign(fresh), memo)


# --------------------------------------------------------------------------- limits before work
from h3.api import numpy_int as h3i  # noqa: E402

from riskgrid.geo import load_polygons  # noqa: E402
from riskgrid.grid import (  # noqa: E402
    DEFAULT_MAX_CELLS,
    _dilate,
    estimate_cells_from_events,
    estimate_cells_in_polygons,
)

CHICAGO_BOX = {
    "type": "Polygon",
    "coordinates": [[[-87.94, 41.64], [-87.52, 41.64], [-87.52, 42.03], [-87.94, 42.03], [-87.94, 41.64]]],
}


def test_buffer_rings_500_refused_before_any_cell_is_enumerated(sim_city):
    _, events, _ = sim_city
    with pytest.raises(ValueError, match=r"buffer_rings=500 is above max_buffer_rings=50"):
        HexGrid.from_events(events, resolution=9, buffer_rings=500)
    # raising the ring cap still meets the cell cap, with the estimate named
    with pytest.raises(ValueError, match=r"about [\d,]+ cells .* above max_cells=1,000,000"):
        HexGrid.from_events(events, resolution=9, buffer_rings=500, max_buffer_rings=1000)
    with pytest.raises(ValueError, match="buffer_rings must be an integer >= 0"):
        HexGrid.from_events(events, buffer_rings=-1)
    with pytest.raises(ValueError, match="max_cells must be an integer >= 1"):
        HexGrid.from_events(events, max_cells=0)


def test_resolution_12_polygon_over_chicago_refused_with_the_estimate():
    with pytest.raises(ValueError, match=r"about 4,9\d\d,\d{3} cells at resolution 12, above max_cells=1,000,000"):
        HexGrid.from_geojson(CHICAGO_BOX, resolution=12)
    assert estimate_cells_in_polygons(load_polygons(CHICAGO_BOX), 12) > DEFAULT_MAX_CELLS


@pytest.mark.parametrize("res", [7, 8, 9])
def test_polygon_estimate_is_close_to_the_fill(res):
    est = estimate_cells_in_polygons(load_polygons(CHICAGO_BOX), res)
    n = len(HexGrid.from_geojson(CHICAGO_BOX, resolution=res))
    assert 0.85 * n <= est <= 1.15 * n
    with pytest.raises(ValueError, match=f"max_cells={n // 2:,}"):
        HexGrid.from_geojson(CHICAGO_BOX, resolution=res, max_cells=n // 2)


@pytest.mark.parametrize("rings", [0, 1, 3, 8])
def test_events_estimate_bounds_the_grid(sim_city, rings):
    _, events, _ = sim_city
    grid = HexGrid.from_events(events, resolution=9, buffer_rings=rings)
    est = estimate_cells_from_events(events.lat, events.lon, 9, rings)
    assert len(grid) <= est <= 3 * len(grid) + 100
    with pytest.raises(ValueError, match="above max_cells"):
        HexGrid.from_events(events, resolution=9, buffer_rings=rings, max_cells=est - 1)


def test_dilation_equals_union_of_disks_including_pentagons(rng):
    pent = [h3.str_to_int(c) for c in h3.get_pentagons(6)][:3]
    base = np.unique(np.concatenate([h3i.grid_disk(p, 3)[:20] for p in pent]).astype(np.uint64))
    city = np.unique(rg.latlng_to_cells(rng.uniform(41.8, 41.9, 200), rng.uniform(-87.7, -87.6, 200), 9))
    for cells in (base, city):
        for k in (1, 2, 4):
            ref = np.unique(np.concatenate([h3i.grid_disk(int(c), k) for c in cells]).astype(np.uint64))
            np.testing.assert_array_equal(_dilate(cells, k), ref)


def test_neighbour_pairs_refused_before_work(sim_city):
    grid = HexGrid.from_cells(sim_city[2].cells)  # a fresh grid: nothing memoised yet
    n = len(grid)
    assert grid.neighbours(2, max_pairs=n * 19)[0][-1] <= n * 19  # the bound is met exactly by interior cells
    with pytest.raises(ValueError, match=rf"k=3 rings of {n:,} cells: up to {n * 37:,} cell pairs .* above max_pairs={n * 37 - 1:,}"):
        grid.neighbours(3, max_pairs=n * 37 - 1)
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        grid.neighbours(-1)


# --------------------------------------------------------------------------- #
# the cold H3 path (issue 17): hashed distinct points, local-IJ ring tables
# --------------------------------------------------------------------------- #
CITIES = {"chicago": (41.85, -87.65), "nyc": (40.70, -73.95), "sydney": (-33.87, 151.20), "reykjavik": (64.13, -21.90)}


def _near_edge_points(cells, eps=1e-9):
    """Points a hair inside/outside every vertex and edge (start, middle, end) of ``cells``."""
    pts = []
    for c in cells:
        bnd = h3.cell_to_boundary(h3.int_to_str(int(c)))
        for (a1, b1), (a2, b2) in zip(bnd, bnd[1:] + bnd[:1]):
            for f in (0.0, 0.5, 0.999):
                for e in (eps, -eps):
                    pts.append((a1 + f * (a2 - a1) + e, b1 + f * (b2 - b1) - e))
    return np.array(pts)


@pytest.mark.parametrize("city", sorted(CITIES))
@pytest.mark.parametrize("res", [7, 10, 13])
def test_latlng_to_cells_equals_h3_random_and_near_edges(rng, city, res):
    lat0, lon0 = CITIES[city]
    lat = lat0 + rng.normal(0, 0.05, 4000)
    lon = lon0 + rng.normal(0, 0.05, 4000)
    lat[:500], lon[:500] = lat[500:1000], lon[500:1000]  # repeated points (block-level data)
    ep = _near_edge_points(np.unique(rg.latlng_to_cells(lat[:40], lon[:40], res)))
    lat = np.concatenate([lat, ep[:, 0]])
    lon = np.concatenate([lon, ep[:, 1]])
    f = h3.api.basic_int.latlng_to_cell
    expected = np.array([f(a, b, res) for a, b in zip(lat.tolist(), lon.tolist())], dtype=np.uint64)
    np.testing.assert_array_equal(rg.latlng_to_cells(lat, lon, res), expected)


def test_latlng_to_cells_around_pentagons_and_bad_input():
    pent = [h3.str_to_int(p) for p in h3.get_pentagons(9)[:3]]
    ep = _near_edge_points(pent + [int(c) for p in pent for c in h3.api.basic_int.grid_ring(p, 1)], eps=1e-10)
    f = h3.api.basic_int.latlng_to_cell
    expected = np.array([f(a, b, 9) for a, b in ep.tolist()], dtype=np.uint64)
    np.testing.assert_array_equal(rg.latlng_to_cells(ep[:, 0], ep[:, 1], 9), expected)
    with pytest.raises(h3.H3BaseException):
        rg.latlng_to_cells(np.array([1.0, np.nan]), np.array([1.0, 2.0]), 9)


def _city_grid(rng, lat0, lon0, res, sd=0.04, n=1500):
    cells = rg.latlng_to_cells(lat0 + rng.normal(0, sd, n), lon0 + rng.normal(0, sd, n), res)
    return HexGrid(np.unique(cells), res)


@pytest.mark.parametrize("city", sorted(CITIES))
@pytest.mark.parametrize("res", [8, 10])
def test_local_ij_ring_table_is_bit_identical_to_grid_ring_on_every_cell(rng, city, res):
    grid = _city_grid(rng, *CITIES[city], res)
    for k in (0, 1, 3):
        fast = grid._neighbours_local_ij(k)
        assert fast is not None
        slow = grid._neighbours_h3(k)  # h3.grid_ring around every cell
        for a, b in zip(fast, slow):
            assert a.dtype == b.dtype == np.int64
            np.testing.assert_array_equal(a, b)


def _base_cell_vertices(n: int = 40):
    """(lat, lon) of the first vertex of the first ``n`` res-0 cells, pentagons and |lat| > 75° left out:
    places where grids straddle base cells (and icosahedron faces)."""
    pent = {h3.get_base_cell_number(p) for p in h3.get_pentagons(0)}
    for c in sorted(h3.get_res0_cells())[:n]:
        if h3.get_base_cell_number(c) in pent:
            continue
        lat0, lon0 = h3.cell_to_boundary(c)[0]
        if abs(lat0) <= 75:
            yield lat0, lon0


def test_local_ij_ring_table_across_base_cell_seams(rng):
    # grids straddling two or three base cells (icosahedron face edges among them)
    checked = 0
    for lat0, lon0 in _base_cell_vertices():
        grid = _city_grid(rng, lat0, lon0, 7, sd=0.15, n=800)
        if np.unique((grid.cells >> np.uint64(45)) & np.uint64(127)).size < 2:
            continue
        fast = grid._neighbours_local_ij(2)
        if fast is None:
            continue
        for a, b in zip(fast, grid._neighbours_h3(2)):
            np.testing.assert_array_equal(a, b)
        # dilation on local IJ across the seam equals the union of h3 disks
        disks = np.unique(np.concatenate([h3i.grid_disk(int(c), 2) for c in grid.cells]).astype(np.uint64))
        np.testing.assert_array_equal(_dilate(grid.cells, 2), disks)
        checked += 1
    assert checked >= 5


def test_ring_table_near_a_pentagon_falls_back_to_h3():
    p = h3.str_to_int(h3.get_pentagons(8)[4])
    grid = HexGrid(np.asarray(h3.api.basic_int.grid_disk(p, 4), dtype=np.uint64), 8)
    assert grid._neighbours_local_ij(1) is None
    indptr, indices, ring = grid.neighbours(2)
    cellset = set(grid.cells.tolist())
    for i, c in enumerate(grid.cells.tolist()):
        got = grid.cells[indices[indptr[i]:indptr[i + 1]]].tolist()
        rings = ring[indptr[i]:indptr[i + 1]]
        assert got[0] == c and rings[0] == 0
        for r in (1, 2):  # ring r: the in-grid cells of h3.grid_ring(c, r), ascending position
            want = sorted(d for d in h3.api.basic_int.grid_ring(c, r) if d in cellset)
            assert [g for g, q in zip(got, rings) if q == r] == want


def test_from_events_memoises_the_assignment(sim_city):
    _, events, _ = sim_city
    ev = rg.EventSet.from_frame(pd.DataFrame({"timestamp": events.timestamps, "lat": events.lat, "lon": events.lon}))
    grid = HexGrid.from_events(ev, resolution=10, buffer_rings=1)
    assert grid._token in ev._cells_cache
    np.testing.assert_array_equal(grid.assign(ev), grid.index_of(rg.latlng_to_cells(ev.lat, ev.lon, 10)))


@pytest.mark.parametrize("res", [0, 5, 10, 15])
def test_cell_ids_centroids_and_areas_equal_h3_per_cell(rng, res):
    cells = np.unique(rg.latlng_to_cells(rng.uniform(-80, 80, 1500), rng.uniform(-180, 180, 1500), res))
    pent = [h3.str_to_int(p) for p in h3.get_pentagons(res)[:2]]
    grid = HexGrid(np.concatenate([cells, np.asarray(pent, dtype=np.uint64)]), res)
    assert grid.cell_ids.tolist() == [h3.int_to_str(int(c)) for c in grid.cells]
    assert not grid.cell_ids.flags.writeable
    ll = np.array([h3.api.basic_int.cell_to_latlng(int(c)) for c in grid.cells])
    np.testing.assert_array_equal(np.column_stack(grid.centroids_latlon), ll)
    np.testing.assert_array_equal(grid.area_m2, [h3.cell_area(h3.int_to_str(int(c)), unit="m^2") for c in grid.cells])


@pytest.mark.parametrize("city", sorted(CITIES))
@pytest.mark.parametrize("res", [8, 10, 12])
def test_lattice_assignment_equals_h3_on_random_and_near_edge_points(rng, city, res):
    lat0, lon0 = CITIES[city]
    sd = 0.01 if res == 12 else 0.04
    grid = _city_grid(rng, lat0, lon0, res, sd=sd, n=3000)
    assert grid._lattice_map() is not None  # the fast path is what is tested here
    sub = grid.cells[rng.choice(len(grid), 60, replace=False)]
    ep = np.concatenate([_near_edge_points(sub, eps) for eps in (1e-7, 1e-9, 1e-11)])
    lat = np.concatenate([ep[:, 0], lat0 + rng.normal(0, 1.3 * sd, 5000), [10.0, -60.0]])  # some far away
    lon = np.concatenate([ep[:, 1], lon0 + rng.normal(0, 1.3 * sd, 5000), [10.0, 120.0]])
    f = h3.api.basic_int.latlng_to_cell
    expected = grid.index_of(np.array([f(a, b, res) for a, b in zip(lat.tolist(), lon.tolist())], dtype=np.uint64))
    np.testing.assert_array_equal(grid.assign(lat, lon), expected)
    assert (expected >= 0).mean() > 0.2 and (expected == -1).any()


def test_lattice_assignment_across_base_cells_and_faces(rng):
    # grids around res-0 cell vertices: seams between base cells and icosahedron faces;
    # the map is refused where it cannot be fitted, and exact where it is used
    used = refused = 0
    for lat0, lon0 in _base_cell_vertices():
        grid = _city_grid(rng, lat0, lon0, 8, sd=0.2, n=2000)
        lat = np.concatenate([lat0 + rng.normal(0, 0.25, 1500), _near_edge_points(grid.cells[:20], 1e-9)[:, 0]])
        lon = np.concatenate([lon0 + rng.normal(0, 0.25, 1500), _near_edge_points(grid.cells[:20], 1e-9)[:, 1]])
        used, refused = (used + 1, refused) if grid._lattice_map() is not None else (used, refused + 1)
        np.testing.assert_array_equal(grid.assign(lat, lon), grid.index_of(rg.latlng_to_cells(lat, lon, 8)))
    assert used >= 5


def test_lattice_assignment_near_a_pentagon_uses_h3(rng):
    p = h3.str_to_int(h3.get_pentagons(8)[7])
    grid = HexGrid(np.asarray(h3.api.basic_int.grid_disk(p, 6), dtype=np.uint64), 8)
    assert grid._lattice_map() is None
    lat0, lon0 = h3.api.basic_int.cell_to_latlng(p)
    lat, lon = lat0 + rng.normal(0, 0.05, 2000), lon0 + rng.normal(0, 0.05, 2000)
    np.testing.assert_array_equal(grid.assign(lat, lon), grid.index_of(rg.latlng_to_cells(lat, lon, 8)))


@pytest.mark.parametrize("city", sorted(CITIES))
@pytest.mark.parametrize("res", [9, 11])
def test_event_cells_from_a_sampled_lattice_equal_h3(rng, city, res):
    from riskgrid.grid import EVENT_SAMPLE, _event_cells

    lat0, lon0 = CITIES[city]
    n = 5 * EVENT_SAMPLE
    lat, lon = lat0 + rng.normal(0, 0.03, n), lon0 + rng.normal(0, 0.04, n)
    ep = np.concatenate([_near_edge_points(np.unique(rg.latlng_to_cells(lat[:60], lon[:60], res)), e) for e in (1e-8, 1e-10)])
    lat = np.concatenate([lat, ep[:, 0], [0.0, -45.0]])
    lon = np.concatenate([lon, ep[:, 1], [0.0, 170.0]])
    order = rng.permutation(lat.size)
    lat, lon = lat[order], lon[order]
    f = h3.api.basic_int.latlng_to_cell
    expected = np.array([f(a, b, res) for a, b in zip(lat.tolist(), lon.tolist())], dtype=np.uint64)
    np.testing.assert_array_equal(_event_cells(lat, lon, res), expected)
