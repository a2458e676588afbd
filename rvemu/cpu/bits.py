"""Small bit helpers shared by the decoder and the executor (all Numba-compiled)."""

from numba import njit

from .ops import sext  # noqa: F401 (one definition, in the semantics vocabulary)


@njit(cache=True, inline="always")
def field(insn: int, hi: int, lo: int) -> int:
    """insn[hi:lo] as an unsigned integer."""
    return (insn >> lo) & ((1 << (hi - lo + 1)) - 1)
