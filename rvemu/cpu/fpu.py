"""The F and D extensions' operations, bit-exact with the RISC-V spec (IEEE 754-2008).

Every function takes raw register values (int64 bit patterns; singles NaN-boxed) and an already
resolved rounding mode rm (0 RNE, 1 RTZ, 2 RDN, 3 RUP, 4 RMM), and returns
(result, fflags) with fflags in the fcsr layout NX=1 UF=2 OF=4 DZ=8 NV=16. Results bound for an
x register are sign-extended integers; single results are NaN-boxed; NaN results are canonical.

Round-to-nearest with a normal result is the fast path: host arithmetic gives the result, an
exact error term (TwoSum, an FMA residual) gives the inexact flag. Anything else (other rounding
modes, NaN/inf/zero operands, subnormal or overflowing results) goes to the exact paths in
fpu_arith, which round through the integer rounding of fpu_round.
"""

import math

import numpy as np
from numba import njit

from rvemu.cpu.fpu_arith import (
    _FMA_HI,
    _FMA_LO,
    _SAFE_LO,
    NOT_FAST,
    add_directed_d,
    add_slow,
    div_directed_d,
    div_slow,
    err_fma,
    fma_directed_d,
    fma_slow,
    mul_directed_d,
    mul_slow,
    sqrt_directed_d,
    sqrt_slow,
)
from rvemu.cpu.fpu_bits import (
    BOX,
    DOUBLE,
    INF,
    MIN_NORMAL_D,
    MIN_NORMAL_S,
    NX,
    SIGN_D,
    SINGLE,
    box_f32,
    f64_bits,
    f64_from_bits,
    fma,
    is_snan_d,
    is_snan_s,
    s_to_f64,
    unbox_s,
)
from rvemu.cpu.fpu_compare import EQ, LE, LT, classify, compare, min_max
from rvemu.cpu.fpu_convert import LU, WU, L, W, d_to_s, from_int, s_to_d, to_int
from rvemu.cpu.fpu_round import RNE

from .jit import njit_generic

# ---- double precision ----------------------------------------------------------------
# An operation tries its round-to-nearest fast path, then the directed-rounding one
# (fpu_arith's `<op>_directed_d`), then the exact path. The commonest operations' first
# fast paths are functions of their own (`<op>_fast`, fflags NOT_FAST where they do not
# apply): the interpreter's loop inlines only those and hands the rest to the operation
# compiled apart (execute_gen.FP_HOT).


