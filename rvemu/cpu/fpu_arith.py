"""The exact (slow) paths of the FPU arithmetic, shared by half, single and double precision.

Operands arrive as float64 values (halves and singles convert to float64 exactly) plus a flag
telling whether any operand was a signalling NaN, and the target format fmt (fpu_bits' HALF,
SINGLE, DOUBLE). After the IEEE special cases, each operation scales
its operands by powers of two into a range where host arithmetic cannot overflow or underflow,
computes the round-to-nearest result q there together with its exact error (TwoSum, an FMA
residual, or Boldo-Muller's ErrFma), and hands both to `finish`, which rounds the exact value
to the target format in the requested mode. Scaling back happens inside the integer rounding,
so subnormal and overflowing results are rounded once, exactly.
"""

import math

import numpy as np
from numba import njit

from rvemu.cpu.fpu_bits import (
    DOUBLE,
    DZ,
    HALF,
    MAX_D,
    MIN_NORMAL_D,
    NV,
    NX,
    box_f32,
    exponent_of,
    f64_bits,
    fma,
    layout,
    ldexp,
)
from rvemu.cpu.fpu_round import RDN, RMM, RNE, RUP, finish, inf_bits, round_pack, zero_bits

from .jit import njit_generic

# Below these magnitudes a product's or dividend's error term could underflow (as in fpu.py).
_SAFE_LO = 2.0**-960
_FMA_LO = 2.0**-900
_FMA_HI = 2.0**1000


@njit_generic
def canon(fmt: int) -> int:
    """The canonical NaN register value: exponent all ones, only the quiet bit set."""
    return inf_bits(False, fmt) | (np.int64(1) << (layout(fmt)[0] - 1))


@njit_generic
def value_bits(v: float, fmt: int) -> int:
    """Register value of v, which must be representable in the target format."""
    if fmt == DOUBLE:
        return f64_bits(v)
    if fmt != HALF:
        return box_f32(np.float32(v))
    if v == 0.0:
        return zero_bits(signbit(v), fmt)
    if math.isinf(v):
        return inf_bits(signbit(v), fmt)
    # v is a normal double: its 53-bit significand rounds exactly
    k = exponent_of(v)
    m = (f64_bits(v) & 0xFFFFFFFFFFFFF) | (np.int64(1) << 52)
    return round_pack(signbit(v), k - 52, m, RNE, fmt)[0]


@njit_generic
def signbit(v: float) -> bool:
    return f64_bits(v) < 0


