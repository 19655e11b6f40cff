"""Sub-commands of the ``riskgrid`` CLI, one module each (registered in riskgrid/cli.py)."""
