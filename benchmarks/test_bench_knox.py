"""Knox test: 999 permutations at 1e4, 2e4 and 1e5 events beside the brute-force reference.

Window: 10 km x 10 km x 365 days; homogeneous Poisson background with
near-repeat triggering (``rg.simulate(uniform_fraction=1.0, theta=0.3,
omega=0.2, sigma_m=100)``); space bands 0,1,100,200,300,400 m, time bands
0,7,14,21,28 days (the Near Repeat Calculator's usual table).

One group per size. ``knox_test`` runs all 999 permutations; the brute-force
all-pairs numpy reference (``tests/naive_knox.py``, what O(N²) tools do)
runs only ``REF_PERMUTATIONS`` permutations (hours otherwise), so compare
``extra_info["s_per_permutation"]`` (min time / permutations), not the raw
times. The reference is skipped at 1e5 events (about 2 minutes per permutation).
``extra_info["cpu_s"]`` (process CPU time of all threads) separates the work
from waiting when other jobs share the machine.

Run: ``make bench`` or ``pytest benchmarks/test_bench_knox.py --benchmark-only``.
"""

import time

import numpy as np
import pytest

import naive_knox as naive
import riskgrid as rg
from riskgrid.knox import knox_test, permutation_seeds

SIZES = [10_000, 20_000, 100_000]
SPACE = [0, 1, 100, 200, 300, 400]
TIME = [0, 7, 14, 21, 28]
N_PERMUTATIONS = 999
REF_PERMUTATIONS = 2
REF_MAX_EVENTS = 20_000


def window_events(n: int) -> rg.EventSet:
    theta = 0.3
    df = rg.simulate(
        n_days=365, background_rate=n * (1 - theta) / 365, theta=theta, omega=0.2, sigma_m=100,
        extent_m=10_000, uniform_fraction=1.0, seed=1,
    )
    return rg.EventSet.from_frame(df, category="category")


@pytest.fixture(scope="module")
def datasets():
    knox_test(window_events(1000), SPACE, TIME, n_permutations=2)  # compile outside the timings
    return {n: window_events(n) for n in SIZES}


@pytest.mark.parametrize("n", SIZES)
def test_knox_fast(benchmark, datasets, n):
    ev = datasets[n]
    benchmark.group = f"knox 999 permutations, {n:,} events"
    rounds = 1 if n >= 100_000 else 3
    cpu = []

    def run():
        c0 = time.process_time()
        out = knox_test(ev, SPACE, TIME, n_permutations=N_PERMUTATIONS, seed=0)
        cpu.append(time.process_time() - c0)
        return out

    res = benchmark.pedantic(run, rounds=rounds, iterations=1)
    assert res.ratio[1, 0] > 1  # near-repeat signal present
    benchmark.extra_info.update(
        n_events=len(ev), n_permutations=N_PERMUTATIONS, n_close_pairs=res.n_close_pairs,
        s_per_permutation=benchmark.stats.stats.min / N_PERMUTATIONS,
        # CPU seconds of all threads: wall time on an otherwise idle 2-core machine is about cpu_s / 2
        cpu_s=min(cpu),
    )


@pytest.mark.parametrize("n", [10_000, 20_000])
def test_knox_weighted(benchmark, datasets, n):
    """Weighted pair counts (issue 13; weights 1-3) beside the unweighted run of the same group."""
    ev = datasets[n].with_weights(1.0 + (np.arange(len(datasets[n])) % 3))
    benchmark.group = f"knox 999 permutations, {n:,} events"
    knox_test(ev, SPACE, TIME, n_permutations=2, seed=0, weights=True)  # compile
    res = benchmark.pedantic(
        lambda: knox_test(ev, SPACE, TIME, n_permutations=N_PERMUTATIONS, seed=0, weights=True), rounds=1, iterations=1
    )
    assert res.weighted and res.ratio[1, 0] > 1
    benchmark.extra_info.update(n_events=len(ev), n_permutations=N_PERMUTATIONS, n_close_pairs=res.n_close_pairs,
                                s_per_permutation=benchmark.stats.stats.min / N_PERMUTATIONS)


@pytest.mark.parametrize("n", [s for s in SIZES if s <= REF_MAX_EVENTS])
def test_knox_bruteforce_reference(benchmark, datasets, n):
    ev = datasets[n]
    benchmark.group = f"knox 999 permutations, {n:,} events"
    x, y = ev.xy()
    t = ev.t
    seeds, _ = permutation_seeds(0, REF_PERMUTATIONS)
    perms = [np.asarray(naive.permutation(int(s), t.size)) for s in seeds]

    def run():
        obs = naive.knox_table_blocked(x, y, t, SPACE, TIME)
        sims = [naive.knox_table_blocked(x, y, t[p], SPACE, TIME) for p in perms]
        return obs, sims

    obs, sims = benchmark.pedantic(run, rounds=1, iterations=1)
    fast = knox_test(ev, SPACE, TIME, n_permutations=REF_PERMUTATIONS, seed=0)
    np.testing.assert_array_equal(obs, fast.observed)
    np.testing.assert_array_equal(np.stack(sims), fast.simulated)
    benchmark.extra_info.update(
        n_events=len(ev), n_permutations=REF_PERMUTATIONS,
        # the observed table costs one more all-pairs pass
        s_per_permutation=benchmark.stats.stats.min / (REF_PERMUTATIONS + 1),
    )
