"""Physical memory protection: address matching (TOR, NA4, NAPOT), priority, partial
matches, the lock bit and M-mode, the access faults it raises (on RAM the hart reaches
through its TLB or directly, and on page-table reads), and the TLB flush on a change.

Expected behaviour comes from the privileged spec ("Physical Memory Protection"), and
where it leaves a choice, from QEMU's target/riscv/pmp.c; encodings are the spec's, not
imported from the code under test."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CODE, DATA, MTRAP, RAM, Rig, Sv39, enc, u64

from rvemu.cpu import state as S
from rvemu.mmu.pmp import pmp_allows, pmp_changed

M, SUP, U = S.PRIV_M, S.PRIV_S, S.PRIV_U
LOAD, STORE, FETCH = S.ACCESS_LOAD, S.ACCESS_STORE, S.ACCESS_FETCH
R, W, X, L = 1, 2, 4, 0x80
OFF, TOR, NA4, NAPOT = 0 << 3, 1 << 3, 2 << 3, 3 << 3
PMPCFG0, PMPCFG2, PMPADDR0 = 0x3A0, 0x3A2, 0x3B0
LOAD_ACCESS, STORE_ACCESS, FETCH_ACCESS = 5, 7, 1
LOAD_PAGE = 13
CAUSE = {LOAD: LOAD_ACCESS, STORE: STORE_ACCESS, FETCH: FETCH_ACCESS}
ALL_OF_MEMORY = (1 << 54) - 1  # pmpaddr for a NAPOT entry covering every address


def napot(base: int, size: int) -> int:
    """pmpaddr of the NAPOT range [base, base + size) (size a power of two >= 8)."""
    return (base >> 2) | ((size >> 3) - 1)


# ----------------------------------------------------------------- matching, on CSR values


def csrs(*entries: tuple[int, int]) -> np.ndarray:
    """A csr array holding PMP entries 0, 1, ... given as (cfg byte, pmpaddr)."""
    csr = np.zeros(4096, dtype=np.int64)
    for i, (cfg, addr) in enumerate(entries):
        reg = PMPCFG0 + 2 * (i // 8)
        csr[reg] = int(np.int64(np.uint64((int(csr[reg]) % (1 << 64)) | cfg << (8 * (i % 8)))))
        csr[PMPADDR0 + i] = addr
    return csr


def allows(csr: np.ndarray, addr: int, size: int = 4, kind: int = LOAD, priv: int = SUP) -> bool:
    return bool(pmp_allows(addr, size, kind, priv, csr))


def test_napot_matches_its_naturally_aligned_range():
    csr = csrs((NAPOT | R, napot(0x8010_0000, 0x1000)))
    assert allows(csr, 0x8010_0000)
    assert allows(csr, 0x8010_0FFC)
    assert not allows(csr, 0x800F_FFFC)
    assert not allows(csr, 0x8010_1000)
    csr = csrs((NAPOT | R, 0x2000_0000))  # trailing bit 0: the 8 bytes at 0x8000_0000
    assert allows(csr, 0x8000_0004) and not allows(csr, 0x8000_0008)


def test_na4_matches_four_bytes():
    csr = csrs((NA4 | R, 0x8000_1000 >> 2))
    assert allows(csr, 0x8000_1000)
    assert allows(csr, 0x8000_1003, size=1)
    assert not allows(csr, 0x8000_1004)
    assert not allows(csr, 0x8000_0FFC)


def test_tor_matches_from_the_entry_below_up_to_its_address():
    csr = csrs((OFF, 0x8000_2000 >> 2), (TOR | R | W, 0x8000_3000 >> 2))
    assert allows(csr, 0x8000_2000, kind=STORE)
    assert allows(csr, 0x8000_2FFC, kind=STORE)
    assert not allows(csr, 0x8000_1FFC)
    assert not allows(csr, 0x8000_3000)
    assert not allows(csr, 0x8000_2000, kind=FETCH)  # no X
    csr = csrs((TOR | X, 0x1000 >> 2))  # entry 0: from address 0
    assert allows(csr, 0, kind=FETCH) and allows(csr, 0xFFC, kind=FETCH)
    assert not allows(csr, 0x1000, kind=FETCH)
    csr = csrs((OFF, 0x3000 >> 2), (TOR | R, 0x2000 >> 2))  # top below bottom: empty
    assert not allows(csr, 0x2000) and not allows(csr, 0x2FFC)


def test_the_lowest_numbered_matching_entry_decides():
    page = napot(0x8000_0000, 0x1000)
    csr = csrs((NAPOT, page), (NAPOT | R | W | X, ALL_OF_MEMORY))
    assert not allows(csr, 0x8000_0100)  # entry 0 matches and allows nothing
    assert allows(csr, 0x8000_1000)  # only entry 1 matches
    csr = csrs((NAPOT | R | W | X, ALL_OF_MEMORY), (NAPOT, page))
    assert allows(csr, 0x8000_0100)


def test_an_access_matched_only_in_part_fails():
    csr = csrs((NAPOT | R, napot(0x8000_0000, 0x1000)), (NAPOT | R, ALL_OF_MEMORY))
    assert allows(csr, 0x8000_0FF8, size=8)
    assert allows(csr, 0x8000_1000, size=8)
    assert not allows(csr, 0x8000_0FFC, size=8)  # both entries allow, yet it straddles


def test_m_mode_rules():
    region = napot(0x8000_0000, 0x1000)
    unlocked = csrs((NAPOT, region))
    assert allows(unlocked, 0x8000_0000, kind=STORE, priv=M)  # unlocked: not for M-mode
    assert allows(unlocked, 0x9000_0000, kind=FETCH, priv=M)  # no match: M succeeds
    locked = csrs((NAPOT | L | R, region))
    assert allows(locked, 0x8000_0000, kind=LOAD, priv=M)
    assert not allows(locked, 0x8000_0000, kind=STORE, priv=M)  # locked: applies to M
    assert not allows(locked, 0x8000_0000, kind=FETCH, priv=M)


def test_s_and_u_need_a_matching_entry():
    """The spec: an S/U access no entry matches fails when any entry is implemented (16
    are); QEMU too. M-mode is allowed what no entry matches."""
    nothing = csrs()
    for kind in (LOAD, STORE, FETCH):
        assert allows(nothing, 0x8000_0000, kind=kind, priv=M)
        for priv in (SUP, U):
            assert not allows(nothing, 0x8000_0000, kind=kind, priv=priv)
    off_only = csrs((OFF | R, 0))  # configured but not enabled
    assert not allows(off_only, 0x8000_0000)
    one = csrs((NAPOT | R | W | X, napot(0x8000_0000, 0x1000)))
    for priv in (SUP, U):
        assert allows(one, 0x8000_0000, kind=FETCH, priv=priv)
        assert not allows(one, 0x8000_1000, priv=priv)


# ----------------------------------------------------------------- the CSRs, on a hart

T0 = 5
PMP_CSRS = (PMPCFG0, PMPCFG2, *range(PMPADDR0, PMPADDR0 + 16))
# Every instruction the tests run is placed once, so no write to RAM from Python (which
# flushes the hart's caches) comes between two accesses: a stale TLB entry would show.
SLOT = {}
for _i, _num in enumerate(PMP_CSRS):
    SLOT["csrw", _num] = enc("csrrw", rs1=T0, imm=_num)
    SLOT["csrr", _num] = enc("csrrs", rd=T0, imm=_num)
for _size, _name in ((1, "b"), (2, "h"), (4, "w"), (8, "d")):
    SLOT[LOAD, _size] = enc("l" + _name, rd=6, rs1=10)
    SLOT[STORE, _size] = enc("s" + _name, rs1=10, rs2=11)
SLOT["amoadd.d"] = enc("amoadd.d", rd=6, rs1=10, rs2=11)
SLOT["lr.d"] = enc("lr.d", rd=6, rs1=10)
SLOT_ADDR = {key: CODE + 4 * i for i, key in enumerate(SLOT)}


def pmp_rig() -> Rig:
    rig = Rig()
    rig.place(list(SLOT.values()))
    return rig


def run_slot(rig: Rig, key: object, priv: int, **regs: int) -> bool:
    """Run one placed instruction; True if it completed, False if it trapped to M."""
    rig.hart.st[S.PRIV] = priv
    rig.hart.pc = SLOT_ADDR[key]
    rig.set_x(**regs)
    rig.step(1)
    if rig.hart.pc == SLOT_ADDR[key] + 4:
        return True
    assert rig.hart.pc == MTRAP + 4 and rig.hart.priv == M
    assert rig.mepc == SLOT_ADDR[key]
    return False


def csrw(rig: Rig, num: int, value: int) -> None:
    assert run_slot(rig, ("csrw", num), M, x5=value), f"csrw {num:#x} trapped"


def csrr(rig: Rig, num: int) -> int:
    assert run_slot(rig, ("csrr", num), M)
    return rig.x(T0)


def test_reserved_cfg_bits_read_as_zero():
    rig = pmp_rig()
    csrw(rig, PMPCFG0, 0xFFFF_FFFF_FFFF_FF7F)
    assert csrr(rig, PMPCFG0) == 0x9F9F_9F9F_9F9F_9F1F


def test_a_locked_entry_ignores_writes():
    rig = pmp_rig()
    csrw(rig, PMPADDR0, 0x1234)
    csrw(rig, PMPCFG0, L | NA4 | R)
    csrw(rig, PMPCFG0, (NAPOT | R | W) << 8 | NAPOT | R | W | X)
    assert csrr(rig, PMPCFG0) == (NAPOT | R | W) << 8 | L | NA4 | R  # entry 1 changed
    csrw(rig, PMPADDR0, 0x5678)
    assert csrr(rig, PMPADDR0) == 0x1234
    csrw(rig, PMPADDR0 + 1, 0x5678)
    assert csrr(rig, PMPADDR0 + 1) == 0x5678
    csrw(rig, PMPCFG2, L << 56 | R)  # entry 15 locked, entry 8 not
    csrw(rig, PMPCFG2, 0)
    assert csrr(rig, PMPCFG2) == L << 56


def test_a_locked_tor_entry_locks_the_address_below():
    rig = pmp_rig()
    csrw(rig, PMPADDR0 + 2, 0x100)
    csrw(rig, PMPCFG0, (L | TOR | R) << 24)  # entry 3: TOR from pmpaddr2
    csrw(rig, PMPADDR0 + 2, 0x200)
    assert csrr(rig, PMPADDR0 + 2) == 0x100
    csrw(rig, PMPADDR0 + 4, 0x300)  # the address above a locked entry is free
    assert csrr(rig, PMPADDR0 + 4) == 0x300
    csrw(rig, PMPCFG2, L | NAPOT | R)  # entry 8 locked NAPOT: pmpaddr7 stays free
    csrw(rig, PMPADDR0 + 7, 0x400)
    assert csrr(rig, PMPADDR0 + 7) == 0x400


# ----------------------------------------------------------------- accesses on a hart

CODE_PAGE = napot(CODE & ~0xFFF, 0x1000)
DATA_PAGES = napot(DATA, 0x4000)


def protected(rig: Rig, *entries: tuple[int, int]) -> None:
    """Program PMP from M-mode: the given entries first, then code executable."""
    entries = (*entries, (NAPOT | R | X, CODE_PAGE))
    for i, (_, addr) in enumerate(entries):
        csrw(rig, PMPADDR0 + i, addr)
    csrw(rig, PMPCFG0, sum(cfg << (8 * i) for i, (cfg, _) in enumerate(entries)))


def access(rig: Rig, kind: int, addr: int, priv: int, size: int = 8) -> int | None:
    """Do one access at `priv`; the cause of the trap it took, or None. Checks mtval."""
    if kind == FETCH:  # RAM holds zeros, an illegal instruction: fetched, it traps so
        rig.hart.st[S.PRIV] = priv
        rig.hart.pc = addr
        rig.step(1)
        assert rig.hart.pc == MTRAP + 4 and rig.mepc == addr
        if rig.mcause == 2:
            return None
    elif run_slot(rig, (kind, size), priv, x10=addr, x11=0x55):
        return None
    if rig.mcause in (LOAD_ACCESS, STORE_ACCESS, FETCH_ACCESS):
        assert rig.mtval == u64(addr)
    return rig.mcause


@pytest.mark.parametrize("priv", [SUP, U])
def test_s_and_u_accesses_fault_where_pmp_denies(priv: int):
    rig = pmp_rig()
    protected(rig, (NAPOT | R, napot(DATA, 0x1000)), (NAPOT | R | W, napot(DATA + 0x1000, 0x1000)))
    assert access(rig, LOAD, DATA + 8, priv) is None
    assert access(rig, STORE, DATA + 8, priv) == STORE_ACCESS
    assert access(rig, FETCH, DATA + 0x10, priv) == FETCH_ACCESS
    assert access(rig, STORE, DATA + 0x1008, priv) is None
    assert access(rig, FETCH, DATA + 0x1010, priv) == FETCH_ACCESS
    assert access(rig, LOAD, DATA + 0x2000, priv) == LOAD_ACCESS  # no entry matches
    assert access(rig, STORE, DATA + 0x2000, priv) == STORE_ACCESS
    assert access(rig, FETCH, DATA + 0x2000, priv) == FETCH_ACCESS
    # again, now that the allowed pages may be in the TLB
    assert access(rig, LOAD, DATA + 16, priv) is None
    assert access(rig, STORE, DATA + 16, priv) == STORE_ACCESS
    assert rig.get(DATA + 16, 8) == 0


def test_m_mode_is_checked_only_against_locked_entries():
    rig = pmp_rig()
    protected(rig, (NAPOT, napot(DATA, 0x1000)))
    assert access(rig, STORE, DATA, M) is None
    assert access(rig, LOAD, DATA + 0x2000, M) is None  # no match: M-mode succeeds
    protected(rig, (L | NAPOT | R, napot(DATA, 0x1000)))
    assert access(rig, LOAD, DATA, M) is None
    assert access(rig, STORE, DATA + 8, M) == STORE_ACCESS
    assert access(rig, STORE, DATA + 8, M) == STORE_ACCESS  # not through a stale TLB
    assert access(rig, FETCH, DATA + 0x10, M) == FETCH_ACCESS
    assert access(rig, STORE, DATA + 0x2000, M) is None


def test_a_page_with_two_verdicts_is_checked_on_every_access():
    rig = pmp_rig()
    # four bytes in the middle of a page are read-only; the rest of the page is RW
    protected(rig, (NA4 | R, (DATA + 0x800) >> 2), (NAPOT | R | W, DATA_PAGES))
    for _ in range(2):
        assert access(rig, STORE, DATA, SUP) is None
        assert access(rig, STORE, DATA + 0x800, SUP, size=4) == STORE_ACCESS
        assert access(rig, LOAD, DATA + 0x800, SUP, size=4) is None
        assert access(rig, STORE, DATA + 0x804, SUP, size=4) is None
    # an access that overlaps the NA4 entry only in part fails, whatever the entries allow
    assert access(rig, LOAD, DATA + 0x7FC, SUP) == LOAD_ACCESS


def test_misaligned_access_faults_on_the_denied_page():
    rig = pmp_rig()
    protected(rig, (NAPOT | R | W, napot(DATA, 0x1000)), (NAPOT | R, napot(DATA + 0x1000, 0x1000)))
    assert not run_slot(rig, (STORE, 8), SUP, x10=DATA + 0xFFC, x11=-1)
    assert rig.mcause == STORE_ACCESS and rig.mtval == DATA + 0x1000
    assert rig.get(DATA + 0xFF8, 8) == 0, "the allowed half was written"
    assert access(rig, LOAD, DATA + 0xFFC, SUP) is None


def test_atomics_need_write_permission():
    rig = pmp_rig()
    protected(rig, (NAPOT | R, DATA_PAGES))
    assert not run_slot(rig, "amoadd.d", SUP, x10=DATA, x11=1)
    assert rig.mcause == STORE_ACCESS and rig.mtval == DATA
    assert run_slot(rig, "lr.d", SUP, x10=DATA)


def set_mprv(rig: Rig) -> None:
    """M-mode loads and stores as S-mode's (MPRV = 1, MPP = S)."""
    mstatus = int(rig.hart.csr[S.MSTATUS]) & ~S.MSTATUS_MPP
    rig.hart.csr[S.MSTATUS] = mstatus | S.MSTATUS_MPRV | SUP << S.MSTATUS_MPP_SHIFT


