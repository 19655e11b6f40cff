"""Forecast intervals and convergence: forward simulations per second on a Chicago-sized history, and
EM on one-dimensional exponential Hawkes data (one cell) from a 15-minute and a 10-day time scale.

Groups
------
``grid-hawkes-forward``: :meth:`GridHawkes.simulate_forecast` (7-day horizon, 1,000 futures) after a
fit on a simulated city the size of Chicago's yearly burglary (27k events, ~5k res-9 cells) and of all
of Chicago's offences in a year (265k events). ``extra_info`` holds simulations per second.

``hawkes-1d-convergence``: GridHawkes with its defaults (data-driven start, SQUAREM) beside a plain EM
reference of our own (the same E-step, no acceleration, the fixed 1/7-day start of the old code, the
way hawkeslib iterates) on 1e6 events in one cell; ``extra_info`` holds the EM iterations and the
relative log-likelihood gap to a tight fit (tol 1e-13).

Run: ``pytest benchmarks/test_bench_forward.py --benchmark-only`` (``RISKGRID_BENCH_1D_N`` sets the
number of 1-D events, default 1e6).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import riskgrid as rg
from riskgrid.models import GridHawkes

N_1D = int(float(os.environ.get("RISKGRID_BENCH_1D_N", "1e6")))


@pytest.fixture(scope="module")
def chicago_sized():
    out = {}
    for n in (27_000, 265_000):
        df = rg.simulate(n_days=365, background_rate=n / 365 * 0.7, theta=0.3, omega=0.2, sigma_m=150,
                         extent_m=25_000, seed=3, start="2020-01-01")
        ev = rg.EventSet.from_frame(df, category="category")
        grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[n] = GridHawkes(spillover_rings=1).fit(ev, grid)
    return out


@pytest.mark.benchmark(group="grid-hawkes-forward")
@pytest.mark.parametrize("n", [27_000, 265_000])
def test_forward_simulation(benchmark, chicago_sized, n):
    m = chicago_sized[n]
    m.simulate_forecast(horizon_days=7.0, n_sims=10, seed=0)  # compile
    sims = benchmark.pedantic(lambda: m.simulate_forecast(horizon_days=7.0, n_sims=1000, seed=1), rounds=3, iterations=1)
    assert sims.shape[0] == 1000
    benchmark.extra_info["n_history"] = m.n_events_used_
    benchmark.extra_info["n_cells"] = len(m.grid_)
    benchmark.extra_info["sims_per_second"] = round(1000 / benchmark.stats.stats.mean, 1)


def _one_cell(omega):
    n_days = 30.0 * N_1D / 60_000 if omega > 1 else 50.0 * N_1D / 1_000
    rate = N_1D * 0.5 / n_days
    df = rg.simulate(n_days=n_days, background_rate=rate, theta=0.5, omega=omega, sigma_m=0, extent_m=1,
                     n_hotspots=0, seed=5, start="1800-01-01")  # the 10-day scale spans ~137 years
    ev = rg.EventSet.from_frame(df, category="category", year_range=(1700, 2300))
    return ev, rg.HexGrid.from_events(ev, resolution=9, buffer_rings=0)


class _PlainEM(GridHawkes):
    """Reference: plain EM (no SQUAREM) from the old fixed start (mean delay min(window / 20, 7) days).

    The exact one-cell profile of the defaults is switched off: this reference iterates EM maps.
    """

    _accelerate = False
    _one_cell_profile = False

    def _start_values(self, ctx):
        P, window = ctx["P"], ctx["window"]
        return P.per_cell_type() / (2.0 * window), 0.5, 1.0 / max(min(window / 20.0, 7.0), 1e-3), np.ones(1), 0.0


@pytest.mark.benchmark(group="hawkes-1d-convergence")
@pytest.mark.parametrize("omega", [96.0, 0.1], ids=["15min", "10days"])
@pytest.mark.parametrize("variant", ["defaults", "plain-em-reference"])
def test_one_cell_convergence(benchmark, omega, variant):
    ev, grid = _one_cell(omega)
    cls = GridHawkes if variant == "defaults" else _PlainEM
    kw = dict(spillover_rings=0, min_lag_minutes=0)
    if variant != "defaults":
        kw.update(max_iter=5000)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**kw).fit(ev, grid)

    m = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GridHawkes(spillover_rings=0, min_lag_minutes=0, tol=1e-13, max_iter=5000).fit(ev, grid)
    benchmark.extra_info.update(
        n_events=len(ev), n_iter=m.n_iter_, converged=bool(m.converged_), theta=m.theta_, omega=m.omega_,
        rel_loglik_gap=float(abs(m.log_likelihood_ - ref.log_likelihood_) / abs(ref.log_likelihood_)),
    )
