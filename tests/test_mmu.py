"""Sv39/Sv48 translation: page tables built in guest RAM from Python, walked by the MMU.

Most tests call `rvemu.mmu.sv.translate` directly on hand-built tables; the last ones run
tiny M/S-mode programs on a whole Machine, so the TLB, sfence.vma and MPRV are exercised
the way a kernel uses them. PTE layouts and expected causes come from the privileged spec
("Supervisor-Level ISA", Sv39/Sv48 and the address-translation algorithm).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rvemu.cpu import state as S
from rvemu.cpu.isa import ALL_EXTENSIONS
from rvemu.mmu.sv import translate

# PTE bits and causes, from the spec (not imported from the code under test)
V, R, W, X, U, G, A, D = 1, 2, 4, 8, 16, 32, 64, 128
FETCH_PAGE, LOAD_PAGE, STORE_PAGE = 12, 13, 15
FETCH_ACCESS, LOAD_ACCESS, STORE_ACCESS = 1, 5, 7
SV39, SV48 = 8, 9
LOAD, STORE, FETCH = S.ACCESS_LOAD, S.ACCESS_STORE, S.ACCESS_FETCH
KINDS = (LOAD, STORE, FETCH)
PAGE_FAULT = {LOAD: LOAD_PAGE, STORE: STORE_PAGE, FETCH: FETCH_PAGE}
ACCESS_FAULT = {LOAD: LOAD_ACCESS, STORE: STORE_ACCESS, FETCH: FETCH_ACCESS}
OK = -1

RAM_BASE = 0x8000_0000
MSTATUS_MPRV, MSTATUS_SUM, MSTATUS_MXR = 1 << 17, 1 << 18, 1 << 19
PRIV_U, PRIV_S, PRIV_M = 0, 1, 3
MPP_SHIFT = 11

KIB4, MIB2, GIB1 = 1 << 12, 1 << 21, 1 << 30


def to_signed(u: int) -> int:
    """The int64 value of a 64-bit pattern."""
    u &= (1 << 64) - 1
    return u - (1 << 64) if u >> 63 else u


class Space:
    """Page tables in a RAM array, with the CSR and state arrays translate() reads."""

    def __init__(
        self,
        ram: np.ndarray | None = None,
        mode: int = SV39,
        table_base: int = RAM_BASE + 0x10_0000,
    ) -> None:
        self.ram = np.zeros(4 << 20, dtype=np.uint8) if ram is None else ram
        self.ram64 = self.ram.view(np.int64)
        self.csr = np.zeros(4096, dtype=np.int64)
        self.st = np.zeros(S.ST_SIZE, dtype=np.int64)
        self.st[S.RAM_BASE] = RAM_BASE
        self.st[S.RAM_SIZE] = len(self.ram)
        self.st[S.PRIV] = PRIV_S
        self.st[S.EXTENSIONS] = ALL_EXTENSIONS  # Svnapot among them
        self.levels = 3 if mode == SV39 else 4
        self.next_table = table_base
        self.root = self.alloc()
        self.csr[S.SATP] = to_signed(mode << 60 | self.root >> 12)

    def alloc(self) -> int:
        """A zeroed 4 KiB table: its physical address."""
        pa = self.next_table
        self.next_table += KIB4
        off = pa - RAM_BASE
        self.ram[off : off + KIB4] = 0
        return pa

    def pte_addr(self, va: int, level: int) -> int:
        """Physical address of va's PTE at `level` (creating pointer PTEs down to it)."""
        table = self.root
        for lvl in range(self.levels - 1, level, -1):
            addr = table + ((va >> (12 + 9 * lvl)) & 0x1FF) * 8
            pte = self.read(addr)
            if not pte & V:
                pte = (self.alloc() >> 12) << 10 | V
                self.write(addr, pte)
            table = ((pte >> 10) & ((1 << 44) - 1)) << 12
        return table + ((va >> (12 + 9 * level)) & 0x1FF) * 8

    def map(self, va: int, pa: int, flags: int, level: int = 0) -> int:
        """Write a leaf (level 0: 4 KiB, 1: 2 MiB, 2: 1 GiB, 3: 512 GiB); its PTE address."""
        addr = self.pte_addr(va, level)
        self.write(addr, (pa >> 12) << 10 | flags)
        return addr

    def read(self, pa: int) -> int:
        return int(self.ram64[(pa - RAM_BASE) >> 3])

    def write(self, pa: int, value: int) -> None:
        self.ram64[(pa - RAM_BASE) >> 3] = to_signed(value)

    def set_priv(self, priv: int) -> None:
        self.st[S.PRIV] = priv

    def set_mstatus(self, bits: int) -> None:
        self.csr[S.MSTATUS] = bits

    def translate(self, va: int, kind: int) -> tuple[int, int]:
        pa, status = translate(va, kind, self.csr, self.st, self.ram64)
        return int(pa), int(status)

    def fault(self, va: int, kind: int) -> int | None:
        """The exception cause of an access, or None when it translates."""
        pa, status = self.translate(va, kind)
        return None if status == OK else status


