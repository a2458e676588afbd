"""Bit-level helpers for the FPU: host bit casts, a fused multiply-add, NaN-boxing, constants,
and the layout of the three formats (half, single, double).

Everything here is Numba-compiled and works on raw register bit patterns held in int64.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import njit_generic
from .ops import f64_bits, f64_from_bits, fma  # noqa: F401 (defined once, with the semantics' words)

NX = 1
UF = 2
OF = 4
DZ = 8
NV = 16

# Formats, as passed to the exact paths. SINGLE and DOUBLE equal False and True, the `dbl`
# flag those paths took before half precision existed.
SINGLE = 0
DOUBLE = 1
HALF = 2

# Upper 32 (48) bits of a NaN-boxed single (half), as an int64.
BOX = -4294967296  # 0xFFFFFFFF_00000000
BOX_H = -65536  # 0xFFFFFFFF_FFFF0000
CANON_H = 0x7E00
CANON_S = 0x7FC00000
CANON_D = 0x7FF8000000000000
CANON_S_BOXED = BOX | CANON_S
SIGN_D = -9223372036854775808  # 1 << 63 as int64
MAX_D = 1.7976931348623157e308
MIN_NORMAL_D = 2.2250738585072014e-308
MIN_NORMAL_S = 1.1754943508222875e-38
INF = float("inf")


@intrinsic
def _f32_from_i32(typingctx, x):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _f32_to_i32(typingctx, x):
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def clz64(typingctx, x):
    """Count of leading zero bits of an int64 (64 for zero)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@njit_generic
def layout(fmt: int) -> tuple[int, int, int]:
    """(stored fraction bits, exponent bits, NaN-box bits) of a format."""
    if fmt == DOUBLE:
        return 52, 11, np.int64(0)
    if fmt == SINGLE:
        return 23, 8, np.int64(BOX)
    return 10, 5, np.int64(BOX_H)


@njit_generic
def unbox_s(a: int) -> int:
    """The 32-bit single pattern held in register value `a` (canonical NaN unless NaN-boxed)."""
    if (a >> 32) != -1:
        return CANON_S
    return a & 0xFFFFFFFF


@njit_generic
def s_to_f64(bits32: int) -> float:
    """The float64 value of a 32-bit single pattern (exact; NaNs come out quiet)."""
    return np.float64(_f32_from_i32(np.int32(bits32)))


@njit_generic
def box_f32(r: float) -> int:
    """The NaN-boxed register value of a float32."""
    return BOX | (np.int64(_f32_to_i32(r)) & 0xFFFFFFFF)


@njit_generic
def unbox_h(a: int) -> int:
    """The 16-bit half pattern held in register value `a` (canonical NaN unless NaN-boxed)."""
    if (a >> 16) != -1:
        return CANON_H
    return a & 0xFFFF


@njit_generic
def h_to_f64(bits16: int) -> float:
    """The float64 value of a 16-bit half pattern (exact; NaNs come out quiet)."""
    e = (bits16 >> 10) & 0x1F
    frac = bits16 & 0x3FF
    if e == 0x1F:
        v = math.inf if frac == 0 else math.nan
    elif e == 0:
        v = ldexp(np.float64(frac), -24)
    else:
        v = ldexp(np.float64(frac | 0x400), e - 25)
    return -v if (bits16 & 0x8000) != 0 else v


@njit_generic
def is_snan_h(bits16: int) -> bool:
    return (bits16 & 0x7E00) == 0x7C00 and (bits16 & 0x1FF) != 0


@njit_generic
def is_snan_s(bits32: int) -> bool:
    return (bits32 & 0x7FC00000) == 0x7F800000 and (bits32 & 0x3FFFFF) != 0


@njit_generic
def is_snan_d(a: int) -> bool:
    return (a & 0x7FF8000000000000) == 0x7FF0000000000000 and (a & 0x7FFFFFFFFFFFF) != 0


@njit_generic
def pow2(n: int) -> float:
    """2.0**n for -1022 <= n <= 1023, exactly."""
    return f64_from_bits(np.int64(n + 1023) << 52)


@njit_generic
def ldexp(x: float, n: int) -> float:
    """x * 2**n for -2044 <= n <= 2046; exact whenever the result is a normal number."""
    h = n >> 1
    return x * pow2(h) * pow2(n - h)


@njit_generic
def exponent_of(x: float) -> int:
    """floor(log2(|x|)) of a finite nonzero double, subnormals included."""
    bits = f64_bits(x)
    e = (bits >> 52) & 0x7FF
    if e != 0:
        return e - 1023
    return (63 - clz64(bits & 0xFFFFFFFFFFFFF)) - 1074
