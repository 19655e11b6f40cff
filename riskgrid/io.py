"""Backward-compatible name of :mod:`riskgrid.products` (the forecast Dataset, its exports and the accessor).

New code imports from :mod:`riskgrid.products`; this module re-exports its
public names so ``import riskgrid.io as rio`` keeps working.
"""

from __future__ import annotations

from .products import *  # noqa: F401,F403
from .products import __all__ as _products_all
from .products.accessor import RiskGridAccessor  # noqa: F401

__all__ = list(_products_all) + ["RiskGridAccessor"]
