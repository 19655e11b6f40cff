import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RISKGRID_QUIET", "1")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a file in ../shared/data, or skip the test with a clear message."""
    path = DATA_DIR / name
    if not path.exists():
        pytest.skip(f"real-data file {path} not present (../shared/data is outside the repository)")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def sim_city():
    import riskgrid as rg

    df = rg.simulate(n_days=200, background_rate=15, theta=0.3, omega=0.3, sigma_m=80, seed=7)
    events = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(events, resolution=9)
    return df, events, grid


@pytest.fixture(scope="module")
def forecast(sim_city):
    """A small CountHotspot forecast of ``sim_city``: (risk, grid, zones, risk Dataset), for the product tests."""
    import riskgrid as rg
    from riskgrid.models import CountHotspot

    _, events, grid = sim_city
    risk = CountHotspot(window_days=60).fit(events, grid, end="2024-07-01").predict("2024-07-01", horizon_days=2)
    zones = rg.select_zones(risk, grid, n_zones=3, max_cells=5, min_gap_rings=1)
    ds = rg.risk_dataset(risk, zones=zones, extra_attrs={"city": "sim", "flag": True})
    return risk, grid, zones, ds


@pytest.fixture(scope="module")
def client():
    """A real 2-worker LocalCluster client (one Numba thread per worker), one per test module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"}
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c
