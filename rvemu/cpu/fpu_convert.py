"""FPU conversions: float to integer, integer to float, between the float formats."""

import math

import numpy as np

from rvemu.cpu.fpu_arith import canon, value_bits
from rvemu.cpu.fpu_bits import (
    DOUBLE,
    INF,
    MIN_NORMAL_S,
    NV,
    NX,
    SIGN_D,
    SINGLE,
    box_f32,
    exponent_of,
    layout,
    ldexp,
)
from rvemu.cpu.fpu_round import RDN, RMM, RNE, RUP, finish, round_pack

from .jit import njit_generic

W = 0
WU = 1
L = 2
LU = 3


@njit_generic
def round_to_integer(x: float, rm: int) -> float:
    """x rounded to an integral double per rm (x finite or infinite, not NaN)."""
    if abs(x) >= 4503599627370496.0:  # 2**52: already an integer
        return x
    if rm == RNE or rm == RMM:
        # Work on |x|: a - floor(a) is exact for a >= 0, while x - floor(x) is not for a
        # negative x above -0.5 (-0.49999999999999994 + 1 rounds to exactly 0.5).
        a = abs(x)
        f = math.floor(a)
        d = a - f
        if d > 0.5 or (d == 0.5 and (rm == RMM or math.floor(f * 0.5) != f * 0.5)):
            f += 1.0
        return math.copysign(f, x)
    if rm == RDN:
        return math.floor(x)
    if rm == RUP:
        return math.ceil(x)
    return math.trunc(x)


@njit_generic
def to_int(x: float, is_nan: bool, rm: int, kind: int) -> tuple[int, int]:
    """fcvt.{w,wu,l,lu}.{s,d}: the x-register value and fflags; saturates with NV."""
    if kind == W:
        lo = -2147483648.0
        hi = 2147483647.0
        lo_val = np.int64(-2147483648)
        hi_val = np.int64(2147483647)
    elif kind == WU:
        lo = 0.0
        hi = 4294967295.0
        lo_val = np.int64(0)
        hi_val = np.int64(-1)  # 0xFFFFFFFF sign-extended
    elif kind == L:
        lo = -9223372036854775808.0
        hi = 9223372036854775807.0  # rounds to 2**63, hence the >= test below
        lo_val = SIGN_D
        hi_val = np.int64(9223372036854775807)
    else:
        lo = 0.0
        hi = 18446744073709551615.0  # 2**64
        lo_val = np.int64(0)
        hi_val = np.int64(-1)
    if is_nan:
        return hi_val, np.int64(NV)
    v = round_to_integer(x, rm)
    if v < lo:
        return lo_val, np.int64(NV)
    if v > hi or (kind >= L and v >= hi):
        return hi_val, np.int64(NV)
    flags = np.int64(NX) if v != x else np.int64(0)
    if kind == LU and v >= 9223372036854775808.0:
        return np.int64(v - 9223372036854775808.0) ^ SIGN_D, flags
    r = np.int64(v)
    if kind == WU:
        r = ((r & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    return r, flags


@njit_generic
def from_int(mag: int, neg: bool, rm: int, fmt: int) -> tuple[int, int]:
    """fcvt.{h,s,d}.*: round the integer (-1)**neg * mag to a register value and fflags.

    mag holds an unsigned 64-bit magnitude in an int64 (so 2**63 and above are negative).
    """
    if mag == 0:
        return value_bits(0.0, fmt), np.int64(0)
    if 0 < mag <= np.int64(2) << layout(fmt)[0]:  # exactly representable
        v = np.float64(mag)
        return value_bits(-v if neg else v, fmt), np.int64(0)
    if mag < 0 or mag >= 4611686018427387904:  # at least 2**62: jam two bits away
        sig = ((mag >> 2) & 0x3FFFFFFFFFFFFFFF) | (1 if (mag & 3) != 0 else 0)
        return round_pack(neg, 2, sig, rm, fmt)
    return round_pack(neg, 0, mag, rm, fmt)


@njit_generic
def from_x(x: int, kind: int, rm: int, fmt: int) -> tuple[int, int]:
    """fcvt.{h,s,d}.{w,wu,l,lu}: the x-register value x read as integer kind, rounded."""
    if kind == W:
        v = ((x & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    elif kind == WU:
        v = x & 0xFFFFFFFF
    else:
        v = x
    neg = kind != LU and kind != WU and v < 0
    return from_int(-v if neg else v, neg, rm, fmt)  # -(-2**63) wraps to 2**63 unsigned


@njit_generic
def d_to_s(a: int, x: float, snan: bool, rm: int) -> tuple[int, int]:
    """fcvt.s.d of the double x (register value a)."""
    if rm == RNE:
        r = np.float32(x)
        rd = np.float64(r)
        if MIN_NORMAL_S < abs(rd) < INF:
            return box_f32(r), np.int64(NX if rd != x else 0)
    return narrow(x, snan, rm, SINGLE)


@njit_generic
def narrow(x: float, snan: bool, rm: int, fmt: int) -> tuple[int, int]:
    """The value x (a double, or a narrower value held in one) rounded to format fmt."""
    if math.isnan(x):
        return canon(fmt), np.int64(NV if snan else 0)
    if x == 0.0 or math.isinf(x):
        return value_bits(x, fmt), np.int64(0)
    k = exponent_of(x)
    return finish(ldexp(x, -k), 0.0, 0.0, k, rm, fmt)


@njit_generic
def widen(x: float, snan: bool, fmt: int) -> tuple[int, int]:
    """The value x converted to format fmt, which holds it exactly."""
    if math.isnan(x):
        return canon(fmt), np.int64(NV if snan else 0)
    return value_bits(x, fmt), np.int64(0)


@njit_generic
def s_to_d(x: float, snan: bool) -> tuple[int, int]:
    """fcvt.d.s of the single value x (exact)."""
    return widen(x, snan, DOUBLE)