RWX_AD = R | W | X | A | D
DATA = RAM_BASE + 0x20_0000


# ---------------------------------------------------------------- successful walks


def test_4k_page_translation_all_kinds():
    sp = Space()
    sp.map(0x4000_1000, DATA, V | RWX_AD)
    for kind in KINDS:
        assert sp.translate(0x4000_1ABC, kind) == (DATA + 0xABC, OK)
    # the neighbouring pages are not mapped
    assert sp.fault(0x4000_0FF8, LOAD) == LOAD_PAGE
    assert sp.fault(0x4000_2000, STORE) == STORE_PAGE


def test_megapage_and_gigapage_translation():
    sp = Space()
    sp.map(0x4020_0000, 0x8040_0000, V | RWX_AD, level=1)  # 2 MiB
    assert sp.translate(0x4020_0000, LOAD) == (0x8040_0000, OK)
    assert sp.translate(0x403F_F123, STORE) == (0x805F_F123, OK)  # whole 2 MiB offset
    sp.map(0x1_4000_0000, 0x8000_0000, V | RWX_AD, level=2)  # 1 GiB
    assert sp.translate(0x1_4000_0000, FETCH) == (0x8000_0000, OK)
    assert sp.translate(0x1_7234_5678, LOAD) == (0xB234_5678, OK)  # 30-bit offset


def test_bare_mode_and_m_mode_do_not_translate():
    sp = Space()
    sp.set_priv(PRIV_M)
    assert sp.translate(0x4000_1000, LOAD) == (0x4000_1000, OK)  # satp ignored in M-mode
    sp.set_priv(PRIV_S)
    sp.csr[S.SATP] = 0
    assert sp.translate(0x4000_1000, FETCH) == (0x4000_1000, OK)


def test_sv48_four_level_walk():
    sp = Space(mode=SV48)
    va = 0x7F12_3456_7000  # vpn[3] = 0xfe: needs the fourth level
    sp.map(va, DATA, V | RWX_AD)
    assert sp.translate(va + 0x10, LOAD) == (DATA + 0x10, OK)
    # 1 GiB and 2 MiB leaves below the fourth level work as in Sv39
    sp.map(0x0000_8000_0000_0000 - GIB1, 0x8000_0000, V | RWX_AD, level=2)
    assert sp.translate(0x0000_7FFF_C000_1234, STORE) == (0x8000_1234, OK)
    # a 512 GiB "terapage" must be aligned to 512 GiB: PPN 0x80000 is not
    sp.map(0x0000_0100_0000_0000, 0x8000_0000, V | RWX_AD, level=3)
    assert sp.fault(0x0000_0100_0000_0000, LOAD) == LOAD_PAGE
    sp.map(0x0000_0200_0000_0000, 0, V | RWX_AD, level=3)
    assert sp.translate(0x0000_0200_1234_5678, LOAD) == (0x1234_5678, OK)
    # Sv48 addresses are canonical over 48 bits, not 39
    assert sp.fault(0x0000_8000_0000_0000, LOAD) == LOAD_PAGE  # bit 47 not extended
    sp.map(-GIB1, 0x8000_0000, V | RWX_AD, level=2)  # top of the address space
    assert sp.translate(to_signed(0xFFFF_FFFF_C000_0010), LOAD) == (0x8000_0010, OK)


