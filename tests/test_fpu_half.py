"""The Zfh/Zfhmin library (rvemu.cpu.fpu_half) against hand-derived results and two oracles.

Hand-derived tables pin the rounding rules (ties, tininess after rounding, overflow per mode,
NaN-boxing). The sweeps compare every function over edge values in all five rounding modes,
plus a few thousand seeded random operands, with tests/fpu_ref.py (exact Fractions, written
independently of the library), and round-to-nearest results with numpy's float16 as well.
"""

from __future__ import annotations

import math
import random

import fpu_ref as ref
import numpy as np
import pytest
from fpu_ref import DZ, NV, NX, OF, RDN, RMM, RNE, RTZ, RUP, UF, D, H, S, to_i64
from test_fpu import MODE_NAMES, MODES, _mismatches, all_modes, call, check_modes, hexs

from rvemu.cpu import fpu_half as fh


def h(raw: int) -> int:
    """The register value of a NaN-boxed half."""
    return to_i64(raw | 0xFFFFFFFF_FFFF0000)


def h_of(x: float) -> int:
    """The register value of the half nearest x (for values that are exact halves)."""
    raw = int(np.array([x], dtype=np.float16).view(np.uint16)[0])
    assert float(np.float16(x)) == x or x != x, x
    return h(raw)


def s_raw(raw: int) -> int:
    return to_i64(raw | 0xFFFFFFFF_00000000)


def d_of(x: float) -> int:
    return int(np.array([x]).view(np.int64)[0])


CANON = h(0x7E00)
ZERO, NZERO = h(0x0000), h(0x8000)
ONE, NONE = h(0x3C00), h(0xBC00)
MIN_SUB, NMIN_SUB = h(0x0001), h(0x8001)
MAX_SUB = h(0x03FF)
MIN_NORMAL, NMIN_NORMAL = h(0x0400), h(0x8400)
MAX, NMAX = h(0x7BFF), h(0xFBFF)  # 65504
INF, NINF = h(0x7C00), h(0xFC00)
QNAN = h(0x7E01)  # quiet, with a payload
SNAN = h(0x7C01)
UNBOXED = (0x3C00, s_raw(0x3C00), to_i64(0xFFFFFFFE_FFFF3C00))  # upper 48 bits not all ones

EDGES = [
    ZERO, NZERO, MIN_SUB, NMIN_SUB, MAX_SUB, h(0x83FF), MIN_NORMAL, NMIN_NORMAL, ONE, NONE,
    MAX, NMAX, INF, NINF, QNAN, h(0xFE00), SNAN, h(0xFD00),
    h(0x3C01), h(0x3BFF), h(0x3800), h(0xB800), h(0x3E00), h(0xBE00), h(0x4100), h(0x4300),
    h(0x0200), h(0x0401), h(0x7800), h(0x3555), h(0x4000), h(0x5A00),
    *UNBOXED,
]  # fmt: skip


# ---------------------------------------------------------------- hand-derived rounding


def test_ties_in_every_mode():
    # 1 + 2**-11 lies halfway between 1 and 1 + 2**-10 (ulp(1) = 2**-10 in binary16)
    half_ulp = h(0x1000)  # 2**-11: exponent field -11 + 15 = 4
    check_modes(
        fh.fadd_h,
        (ONE, half_ulp),
        {
            RNE: (ONE, NX),  # to even
            RTZ: (ONE, NX),
            RDN: (ONE, NX),
            RUP: (h(0x3C01), NX),
            RMM: (h(0x3C01), NX),  # away from zero
        },
    )
    check_modes(
        fh.fsub_h,
        (NONE, half_ulp),
        {
            RNE: (NONE, NX),
            RTZ: (NONE, NX),
            RDN: (h(0xBC01), NX),
            RUP: (NONE, NX),
            RMM: (h(0xBC01), NX),
        },
    )


