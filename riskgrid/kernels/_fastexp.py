"""``exp`` in plain arithmetic that the loop vectoriser can use: one implementation for every kernel that needs it.

:func:`exp_vectorisable` is inlined into the caller's loop; with no libm call
in the loop body, LLVM vectorises the whole loop (the SEPP E-step's trigger
values, the KDE's Gaussian weights). Tested against :func:`math.exp` in
``tests/kernels``.
"""

from __future__ import annotations

from llvmlite import ir as _ir
from numba.core import types as _nbt
from numba.extending import intrinsic

from ._jit import jit

__all__ = ["exp_vectorisable"]


@intrinsic
def _f64_from_bits(typingctx, v):
    """The float64 whose IEEE-754 bits are the int64 ``v`` (an LLVM bitcast, vectorisable)."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _ir.DoubleType())
    return _nbt.float64(_nbt.int64), codegen


@intrinsic
def _bits_from_f64(typingctx, v):
    """The IEEE-754 bits of the float64 ``v`` as an int64 (an LLVM bitcast, vectorisable)."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _ir.IntType(64))
    return _nbt.int64(_nbt.float64), codegen


_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2^52: z + _ROUND rounds z to an integer held in the low mantissa bits
_ROUND_BITS = 0x4338000000000000  # the bits of _ROUND


@jit(inline="always", fastmath=False)
def exp_vectorisable(z):
    """``exp(z)`` for ``z <= 0`` within 1 ulp of ``math.exp``, in plain arithmetic that the loop vectoriser
    can use (no libm call): ``z = k ln 2 + r`` with ``|r| <= ln 2 / 2`` (Cody-Waite), ``exp(r)`` by its
    degree-13 Taylor polynomial (truncation below 1e-17 relative), ``2^k`` from the exponent bits.
    Returns 0 for ``z < -708`` (where ``math.exp`` gives below 3.3e-308)."""
    zc = max(z, -708.0)
    kd = zc * _INV_LN2 + _ROUND
    k = _bits_from_f64(kd) - _ROUND_BITS
    kf = kd - _ROUND
    r = (zc - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    e = p * _f64_from_bits((k + 1023) << 52)
    return e if z >= -708.0 else 0.0
