"""Patrol zones: compact and greedy selection against brute-force references, and the zone constraints."""

from collections import deque

import h3
import numpy as np
import pytest
from h3.api import numpy_int as h3i

import riskgrid as rg
from riskgrid.geo import haversine_m
from naive_zones import grid_distance_matrix, naive_select_compact, naive_select_zones
from riskgrid.models import CountHotspot


def _disk_grid(radius=6, drop=0.0, seed=0):
    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    cells = np.asarray(h3i.grid_disk(c, radius), dtype=np.uint64)
    if drop:
        rng = np.random.default_rng(seed)
        cells = cells[rng.random(cells.size) >= drop]  # holes and islands
    return rg.HexGrid.from_cells(cells)


def _bfs_connected(zone_cells, grid):
    indptr, indices, _ = grid.neighbours(1)
    members = set(int(i) for i in zone_cells)
    start = next(iter(members))
    seen, todo = {start}, deque([start])
    while todo:
        i = todo.popleft()
        for j in indices[indptr[i]:indptr[i + 1]]:
            j = int(j)
            if j in members and j not in seen:
                seen.add(j)
                todo.append(j)
    return seen == members


def _check_constraints(zs, grid, n_zones, max_cells, gap, max_diameter_m=None):
    assert len(zs.zones) <= n_zones
    assert [z.number for z in zs.zones] == list(range(1, len(zs) + 1))
    lat, lon = grid.centroids_latlon
    all_cells = np.concatenate([z.cells for z in zs.zones]) if zs.zones else np.zeros(0, int)
    assert np.unique(all_cells).size == all_cells.size  # no overlap
    for z in zs.zones:
        assert 1 <= len(z) <= max_cells
        assert _bfs_connected(z.cells, grid)
        assert list(z.h3) == [h3.int_to_str(int(grid.cells[i])) for i in z.cells]
        d = max((haversine_m(lat[i], lon[i], lat[j], lon[j]) for i in z.cells for j in z.cells), default=0.0)
        assert z.diameter_m == pytest.approx(d, abs=1e-6)
        if max_diameter_m is not None:
            assert z.diameter_m <= max_diameter_m
        assert z.area_km2 == pytest.approx(grid.area_m2[z.cells].sum() / 1e6)
    for a in range(len(zs.zones)):
        for b in range(a + 1, len(zs.zones)):
            for i in zs.zones[a].cells:
                for j in zs.zones[b].cells:
                    dist = h3i.grid_distance(int(grid.cells[i]), int(grid.cells[j]))
                    assert dist > gap, f"zones {a} and {b} are {dist} rings apart (min_gap_rings={gap})"


@pytest.mark.parametrize("seed", range(6))
def test_greedy_matches_bruteforce_reference(seed):
    rng = np.random.default_rng(seed)
    grid = _disk_grid(radius=5, drop=0.25 if seed % 2 else 0.0, seed=seed)
    # integer-valued risk gives many ties; a share of zeros tests the stopping rules
    risk = rng.integers(0, 6, len(grid)).astype(float) * (rng.random(len(grid)) < 0.7)
    for n_zones, max_cells, gap in [(4, 7, 1), (3, 3, 0), (5, 5, 2), (2, 1, 1), (6, 12, 1)]:
        zs = rg.select_zones(risk, grid, n_zones=n_zones, max_cells=max_cells, min_gap_rings=gap, mode="greedy")
        ref = naive_select_zones(risk, grid.cells, n_zones, max_cells, gap)
        assert [z.cells.tolist() for z in zs.zones] == ref
        _check_constraints(zs, grid, n_zones, max_cells, gap)
        assert zs.captured_risk == pytest.approx(sum(risk[z].sum() for z in ref))


@pytest.mark.parametrize("params", [dict(n_zones=4, max_cells=7, min_gap_rings=1), dict(n_zones=8, max_cells=4, min_gap_rings=3),
                                    dict(n_zones=6, max_cells=10, min_gap_rings=0)])
