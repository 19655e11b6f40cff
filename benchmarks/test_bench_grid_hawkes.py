"""GridHawkes: one EM iteration and a full fit at 1e4, 1e5, 1e6 events on a res-9 city grid.

The O(N^2) reference (``tests/naive_hawkes.py``) sits in the EM-iteration group, and a whole
reference fit (plain EM with the O(N^2) E-step) in the fit group,
at 1e4 events; at 1e5 it would take ~100x longer (minutes) and is skipped.
Target: 1e6 events, spillover_rings=1, full fit < 60 s on 2 cores, peak memory << 4 GB.

Also (issues 13 and 17): the nightly Chicago job's fit (all offences, 365 days, res 9; needs
``../shared/data``), grid ETAS (Mohler 2015) at 49k events and 20 EM iterations cold and cached beside
open_cp's quoted 8.8 s, and one cell at 10^6 events (15-minute and 10-day scales) with the defaults
beside EM to tol 1e-9.

Run: ``pytest benchmarks/test_bench_grid_hawkes.py --benchmark-only``.
"""

from __future__ import annotations

import resource
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import riskgrid as rg
from riskgrid.models import GridHawkes
from riskgrid.models.grid_hawkes import _ring_sizes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from naive_hawkes import hawkes_naive  # noqa: E402

SIZES = [10_000, 100_000, 1_000_000]
R = 1


@pytest.fixture(scope="module")
def cities():
    """Simulated city of 30 km x 30 km, 365 days, theta 0.3, sigma 150 m, rate scaled to n events."""
    small = rg.simulate(n_days=30, background_rate=20, seed=0)
    ev = rg.EventSet.from_frame(small, category="category")
    GridHawkes(spillover_rings=R, max_iter=3).fit(ev, rg.HexGrid.from_events(ev, 9))  # compile
    out = {}
    for n in SIZES:
        df = rg.simulate(n_days=365, background_rate=n / 365 * 0.7, theta=0.3, omega=0.2, sigma_m=150,
                         extent_m=30_000, seed=1)
        ev = rg.EventSet.from_frame(df, category="category")
        grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=R)
        grid.neighbours(R)
        out[n] = (ev, grid)
    return out


