"""The F/D library (rvemu.cpu.fpu) against hand-derived IEEE 754 results and an exact reference.

Edge cases carry bit patterns worked out by hand from the IEEE rules and the RISC-V spec
(comments show the derivation); the random sweeps compare every rounding mode of every
arithmetic operation with tests/fpu_ref.py, which rounds exact Fractions independently of
the library. A table that lists the five rounding modes fails if any mode is mishandled.
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

import fpu_ref as ref
import numpy as np
import pytest
from fpu_cases import d_reg, pairs, s_raw, s_reg, singles, triples
from fpu_ref import DZ, NV, NX, OF, RDN, RMM, RNE, RTZ, RUP, UF, D, S, to_i64

from rvemu.cpu import fpu

MODES = (RNE, RTZ, RDN, RUP, RMM)
MODE_NAMES = {RNE: "RNE", RTZ: "RTZ", RDN: "RDN", RUP: "RUP", RMM: "RMM"}

CANON_D = 0x7FF8000000000000
CANON_S = s_raw(0x7FC00000)
QNAN_D = 0x7FF8000000000123  # a quiet NaN with a payload
SNAN_D = 0x7FF0000000000001
QNAN_S = s_raw(0x7FC00123)
SNAN_S = s_raw(0x7F800001)
INF_D, NINF_D = 0x7FF0000000000000, to_i64(0xFFF0000000000000)
INF_S, NINF_S = s_raw(0x7F800000), s_raw(0xFF800000)
MAX_D, MIN_NORMAL_D = 0x7FEFFFFFFFFFFFFF, 0x0010000000000000
ZERO_D, NZERO_D = 0, to_i64(1 << 63)
ZERO_S, NZERO_S = s_raw(0), s_raw(0x80000000)


def call(fn, *args: int) -> tuple[int, int]:
    """Run a library function; the result as plain Python ints (register value, fflags)."""
    r, flags = fn(*args)
    return int(r), int(flags)


def neg_d(reg: int) -> int:
    return to_i64(reg ^ (1 << 63))


def hexs(v: int) -> str:
    return f"{v & 0xFFFFFFFFFFFFFFFF:#018x}"


def check_modes(fn, args: tuple[int, ...], table: dict[int, tuple[int, int]]) -> None:
    """fn(*args, rm) must give table[rm] for every rounding mode listed."""
    for rm, (want, want_flags) in table.items():
        got, flags = call(fn, *args, rm)
        assert (hexs(got), flags) == (hexs(want), want_flags), f"{fn.__name__} {MODE_NAMES[rm]}"


def all_modes(want: int, flags: int) -> dict[int, tuple[int, int]]:
    return {rm: (want, flags) for rm in MODES}


# ---------------------------------------------------------------- subnormals and underflow


def test_subnormal_tie_rounds_per_mode():
    # 2**-1074 * 0.5 = 2**-1075: exactly halfway between 0 and the smallest subnormal.
    tiny = 0x0000000000000001
    half = d_reg(0.5)
    check_modes(
        fpu.fmul_d,
        (tiny, half),
        {
            RNE: (ZERO_D, NX | UF),  # tie to even: zero
            RTZ: (ZERO_D, NX | UF),
            RDN: (ZERO_D, NX | UF),
            RUP: (tiny, NX | UF),
            RMM: (tiny, NX | UF),  # tie away from zero
        },
    )
    check_modes(
        fpu.fmul_d,
        (neg_d(tiny), half),
        {
            RNE: (NZERO_D, NX | UF),
            RTZ: (NZERO_D, NX | UF),
            RDN: (neg_d(tiny), NX | UF),
            RUP: (NZERO_D, NX | UF),
            RMM: (neg_d(tiny), NX | UF),
        },
    )


def test_exact_subnormal_results_raise_nothing():
    # 2**-1022 * 0.5 = 2**-1023 is a subnormal, but exact: no UF (UF needs NX too).
    check_modes(fpu.fmul_d, (MIN_NORMAL_D, d_reg(0.5)), all_modes(0x0008000000000000, 0))
    check_modes(fpu.fadd_d, (1, 1), all_modes(2, 0))  # subnormal inputs, exact sum
    check_modes(fpu.fsub_d, (MIN_NORMAL_D, 1), all_modes(0x000FFFFFFFFFFFFF, 0))
    # single: 2**-149 + 2**-149 = 2**-148
    check_modes(fpu.fadd_s, (s_raw(1), s_raw(1)), all_modes(s_raw(2), 0))
    # sqrt(2**-1074) = 2**-537: exponent field 1023 - 537 = 486 = 0x1e6
    check_modes(fpu.fsqrt_d, (1,), all_modes(0x1E60000000000000, 0))
    # sqrt(2**-148) = 2**-74: exponent field 127 - 74 = 53 = 0x35
    check_modes(fpu.fsqrt_s, (s_raw(2),), all_modes(s_raw(0x35 << 23), 0))


def test_underflow_is_detected_after_rounding_double():
    # (1 - 2**-52) * (1 + 2**-52) * 2**-1022 = 2**-1022 * (1 - 2**-104): just below the
    # smallest normal. Rounded to 53 bits with an unbounded exponent it is 2**-1022 again in
    # RNE/RUP/RMM, so it is not tiny: NX without UF. Rounding down gives the largest
    # subnormal, which is tiny: NX and UF.
    a = 0x3FEFFFFFFFFFFFFE  # 1 - 2**-52
    b = 0x0010000000000001  # (1 + 2**-52) * 2**-1022
    largest_sub = 0x000FFFFFFFFFFFFF
    check_modes(
        fpu.fmul_d,
        (a, b),
        {
            RNE: (MIN_NORMAL_D, NX),
            RTZ: (largest_sub, NX | UF),
            RDN: (largest_sub, NX | UF),
            RUP: (MIN_NORMAL_D, NX),
            RMM: (MIN_NORMAL_D, NX),
        },
    )
    check_modes(
        fpu.fmul_d,
        (neg_d(a), b),
        {
            RNE: (neg_d(MIN_NORMAL_D), NX),
            RTZ: (neg_d(largest_sub), NX | UF),
            RDN: (neg_d(MIN_NORMAL_D), NX),
            RUP: (neg_d(largest_sub), NX | UF),
            RMM: (neg_d(MIN_NORMAL_D), NX),
        },
    )


def test_underflow_is_detected_after_rounding_single():
    # The same construction in single: (1 - 2**-23) * (1 + 2**-23) * 2**-126.
    a = s_raw(0x3F7FFFFE)
    b = s_raw(0x00800001)
    check_modes(
        fpu.fmul_s,
        (a, b),
        {
            RNE: (s_raw(0x00800000), NX),
            RTZ: (s_raw(0x007FFFFF), NX | UF),
            RDN: (s_raw(0x007FFFFF), NX | UF),
            RUP: (s_raw(0x00800000), NX),
            RMM: (s_raw(0x00800000), NX),
        },
    )


def test_underflow_when_value_stays_tiny_after_rounding():
    # 2**-1022 * (1 - 2**-53) lies exactly halfway between the largest subnormal and
    # 2**-1022 but is representable with an unbounded exponent, hence tiny: UF in every
    # mode, whichever way the subnormal rounding goes.
    a = 0x3FEFFFFFFFFFFFFF
    check_modes(
        fpu.fmul_d,
        (a, MIN_NORMAL_D),
        {
            RNE: (MIN_NORMAL_D, NX | UF),  # tie: the even neighbour is 2**-1022
            RTZ: (0x000FFFFFFFFFFFFF, NX | UF),
            RDN: (0x000FFFFFFFFFFFFF, NX | UF),
            RUP: (MIN_NORMAL_D, NX | UF),
            RMM: (MIN_NORMAL_D, NX | UF),
        },
    )


# ---------------------------------------------------------------- overflow


def test_overflow_goes_to_inf_or_max_finite_per_mode():
    two = d_reg(2.0)
    check_modes(
        fpu.fmul_d,
        (MAX_D, two),
        {
            RNE: (INF_D, OF | NX),
            RTZ: (MAX_D, OF | NX),
            RDN: (MAX_D, OF | NX),
            RUP: (INF_D, OF | NX),
            RMM: (INF_D, OF | NX),
        },
    )
    check_modes(
        fpu.fmul_d,
        (neg_d(MAX_D), two),
        {
            RNE: (NINF_D, OF | NX),
            RTZ: (neg_d(MAX_D), OF | NX),
            RDN: (NINF_D, OF | NX),
            RUP: (neg_d(MAX_D), OF | NX),
            RMM: (NINF_D, OF | NX),
        },
    )
    max_s = s_raw(0x7F7FFFFF)
    check_modes(
        fpu.fadd_s,
        (max_s, max_s),
        {
            RNE: (INF_S, OF | NX),
            RTZ: (max_s, OF | NX),
            RDN: (max_s, OF | NX),
            RUP: (INF_S, OF | NX),
            RMM: (INF_S, OF | NX),
        },
    )


def test_overflow_is_decided_after_rounding():
    # MAX_D + half an ulp of it (2**970): a tie whose even neighbour is 2**1024 -> OF in the
    # round-up modes; truncating modes give MAX_D and that is just inexact, not an overflow.
    half_ulp = 0x7C90000000000000  # 2**970
    check_modes(
        fpu.fadd_d,
        (MAX_D, half_ulp),
        {
            RNE: (INF_D, OF | NX),
            RTZ: (MAX_D, NX),
            RDN: (MAX_D, NX),
            RUP: (INF_D, OF | NX),
            RMM: (INF_D, OF | NX),
        },
    )
    # A quarter ulp: RNE and RMM round back to MAX_D without overflow.
    quarter_ulp = 0x7C80000000000000  # 2**969
    check_modes(
        fpu.fadd_d,
        (MAX_D, quarter_ulp),
        {
            RNE: (MAX_D, NX),
            RTZ: (MAX_D, NX),
            RDN: (MAX_D, NX),
            RUP: (INF_D, OF | NX),
            RMM: (MAX_D, NX),
        },
    )


def test_directed_rounding_of_a_sum_near_max():
    # (2**1022 - 2**970) - (2**1024 - 2**971) = -1.5 * 2**1023 + 2**970: a tie (ulp 2**971)
    # between 0xffe8000000000000 (even) and 0xffe7ffffffffffff. TwoSum's error term
    # overflows to NaN on these operands, so it cannot decide the directed modes.
    lo_mag, hi_mag = to_i64(0xFFE7FFFFFFFFFFFF), to_i64(0xFFE8000000000000)
    check_modes(
        fpu.fsub_d,
        (0x7FCFFFFFFFFFFFFE, MAX_D),
        {
            RNE: (hi_mag, NX),
            RTZ: (lo_mag, NX),
            RDN: (hi_mag, NX),
            RUP: (lo_mag, NX),
            RMM: (hi_mag, NX),
        },
    )


# ---------------------------------------------------------------- signed zeros


def test_exact_zero_sum_is_minus_zero_only_in_rdn():
    one = d_reg(1.0)
    for fn, args in (
        (fpu.fadd_d, (one, neg_d(one))),
        (fpu.fsub_d, (one, one)),
        (fpu.fadd_d, (ZERO_D, NZERO_D)),
        (fpu.fsub_d, (NZERO_D, NZERO_D)),
    ):
        table = all_modes(ZERO_D, 0)
        table[RDN] = (NZERO_D, 0)
        check_modes(fn, args, table)
    table = all_modes(ZERO_S, 0)
    table[RDN] = (NZERO_S, 0)
    check_modes(fpu.fadd_s, (s_reg(1.5), s_reg(-1.5)), table)
    # Same-signed zeros keep their sign in every mode.
    check_modes(fpu.fadd_d, (NZERO_D, NZERO_D), all_modes(NZERO_D, 0))
    check_modes(fpu.fsub_s, (NZERO_S, ZERO_S), all_modes(NZERO_S, 0))
    # Products and quotients take the xor of the signs.
    check_modes(fpu.fmul_d, (NZERO_D, d_reg(5.0)), all_modes(NZERO_D, 0))
    check_modes(fpu.fdiv_s, (ZERO_S, s_reg(-3.0)), all_modes(NZERO_S, 0))
    check_modes(fpu.fsqrt_d, (NZERO_D,), all_modes(NZERO_D, 0))  # sqrt(-0) = -0, no NV


def test_fused_zero_signs():
    # fnmadd computes -(a*b) - c: -(0*1) - 0 = -0 + -0 = -0 in every mode.
    one = d_reg(1.0)
    check_modes(fpu.fnmadd_d, (ZERO_D, one, ZERO_D), all_modes(NZERO_D, 0))
    # fmadd 0*1 + -0 = +0 + -0: +0 except in RDN
    table = all_modes(ZERO_D, 0)
    table[RDN] = (NZERO_D, 0)
    check_modes(fpu.fmadd_d, (ZERO_D, one, NZERO_D), table)
    # 1*1 - 1 = exact zero: sign by the rounding mode, too
    check_modes(fpu.fmsub_d, (one, one, one), table)


# ---------------------------------------------------------------- NaNs


def test_nan_results_are_canonical_and_nv_only_for_snan():
    one_d, one_s = d_reg(1.0), s_reg(1.0)
    for rm in MODES:
        for fn in (fpu.fadd_d, fpu.fsub_d, fpu.fmul_d, fpu.fdiv_d):
            assert call(fn, QNAN_D, one_d, rm) == (CANON_D, 0)
            assert call(fn, one_d, neg_d(QNAN_D), rm) == (CANON_D, 0)
            assert call(fn, SNAN_D, one_d, rm) == (CANON_D, NV)
            assert call(fn, QNAN_D, SNAN_D, rm) == (CANON_D, NV)
        for fn in (fpu.fadd_s, fpu.fsub_s, fpu.fmul_s, fpu.fdiv_s):
            assert call(fn, QNAN_S, one_s, rm) == (CANON_S, 0)
            assert call(fn, one_s, SNAN_S, rm) == (CANON_S, NV)
        assert call(fpu.fsqrt_d, QNAN_D, rm) == (CANON_D, 0)
        assert call(fpu.fsqrt_s, SNAN_S, rm) == (CANON_S, NV)
        assert call(fpu.fmadd_d, one_d, one_d, QNAN_D, rm) == (CANON_D, 0)
        assert call(fpu.fnmsub_s, SNAN_S, one_s, one_s, rm) == (CANON_S, NV)


def test_invalid_operations_give_canonical_nan_with_nv():
    for rm in MODES:
        assert call(fpu.fadd_d, INF_D, NINF_D, rm) == (CANON_D, NV)
        assert call(fpu.fsub_s, INF_S, INF_S, rm) == (CANON_S, NV)
        assert call(fpu.fmul_d, INF_D, NZERO_D, rm) == (CANON_D, NV)
        assert call(fpu.fdiv_s, INF_S, NINF_S, rm) == (CANON_S, NV)
        # inf * 0 + qNaN is invalid even though the addend is a quiet NaN (spec, F chapter)
        assert call(fpu.fmadd_d, INF_D, ZERO_D, QNAN_D, rm) == (CANON_D, NV)
        assert call(fpu.fmadd_s, ZERO_S, NINF_S, QNAN_S, rm) == (CANON_S, NV)
        # inf * 1 - inf
        assert call(fpu.fmsub_d, INF_D, d_reg(1.0), INF_D, rm) == (CANON_D, NV)


def test_unboxed_single_reads_as_canonical_nan():
    unboxed_one = 0x3F800000  # upper half not all ones
    half_boxed = to_i64(0xFFFFFFFE_3F800000)
    for bad in (unboxed_one, half_boxed):
        assert call(fpu.fadd_s, bad, s_reg(1.0), RNE) == (CANON_S, 0)  # quiet: no NV
        assert call(fpu.fclass_s, bad) == (1 << 9, 0)
        assert call(fpu.fcvt_d_s, bad, RNE) == (CANON_D, 0)
        assert call(fpu.fmin_s, bad, s_reg(2.0)) == (s_reg(2.0), 0)
        assert call(fpu.feq_s, bad, bad) == (0, 0)
        # fsgnj reads the canonical NaN too: the result is a boxed (negated) canonical NaN
        assert call(fpu.fsgnjn_s, bad, s_reg(1.0)) == (s_raw(0xFFC00000), 0)


def test_moves_and_sign_injection_keep_payloads():
    assert call(fpu.fmv_x_w, QNAN_S) == (0x7FC00123, 0)
    assert call(fpu.fmv_x_w, s_raw(0x80000001)) == (to_i64(0xFFFFFFFF80000001), 0)
    assert call(fpu.fmv_w_x, to_i64(0x12345678_7F800001)) == (SNAN_S, 0)
    assert call(fpu.fmv_x_d, SNAN_D) == (SNAN_D, 0)
    assert call(fpu.fsgnjn_d, SNAN_D, ZERO_D) == (to_i64(0xFFF0000000000001), 0)
    assert call(fpu.fsgnjx_s, QNAN_S, s_reg(-1.0)) == (s_raw(0xFFC00123), 0)
    assert call(fpu.fsgnj_d, d_reg(2.0), NZERO_D) == (d_reg(-2.0), 0)


# ---------------------------------------------------------------- ties


def test_ties_in_every_mode_double():
    one = d_reg(1.0)
    half_ulp = d_reg(2.0**-53)
    up = 0x3FF0000000000001  # 1 + 2**-52
    # 1 + 2**-53: halfway between 1 (even) and 1 + 2**-52 (odd)
    check_modes(
        fpu.fadd_d,
        (one, half_ulp),
        {
            RNE: (one, NX),
            RTZ: (one, NX),
            RDN: (one, NX),
            RUP: (up, NX),
            RMM: (up, NX),
        },
    )
    check_modes(
        fpu.fsub_d,
        (neg_d(one), half_ulp),
        {
            RNE: (neg_d(one), NX),
            RTZ: (neg_d(one), NX),
            RDN: (neg_d(up), NX),
            RUP: (neg_d(one), NX),
            RMM: (neg_d(up), NX),
        },
    )
    # (1 + 2**-52) + 2**-53: halfway between an odd and an even neighbour: RNE rounds up
    check_modes(
        fpu.fadd_d,
        (up, half_ulp),
        {
            RNE: (0x3FF0000000000002, NX),
            RTZ: (up, NX),
            RDN: (up, NX),
            RUP: (0x3FF0000000000002, NX),
            RMM: (0x3FF0000000000002, NX),
        },
    )


def test_ties_in_every_mode_single():
    # 1 + 2**-24 halfway between 1.0 and 1 + 2**-23
    one, half_ulp = s_reg(1.0), s_reg(2.0**-24)
    up = s_raw(0x3F800001)
    check_modes(
        fpu.fadd_s,
        (one, half_ulp),
        {RNE: (one, NX), RTZ: (one, NX), RDN: (one, NX), RUP: (up, NX), RMM: (up, NX)},
    )
    # 3 * (1 + 2**-23) ... exact product 3 + 3*2**-23 = 0x40400001.8 in ulps: a tie between
    # 0x40400001 (odd) and 0x40400002 (even)
    check_modes(
        fpu.fmul_s,
        (s_reg(3.0), up),
        {
            RNE: (s_raw(0x40400002), NX),
            RTZ: (s_raw(0x40400001), NX),
            RDN: (s_raw(0x40400001), NX),
            RUP: (s_raw(0x40400002), NX),
            RMM: (s_raw(0x40400002), NX),
        },
    )


# ---------------------------------------------------------------- fused multiply-add


def test_fma_rounds_once():
    # a = 1 + 2**-27: a*a = 1 + 2**-26 + 2**-54 exactly. fmul rounds off the 2**-54, so
    # fmul then fsub leaves 0; the fused a*a - (1 + 2**-26) keeps it.
    a = 0x3FF0000002000000
    sq = 0x3FF0000004000000  # 1 + 2**-26
    check_modes(fpu.fmsub_d, (a, a, sq), all_modes(d_reg(2.0**-54), 0))
    product, flags = call(fpu.fmul_d, a, a, RNE)
    assert (product, flags) == (sq, NX)
    assert call(fpu.fsub_d, product, sq, RNE) == (ZERO_D, 0)
    # Single: (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24; fmadd with c = 0 rounds like fmul
    # (a tie: RNE down, RMM up), while c = -(1 + 2**-11) makes it exact.
    b = s_raw(0x3F800800)
    check_modes(
        fpu.fmadd_s,
        (b, b, ZERO_S),
        {
            RNE: (s_raw(0x3F801000), NX),
            RTZ: (s_raw(0x3F801000), NX),
            RDN: (s_raw(0x3F801000), NX),
            RUP: (s_raw(0x3F801001), NX),
            RMM: (s_raw(0x3F801001), NX),
        },
    )
    check_modes(fpu.fmsub_s, (b, b, s_raw(0x3F801000)), all_modes(s_reg(2.0**-24), 0))


def test_fma_variants_signs():
    two, three, one = d_reg(2.0), d_reg(3.0), d_reg(1.0)
    assert call(fpu.fmadd_d, two, three, one, RNE) == (d_reg(7.0), 0)
    assert call(fpu.fmsub_d, two, three, one, RNE) == (d_reg(5.0), 0)
    assert call(fpu.fnmsub_d, two, three, one, RNE) == (d_reg(-5.0), 0)  # -(a*b) + c
    assert call(fpu.fnmadd_d, two, three, one, RNE) == (d_reg(-7.0), 0)  # -(a*b) - c
    two, three, one = s_reg(2.0), s_reg(3.0), s_reg(1.0)
    assert call(fpu.fmadd_s, two, three, one, RNE) == (s_reg(7.0), 0)
    assert call(fpu.fmsub_s, two, three, one, RNE) == (s_reg(5.0), 0)
    assert call(fpu.fnmsub_s, two, three, one, RNE) == (s_reg(-5.0), 0)
    assert call(fpu.fnmadd_s, two, three, one, RNE) == (s_reg(-7.0), 0)


# ---------------------------------------------------------------- sqrt, division by zero


def test_sqrt_of_negative_is_invalid():
    for rm in MODES:
        for x in (d_reg(-1.0), NINF_D, neg_d(1)):  # -1, -inf, the negative smallest subnormal
            assert call(fpu.fsqrt_d, x, rm) == (CANON_D, NV)
        assert call(fpu.fsqrt_s, s_reg(-4.0), rm) == (CANON_S, NV)
        assert call(fpu.fsqrt_d, INF_D, rm) == (INF_D, 0)
    # sqrt(2) = 1.41421356237309504880... lies between 0x3ff6a09e667f3bcc (1.41421356237309492)
    # and 0x3ff6a09e667f3bcd (1.41421356237309515), nearer the upper one
    check_modes(
        fpu.fsqrt_d,
        (d_reg(2.0),),
        {
            RNE: (0x3FF6A09E667F3BCD, NX),
            RTZ: (0x3FF6A09E667F3BCC, NX),
            RDN: (0x3FF6A09E667F3BCC, NX),
            RUP: (0x3FF6A09E667F3BCD, NX),
            RMM: (0x3FF6A09E667F3BCD, NX),
        },
    )


def test_division_by_zero():
    one, zero = d_reg(1.0), ZERO_D
    for rm in MODES:
        assert call(fpu.fdiv_d, one, zero, rm) == (INF_D, DZ)
        assert call(fpu.fdiv_d, neg_d(one), zero, rm) == (NINF_D, DZ)
        assert call(fpu.fdiv_d, one, NZERO_D, rm) == (NINF_D, DZ)
        assert call(fpu.fdiv_d, 1, zero, rm) == (INF_D, DZ)  # subnormal dividend
        assert call(fpu.fdiv_d, zero, zero, rm) == (CANON_D, NV)  # 0/0 is invalid, not DZ
        assert call(fpu.fdiv_d, INF_D, NZERO_D, rm) == (NINF_D, 0)  # inf/0: exact, no DZ
        assert call(fpu.fdiv_d, QNAN_D, zero, rm) == (CANON_D, 0)
        assert call(fpu.fdiv_s, s_reg(-2.0), ZERO_S, rm) == (NINF_S, DZ)
        assert call(fpu.fdiv_s, NZERO_S, NZERO_S, rm) == (CANON_S, NV)
        assert call(fpu.fdiv_s, s_reg(3.0), NZERO_S, rm) == (NINF_S, DZ)


# ---------------------------------------------------------------- conversions to integers

W_MAX, W_MIN = 2**31 - 1, -(2**31)
L_MAX, L_MIN = 2**63 - 1, -(2**63)
ALL_ONES = -1  # 0xffffffff sign-extended, or 2**64 - 1


@pytest.mark.parametrize(
    "x, w, wu, l, lu",
    [
        # value: (result, flags) for fcvt.w, fcvt.wu, fcvt.l, fcvt.lu (exact cases: any mode)
        (2.0**31, (W_MAX, NV), (to_i64(0xFFFFFFFF80000000), 0), (2**31, 0), (2**31, 0)),
        (2.0**31 - 1, (W_MAX, 0), (W_MAX, 0), (W_MAX, 0), (W_MAX, 0)),
        (-(2.0**31), (W_MIN, 0), (0, NV), (W_MIN, 0), (0, NV)),
        (-(2.0**31) - 1, (W_MIN, NV), (0, NV), (W_MIN - 1, 0), (0, NV)),
        (2.0**32, (W_MAX, NV), (ALL_ONES, NV), (2**32, 0), (2**32, 0)),
        (2.0**32 - 1, (W_MAX, NV), (ALL_ONES, 0), (2**32 - 1, 0), (2**32 - 1, 0)),
        (2.0**63, (W_MAX, NV), (ALL_ONES, NV), (L_MAX, NV), (to_i64(2**63), 0)),
        (2.0**63 - 1024, (W_MAX, NV), (ALL_ONES, NV), (2**63 - 1024, 0), (2**63 - 1024, 0)),
        (-(2.0**63), (W_MIN, NV), (0, NV), (L_MIN, 0), (0, NV)),
        (-(2.0**63) - 2048, (W_MIN, NV), (0, NV), (L_MIN, NV), (0, NV)),
        (2.0**64, (W_MAX, NV), (ALL_ONES, NV), (L_MAX, NV), (ALL_ONES, NV)),
        (2.0**64 - 2048, (W_MAX, NV), (ALL_ONES, NV), (L_MAX, NV), (to_i64(2**64 - 2048), 0)),
        (-1.0, (-1, 0), (0, NV), (-1, 0), (0, NV)),
        (-0.0, (0, 0), (0, 0), (0, 0), (0, 0)),
        (float("inf"), (W_MAX, NV), (ALL_ONES, NV), (L_MAX, NV), (ALL_ONES, NV)),
        (float("-inf"), (W_MIN, NV), (0, NV), (L_MIN, NV), (0, NV)),
        (float("nan"), (W_MAX, NV), (ALL_ONES, NV), (L_MAX, NV), (ALL_ONES, NV)),
    ],
)
def test_float_to_int_limits(x, w, wu, l, lu):
    reg_d = d_reg(x)
    fns_d = (fpu.fcvt_w_d, fpu.fcvt_wu_d, fpu.fcvt_l_d, fpu.fcvt_lu_d)
    fns_s = (fpu.fcvt_w_s, fpu.fcvt_wu_s, fpu.fcvt_l_s, fpu.fcvt_lu_s)
    single_exact = struct.unpack("<f", struct.pack("<f", x))[0] == x or x != x
    for rm in MODES:
        for fn, want in zip(fns_d, (w, wu, l, lu), strict=True):
            assert call(fn, reg_d, rm) == want, (fn.__name__, MODE_NAMES[rm])
        if single_exact:
            for fn, want in zip(fns_s, (w, wu, l, lu), strict=True):
                assert call(fn, s_reg(x), rm) == want, (fn.__name__, MODE_NAMES[rm])


def test_snan_to_int_saturates_high():
    for rm in MODES:
        assert call(fpu.fcvt_w_d, SNAN_D, rm) == (W_MAX, NV)
        assert call(fpu.fcvt_lu_s, SNAN_S, rm) == (ALL_ONES, NV)
        assert call(fpu.fcvt_l_d, neg_d(QNAN_D), rm) == (L_MAX, NV)  # NaN sign is ignored
        assert call(fpu.fcvt_wu_s, 0x3F800000, rm) == (ALL_ONES, NV)  # unboxed: NaN


def test_float_to_int_rounding_per_mode():
    def table(rne, rtz, rdn, rup, rmm, flags=NX):
        return {RNE: (rne, flags), RTZ: (rtz, flags), RDN: (rdn, flags), RUP: (rup, flags),
                RMM: (rmm, flags)}  # fmt: skip

    check_modes(fpu.fcvt_w_d, (d_reg(2.5),), table(2, 2, 2, 3, 3))
    check_modes(fpu.fcvt_w_d, (d_reg(-2.5),), table(-2, -2, -3, -2, -3))
    check_modes(fpu.fcvt_l_s, (s_reg(3.5),), table(4, 3, 3, 4, 4))
    check_modes(fpu.fcvt_l_d, (d_reg(-0.7),), table(-1, 0, -1, 0, -1))
    # the doubles just inside +-0.5 (0.5 - 2**-54): below the tie, so RMM rounds to 0
    below_half = 0x3FDFFFFFFFFFFFFF
    for fn in (fpu.fcvt_w_d, fpu.fcvt_l_d):
        check_modes(fn, (below_half,), table(0, 0, 0, 1, 0))
        check_modes(fn, (neg_d(below_half),), table(0, 0, -1, 0, 0))
    check_modes(fpu.fcvt_lu_d, (neg_d(below_half),),
                {RNE: (0, NX), RTZ: (0, NX), RDN: (0, NV), RUP: (0, NX), RMM: (0, NX)})  # fmt: skip
    check_modes(fpu.fcvt_w_d, (d_reg(-1.5),), table(-2, -1, -2, -1, -2))
    check_modes(fpu.fcvt_l_d, (d_reg(-(2.0**52) - 1),), all_modes(-(2**52) - 1, 0))
    # -0.5 to unsigned: rounds to 0 (inexact) or to -1 (invalid, saturates to 0)
    for fn, reg in ((fpu.fcvt_wu_d, d_reg(-0.5)), (fpu.fcvt_lu_s, s_reg(-0.5))):
        check_modes(
            fn,
            (reg,),
            {RNE: (0, NX), RTZ: (0, NX), RDN: (0, NV), RUP: (0, NX), RMM: (0, NV)},
        )
    for fn, reg in ((fpu.fcvt_wu_s, s_reg(-1.0)), (fpu.fcvt_lu_d, d_reg(-1.0))):
        check_modes(fn, (reg,), all_modes(0, NV))
    # 2**31 - 0.5: RNE ties to 2**31 (even) which overflows fcvt.w; RTZ stays in range
    check_modes(
        fpu.fcvt_w_d,
        (d_reg(2.0**31 - 0.5),),
        {
            RNE: (W_MAX, NV),
            RTZ: (W_MAX, NX),
            RDN: (W_MAX, NX),
            RUP: (W_MAX, NV),
            RMM: (W_MAX, NV),
        },
    )
    # -2**31 - 0.5: RNE ties to -2**31 (even); RDN and RMM leave the range
    check_modes(
        fpu.fcvt_w_d,
        (d_reg(-(2.0**31) - 0.5),),
        {
            RNE: (W_MIN, NX),
            RTZ: (W_MIN, NX),
            RDN: (W_MIN, NV),
            RUP: (W_MIN, NX),
            RMM: (W_MIN, NV),
        },
    )
    # 2**32 - 0.5 to wu: the same at the unsigned edge (result 0xffffffff sign-extended)
    check_modes(
        fpu.fcvt_wu_d,
        (d_reg(2.0**32 - 0.5),),
        {
            RNE: (ALL_ONES, NV),
            RTZ: (ALL_ONES, NX),
            RDN: (ALL_ONES, NX),
            RUP: (ALL_ONES, NV),
            RMM: (ALL_ONES, NV),
        },
    )


# ---------------------------------------------------------------- integer to float


def test_int_to_float_rounding_per_mode():
    # 2**24 + 1 to single: a tie between 2**24 (0x4b800000) and 2**24 + 2 (0x4b800001)
    lo, hi = s_raw(0x4B800000), s_raw(0x4B800001)
    table = {RNE: (lo, NX), RTZ: (lo, NX), RDN: (lo, NX), RUP: (hi, NX), RMM: (hi, NX)}
    for fn in (fpu.fcvt_s_w, fpu.fcvt_s_wu, fpu.fcvt_s_l, fpu.fcvt_s_lu):
        check_modes(fn, (2**24 + 1,), table)
    neg = {RNE: (lo | 1 << 31, NX), RTZ: (lo | 1 << 31, NX), RDN: (hi | 1 << 31, NX),
           RUP: (lo | 1 << 31, NX), RMM: (hi | 1 << 31, NX)}  # fmt: skip
    check_modes(fpu.fcvt_s_w, (-(2**24) - 1,), neg)
    check_modes(fpu.fcvt_s_l, (-(2**24) - 1,), neg)
    # 2**25 + 1: a quarter of the spacing (4) above 2**25 -- no tie, RMM rounds down
    lo, hi = s_raw(0x4C000000), s_raw(0x4C000001)
    check_modes(
        fpu.fcvt_s_w,
        (2**25 + 1,),
        {RNE: (lo, NX), RTZ: (lo, NX), RDN: (lo, NX), RUP: (hi, NX), RMM: (lo, NX)},
    )
    # 2**63 - 1 to double: 1023 above 2**63 - 1024 (0x43dfffffffffffff), 1 below 2**63
    lo, hi = 0x43DFFFFFFFFFFFFF, 0x43E0000000000000
    check_modes(
        fpu.fcvt_d_l,
        (L_MAX,),
        {RNE: (hi, NX), RTZ: (lo, NX), RDN: (lo, NX), RUP: (hi, NX), RMM: (hi, NX)},
    )
    # 2**64 - 1 (all ones) to double and to single
    check_modes(
        fpu.fcvt_d_lu,
        (ALL_ONES,),
        {RNE: (0x43F0000000000000, NX), RTZ: (0x43EFFFFFFFFFFFFF, NX),
         RDN: (0x43EFFFFFFFFFFFFF, NX), RUP: (0x43F0000000000000, NX),
         RMM: (0x43F0000000000000, NX)},
    )  # fmt: skip
    check_modes(
        fpu.fcvt_s_wu,
        (ALL_ONES,),  # only the low 32 bits count: 2**32 - 1
        {RNE: (s_raw(0x4F800000), NX), RTZ: (s_raw(0x4F7FFFFF), NX),
         RDN: (s_raw(0x4F7FFFFF), NX), RUP: (s_raw(0x4F800000), NX),
         RMM: (s_raw(0x4F800000), NX)},
    )  # fmt: skip
    # Exact conversions, and the 32-bit forms ignore the upper register half.
    check_modes(fpu.fcvt_s_l, (L_MIN,), all_modes(s_raw(0xDF000000), 0))
    check_modes(fpu.fcvt_d_l, (L_MIN,), all_modes(to_i64(0xC3E0000000000000), 0))
    check_modes(fpu.fcvt_d_w, (to_i64(0x12345678_FFFFFFFF),), all_modes(d_reg(-1.0), 0))
    check_modes(fpu.fcvt_d_wu, (to_i64(0x12345678_FFFFFFFF),), all_modes(d_reg(2**32 - 1), 0))
    check_modes(fpu.fcvt_d_w, (to_i64(0x80000000),), all_modes(d_reg(-(2.0**31)), 0))
    check_modes(fpu.fcvt_s_w, (0,), all_modes(ZERO_S, 0))  # +0, never -0


# ---------------------------------------------------------------- single <-> double


def test_fcvt_s_d_rounding_and_limits():
    # 1/3 = 0x3fd5555555555555: fraction bits 0101...; single keeps the top 23 (ending in 0,
    # 0x2aaaaa), the dropped 29 are 1010...1: above half, so the nearest modes round up
    third = 0x3FD5555555555555
    lo, hi = s_raw(0x3EAAAAAA), s_raw(0x3EAAAAAB)
    check_modes(
        fpu.fcvt_s_d,
        (third,),
        {RNE: (hi, NX), RTZ: (lo, NX), RDN: (lo, NX), RUP: (hi, NX), RMM: (hi, NX)},
    )
    check_modes(
        fpu.fcvt_s_d,
        (neg_d(third),),
        {RNE: (hi | 1 << 31, NX), RTZ: (lo | 1 << 31, NX), RDN: (hi | 1 << 31, NX),
         RUP: (lo | 1 << 31, NX), RMM: (hi | 1 << 31, NX)},
    )  # fmt: skip
    # 1 + 2**-24 exactly halfway between singles 1.0 and 1 + 2**-23
    tie = d_reg(1.0 + 2.0**-24)
    one, up = s_reg(1.0), s_raw(0x3F800001)
    check_modes(
        fpu.fcvt_s_d,
        (neg_d(tie),),
        {
            RNE: (one | 1 << 31, NX),
            RTZ: (one | 1 << 31, NX),
            RDN: (up | 1 << 31, NX),
            RUP: (one | 1 << 31, NX),
            RMM: (up | 1 << 31, NX),
        },
    )
    # Overflow and underflow against the single range
    max_s = s_raw(0x7F7FFFFF)
    check_modes(
        fpu.fcvt_s_d,
        (d_reg(1e300),),
        {
            RNE: (INF_S, OF | NX),
            RTZ: (max_s, OF | NX),
            RDN: (max_s, OF | NX),
            RUP: (INF_S, OF | NX),
            RMM: (INF_S, OF | NX),
        },
    )
    check_modes(
        fpu.fcvt_s_d,
        (d_reg(1e-300),),
        {
            RNE: (ZERO_S, NX | UF),
            RTZ: (ZERO_S, NX | UF),
            RDN: (ZERO_S, NX | UF),
            RUP: (s_raw(1), NX | UF),
            RMM: (ZERO_S, NX | UF),
        },
    )
    # 2**-150 is half the smallest single subnormal: RMM rounds it up, RNE to zero
    check_modes(
        fpu.fcvt_s_d,
        (d_reg(2.0**-150),),
        {
            RNE: (ZERO_S, NX | UF),
            RTZ: (ZERO_S, NX | UF),
            RDN: (ZERO_S, NX | UF),
            RUP: (s_raw(1), NX | UF),
            RMM: (s_raw(1), NX | UF),
        },
    )
    check_modes(fpu.fcvt_s_d, (d_reg(2.0**-149),), all_modes(s_raw(1), 0))  # exact subnormal
    check_modes(fpu.fcvt_s_d, (NZERO_D,), all_modes(NZERO_S, 0))
    check_modes(fpu.fcvt_s_d, (NINF_D,), all_modes(NINF_S, 0))
    check_modes(fpu.fcvt_s_d, (QNAN_D,), all_modes(CANON_S, 0))
    check_modes(fpu.fcvt_s_d, (SNAN_D,), all_modes(CANON_S, NV))


def test_fcvt_d_s_is_exact():
    check_modes(fpu.fcvt_d_s, (s_raw(1),), all_modes(0x36A0000000000000, 0))  # 2**-149
    check_modes(fpu.fcvt_d_s, (s_raw(0x7F7FFFFF),), all_modes(0x47EFFFFFE0000000, 0))
    check_modes(fpu.fcvt_d_s, (s_reg(-1.5),), all_modes(d_reg(-1.5), 0))
    check_modes(fpu.fcvt_d_s, (NZERO_S,), all_modes(NZERO_D, 0))
    check_modes(fpu.fcvt_d_s, (NINF_S,), all_modes(NINF_D, 0))
    check_modes(fpu.fcvt_d_s, (QNAN_S,), all_modes(CANON_D, 0))
    check_modes(fpu.fcvt_d_s, (SNAN_S,), all_modes(CANON_D, NV))


# ---------------------------------------------------------------- fclass, min/max, compares

CLASS_D = [
    (NINF_D, 0), (d_reg(-1.0), 1), (neg_d(1), 2), (NZERO_D, 3), (ZERO_D, 4), (1, 5),
    (d_reg(1.0), 6), (INF_D, 7), (SNAN_D, 8), (QNAN_D, 9),
    (neg_d(0x000FFFFFFFFFFFFF), 2), (MIN_NORMAL_D, 6), (neg_d(MAX_D), 1), (neg_d(SNAN_D), 8),
    (0x7FF4000000000000, 8), (CANON_D, 9),
]  # fmt: skip
CLASS_S = [
    (NINF_S, 0), (s_reg(-1.0), 1), (s_raw(0x80000001), 2), (NZERO_S, 3), (ZERO_S, 4),
    (s_raw(0x007FFFFF), 5), (s_raw(0x00800000), 6), (INF_S, 7), (SNAN_S, 8), (QNAN_S, 9),
    (s_raw(0x7FA00000), 8), (s_raw(0xFFC00000), 9), (s_raw(0xFF7FFFFF), 1),
]  # fmt: skip


@pytest.mark.parametrize("reg, bit", CLASS_D, ids=[hexs(r) for r, _ in CLASS_D])
def test_fclass_d(reg, bit):
    assert call(fpu.fclass_d, reg) == (1 << bit, 0)


@pytest.mark.parametrize("reg, bit", CLASS_S, ids=[hexs(r) for r, _ in CLASS_S])
def test_fclass_s(reg, bit):
    assert call(fpu.fclass_s, reg) == (1 << bit, 0)


def test_fclass_covers_all_ten_classes():
    assert sorted({bit for _, bit in CLASS_D}) == list(range(10))
    assert sorted({bit for _, bit in CLASS_S}) == list(range(10))


def test_fmin_fmax():
    for fmin, fmax, zero, nzero, one, qnan, snan, canon in (
        (fpu.fmin_d, fpu.fmax_d, ZERO_D, NZERO_D, d_reg(1.0), QNAN_D, SNAN_D, CANON_D),
        (fpu.fmin_s, fpu.fmax_s, ZERO_S, NZERO_S, s_reg(1.0), QNAN_S, SNAN_S, CANON_S),
    ):
        # -0 orders below +0, in either operand order
        assert call(fmin, zero, nzero) == (nzero, 0)
        assert call(fmin, nzero, zero) == (nzero, 0)
        assert call(fmax, zero, nzero) == (zero, 0)
        assert call(fmax, nzero, zero) == (zero, 0)
        # one NaN: the other operand; NV only for a signalling NaN
        assert call(fmin, qnan, one) == (one, 0)
        assert call(fmax, one, qnan) == (one, 0)
        assert call(fmin, one, snan) == (one, NV)
        assert call(fmax, snan, nzero) == (nzero, NV)
        # both NaN: the canonical NaN
        assert call(fmin, qnan, qnan) == (canon, 0)
        assert call(fmax, qnan, snan) == (canon, NV)
    assert call(fpu.fmin_d, d_reg(-3.0), d_reg(2.0)) == (d_reg(-3.0), 0)
    assert call(fpu.fmax_d, NINF_D, QNAN_D) == (NINF_D, 0)
    assert call(fpu.fmax_s, s_reg(-3.0), s_reg(2.0)) == (s_reg(2.0), 0)
    assert call(fpu.fmin_s, s_raw(1), ZERO_S) == (ZERO_S, 0)  # subnormal vs zero


def test_compares_and_their_flags():
    for eq, lt, le, zero, nzero, one, qnan, snan in (
        (fpu.feq_d, fpu.flt_d, fpu.fle_d, ZERO_D, NZERO_D, d_reg(1.0), QNAN_D, SNAN_D),
        (fpu.feq_s, fpu.flt_s, fpu.fle_s, ZERO_S, NZERO_S, s_reg(1.0), QNAN_S, SNAN_S),
    ):
        assert call(eq, zero, nzero) == (1, 0)
        assert call(lt, nzero, zero) == (0, 0)
        assert call(le, zero, nzero) == (1, 0)
        assert call(lt, nzero, one) == (1, 0)
        assert call(le, one, zero) == (0, 0)
        # feq is a quiet comparison: NV only for signalling NaNs
        assert call(eq, qnan, one) == (0, 0)
        assert call(eq, qnan, qnan) == (0, 0)
        assert call(eq, one, snan) == (0, NV)
        # flt and fle signal on any NaN
        assert call(lt, qnan, one) == (0, NV)
        assert call(le, one, qnan) == (0, NV)
        assert call(le, snan, snan) == (0, NV)
    assert call(fpu.flt_d, NINF_D, INF_D) == (1, 0)
    assert call(fpu.fle_d, 1, 2) == (1, 0)  # subnormals
    assert call(fpu.flt_s, s_raw(0x80000001), NZERO_S) == (1, 0)
    assert call(fpu.feq_s, s_reg(1.0), to_i64(0x3F800000)) == (0, 0)  # unboxed: NaN


# ---------------------------------------------------------------- seeded random sweeps

N_RANDOM = 1000  # random operand sets per (operation, format, mode), besides the edge sets
FMTS = {"s": S, "d": D}


def _mismatches(cases, ours, theirs, limit: int = 5) -> list[str]:
    bad = []
    for args in cases:
        got = call(ours, *args)
        want = theirs(*args)
        if got != want:
            bad.append(
                f"{[hexs(a) for a in args]}: got {hexs(got[0])}/{got[1]:#x}, "
                f"want {hexs(want[0])}/{want[1]:#x}"
            )
            if len(bad) >= limit:
                break
    return bad


def _edge_subset(cases: list, rm: int) -> list:
    """A fifth of the edge-by-edge cross product per mode: each pair is seen in some mode."""
    return cases[rm::5]


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
@pytest.mark.parametrize("fmt_name", ["s", "d"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_random_binary_ops_against_fraction_reference(op, fmt_name, rm):
    fmt = FMTS[fmt_name]
    every = pairs(1000 + MODES.index(rm), fmt, N_RANDOM)
    n_edge = len(every) - N_RANDOM
    cases = _edge_subset(every[:n_edge], rm) + every[n_edge:]
    ours = getattr(fpu, f"f{op}_{fmt_name}")
    theirs = {
        "add": lambda a, b: ref.add(a, b, rm, fmt),
        "sub": lambda a, b: ref.add(a, b, rm, fmt, negate_b=True),
        "mul": lambda a, b: ref.mul(a, b, rm, fmt),
        "div": lambda a, b: ref.div(a, b, rm, fmt),
    }[op]
    bad = _mismatches(cases, lambda a, b: ours(a, b, rm), theirs)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
@pytest.mark.parametrize("fmt_name", ["s", "d"])
def test_random_sqrt_against_fraction_reference(fmt_name, rm):
    fmt = FMTS[fmt_name]
    cases = [(a,) for a in singles(2000 + rm, fmt, N_RANDOM)]
    # exact squares (significands of half the precision) and their neighbours one ulp away:
    # exact roots, and roots just off a representable value
    rng = random.Random(2100 + rm)
    half = (fmt.mb + 1) // 2
    for _ in range(N_RANDOM // 3):
        root = rng.getrandbits(half) | 1 << (half - 1)
        k = rng.randrange(-28, 28) if fmt is S else rng.randrange(-250, 250)
        x = float(root * root) * 2.0 ** (2 * k)
        reg = d_reg(x) if fmt is D else s_reg(x)
        cases += [(reg,), (reg + 1,), (reg - 1,)]
    ours = getattr(fpu, f"fsqrt_{fmt_name}")
    bad = _mismatches(cases, lambda a: ours(a, rm), lambda a: ref.sqrt(a, rm, fmt))
    assert not bad, "\n".join(bad)


FMA_VARIANTS = {"fmadd": (False, False), "fmsub": (False, True), "fnmsub": (True, False),
                "fnmadd": (True, True)}  # fmt: skip


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
@pytest.mark.parametrize("fmt_name", ["s", "d"])
@pytest.mark.parametrize("variant", list(FMA_VARIANTS))
def test_random_fma_against_fraction_reference(variant, fmt_name, rm):
    fmt = FMTS[fmt_name]
    neg_prod, neg_c = FMA_VARIANTS[variant]
    cases = triples(3000 + rm, fmt, N_RANDOM // 2)
    ours = getattr(fpu, f"{variant}_{fmt_name}")
    bad = _mismatches(
        cases,
        lambda a, b, c: ours(a, b, c, rm),
        lambda a, b, c: ref.fma(a, b, c, rm, fmt, neg_prod, neg_c),
    )
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
def test_random_conversions_against_fraction_reference(rm):
    rng = random.Random(4000 + rm)
    ints = [to_i64(rng.getrandbits(64) >> rng.randrange(64)) for _ in range(N_RANDOM)]
    ints += [0, 1, -1, 2**24 + 1, 2**53 + 1, L_MAX, L_MIN, 2**31 - 1, -(2**31), 2**32 - 1]
    bad = []
    for fname, fmt in FMTS.items():
        for kind in ("w", "wu", "l", "lu"):
            ours = getattr(fpu, f"fcvt_{fname}_{kind}")
            bad += _mismatches(
                [(x,) for x in ints],
                lambda x, ours=ours: ours(x, rm),
                lambda x, fmt=fmt, kind=kind: ref.from_int(x, rm, fmt, kind),
            )
            ours = getattr(fpu, f"fcvt_{kind}_{fname}")
            bad += _mismatches(
                [(a,) for a in singles(4100 + rm, fmt, N_RANDOM)],
                lambda a, ours=ours: ours(a, rm),
                lambda a, fmt=fmt, kind=kind: ref.to_int(a, rm, fmt, kind),
            )
    bad += _mismatches(
        [(a,) for a in singles(4200 + rm, D, N_RANDOM)],
        lambda a: fpu.fcvt_s_d(a, rm),
        lambda a: ref.convert(a, rm, D, S),
    )
    bad += _mismatches(
        [(a,) for a in singles(4300 + rm, S, N_RANDOM)],
        lambda a: fpu.fcvt_d_s(a, rm),
        lambda a: ref.convert(a, rm, S, D),
    )
    assert not bad, "\n".join(bad)


def test_rne_agrees_with_numpy():
    """A second, independent oracle for round-to-nearest: the host's IEEE arithmetic."""
    rng = random.Random(5000)
    mask = (1 << 64) - 1
    with np.errstate(all="ignore"):
        for _ in range(2000):
            a = to_i64(rng.getrandbits(64) >> rng.choice((0, 0, 1, 2)))
            b = to_i64(rng.getrandbits(64) >> rng.choice((0, 0, 1, 2)))
            x = np.array([a & mask], dtype=np.uint64).view(np.float64)[0]
            y = np.array([b & mask], dtype=np.uint64).view(np.float64)[0]
            for ours, want in (
                (fpu.fadd_d, x + y),
                (fpu.fmul_d, x * y),
                (fpu.fdiv_d, x / y),
            ):
                got = call(ours, a, b, RNE)[0]
                if np.isnan(want):
                    assert got == CANON_D
                else:
                    w = int(np.array([want]).view(np.int64)[0])
                    assert got == w, (ours.__name__, hexs(a), hexs(b))
            xs = np.float32(x)
            ys = np.float32(y)
            sa = s_raw(int(np.array([xs]).view(np.uint32)[0]))
            sb = s_raw(int(np.array([ys]).view(np.uint32)[0]))
            for ours, want in ((fpu.fadd_s, xs + ys), (fpu.fmul_s, xs * ys), (fpu.fdiv_s, xs / ys)):
                got = call(ours, sa, sb, RNE)[0]
                if np.isnan(want):
                    assert got == CANON_S
                else:
                    assert got == s_raw(int(np.array([want]).view(np.uint32)[0]))