def test_underflow_is_detected_after_rounding():
    # (1 - 2**-11) * 2**-14 = 1023.5 * 2**-24: a tie between the largest subnormal and the
    # smallest normal. With an unbounded exponent it is exact (2047 * 2**-25) and below 2**-14:
    # tiny, and inexact in the format, so UF in every mode, even where it rounds up to 2**-14.
    check_modes(
        fh.fmul_h,
        (h(0x3BFF), MIN_NORMAL),
        {
            RNE: (MIN_NORMAL, NX | UF),
            RTZ: (MAX_SUB, NX | UF),
            RDN: (MAX_SUB, NX | UF),
            RUP: (MIN_NORMAL, NX | UF),
            RMM: (MIN_NORMAL, NX | UF),
        },
    )
    # 2**-14 - 2**-26 = 2**-15 * (2 - 2**-11): with an unbounded exponent (11 bits, ulp 2**-25)
    # a tie that rounds up to 2**-14 in RNE and RMM, and up in RUP: not tiny, NX without UF.
    # Rounding down gives the largest subnormal: tiny, UF.
    two_m12 = h(0x0C00)  # 2**-12
    check_modes(
        fh.fmadd_h,
        (two_m12, NMIN_NORMAL, MIN_NORMAL),  # 2**-12 * -2**-14 + 2**-14
        {
            RNE: (MIN_NORMAL, NX),
            RTZ: (MAX_SUB, NX | UF),
            RDN: (MAX_SUB, NX | UF),
            RUP: (MIN_NORMAL, NX),
            RMM: (MIN_NORMAL, NX),
        },
    )
    # exact subnormal results raise nothing: 2**-24 + 2**-24, sqrt(2**-24) = 2**-12
    check_modes(fh.fadd_h, (MIN_SUB, MIN_SUB), all_modes(h(0x0002), 0))
    check_modes(fh.fsqrt_h, (MIN_SUB,), all_modes(two_m12, 0))


def test_overflow_per_mode():
    # 65504 + 16 = 65520: halfway between 65504 and 2**16, which is past the largest finite.
    # Overflow is judged on the value rounded with an unbounded exponent: rounding down gives
    # 65504, which is finite, so no OF there.
    sixteen = h(0x4C00)
    check_modes(
        fh.fadd_h,
        (MAX, sixteen),
        {
            RNE: (INF, OF | NX),
            RTZ: (MAX, NX),
            RDN: (MAX, NX),
            RUP: (INF, OF | NX),
            RMM: (INF, OF | NX),
        },
    )
    # 65504 + 8 = 65512 is below the halfway point: overflows only when rounding up
    eight = h(0x4800)
    check_modes(
        fh.fadd_h,
        (MAX, eight),
        {RNE: (MAX, NX), RTZ: (MAX, NX), RDN: (MAX, NX), RUP: (INF, OF | NX), RMM: (MAX, NX)},
    )
    check_modes(
        fh.fmul_h,
        (NMAX, h(0x4000)),  # -65504 * 2
        {
            RNE: (NINF, OF | NX),
            RTZ: (NMAX, OF | NX),
            RDN: (NINF, OF | NX),
            RUP: (NMAX, OF | NX),
            RMM: (NINF, OF | NX),
        },
    )


def test_exact_zero_signs():
    table = all_modes(ZERO, 0)
    table[RDN] = (NZERO, 0)
    check_modes(fh.fadd_h, (ONE, NONE), table)
    check_modes(fh.fmsub_h, (ONE, ONE, ONE), table)
    check_modes(fh.fnmadd_h, (ZERO, ONE, ZERO), all_modes(NZERO, 0))  # -(0*1) - 0
    check_modes(fh.fsqrt_h, (NZERO,), all_modes(NZERO, 0))


def test_nans_invalid_and_division_by_zero():
    for rm in MODES:
        assert call(fh.fadd_h, QNAN, ONE, rm) == (CANON, 0)
        assert call(fh.fmul_h, ONE, SNAN, rm) == (CANON, NV)
        assert call(fh.fsub_h, INF, INF, rm) == (CANON, NV)
        assert call(fh.fmul_h, INF, NZERO, rm) == (CANON, NV)
        assert call(fh.fdiv_h, ONE, NZERO, rm) == (NINF, DZ)
        assert call(fh.fdiv_h, ZERO, ZERO, rm) == (CANON, NV)
        assert call(fh.fsqrt_h, NONE, rm) == (CANON, NV)
        assert call(fh.fmadd_h, INF, ZERO, QNAN, rm) == (CANON, NV)  # inf*0 + qNaN: invalid
        assert call(fh.fcvt_s_h, SNAN, rm) == (s_raw(0x7FC00000), NV)
        assert call(fh.fcvt_h_d, d_of(float("nan")), rm) == (CANON, 0)


