"""Sv39 and Sv48 address translation (privileged spec, "Virtual-Memory System").

Svnapot (64 KiB NAPOT leaves) is implemented; Svpbmt is not (its bits are reserved).

A/D bits: like QEMU, the walk sets A (and D on a store) in the PTE itself rather than
raising a page fault, which the spec allows.
"""

from numba import njit

from ..cpu.isa import extension_bit
from ..cpu.jit import njit_generic
from ..cpu.state import (
    ACCESS_FETCH,
    ACCESS_LOAD,
    ACCESS_STORE,
    CAUSE_FETCH_ACCESS,
    CAUSE_FETCH_PAGE,
    CAUSE_LOAD_ACCESS,
    CAUSE_LOAD_PAGE,
    CAUSE_STORE_ACCESS,
    CAUSE_STORE_PAGE,
    EXTENSIONS,
    MSTATUS,
    MSTATUS_MPP,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
    MSTATUS_MXR,
    MSTATUS_SUM,
    OK,
    PMP_DENIES,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    PROF_WALKS,
    RAM_BASE,
    RAM_SIZE,
    SATP,
    WALK_SPAN,
)
from .pmp import WALK_PRIV, pmp_check, pmp_denies

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_G, PTE_A, PTE_D = 1, 2, 4, 8, 16, 32, 64, 128
SVNAPOT = extension_bit("svnapot")
PTE_N = -(1 << 63)  # Svnapot: a leaf that is one 4 KiB piece of a naturally aligned range
PTE_RESERVED = ((1 << 63) - 1) & ~((1 << 54) - 1)  # bits 54..62 (Svpbmt's 61..62 included)
# The one NAPOT size the spec defines: 64 KiB, a level-0 leaf with ppn[3:0] = 1000.
NAPOT_64K_BITS = 4
NAPOT_64K_PPN = 0b1000
SATP_MODE_BARE, SATP_MODE_SV39, SATP_MODE_SV48 = 0, 8, 9
PPN_MASK = (1 << 44) - 1


@njit(cache=True, inline="always")
def page_fault(kind: int) -> int:
    if kind == ACCESS_FETCH:
        return CAUSE_FETCH_PAGE
    if kind == ACCESS_LOAD:
        return CAUSE_LOAD_PAGE
    return CAUSE_STORE_PAGE


@njit(cache=True, inline="always")
def access_fault(kind: int) -> int:
    if kind == ACCESS_FETCH:
        return CAUSE_FETCH_ACCESS
    if kind == ACCESS_LOAD:
        return CAUSE_LOAD_ACCESS
    return CAUSE_STORE_ACCESS


