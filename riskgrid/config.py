"""Backward-compatible name of :mod:`riskgrid.pipeline.config` (plus the old builders).

New code uses :mod:`riskgrid.pipeline.config` (schema, loading, the path
resolver), :mod:`riskgrid.pipeline.source` (events) and
:mod:`riskgrid.pipeline.specs` (grids, models).
"""

from __future__ import annotations

from .pipeline.config import *  # noqa: F401,F403
from .pipeline.config import (  # noqa: F401
    BACKTEST_KEYS,
    OUTPUT_FORMATS,
    SCHEMA,
    check_table,
    load_config,
    read_toml,
    resolve,
    resolve_path,
    validate_config,
)

__all__ = ["SCHEMA", "OUTPUT_FORMATS", "load_config", "validate_config", "events_from_config", "grid_from_config",
           "model_from_spec", "resolve_path", "read_toml", "check_table"]


def events_from_config(cfg: dict):
    """The events of ``[events]`` (see :func:`riskgrid.pipeline.source.events_from_config`)."""
    from .pipeline.source import events_from_config as _f

    return _f(cfg)


def grid_from_config(cfg: dict, events):
    """The grid of ``[grid]`` on ``events`` as given (the caller applies the study-area rule)."""
    from .pipeline.specs import GridSpec

    g = cfg["grid"]
    return GridSpec(g["resolution"], g["buffer_rings"], resolve_path(cfg, g.get("geojson"))).build(events)


def model_from_spec(spec: dict):
    """An unfitted model from ``{"name": ..., "params": {...}}`` (see :class:`riskgrid.pipeline.specs.ModelSpec`)."""
    from .pipeline.config import check_model_spec
    from .pipeline.specs import ModelSpec

    spec = check_model_spec("model", spec)
    return ModelSpec(spec["name"], spec["params"]).build()