# ---------------------------------------------------------------- invalid entries


@pytest.mark.parametrize("kind", KINDS, ids=["load", "store", "fetch"])
def test_invalid_pte_faults(kind):
    sp = Space()
    sp.map(0x4000_1000, DATA, RWX_AD)  # leaf with V = 0
    assert sp.fault(0x4000_1000, kind) == PAGE_FAULT[kind]
    # V = 0 in a pointer entry (root level), with otherwise plausible bits
    sp.write(sp.root + 3 * 8, (sp.alloc() >> 12) << 10)
    assert sp.fault(3 * GIB1, kind) == PAGE_FAULT[kind]


@pytest.mark.parametrize("kind", KINDS, ids=["load", "store", "fetch"])
def test_write_without_read_is_reserved(kind):
    sp = Space()
    sp.map(0x4000_1000, DATA, V | W | A | D)
    sp.map(0x4000_2000, DATA, V | W | X | A | D)  # even the fetch of an X page faults
    assert sp.fault(0x4000_1000, kind) == PAGE_FAULT[kind]
    assert sp.fault(0x4000_2000, kind) == PAGE_FAULT[kind]


def test_reserved_pte_bits_fault():
    sp = Space()
    for i, bit in enumerate((54, 60, 61, 62)):  # reserved, and PBMT without Svpbmt
        va = 0x4000_0000 + i * KIB4
        sp.map(va, DATA, V | RWX_AD | 1 << bit)
        assert sp.fault(va, LOAD) == LOAD_PAGE, bit


# ---------------------------------------------------------------- Svnapot

N = 1 << 63
KIB64 = 16 * KIB4


def test_napot_64k_leaf_maps_each_4k_piece_of_the_range():
    """Svnapot: a level-0 leaf with N = 1 and ppn[3:0] = 1000 stands for the naturally
    aligned 64 KiB range; vpn[3:0] picks the 4 KiB piece (the PTE's ppn[3:0] does not)."""
    sp = Space()
    va, pa = 0x4001_0000, DATA + KIB64  # both 64 KiB aligned
    for piece in range(16):  # software fills all 16 PTEs of the range alike
        sp.map(va + piece * KIB4, pa | 0x8000, V | RWX_AD | N)
    for piece in (0, 1, 7, 8, 15):
        for kind in KINDS:
            assert sp.translate(va + piece * KIB4 + 0x123, kind) == (
                pa + piece * KIB4 + 0x123,
                OK,
            ), (piece, kind)


def test_napot_pte_is_used_for_the_address_that_walked_to_it():
    sp = Space()
    va, pa = 0x4001_0000, DATA + KIB64
    sp.map(va + 5 * KIB4, pa | 0x8000, V | R | A | N)  # only piece 5's PTE is filled
    assert sp.translate(va + 5 * KIB4 + 8, LOAD) == (pa + 5 * KIB4 + 8, OK)
    assert sp.fault(va + 4 * KIB4, LOAD) == LOAD_PAGE  # its neighbour has no PTE


@pytest.mark.parametrize("ppn_low", [0b0000, 0b0100, 0b1100, 0b0001, 0b1001])
def test_napot_reserved_sizes_fault(ppn_low):
    sp = Space()
    sp.map(0x4001_0000, DATA + KIB64 + ppn_low * KIB4, V | RWX_AD | N)
    for kind in KINDS:
        assert sp.fault(0x4001_0000, kind) == PAGE_FAULT[kind]


def test_napot_superpages_and_pointers_fault():
    sp = Space()
    # a 2 MiB leaf with N (ppn[3:0] = 1000 would be a 64 KiB pattern): reserved
    sp.map(0x4020_0000, 0x8040_0000 | 0x8000, V | RWX_AD | N, level=1)
    assert sp.fault(0x4020_0000, LOAD) == LOAD_PAGE
    # N in a pointer entry is reserved
    sp.map(0x4000_1000, DATA, V | RWX_AD)
    addr = sp.pte_addr(0x4000_1000, 1)
    sp.write(addr, sp.read(addr) | N)
    assert sp.fault(0x4000_1000, LOAD) == LOAD_PAGE