@pytest.mark.parametrize("mode", ["compact", "greedy"])
def test_constraints_on_simulated_forecast(sim_city, params, mode):
    _, events, grid = sim_city
    risk = CountHotspot(window_days=60).fit(events, grid).predict(horizon_days=1)
    zs = rg.select_zones(risk, grid, mode=mode, **params)
    assert len(zs) == params["n_zones"] and zs.params["mode"] == mode
    diam = zs.params.get("max_diameter_m")
    assert (diam is None) == (mode == "greedy")
    _check_constraints(zs, grid, params["n_zones"], params["max_cells"], params["min_gap_rings"], diam)
    r = risk.values
    assert zs.total_risk == pytest.approx(r.sum())
    top = np.sort(r)[::-1][: zs.n_cells].sum() / r.sum()
    assert zs.best_unconstrained_share == pytest.approx(top)
    assert 0 < zs.captured_share <= zs.best_unconstrained_share + 1e-12
    if mode == "greedy":  # the first zone is seeded at the highest cell
        assert r[zs.zones[0].cells[0]] == r.max()
    else:  # the best compact set holds at least as much as the best single cell, and zones come best first
        assert zs.zones[0].risk >= r.max()
        assert all(a.risk >= b.risk - 1e-12 for a, b in zip(zs.zones, zs.zones[1:]))
    cz = zs.cell_zone
    assert (cz > 0).sum() == zs.n_cells and set(np.unique(cz[cz > 0])) == set(range(1, len(zs) + 1))
    d = zs.to_dict()
    assert d["n_cells"] == zs.n_cells and [z["zone"] for z in d["zones"]] == list(range(1, len(zs) + 1))
    for z in zs.zones:
        assert z.share == pytest.approx(r[z.cells].sum() / r.sum())
        assert z.best_same_area_share == pytest.approx(np.sort(r)[::-1][: len(z)].sum() / r.sum())
        assert z.gap_share >= -1e-12 and (mode == "greedy" or z.exact)
    assert zs.gap_share == pytest.approx(zs.best_unconstrained_share - zs.captured_share)


def _point_in_ring(x, y, ring):
    inside = False
    for (x0, y0), (x1, y1) in zip(ring[:-1], ring[1:]):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _signed_area(ring):
    a = np.asarray(ring)
    return 0.5 * np.sum(a[:-1, 0] * a[1:, 1] - a[1:, 0] * a[:-1, 1])


def test_zone_geojson_is_rfc7946_and_covers_its_cells(sim_city):
    _, events, grid = sim_city
    risk = CountHotspot(window_days=60).fit(events, grid).predict(horizon_days=1)
    zs = rg.select_zones(risk, grid, n_zones=4, max_cells=7, min_gap_rings=1)
    meta = {"window_start": "2024-07-01T00:00:00", "horizon_days": 1.0, "units": "expected events in the window",
            "model": "CountHotspot"}
    fc = zs.to_geojson(metadata=meta)
    assert fc["riskgrid"] == meta
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(zs)
    lat, lon = grid.centroids_latlon
    indptr, indices, _ = grid.neighbours(1)
    for k, (feat, z) in enumerate(zip(fc["features"], zs.zones)):
        g = feat["geometry"]
        assert g["type"] in ("Polygon", "MultiPolygon")
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        for rings in polys:
            for m, ring in enumerate(rings):
                assert ring[0] == ring[-1] and len(ring) >= 4
                a = np.asarray(ring)
                assert (np.abs(a[:, 0]) <= 180).all() and (np.abs(a[:, 1]) <= 90).all()
                assert np.allclose(a[:, 0].mean(), lon.mean(), atol=0.5)  # lon first
                assert (_signed_area(ring) > 0) == (m == 0)  # CCW exterior, CW holes
        ext = polys[0][0]
        for i in z.cells:  # zone cells inside, ring-1 neighbours outside
            assert _point_in_ring(lon[i], lat[i], ext)
        for i in z.cells:
            for j in indices[indptr[i]:indptr[i + 1]]:
                if j not in z.cells and len(polys) == 1:
                    assert not _point_in_ring(lon[j], lat[j], ext)
        assert feat["properties"]["zone"] == k + 1 == z.number and feat["properties"]["n_cells"] == len(z)
        assert all(feat["properties"][key] == v for key, v in meta.items())
        assert feat["properties"]["risk"] == pytest.approx(risk.values[z.cells].sum())


