"""Audit of the exposure log: counts against a naive recount, and a planted feedback loop."""

import json

import h3
import numpy as np
import pandas as pd
import pytest
from h3.api import numpy_int as h3i

import riskgrid as rg
from riskgrid.audit import assign_regions, audit_exposure, gini, longest_streak, run_audit, write_audit
from riskgrid.exposure import append_exposure, exposure_table, read_exposure, source_counts
from riskgrid.models import CountHotspot

CENTRE = (41.85, -87.65)


def _grid(radius=8):
    c = h3i.latlng_to_cell(*CENTRE, 9)
    return rg.HexGrid.from_cells(np.asarray(h3i.grid_disk(c, radius), dtype=np.uint64))


def _halves(grid):
    """Two rectangular regions, West and East of the centre (with a hole in East, to test holes)."""
    lat, lon = grid.centroids_latlon
    lo, hi = lat.min() - 0.01, lat.max() + 0.01
    w, e, m = lon.min() - 0.01, lon.max() + 0.01, CENTRE[1]
    hole = [[m + 0.004, CENTRE[0] - 0.002], [m + 0.004, CENTRE[0] + 0.002], [m + 0.008, CENTRE[0] + 0.002],
            [m + 0.008, CENTRE[0] - 0.002], [m + 0.004, CENTRE[0] - 0.002]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "West"},
         "geometry": {"type": "Polygon", "coordinates": [[[w, lo], [m, lo], [m, hi], [w, hi], [w, lo]]]}},
        {"type": "Feature", "properties": {"name": "East"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[[[m, lo], [e, lo], [e, hi], [m, hi], [m, lo]], hole]]}},
    ]}

    def naive(la, ln):
        if ln < m:
            return "West"
        if m + 0.004 < ln < m + 0.008 and CENTRE[0] - 0.002 < la < CENTRE[0] + 0.002:
            return ""
        return "East"

    return fc, naive


def test_gini_and_streak_against_definitions():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 9, rng.integers(1, 30))
        n = x.size
        ref = 0.0 if x.sum() == 0 else np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean())
        assert gini(x) == pytest.approx(ref, abs=1e-12)
        f = rng.random(40) < 0.6
        best = cur = 0
        for v in f:
            cur = cur + 1 if v else 0
            best = max(best, cur)
        assert longest_streak(f) == best
    assert gini([0, 0, 5]) == pytest.approx(2 / 3) and gini([3, 3, 3]) == 0 and gini([]) == 0


def test_thirty_runs_match_a_naive_recount(tmp_path):
    grid = _grid(6)
    fc, naive_region = _halves(grid)
    rng = np.random.default_rng(11)
    base = rng.gamma(0.6, 1.0, len(grid))
    days = pd.date_range("2017-05-01", periods=30, freq="D")
    for k, day in enumerate(days):
        if k == 17:
            continue  # a night without a run is no break in persistence
        risk = base * rng.gamma(4.0, 0.25, len(grid))
        zs = rg.select_zones(risk, grid, n_zones=3, max_cells=5)
        n_tr = rng.integers(0, 20, len(grid))
        t = exposure_table(risk, grid.cell_ids, zs.cell_zone, top_n=int(rng.integers(3, 12)), n_train=n_tr,
                           n_train_discovered=rng.binomial(n_tr, 0.3))
        append_exposure(tmp_path, day, t, model="KDEHotspot", horizon_days=7)
    append_exposure(tmp_path, days[3], t, model="KDEHotspot", horizon_days=7)  # a rerun of one date
    log = read_exposure(tmp_path)
    res = audit_exposure(log, cells=grid.cell_ids, regions=fc)
    runs = sorted(set(log.run_date))
    assert res.runs == runs and len(runs) == 29
    # naive recount from the rows
    for _, c in res.cells.iterrows():
        rows = log[log.h3 == c.h3]
        assert c.n_flags == rows.run_date.nunique()
        assert c.share_of_runs == pytest.approx(rows.run_date.nunique() / 29)
        assert c.n_zone_flags == rows[rows.zone > 0].run_date.nunique()
        seq = [r in set(rows.run_date) for r in runs]
        best = cur = 0
        for v in seq:
            cur = cur + 1 if v else 0
            best = max(best, cur)
        assert c.longest_streak == best
        la, ln = h3.cell_to_latlng(c.h3)
        assert c.region == naive_region(la, ln)
        if len(rows):
            assert c.n_train == rows.n_train.sum() and c.n_train_discovered == rows.n_train_discovered.sum()
    assert len(res.cells) == len(grid) and (res.cells.n_flags == 0).any()
    assert res.gini == pytest.approx(gini(res.cells.n_flags.to_numpy()))
    # regions: flags, runs flagged, discovered share, recounted row by row
    log_region = np.array([naive_region(*h3.cell_to_latlng(c)) for c in log.h3])
    for _, r in res.regions.iterrows():
        rows = log[log_region == r.region]
        assert r.n_flags == len(rows)
        assert r.runs_flagged == rows.run_date.nunique()
        assert r.discovered_share == pytest.approx(rows.n_train_discovered.sum() / rows.n_train.sum())
        assert r.flag_share == pytest.approx(len(rows) / len(log))
    pr = res.per_run
    for run in runs[:5]:
        tot = len(log[log.run_date == run])
        for nm in ("West", "East"):
            got = pr[(pr.run_date == run) & (pr.region == nm)].flag_share.iloc[0]
            assert got == pytest.approx(((log.run_date == run) & (log_region == nm)).sum() / tot)
    assert res.warnings == []  # no events given: no warning can be raised
    res2, paths2 = run_audit(tmp_path, regions=fc, cells=grid.cell_ids)
    pd.testing.assert_frame_equal(res2.cells, res.cells)
    assert paths2["regions"] == tmp_path / "audit" / "audit_regions.csv"
    assert pd.read_csv(paths2["regions"]).set_index("region").n_flags.to_dict() == \
        res.regions.set_index("region").n_flags.to_dict()
    paths = write_audit(res, tmp_path / "audit", regions=fc)
    assert pd.read_csv(paths["cells"]).n_flags.sum() == res.cells.n_flags.sum()
    assert json.loads(paths["summary"].read_text())["runs"] == 29
    assert paths["map"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_assign_regions_validation():
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Point",
                                                                                                      "coordinates": [0, 0]}}]}
    with pytest.raises(ValueError, match="Polygon"):
        assign_regions([0.0], [0.0], fc)
    with pytest.raises(ValueError, match="FeatureCollection"):
        assign_regions([0.0], [0.0], {"type": "Feature"})
    with pytest.raises(ValueError, match="no property"):
        assign_regions([0.0], [0.0], _halves(_grid(2))[0], key="district")
    with pytest.raises(ValueError, match="columns"):
        audit_exposure(pd.DataFrame({"h3": []}))