def test_pointer_entries_with_leaf_only_bits_fault():
    # D, A and U are reserved in non-leaf PTEs; the walk stops with a page fault (as QEMU)
    for i, bit in enumerate((U, A, D)):
        sp = Space()
        sp.map(0x4000_1000, DATA, V | RWX_AD)
        addr = sp.pte_addr(0x4000_1000, 1)  # the level-1 pointer entry
        sp.write(addr, sp.read(addr) | bit)
        assert sp.fault(0x4000_1000, LOAD) == LOAD_PAGE, i
    # G is allowed on pointers
    sp = Space()
    sp.map(0x4000_1000, DATA, V | RWX_AD)
    addr = sp.pte_addr(0x4000_1000, 1)
    sp.write(addr, sp.read(addr) | G)
    assert sp.translate(0x4000_1000, LOAD) == (DATA, OK)


def test_pointer_at_last_level_faults():
    sp = Space()
    sp.map(0x4000_1000, DATA, V)  # a "pointer" where a leaf must be
    for kind in KINDS:
        assert sp.fault(0x4000_1000, kind) == PAGE_FAULT[kind]


# ---------------------------------------------------------------- leaf permissions


@pytest.mark.parametrize(
    "flags, allowed",
    [
        (R, {LOAD}),
        (R | W, {LOAD, STORE}),
        (X, {FETCH}),
        (R | X, {LOAD, FETCH}),
        (R | W | X, {LOAD, STORE, FETCH}),
    ],
    ids=["r", "rw", "x", "rx", "rwx"],
)
def test_leaf_permissions(flags, allowed):
    sp = Space()
    sp.map(0x4000_1000, DATA, V | A | D | flags)
    for kind in KINDS:
        want = None if kind in allowed else PAGE_FAULT[kind]
        assert sp.fault(0x4000_1008, kind) == want, kind


def test_user_pages_from_supervisor():
    sp = Space()
    sp.map(0x4000_1000, DATA, V | U | RWX_AD)
    # without SUM, S-mode may not touch U pages at all
    for kind in KINDS:
        assert sp.fault(0x4000_1000, kind) == PAGE_FAULT[kind]
    # with SUM, loads and stores are allowed, fetches still fault
    sp.set_mstatus(MSTATUS_SUM)
    assert sp.translate(0x4000_1000, LOAD) == (DATA, OK)
    assert sp.translate(0x4000_1000, STORE) == (DATA, OK)
    assert sp.fault(0x4000_1000, FETCH) == FETCH_PAGE
    sp.set_mstatus(MSTATUS_SUM | MSTATUS_MXR)
    assert sp.fault(0x4000_1000, FETCH) == FETCH_PAGE


def test_user_mode_access():
    sp = Space()
    sp.map(0x4000_1000, DATA, V | RWX_AD)  # supervisor page
    sp.map(0x4000_2000, DATA, V | U | RWX_AD)  # user page
    sp.set_priv(PRIV_U)
    for kind in KINDS:
        assert sp.fault(0x4000_1000, kind) == PAGE_FAULT[kind]
        assert sp.fault(0x4000_2000, kind) is None
    sp.set_mstatus(MSTATUS_SUM)  # SUM does not open S pages to U-mode
    assert sp.fault(0x4000_1000, LOAD) == LOAD_PAGE


def test_mxr_makes_execute_only_pages_readable():
    sp = Space()
    sp.map(0x4000_1000, DATA, V | X | A | D)
    sp.map(0x4000_2000, DATA, V | U | X | A | D)
    assert sp.fault(0x4000_1000, LOAD) == LOAD_PAGE
    sp.set_mstatus(MSTATUS_MXR)
    assert sp.translate(0x4000_1000, LOAD) == (DATA, OK)
    assert sp.fault(0x4000_1000, STORE) == STORE_PAGE  # MXR is about reads only
    sp.set_priv(PRIV_U)
    assert sp.translate(0x4000_2000, LOAD) == (DATA, OK)
    sp.set_mstatus(0)
    assert sp.fault(0x4000_2000, LOAD) == LOAD_PAGE