def test_improperly_boxed_reads_as_canonical_nan():
    for bad in UNBOXED:
        assert call(fh.fadd_h, bad, ONE, RNE) == (CANON, 0)  # quiet: no NV
        assert call(fh.fclass_h, bad) == (1 << 9, 0)
        assert call(fh.fcvt_d_h, bad, RNE) == (0x7FF8000000000000, 0)
        assert call(fh.fmin_h, bad, h(0x4000)) == (h(0x4000), 0)
        assert call(fh.feq_h, bad, bad) == (0, 0)
        assert call(fh.fsgnjn_h, bad, ONE) == (h(0xFE00), 0)
        assert call(fh.fcvt_w_h, bad, RNE) == (2**31 - 1, NV)
    # fmv.x.h does not look at the box
    assert call(fh.fmv_x_h, 0x12345678_9ABCFFFF) == (-1, 0)
    assert call(fh.fmv_x_h, 0x7E01) == (0x7E01, 0)
    assert call(fh.fmv_h_x, to_i64(0xFFFFFFFF_FFFF8001)) == (NMIN_SUB, 0)
    assert call(fh.fmv_h_x, 0x1234_7C01) == (SNAN, 0)
    assert call(fh.fsgnjx_h, QNAN, NONE) == (h(0xFE01), 0)  # payloads survive


def test_conversions_hand_derived():
    # fcvt.h.d rounds once: 1 + 2**-11 + 2**-40 is above the tie, so RNE goes up. Rounding to
    # single first would land on the tie 1 + 2**-11 and then round to even (1.0).
    check_modes(fh.fcvt_h_d, (d_of(1 + 2.0**-11 + 2.0**-40),), {RNE: (h(0x3C01), NX)})
    # 2**-25 is half the smallest subnormal: a tie between it and zero
    check_modes(
        fh.fcvt_h_s,
        (s_raw(0x33000000),),  # 2**-25
        {
            RNE: (ZERO, NX | UF),
            RTZ: (ZERO, NX | UF),
            RDN: (ZERO, NX | UF),
            RUP: (MIN_SUB, NX | UF),
            RMM: (MIN_SUB, NX | UF),
        },
    )
    check_modes(fh.fcvt_h_w, (65520,), {RNE: (INF, OF | NX), RTZ: (MAX, NX)})
    check_modes(fh.fcvt_h_w, (2049,), {RNE: (h(0x6800), NX), RUP: (h(0x6801), NX)})
    check_modes(
        fh.fcvt_h_l,
        (-(2**63),),
        all_modes(NINF, OF | NX) | {RTZ: (NMAX, OF | NX), RUP: (NMAX, OF | NX)},
    )
    check_modes(fh.fcvt_h_wu, (-1,), {RDN: (MAX, OF | NX)})  # 2**32 - 1
    check_modes(fh.fcvt_h_lu, (-1,), {RUP: (INF, OF | NX)})  # 2**64 - 1
    check_modes(fh.fcvt_w_h, (NMAX,), all_modes(-65504, 0))
    check_modes(fh.fcvt_wu_h, (NONE,), all_modes(0, NV))
    check_modes(
        fh.fcvt_wu_h,
        (h(0xB800),),  # -0.5: rounds to 0 (no NV) except in RDN (-1: NV)
        {RNE: (0, NX), RTZ: (0, NX), RDN: (0, NV), RUP: (0, NX), RMM: (0, NV)},
    )
    check_modes(fh.fcvt_l_h, (h(0x4100),), {RNE: (2, NX), RMM: (3, NX), RUP: (3, NX)})  # 2.5
    check_modes(fh.fcvt_lu_h, (INF,), all_modes(-1, NV))
    check_modes(fh.fcvt_d_h, (MIN_SUB,), all_modes(d_of(2.0**-24), 0))
    check_modes(fh.fcvt_s_h, (NMAX,), all_modes(s_raw(0xC77FE000), 0))


# ---------------------------------------------------------------- against the references

N_RANDOM = 2000  # random operand sets per (operation, mode), besides the edge sets


def _operand(rng: random.Random) -> int:
    """A register value, biased toward the edges of binary16."""
    pick = rng.random()
    if pick < 0.1:
        return rng.choice(EDGES)
    if pick < 0.12:
        return to_i64(rng.getrandbits(64))  # almost always improperly boxed
    raw = rng.getrandbits(16)
    if pick < 0.3:  # subnormal and tiny
        raw = (raw & 0x83FF) | rng.randrange(3) << 10
    elif pick < 0.4:  # near overflow
        raw = (raw & 0x83FF) | rng.randrange(27, 31) << 10
    elif pick < 0.5:  # few significant bits: exact results and ties
        raw &= ~((1 << rng.randrange(11)) - 1)
    return h(raw)


def _related(rng: random.Random, a: int) -> int:
    """An operand with an exponent near a's: cancellation and alignment."""
    e = (a >> 10) & 0x1F
    e = min(max(e + rng.randrange(-12, 13) if rng.random() < 0.5 else e, 0), 30)
    return h(rng.getrandbits(1) << 15 | e << 10 | rng.getrandbits(10))


