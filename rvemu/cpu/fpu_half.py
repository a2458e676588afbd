"""The Zfh and Zfhmin operations (IEEE 754 binary16), bit-exact with the RISC-V spec.

Conventions as in fpu.py: raw register values in (halves NaN-boxed: upper 48 bits all ones,
else the operand reads as the canonical NaN), a resolved rounding mode, (result, fflags) out.

A half converts to a double exactly, so every operation runs the format-generic exact paths
of fpu_arith and fpu_convert on double values and rounds once, to binary16, in fpu_round.
No host arithmetic result is ever rounded a second time.
"""

import math

import numpy as np
from numba import njit

from rvemu.cpu.fpu_arith import add_slow, div_slow, fma_slow, mul_slow, sqrt_slow
from rvemu.cpu.fpu_bits import (
    BOX_H,
    DOUBLE,
    HALF,
    SINGLE,
    f64_from_bits,
    h_to_f64,
    is_snan_d,
    is_snan_h,
    is_snan_s,
    s_to_f64,
    unbox_h,
    unbox_s,
)
from rvemu.cpu.fpu_compare import EQ, LE, LT, classify, compare, min_max
from rvemu.cpu.fpu_convert import LU, WU, L, W, from_x, narrow, to_int, widen

from .jit import njit_generic

SIGN_H = 0x8000


@njit_generic
def _h(a: int) -> tuple[float, bool]:
    """The value of register a as a half, and whether it is a signalling NaN."""
    u = unbox_h(a)
    return h_to_f64(u), is_snan_h(u)


@njit_generic
def _h2(a: int, b: int) -> tuple[float, float, bool]:
    x, sa = _h(a)
    y, sb = _h(b)
    return x, y, sa or sb


@njit_generic
def _fma_h(a: int, b: int, c: int, negp: bool, negc: bool, rm: int) -> tuple[int, int]:
    x, sa = _h(a)
    y, sb = _h(b)
    z, sc = _h(c)
    return fma_slow(-x if negp else x, y, -z if negc else z, sa or sb or sc, rm, HALF)


# ---- arithmetic ----------------------------------------------------------------------


