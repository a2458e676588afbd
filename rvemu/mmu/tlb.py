"""A software TLB: 256 direct-mapped entries for each kind of access.

An entry maps a virtual page number to the host offset of that page in guest RAM, so a
hit costs one compare: `ram_offset = entry + vaddr`. Loads, stores and fetches have
separate tables; pages holding decoded instructions or the tohost word never enter the
store table, so stores that must invalidate decoded code (or exit) take the slow path.
Everything is flushed whenever the translation context changes (satp, privilege,
mstatus, sfence.vma).
"""

import numpy as np
from numba import njit

from ..cpu.jit import njit_generic
from ..cpu.layout import DELTA, INVALID, TAG, TLB_ENTRIES


@njit(cache=True, inline="always")
def tlb_slot(kind: int, vpn: int) -> int:
    return ((kind << 8) | (vpn & (TLB_ENTRIES - 1))) << 1


@njit_generic
def tlb_flush(tlb: np.ndarray) -> None:
    for i in range(0, 3 * TLB_ENTRIES * 2, 2):
        tlb[i + TAG] = INVALID


@njit_generic
def tlb_flush_kind(tlb: np.ndarray, kind: int) -> None:
    for i in range(TLB_ENTRIES):
        tlb[tlb_slot(kind, i) + TAG] = INVALID


@njit(cache=True, inline="always")
def tlb_fill(tlb: np.ndarray, kind: int, vaddr: int, ram_offset: int) -> None:
    vpn = vaddr >> 12
    slot = tlb_slot(kind, vpn)
    tlb[slot + TAG] = vpn
    tlb[slot + DELTA] = (ram_offset & ~0xFFF) - (vpn << 12)
