"""FPU operations that never round: compare, min/max, classify."""

import math

import numpy as np

from rvemu.cpu.fpu_arith import canon
from rvemu.cpu.fpu_bits import NV, layout

from .jit import njit_generic

EQ = 0
LT = 1
LE = 2


@njit_generic
def compare(x: float, y: float, any_snan: bool, op: int) -> tuple[int, int]:
    """feq/flt/fle: 1 or 0; feq signals only for signalling NaNs, flt/fle for any NaN."""
    if math.isnan(x) or math.isnan(y):
        if op == EQ and not any_snan:
            return np.int64(0), np.int64(0)
        return np.int64(0), np.int64(NV)
    if op == EQ:
        r = x == y
    elif op == LT:
        r = x < y
    else:
        r = x <= y
    return np.int64(1 if r else 0), np.int64(0)


@njit_generic
def min_max(
    a: int, b: int, x: float, y: float, sa: bool, sb: bool, is_max: bool, fmt: int
) -> tuple[int, int]:
    """fmin/fmax of operands with raw bits a, b (unboxed below double) and values x, y.

    A NaN operand yields the other one; -0.0 orders below +0.0 (spec 2.2 semantics).
    """
    flags = np.int64(NV if sa or sb else 0)
    na = math.isnan(x)
    nb = math.isnan(y)
    if na and nb:
        return canon(fmt), flags
    if na:
        r = b
    elif nb:
        r = a
    elif x == y:
        r = (a & b) if is_max else (a | b)  # equal bits, or +0/-0: the sign bit decides
    elif (x < y) != is_max:
        r = a
    else:
        r = b
    return r | layout(fmt)[2], flags


@njit_generic
def classify(neg: bool, exp_field: int, exp_max: int, frac: int, quiet_bit: int) -> int:
    """fclass: the one-hot mask (bit 0 -inf ... bit 7 +inf, bit 8 sNaN, bit 9 qNaN)."""
    if exp_field == exp_max:
        if frac == 0:
            return np.int64(1 << 0) if neg else np.int64(1 << 7)
        return np.int64(1 << 9) if (frac & quiet_bit) != 0 else np.int64(1 << 8)
    if exp_field == 0:
        if frac == 0:
            return np.int64(1 << 3) if neg else np.int64(1 << 4)
        return np.int64(1 << 2) if neg else np.int64(1 << 5)
    return np.int64(1 << 1) if neg else np.int64(1 << 6)
