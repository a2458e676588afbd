"""A slow, obviously-correct reference for the F, D and Zfh operations, in exact rational
arithmetic.

Written from the RISC-V spec and IEEE 754-2008 independently of rvemu.cpu.fpu: operands are
decoded to Fractions, the exact result is computed, then rounded by `round_exact`.
Every function takes int64 register values (formats narrower than 64 bits NaN-boxed), the
rounding mode and the format, and returns (register value, fflags).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import isqrt

NX, UF, OF, DZ, NV = 1, 2, 4, 8, 16
RNE, RTZ, RDN, RUP, RMM = 0, 1, 2, 3, 4
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Fmt:
    mb: int  # stored fraction bits
    eb: int  # exponent bits

    @property
    def bias(self) -> int:
        return (1 << (self.eb - 1)) - 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def width(self) -> int:
        return 1 + self.eb + self.mb

    @property
    def canon(self) -> int:
        return finish_bits(((1 << self.eb) - 1) << self.mb | 1 << (self.mb - 1), self)


H = Fmt(10, 5)
S = Fmt(23, 8)
D = Fmt(52, 11)


def to_i64(u: int) -> int:
    u &= MASK64
    return u - (1 << 64) if u >> 63 else u


def finish_bits(raw: int, fmt: Fmt) -> int:
    """Register value of a raw encoding (NaN-boxed below 64 bits)."""
    return to_i64(raw | (MASK64 >> fmt.width << fmt.width))


@dataclass(frozen=True)
class Val:
    kind: str  # "num", "inf", "nan"
    neg: bool = False
    mag: Fraction = Fraction(0)
    snan: bool = False

    @property
    def value(self) -> Fraction:
        return -self.mag if self.neg else self.mag


def decode(reg: int, fmt: Fmt) -> Val:
    reg &= MASK64
    if reg >> fmt.width != MASK64 >> fmt.width:
        return Val("nan")  # not NaN-boxed: the canonical NaN
    reg &= (1 << fmt.width) - 1
    neg = bool(reg >> (fmt.width - 1))
    e = (reg >> fmt.mb) & ((1 << fmt.eb) - 1)
    frac = reg & ((1 << fmt.mb) - 1)
    if e == (1 << fmt.eb) - 1:
        if frac == 0:
            return Val("inf", neg)
        return Val("nan", neg, snan=not (frac >> (fmt.mb - 1)))
    if e == 0:
        mag = Fraction(frac) * Fraction(2) ** (fmt.emin - fmt.mb)
    else:
        mag = Fraction(frac | 1 << fmt.mb) * Fraction(2) ** (e - fmt.bias - fmt.mb)
    return Val("num", neg, mag)


def encode_exact(v: Val, fmt: Fmt) -> int:
    """Register value of a zero or infinity (or a representable number)."""
    sign = int(v.neg) << (fmt.width - 1)
    if v.kind == "inf":
        return finish_bits(sign | ((1 << fmt.eb) - 1) << fmt.mb, fmt)
    bits, flags = round_exact(v.neg, v.mag, RNE, fmt) if v.mag else (finish_bits(sign, fmt), 0)
    assert flags == 0, "encode_exact of an unrepresentable value"
    return bits


def ilog2(x: Fraction) -> int:
    """floor(log2(x)) for x > 0."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def round_to_int(x: Fraction, neg: bool, rm: int) -> int:
    """Round the nonnegative x to an integer per rm (neg is the sign of the real value)."""
    n = x.numerator // x.denominator
    r = x - n
    if r == 0:
        return n
    half = Fraction(1, 2)
    up = {
        RNE: r > half or (r == half and n % 2 == 1),
        RTZ: False,
        RDN: neg,
        RUP: not neg,
        RMM: r >= half,
    }[rm]
    return n + up


def round_exact(neg: bool, mag: Fraction, rm: int, fmt: Fmt) -> tuple[int, int]:
    """Round a nonzero magnitude to fmt: register value and flags (tininess after rounding)."""
    assert mag > 0
    sign = int(neg) << (fmt.width - 1)
    emax = fmt.bias
    max_finite = (2 - Fraction(2) ** -fmt.mb) * Fraction(2) ** emax
    e = ilog2(mag)
    ulp_unbounded = Fraction(2) ** (e - fmt.mb)
    rounded_unbounded = round_to_int(mag / ulp_unbounded, neg, rm) * ulp_unbounded
    if rounded_unbounded > max_finite:
        to_inf = rm in (RNE, RMM) or (rm == RUP and not neg) or (rm == RDN and neg)
        raw = ((1 << fmt.eb) - 1) << fmt.mb
        return finish_bits(sign | (raw if to_inf else raw - 1), fmt), OF | NX
    ulp = Fraction(2) ** (max(e, fmt.emin) - fmt.mb)
    n = round_to_int(mag / ulp, neg, rm)
    inexact = n * ulp != mag
    tiny = rounded_unbounded < Fraction(2) ** fmt.emin
    v = n * ulp
    if v >= Fraction(2) ** fmt.emin:
        ev = ilog2(v)
        raw = (ev + fmt.bias) << fmt.mb | (int(v / Fraction(2) ** (ev - fmt.mb)) - (1 << fmt.mb))
    else:
        raw = int(v / Fraction(2) ** (fmt.emin - fmt.mb))
    flags = (NX if inexact else 0) | (UF if tiny and inexact else 0)
    return finish_bits(sign | raw, fmt), flags


