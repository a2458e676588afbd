"""The CLINT, served by the hart itself: msip, mtimecmp and mtime (SiFive layout, as QEMU
virt maps it at 0x2000000).

Guests poll mtime and rearm mtimecmp constantly, so the hart serves the CLINT itself from
its `st` array instead of exiting to Python. Time advances with retired instructions
(deterministic runs): mtime = st[MTIME_BASE] + instret // INSNS_PER_TICK.
"""

from numba import njit

from .jit import njit_generic
from .state import INSNS_PER_TICK, MSIP, MTIME_BASE, MTIMECMP

# include/hw/intc/riscv_aclint.h (SiFive CLINT layout)
MSIP_OFFSET = 0x0
MTIMECMP_OFFSET = 0x4000
MTIME_OFFSET = 0xBFF8


@njit(cache=True, inline="always")
def mtime(st, instret: int) -> int:
    return st[MTIME_BASE] + instret // INSNS_PER_TICK


@njit_generic
def clint_read(st, offset: int, size: int, instret: int) -> int:
    if offset == MSIP_OFFSET:
        return st[MSIP]
    if MTIMECMP_OFFSET <= offset < MTIMECMP_OFFSET + 8:
        value = st[MTIMECMP]
    elif MTIME_OFFSET <= offset < MTIME_OFFSET + 8:
        value = mtime(st, instret)
    else:
        return 0
    shift = 8 * (offset & 7)
    if size == 8:
        return value
    return (value >> shift) & ((1 << (8 * size)) - 1)


@njit_generic
def clint_write(st, offset: int, size: int, value: int, instret: int) -> None:
    if offset == MSIP_OFFSET:
        st[MSIP] = value & 1
        return
    if MTIMECMP_OFFSET <= offset < MTIMECMP_OFFSET + 8:
        st[MTIMECMP] = merge(st[MTIMECMP], offset - MTIMECMP_OFFSET, size, value)
    elif MTIME_OFFSET <= offset < MTIME_OFFSET + 8:
        now = mtime(st, instret)
        st[MTIME_BASE] += merge(now, offset - MTIME_OFFSET, size, value) - now


@njit(cache=True, inline="always")
def merge(old: int, offset: int, size: int, value: int) -> int:
    """`old` with `size` bytes at byte `offset` replaced by `value` (4-byte halves)."""
    if size == 8:
        return value
    shift = 8 * offset
    mask = ((1 << (8 * size)) - 1) << shift
    return (old & ~mask) | ((value << shift) & mask)