def test_edge_cases_and_validation():
    grid = _disk_grid(radius=2)
    n = len(grid)
    assert len(rg.select_zones(np.zeros(n), grid)) == 0
    zs = rg.select_zones(np.zeros(n), grid)
    assert zs.captured_share == 0 and zs.best_unconstrained_share == 0
    assert len(rg.select_zones(np.ones(n), grid, n_zones=0)) == 0
    one = np.zeros(n)
    one[3] = 1.0
    zs = rg.select_zones(one, grid, n_zones=3, max_cells=7)
    assert len(zs) == 1 and zs.zones[0].cells.tolist() == [3] and zs.captured_share == 1.0
    # everything fits in one zone when max_cells is the grid size and risk is positive
    for mode in ("greedy", "compact"):
        zs = rg.select_zones(np.ones(n), grid, n_zones=2, max_cells=n, min_gap_rings=1, mode=mode, max_diameter_m=1e5)
        assert len(zs.zones[0]) == n and len(zs) == 1 and zs.captured_share == pytest.approx(1.0)
        assert zs.zones[0].exact == (mode == "compact")
    with pytest.raises(ValueError, match="one value per grid cell"):
        rg.select_zones(np.ones(n + 1), grid)
    with pytest.raises(ValueError, match="max_cells"):
        rg.select_zones(np.ones(n), grid, max_cells=0)
    with pytest.raises(ValueError, match="min_gap_rings"):
        rg.select_zones(np.ones(n), grid, min_gap_rings=-1)
    with pytest.raises(ValueError, match="non-finite"):
        rg.select_zones(np.full(n, np.nan), grid)
    with pytest.raises(ValueError, match="mode"):
        rg.select_zones(np.ones(n), grid, mode="round")
    with pytest.raises(ValueError, match="max_diameter_m"):
        rg.select_zones(np.ones(n), grid, max_diameter_m=-5.0)
    with pytest.raises(ValueError, match="max_diameter_m"):
        rg.select_zones(np.ones(n), grid, max_diameter_m=float("nan"))
    with pytest.raises(ValueError, match=">= 0"):
        rg.select_zones(-np.ones(n), grid)
    # a diameter below the cell spacing leaves single cells: the top cells, spaced
    r = np.arange(n, dtype=float)
    zs = rg.select_zones(r, grid, n_zones=3, max_cells=7, min_gap_rings=0, max_diameter_m=10.0)
    assert [z.cells.tolist() for z in zs.zones] == [[n - 1], [n - 2], [n - 3]]
    assert all(z.diameter_m == 0 for z in zs.zones)
    # a (category, cell) array is summed over categories
    two = np.vstack([one, one])
    assert rg.select_zones(two, grid).zones[0].cells.tolist() == [3]


def test_zones_metric_counts_events_inside_zones():
    grid = _disk_grid(radius=4)
    n = len(grid)
    rng = np.random.default_rng(3)
    risk = rng.random(n)
    obs = rng.integers(0, 4, n).astype(float)
    params = dict(n_zones=2, max_cells=4, min_gap_rings=1)
    zs = rg.select_zones(risk, grid, **params)
    inside = np.concatenate([z.cells for z in zs.zones])
    assert rg.zones_metric(risk, obs, grid, **params) == pytest.approx(obs[inside].sum() / obs.sum())
    assert np.isnan(rg.zones_metric(risk, np.zeros(n), grid, **params))
    # events exactly where the forecast is highest -> share 1
    obs2 = np.zeros(n)
    obs2[inside] = 1
    assert rg.zones_metric(risk, obs2, grid, **params) == 1.0
    with pytest.raises(ValueError, match="observed_counts"):
        rg.zones_metric(risk, obs[:-1], grid, **params)


