"""The F/D state every floating-point instruction consults: mstatus.FS and the rounding mode."""

from numba import njit

from .state import MSTATUS_FS

RM_DYN = 7  # an rm field of 7 means "the rounding mode in fcsr.frm"
RM_MAX = 4  # RMM; modes 5 and 6 (and a dynamic frm above 4) make the instruction illegal
# fflags -2 from the loop's F/D dispatch: fp_compute's library is not loaded yet
# (entry_points.LAZY), and nothing has changed
NOT_LOADED = -2


@njit(cache=True, inline="always")
def fp_enabled(mstatus: int) -> bool:
    """F/D instructions are illegal while mstatus.FS is Off."""
    return (mstatus & MSTATUS_FS) != 0


@njit(cache=True, inline="always")
def dirty(mstatus: int) -> int:
    """mstatus after an instruction that changed F/D state (FS becomes Dirty)."""
    return mstatus | MSTATUS_FS


@njit(cache=True, inline="always")
def resolve_rm(rm_field: int, fcsr: int) -> int:
    """The rounding mode an instruction uses: its rm field, or fcsr.frm for dynamic."""
    return (fcsr >> 5) & 7 if rm_field == RM_DYN else rm_field
