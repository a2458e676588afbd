"""Loads, stores and instruction fetch: the software-TLB fast path and the slow path behind it.

`mem` is the tuple (ram8, ram16, ram32, ram64) of views of guest RAM (uint8, uint16,
uint32, int64). Guest physical RAM starts at st[RAM_BASE]; an offset into RAM is what the
TLB, the decoded-instruction cache and page flags are keyed by.

Misaligned loads and stores are done in hardware, as QEMU does; LR/SC and AMOs must be
aligned. An access outside RAM and the in-hart CLINT returns MMIO so the hart can exit to
Python's device model.

PMP (mmu/pmp.py) is checked here, on the slow path: the TLB only takes pages PMP allows
whole, and the direct path of `paged=False` is only used while PMP denies nothing.
"""

import numpy as np
from numba import njit

from ..mmu.pmp import pmp_check, pmp_page_verdict
from ..mmu.sv import access_fault, effective_priv, translate
from ..mmu.tlb import tlb_fill, tlb_flush_kind, tlb_slot
from . import layout
from .clint import clint_read, clint_write
from .jit import njit_generic, njit_inline
from .layout import (
    CODE_MAP,
    DC_ENTRIES,
    DC_TAG,
    DELTA,
    GRANULE,
    PAGE_CODE,
    PAGE_REGION,
    PAGE_WATCH,
    TAG,
)
from .state import (
    ACCESS_FETCH,
    ACCESS_LOAD,
    ACCESS_STORE,
    CLINT_BASE,
    CLINT_SIZE,
    DEBUG_HIT,
    MAX_WATCHPOINTS,
    MMIO,
    MMIO_ADDR,
    MMIO_SIZE,
    MMIO_VALUE,
    OK,
    RAM_BASE,
    RAM_SIZE,
    SECOND_PAGE_FAULT,
    TOHOST,
    TOHOST_HIT,
    WALK_SPAN,
    WATCH_LEN,
    WATCH_OFF,
)

SLOW = -3  # a store done by the slow path: the hart re-checks interrupts and exits
WATCHED = -5  # a store that would write a watched range: not done, the hart stops before it


dc_slot = njit(cache=True, inline="always")(layout.dc_slot)


@njit(cache=True, inline="always")
def read_ram(mem, off: int, size: int) -> int:
    # Unsigned indices: callers pass offsets inside RAM, and Numba then skips its
    # negative-index wraparound (a compare and a load of the array's length per access).
    if size == 8:
        return mem[3][np.uint64(off >> 3)]
    if size == 4:
        return np.int64(mem[2][np.uint64(off >> 2)])
    if size == 2:
        return np.int64(mem[1][np.uint64(off >> 1)])
    return np.int64(mem[0][np.uint64(off)])


@njit(cache=True, inline="always")
def write_ram(mem, off: int, size: int, value: int) -> None:
    if size == 8:
        mem[3][np.uint64(off >> 3)] = value
    elif size == 4:
        mem[2][np.uint64(off >> 2)] = np.uint32(value & 0xFFFFFFFF)
    elif size == 2:
        mem[1][np.uint64(off >> 1)] = np.uint16(value & 0xFFFF)
    else:
        mem[0][np.uint64(off)] = np.uint8(value & 0xFF)


@njit_inline
def load(addr: int, size: int, mem, tlb, csr, st, instret: int, paged: bool) -> tuple[int, int]:
    """(value zero-extended, OK) or (0, MMIO / trap cause). With `paged` False the caller
    knows loads are not translated (see core.translates): RAM is reached directly."""
    if paged:
        vpn = addr >> 12
        slot = tlb_slot(ACCESS_LOAD, vpn)
        if tlb[slot + TAG] == vpn and (addr & (size - 1)) == 0:
            return read_ram(mem, tlb[slot + DELTA] + addr, size), OK
    else:
        off = addr - st[RAM_BASE]
        if 0 <= off < st[RAM_SIZE] and (addr & (size - 1)) == 0:
            return read_ram(mem, off, size), OK
    return load_slow(addr, size, mem, tlb, csr, st, instret)