def result(v: Fraction, rm: int, fmt: Fmt, zero_neg: bool) -> tuple[int, int]:
    """Round an exact rational result; an exact zero gets the sign zero_neg."""
    if v == 0:
        return encode_exact(Val("num", zero_neg), fmt), 0
    return round_exact(v < 0, abs(v), rm, fmt)


def _nan(fmt: Fmt, invalid: bool) -> tuple[int, int]:
    return fmt.canon, NV if invalid else 0


def add(a: int, b: int, rm: int, fmt: Fmt, negate_b: bool = False) -> tuple[int, int]:
    x, y = decode(a, fmt), decode(b, fmt)
    if x.kind == "nan" or y.kind == "nan":
        return _nan(fmt, x.snan or y.snan)
    yneg = y.neg != negate_b
    if x.kind == "inf" and y.kind == "inf":
        if x.neg != yneg:
            return _nan(fmt, True)
        return encode_exact(x, fmt), 0
    if x.kind == "inf":
        return encode_exact(x, fmt), 0
    if y.kind == "inf":
        return encode_exact(Val("inf", yneg), fmt), 0
    yv = -y.mag if yneg else y.mag
    if x.mag == 0 and y.mag == 0 and x.neg == yneg:
        zero_neg = x.neg
    else:
        zero_neg = rm == RDN
    return result(x.value + yv, rm, fmt, zero_neg)


def mul(a: int, b: int, rm: int, fmt: Fmt) -> tuple[int, int]:
    x, y = decode(a, fmt), decode(b, fmt)
    inf_zero = (x.kind == "inf" and y.kind == "num" and y.mag == 0) or (
        y.kind == "inf" and x.kind == "num" and x.mag == 0
    )
    if x.kind == "nan" or y.kind == "nan" or inf_zero:
        return _nan(fmt, x.snan or y.snan or inf_zero)
    neg = x.neg != y.neg
    if x.kind == "inf" or y.kind == "inf":
        return encode_exact(Val("inf", neg), fmt), 0
    return result(x.value * y.value, rm, fmt, neg)


def div(a: int, b: int, rm: int, fmt: Fmt) -> tuple[int, int]:
    x, y = decode(a, fmt), decode(b, fmt)
    if x.kind == "nan" or y.kind == "nan":
        return _nan(fmt, x.snan or y.snan)
    neg = x.neg != y.neg
    if x.kind == "inf":
        if y.kind == "inf":
            return _nan(fmt, True)
        return encode_exact(Val("inf", neg), fmt), 0
    if y.kind == "inf":
        return encode_exact(Val("num", neg), fmt), 0
    if y.mag == 0:
        if x.mag == 0:
            return _nan(fmt, True)
        return encode_exact(Val("inf", neg), fmt), DZ
    return result(x.value / y.value, rm, fmt, neg)


