"""Exposure log: content, idempotent reruns, atomic appends under SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

import riskgrid as rg
from riskgrid.exposure import EXPOSURE_COLUMNS, append_exposure, exposure_dir, exposure_table, read_exposure, source_counts


def _grid_and_risk(seed=0, radius=4):
    from h3.api import numpy_int as h3i

    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    grid = rg.HexGrid.from_cells(np.asarray(h3i.grid_disk(c, radius), dtype=np.uint64))
    risk = np.random.default_rng(seed).gamma(0.5, 1.0, len(grid))
    return grid, risk


def test_exposure_table_flags_zone_and_top_cells():
    grid, risk = _grid_and_risk()
    zs = rg.select_zones(risk, grid, n_zones=2, max_cells=4)
    t = exposure_table(risk, grid.cell_ids, zs.cell_zone, top_n=5)
    rank = np.empty(len(grid), dtype=int)
    rank[np.argsort(-risk, kind="stable")] = np.arange(1, len(grid) + 1)
    want = set(np.flatnonzero(zs.cell_zone > 0)) | set(np.flatnonzero(rank <= 5))
    assert set(grid.index_of(np.array([int(h, 16) for h in t["h3"]], dtype=np.uint64))) == want
    assert t["rank"].is_monotonic_increasing and len(t) == len(want)
    for _, row in t.iterrows():
        i = int(grid.index_of(np.array([int(row.h3, 16)], dtype=np.uint64))[0])
        assert row.risk == risk[i] and row["rank"] == rank[i] and row.zone == zs.cell_zone[i]
    assert t["n_train"].isna().all()
    with pytest.raises(ValueError, match="top_n"):
        exposure_table(risk, grid.cell_ids, top_n=-1)
    with pytest.raises(ValueError, match="zone"):
        exposure_table(risk, grid.cell_ids, zone=np.zeros(3))


def test_source_counts_matches_loop():
    rng = np.random.default_rng(1)
    cell = rng.integers(-1, 10, 500)
    src = rng.choice(["reported", "discovered", "call"], 500)
    n, d = source_counts(cell, src, 10)
    for k in range(10):
        assert n[k] == sum(1 for c in cell if c == k)
        assert d[k] == sum(1 for c, s in zip(cell, src) if c == k and s == "discovered")


def test_append_read_and_reruns_do_not_duplicate(tmp_path):
    grid, risk = _grid_and_risk()
    zs = rg.select_zones(risk, grid, n_zones=3, max_cells=5)
    n_train = np.arange(len(grid))
    t1 = exposure_table(risk, grid.cell_ids, zs.cell_zone, top_n=10, n_train=n_train, n_train_discovered=n_train // 3)
    for day in ("2017-06-01", "2017-06-02", "2017-06-03"):
        append_exposure(tmp_path, day, t1, model="KDEHotspot", horizon_days=7)
    log = read_exposure(tmp_path)
    assert list(log.columns) == list(EXPOSURE_COLUMNS)
    assert len(log) == 3 * len(t1)
    assert log.groupby("run_date").size().tolist() == [len(t1)] * 3
    # rerun of 06-02 with a different forecast: that date's rows are replaced, nothing duplicated
    _, risk2 = _grid_and_risk(seed=5)
    t2 = exposure_table(risk2, grid.cell_ids, top_n=4)
    for _ in range(3):
        append_exposure(tmp_path, pd.Timestamp("2017-06-02 06:30"), t2, model="KDEHotspot", horizon_days=7)
    log = read_exposure(tmp_path)
    assert log.groupby("run_date").size().to_dict() == {"2017-06-01": len(t1), "2017-06-02": 4, "2017-06-03": len(t1)}
    day2 = log[log.run_date == "2017-06-02"].reset_index(drop=True)
    pd.testing.assert_frame_equal(day2[["h3", "risk", "rank", "zone"]], t2[["h3", "risk", "rank", "zone"]])
    assert day2["n_train"].isna().all()
    day1 = log[log.run_date == "2017-06-01"].reset_index(drop=True)
    np.testing.assert_array_equal(day1["n_train_discovered"].to_numpy(dtype=int), t1["n_train_discovered"].to_numpy(dtype=int))
    assert (log.model == "KDEHotspot").all() and (log.horizon_days == 7.0).all()
    # another job on the same date is kept beside it; filters
    append_exposure(tmp_path, "2017-06-02", t2, model="SEPP", horizon_days=1, name="sepp nightly")
    assert len(read_exposure(tmp_path)) == 2 * len(t1) + 8
    assert set(read_exposure(tmp_path, name="sepp nightly").run_date) == {"2017-06-02"}
    assert set(read_exposure(tmp_path, start="2017-06-02", end="2017-06-02").name) == {"kdehotspot", "sepp-nightly"}
    # pandas / pyarrow read the folder as a dataset too
    assert len(pd.read_parquet(exposure_dir(tmp_path))) == len(read_exposure(tmp_path))
    assert read_exposure(tmp_path / "nothing").empty
    with pytest.raises(ValueError, match="run_date"):
        append_exposure(tmp_path, "not a date", t2, model="m", horizon_days=1)
    with pytest.raises(ValueError, match="missing"):
        append_exposure(tmp_path, "2017-06-02", t2.drop(columns="zone"), model="m", horizon_days=1)
    with pytest.raises(ValueError, match="horizon_days"):
        append_exposure(tmp_path, "2017-06-02", t2, model="m", horizon_days=0)


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from riskgrid.exposure import append_exposure
    root, n = sys.argv[1], int(sys.argv[2])
    k = 0
    while True:  # rewrites the same three dates forever, each part with n rows whose content depends on the date only
        for d in range(3):
            day = f"2017-06-0{d + 1}"
            t = pd.DataFrame({"h3": np.char.add("89", np.arange(n).astype(str)), "risk": np.arange(n) * (d + 1.0),
                              "rank": np.arange(1, n + 1), "zone": np.arange(n) % 5})
            append_exposure(root, day, t, model="M", horizon_days=1.0)
            k += 1
            print(k, flush=True)
    """
)