# ---------------------------------------------------------------- superpage alignment


@pytest.mark.parametrize("kind", KINDS, ids=["load", "store", "fetch"])
def test_misaligned_superpages_fault(kind):
    sp = Space()
    sp.map(0x4020_0000, 0x8040_1000, V | RWX_AD, level=1)  # 2 MiB leaf, PPN[0] != 0
    sp.map(0x1_0000_0000, 0x8020_0000, V | RWX_AD, level=2)  # 1 GiB leaf, PPN[1] != 0
    sp.map(0x1_4000_0000, 0x8000_1000, V | RWX_AD, level=2)  # 1 GiB leaf, PPN[0] != 0
    assert sp.fault(0x4020_0000, kind) == PAGE_FAULT[kind]
    assert sp.fault(0x1_0000_0000, kind) == PAGE_FAULT[kind]
    assert sp.fault(0x1_4000_0000, kind) == PAGE_FAULT[kind]


# ---------------------------------------------------------------- virtual address range


@pytest.mark.parametrize("kind", KINDS, ids=["load", "store", "fetch"])
def test_non_canonical_addresses_fault(kind):
    sp = Space()
    # map the lowest and the highest gigabyte
    sp.map(0, 0x8000_0000, V | RWX_AD, level=2)
    sp.map(to_signed(0xFFFF_FFFF_C000_0000), 0x8000_0000, V | RWX_AD, level=2)
    assert sp.translate(0x1234, kind) == (0x8000_1234, OK)
    assert sp.translate(to_signed(0xFFFF_FFFF_C000_1234), kind) == (0x8000_1234, OK)
    # same low 39 bits, but bits 63..39 do not all copy bit 38
    for va in (1 << 39, 1 << 63, 0x00FF_FFFF_C000_1234, to_signed(0xFFFF_FF80_0000_1234)):
        assert sp.fault(to_signed(va), kind) == PAGE_FAULT[kind], hex(va)


# ---------------------------------------------------------------- A and D bits


def test_accessed_and_dirty_bits_set_by_hardware():
    sp = Space()
    pte_l = sp.map(0x4000_1000, DATA, V | R | W)
    pte_s = sp.map(0x4000_2000, DATA, V | R | W)
    pte_x = sp.map(0x4000_3000, DATA, V | X)
    pte_f = sp.map(0x4000_4000, DATA, V | R)
    assert sp.translate(0x4000_1000, LOAD)[1] == OK
    assert sp.read(pte_l) & (A | D) == A  # a load sets A only
    assert sp.translate(0x4000_2000, STORE)[1] == OK
    assert sp.read(pte_s) & (A | D) == A | D
    assert sp.translate(0x4000_3000, FETCH)[1] == OK
    assert sp.read(pte_x) & (A | D) == A
    # a faulting access leaves the PTE alone
    assert sp.fault(0x4000_4000, STORE) == STORE_PAGE
    assert sp.read(pte_f) & (A | D) == 0
    # the pointer PTEs never get A/D
    root_pte = sp.read(sp.root + 1 * 8)
    assert root_pte & (A | D | R | W | X) == 0


# ---------------------------------------------------------------- tables outside RAM


@pytest.mark.parametrize("kind", KINDS, ids=["load", "store", "fetch"])
def test_page_table_outside_ram_is_an_access_fault(kind):
    sp = Space()
    # a pointer PTE into the UART's page, and one past the end of RAM
    sp.write(sp.root + 1 * 8, (0x1000_0000 >> 12) << 10 | V)
    sp.write(sp.root + 2 * 8, ((RAM_BASE + len(sp.ram)) >> 12) << 10 | V)
    assert sp.fault(1 * GIB1, kind) == ACCESS_FAULT[kind]
    assert sp.fault(2 * GIB1 + 0x5000, kind) == ACCESS_FAULT[kind]
    # the root itself outside RAM
    sp.csr[S.SATP] = to_signed(SV39 << 60 | 0x1000)  # root table at 0x100_0000
    assert sp.fault(0x4000_1000, kind) == ACCESS_FAULT[kind]