def sqrt(a: int, rm: int, fmt: Fmt) -> tuple[int, int]:
    x = decode(a, fmt)
    if x.kind == "nan":
        return _nan(fmt, x.snan)
    if x.mag == 0 and x.kind == "num":
        return encode_exact(x, fmt), 0
    if x.neg:
        return _nan(fmt, True)
    if x.kind == "inf":
        return encode_exact(x, fmt), 0
    # floor(sqrt(x) * 2**k) with k large enough that a jam bit below it is far past the
    # precision: the jammed value rounds exactly like the irrational root.
    k = 200 + max(0, -ilog2(x.mag))
    scaled = x.mag * Fraction(4) ** k
    n = isqrt(scaled.numerator // scaled.denominator)
    exact = Fraction(n * n) == scaled
    root = Fraction(n, 2**k) if exact else Fraction(2 * n + 1, 2 ** (k + 1))
    return round_exact(False, root, rm, fmt)


def fma(a: int, b: int, c: int, rm: int, fmt: Fmt, neg_prod: bool, neg_c: bool):
    x, y, z = decode(a, fmt), decode(b, fmt), decode(c, fmt)
    inf_zero = (x.kind == "inf" and y.kind == "num" and y.mag == 0) or (
        y.kind == "inf" and x.kind == "num" and x.mag == 0
    )
    if x.kind == "nan" or y.kind == "nan" or z.kind == "nan" or inf_zero:
        return _nan(fmt, x.snan or y.snan or z.snan or inf_zero)
    pneg = (x.neg != y.neg) != neg_prod
    zneg = z.neg != neg_c
    if x.kind == "inf" or y.kind == "inf":
        if z.kind == "inf" and zneg != pneg:
            return _nan(fmt, True)
        return encode_exact(Val("inf", pneg), fmt), 0
    if z.kind == "inf":
        return encode_exact(Val("inf", zneg), fmt), 0
    p = x.mag * y.mag
    pv = -p if pneg else p
    zv = -z.mag if zneg else z.mag
    if p == 0 and z.mag == 0 and pneg == zneg:
        zero_neg = pneg
    else:
        zero_neg = rm == RDN
    return result(pv + zv, rm, fmt, zero_neg)


def min_max(a: int, b: int, fmt: Fmt, is_max: bool) -> tuple[int, int]:
    x, y = decode(a, fmt), decode(b, fmt)
    flags = NV if x.snan or y.snan else 0
    if x.kind == "nan" and y.kind == "nan":
        return fmt.canon, flags
    if x.kind == "nan":
        return _reencode(b, fmt), flags
    if y.kind == "nan":
        return _reencode(a, fmt), flags
    kx = _order_key(x)
    ky = _order_key(y)
    pick_a = (kx > ky) if is_max else (kx < ky)
    return _reencode(a if pick_a else b, fmt), flags


def _order_key(v: Val) -> tuple:
    # Total order of non-NaN values with -0 < +0.
    if v.kind == "inf":
        return (Fraction(-1 if v.neg else 1) * 10**400, 0)
    return (v.value, 0 if v.neg else 1)


def _reencode(reg: int, fmt: Fmt) -> int:
    return finish_bits(reg & ((1 << fmt.width) - 1), fmt)


def compare(a: int, b: int, fmt: Fmt, op: str) -> tuple[int, int]:
    x, y = decode(a, fmt), decode(b, fmt)
    if x.kind == "nan" or y.kind == "nan":
        signalling = x.snan or y.snan if op == "eq" else True
        return 0, NV if signalling else 0
    kx = _order_key(x)[0]
    ky = _order_key(y)[0]
    return int({"eq": kx == ky, "lt": kx < ky, "le": kx <= ky}[op]), 0


def fclass(a: int, fmt: Fmt) -> tuple[int, int]:
    x = decode(a, fmt)
    if x.kind == "nan":
        return (1 << 8 if x.snan else 1 << 9), 0
    if x.kind == "inf":
        return (1 << 0 if x.neg else 1 << 7), 0
    if x.mag == 0:
        return (1 << 3 if x.neg else 1 << 4), 0
    if x.mag < Fraction(2) ** fmt.emin:
        return (1 << 2 if x.neg else 1 << 5), 0
    return (1 << 1 if x.neg else 1 << 6), 0


INT_RANGES = {
    "w": (-(2**31), 2**31 - 1, 32),
    "wu": (0, 2**32 - 1, 32),
    "l": (-(2**63), 2**63 - 1, 64),
    "lu": (0, 2**64 - 1, 64),
}


def to_int(a: int, rm: int, fmt: Fmt, kind: str) -> tuple[int, int]:
    lo, hi, width = INT_RANGES[kind]
    x = decode(a, fmt)
    if x.kind == "nan":
        n, flags = hi, NV
    elif x.kind == "inf":
        n, flags = (lo if x.neg else hi), NV
    else:
        r = round_to_int(x.mag, x.neg, rm)
        n = -r if x.neg else r
        if n < lo:
            n, flags = lo, NV
        elif n > hi:
            n, flags = hi, NV
        else:
            flags = NX if Fraction(n) != x.value else 0
    n &= (1 << width) - 1
    if n >> (width - 1):  # 32-bit results are sign-extended, even unsigned ones
        n -= 1 << width
    return n, flags


def from_int(reg: int, rm: int, fmt: Fmt, kind: str) -> tuple[int, int]:
    _, _, width = INT_RANGES[kind]
    n = reg & ((1 << width) - 1)
    if kind in ("w", "l") and n >> (width - 1):
        n -= 1 << width
    return result(Fraction(n), rm, fmt, False)


def convert(a: int, rm: int, src: Fmt, dst: Fmt) -> tuple[int, int]:
    x = decode(a, src)
    if x.kind == "nan":
        return _nan(dst, x.snan)
    if x.kind == "inf" or x.mag == 0:
        return encode_exact(x, dst), 0
    return round_exact(x.neg, x.mag, rm, dst)