def test_mprv_checks_loads_and_stores_at_mpp():
    rig = pmp_rig()
    protected(rig, (NAPOT | R, DATA_PAGES))
    set_mprv(rig)  # satp is Bare
    assert access(rig, STORE, DATA, M) == STORE_ACCESS
    set_mprv(rig)
    assert access(rig, LOAD, DATA, M) is None
    assert access(rig, FETCH, DATA + 0x100, M) is None  # fetches stay M-mode's
    rig.hart.csr[S.MSTATUS] &= ~S.MSTATUS_MPRV
    assert access(rig, STORE, DATA, M) is None


def test_a_pmp_change_is_seen_by_the_next_access():
    rig = pmp_rig()
    protected(rig, (NAPOT | R | W, DATA_PAGES))
    assert access(rig, LOAD, DATA, SUP) is None  # the page is now in the TLB
    assert access(rig, STORE, DATA, SUP) is None
    csrw(rig, PMPCFG0, (NAPOT | R | X) << 8 | NAPOT)  # DATA: no access at all
    assert access(rig, LOAD, DATA, SUP) == LOAD_ACCESS
    assert access(rig, STORE, DATA, SUP) == STORE_ACCESS


def test_page_table_reads_are_checked_as_s_mode_loads():
    rig = pmp_rig()
    pt = Sv39(rig)  # tables at 0x8004_0000 on
    pt.map(CODE, CODE, 0x2 | 0x8 | 0x40)  # R X A
    pt.map(DATA, DATA, 0x2 | 0x4 | 0x40 | 0x80)  # R W A D
    pt.enable()
    tables = napot(0x8004_0000, 0x4000)
    protected(rig, (NAPOT | R | W, DATA_PAGES), (NAPOT, tables))  # tables: not for S
    assert access(rig, FETCH, CODE + 0x800, SUP) == FETCH_ACCESS
    for kind in (LOAD, STORE):  # the walk reads as S-mode, though the hart is in M-mode
        set_mprv(rig)  # (again: the trap set MPP to M)
        assert access(rig, kind, DATA, M) == CAUSE[kind]
    rig.hart.csr[S.MSTATUS] &= ~S.MSTATUS_MPRV
    protected(rig, (NAPOT | R | W, DATA_PAGES), (NAPOT | R, tables))  # now readable
    assert access(rig, FETCH, CODE + 0x800, SUP) is None
    set_mprv(rig)
    assert access(rig, STORE, DATA, M) is None
    assert access(rig, LOAD, DATA + 0x5000, M) == LOAD_PAGE  # the walk went through
    assert rig.get(DATA, 8) == 0x55


