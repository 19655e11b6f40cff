"""The HTML briefing: structure (always) and a real headless browser (when one is installed)."""

import base64
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from h3.api import numpy_int as h3i

import riskgrid as rg
from riskgrid.products.briefing import (CAVEATS, _fmt_events, render_briefing, write_briefing, zone_flag_history,
                                        zone_map_png)

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "area", "base", "col", "embed", "track", "wbr"}


class _Tree(HTMLParser):
    """Collects ids, text per element id, attributes with URLs, and checks that tags are balanced."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.urls, self.imgs = [], [], [], []
        self.text_by_id, self.open_ids, self.classes = {}, [], {}
        self.all_text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href", "srcset", "data", "action"):
            if k in a:
                self.urls.append(a[k])
        if tag == "img":
            self.imgs.append(a)
        if tag in VOID:
            return
        self.stack.append(tag)
        self.open_ids.append(a.get("id"))
        if a.get("id"):
            self.text_by_id[a["id"]] = []
        if a.get("class"):
            self.classes.setdefault(a["class"], 0)
            self.classes[a["class"]] += 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()
        self.open_ids.pop()

    def handle_data(self, data):
        self.all_text.append(data)
        for i in self.open_ids:
            if i:
                self.text_by_id[i].append(data)

    def text(self, id_):
        return " ".join(" ".join(self.text_by_id[id_]).split())


def _png(color=(0.2, 0.4, 0.8)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2), dpi=50)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1, 0, 1], color=color)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@pytest.fixture(scope="module")
def zones():
    c = h3i.latlng_to_cell(41.85, -87.65, 9)
    grid = rg.HexGrid.from_cells(np.asarray(h3i.grid_disk(c, 7), dtype=np.uint64))
    risk = np.random.default_rng(4).gamma(0.5, 0.3, len(grid))
    return rg.select_zones(risk, grid, n_zones=4, max_cells=7), grid, risk


def _inputs(zs):
    expl = {z.number: {"background_share": 0.25 + 0.1 * z.number, "top_categories": [("BURGLARY", 0.6), ("THEFT", 0.3)],
                       "n_events": 3 + z.number, "first_event": "2017-05-20", "last_event": "2017-05-30",
                       "discovered_share": 0.05 * z.number} for z in zs.zones}
    intervals = pd.DataFrame({"zone": [z.number for z in zs.zones], "low": [0.5 * z.risk for z in zs.zones],
                              "high": [1.8 * z.risk for z in zs.zones]})
    trends = {z.number: [("05-29", 1.0), ("05-30", 1.5), ("05-31", 2.0)] for z in zs.zones}
    return dict(explanations=expl, intervals=intervals, interval_level="90% interval", trends=trends,
                trend_label="expected events in the zone")


def test_structure_every_zone_its_why_and_the_caveats(zones, tmp_path):
    zs, grid, risk = zones
    png = _png()
    zmaps = {z.number: zone_map_png(risk, grid, zs, z.number) for z in zs.zones}
    html = render_briefing(zs, forecast_start="2017-06-01", horizon_days=7, map_png=png, city="Chicago", zone_maps=zmaps,
                           model="KDEHotspot", units="burglaries", last_event="2017-05-31 22:10",
                           skill={"hit rate, top 5% of area": 0.31234, "PAI": 6.2, "backtest period": "Jan-May 2017"},
                           skill_note="52 weekly origins", places={1: "near <Halsted & 63rd>"},
                           extra_caveats=["Zone 3 borders a park: counts there are low-volume."], **_inputs(zs))
    tree = _Tree()
    tree.feed(html)
    tree.close()
    assert not tree.errors and not tree.stack, (tree.errors, tree.stack)
    assert html.startswith("<!DOCTYPE html>")
    # self-contained: the only URLs are the embedded map and geo: links
    assert all(u.startswith("data:image/png;base64,") or u.startswith("geo:") for u in tree.urls), tree.urls
    assert len(tree.imgs) == 1 + len(zs) and base64.b64decode(tree.imgs[0]["src"].split(",", 1)[1]) == png
    for z, img in zip(zs.zones, tree.imgs[1:]):  # one close-up per zone, in zone order
        assert img["alt"] == f"Close-up map of zone {z.number}"
        assert base64.b64decode(img["src"].split(",", 1)[1]) == zmaps[z.number]
    assert "http://" not in html and "https://" not in html
    assert len(zs) == 4
    for z in zs.zones:
        t = tree.text(f"zone-{z.number}")
        assert t.startswith(f"Zone {z.number}")
        assert f"{z.area_km2:.2f} km²" in t and f"{z.diameter_m:.0f} m across" in t
        bg = 0.25 + 0.1 * z.number
        assert f"{100 * bg:.0f}% of its expected count is long-term background" in t
        assert f"{100 * (1 - bg):.0f}% comes from recent incidents" in t
        assert "burglary (60%), theft (30%)" in t and f"{3 + z.number} recent incidents between 20 May 2017 and 30 May 2017" in t
        assert all(h in t for h in z.h3)
        lo, hi = 0.5 * z.risk, 1.8 * z.risk
        assert f"in the window (likely between {_fmt_events(lo)} and {_fmt_events(hi)}, 90% interval); " in t
        assert f"{_fmt_events(z.risk)} in the window" in t
        assert "05-29: 1.0 → 05-30: 1.5 → 05-31: 2.0 (rising)" in t
    assert "near <Halsted & 63rd>" in tree.text("zone-1")  # escaped in the source, shown as text
    assert "<Halsted" not in html and "&lt;Halsted &amp; 63rd&gt;" in html
    caveats = tree.text("caveats")
    for c in CAVEATS:
        assert " ".join(c.split()) in caveats
    assert "NOT a zero-tolerance initiative" in caveats and "building relationships" in caveats
    assert "Zone 3 borders a park" in caveats
    assert "Wed 31 May 2017 22:10" in tree.text("freshness") and "0.1 days before the window starts" in tree.text("freshness")
    skill = tree.text("skill")
    assert "0.312" in skill and "PAI 6.2" in skill and "52 weekly origins" in skill
    summary = tree.text("summary")
    assert f"{100 * zs.captured_share:.1f}%" in summary or f"{100 * zs.captured_share:.0f}%" in summary
    p = write_briefing(tmp_path / "out" / "briefing.html", zs, forecast_start="2017-06-01", horizon_days=7, map_png=png)
    assert p.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [q.name for q in p.parent.iterdir()] == ["briefing.html"]


def test_minimal_briefing_says_what_is_missing(zones):
    zs, _, _ = zones
    html = render_briefing(zs, forecast_start="2017-06-01", horizon_days=1)
    tree = _Tree()
    tree.feed(html)
    assert not tree.errors
    assert "No map image was supplied" in html and "No recent backtest was supplied" in html
    assert "Date of the latest record: not given" in html
    for z in zs.zones:
        assert "No breakdown into long-term background and recent incidents was supplied" in tree.text(f"zone-{z.number}")
    # same inputs, same bytes (no time stamps unless issued= is given)
    assert html == render_briefing(zs, forecast_start="2017-06-01", horizon_days=1)


def test_drivers_are_said_family_by_family(zones):
    """A model without a background / triggered split (FeatureForecaster) explains a zone by what raises it."""
    zs, _, _ = zones
    expl = {1: {"drivers": [("incidents of the forecast types in the past year and longer", 4.04),
                            ("NARCOTICS incidents", 1.26)]},
            2: {"drivers": []}, 3: {"drivers": [("cell area", float("inf"))]}}
    tree = _Tree()
    tree.feed(render_briefing(zs, forecast_start="2017-06-01", horizon_days=7, explanations=expl))
    one, two, three = (tree.text(f"zone-{n}") for n in (1, 2, 3))
    assert ("What the model sees here: if its incidents of the forecast types in the past year and longer were an "
            "average cell's, the forecast would be 4 times lower; if its NARCOTICS incidents were an average cell's, "
            "the forecast would be 1.3 times lower.") in one
    assert "None of the model's input families" in two and "What the model sees" not in two
    assert "the forecast would be near zero" in three
    for t in (one, two, three):
        assert "long-term background" not in t  # no split is claimed
    assert "No breakdown into long-term background" in tree.text("zone-4")  # no explanation given for zone 4


def test_briefing_validation(zones):
    zs, _, _ = zones
    with pytest.raises(ValueError, match="PNG"):
        render_briefing(zs, forecast_start="2017-06-01", horizon_days=1, map_png=b"GIF89a")
    with pytest.raises(ValueError, match="zone"):
        render_briefing(zs, forecast_start="2017-06-01", horizon_days=1, explanations={9: {"background_share": 0.5}})
    with pytest.raises(ValueError, match="horizon_days"):
        render_briefing(zs, forecast_start="2017-06-01", horizon_days=0)
    with pytest.raises(ValueError, match="no zone 9"):
        zone_map_png(np.ones(zs.n_grid_cells), zones[1], zs, 9)
    with pytest.raises(ValueError, match="low > high"):
        render_briefing(zs, forecast_start="2017-06-01", horizon_days=1, intervals={1: (3.0, 1.0)})


def test_zone_flag_history_and_audit_section(zones, tmp_path):
    from riskgrid.audit import audit_exposure
    from riskgrid.exposure import append_exposure, exposure_table, read_exposure

    zs, grid, risk = zones
    for k, day in enumerate(pd.date_range("2017-05-25", periods=6)):
        r = np.roll(risk, k)
        append_exposure(tmp_path, day, exposure_table(r, grid.cell_ids, rg.select_zones(r, grid).cell_zone, top_n=5),
                        model="M", horizon_days=7)
    log = read_exposure(tmp_path)
    hist = zone_flag_history(log, zs, last_n=3, before="2017-05-30")
    assert set(hist) == {1, 2, 3, 4}
    for z in zs.zones:
        assert [d for d, _ in hist[z.number]] == ["05-27", "05-28", "05-29"]
        for d, share in hist[z.number]:
            got = set(log[log.run_date == "2017-" + d].h3)
            assert share == pytest.approx(sum(c in got for c in z.h3) / len(z))
    res = audit_exposure(log, cells=grid.cell_ids)
    html = render_briefing(zs, forecast_start="2017-06-01", horizon_days=7, trends=hist, trend_percent=True, audit=res)
    tree = _Tree()
    tree.feed(html)
    assert not tree.errors
    for z in zs.zones:
        want = " → ".join(f"{d}: {100 * v:.0f}%" for d, v in hist[z.number])
        assert want in tree.text(f"zone-{z.number}")
    assert f"Over 6 runs from 2017-05-25 to 2017-05-30" in tree.text("audit") and f"Gini" in tree.text("audit")


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless browser installed (install Debian's chromium package, "
                                              "e.g. `apt-get install -y chromium`, to run this test)")
def test_opens_in_headless_chromium_without_network(zones, tmp_path):
    zs, _, _ = zones
    png = _png()
    zs, grid, risk = zones
    path = write_briefing(tmp_path / "briefing.html", zs, forecast_start="2017-06-01", horizon_days=7, map_png=png,
                          city="Chicago", model="KDEHotspot", last_event="2017-05-31",
                          zone_maps={z.number: zone_map_png(risk, grid, zs, z.number) for z in zs.zones}, **_inputs(zs))
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    base = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", "--no-first-run", "--disable-extensions", "--disable-background-networking",
            "--disable-sync", "--disable-component-update", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0"]
    run = subprocess.run(base + ["--window-size=1200,2400", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    img = imread(io.BytesIO(data))
    assert img.shape[0] >= 2000 and img.shape[1] >= 1100
    assert img[..., :3].std() > 0.05  # not a blank page
    dom = subprocess.run(base + ["--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-3000:]
    for z in zs.zones:
        assert f'id="zone-{z.number}"' in dom.stdout
    assert "NOT a zero-tolerance initiative" in dom.stdout
    # no resource failed to load, no console error (the page has no script and needs no network)
    bad = [ln for ln in (run.stderr + dom.stderr).splitlines()
           if "net::ERR" in ln or "Failed to load resource" in ln or ("CONSOLE" in ln and "error" in ln.lower())]
    assert not bad, bad
    # the embedded map was decoded: the image element has its natural size in the DOM dump's rendering
    assert "data:image/png;base64," in dom.stdout
    assert os.path.getsize(shot) > 10_000