def _pairs(seed: int, rm: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    edge = [(a, b) for a in EDGES for b in EDGES]
    out = edge[rm::2]  # each edge pair in some modes
    for _ in range(N_RANDOM):
        a = _operand(rng)
        out.append((a, _related(rng, a) if rng.random() < 0.5 else _operand(rng)))
    return out


def _singles(seed: int) -> list[int]:
    rng = random.Random(seed)
    return EDGES + [_operand(rng) for _ in range(N_RANDOM)]


def _assert_none(bad: list[str]) -> None:
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
def test_arithmetic_against_fraction_reference(rm):
    cases = _pairs(1000 + rm, rm)
    bad = []
    for ours, theirs in (
        (fh.fadd_h, lambda a, b: ref.add(a, b, rm, H)),
        (fh.fsub_h, lambda a, b: ref.add(a, b, rm, H, negate_b=True)),
        (fh.fmul_h, lambda a, b: ref.mul(a, b, rm, H)),
        (fh.fdiv_h, lambda a, b: ref.div(a, b, rm, H)),
    ):
        bad += _mismatches(cases, lambda a, b, f=ours: f(a, b, rm), theirs)
    # every half whose root is a candidate for exact or tie-adjacent results, plus randoms
    roots = [(a,) for a in _singles(1100 + rm)] + [(h(r),) for r in range(0x0000, 0x7C00, 7)]
    bad += _mismatches(roots, lambda a: fh.fsqrt_h(a, rm), lambda a: ref.sqrt(a, rm, H))
    _assert_none(bad)


FMA_VARIANTS = {fh.fmadd_h: (False, False), fh.fmsub_h: (False, True),
                fh.fnmsub_h: (True, False), fh.fnmadd_h: (True, True)}  # fmt: skip


def _near_product(rng: random.Random, a: int, b: int) -> int:
    """An addend close to -a*b (cancellation) or a small part of it."""
    with np.errstate(all="ignore"):
        p = np.float16(ref_value(a)) * np.float16(ref_value(b))
    raw = int(np.array([p], dtype=np.float16).view(np.uint16)[0])
    return h(raw ^ rng.getrandbits(rng.randrange(0, 12)) ^ rng.getrandbits(1) << 15)


def ref_value(reg: int) -> float:
    v = ref.decode(reg, H)
    if v.kind == "nan":
        return float("nan")
    if v.kind == "inf":
        return float("-inf") if v.neg else float("inf")
    return float(v.value) if v.mag else (-0.0 if v.neg else 0.0)


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
def test_fma_against_fraction_reference(rm):
    rng = random.Random(3000 + rm)
    cases = [(rng.choice(EDGES), rng.choice(EDGES), rng.choice(EDGES)) for _ in range(500)]
    for _ in range(N_RANDOM):
        a = _operand(rng)
        b = _related(rng, a) if rng.random() < 0.3 else _operand(rng)
        c = _near_product(rng, a, b) if rng.random() < 0.6 else _operand(rng)
        cases.append((a, b, c))
    bad = []
    for ours, (neg_prod, neg_c) in FMA_VARIANTS.items():
        bad += _mismatches(
            cases,
            lambda a, b, c, f=ours: f(a, b, c, rm),
            lambda a, b, c, n=neg_prod, m=neg_c: ref.fma(a, b, c, rm, H, n, m),
        )
    _assert_none(bad)


KINDS = ("w", "wu", "l", "lu")


@pytest.mark.parametrize("rm", MODES, ids=[MODE_NAMES[m] for m in MODES])
def test_conversions_against_fraction_reference(rm):
    rng = random.Random(4000 + rm)
    ints = [to_i64(rng.getrandbits(64) >> rng.randrange(64)) for _ in range(N_RANDOM)]
    ints += [rng.randrange(-70000, 70000) for _ in range(N_RANDOM // 4)]
    ints += [0, 1, -1, 2047, 2048, 2049, 2050, 2051, 4097, 65504, 65519, 65520, -65520, 65535]
    ints += [2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63)]
    halves = [(a,) for a in _singles(4100 + rm)]
    bad = []
    for kind in KINDS:
        ours = getattr(fh, f"fcvt_h_{kind}")
        bad += _mismatches(
            [(x,) for x in ints],
            lambda x, f=ours: f(x, rm),
            lambda x, k=kind: ref.from_int(x, rm, H, k),
        )
        ours = getattr(fh, f"fcvt_{kind}_h")
        bad += _mismatches(
            halves, lambda a, f=ours: f(a, rm), lambda a, k=kind: ref.to_int(a, rm, H, k)
        )
    for ours, src, dst in (
        (fh.fcvt_s_h, H, S),
        (fh.fcvt_d_h, H, D),
        (fh.fcvt_h_s, S, H),
        (fh.fcvt_h_d, D, H),
    ):
        if src is H:
            cases = halves
        else:
            cases = [(_wide(rng, src),) for _ in range(N_RANDOM)]
        bad += _mismatches(
            cases, lambda a, f=ours: f(a, rm), lambda a, s=src, d=dst: ref.convert(a, rm, s, d)
        )
    _assert_none(bad)


def _wide_reg(x: float, fmt: ref.Fmt) -> int:
    if fmt is D:
        return d_of(x)
    return s_raw(int(np.array([x], dtype=np.float32).view(np.uint32)[0]))


def _wide(rng: random.Random, fmt: ref.Fmt) -> int:
    """A single or double near a half: on it, or a few units off it or off a tie."""
    x = ref_value(_operand(rng))
    if not math.isfinite(x):
        x = rng.choice((65520.0, -65520.0, 2.0**-25, -(2.0**-26), 1e9))
    tie_bit = fmt.mb - 11  # half an ulp of a normal half, in the wider fraction
    step = rng.choice((1, 1 << tie_bit, 2 << tie_bit))
    return to_i64(_wide_reg(x, fmt) + rng.randrange(-3, 4) * step)


def test_compare_minmax_class_moves_against_reference():
    cases = _pairs(6000, 0) + _pairs(6001, 1)
    bad = []
    for ours, is_max in ((fh.fmin_h, False), (fh.fmax_h, True)):
        bad += _mismatches(cases, ours, lambda a, b, m=is_max: ref.min_max(a, b, H, m))
    for op in ("eq", "lt", "le"):
        ours = getattr(fh, f"f{op}_h")
        bad += _mismatches(cases, ours, lambda a, b, op=op: ref.compare(a, b, H, op))
    # all 65536 patterns for the one-operand functions that do not round
    every = [(h(r),) for r in range(1 << 16)] + [(u,) for u in UNBOXED]
    bad += _mismatches(every, fh.fclass_h, lambda a: ref.fclass(a, H))
    bad += _mismatches(every, fh.fmv_x_h, lambda a: (_sext16(a), 0))
    bad += _mismatches(every, fh.fmv_h_x, lambda a: (h(a & 0xFFFF), 0))
    for ours, mask, flip in ((fh.fsgnj_h, 0, 0), (fh.fsgnjn_h, 0, 1), (fh.fsgnjx_h, 1, 0)):
        bad += _mismatches(cases, ours, lambda a, b, m=mask, f=flip: _sgnj(a, b, m, f))
    _assert_none(bad)


def _sext16(reg: int) -> int:
    v = reg & 0xFFFF
    return v - (1 << 16) if v >> 15 else v


def _sgnj(a: int, b: int, xor_a: int, flip: int) -> tuple[int, int]:
    """fsgnj (sign of b), fsgnjn (its negation), fsgnjx (xor of both) on unboxed operands."""
    ua, ub = (_reencode_half(r) for r in (a, b))
    sign = (ub >> 15) ^ flip ^ (ua >> 15 if xor_a else 0)
    return h((ua & 0x7FFF) | sign << 15), 0


def _reencode_half(reg: int) -> int:
    return reg & 0xFFFF if (reg & ref.MASK64) >> 16 == 0xFFFF_FFFF_FFFF else 0x7E00


def test_rne_agrees_with_numpy_float16():
    """A second, independent oracle for round-to-nearest: numpy's binary16."""
    rng = random.Random(5000)
    regs = [h(rng.getrandbits(16)) for _ in range(3000)]
    with np.errstate(all="ignore"):
        for a, b in zip(regs, regs[1:] + regs[:1], strict=True):
            x = np.float16(ref_value(a))
            y = np.float16(ref_value(b))
            for ours, want in (
                (fh.fadd_h, x + y),
                (fh.fsub_h, x - y),
                (fh.fmul_h, x * y),
                (fh.fdiv_h, x / y),
            ):
                got = call(ours, a, b, RNE)[0]
                want_reg = CANON if np.isnan(want) else h_of(float(want))
                assert hexs(got) == hexs(want_reg), (ours.__name__, hexs(a), hexs(b))
            got = call(fh.fsqrt_h, a, RNE)[0]
            want = np.sqrt(x)
            assert got == (CANON if np.isnan(want) else h_of(float(want))), hexs(a)
            d = rng.uniform(-70000.0, 70000.0) * 2.0 ** -rng.randrange(40)
            assert call(fh.fcvt_h_d, d_of(d), RNE)[0] == h_of(float(np.float16(d))), d