@njit(cache=True, inline="always")
def effective_priv(kind: int, csr, st) -> int:
    """The privilege a load or store is checked at (mstatus.MPRV), or a fetch's own."""
    priv = st[PRIV]
    if kind != ACCESS_FETCH and priv == PRIV_M and csr[MSTATUS] & MSTATUS_MPRV:
        return (csr[MSTATUS] & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT
    return priv


@njit(cache=True, inline="always")
def pmp_may_deny(csr, st) -> bool:
    """Whether PMP may deny the hart a RAM access now: a fetch at its privilege, or a load
    or store at the one MPRV gives it. Then RAM must be reached through the TLB, whose
    entries are made only for pages PMP allows (mmu/pmp.py)."""
    if st[PMP_DENIES] == 0:
        return False
    return pmp_denies(st, st[PRIV]) or pmp_denies(st, effective_priv(ACCESS_LOAD, csr, st))


@njit_generic
def translate(vaddr: int, kind: int, csr, st, ram64) -> tuple[int, int]:
    """(physical address, OK) or (0, exception cause) for an access of `kind` at vaddr."""
    priv = effective_priv(kind, csr, st)
    satp = csr[SATP]
    mode = (satp >> 60) & 0xF
    if priv == PRIV_M or mode == SATP_MODE_BARE:
        st[WALK_SPAN] = 12
        return vaddr, OK
    levels = 3 if mode == SATP_MODE_SV39 else 4
    va_bits = 12 + 9 * levels
    # The upper bits of a virtual address must all equal its top valid bit.
    if (vaddr >> (va_bits - 1)) != 0 and (vaddr >> (va_bits - 1)) != -1:
        return 0, page_fault(kind)

    st[PROF_WALKS + kind] += 1
    ram_base = st[RAM_BASE]
    ram_size = st[RAM_SIZE]
    table = (satp & PPN_MASK) << 12
    level = levels - 1
    pte = 0
    pte_addr = 0
    while True:
        vpn_i = (vaddr >> (12 + 9 * level)) & 0x1FF
        pte_addr = table + vpn_i * 8
        if pte_addr < ram_base or pte_addr + 8 > ram_base + ram_size:
            return 0, access_fault(kind)
        if not pmp_check(pte_addr, 8, ACCESS_LOAD, WALK_PRIV, csr, st):
            return 0, access_fault(kind)
        pte = ram64[(pte_addr - ram_base) >> 3]
        if (pte & PTE_V) == 0 or ((pte & PTE_R) == 0 and (pte & PTE_W) != 0):
            return 0, page_fault(kind)
        if pte & PTE_RESERVED:  # reserved bits; Svpbmt is not implemented
            return 0, page_fault(kind)
        if pte & (PTE_R | PTE_X):
            break  # a leaf
        if pte & (PTE_U | PTE_A | PTE_D | PTE_N):  # non-leaf PTEs keep these clear
            return 0, page_fault(kind)
        level -= 1
        if level < 0:
            return 0, page_fault(kind)
        table = ((pte >> 10) & PPN_MASK) << 12

    # Permission checks on the leaf.
    if kind == ACCESS_FETCH:
        allowed = (pte & PTE_X) != 0
    elif kind == ACCESS_LOAD:
        allowed = (pte & PTE_R) != 0 or ((csr[MSTATUS] & MSTATUS_MXR) != 0 and (pte & PTE_X) != 0)
    else:
        allowed = (pte & PTE_W) != 0
    if not allowed:
        return 0, page_fault(kind)
    if priv == PRIV_U and (pte & PTE_U) == 0:
        return 0, page_fault(kind)
    if priv == PRIV_S and (pte & PTE_U) != 0:
        if kind == ACCESS_FETCH or (csr[MSTATUS] & MSTATUS_SUM) == 0:
            return 0, page_fault(kind)

    ppn = (pte >> 10) & PPN_MASK
    if level > 0 and (ppn & ((1 << (9 * level)) - 1)) != 0:
        return 0, page_fault(kind)  # misaligned superpage
    if pte & PTE_N:
        # Svnapot: only 64 KiB ranges of 4 KiB leaves are defined; other encodings are
        # reserved and fault. (A superpage leaf got here with ppn[3:0] = 0: it faults too.)
        # Without Svnapot (--cpu rv64,svnapot=off) N is a reserved bit.
        if (ppn & ((1 << NAPOT_64K_BITS) - 1)) != NAPOT_64K_PPN or not st[EXTENSIONS] & SVNAPOT:
            return 0, page_fault(kind)
        napot_mask = (1 << NAPOT_64K_BITS) - 1
        ppn = (ppn & ~napot_mask) | ((vaddr >> 12) & napot_mask)
        st[WALK_SPAN] = 12 + NAPOT_64K_BITS
    else:
        st[WALK_SPAN] = 12 + 9 * level

    # Hardware A/D update, as QEMU does.
    new_pte = pte | PTE_A
    if kind == ACCESS_STORE:
        new_pte |= PTE_D
    if new_pte != pte:
        ram64[(pte_addr - ram_base) >> 3] = new_pte

    offset_bits = 12 + 9 * level
    paddr = (ppn << 12) & ~((1 << offset_bits) - 1) | (vaddr & ((1 << offset_bits) - 1))
    return paddr, OK
