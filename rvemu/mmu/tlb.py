"""A software TLB: 256 direct-mapped entries for each kind of access.

An entry maps a virtual page number to the host offset of that page in guest RAM, so a
hit costs one compare: `ram_offset = entry + vaddr`. Loads, stores and fetches have
separate tables; pages holding decoded instructions or the tohost word never enter the
store table, so stores that must invalidate decoded code (or exit) take the slow path.
Everything is flushed whenever the translation context changes (satp, privilege, PMP,
mstatus' MPRV, MPP, SUM or MXR, sfence.vma of every address); sfence.vma of one address
forgets that page's entries only.
"""

import numpy as np
from numba import njit

from ..cpu.jit import njit_generic
from ..cpu.layout import DELTA, INVALID, SPANS, TAG, TLB_ENTRIES


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
def tlb_fill(tlb: np.ndarray, kind: int, vaddr: int, ram_offset: int, span: int) -> None:
    """Enter vaddr's 4 KiB page, a piece of a page of 2**span bytes."""
    vpn = vaddr >> 12
    slot = tlb_slot(kind, vpn)
    tlb[slot + TAG] = vpn
    tlb[slot + DELTA] = (ram_offset & ~0xFFF) - (vpn << 12)
    tlb[SPANS + (slot >> 1)] = span


@njit_generic
def tlb_forget_page(tlb: np.ndarray, vaddr: int) -> None:
    """sfence.vma of one address: forget every entry of the page holding vaddr (all 4 KiB
    pieces of a superpage), and keep the rest."""
    for i in range(3 * TLB_ENTRIES):
        vpn = tlb[2 * i + TAG]
        if vpn != INVALID and (vpn << 12) >> tlb[SPANS + i] == vaddr >> tlb[SPANS + i]:
            tlb[2 * i + TAG] = INVALID
