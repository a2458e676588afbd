"""Physical memory protection (privileged spec, "Physical Memory Protection"), as QEMU
enforces it for its virt harts: 16 entries, 4-byte granularity, no Smepmp.

Entry i's configuration byte is byte i % 8 of pmpcfg0 (entries 0-7) or pmpcfg2 (8-15);
pmpaddr i holds bits 55..2 of an address. The lowest-numbered entry that matches any
byte of an access decides it, and must match all of its bytes. An entry allows M-mode
everything unless it is locked (L); an access no entry matches is allowed in M-mode
and fails in S/U-mode (the spec: "at least one PMP entry is implemented"), so S and U
reach memory only once M-mode has set up a rule, as on QEMU (which also makes an MRET
to S/U illegal while there is no rule: see `pmp_rules`).

Where the checks are made: on every access the slow path serves (memory.py) and on each
PTE read of a page walk (sv.py, as an S-mode load). The TLB only takes a 4 KiB page whose
bytes all get the same allowing verdict, so a TLB hit needs no check. st[PMP_DENIES] says
for which privileges PMP denies some access to RAM; while it does for the hart's, the
hart runs the TLB copy of its loop even untranslated (see `pmp_may_deny`), because the
other copy reaches RAM directly.

Fetches are checked per page: the fetch TLB always takes the page of a permitted fetch,
so on a page whose bytes have different execute verdicts, the first fetch's verdict
holds for the whole page until the TLB is flushed.
"""

from numba import njit

from ..cpu.jit import njit_generic
from ..cpu.state import PMP_DENIES, PMPADDR0, PMPCFG0, PRIV_M, PRIV_S, PRIV_U, RAM_BASE, RAM_SIZE
from .tlb import tlb_flush

PMP_ENTRIES = 16  # as QEMU's virt harts have
# Configuration byte: R, W, X are bits 0, 1, 2 — bit `kind` for ACCESS_LOAD, _STORE, _FETCH.
PMP_L = 0x80
PMP_CFG_WRITABLE = 0x9F  # bits 5 and 6 are reserved, read as zero
A_OFF, A_TOR, A_NA4, A_NAPOT = 0, 1, 2, 3  # address matching (bits 3..4)
PMPADDR_MASK = (1 << 54) - 1  # bits 55..2 of a 56-bit physical address


@njit(cache=True, inline="always")
def pmp_cfg(csr, i: int) -> int:
    return (csr[PMPCFG0 + 2 * (i >> 3)] >> (8 * (i & 7))) & 0xFF


@njit(cache=True, inline="always")
def pmp_bounds(csr, i: int, mode: int) -> tuple[int, int]:
    """First and last byte entry i matches (last < first: it matches nothing)."""
    addr = csr[PMPADDR0 + i]
    if mode == A_TOR:
        first = csr[PMPADDR0 + i - 1] << 2 if i > 0 else 0
        return first, (addr << 2) - 1
    if mode == A_NA4:
        return addr << 2, (addr << 2) + 3
    ones = (addr << 2) | 3  # NAPOT: the trailing ones give the size
    return ones & (ones + 1), ones | (ones + 1)


@njit_generic
def pmp_allows(paddr: int, size: int, kind: int, priv: int, csr) -> bool:
    """Whether PMP allows an access of `kind` to every byte of [paddr, paddr + size)."""
    last = paddr + size - 1
    for i in range(PMP_ENTRIES):
        cfg = pmp_cfg(csr, i)
        mode = (cfg >> 3) & 3
        if mode == A_OFF:
            continue
        first_matched, last_matched = pmp_bounds(csr, i, mode)
        if last < first_matched or paddr > last_matched:
            continue
        if paddr < first_matched or last > last_matched:
            return False  # the entry matches only some of the bytes
        if priv == PRIV_M and (cfg & PMP_L) == 0:
            return True
        return (cfg >> kind) & 1 != 0
    return priv == PRIV_M


@njit_generic
def pmp_rules(csr) -> int:
    """How many PMP entries are enabled (address matching not OFF)."""
    rules = 0
    for i in range(PMP_ENTRIES):
        if (pmp_cfg(csr, i) >> 3) & 3 != A_OFF:
            rules += 1
    return rules


@njit_generic
def pmp_check(paddr: int, size: int, kind: int, priv: int, csr, st) -> bool:
    """pmp_allows, answered at once for RAM where PMP denies nothing at `priv`."""
    off = paddr - st[RAM_BASE]
    if (st[PMP_DENIES] >> priv) & 1 == 0 and off >= 0 and off + size <= st[RAM_SIZE]:
        return True
    return pmp_allows(paddr, size, kind, priv, csr)


@njit_generic
def pmp_page_verdict(paddr: int, kind: int, priv: int, csr, st) -> bool:
    """Whether every access of `kind` to paddr's 4 KiB page of RAM is allowed, so the page
    may enter the TLB."""
    if (st[PMP_DENIES] >> priv) & 1 == 0:
        return True
    return pmp_allows(paddr & ~0xFFF, 4096, kind, priv, csr)


@njit_generic
def pmp_changed(csr, st, tlb) -> None:
    """After a write to a PMP register: forget TLB entries, and see which privileges PMP
    now denies some RAM access to."""
    tlb_flush(tlb)
    denies = 0
    for priv in (PRIV_U, PRIV_S, PRIV_M):
        for kind in range(3):
            if not pmp_allows(st[RAM_BASE], st[RAM_SIZE], kind, priv, csr):
                denies |= 1 << priv
    st[PMP_DENIES] = denies


@njit_generic
def pmpcfg_write(num: int, value: int, csr, st, tlb) -> None:
    """Write pmpcfg0 or pmpcfg2: locked entries keep their configuration."""
    old = csr[num]
    new = 0
    for k in range(8):
        old_byte = (old >> (8 * k)) & 0xFF
        byte = old_byte if old_byte & PMP_L else (value >> (8 * k)) & PMP_CFG_WRITABLE
        new |= byte << (8 * k)
    csr[num] = new
    pmp_changed(csr, st, tlb)


@njit_generic
def pmpaddr_write(num: int, value: int, csr, st, tlb) -> None:
    """Write pmpaddr i, unless entry i is locked or is the base of a locked TOR entry."""
    i = num - PMPADDR0
    if pmp_cfg(csr, i) & PMP_L:
        return
    if i + 1 < PMP_ENTRIES:
        above = pmp_cfg(csr, i + 1)
        if above & PMP_L and (above >> 3) & 3 == A_TOR:
            return
    csr[num] = value & PMPADDR_MASK
    pmp_changed(csr, st, tlb)


@njit(cache=True, inline="always")
def pmp_denies(st, priv: int) -> bool:
    """Whether PMP denies some access to RAM at privilege `priv`."""
    return (st[PMP_DENIES] >> priv) & 1 != 0


# The privilege PTE reads of a page walk are checked at, whatever the access's (QEMU).
WALK_PRIV = PRIV_S