def _simulate_nights(feedback: bool, n_nights=30, seed=3):
    """Nightly runs on a grid split into West and East with the same rate of resident-reported crime.

    Reported crime follows a fixed rate surface, mirror-symmetric between West and East (so each region expects
    half of the reported events). Every night a CountHotspot is refit on the last 28 days of records, 3 compact
    zones and the top 30 cells are flagged, and patrols go to the region holding most flagged cells, where they
    *discover* extra records (stops, narcotics arrests) in every cell they patrol. A past operation left
    discovered records in a few West cells. With ``feedback`` the discovered records enter the training data
    (the loop of Lum & Isaac 2016 / Ensign et al. 2018); without it the model is fit on reported records only.
    """
    grid = _grid(8)
    lat, lon = grid.centroids_latlon
    x, y = grid.centroids_xy
    x = x - 0.5 * (x.max() + x.min())
    west = lon < CENTRE[1]
    bumps = [(900.0, 600.0, 0.5), (1500.0, -900.0, 0.35), (400.0, -300.0, 0.25), (2000.0, 1200.0, 0.3)]
    rate = 0.1 + 3 * sum(a * np.exp(-0.5 * ((np.abs(x) - bx) ** 2 + (y - by) ** 2) / 350.0**2) for bx, by, a in bumps)
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2017-05-01")
    rows = []

    def add(day, cell_counts, source):
        for i in np.flatnonzero(cell_counts):
            for _ in range(int(cell_counts[i])):
                rows.append((day + pd.Timedelta(hours=float(rng.uniform(0, 24))), lat[i], lon[i], source))

    for d in range(-40, 0):
        add(t0 + pd.Timedelta(days=d), rng.poisson(rate), "reported")
    op = np.zeros(len(grid))
    op[np.flatnonzero(west)[:: max(1, west.sum() // 6)][:6]] = 3
    add(t0 - pd.Timedelta(days=5), op, "discovered")
    nights = []
    for k in range(n_nights):
        day = t0 + pd.Timedelta(days=k)
        df = pd.DataFrame(rows, columns=["timestamp", "lat", "lon", "source"])
        train = df if feedback else df[df.source == "reported"]
        ev = rg.EventSet.from_frame(train.reset_index(drop=True))
        risk = CountHotspot(window_days=28).fit(ev, grid, end=day).predict(day, horizon_days=1).values
        zs = rg.select_zones(risk, grid, n_zones=3, max_cells=7)
        win = df[(df.timestamp >= day - pd.Timedelta(days=28)) & (df.timestamp < day)]
        cell = grid.assign(win.lat.to_numpy(), win.lon.to_numpy())
        n_tr, n_disc = source_counts(cell, win.source.to_numpy(), len(grid))
        flagged = exposure_table(risk, grid.cell_ids, zs.cell_zone, top_n=30, n_train=n_tr, n_train_discovered=n_disc)
        nights.append((day, flagged))
        # the day after the run: residents report as always, patrols discover where they are sent
        add(day, rng.poisson(rate), "reported")
        idx = grid.index_of(np.array([h3.str_to_int(c) for c in flagged.h3], dtype=np.uint64))
        patrolled = west if west[idx].sum() >= (~west[idx]).sum() else ~west
        add(day, rng.poisson(0.3 * patrolled), "discovered")
    events = pd.DataFrame(rows, columns=["timestamp", "lat", "lon", "source"])
    return grid, nights, events


@pytest.mark.parametrize("feedback,seed", [(True, 3), (True, 4), (False, 3), (False, 8)])
def test_planted_feedback_loop_is_flagged(tmp_path, feedback, seed):
    grid, nights, events = _simulate_nights(feedback, seed=seed)
    for day, flagged in nights:
        append_exposure(tmp_path, day, flagged, model="CountHotspot", horizon_days=1)
    fc, _ = _halves(grid)
    log = read_exposure(tmp_path)
    res = audit_exposure(log, cells=grid.cell_ids, regions=fc, events=events)
    reg = res.regions.set_index("region")
    if feedback:  # the loop runs away to one region (the one patrolled first): that region alone is warned about
        hot = reg["flag_share_change"].idxmax()
        cold = "East" if hot == "West" else "West"
        assert reg.loc[hot, "warning"] and not reg.loc[cold, "warning"]
        assert len(res.warnings) == 1 and repr(hot) in res.warnings[0]
        assert reg.loc[hot, "flag_share_change"] >= 0.1 and reg.loc[hot, "excess_share_end"] >= 0.1
        assert abs(reg.loc[hot, "reported_share_change"]) < 0.05  # residents report as before
        assert reg.loc[hot, "discovered_share"] > reg.loc[cold, "discovered_share"]
    else:  # flags follow reported crime only: shares wander, no warning
        assert res.warnings == [] and not reg["warning"].any()
    # discovered share per region against a naive recount over the log rows
    for nm in ("West", "East"):
        num = den = 0
        for _, row in log.iterrows():
            la, ln = h3.cell_to_latlng(row.h3)
            if (ln < CENTRE[1]) == (nm == "West") and not (
                    nm == "East" and CENTRE[1] + 0.004 < ln < CENTRE[1] + 0.008 and abs(la - CENTRE[0]) < 0.002):
                num += row.n_train_discovered
                den += row.n_train
        want = num / den if den else np.nan
        assert reg.loc[nm, "discovered_share"] == pytest.approx(want, nan_ok=True)
    # the reported-event share is computed from reported records only
    pr = res.per_run
    last = pr[pr.run_date == res.runs[-1]].set_index("region")
    day = pd.Timestamp(res.runs[-1])
    w = events[(events.source == "reported") & (events.timestamp >= day - pd.Timedelta(days=28)) & (events.timestamp < day)]
    reg_of = dict(zip(res.cells.h3, res.cells.region))
    er = np.array([reg_of.get(h3.latlng_to_cell(a, b, 9), "") for a, b in zip(w.lat, w.lon)])
    assert last.loc["West", "reported_share"] == pytest.approx((er == "West").sum() / (er != "").sum())


def test_audit_command_on_thirty_nights(tmp_path):
    """``riskgrid audit OUT_ROOT --regions ... --events ...`` on the planted loop: counts, warning, files."""
    from click.testing import CliRunner

    from riskgrid.commands.audit import command

    grid, nights, events = _simulate_nights(True, seed=3)
    for day, flagged in nights:
        append_exposure(tmp_path, day, flagged, model="CountHotspot", horizon_days=1)
    fc, _ = _halves(grid)
    (tmp_path / "regions.geojson").write_text(json.dumps(fc))
    events.rename(columns={"source": "provenance"}).to_parquet(tmp_path / "events.parquet")
    r = CliRunner().invoke(command, [str(tmp_path), "--regions", str(tmp_path / "regions.geojson"), "--events",
                                     str(tmp_path / "events.parquet"), "--source-column", "provenance"])
    assert r.exit_code == 0, r.output
    assert "30 runs from 2017-05-01 to 2017-05-30" in r.output
    assert r.output.count("WARNING: region") == 1
    regions = pd.read_csv(tmp_path / "audit" / "audit_regions.csv").set_index("region")
    log = read_exposure(tmp_path)
    west = np.array([h3.cell_to_latlng(c)[1] < CENTRE[1] for c in log.h3])
    assert regions.loc["West", "n_flags"] == west.sum()  # naive recount
    assert (tmp_path / "audit" / "audit_map.png").exists()
    bad = CliRunner().invoke(command, [str(tmp_path), "--events", str(tmp_path / "events.parquet"), "--source-column",
                                       "nope"])
    assert bad.exit_code != 0 and "nope" in bad.output
