"""Small bit helpers shared by the decoder and the executor (all Numba-compiled)."""

from numba import njit


@njit(cache=True, inline="always")
def sext(value: int, bits: int) -> int:
    """Sign-extend the low `bits` bits of `value` to int64."""
    sign = 1 << (bits - 1)
    return ((value & ((1 << bits) - 1)) ^ sign) - sign


@njit(cache=True, inline="always")
def field(insn: int, hi: int, lo: int) -> int:
    """insn[hi:lo] as an unsigned integer."""
    return (insn >> lo) & ((1 << (hi - lo + 1)) - 1)