def test_distance_matrix_reference_sanity():
    grid = _disk_grid(radius=2)
    d = grid_distance_matrix(grid.cells)
    indptr, indices, ring = grid.neighbours(2)
    for i in range(len(grid)):
        for j, r in zip(indices[indptr[i]:indptr[i + 1]], ring[indptr[i]:indptr[i + 1]]):
            assert d[i, j] == r


@pytest.mark.parametrize("seed", range(8))
def test_compact_matches_bruteforce_reference(seed):
    """Each compact zone is the exhaustively enumerated best connected set under the size and diameter limits."""
    rng = np.random.default_rng(100 + seed)
    grid = _disk_grid(radius=3, drop=0.2 if seed % 2 else 0.0, seed=seed)
    lat, lon = grid.centroids_latlon
    spacing = rg.zones.default_max_diameter_m(grid) / 2.1
    if seed < 4:  # integer risks: ties and zeros exercise the tie rule (fewer cells, then smallest indices)
        risk = rng.integers(0, 6, len(grid)).astype(float) * (rng.random(len(grid)) < 0.7)
    else:  # continuous, skewed risks
        risk = rng.gamma(0.5, 1.0, len(grid))
    for n_zones, max_cells, gap, diam in [(3, 5, 1, 2.1), (2, 6, 0, 2.7), (4, 4, 1, 1.2), (3, 3, 2, 30.0), (5, 2, 0, 1.5)]:
        d_m = diam * spacing
        zs = rg.select_zones(risk, grid, n_zones=n_zones, max_cells=max_cells, min_gap_rings=gap, max_diameter_m=d_m)
        ref = naive_select_compact(risk, grid.cells, lat, lon, n_zones, max_cells, gap, d_m)
        assert [sorted(z.cells.tolist()) for z in zs.zones] == ref, (n_zones, max_cells, gap, diam)
        _check_constraints(zs, grid, n_zones, max_cells, gap, d_m)
        for z, rz in zip(zs.zones, ref):
            assert z.exact and z.risk == pytest.approx(risk[rz].sum(), rel=1e-12)
            assert np.all(np.diff(risk[z.cells]) <= 0)  # cells listed highest risk first


def test_compact_beats_greedy_strings_under_the_same_diameter():
    """Greedy growth ignores the diameter; compact zones stay inside it and lose nothing on a risk ridge."""
    grid = _disk_grid(radius=4)
    x, y = grid.centroids_xy
    risk = np.exp(-0.5 * (y / 150.0) ** 2) + 1e-3 * np.exp(-0.5 * (x**2 + y**2) / 400.0**2)  # an east-west street
    greedy = rg.select_zones(risk, grid, n_zones=1, max_cells=7, mode="greedy")
    comp = rg.select_zones(risk, grid, n_zones=1, max_cells=7)
    d_m = comp.params["max_diameter_m"]
    assert greedy.zones[0].diameter_m > 2 * d_m  # a string along the street
    assert comp.zones[0].diameter_m <= d_m and len(comp.zones[0]) == 7
    # the exhaustive best under the same limits
    lat, lon = grid.centroids_latlon
    ref = naive_select_compact(risk, grid.cells, lat, lon, 1, 7, 1, d_m)
    assert sorted(comp.zones[0].cells.tolist()) == ref[0]