def _prepared_model(ev, grid):
    """A model whose EM context is set up (for timing one iteration)."""
    m = GridHawkes(spillover_rings=R, max_iter=1, background="cell", min_lag_minutes=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(ev, grid)
    P = m._P
    window = m.window_days_
    ctx = dict(P=P, tau=window - P.t, window=window, n_full=_ring_sizes(R), cross=False, K=1, lag=0.0, smooth=None,
               prior=None)
    params = (m.mu_.T.copy(), m.theta_, m.omega_, m.w_.copy(), 0.0)  # nu 0: the plain E-step (smooth=None)
    return m, ctx, params


def _dense_rings(P, grid):
    """Occupied cells, each event's index among them, and their dense ring-distance matrix (-1 beyond R)."""
    occ, local = np.unique(P.cell, return_inverse=True)
    pos = np.full(len(grid), -1)
    pos[occ] = np.arange(occ.size)
    nb_ptr, nb_idx, nb_ring = grid.neighbours(R)
    D = np.full((occ.size, occ.size), -1, dtype=np.int8)
    for a, c in enumerate(occ):
        q = slice(nb_ptr[c], nb_ptr[c + 1])
        b = pos[nb_idx[q]]
        D[a, b[b >= 0]] = nb_ring[q][b >= 0]
    return occ, local, D


@pytest.mark.benchmark(group="grid-hawkes-em-iteration")
@pytest.mark.parametrize("n", SIZES)
def test_em_iteration(benchmark, cities, n):
    ev, grid = cities[n]
    m, ctx, params = _prepared_model(ev, grid)
    ll, new, lam = benchmark.pedantic(lambda: m._em_map(params, ctx), rounds=3, iterations=1, warmup_rounds=1)
    assert np.isfinite(ll)
    benchmark.extra_info["n_events"] = len(ctx["P"])
    benchmark.extra_info["n_cells"] = len(grid)
    benchmark.extra_info["stream_entries"] = int(ctx["P"].stream_t.size)


@pytest.mark.benchmark(group="grid-hawkes-em-iteration")
@pytest.mark.parametrize("n", SIZES)
def test_em_iteration_naive_reference(benchmark, cities, n):
    if n > 10_000:
        pytest.skip("the O(N^2) reference needs ~100x the 1e4 time at 1e5 events (minutes); skipped")
    ev, grid = cities[n]
    m, ctx, params = _prepared_model(ev, grid)
    P = ctx["P"]
    occ, local, D = _dense_rings(P, grid)
    mu, theta, omega, w, _ = params
    mu_local = np.ascontiguousarray(mu[occ].T)
    n_in = P.n_in[occ]
    th = np.array([[theta]])
    T = ctx["window"]

    def run():
        return hawkes_naive(P.t, local, P.typ, D, n_in, mu_local, th, omega, w, 0.0, T)

    ref = benchmark.pedantic(run, rounds=1, iterations=1)
    ll_fast, *_ = m._em_map(params, ctx)
    assert ref["loglik"] == pytest.approx(ll_fast, rel=1e-9)
    benchmark.extra_info["n_events"] = len(P)


@pytest.mark.benchmark(group="grid-hawkes-fit")
@pytest.mark.parametrize("n", SIZES)
def test_full_fit(benchmark, cities, n):
    ev, grid = cities[n]
    tracemalloc.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    rounds = 1 if n >= 1_000_000 else 2

    def run():
        return GridHawkes(spillover_rings=R).fit(ev, grid)

    m = benchmark.pedantic(run, rounds=rounds, iterations=1)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # CPU seconds per fit (all threads): on a shared machine wall time also counts waiting for a core
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / rounds
    benchmark.extra_info["cpu_seconds_per_fit"] = round(cpu, 2)
    benchmark.extra_info["n_events"] = m.n_events_used_
    benchmark.extra_info["n_iter"] = m.n_iter_
    benchmark.extra_info["converged"] = m.converged_
    benchmark.extra_info["theta"] = round(m.theta_, 4)
    benchmark.extra_info["omega_per_day"] = round(m.omega_, 4)
    # numpy allocations only (tracemalloc does not see Numba's own allocator)
    benchmark.extra_info["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
    benchmark.extra_info["process_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    assert m.converged_


def _reference_fit(ev, grid, tol=1e-6, max_iter=10_000):
    """Plain EM from the model's start values: O(N²) E-step (tests/naive_hawkes.py), closed-form M-step.

    The M-step is the model's own (``GridHawkes._mstep``, O(cells)); all the
    cost is in the all-pairs E-step. No SQUAREM acceleration, so it needs
    more iterations than the fast fit; stops when the log-likelihood changes
    by less than ``tol`` (relative), like the model.
    """
    m, ctx, _ = _prepared_model(ev, grid)
    P, window = ctx["P"], ctx["window"]
    occ, local, D = _dense_rings(P, grid)
    n_in = P.n_in[occ]
    tau = window - P.t
    mu = P.per_cell_type() / (2.0 * window)
    theta, omega, w = 0.5, 1.0 / max(min(window / 20.0, 7.0), 1e-3), np.full(R + 1, 1.0 / _ring_sizes(R).sum())
    ll_prev = None
    for it in range(max_iter):
        r = hawkes_naive(P.t, local, P.typ, D, n_in, np.ascontiguousarray(mu[occ].T), np.array([[theta]]), omega, w,
                         0.0, window)
        ll = r["loglik"]
        if ll_prev is not None and abs(ll - ll_prev) / abs(ll_prev) < tol:
            break
        ll_prev = ll
        mu_num = np.zeros_like(mu)
        mu_num[occ] = r["mu_num"].T
        decay = np.exp(-omega * tau)
        mu, theta, omega, w = m._mstep(P, mu_num, r["trig"], r["dt_num"], theta, omega, w, tau, decay,
                                       P.per_cell_type(1.0 - decay), window, _ring_sizes(R), False, 1)
    return {"theta": theta, "omega": omega, "w": w, "loglik": ll, "n_iter": it + 1}


@pytest.mark.benchmark(group="grid-hawkes-fit")
@pytest.mark.parametrize("n", [10_000])
def test_full_fit_naive_reference(benchmark, cities, n):
    """The whole fit with the O(N²) E-step at 10^4 events (minutes; larger sizes would take hours).

    Both fits run to a relative log-likelihood change of 1e-8: the likelihood is
    flat along theta, and plain EM stopped at 1e-6 is still 2-3 % away in theta.
    ``extra_info["fast_seconds_same_tol"]`` is the fast fit at the same tolerance.
    """
    import time

    ev, grid = cities[n]
    ref = benchmark.pedantic(lambda: _reference_fit(ev, grid, tol=1e-8), rounds=1, iterations=1)
    t0 = time.perf_counter()
    # the reference's model: per-cell backgrounds (the Mohler 2015 M-step), no minimum lag
    fast = GridHawkes(spillover_rings=R, background="cell", min_lag_minutes=0, tol=1e-8, max_iter=2000).fit(ev, grid)
    fast_s = time.perf_counter() - t0
    assert ref["theta"] == pytest.approx(fast.theta_, rel=1e-2)
    assert ref["omega"] == pytest.approx(fast.omega_, rel=1e-2)
    assert ref["loglik"] == pytest.approx(fast.log_likelihood_, rel=1e-6)
    benchmark.extra_info.update(n_events=fast.n_events_used_, n_iter=ref["n_iter"], fast_n_iter=fast.n_iter_,
                                fast_seconds_same_tol=round(fast_s, 3),
                                speedup=round(benchmark.stats.stats.mean / fast_s, 1),
                                theta=round(ref["theta"], 4), omega_per_day=round(ref["omega"], 4))


# --------------------------------------------------------------------------- the nightly Chicago fit (issue 17)
CHICAGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago_2016_2017.parquet"


@pytest.fixture(scope="module")
def chicago_all_offences():
    """The nightly job's training data: every offence in the 365 days before 2017-06-01, res-9 grid, one buffer ring."""
    if not CHICAGO.exists():
        pytest.skip(f"real-data file {CHICAGO} not present (../shared/data is outside the repository)")
    ev = rg.read_events(CHICAGO, category="category")
    end = ev.to_days(np.datetime64("2017-06-01"))
    train = ev.between(end - 365, end)
    grid = rg.HexGrid.from_events(train, resolution=9, buffer_rings=1)
    grid.neighbours(1)
    grid.neighbours(4)
    return train, grid, end


@pytest.mark.benchmark(group="grid-hawkes-chicago-nightly-fit")
@pytest.mark.parametrize("hold_rings", [True, False], ids=["held-neighbourhood", "neighbourhood-every-step"])
def test_chicago_nightly_fit(benchmark, chicago_all_offences, hold_rings, monkeypatch):
    """GridHawkes(spillover_rings=1) on ~268k Chicago events of 33 categories (6,000 cells): the nightly job's fit.

    Before issue 17's work this fit took 95.9 s (load 0.4); the variant choosing the smoothed background's
    neighbourhood in every EM step is the previous schedule (same fixed point within the EM tolerance).
    """
    train, grid, end = chicago_all_offences
    monkeypatch.setattr(GridHawkes, "_hold_smoothing_rings", hold_rings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GridHawkes(spillover_rings=1, max_iter=2).fit(train, grid, end=end - 300)  # compile
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        m = benchmark.pedantic(lambda: GridHawkes(spillover_rings=1).fit(train, grid, end=end), rounds=1, iterations=1)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    benchmark.extra_info.update(
        n_events=m.n_events_used_, n_cells=len(grid), n_categories=len(m.categories_), n_iter=m.n_iter_,
        cpu_seconds=round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 2), theta=round(m.theta_, 6),
        omega_per_day=round(m.omega_, 5), log_likelihood=round(m.log_likelihood_, 3))
    assert m.converged_


# --------------------------------------------------------------------------- grid ETAS vs open_cp seppexp (issue 17)
ETAS_PEER_S = 8.8  # open_cp's seppexp (grid ETAS, Mohler et al. 2015), 49k events, 20 EM iterations, issue 17


@pytest.fixture(scope="module")
def etas_city():
    df = rg.simulate(n_days=365, background_rate=49_000 * 0.7 / 365, theta=0.3, seed=1)
    ev = rg.EventSet.from_frame(df, category="category")
    grid = rg.HexGrid.from_events(ev, resolution=10, buffer_rings=1)
    _grid_etas().fit(ev, grid)  # compile outside the timings
    return df, ev, grid


def _grid_etas():
    """The grid ETAS of Mohler et al. (2015): own-cell triggering, per-cell backgrounds, 20 EM iterations."""
    return GridHawkes(spillover_rings=0, background="cell", min_lag_minutes=0, max_iter=20, tol=1e-15)


@pytest.mark.benchmark(group="grid ETAS (Mohler 2015), 49k events, 20 EM iterations")
@pytest.mark.parametrize("state", ["cold", "cached"])
def test_grid_etas_49k(benchmark, etas_city, state):
    """``cold``: a fresh EventSet and HexGrid every round (H3 assignment inside the fit); ``cached``: the same objects."""
    df, ev, grid = etas_city
    if state == "cold":
        def setup():
            return (rg.EventSet.from_frame(df, category="category"), rg.HexGrid(grid.cells, 10)), {}
    else:
        def setup():
            return (ev, grid), {}

    def run(e, g):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 20 iterations: "did not converge" is expected
            return _grid_etas().fit(e, g).predict(horizon_days=7)

    out = benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    assert float(out.sum()) > 0
    best = benchmark.stats.stats.min
    benchmark.extra_info.update(n_events=len(ev), n_cells=len(grid), peer_s=ETAS_PEER_S, ratio_vs_peer=ETAS_PEER_S / best)


# --------------------------------------------------------------------------- one cell, 10^6 events (issue 13)
@pytest.fixture(scope="module", params=[(96.0, 500.0, 1000.0), (0.1, 100_000.0, 5.0)], ids=["15-minute", "10-day"])
def one_cell_1e6(request):
    """~10^6 one-dimensional exponential Hawkes events (theta 0.5): a 15-minute and a 10-day triggering scale."""
    omega, n_days, rate = request.param
    df = rg.simulate(n_days=n_days, background_rate=rate, theta=0.5, omega=omega, sigma_m=0, extent_m=1,
                     n_hotspots=0, seed=5, start="1800-01-01")
    ev = rg.EventSet.from_frame(df, category="category", year_range=(1700, 2300))
    grid = rg.HexGrid.from_events(ev, resolution=9, buffer_rings=0)
    assert len(grid) == 1
    return ev, grid, omega


@pytest.mark.benchmark(group="grid-hawkes-one-cell-1e6")
@pytest.mark.parametrize("method", ["default", "em-reference"])
def test_one_cell_1e6(benchmark, one_cell_1e6, method, monkeypatch):
    """Defaults (exact profile likelihood) beside EM (SQUAREM) to tol 1e-9 on the same events.

    hawkeslib (EM, not a dependency) is quoted at 1.2-1.9 s for 10^6 events in issue 13. Run outside the
    project on these same event times (hawkeslib 0.2.2 built against NumPy 2.4, 2026-12-01, CPU seconds, machine
    loaded): its default (reltol 1e-5) stops after 0.84 s (15-minute scale) and 2.5 s (10-day scale) 4,392 and
    1,373 log-likelihood units short (omega 1,163 and 3.85 per day for the true 96 and 0.1); to reltol 1e-9 it
    takes 60.5 s and 175 s (3,000 steps, not converged) and still ends 0.8 and 13.7 units below the defaults'
    fit here (both on hawkeslib's own log-likelihood), which took 5.1 s and 4.2 s CPU in the same session.
    ``extra_info["rel_gap_vs_best"]``: relative log-likelihood gap to the better of the two.
    """
    ev, grid, omega = one_cell_1e6
    if method == "em-reference":
        monkeypatch.setattr(GridHawkes, "_one_cell_profile", False)
    make = (lambda: GridHawkes(spillover_rings=0, min_lag_minutes=0)) if method == "default" else (
        lambda: GridHawkes(spillover_rings=0, min_lag_minutes=0, tol=1e-9, max_iter=3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = benchmark.pedantic(lambda: make().fit(ev, grid), rounds=1, iterations=1)
    monkeypatch.setattr(GridHawkes, "_one_cell_profile", True)
    best = GridHawkes(spillover_rings=0, min_lag_minutes=0).fit(ev, grid).log_likelihood_
    best = max(best, m.log_likelihood_)
    benchmark.extra_info.update(n_events=m.n_events_used_, n_iter=m.n_iter_, converged=m.converged_,
                                theta=round(m.theta_, 5), omega_per_day=round(m.omega_, 5),
                                rel_gap_vs_best=(best - m.log_likelihood_) / abs(best), hawkeslib_s="1.2-1.9 (issue 13)")
    assert m.omega_ == pytest.approx(omega, rel=0.05)
