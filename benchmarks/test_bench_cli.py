"""CLI start-up: ``riskgrid --help`` and a bad configuration, each in a fresh process.

Run: ``pytest benchmarks/test_bench_cli.py --benchmark-only --benchmark-group-by=group``.
Target (issue 12): both answer in <= 0.5 s. Beside each, a bare ``python -c pass``
(the interpreter's own start-up) and the import of the numerical stack the CLI
no longer loads up front (``import riskgrid.models, riskgrid.products``: what
every call paid before the imports were made lazy).
"""

import subprocess
import sys

import pytest

ROUNDS = 5


def _run(args, code=0):
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    assert p.returncode == code, p.stderr


@pytest.fixture(scope="module")
def bad_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "bad.toml"
    path.write_text('city = "x"\n[grid]\nresolutoin = 9\n')
    return str(path)


@pytest.mark.benchmark(group="cli-startup")
def test_help(benchmark):
    benchmark.pedantic(_run, args=(["-m", "riskgrid.cli", "--help"],), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="cli-startup")
def test_bad_config_error(benchmark, bad_config):
    benchmark.pedantic(_run, args=(["-m", "riskgrid.cli", "forecast", bad_config, "--date", "2024-01-01"], 1),
                       rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="cli-startup")
def test_reference_bare_python(benchmark):
    benchmark.pedantic(_run, args=(["-c", "pass"],), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="cli-startup")
def test_reference_eager_imports(benchmark):
    benchmark.pedantic(_run, args=(["-c", "import riskgrid.models, riskgrid.products, riskgrid.distributed"],),
                       rounds=ROUNDS, iterations=1, warmup_rounds=1)