# ---------------------------------------------------------------- through the hart

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "perf"))


def test_hart_fdiv_by_zero_sets_dz():
    """fdiv.d/fdiv.s by zero used to raise ZeroDivisionError out of the compiled hart."""
    from guestbuild import build_asm  # tests/perf/guestbuild.py

    from rvemu import Machine

    src = """
    .globl _start
    _start:
        li t0, 0x6000
        csrs mstatus, t0            # FS = dirty: enable the FPU
        li t0, 0x3ff0000000000000
        fmv.d.x f1, t0              # 1.0
        fmv.d.x f2, zero            # +0.0
        fdiv.d f3, f1, f2
        csrrw a0, fflags, zero      # DZ
        fcvt.s.d f4, f1
        fmv.w.x f5, zero
        fdiv.s f6, f4, f5
        csrr a1, fflags             # DZ
        fdiv.d f7, f2, f2
        csrr a2, fflags             # DZ | NV
        fmv.x.d a3, f3
        fmv.x.d a4, f7
        fmv.x.d a5, f6
        li t1, 0x100000
        li t2, 0x5555
        sw t2, 0(t1)
    1:  j 1b
    """
    try:
        elf = build_asm("fdiv_zero", src)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    m = Machine(memory="16M")
    m.load(str(elf))
    m.run(max_instructions=1000)
    x = [int(v) for v in m.hart.x]
    assert (x[10], x[11], x[12]) == (DZ, DZ, DZ | NV)
    assert (hexs(x[13]), hexs(x[14]), hexs(x[15])) == (
        hexs(INF_D),
        hexs(CANON_D),
        hexs(INF_S),
    )


@pytest.mark.parametrize("fmt_name", ["s", "d"])
def test_random_minmax_compare_class_against_reference(fmt_name):
    fmt = FMTS[fmt_name]
    cases = pairs(6000, fmt, N_RANDOM)[::3]
    bad = []
    for op, is_max in (("min", False), ("max", True)):
        ours = getattr(fpu, f"f{op}_{fmt_name}")
        bad += _mismatches(cases, ours, lambda a, b, m=is_max: ref.min_max(a, b, fmt, m))
    for op in ("eq", "lt", "le"):
        ours = getattr(fpu, f"f{op}_{fmt_name}")
        bad += _mismatches(cases, ours, lambda a, b, op=op: ref.compare(a, b, fmt, op))
    ours = getattr(fpu, f"fclass_{fmt_name}")
    bad += _mismatches([(a,) for a, _ in cases], ours, lambda a: ref.fclass(a, fmt))
    assert not bad, "\n".join(bad)
