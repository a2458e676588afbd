"""Integer helpers whose one-line form would be wrong in int64: M-extension division and
the high halves of 128-bit products (Numba has no 128-bit integers)."""

import numpy as np
from numba import njit

from .bits import sext
from .jit import njit_generic

INT64_MIN = -(1 << 63)
LOW32 = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)


@njit(cache=True, inline="always")
def ltu(a: int, b: int) -> bool:
    return np.uint64(a) < np.uint64(b)


@njit(cache=True, inline="always")
def srl(a: int, shamt: int) -> int:
    return np.int64(np.uint64(a) >> np.uint64(shamt))


@njit_generic
def mulhu(a: int, b: int) -> int:
    ua, ub = np.uint64(a), np.uint64(b)
    a_lo, a_hi = ua & LOW32, ua >> S32
    b_lo, b_hi = ub & LOW32, ub >> S32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    cross = (lo_lo >> S32) + (hi_lo & LOW32) + lo_hi
    return np.int64(hi_hi + (hi_lo >> S32) + (cross >> S32))


@njit_generic
def mulh(a: int, b: int) -> int:
    high = mulhu(a, b)
    if a < 0:
        high -= b
    if b < 0:
        high -= a
    return high


@njit_generic
def mulhsu(a: int, b: int) -> int:
    high = mulhu(a, b)
    if a < 0:
        high -= b
    return high


@njit_generic
def div(a: int, b: int) -> int:
    if b == 0:
        return -1
    if a == INT64_MIN and b == -1:
        return a
    q = a // b  # floor division: round toward zero instead
    if q * b != a and (a < 0) != (b < 0):
        q += 1
    return q


@njit_generic
def rem(a: int, b: int) -> int:
    if b == 0:
        return a
    if a == INT64_MIN and b == -1:
        return 0
    return a - div(a, b) * b


@njit_generic
def divu(a: int, b: int) -> int:
    if b == 0:
        return -1
    return np.int64(np.uint64(a) // np.uint64(b))


@njit_generic
def remu(a: int, b: int) -> int:
    if b == 0:
        return a
    return np.int64(np.uint64(a) % np.uint64(b))


@njit_generic
def divw(a: int, b: int) -> int:
    return sext(div(sext(a, 32), sext(b, 32)), 32)


@njit_generic
def remw(a: int, b: int) -> int:
    return sext(rem(sext(a, 32), sext(b, 32)), 32)


@njit_generic
def divuw(a: int, b: int) -> int:
    return sext(divu(a & 0xFFFFFFFF, b & 0xFFFFFFFF), 32)


@njit_generic
def remuw(a: int, b: int) -> int:
    return sext(remu(a & 0xFFFFFFFF, b & 0xFFFFFFFF), 32)
