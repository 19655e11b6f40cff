"""riskgrid: high-performance spatiotemporal risk modelling on H3 hexagons.

The package is organised in layers (each imports only from the layers below;
``lint-imports`` checks it, see ``[tool.importlinter]`` in pyproject.toml):

1. ``kernels/``: pure Numba kernels on arrays;
2. data: ``events``, ``grid``, ``geo``;
3. analysis: ``models/``, ``knox``, ``simulation``, ``metrics``, ``zones``,
   ``seasonal``, ``evaluation/`` (walk-forward backtests);
4. ``products/``: the forecast Dataset, its exports, the map, the accessor;
5. ``pipeline/``: configuration, job specs, the one event source, the one
   forecast and backtest job functions, publishing;
6. ``distributed/``: the pipeline's functions scheduled on Dask;
7. ``commands/`` and ``cli``: argument parsing and printing.

The public names below are loaded on first use (PEP 562), so ``import
riskgrid`` and the command line start fast; the ``.riskgrid`` accessor of
xarray objects is registered as soon as xarray is imported.
"""

from __future__ import annotations

import importlib
import sys

from . import errors as _errors
from ._version import __version__
from .errors import *  # noqa: F401,F403  (every riskgrid exception and warning, at the top level)

#: public name -> module that defines it
_LAZY = {
    "EventSet": "events",
    "read_events": "events",
    "HexGrid": "grid",
    "latlng_to_cells": "grid",
    "LocalProjection": "geo",
    "haversine_m": "geo",
    "simulate": "simulation",
    "knox_test": "knox",
    "KnoxResult": "knox",
    "select_zones": "zones",
    "zones_metric": "zones",
    "risk_dataset": "products",
    "read_risk": "products",
    "run_forecast": "pipeline.job",
    "backtest": "evaluation.walk_forward",
    "summarize": "evaluation.summary",
    "plot_backtest": "evaluation.summary",
}

#: sub-packages and modules reachable as attributes (``rg.io``, ``rg.config``, ...)
_SUBMODULES = {
    "io", "config", "job", "products", "pipeline", "distributed", "evaluation", "models", "metrics", "kernels",
    "events", "grid", "geo", "zones", "knox", "simulation", "seasonal", "errors",
}

__all__ = [
    "__version__",
    "EventSet",
    "read_events",
    "HexGrid",
    "latlng_to_cells",
    "LocalProjection",
    "haversine_m",
    "simulate",
    "knox_test",
    "KnoxResult",
    "select_zones",
    "zones_metric",
    "io",
    "risk_dataset",
    "read_risk",
    "run_forecast",
    "backtest",
    "summarize",
    "plot_backtest",
    *_errors.__all__,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES or not name.startswith("_"):  # any sub-module: rg.io, rg.config, rg.audit, ...
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


# ---- the .riskgrid accessor: registered when xarray is imported (now, or later)
def _register_accessor() -> None:
    mod = sys.modules.get(f"{__name__}.products.accessor")
    if mod is not None and not hasattr(mod, "register"):
        return  # the accessor module is importing xarray right now: it registers itself when done
    from .products.accessor import register

    register()


class _XarrayHook:
    """A ``sys.meta_path`` finder that registers the accessor once xarray has finished importing."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "xarray":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("xarray")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _register_accessor()

        loader.exec_module = exec_and_register
        return spec


if "xarray" in sys.modules:
    _register_accessor()
elif not any(isinstance(f, _XarrayHook) for f in sys.meta_path):
    import importlib.util

    sys.meta_path.insert(0, _XarrayHook())