@njit_inline
def store(addr: int, size: int, value: int, mem, tlb, pagef, dc, csr, st, instret, paged) -> int:
    """OK or SLOW when done; MMIO or a trap cause when not. `paged` as for load; stores
    to pages holding code or the tohost word take the slow path."""
    if paged:
        vpn = addr >> 12
        slot = tlb_slot(ACCESS_STORE, vpn)
        if tlb[slot + TAG] == vpn and (addr & (size - 1)) == 0:
            write_ram(mem, tlb[slot + DELTA] + addr, size, value)
            return OK
    else:
        off = addr - st[RAM_BASE]
        in_ram = 0 <= off < st[RAM_SIZE] and (addr & (size - 1)) == 0
        if in_ram:
            flags = pagef[np.uint64(off >> 12)]
            # (an aligned store stays in one granule of the code map)
            if flags == 0 or (flags & PAGE_WATCH == 0 and not holds_code(dc, off, 1)):
                write_ram(mem, off, size, value)
                return OK
    return store_slow(addr, size, value, mem, tlb, pagef, dc, csr, st, instret)


@njit(cache=True, inline="always")
def holds_code(dc, off: int, size: int) -> bool:
    """Whether RAM [off, off + size) (in one page) may hold a decoded or compiled
    instruction, as the code map says (layout.CODE_MAP)."""
    first = (off & 0xFFF) >> GRANULE
    last = ((off + size - 1) & 0xFFF) >> GRANULE
    bits = ((np.int64(2) << (last - first)) - 1) << first
    return (dc[np.uint64(CODE_MAP + (off >> 12))] & bits) != 0


@njit(cache=True, inline="always")
def mark_code(dc, off: int, size: int) -> None:
    """Note in the code map that RAM [off, off + size) (in one page) holds code."""
    first = (off & 0xFFF) >> GRANULE
    last = ((off + size - 1) & 0xFFF) >> GRANULE
    dc[CODE_MAP + (off >> 12)] |= ((np.int64(2) << (last - first)) - 1) << first


@njit(cache=True, inline="always")
def ram_offset(paddr: int, size: int, st) -> int:
    """Offset of [paddr, paddr+size) in RAM, or -1 when it is not all RAM."""
    off = paddr - st[RAM_BASE]
    if off < 0 or off + size > st[RAM_SIZE] or paddr < 0:
        return -1
    return off


@njit_generic
def physical(addr: int, size: int, kind: int, csr, st, ram64) -> tuple[int, int, bool]:
    """Translate an access and check it against PMP: (physical address, OK, whether its
    page may enter the TLB) or (0, cause, False)."""
    paddr, status = translate(addr, kind, csr, st, ram64)
    if status != OK:
        return 0, status, False
    priv = effective_priv(kind, csr, st)
    if not pmp_check(paddr, size, kind, priv, csr, st):
        return 0, access_fault(kind), False
    return paddr, OK, pmp_page_verdict(paddr, kind, priv, csr, st)


@njit_generic
def load_slow(addr: int, size: int, mem, tlb, csr, st, instret: int) -> tuple[int, int]:
    if (addr & (size - 1)) != 0:
        return load_misaligned(addr, size, mem, csr, st)
    paddr, status, whole_page = physical(addr, size, ACCESS_LOAD, csr, st, mem[3])
    if status != OK:
        return 0, status
    off = ram_offset(paddr, size, st)
    if off >= 0:
        if whole_page:
            tlb_fill(tlb, ACCESS_LOAD, addr, off, st[WALK_SPAN])
        return read_ram(mem, off, size), OK
    if CLINT_BASE <= paddr < CLINT_BASE + CLINT_SIZE:
        return clint_read(st, paddr - CLINT_BASE, size, instret), OK
    st[MMIO_ADDR] = paddr
    st[MMIO_SIZE] = size
    return 0, MMIO