def test_with_no_rule_s_and_u_reach_no_memory():
    rig = pmp_rig()  # the rig gives S and U all of memory through entry 0
    for kind in (LOAD, STORE, FETCH):
        assert access(rig, kind, DATA + 0x100 * kind, U) is None
    protected(rig)  # a rule for the code page only: nothing matches the data
    for priv in (SUP, U):
        for kind in (LOAD, STORE, FETCH):
            assert access(rig, kind, DATA + 0x100 * kind, priv) == CAUSE[kind]
    csrw(rig, PMPCFG0, 0)  # no rule at all: not even the code page can be fetched
    for priv in (SUP, U):
        assert access(rig, FETCH, CODE, priv) == FETCH_ACCESS
    assert RAM <= DATA


def test_mret_to_s_or_u_with_no_rule_is_illegal():
    """As QEMU's helper_mret: with no PMP rule, an MRET to S or U raises an illegal
    instruction (an MRET that stays in M-mode does not)."""
    mret = enc("mret")
    for mpp, legal_without_rule in ((M, True), (SUP, False), (U, False)):
        for rule in (True, False):
            rig = Rig()
            if not rule:
                rig.hart.csr[S.PMPCFG0] = 0
                pmp_changed(rig.hart.csr, rig.hart.st, rig.hart.tlb)
            rig.hart.csr[S.MSTATUS] = (rig.hart.csr[S.MSTATUS] & ~(3 << 11)) | mpp << 11
            rig.hart.csr[S.MEPC] = DATA
            rig.exec(mret)
            if rule or legal_without_rule:
                assert rig.hart.pc == DATA and rig.hart.priv == mpp, (mpp, rule)
            else:
                assert rig.trapped_to_m() and rig.mcause == 2 and rig.mepc == CODE, (mpp, rule)