@njit(cache=True, inline="always")
def _add_d_fast(x: float, y: float, rm: int) -> tuple[int, int]:
    q = x + y
    if rm == RNE and MIN_NORMAL_D < abs(q) < INF:
        bb = q - x
        e = (x - (q - bb)) + (y - bb)
        return f64_bits(q), np.int64(NX if e != 0.0 else 0)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def _add_d(a: int, b: int, y: float, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    result, flags = _add_d_fast(x, y, rm)
    if flags == NOT_FAST:
        result, flags = add_directed_d(x, y, rm)
    if flags != NOT_FAST:
        return result, flags
    return add_slow(x, y, is_snan_d(a) or is_snan_d(b), rm, DOUBLE)


@njit(cache=True, inline="always")
def fadd_d_fast(a: int, b: int, rm: int) -> tuple[int, int]:
    return _add_d_fast(f64_from_bits(a), f64_from_bits(b), rm)


@njit(cache=True, inline="always")
def fadd_d(a: int, b: int, rm: int) -> tuple[int, int]:
    return _add_d(a, b, f64_from_bits(b), rm)


@njit(cache=True, inline="always")
def fsub_d_fast(a: int, b: int, rm: int) -> tuple[int, int]:
    return _add_d_fast(f64_from_bits(a), -f64_from_bits(b), rm)


@njit(cache=True, inline="always")
def fsub_d(a: int, b: int, rm: int) -> tuple[int, int]:
    return _add_d(a, b, -f64_from_bits(b), rm)


@njit(cache=True, inline="always")
def fmul_d_fast(a: int, b: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    y = f64_from_bits(b)
    q = x * y
    if rm == RNE and _SAFE_LO < abs(q) < INF:
        return f64_bits(q), np.int64(NX if fma(x, y, -q) != 0.0 else 0)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def fmul_d(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y = f64_from_bits(a), f64_from_bits(b)
    result, flags = fmul_d_fast(a, b, rm)
    if flags == NOT_FAST:
        result, flags = mul_directed_d(x, y, rm)
    if flags != NOT_FAST:
        return result, flags
    return mul_slow(x, y, is_snan_d(a) or is_snan_d(b), rm, DOUBLE)


@njit(cache=True, inline="always")
def fdiv_d_fast(a: int, b: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    y = f64_from_bits(b)
    # (Numba's Python error model raises on a division by zero: never divide by 0.0 here.)
    if rm == RNE and y != 0.0:
        q = x / y
        if MIN_NORMAL_D < abs(q) < INF and abs(x) > _SAFE_LO:
            return f64_bits(q), np.int64(NX if fma(-q, y, x) != 0.0 else 0)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def fdiv_d(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y = f64_from_bits(a), f64_from_bits(b)
    result, flags = fdiv_d_fast(a, b, rm)
    if flags == NOT_FAST:
        result, flags = div_directed_d(x, y, rm)
    if flags != NOT_FAST:
        return result, flags
    return div_slow(x, y, is_snan_d(a) or is_snan_d(b), rm, DOUBLE)


@njit(cache=True, inline="always")
def fsqrt_d(a: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    if rm == RNE and _SAFE_LO < x < INF:
        q = math.sqrt(x)
        return f64_bits(q), np.int64(NX if fma(-q, q, x) != 0.0 else 0)
    result, flags = sqrt_directed_d(x, rm)
    if flags != NOT_FAST:
        return result, flags
    return sqrt_slow(x, is_snan_d(a), rm, DOUBLE)


@njit(cache=True, inline="always")
def _fma_d_fast(x: float, y: float, z: float, rm: int) -> tuple[int, int]:
    if rm == RNE and _FMA_LO < abs(x * y) < _FMA_HI and abs(z) < _FMA_HI:
        r1, r2, _ = err_fma(x, y, z)
        if abs(r1) > MIN_NORMAL_D:
            return f64_bits(r1), np.int64(NX if r2 != 0.0 else 0)
    return np.int64(0), np.int64(NOT_FAST)


@njit(cache=True, inline="always")
def _fma_d(x: float, y: float, z: float, snan: bool, rm: int) -> tuple[int, int]:
    result, flags = _fma_d_fast(x, y, z, rm)
    if flags == NOT_FAST:
        result, flags = fma_directed_d(x, y, z, rm)
    if flags != NOT_FAST:
        return result, flags
    return fma_slow(x, y, z, snan, rm, DOUBLE)


@njit_generic
def _snan3_d(a: int, b: int, c: int) -> bool:
    return is_snan_d(a) or is_snan_d(b) or is_snan_d(c)


@njit(cache=True, inline="always")
def fmadd_d_fast(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_d_fast(f64_from_bits(a), f64_from_bits(b), f64_from_bits(c), rm)


@njit(cache=True, inline="always")
def fmadd_d(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    x, y, z = f64_from_bits(a), f64_from_bits(b), f64_from_bits(c)
    return _fma_d(x, y, z, _snan3_d(a, b, c), rm)


@njit(cache=True, inline="always")
def fmsub_d(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    x, y, z = f64_from_bits(a), f64_from_bits(b), f64_from_bits(c)
    return _fma_d(x, y, -z, _snan3_d(a, b, c), rm)


@njit(cache=True, inline="always")
def fnmsub_d(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    x, y, z = f64_from_bits(a), f64_from_bits(b), f64_from_bits(c)
    return _fma_d(-x, y, z, _snan3_d(a, b, c), rm)


@njit(cache=True, inline="always")
def fnmadd_d(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    x, y, z = f64_from_bits(a), f64_from_bits(b), f64_from_bits(c)
    return _fma_d(-x, y, -z, _snan3_d(a, b, c), rm)


@njit(cache=True, inline="always")
def fmin_d(a: int, b: int) -> tuple[int, int]:
    x, y = f64_from_bits(a), f64_from_bits(b)
    return min_max(a, b, x, y, is_snan_d(a), is_snan_d(b), False, DOUBLE)


@njit(cache=True, inline="always")
def fmax_d(a: int, b: int) -> tuple[int, int]:
    x, y = f64_from_bits(a), f64_from_bits(b)
    return min_max(a, b, x, y, is_snan_d(a), is_snan_d(b), True, DOUBLE)


@njit(cache=True, inline="always")
def fsgnj_d(a: int, b: int) -> tuple[int, int]:
    return (a & ~SIGN_D) | (b & SIGN_D), np.int64(0)


@njit(cache=True, inline="always")
def fsgnjn_d(a: int, b: int) -> tuple[int, int]:
    return (a & ~SIGN_D) | (~b & SIGN_D), np.int64(0)


@njit(cache=True, inline="always")
def fsgnjx_d(a: int, b: int) -> tuple[int, int]:
    return a ^ (b & SIGN_D), np.int64(0)


@njit(cache=True, inline="always")
def feq_d(a: int, b: int) -> tuple[int, int]:
    return compare(f64_from_bits(a), f64_from_bits(b), is_snan_d(a) or is_snan_d(b), EQ)


@njit(cache=True, inline="always")
def flt_d(a: int, b: int) -> tuple[int, int]:
    return compare(f64_from_bits(a), f64_from_bits(b), is_snan_d(a) or is_snan_d(b), LT)


@njit(cache=True, inline="always")
def fle_d(a: int, b: int) -> tuple[int, int]:
    return compare(f64_from_bits(a), f64_from_bits(b), is_snan_d(a) or is_snan_d(b), LE)


@njit(cache=True, inline="always")
def fclass_d(a: int) -> tuple[int, int]:
    r = classify(a < 0, (a >> 52) & 0x7FF, 0x7FF, a & 0xFFFFFFFFFFFFF, 1 << 51)
    return r, np.int64(0)


@njit(cache=True, inline="always")
def fcvt_w_d(a: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    return to_int(x, math.isnan(x), rm, W)


@njit(cache=True, inline="always")
def fcvt_wu_d(a: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    return to_int(x, math.isnan(x), rm, WU)


@njit(cache=True, inline="always")
def fcvt_l_d(a: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    return to_int(x, math.isnan(x), rm, L)


@njit(cache=True, inline="always")
def fcvt_lu_d(a: int, rm: int) -> tuple[int, int]:
    x = f64_from_bits(a)
    return to_int(x, math.isnan(x), rm, LU)


@njit(cache=True, inline="always")
def fcvt_d_w(x: int, rm: int) -> tuple[int, int]:
    v = ((x & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    return from_int(-v if v < 0 else v, v < 0, rm, DOUBLE)


@njit(cache=True, inline="always")
def fcvt_d_wu(x: int, rm: int) -> tuple[int, int]:
    return from_int(x & 0xFFFFFFFF, False, rm, DOUBLE)


@njit(cache=True, inline="always")
def fcvt_d_l(x: int, rm: int) -> tuple[int, int]:
    return from_int(-x if x < 0 else x, x < 0, rm, DOUBLE)  # -(-2**63) wraps to 2**63 unsigned


@njit(cache=True, inline="always")
def fcvt_d_lu(x: int, rm: int) -> tuple[int, int]:
    return from_int(x, False, rm, DOUBLE)


@njit(cache=True, inline="always")
def fmv_x_d(a: int) -> tuple[int, int]:
    return a, np.int64(0)


@njit(cache=True, inline="always")
def fmv_d_x(x: int) -> tuple[int, int]:
    return x, np.int64(0)


@njit(cache=True, inline="always")
def fcvt_s_d(a: int, rm: int) -> tuple[int, int]:
    return d_to_s(a, f64_from_bits(a), is_snan_d(a), rm)


@njit(cache=True, inline="always")
def fcvt_d_s(a: int, rm: int) -> tuple[int, int]:
    u = unbox_s(a)
    return s_to_d(s_to_f64(u), is_snan_s(u))


# ---- single precision ----------------------------------------------------------------
# Singles compute in double: products of singles are exact there, and rounding a double
# sum, quotient or root to single gives the correctly rounded single (53 >= 2*24 + 2).


@njit_generic
def _unbox2(a: int, b: int) -> tuple[float, float, bool]:
    ua = unbox_s(a)
    ub = unbox_s(b)
    return s_to_f64(ua), s_to_f64(ub), is_snan_s(ua) or is_snan_s(ub)


@njit_generic
def _add_s(x: float, y: float, snan: bool, rm: int) -> tuple[int, int]:
    q = x + y
    if rm == RNE:
        r = np.float32(q)
        rd = np.float64(r)
        if MIN_NORMAL_S < abs(rd) < INF:
            bb = q - x
            e = (x - (q - bb)) + (y - bb)
            return box_f32(r), np.int64(NX if e != 0.0 or rd != q else 0)
    return add_slow(x, y, snan, rm, SINGLE)


@njit(cache=True, inline="always")
def fadd_s(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    return _add_s(x, y, snan, rm)


@njit(cache=True, inline="always")
def fsub_s(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    return _add_s(x, -y, snan, rm)


@njit(cache=True, inline="always")
def fmul_s(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    if rm == RNE:
        q = x * y
        r = np.float32(q)
        rd = np.float64(r)
        if MIN_NORMAL_S < abs(rd) < INF:
            return box_f32(r), np.int64(NX if rd != q else 0)
    return mul_slow(x, y, snan, rm, SINGLE)


@njit(cache=True, inline="always")
def fdiv_s(a: int, b: int, rm: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    if rm == RNE and y != 0.0:  # x / 0.0 would raise (Numba's Python error model)
        r = np.float32(x / y)
        rd = np.float64(r)
        if MIN_NORMAL_S < abs(rd) < INF:
            return box_f32(r), np.int64(NX if rd * y != x else 0)
    return div_slow(x, y, snan, rm, SINGLE)


@njit(cache=True, inline="always")
def fsqrt_s(a: int, rm: int) -> tuple[int, int]:
    u = unbox_s(a)
    x = s_to_f64(u)
    if rm == RNE and x > 0.0:
        r = np.float32(math.sqrt(x))
        rd = np.float64(r)
        if rd < INF:
            return box_f32(r), np.int64(NX if rd * rd != x else 0)
    return sqrt_slow(x, is_snan_s(u), rm, SINGLE)


@njit_generic
def _fma_s(a: int, b: int, c: int, negp: bool, negc: bool, rm: int) -> tuple[int, int]:
    ua = unbox_s(a)
    ub = unbox_s(b)
    uc = unbox_s(c)
    x = s_to_f64(ua)
    y = s_to_f64(ub)
    z = s_to_f64(uc)
    if negp:
        x = -x
    if negc:
        z = -z
    if rm == RNE:
        p = x * y  # exact
        q = p + z
        bb = q - p
        e = (p - (q - bb)) + (z - bb)
        # Rounding q again to single is only wrong when q sits exactly halfway between
        # two singles while the exact sum does not.
        if e == 0.0 or (f64_bits(q) & 0x1FFFFFFF) != 0x10000000:
            r = np.float32(q)
            rd = np.float64(r)
            if MIN_NORMAL_S < abs(rd) < INF:
                return box_f32(r), np.int64(NX if e != 0.0 or rd != q else 0)
    snan = is_snan_s(ua) or is_snan_s(ub) or is_snan_s(uc)
    return fma_slow(x, y, z, snan, rm, SINGLE)


@njit(cache=True, inline="always")
def fmadd_s(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_s(a, b, c, False, False, rm)


@njit(cache=True, inline="always")
def fmsub_s(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_s(a, b, c, False, True, rm)


@njit(cache=True, inline="always")
def fnmsub_s(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_s(a, b, c, True, False, rm)


@njit(cache=True, inline="always")
def fnmadd_s(a: int, b: int, c: int, rm: int) -> tuple[int, int]:
    return _fma_s(a, b, c, True, True, rm)


@njit_generic
def _min_max_s(a: int, b: int, is_max: bool) -> tuple[int, int]:
    ua = unbox_s(a)
    ub = unbox_s(b)
    x = s_to_f64(ua)
    y = s_to_f64(ub)
    return min_max(ua, ub, x, y, is_snan_s(ua), is_snan_s(ub), is_max, SINGLE)


@njit(cache=True, inline="always")
def fmin_s(a: int, b: int) -> tuple[int, int]:
    return _min_max_s(a, b, False)


@njit(cache=True, inline="always")
def fmax_s(a: int, b: int) -> tuple[int, int]:
    return _min_max_s(a, b, True)


@njit(cache=True, inline="always")
def fsgnj_s(a: int, b: int) -> tuple[int, int]:
    return BOX | (unbox_s(a) & 0x7FFFFFFF) | (unbox_s(b) & 0x80000000), np.int64(0)


@njit(cache=True, inline="always")
def fsgnjn_s(a: int, b: int) -> tuple[int, int]:
    return BOX | (unbox_s(a) & 0x7FFFFFFF) | (~unbox_s(b) & 0x80000000), np.int64(0)


@njit(cache=True, inline="always")
def fsgnjx_s(a: int, b: int) -> tuple[int, int]:
    return BOX | (unbox_s(a) ^ (unbox_s(b) & 0x80000000)), np.int64(0)


@njit(cache=True, inline="always")
def feq_s(a: int, b: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    return compare(x, y, snan, EQ)


@njit(cache=True, inline="always")
def flt_s(a: int, b: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    return compare(x, y, snan, LT)


@njit(cache=True, inline="always")
def fle_s(a: int, b: int) -> tuple[int, int]:
    x, y, snan = _unbox2(a, b)
    return compare(x, y, snan, LE)


@njit(cache=True, inline="always")
def fclass_s(a: int) -> tuple[int, int]:
    u = unbox_s(a)
    r = classify((u & 0x80000000) != 0, (u >> 23) & 0xFF, 0xFF, u & 0x7FFFFF, 1 << 22)
    return r, np.int64(0)


@njit_generic
def _s_value(a: int) -> float:
    return s_to_f64(unbox_s(a))


@njit(cache=True, inline="always")
def fcvt_w_s(a: int, rm: int) -> tuple[int, int]:
    x = _s_value(a)
    return to_int(x, math.isnan(x), rm, W)


@njit(cache=True, inline="always")
def fcvt_wu_s(a: int, rm: int) -> tuple[int, int]:
    x = _s_value(a)
    return to_int(x, math.isnan(x), rm, WU)


@njit(cache=True, inline="always")
def fcvt_l_s(a: int, rm: int) -> tuple[int, int]:
    x = _s_value(a)
    return to_int(x, math.isnan(x), rm, L)


@njit(cache=True, inline="always")
def fcvt_lu_s(a: int, rm: int) -> tuple[int, int]:
    x = _s_value(a)
    return to_int(x, math.isnan(x), rm, LU)


@njit(cache=True, inline="always")
def fcvt_s_w(x: int, rm: int) -> tuple[int, int]:
    v = ((x & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    return from_int(-v if v < 0 else v, v < 0, rm, SINGLE)


@njit(cache=True, inline="always")
def fcvt_s_wu(x: int, rm: int) -> tuple[int, int]:
    return from_int(x & 0xFFFFFFFF, False, rm, SINGLE)


@njit(cache=True, inline="always")
def fcvt_s_l(x: int, rm: int) -> tuple[int, int]:
    return from_int(-x if x < 0 else x, x < 0, rm, SINGLE)


@njit(cache=True, inline="always")
def fcvt_s_lu(x: int, rm: int) -> tuple[int, int]:
    return from_int(x, False, rm, SINGLE)


@njit(cache=True, inline="always")
def fmv_x_w(a: int) -> tuple[int, int]:
    return ((a & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000, np.int64(0)


@njit(cache=True, inline="always")
def fmv_w_x(x: int) -> tuple[int, int]:
    return BOX | (x & 0xFFFFFFFF), np.int64(0)