# ---------------------------------------------------------------- MPRV


def test_mprv_translates_m_mode_loads_and_stores():
    sp = Space()
    sp.map(0x4000_1000, DATA, V | R | W | A | D)
    sp.map(0x4000_2000, DATA + KIB4, V | U | R | W | A | D)
    sp.set_priv(PRIV_M)
    assert sp.translate(0x4000_1000, LOAD) == (0x4000_1000, OK)  # MPRV clear: bare
    sp.set_mstatus(MSTATUS_MPRV | PRIV_S << MPP_SHIFT)
    assert sp.translate(0x4000_1010, LOAD) == (DATA + 0x10, OK)
    assert sp.translate(0x4000_1010, STORE) == (DATA + 0x10, OK)
    assert sp.fault(0x4000_2000, LOAD) == LOAD_PAGE  # S rules: U page without SUM
    assert sp.translate(0x8000_0000, FETCH) == (0x8000_0000, OK)  # fetches stay in M
    sp.set_mstatus(MSTATUS_MPRV | PRIV_U << MPP_SHIFT)
    assert sp.translate(0x4000_2000, LOAD) == (DATA + KIB4, OK)
    assert sp.fault(0x4000_1000, LOAD) == LOAD_PAGE  # U rules: S page
    sp.set_mstatus(MSTATUS_MPRV | PRIV_M << MPP_SHIFT)
    assert sp.translate(0x4000_1000, LOAD) == (0x4000_1000, OK)


# ---------------------------------------------------------------- on a running hart

sys.path.insert(0, str(Path(__file__).resolve().parent / "perf"))

HARNESS = """
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    csrw satp, s2
    li t0, 0x1800
    csrc mstatus, t0          # MPP = S
    li t0, 0x800 | {mstatus}
    csrs mstatus, t0
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f               # PMP entry 0: all memory RWX (S/U need a rule)
    csrw pmpcfg0, t0
{mbody}
    la t0, sbody
    csrw mepc, t0
    mret
sbody:
{sbody}
    ecall
    .align 2                  # mtvec's low bits are its mode
mtrap:
    csrr s8, mcause
    csrr s9, mtval
    csrr s10, mstatus
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)              # power off
1:  j 1b
"""


REG = {"s3": 19, "s4": 20, "s5": 21, "s6": 22, "s7": 23, "s11": 27}
S5, S7, S8, S9, S10, A6 = 21, 23, 24, 25, 26, 16


def run_paged(name: str, setup, sbody: str, mbody: str = "", mstatus: int = 0):
    """Run M-mode `mbody`, then S-mode `sbody` under Sv39; (machine, space, x registers).

    RAM (code included) is identity-mapped by a 1 GiB page; `setup(space)` adds the test's
    own mappings and returns the registers (by name, see REG) the program starts with. The
    first trap into M (the closing ecall, or a fault) powers off with s8 = mcause,
    s9 = mtval, s10 = mstatus.
    """
    from guestbuild import build_asm  # tests/perf/guestbuild.py

    from rvemu import Machine

    try:
        elf = build_asm(name, HARNESS.format(mbody=mbody, sbody=sbody, mstatus=mstatus))
    except FileNotFoundError as e:
        pytest.skip(str(e))
    m = Machine(memory="16M")
    m.load(str(elf))
    sp = Space(ram=m.ram, table_base=RAM_BASE + 0x40_0000)
    sp.map(RAM_BASE, RAM_BASE, V | RWX_AD, level=2)
    regs = setup(sp)
    m.hart.x[18] = sp.csr[S.SATP]  # s2
    for reg, value in regs.items():
        m.hart.x[REG[reg]] = value
    result = m.run(max_instructions=10_000)
    assert result.reason == "poweroff", result
    return m, sp, [int(v) for v in m.hart.x]


VA1, VA2, VA3 = 0x4000_1000, 0x4000_2000, 0x4000_3000
PA1, PA2 = RAM_BASE + 0x60_0000, RAM_BASE + 0x60_1000


