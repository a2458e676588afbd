"""Exact rounding of a binary value to half, single or double, in any RISC-V rounding mode,
with flags.

`round_pack` is the single place where results meet the format: rounding mode, subnormals,
tininess after rounding, overflow. Callers describe the exact value as sign * sig * 2**exp,
where sig is a positive integer below 2**62 whose lowest bit may be a "jam" bit: set when
anything nonzero lies below it. Jamming is exact for rounding as long as at least two bits are
dropped, which holds whenever sig carries two or more bits beyond the target precision.
"""

import math

import numpy as np

from rvemu.cpu.fpu_bits import NX, OF, UF, clz64, f64_bits, layout, ldexp

from .jit import njit_generic

RNE = 0
RTZ = 1
RDN = 2
RUP = 3
RMM = 4


@njit_generic
def _round_shift(sig: int, drop: int, neg: bool, rm: int) -> tuple[int, bool]:
    """sig / 2**drop rounded to an integer per rm, and whether that was inexact."""
    if drop <= 0:
        return sig << -drop, False
    if drop >= 63:
        kept = np.int64(0)
        rem = sig
        half = np.int64(1) << 62  # sig < 2**62, so always below half
        above_half_point = False
    else:
        kept = sig >> drop
        rem = sig & ((np.int64(1) << drop) - 1)
        half = np.int64(1) << (drop - 1)
        above_half_point = rem > half
    if rem == 0:
        return kept, False
    if rm == RNE:
        up = above_half_point or (rem == half and (kept & 1) == 1)
    elif rm == RMM:
        up = rem >= half
    elif rm == RDN:
        up = neg
    elif rm == RUP:
        up = not neg
    else:
        up = False
    if up:
        kept += 1
    return kept, True


@njit_generic
def round_pack(neg: bool, exp: int, sig: int, rm: int, fmt: int) -> tuple[int, int]:
    """Round (-1)**neg * sig * 2**exp (0 < sig < 2**62) to a register value of format fmt
    and fflags."""
    mb, eb, _ = layout(fmt)
    emax = (np.int64(1) << (eb - 1)) - 1
    emin = 1 - emax
    n = 64 - clz64(sig)  # bit length
    e = exp + n - 1  # value lies in [2**e, 2**(e+1))
    flags = np.int64(0)
    if e >= emin:
        kept, inexact = _round_shift(sig, n - (mb + 1), neg, rm)
        if kept >> (mb + 1) != 0:  # rounded up to the next power of two
            kept >>= 1
            e += 1
        if e > emax:
            to_max = rm == RTZ or (rm == RDN and not neg) or (rm == RUP and neg)
            # the largest finite value is the encoding just below infinity's
            return inf_bits(neg, fmt) - np.int64(to_max), np.int64(OF | NX)
        # kept holds the implicit bit 2**mb, which carries into the exponent field
        bits = (np.int64(e + emax - 1) << mb) + kept
        if inexact:
            flags = np.int64(NX)
    else:
        kept, inexact = _round_shift(sig, (emin - mb) - exp, neg, rm)
        bits = kept  # a carry into bit mb is exactly the smallest normal
        if inexact:
            flags = np.int64(NX)
            # RISC-V detects tininess after rounding: with an unbounded exponent, does the
            # value still round to below 2**emin?
            tiny = True
            if e == emin - 1:
                unb, _ = _round_shift(sig, n - (mb + 1), neg, rm)
                tiny = unb >> (mb + 1) == 0
            if tiny:
                flags |= UF
    return bits | zero_bits(neg, fmt), flags  # the sign and the NaN-box


@njit_generic
def zero_bits(neg: bool, fmt: int) -> int:
    """A signed zero register value."""
    mb, eb, box = layout(fmt)
    return box | (np.int64(neg) << (mb + eb))


@njit_generic
def inf_bits(neg: bool, fmt: int) -> int:
    """A signed infinity register value."""
    mb, eb, _ = layout(fmt)
    return zero_bits(neg, fmt) | (((np.int64(1) << eb) - 1) << mb)


@njit_generic
def _units(err: float, eq: int) -> float:
    """err in units of 2**(eq - 55), exactly, or a stand-in below one unit if far smaller."""
    if err == 0.0:
        return 0.0
    if ((f64_bits(err) >> 52) & 0x7FF) - 1023 < eq - 120:
        return math.copysign(0.25, err)
    return ldexp(err, 55 - eq)


@njit_generic
def finish(q: float, e_hi: float, e_lo: float, k: int, rm: int, fmt: int) -> tuple[int, int]:
    """Round the exact value (q + e_hi + e_lo) * 2**k to a register value and fflags.

    q is a nonzero normal double within about 2**+-600 (a scaled intermediate), e_hi + e_lo its
    error with |e_hi + e_lo| <= ulp(q)/2 and |e_lo| <= ulp(e_hi)/2 (a double-double).
    """
    bits = f64_bits(q)
    neg = bits < 0
    eq = ((bits >> 52) & 0x7FF) - 1023
    m = (bits & 0xFFFFFFFFFFFFF) | (np.int64(1) << 52)
    if neg:
        e_hi = -e_hi
        e_lo = -e_lo
    # The error in eighths of an ulp of q, jammed to an integer: exact when it is an integer,
    # else floor|1 (an odd integer on the same side of every even rounding boundary).
    t = _units(e_hi, eq)
    u = _units(e_lo, eq)
    f = math.floor(t)
    if f != t:
        r = np.int64(f) | 1
    elif u > 0.0:
        r = np.int64(t) | 1
    elif u < 0.0:
        r = np.int64(t - 1.0) | 1
    else:
        r = np.int64(t)
    return round_pack(neg, eq - 55 + k, m * 8 + r, rm, fmt)
