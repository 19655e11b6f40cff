"""The one place where riskgrid's Numba JIT flags are defined.

Every kernel module does ``from riskgrid.kernels._jit import jit, jit_parallel``.

Environment variables
---------------------
RISKGRID_NUMBA_CACHE : "0" disables the on-disk compilation cache (default on).
RISKGRID_FASTMATH : "1" enables fastmath *without* ``nnan``/``ninf`` so that
    NaN and infinity handling stays correct (default off).
"""

from __future__ import annotations

import os

import numba

_CACHE = os.environ.get("RISKGRID_NUMBA_CACHE", "1") != "0"
_FASTMATH = (
    {"nsz", "arcp", "contract", "afn", "reassoc"}
    if os.environ.get("RISKGRID_FASTMATH", "0") == "1"
    else False
)

FLAGS = {"nogil": True, "cache": _CACHE, "fastmath": _FASTMATH}


def jit(func=None, **overrides):
    """Serial ``numba.njit`` with riskgrid's flags."""
    opts = {**FLAGS, **overrides}
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


def jit_parallel(func=None, **overrides):
    """``numba.njit(parallel=True)`` with riskgrid's flags (use ``prange`` in the outer loop only)."""
    return jit(func, **{"parallel": True, **overrides})


prange = numba.prange