@njit_generic
def two_sum(a: float, b: float) -> tuple[float, float]:
    """s + e == a + b exactly, s = fl(a + b) (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit_generic
def err_fma(a: float, b: float, c: float) -> tuple[float, float, float]:
    """r1 = fl(a*b + c) and a*b + c - r1 == r2 + r3 exactly (Boldo-Muller ErrFma).

    Exact when no intermediate underflows or overflows.
    """
    r1 = fma(a, b, c)
    u1 = a * b
    u2 = fma(a, b, -u1)
    a1, a2 = two_sum(c, u2)
    b1, b2 = two_sum(u1, a1)
    g = (b1 - r1) + b2
    r2, r3 = two_sum(g, a2)
    return r1, r2, r3


@njit_generic
def directed(rm: int) -> bool:
    """Whether the directed-rounding fast paths (double precision) apply: RTZ, RDN or RUP."""
    return rm != RNE and rm != RMM


@njit(cache=True, inline="always")
def directed_d(q: float, err: float, rm: int) -> tuple[int, int]:
    """The RTZ/RDN/RUP double result, given the round-to-nearest result q and the sign of
    the exact error err = exact - q (only its sign matters).

    Valid for MIN_NORMAL_D < |q| < MAX_D: the exact value lies between q and q's neighbour
    on the side of err, so the directed result is one of the two, and both are normal and
    finite (no UF, no OF). RMM differs from RNE only on exact ties: the exact paths do it.
    """
    # Branch-free: the sign of err is data, and a mispredicted branch per operation costs
    # more than the whole fast path.
    nz = np.int64(err != 0.0)
    up = np.int64(err > 0.0)  # the exact value is above q
    away = up ^ np.int64(q < 0.0)  # ... and so farther from zero than q
    if rm == RUP:
        move = up
    elif rm == RDN:
        move = nz - up
    else:  # RTZ: move when the exact value is nearer zero than q
        move = nz & (away ^ 1)
    # a step in magnitude: +1 away from zero, -1 toward it (sign-magnitude encoding)
    return f64_bits(q) + move * (2 * away - 1), nz * NX


# The directed-rounding fast paths of the double operations (`<op>_directed_d`): the
# result in RTZ, RDN or RUP where it is normal, else fflags NOT_FAST. fpu.py tries them
# between its round-to-nearest fast paths and the exact paths (`<op>_slow`).
NOT_FAST = -3  # (fflags) a fast path that does not apply: the caller takes the next path


@njit(cache=True, inline="always")
def add_directed_d(x: float, y: float, rm: int) -> tuple[int, int]:
    if directed(rm):
        q = x + y
        if MIN_NORMAL_D < abs(q) < MAX_D:
            e = two_sum(x, y)[1]
            if abs(e) < math.inf:  # NaN when an intermediate overflowed (operands near MAX_D)
                return directed_d(q, e, rm)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def mul_directed_d(x: float, y: float, rm: int) -> tuple[int, int]:
    if directed(rm):
        q = x * y
        if _SAFE_LO < abs(q) < MAX_D:
            return directed_d(q, fma(x, y, -q), rm)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def div_directed_d(x: float, y: float, rm: int) -> tuple[int, int]:
    if directed(rm) and y != 0.0:  # (x / 0.0 raises under Numba's Python error model)
        q = x / y
        if MIN_NORMAL_D < abs(q) < MAX_D and abs(x) > _SAFE_LO:
            r = fma(-q, y, x)  # x - q*y exactly: y * (exact - q)
            return directed_d(q, -r if y < 0.0 else r, rm)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def sqrt_directed_d(x: float, rm: int) -> tuple[int, int]:
    if directed(rm) and _SAFE_LO < x < math.inf:
        q = math.sqrt(x)  # far inside (MIN_NORMAL_D, MAX_D)
        return directed_d(q, fma(-q, q, x), rm)  # x - q*q: the sign of exact - q
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def fma_directed_d(x: float, y: float, z: float, rm: int) -> tuple[int, int]:
    if directed(rm) and _FMA_LO < abs(x * y) < _FMA_HI and abs(z) < _FMA_HI:
        r1, r2, r3 = err_fma(x, y, z)
        if MIN_NORMAL_D < abs(r1) < MAX_D:
            # exact - r1 = r2 + r3 with |r3| <= ulp(r2)/2: fl(r2 + r3) has its sign
            return directed_d(r1, r2 + r3, rm)
    return np.int64(0), np.int64(NOT_FAST)


@njit_generic
def add_slow(x: float, y: float, snan: bool, rm: int, fmt: int) -> tuple[int, int]:
    if math.isnan(x) or math.isnan(y):
        return canon(fmt), np.int64(NV if snan else 0)
    if math.isinf(x) or math.isinf(y):
        if math.isinf(x) and math.isinf(y) and signbit(x) != signbit(y):
            return canon(fmt), np.int64(NV)
        return value_bits(x if math.isinf(x) else y, fmt), np.int64(0)
    if x == 0.0 or y == 0.0:
        if x == 0.0 and y == 0.0:
            if signbit(x) == signbit(y):
                return zero_bits(signbit(x), fmt), np.int64(0)
            return zero_bits(rm == RDN, fmt), np.int64(0)
        return value_bits(y if x == 0.0 else x, fmt), np.int64(0)
    kx = exponent_of(x)
    ky = exponent_of(y)
    if kx < ky:
        x, y = y, x
        kx, ky = ky, kx
    xs = ldexp(x, -kx)
    if ky < kx - 200:
        ys = math.copysign(2.0**-150, y)  # below every rounding boundary: acts as a sticky bit
    else:
        ys = ldexp(y, -kx)
    q, e = two_sum(xs, ys)
    if q == 0.0:
        return zero_bits(rm == RDN, fmt), np.int64(0)
    return finish(q, e, 0.0, kx, rm, fmt)


@njit_generic
def _mul_finite(x: float, y: float, rm: int, fmt: int) -> tuple[int, int]:
    """Round x*y for finite nonzero x, y."""
    kx = exponent_of(x)
    ky = exponent_of(y)
    xs = ldexp(x, -kx)
    ys = ldexp(y, -ky)
    q = xs * ys
    return finish(q, fma(xs, ys, -q), 0.0, kx + ky, rm, fmt)


@njit_generic
def mul_slow(x: float, y: float, snan: bool, rm: int, fmt: int) -> tuple[int, int]:
    inf_times_zero = (math.isinf(x) and y == 0.0) or (math.isinf(y) and x == 0.0)
    if math.isnan(x) or math.isnan(y) or inf_times_zero:
        return canon(fmt), np.int64(NV if snan or inf_times_zero else 0)
    neg = signbit(x) != signbit(y)
    if math.isinf(x) or math.isinf(y):
        return value_bits(-math.inf if neg else math.inf, fmt), np.int64(0)
    if x == 0.0 or y == 0.0:
        return zero_bits(neg, fmt), np.int64(0)
    return _mul_finite(x, y, rm, fmt)


@njit_generic
def div_slow(x: float, y: float, snan: bool, rm: int, fmt: int) -> tuple[int, int]:
    if math.isnan(x) or math.isnan(y):
        return canon(fmt), np.int64(NV if snan else 0)
    neg = signbit(x) != signbit(y)
    if math.isinf(x):
        if math.isinf(y):
            return canon(fmt), np.int64(NV)
        return value_bits(-math.inf if neg else math.inf, fmt), np.int64(0)
    if math.isinf(y):
        return zero_bits(neg, fmt), np.int64(0)
    if y == 0.0:
        if x == 0.0:
            return canon(fmt), np.int64(NV)
        return value_bits(-math.inf if neg else math.inf, fmt), np.int64(DZ)
    if x == 0.0:
        return zero_bits(neg, fmt), np.int64(0)
    kx = exponent_of(x)
    ky = exponent_of(y)
    xs = ldexp(abs(x), -kx)
    ys = ldexp(abs(y), -ky)
    q = xs / ys
    # A quotient is never exactly halfway between two doubles, so only the residual's
    # sign matters; scale it to well below one unit.
    r = fma(-q, ys, xs) * 0.00390625
    if neg:
        q = -q
        r = -r
    return finish(q, r, 0.0, kx - ky, rm, fmt)


@njit_generic
def sqrt_slow(x: float, snan: bool, rm: int, fmt: int) -> tuple[int, int]:
    if math.isnan(x):
        return canon(fmt), np.int64(NV if snan else 0)
    if x == 0.0:
        return value_bits(x, fmt), np.int64(0)
    if x < 0.0:
        return canon(fmt), np.int64(NV)
    if math.isinf(x):
        return value_bits(x, fmt), np.int64(0)
    k = exponent_of(x)
    k -= k & 1
    xs = ldexp(x, -k)  # in [1, 4)
    q = math.sqrt(xs)
    # Like a quotient, a square root is never a tie: the residual's sign is enough.
    return finish(q, fma(-q, q, xs) * 0.00390625, 0.0, k >> 1, rm, fmt)


@njit_generic
def fma_slow(x: float, y: float, z: float, snan: bool, rm: int, fmt: int) -> tuple[int, int]:
    """x*y + z with one rounding (the sign manipulations of fmsub etc. are the caller's)."""
    inf_times_zero = (math.isinf(x) and y == 0.0) or (math.isinf(y) and x == 0.0)
    if math.isnan(x) or math.isnan(y) or math.isnan(z) or inf_times_zero:
        return canon(fmt), np.int64(NV if snan or inf_times_zero else 0)
    pneg = signbit(x) != signbit(y)
    if math.isinf(x) or math.isinf(y):
        if math.isinf(z) and signbit(z) != pneg:
            return canon(fmt), np.int64(NV)
        return value_bits(-math.inf if pneg else math.inf, fmt), np.int64(0)
    if math.isinf(z):
        return value_bits(z, fmt), np.int64(0)
    if x == 0.0 or y == 0.0:
        if z != 0.0:
            return value_bits(z, fmt), np.int64(0)
        if signbit(z) == pneg:
            return zero_bits(pneg, fmt), np.int64(0)
        return zero_bits(rm == RDN, fmt), np.int64(0)
    if z == 0.0:
        return _mul_finite(x, y, rm, fmt)
    kx = exponent_of(x)
    ky = exponent_of(y)
    kp = kx + ky
    kz = exponent_of(z)
    xs = ldexp(abs(x), -kx)
    if pneg:
        xs = -xs
    ys = ldexp(abs(y), -ky)
    k = kp
    if kz < kp - 250:
        zs = math.copysign(2.0**-200, z)  # below the product's last bit: a sticky bit
    elif kp < kz - 250:
        xs = -(2.0**-100) if pneg else 2.0**-100  # the product is the sticky bit
        ys = 2.0**-100
        zs = ldexp(z, -kz)
        k = kz
    else:
        zs = ldexp(z, -kp)
    q, e_hi, e_lo = err_fma(xs, ys, zs)
    if q == 0.0:
        return zero_bits(rm == RDN, fmt), np.int64(0)
    return finish(q, e_hi, e_lo, k, rm, fmt)