@njit_generic
def misaligned_offsets(addr: int, size: int, kind: int, mem, csr, st) -> tuple[int, int, int]:
    """RAM offsets of the first and last byte of a misaligned access, or a trap cause.
    Each page's part is one access to PMP (QEMU splits such accesses the same way)."""
    first_size = min(size, 4096 - (addr & 0xFFF))
    first, status, _ = physical(addr, first_size, kind, csr, st, mem[3])
    if status != OK:
        return 0, 0, status
    last = first + size - 1
    if first_size < size:
        second, status, _ = physical(addr + first_size, size - first_size, kind, csr, st, mem[3])
        if status != OK:
            st[SECOND_PAGE_FAULT] = addr + first_size  # tval: where the fault is
            return 0, 0, status
        last = second + size - first_size - 1
    off_first = ram_offset(first, 1, st)
    off_last = ram_offset(last, 1, st)
    if off_first < 0 or off_last < 0:
        return 0, 0, access_fault(kind)  # misaligned device accesses are not supported
    return off_first, off_last, OK


@njit_generic
def load_misaligned(addr: int, size: int, mem, csr, st) -> tuple[int, int]:
    off_first, off_last, status = misaligned_offsets(addr, size, ACCESS_LOAD, mem, csr, st)
    if status != OK:
        return 0, status
    value = 0
    for k in range(size):
        a = addr + k
        if (a >> 12) == (addr >> 12):
            off = off_first + k
        else:
            off = off_last - (size - 1 - k)
        value |= np.int64(mem[0][off]) << (8 * k)
    return value, OK


@njit_generic
def store_slow(addr: int, size: int, value: int, mem, tlb, pagef, dc, csr, st, instret) -> int:
    if (addr & (size - 1)) != 0:
        off_first, off_last, status = misaligned_offsets(addr, size, ACCESS_STORE, mem, csr, st)
        if status != OK:
            return status
        for k in range(size):
            a = addr + k
            off = off_first + k if (a >> 12) == (addr >> 12) else off_last - (size - 1 - k)
            if pagef[off >> 12] & PAGE_WATCH and watched(off, 1, st):
                return WATCHED
        for k in range(size):
            a = addr + k
            off = off_first + k if (a >> 12) == (addr >> 12) else off_last - (size - 1 - k)
            note_store(off, 1, pagef, dc, st)
            mem[0][off] = np.uint8((value >> (8 * k)) & 0xFF)
        return SLOW
    paddr, status, whole_page = physical(addr, size, ACCESS_STORE, csr, st, mem[3])
    if status != OK:
        return status
    off = ram_offset(paddr, size, st)
    if off >= 0:
        if pagef[off >> 12] == 0:
            if whole_page:
                tlb_fill(tlb, ACCESS_STORE, addr, off, st[WALK_SPAN])
        else:
            if pagef[off >> 12] & PAGE_WATCH and watched(off, size, st):
                return WATCHED
            note_store(off, size, pagef, dc, st)
        write_ram(mem, off, size, value)
        return SLOW
    if CLINT_BASE <= paddr < CLINT_BASE + CLINT_SIZE:
        clint_write(st, paddr - CLINT_BASE, size, value, instret)
        return SLOW
    st[MMIO_ADDR] = paddr
    st[MMIO_SIZE] = size
    st[MMIO_VALUE] = value
    return MMIO


