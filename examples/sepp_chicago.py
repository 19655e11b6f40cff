"""Continuous SEPP (Mohler 2011) on Chicago burglaries, 2016-2017.

Fits riskgrid.models.SEPP with the exponential-Gaussian trigger (closed-form
EM) and with the non-parametric histogram trigger (Marsan & Lengliné
declustering), prints the fitted parameters and writes the histogram
trigger's decay plot (time profile and distance profile) and a 7-day risk
map table to ``out/sepp_chicago/``.

Run from the repository root::

    .venv/bin/python examples/sepp_chicago.py
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

import riskgrid as rg
from riskgrid.models import SEPP

from _chicago import ROOT, burglaries  # noqa: E402  (examples/ is on sys.path when run as a script)


def main() -> int:
    loaded = burglaries("sepp_chicago")
    if loaded is None:
        return 0
    events, out = loaded
    grid = rg.HexGrid.from_events(events, resolution=9)
    print(f"{len(events):,} burglaries {events.start:%Y-%m-%d} .. {events.end:%Y-%m-%d}; {grid}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rg.ConvergenceWarning)
        t0 = time.perf_counter()
        eg = SEPP(trigger="exp-gauss").fit(events, grid)
        t_eg = time.perf_counter() - t0
        # the near-repeat window of the literature (Bowers et al. 2004: 400 m, two months), widened
        eg60 = SEPP(trigger="exp-gauss", bandwidth_m=eg.bandwidth_m_, max_days=60.0, max_distance_m=1000.0,
                    min_sigma_m=50.0).fit(events, grid)
        t0 = time.perf_counter()
        hist = SEPP(trigger="histogram", bandwidth_m=eg.bandwidth_m_, max_days=60.0, max_distance_m=1000.0,
                    time_bins=[0, 1, 2, 4, 7, 10, 14, 21, 28, 42, 60],
                    distance_bins=[0, 25, 150, 250, 400, 600, 800, 1000], max_iter=300).fit(events, grid)
        t_h = time.perf_counter() - t0
    for w in caught:
        print(f"warning: {w.message}")

    print("\nexp-gauss trigger  g = theta * omega * exp(-omega dt) * N2(0, sigma^2)")
    print(f"  theta (branching ratio)      {eg.theta_:.4f}")
    print(f"  omega                        {eg.omega_:.4f} / day  -> mean delay {1 / eg.omega_:.2f} days")
    print(f"  sigma                        {eg.sigma_m_:.1f} m")
    print(f"  background bandwidth (CV)    {eg.bandwidth_m_:.1f} m")
    print(f"  background rate              {eg.background_rate_:.2f} events/day")
    print(f"  truncation                   {eg.max_days_:.1f} days, {eg.max_distance_m_:.0f} m "
          f"(truncated mass {eg.truncated_mass_:.1e}, {eg.n_pairs_:,} candidate pairs)")
    print(f"  share triggered (1 - mean p_bg) {1 - np.nanmean(eg.background_probability_):.3f}")
    print(f"  log-likelihood {eg.log_likelihood_:.1f}, {eg.n_iter_} EM iterations, converged={eg.converged_}, "
          f"{t_eg:.1f} s")

    print("\nexp-gauss inside the near-repeat window (max_days=60, max_distance_m=1000, min_sigma_m=50)")
    print(f"  theta {eg60.theta_:.4f}, omega {eg60.omega_:.4f} / day -> mean delay {1 / eg60.omega_:.2f} days, "
          f"sigma {eg60.sigma_m_:.1f} m, truncated mass {eg60.truncated_mass_:.2g}, {eg60.n_iter_} iterations")

    print("\nhistogram trigger (0-60 days, 0-1000 m; block-level points: distinct locations are >= ~100 m apart)")
    print(f"  theta (branching ratio)      {hist.theta_:.4f}   ({hist.n_iter_} EM iterations, {t_h:.1f} s)")
    te, tp = hist.trigger_time_edges_, hist.trigger_time_profile_
    de, dp = hist.trigger_distance_edges_, hist.trigger_distance_profile_
    print("  time lag (days)   offspring per event per day   share of offspring")
    for a, b, r in zip(te[:-1], te[1:], tp):
        print(f"  {a:5.0f}-{b:<5.0f}      {r:12.5f}                  {r * (b - a) / hist.theta_:6.3f}")
    print("  distance (m)      density per km^2              share of offspring")
    ring = math.pi * np.diff(de**2)
    for a, b, d, ar in zip(de[:-1], de[1:], dp, ring):
        print(f"  {a:5.0f}-{b:<5.0f}      {d * 1e6:12.3f}                  {d * ar:6.3f}")

    # calendar: weekday and month factors of the background, checked on held-out months
    kw = dict(bandwidth_m=eg.bandwidth_m_, max_days=60.0, max_distance_m=1000.0, min_sigma_m=50.0)
    train = events.between(None, "2017-01-01")
    print("\nbackground calendar (fit 2016, held-out log-likelihood per event on Jan-Mar 2017)")
    base = None
    for seasonality in (None, "day_of_week", "day_of_week+month"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rg.ConvergenceWarning)
            m = SEPP(seasonality=seasonality, **kw).fit(train, grid, end="2017-01-01")
        held = m.score(events, end="2017-04-01")
        base = held if base is None else base
        print(f"  seasonality={seasonality!s:18} held-out {held:.5f} nats/event ({held - base:+.5f})")
        if seasonality == "day_of_week+month":
            print("  weekday factors  " + "  ".join(f"{k} {v:.2f}" for k, v in m.day_of_week_factor_.items()))
            print("  month factors    " + "  ".join(f"{k} {v:.2f}" for k, v in m.month_factor_.items()))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.stairs(tp, te, color="C0", label="histogram trigger")
    u = np.linspace(0, te[-1], 400)
    ax1.plot(u, eg60.theta_ * eg60.omega_ * np.exp(-eg60.omega_ * u), "C1--", label="exp-gauss fit (60 d, 1 km)")
    ax1.set_xlabel("time since the earlier burglary (days)")
    ax1.set_ylabel("offspring per event per day")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title("near-repeat decay in time")
    ax2.stairs(dp * 1e6, de, color="C0", label="histogram trigger")
    r = np.linspace(0, de[-1], 400)
    ax2.plot(r, 1e6 * np.exp(-(r**2) / (2 * eg60.sigma_m_**2)) / (2 * math.pi * eg60.sigma_m_**2), "C1--",
             label="exp-gauss fit (60 d, 1 km)")
    ax2.set_xlabel("distance from the earlier burglary (m)")
    ax2.set_ylabel("offspring density per km²")
    ax2.set_yscale("log")
    positive = dp[dp > 1e-200] * 1e6
    if positive.size:
        ax2.set_ylim(positive.min() / 3, positive.max() * 3)
    ax2.legend()
    ax2.set_title("near-repeat decay in space")
    fig.suptitle(f"Chicago burglaries 2016-2017: SEPP triggering kernel (theta = {hist.theta_:.3f})")
    fig.tight_layout()
    png = out / "sepp_trigger_decay.png"
    fig.savefig(png, dpi=120)

    risk = eg.predict(horizon_days=7)
    top = risk.to_dataframe()[["h3", "lat", "lon", "risk"]].sort_values("risk", ascending=False)
    top.to_csv(out / "sepp_risk_next7days.csv", index=False)
    print(f"\nnext 7 days: {float(risk.sum()):.1f} expected burglaries in the grid; top cells:")
    print(top.head(5).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {png.relative_to(ROOT)} and {(out / 'sepp_risk_next7days.csv').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