def test_compact_search_budget_gives_valid_but_inexact_zones():
    rng = np.random.default_rng(5)
    grid = _disk_grid(radius=4)
    risk = rng.random(len(grid))
    full = rg.select_zones(risk, grid, n_zones=2, max_cells=7)
    cut = rg.select_zones(risk, grid, n_zones=2, max_cells=7, max_nodes=3)
    assert all(z.exact for z in full.zones) and not any(z.exact for z in cut.zones)
    _check_constraints(cut, grid, 2, 7, 1, full.params["max_diameter_m"])
    assert cut.zones[0].risk <= full.zones[0].risk
    with pytest.raises(ValueError, match="max_nodes"):
        rg.select_zones(risk, grid, max_nodes=0)


def test_frames_number_zones_from_one():
    rng = np.random.default_rng(9)
    grid = _disk_grid(radius=5)
    risk = rng.gamma(0.5, 1.0, len(grid))
    zs = rg.select_zones(risk, grid, n_zones=3)
    f = zs.to_frame()
    assert f["zone"].tolist() == [1, 2, 3]
    assert f["n_cells"].tolist() == [len(z) for z in zs.zones]
    np.testing.assert_allclose(f["expected_events"], [risk[z.cells].sum() for z in zs.zones])
    np.testing.assert_allclose(f["gap_share"], f["best_same_area_share"] - f["share"])
    assert f["h3"].tolist() == [" ".join(z.h3) for z in zs.zones]
    c = zs.cells_frame(risk)
    assert sorted(c["zone"].unique().tolist()) == [1, 2, 3] and len(c) == zs.n_cells
    rank = np.empty(len(grid), dtype=int)
    rank[np.argsort(-risk, kind="stable")] = np.arange(1, len(grid) + 1)
    assert (c["rank"].to_numpy() == rank[c["cell"].to_numpy()]).all()
    np.testing.assert_array_equal(c["risk"].to_numpy(), risk[c["cell"].to_numpy()])
    assert (zs.cell_zone[c["cell"].to_numpy()] == c["zone"].to_numpy()).all()
    with pytest.raises(ValueError, match="override"):
        zs.to_geojson(metadata={"zone": 5})


def test_products_number_zones_the_same_way(sim_city, tmp_path):
    """The Dataset, its CSV table, the zones GeoJSON and the ZoneSet frames all call the zones 1..n."""
    import json

    from riskgrid.products import risk_dataset, risk_table, write_zones_geojson

    _, events, grid = sim_city
    risk = CountHotspot(window_days=60).fit(events, grid).predict(horizon_days=1)
    zs = rg.select_zones(risk, grid, n_zones=4)
    ds = risk_dataset(risk, zones=zs)
    want = set(range(1, len(zs) + 1))
    assert set(np.unique(ds["zone"].values)) == want | {0}
    table = risk_table(ds)
    for z in zs.zones:
        assert set(table.loc[table.zone == z.number, "h3"]) == set(z.h3)
    fc = json.load(open(write_zones_geojson(zs, tmp_path / "zones.geojson")))
    assert {f["properties"]["zone"] for f in fc["features"]} == want
    assert set(zs.to_frame().zone) == want == set(zs.cells_frame().zone)


@pytest.mark.parametrize("diam", [2.1, 100.0])
def test_compact_large_zones_match_bruteforce(diam):
    """Zones of up to 7 cells on a 19-cell disk (the breadth-first candidate limit of max_cells - 1 steps)."""
    grid = _disk_grid(radius=2)
    lat, lon = grid.centroids_latlon
    d_m = diam * rg.zones.default_max_diameter_m(grid) / 2.1
    for seed in range(3):
        risk = np.random.default_rng(200 + seed).gamma(0.4, 1.0, len(grid))
        risk[np.random.default_rng(seed).random(len(grid)) < 0.3] = 0.0  # zero cells: bridges or left out
        zs = rg.select_zones(risk, grid, n_zones=2, max_cells=7, min_gap_rings=0, max_diameter_m=d_m)
        ref = naive_select_compact(risk, grid.cells, lat, lon, 2, 7, 0, d_m)
        assert [sorted(z.cells.tolist()) for z in zs.zones] == ref
        _check_constraints(zs, grid, 2, 7, 0, d_m)