@njit_generic
def note_store(off: int, size: int, pagef, dc, st) -> None:
    """A store to RAM at `off` that the store TLB does not cover: keep caches true."""
    flags = pagef[off >> 12]
    if flags & (PAGE_CODE | PAGE_REGION) and holds_code(dc, off, size):
        if flags & PAGE_REGION:
            # A region may hold the stored-to instruction though its entry is elsewhere
            # on the page: forget every decoded instruction there, and with them the
            # entries (and the page's code map: nothing decoded is left on it).
            invalidate_decoded(dc, off >> 12 << 12, 4096)
            pagef[off >> 12] &= ~PAGE_REGION
            dc[CODE_MAP + (off >> 12)] = 0
        else:
            invalidate_decoded(dc, off, size)
    if flags & PAGE_WATCH:
        tohost = st[TOHOST] - st[RAM_BASE]
        if off <= tohost < off + size or tohost <= off < tohost + 8:
            st[TOHOST_HIT] = 1


@njit_generic
def watched(off: int, size: int, st) -> bool:
    """Whether a store to RAM [off, off + size) would hit a watchpoint (a debugger's);
    st[DEBUG_HIT] then says which."""
    for i in range(MAX_WATCHPOINTS):
        start, length = st[WATCH_OFF + i], st[WATCH_LEN + i]
        if length and off < start + length and start < off + size:
            st[DEBUG_HIT] = 1 + i
            return True
    return False


@njit_generic
def invalidate_decoded(dc, off: int, size: int) -> None:
    # A decoded instruction starting up to 2 bytes before `off` may overlap the store.
    a = (off - 2) & ~1
    while a < off + size:
        slot = dc_slot(a)
        if dc[slot + DC_TAG] == a:
            dc[slot + DC_TAG] = -1
        a += 2


@njit_generic
def flush_decoded(dc) -> None:
    for slot in range(0, DC_ENTRIES * 8, 8):
        dc[slot + DC_TAG] = -1


@njit_generic
def flush_code_pages(dc, pagef) -> None:
    """Forget the decoded instructions, visiting only the pages flagged as holding code
    (every decoded instruction lies on one) when that is less work than the whole cache."""
    code_pages = 0
    for page in range(len(pagef)):
        if pagef[page] & (PAGE_CODE | PAGE_REGION):
            code_pages += 1
    if code_pages * 2048 >= DC_ENTRIES:
        flush_decoded(dc)
        return
    for page in range(len(pagef)):
        if pagef[page] & (PAGE_CODE | PAGE_REGION):
            invalidate_decoded(dc, page << 12, 4096)


@njit_generic
def amo_offset(addr: int, size: int, mem, tlb, pagef, dc, csr, st) -> tuple[int, int]:
    """RAM offset for an AMO or SC (a store-permission access), or a trap cause."""
    paddr, status, _ = physical(addr, size, ACCESS_STORE, csr, st, mem[3])
    if status != OK:
        return 0, status
    off = ram_offset(paddr, size, st)
    if off < 0:
        return 0, access_fault(ACCESS_STORE)  # atomics on devices are not supported
    if pagef[off >> 12]:
        if pagef[off >> 12] & PAGE_WATCH and watched(off, size, st):
            return 0, WATCHED
        note_store(off, size, pagef, dc, st)
    return off, OK


@njit_generic
def fetch_page(pc: int, mem, tlb, pagef, csr, st) -> tuple[int, int]:
    """Translate the page holding pc for execution: (RAM offset of pc, OK) or a cause.
    The hart's loop takes pc's page from the fetch TLB afterwards: it is always filled."""
    paddr, status, _ = physical(pc, 2, ACCESS_FETCH, csr, st, mem[3])
    if status != OK:
        return 0, status
    off = ram_offset(paddr, 2, st)
    if off < 0:
        return 0, access_fault(ACCESS_FETCH)
    page = off >> 12
    if (pagef[page] & PAGE_CODE) == 0:
        pagef[page] |= PAGE_CODE
        tlb_flush_kind(tlb, ACCESS_STORE)  # stores to this page must now see PAGE_CODE
    tlb_fill(tlb, ACCESS_FETCH, pc, off, st[WALK_SPAN])
    return off, OK