def test_sfence_vma_makes_a_changed_pte_visible():
    def setup(sp: Space) -> dict[str, int]:
        sp.write(PA1, 0x1111)
        sp.write(PA2, 0x2222)
        pte = sp.map(VA1, PA1, V | R | W | A | D)
        return dict(s3=VA1, s4=pte, s6=(PA2 >> 12) << 10 | V | R | W | A | D, s11=VA3)

    sbody = """
        ld s5, 0(s3)           # fills the TLB with VA1 -> PA1
        ld s5, 0(s3)
        sd s6, 0(s4)           # the PTE now says VA1 -> PA2 (tables are identity-mapped)
        ld a6, 0(s3)           # before sfence.vma: either value is allowed
        sfence.vma
        ld s7, 0(s3)           # must see PA2
        ld a7, 0(s11)          # unmapped: a load page fault ends the run
    """
    _, _, x = run_paged("mmu_sfence", setup, sbody)
    assert x[S5] == 0x1111  # the first mapping
    assert x[S7] == 0x2222  # the new mapping, after sfence.vma
    assert x[A6] in (0x1111, 0x2222)
    assert (x[S8], x[S9]) == (LOAD_PAGE, VA3)  # mcause, mtval of the last load


def test_hart_sets_accessed_and_dirty_bits():
    ptes = {}

    def setup(sp: Space) -> dict[str, int]:
        ptes["load"] = sp.map(VA1, PA1, V | R | W)
        ptes["store"] = sp.map(VA2, PA2, V | R | W)
        return dict(s3=VA1, s4=VA2)

    sbody = """
        ld s5, 0(s3)
        sd s5, 8(s4)
    """
    _, sp, x = run_paged("mmu_ad", setup, sbody)
    assert x[S8] == 9  # ecall from S: both accesses worked
    assert sp.read(ptes["load"]) & (A | D) == A
    assert sp.read(ptes["store"]) & (A | D) == A | D


def test_clearing_sum_revokes_a_cached_translation():
    def setup(sp: Space) -> dict[str, int]:
        sp.write(PA1, 0x5151)
        sp.map(VA1, PA1, V | U | R | W | A | D)
        return dict(s3=VA1)

    sbody = """
        ld s5, 0(s3)           # allowed with SUM; the translation is now in the TLB
        ld s5, 0(s3)
        li t0, 1 << 18
        csrc sstatus, t0       # SUM = 0
        ld s7, 0(s3)           # must fault although the TLB held the page
    """
    _, _, x = run_paged("mmu_sum", setup, sbody, mstatus=MSTATUS_SUM)
    assert x[S5] == 0x5151
    assert (x[S8], x[S9]) == (LOAD_PAGE, VA1)


def test_mprv_on_a_running_hart():
    def setup(sp: Space) -> dict[str, int]:
        sp.write(PA1, 0x7777)
        sp.map(VA1, PA1, V | R | W | A | D)
        return dict(s3=VA1)

    mbody = """
        li t0, 1 << 17
        csrs mstatus, t0       # MPRV with MPP = S: M-mode loads use S translation
        ld s5, 0(s3)
    """
    sbody = """
        ld s7, 0(s3)
    """
    _, _, x = run_paged("mmu_mprv", setup, sbody, mbody=mbody)
    assert x[S5] == 0x7777
    assert x[S7] == 0x7777
    assert x[S8] == 9  # the closing ecall from S
    assert x[S10] & MSTATUS_MPRV == 0  # mret to S cleared MPRV


# ---------------------------------------------------------------- a real workload under Sv39


def int_mem_reference(iterations: int) -> int:
    """tests/perf/kernels.c int_mem(), in Python (uint32 words, uint64 sum)."""
    words, m32 = 128 * 1024, 0xFFFFFFFF
    mem = [0] * words
    x, total = 12345, 0
    for _ in range(iterations):
        for i in range(0, words, 4):
            x = (x * 1103515245 + 12345) & m32
            j = (x >> 7) & (words - 1)
            mem[i] = (mem[i] + x) & m32
            mem[j] ^= i
            total += (mem[i] + (mem[j] >> 3)) & m32
    return total & ((1 << 64) - 1)