def _check_log(root, n):
    log = read_exposure(root)  # every final part must read in full
    for day, g in log.groupby("run_date"):
        d = int(day[-1]) - 1
        assert len(g) == n, f"{day}: {len(g)} rows, expected {n}"
        np.testing.assert_array_equal(g["risk"].to_numpy(), np.arange(n) * (d + 1.0))
        np.testing.assert_array_equal(g["zone"].to_numpy(), np.arange(n) % 5)
    return log


def test_sigkill_during_append_never_tears_the_log(tmp_path):
    n = 300_000
    root = tmp_path / "out"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *sys.path])
    folder = exposure_dir(root)
    kills_mid_write = 0
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(root), str(n)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            # wait until a temporary part exists (a write is under way), after at least `attempt` finished appends
            deadline = time.monotonic() + 120
            seen = False
            while time.monotonic() < deadline and proc.poll() is None:
                if folder.is_dir() and any(p.name.startswith(".tmp-") for p in folder.iterdir()):
                    if attempt == 0 or len([p for p in folder.iterdir() if p.name.startswith("part-")]) >= 1:
                        seen = True
                        break
                time.sleep(0.002)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert seen, "the writer never started a part"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills_mid_write += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        _check_log(root, n)
    assert kills_mid_write == 4
    # a later append of the same run removes what the killed writer left
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]
    t = pd.DataFrame({"h3": ["89a"], "risk": [1.0], "rank": [1], "zone": [1]})
    for day in ("2017-06-01", "2017-06-02", "2017-06-03"):
        append_exposure(root, day, t, model="M", horizon_days=1.0)
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")], leftovers
    assert len(read_exposure(root)) == 3