@njit(cache=True, inline="always")
def fadd_h(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return add_slow(x, y, snan, rm, HALF)


@njit(cache=True, inline="always")
def fsub_h(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return add_slow(x, -y, snan, rm, HALF)


@njit(cache=True, inline="always")
def fmul_h(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return mul_slow(x, y, snan, rm, HALF)


@njit(cache=True, inline="always")
def fdiv_h(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return div_slow(x, y, snan, rm, HALF)


@njit(cache=True, inline="always")
def fsqrt_h(a: int, rm: int) -> tuple[int, int]:
    x, snan = _h(a)
    return sqrt_slow(x, snan, rm, HALF)


@njit(cache=True, inline="always")
def fmadd_h(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_h(a, b, c, False, False, rm)


@njit(cache=True, inline="always")
def fmsub_h(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_h(a, b, c, False, True, rm)


@njit(cache=True, inline="always")
def fnmsub_h(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_h(a, b, c, True, False, rm)


@njit(cache=True, inline="always")
def fnmadd_h(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_h(a, b, c, True, True, rm)


# ---- sign injection, min/max, compare, classify ---------------------------------------


@njit(cache=True, inline="always")
def fsgnj_h(a: int, b: int) -> tuple[int, int]:
    return BOX_H | (unbox_h(a) & ~SIGN_H) | (unbox_h(b) & SIGN_H), np.int64(0)


@njit(cache=True, inline="always")
def fsgnjn_h(a: int, b: int) -> tuple[int, int]:
    return BOX_H | (unbox_h(a) & ~SIGN_H) | (~unbox_h(b) & SIGN_H), np.int64(0)


@njit(cache=True, inline="always")
def fsgnjx_h(a: int, b: int) -> tuple[int, int]:
    return BOX_H | (unbox_h(a) ^ (unbox_h(b) & SIGN_H)), np.int64(0)


@njit_generic
def _min_max_h(a: int, b: int, is_max: bool) -> tuple[int, int]:
    ua = unbox_h(a)
    ub = unbox_h(b)
    return min_max(ua, ub, h_to_f64(ua), h_to_f64(ub), is_snan_h(ua), is_snan_h(ub), is_max, HALF)


@njit(cache=True, inline="always")
def fmin_h(a: int, b: int) -> tuple[int, int]:
    return _min_max_h(a, b, False)


@njit(cache=True, inline="always")
def fmax_h(a: int, b: int) -> tuple[int, int]:
    return _min_max_h(a, b, True)


@njit(cache=True, inline="always")
def feq_h(a: int, b: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return compare(x, y, snan, EQ)


@njit(cache=True, inline="always")
def flt_h(a: int, b: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return compare(x, y, snan, LT)


@njit(cache=True, inline="always")
def fle_h(a: int, b: int) -> tuple[int, int]:
    x, y, snan = _h2(a, b)
    return compare(x, y, snan, LE)


@njit(cache=True, inline="always")
def fclass_h(a: int) -> tuple[int, int]:
    u = unbox_h(a)
    return classify((u & SIGN_H) != 0, (u >> 10) & 0x1F, 0x1F, u & 0x3FF, 1 << 9), np.int64(0)


# ---- moves and conversions -----------------------------------------------------------


@njit(cache=True, inline="always")
def fmv_x_h(a: int) -> tuple[int, int]:
    return ((a & 0xFFFF) ^ SIGN_H) - SIGN_H, np.int64(0)


@njit(cache=True, inline="always")
def fmv_h_x(x: int) -> tuple[int, int]:
    return BOX_H | (x & 0xFFFF), np.int64(0)


@njit_generic
def _to_int_h(a: int, rm: int, kind: int) -> tuple[int, int]:
    x = _h(a)[0]
    return to_int(x, math.isnan(x), rm, kind)


@njit(cache=True, inline="always")
def fcvt_w_h(a: int, rm: int) -> tuple[int, int]:
    return _to_int_h(a, rm, W)


@njit(cache=True, inline="always")
def fcvt_wu_h(a: int, rm: int) -> tuple[int, int]:
    return _to_int_h(a, rm, WU)


@njit(cache=True, inline="always")
def fcvt_l_h(a: int, rm: int) -> tuple[int, int]:
    return _to_int_h(a, rm, L)


@njit(cache=True, inline="always")
def fcvt_lu_h(a: int, rm: int) -> tuple[int, int]:
    return _to_int_h(a, rm, LU)


@njit(cache=True, inline="always")
def fcvt_h_w(x: int, rm: int) -> tuple[int, int]:
    return from_x(x, W, rm, HALF)


@njit(cache=True, inline="always")
def fcvt_h_wu(x: int, rm: int) -> tuple[int, int]:
    return from_x(x, WU, rm, HALF)


@njit(cache=True, inline="always")
def fcvt_h_l(x: int, rm: int) -> tuple[int, int]:
    return from_x(x, L, rm, HALF)


@njit(cache=True, inline="always")
def fcvt_h_lu(x: int, rm: int) -> tuple[int, int]:
    return from_x(x, LU, rm, HALF)


@njit(cache=True, inline="always")
def fcvt_s_h(a: int, rm: int) -> tuple[int, int]:
    x, snan = _h(a)
    return widen(x, snan, SINGLE)


@njit(cache=True, inline="always")
def fcvt_d_h(a: int, rm: int) -> tuple[int, int]:
    x, snan = _h(a)
    return widen(x, snan, DOUBLE)


@njit(cache=True, inline="always")
def fcvt_h_s(a: int, rm: int) -> tuple[int, int]:
    u = unbox_s(a)
    return narrow(s_to_f64(u), is_snan_s(u), rm, HALF)


@njit(cache=True, inline="always")
def fcvt_h_d(a: int, rm: int) -> tuple[int, int]:
    return narrow(f64_from_bits(a), is_snan_d(a), rm, HALF)
