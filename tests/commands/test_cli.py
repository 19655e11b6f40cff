from click.testing import CliRunner

import riskgrid
from riskgrid.cli import main


def test_help_and_version():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "demo" in r.output
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and riskgrid.__version__ in r.output