@pytest.mark.parametrize("mode", ["M", "S-bare", "S-Sv39-2M", "S-Sv39-4K"])
def test_perf_kernel_gives_the_same_result_with_paging(mode):
    from run_perf import build, run_one  # tests/perf/run_perf.py

    try:
        elf = build()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    _, checksum, _ = run_one(elf, "int_mem", mode, 1)
    assert checksum == int_mem_reference(1)


# ---------------------------------------------------------------- what keeps the TLB


def test_sfence_vma_of_one_address_forgets_that_page_and_keeps_the_others():
    """sfence.vma rs1 drops that page's entry (its changed PTE is seen) and no other:
    st[PROF_WALKS] counts the walks, and the page not named is not walked again."""

    def setup(sp: Space) -> dict[str, int]:
        sp.write(PA1, 0x1111)
        sp.write(PA2, 0x2222)
        pte = sp.map(VA1, PA1, V | R | W | A | D)
        sp.map(VA2, PA2, V | R | W | A | D)
        return dict(s3=VA1, s4=pte, s6=(PA2 >> 12) << 10 | V | R | W | A | D, s11=VA2)

    sbody = """
        ld s5, 0(s3)           # walks: VA1
        ld t1, 0(s11)          # walks: VA2
        sd s6, 0(s4)           # the PTE now says VA1 -> PA2
        sfence.vma s3
        ld s7, 0(s3)           # walks again: must see PA2
        ld a6, 0(s11)          # VA2 was kept: no walk
    """
    m, _, x = run_paged("mmu_sfence_one", setup, sbody)
    assert (x[S5], x[S7], x[A6]) == (0x1111, 0x2222, 0x2222)
    assert x[S8] == 9  # the closing ecall
    assert m.hart.st[S.PROF_WALKS + LOAD] == 3


def test_sfence_vma_of_one_address_forgets_every_piece_of_its_superpage():
    """The TLB holds 4 KiB pieces of a 2 MiB page: sfence.vma of another address in that
    page must drop them too."""
    mega, pa_old, pa_new = 0x4020_0000, RAM_BASE + 0x80_0000, RAM_BASE + 0xA0_0000

    def setup(sp: Space) -> dict[str, int]:
        sp.write(pa_old + 0x5000, 0xAAAA)
        sp.write(pa_new + 0x5000, 0xBBBB)
        pte = sp.map(mega, pa_old, V | R | W | A | D, level=1)
        new = (pa_new >> 12) << 10 | V | R | W | A | D
        return dict(s3=mega + 0x5000, s4=pte, s6=new, s11=mega + 0x1F_F000)

    sbody = """
        ld s5, 0(s3)           # the TLB holds the piece at +0x5000
        sd s6, 0(s4)           # the 2 MiB page moves
        sfence.vma s11         # named by its last 4 KiB piece
        ld s7, 0(s3)           # must see the new page
    """
    _, _, x = run_paged("mmu_sfence_mega", setup, sbody)
    assert (x[S5], x[S7]) == (0xAAAA, 0xBBBB)
    assert x[S8] == 9


def test_interrupt_enable_bits_keep_the_tlb():
    """Linux sets and clears sstatus.SIE around every critical section: that changes no
    translation, so the TLB stays (no walk again); SUM does (see the test above)."""

    def setup(sp: Space) -> dict[str, int]:
        sp.write(PA1, 0x3333)
        sp.map(VA1, PA1, V | R | W | A | D)
        return dict(s3=VA1)

    sbody = """
        ld s5, 0(s3)           # walks
        csrsi sstatus, 2       # SIE on (no interrupt is pending)
        csrci sstatus, 2       # and off
        ld s7, 0(s3)           # no walk
    """
    m, _, x = run_paged("mmu_sie", setup, sbody)
    assert (x[S5], x[S7], x[S8]) == (0x3333, 0x3333, 9)
    assert m.hart.st[S.PROF_WALKS + LOAD] == 1
