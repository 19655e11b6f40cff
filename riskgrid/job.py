"""Backward-compatible name of :mod:`riskgrid.pipeline.job` (the nightly forecast job)."""

from __future__ import annotations

from .errors import NoEventsError  # noqa: F401
from .pipeline.job import PRODUCTS, output_folder, run_forecast  # noqa: F401
from .pipeline.publish import config_sha256, sha256_file  # noqa: F401

__all__ = ["run_forecast", "output_folder", "PRODUCTS", "NoEventsError", "sha256_file", "config_sha256"]
