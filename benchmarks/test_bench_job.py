"""The nightly job end to end on Chicago, the rasteriser at about 2,000 x 2,000 and 4,000 x 4,000 pixels, and zone selection.

Run: ``pytest benchmarks/test_bench_job.py --benchmark-only --benchmark-group-by=group``.
Target: the whole Chicago job (two years of events, H3 res 9, GridHawkes with
spill-over 1) under 10 s on an idle 2-core machine (issue 17; ``extra_info["wall_times_s"]``
gives each step); a 2,000 x 2,000 raster in a few seconds.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from h3.api import numpy_int as h3i

import riskgrid as rg
import riskgrid.products as rio
import riskgrid.products.raster as rraster
from naive_zones import naive_select_zones
from riskgrid.models import available_models


def shared_file(name):
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / name
    if not path.exists():
        pytest.skip(f"real-data file {path} not present (../shared/data is outside the repository)")
    return path


def _chicago_config(tmp_path, model):
    return {
        "city": "chicago",
        "events": {"path": str(shared_file("chicago_2016_2017.parquet")), "category": "category"},
        "grid": {"resolution": 9, "buffer_rings": 1},
        "model": model,
        "forecast": {"train_days": 730, "horizon_days": 1},  # both years: 2016-01-01 .. 2017-12-31
        "zones": {"n_zones": 4, "max_cells": 7, "min_gap_rings": 1},
        "outputs": {"raster_pixel_m": 50, "raster_crs": "EPSG:3857"},
    }


MODELS = {
    "GridHawkes(spillover_rings=1)": {"name": "GridHawkes", "params": {"spillover_rings": 1}},
    "CountHotspot (reference)": {"name": "CountHotspot", "params": {"window_days": 365}},
}


@pytest.mark.benchmark(group="nightly job: Chicago 2016-2017, res 9, all products")
@pytest.mark.parametrize("label", list(MODELS))
def test_bench_forecast_job_chicago(benchmark, tmp_path, label):
    spec = MODELS[label]
    if spec["name"] not in available_models():
        pytest.skip(f"{spec['name']} is not in this tree")
    cfg = _chicago_config(tmp_path, spec)
    out = tmp_path / "out"

    def run():
        shutil.rmtree(out, ignore_errors=True)
        return rg.run_forecast(cfg, "2018-01-01", out)

    man = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["n_events"] = man["n_events_used"]
    benchmark.extra_info["n_cells"] = man["grid"]["n_cells"]
    benchmark.extra_info["wall_times_s"] = man["wall_times_s"]
    assert man["n_events_used"] > 500_000


@pytest.fixture(scope="module")
def big_forecast():
    """~36,000 res-9 cells (a disk ~40 km across) with random risk."""
    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    grid = rg.HexGrid.from_cells(np.asarray(h3i.grid_disk(c, 110), dtype=np.uint64))
    rng = np.random.default_rng(0)
    risk = rg.models.risk_dataarray(rng.gamma(0.5, 1.0, len(grid)), grid, model="random", start_days=0.0,
                                    horizon_days=1.0)
    return rg.risk_dataset(risk), grid


@pytest.mark.parametrize("pixel_m", [38.0, 19.0], ids=["2037x1890", "4072x3779"])
@pytest.mark.parametrize("method", ["lattice + blocks + polygons (riskgrid)", "lattice + blocks only",
                                    "per-pixel h3 (reference)"])
def test_bench_rasterize(benchmark, big_forecast, method, pixel_m):
    ds, grid = big_forecast
    benchmark.group = f"rasterize, res 9, {pixel_m:g} m pixels"
    x0, y0, dx, dy, w, h = rraster._raster_frame(grid, pixel_m, "EPSG:3857")
    lon, lat = rio.pixel_centres_lonlat(x0, y0, dx, dy, w, h, "EPSG:3857")
    edge_px = grid.edge_length_m / pixel_m if not method.startswith("per-pixel") else 1.0  # 1.0 -> every pixel
    polygons = "polygons" in method
    rraster._rasterize_ids(lat[:50], lon[:50], grid.resolution, 6.0, polygons)  # compile
    ids = benchmark.pedantic(rraster._rasterize_ids, args=(lat, lon, grid.resolution, edge_px, polygons),
                             rounds=1 if method.startswith("per-pixel") else 3, iterations=1)
    benchmark.extra_info["n_events"] = 0
    benchmark.extra_info["pixels"] = f"{w} x {h}"
    assert ids.shape == (h, w) and w * h > 3_500_000


@pytest.mark.benchmark(group="rasterize + write COG 2037 x 1890")
def test_bench_write_geotiff(benchmark, big_forecast, tmp_path):
    ds, grid = big_forecast
    rio.write_geotiff(ds, tmp_path / "warm.tif", pixel_m=200, grid=grid)
    benchmark.pedantic(rio.write_geotiff, args=(ds, tmp_path / "r.tif"), kwargs=dict(pixel_m=38.0, grid=grid),
                       rounds=2, iterations=1)
    benchmark.extra_info["n_events"] = 0


@pytest.mark.benchmark(group="select_zones (469 cells)")
@pytest.mark.parametrize("method", ["greedy (riskgrid)", "brute force (reference)"])
def test_bench_select_zones(benchmark, method):
    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    grid = rg.HexGrid.from_cells(np.asarray(h3i.grid_disk(c, 12), dtype=np.uint64))
    risk = np.random.default_rng(1).gamma(0.5, 1.0, len(grid))
    if method.startswith("greedy"):
        zs = benchmark(rg.select_zones, risk, grid, n_zones=4, max_cells=7, min_gap_rings=1)
        assert len(zs) == 4
    else:
        ref = benchmark.pedantic(naive_select_zones, args=(risk, grid.cells, 4, 7, 1), rounds=1, iterations=1)
        assert len(ref) == 4
    benchmark.extra_info["n_events"] = 0
