"""Does the learned forecaster beat the heat map? Walk-forward comparison on the shared real data.

Three targets (../shared/data, outside the repository):

* ``burglary`` - Chicago burglary, origins through 2017;
* ``burglary_all`` - the same burglary target with every other Chicago category as an indicator;
* ``violent`` - Chicago violent crime (BATTERY, ASSAULT, ROBBERY, HOMICIDE,
  WEAPONS VIOLATION) with the indicators NARCOTICS, CRIMINAL DAMAGE,
  CRIMINAL TRESPASS and PUBLIC PEACE VIOLATION (``--no-indicators`` for the
  ablation);
* ``nyc`` - New York City shootings, origins 2018-01-01 .. 2019-09-24.

Every model is refitted at every origin on the events before it only (all
history from the start of the file; NYC from 2013) and scored on the next
``--horizon`` days (7 = weekly, 3.5 = the 72-96 h patrol cycle). Model
families (``--models``, comma separated):

* ``base`` - CountHotspot, KDEHotspot, ProspectiveHotspot, GridHawkes at their defaults
  (GridHawkes warm-started across origins: same optimum within its EM tolerance);
* ``grid`` - a small grid of baseline variants (windows, bandwidths, rings);
* ``ff`` - FeatureForecaster with its defaults (the Poisson GLM, re-learned every 28 days);
* ``ffauto`` - FeatureForecaster with ``estimator="auto"`` (GLM, GLM + trees or trees, chosen
  by validation inside each training window, one-standard-error rule);
* ``ffpai`` - ``ffauto`` with the validation scored by the hit rate of the top 1 % of cells;
* ``ffglm`` - FeatureForecaster with ``estimator="glm"`` spelled out (today the default; kept so
  older tables can be re-run under their names);
* ``select`` - WalkForwardSearch over the default baselines and
  FeatureForecaster (chosen on the 4 windows before each origin).

Writes ``out/forecast_skill/<target>_<horizon>_<models>.parquet`` (the
backtest table) and prints PAI, hit rate and log-likelihood with paired
bootstrap intervals against ``--reference``.

Run from the repository root::

    .venv/bin/python examples/forecast_skill.py burglary --horizon 7 --models base,grid,ff
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import riskgrid as rg
from riskgrid.evaluation import summary_table
from riskgrid.models import make_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VIOLENT = ["BATTERY", "ASSAULT", "ROBBERY", "HOMICIDE", "WEAPONS VIOLATION"]
VIOLENT_INDICATORS = ["NARCOTICS", "CRIMINAL DAMAGE", "CRIMINAL TRESPASS", "PUBLIC PEACE VIOLATION"]

#: target -> (file, target categories (None: all), indicators, history start, first origin, end of origins)
TARGETS = {
    "burglary": ("chicago_2016_2017.parquet", ["BURGLARY"], [], None, "2017-01-01", "2018-01-01"),
    # the same target, every other category of the file an indicator ("*")
    "burglary_all": ("chicago_2016_2017.parquet", ["BURGLARY"], "*", None, "2017-01-01", "2018-01-01"),
    "violent": ("chicago_2016_2017.parquet", VIOLENT, VIOLENT_INDICATORS, None, "2017-01-01", "2018-01-01"),
    "nyc": ("nyc_shootings_2006_2019.parquet", None, [], "2013-01-01", "2018-01-01", "2019-09-24"),
}


def models_for(families: list[str]) -> dict:
    """The model dictionary of the requested families (names -> unfitted models)."""
    out = {}
    if "base" in families:
        out.update({name: make_model(name) for name in ("CountHotspot", "KDEHotspot", "ProspectiveHotspot")})
        # EM from the previous origin's parameters: the same optimum within EM tolerance, much faster
        out["GridHawkes"] = make_model("GridHawkes", warm_start=True)
    if "grid" in families:
        for w in (90, 365, None):
            out[f"Count w={w}"] = make_model("CountHotspot", window_days=w)
        for bw in (100, 200, 400):
            for w in (90, 365):
                out[f"KDE {bw}m w={w}"] = make_model("KDEHotspot", bandwidth_m=bw, window_days=w)
        for r in (1, 2):
            for wk in (4, 8, 16):
                out[f"Prospective r={r} {wk}wk"] = make_model("ProspectiveHotspot", bandwidth_rings=r, window_weeks=wk)
        out["GridHawkes r=0"] = make_model("GridHawkes", spillover_rings=0, warm_start=True)
    if "ff" in families:
        out["FeatureForecaster"] = make_model("FeatureForecaster")
    if "ffauto" in families:
        out["FeatureForecaster auto"] = make_model("FeatureForecaster", estimator="auto")
    if "ffpai" in families:  # the same choice scored by the hit rate of the top 1 % of cells
        out["FeatureForecaster auto pai"] = make_model("FeatureForecaster", estimator="auto", selection_metric="pai")
    if "ffglm" in families:
        out["FeatureForecaster glm"] = make_model("FeatureForecaster", estimator="glm")
    if "noind" in families:  # same model, indicators not used: the ablation inside one run
        out["FeatureForecaster no-ind"] = make_model("FeatureForecaster", features={"indicator_windows_days": ()})
    if "select" in families:
        cands = {name: {"name": name} for name in ("CountHotspot", "KDEHotspot", "ProspectiveHotspot", "GridHawkes")}
        cands["FeatureForecaster"] = {"name": "FeatureForecaster"}
        out["WalkForwardSearch"] = make_model("WalkForwardSearch", candidates=cands, n_folds=4)
    return out


def load_target(name: str, no_indicators: bool = False, resolution: int = 9):
    """``(events, grid, target, indicators, start, end)`` of a comparison target, or ``None`` (printed) without data.

    ``events`` hold the target and indicator categories; the grid is the
    study area of the nightly job's rule: the target events before ``start``.
    """
    file, target, indicators, hist, start, end = TARGETS[name]
    path = DATA / file
    if not path.exists():
        print(f"skipped: {path} not found (the shared data folder ../shared/data is outside the repository)")
        return None
    events = rg.read_events(path, category="category")
    if hist is not None:
        events = events.between(hist, None)
    target = list(events.categories) if target is None else target
    if indicators == "*":
        indicators = [c for c in events.categories if c not in target]
    indicators = [] if no_indicators else indicators
    events = events.select(target + indicators)
    grid = rg.HexGrid.from_events(events.select(target).between(None, start), resolution=resolution)
    return events, grid, target, indicators, start, end


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("--horizon", type=float, default=7.0, help="forecast window and origin spacing (days)")
    ap.add_argument("--models", default="base,ff", help="families: base, grid, ff, ffauto, ffpai, ffglm, noind, select (comma separated)")
    ap.add_argument("--no-indicators", action="store_true", help="ablation: drop the indicator categories")
    ap.add_argument("--reference", default="KDEHotspot", help="model the paired differences are taken against")
    ap.add_argument("--resolution", type=int, default=9)
    args = ap.parse_args(argv)

    loaded = load_target(args.target, args.no_indicators, args.resolution)
    if loaded is None:
        return 0
    events, grid, target, indicators, start, end = loaded
    families = args.models.split(",")
    models = models_for(families)
    t0 = time.perf_counter()
    df = rg.backtest(models, events, grid, start, end, step_days=args.horizon, horizon_days=args.horizon,
                     coverage=(0.01, 0.05), target=target, indicators=indicators, on_error="skip")
    seconds = time.perf_counter() - t0
    out = ROOT / "out" / "forecast_skill"
    out.mkdir(parents=True, exist_ok=True)
    tag = args.target + ("_noind" if args.no_indicators else "")
    df.to_parquet(out / f"{tag}_{args.horizon:g}_{'-'.join(families)}.parquet")
    print(f"{args.target}: {len(grid)} cells, {df['origin'].nunique()} origins, horizon {args.horizon:g} days, "
          f"{seconds:.0f} s")
    failed = df[df["error"] != ""]
    if len(failed):
        print("failures:", failed.drop_duplicates("model")[["model", "origin", "error"]].to_string(index=False))
    ref = args.reference if args.reference in models else next(iter(models))
    summ = rg.summarize(df, reference=ref, metrics=["hit_rate", "pai", "loglik"])
    for cov in (0.01, 0.05):
        print(f"\ncoverage {cov:.0%} (reference {ref}):")
        print(summary_table(summ, metrics=("pai", "hit_rate", "loglik"), coverage=cov).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
