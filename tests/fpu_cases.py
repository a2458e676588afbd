"""Operand generators for the FPU tests: edge cases and seeded random register values."""

from __future__ import annotations

import random
import struct

from fpu_ref import D, Fmt, to_i64


def d_reg(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def s_reg(x: float) -> int:
    return to_i64(struct.unpack("<I", struct.pack("<f", x))[0] | 0xFFFFFFFF_00000000)


def s_raw(raw: int) -> int:
    return to_i64(raw | 0xFFFFFFFF_00000000)


_COMMON = [
    0.0, -0.0, 1.0, -1.0, 1.5, -1.5, 0.5, -0.5, 2.5, -2.5, 3.5, 0.3, -0.7, 3.0, 0.1, 10.0,
    2.0**31, 2.0**31 - 1, 2.0**31 - 0.5, 2.0**31 + 0.5, -(2.0**31), -(2.0**31) - 1,
    -(2.0**31) - 0.5, 2.0**32, 2.0**32 - 1, 2.0**32 - 0.5, 2.0**63, -(2.0**63), 2.0**64,
    2.0**63 - 1024, 2.0**64 - 2048,
    -(2.0**63) - 2048, float("inf"), float("-inf"), 16777217.0, 2.0**24, 2.0**53, 2.0**53 + 2,
]  # fmt: skip

D_SPECIAL = [d_reg(x) for x in _COMMON] + [
    d_reg(5e-324), d_reg(-5e-324), d_reg(2.225073858507201e-308), d_reg(2.2250738585072014e-308),
    d_reg(-2.2250738585072014e-308), d_reg(1.7976931348623157e308), d_reg(-1.7976931348623157e308),
    d_reg(1.0 + 2.0**-52), d_reg(1.0 - 2.0**-53), d_reg(2.0**-1022 * 1.5), d_reg(2.0**1023),
    0x7FF8000000000000, 0x7FF0000000000001, to_i64(0xFFF8000000000123), 0x7FF4000000000000,
]  # fmt: skip

S_SPECIAL = [s_reg(x) for x in _COMMON] + [
    s_raw(r)
    for r in (
        0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF,
        0x3F800001, 0x3F7FFFFF, 0x00C00000, 0x7F000000, 0x7FC00000, 0x7F800001, 0xFFC00123,
        0x7FA00000,
    )
] + [0x3F800000, 0x7FC00000, to_i64(0xFFFFFFFE_3F800000)]  # fmt: skip
# (the last three are not NaN-boxed: they must read as the canonical NaN)


def special(fmt: Fmt) -> list[int]:
    return D_SPECIAL if fmt is D else S_SPECIAL


def _pack(fmt: Fmt, neg: bool, e_field: int, frac: int) -> int:
    raw = int(neg) << (fmt.width - 1) | e_field << fmt.mb | frac
    return to_i64(raw) if fmt is D else s_raw(raw)


def _frac(rng: random.Random, fmt: Fmt) -> int:
    mode = rng.randrange(4)
    if mode == 0:
        return rng.getrandbits(fmt.mb)
    if mode == 1:  # few significant bits: exact results and ties
        k = rng.randrange(0, 6)
        return rng.getrandbits(k) << (fmt.mb - k) if k else 0
    if mode == 2:  # runs of ones near the rounding point
        return (1 << fmt.mb) - 1 - rng.getrandbits(rng.randrange(1, 6))
    return rng.getrandbits(fmt.mb) & ~((1 << rng.randrange(fmt.mb)) - 1)


def operand(rng: random.Random, fmt: Fmt) -> int:
    """A register value, biased toward the edges of the format."""
    pick = rng.random()
    emax_field = (1 << fmt.eb) - 2
    if pick < 0.1:
        return rng.choice(special(fmt))
    if pick < 0.3:
        if fmt is D:
            return to_i64(rng.getrandbits(64))
        return s_raw(rng.getrandbits(32))
    where = rng.randrange(4)
    if where == 0:
        e = rng.randrange(0, emax_field + 1)
    elif where == 1:
        e = rng.randrange(0, 4)  # subnormal and tiny
    elif where == 2:
        e = rng.randrange(emax_field - 3, emax_field + 1)  # near overflow
    else:
        e = fmt.bias + rng.randrange(-30, 66)  # around one, incl. integer conversion limits
    return _pack(fmt, rng.random() < 0.5, e, _frac(rng, fmt))


def related(rng: random.Random, fmt: Fmt, a: int) -> int:
    """An operand near a in exponent (cancellation, alignment), or near its reciprocal range."""
    raw = a & ((1 << fmt.width) - 1)
    e = (raw >> fmt.mb) & ((1 << fmt.eb) - 1)
    emax_field = (1 << fmt.eb) - 2
    if rng.random() < 0.3:
        e2 = 2 * fmt.bias - e + rng.randrange(-3, 4)  # products near one, quotients near edges
    else:
        e2 = e + rng.randrange(-fmt.mb - 3, fmt.mb + 4) if rng.random() < 0.5 else e
    e2 = min(max(e2, 0), emax_field)
    frac = raw & ((1 << fmt.mb) - 1)
    if rng.random() < 0.5:
        frac ^= rng.getrandbits(rng.randrange(1, fmt.mb))
    else:
        frac = _frac(rng, fmt)
    return _pack(fmt, rng.random() < 0.5, e2, frac)


def pairs(seed: int, fmt: Fmt, n: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out = [(a, b) for a in special(fmt) for b in special(fmt)]
    for _ in range(n):
        a = operand(rng, fmt)
        b = related(rng, fmt, a) if rng.random() < 0.5 else operand(rng, fmt)
        out.append((a, b))
    return out


def singles(seed: int, fmt: Fmt, n: int) -> list[int]:
    rng = random.Random(seed)
    return list(special(fmt)) + [operand(rng, fmt) for _ in range(n)]


def triples(seed: int, fmt: Fmt, n: int) -> list[tuple[int, int, int]]:
    """fma operands, many with c close to -a*b (cancellation) or far from it."""
    rng = random.Random(seed)
    sp = special(fmt)
    out = [(rng.choice(sp), rng.choice(sp), rng.choice(sp)) for _ in range(n // 4)]
    for _ in range(n):
        a = operand(rng, fmt)
        b = related(rng, fmt, a) if rng.random() < 0.5 else operand(rng, fmt)
        c = _near_product(rng, fmt, a, b) if rng.random() < 0.6 else operand(rng, fmt)
        out.append((a, b, c))
    return out


def _near_product(rng: random.Random, fmt: Fmt, a: int, b: int) -> int:
    mask = (1 << fmt.width) - 1
    ea = ((a & mask) >> fmt.mb) & ((1 << fmt.eb) - 1)
    eb = ((b & mask) >> fmt.mb) & ((1 << fmt.eb) - 1)
    e = ea + eb - fmt.bias + rng.randrange(-2 * fmt.mb - 4, 4)
    e = min(max(e, 0), (1 << fmt.eb) - 2)
    # the product's leading bits, perturbed: catastrophic cancellation when signs differ
    fa = (a & ((1 << fmt.mb) - 1)) | 1 << fmt.mb
    fb = (b & ((1 << fmt.mb) - 1)) | 1 << fmt.mb
    prod = fa * fb
    top = prod >> (prod.bit_length() - fmt.mb - 1)
    frac = (top & ((1 << fmt.mb) - 1)) ^ rng.getrandbits(rng.randrange(0, 8))
    return _pack(fmt, rng.random() < 0.5, e, frac)
