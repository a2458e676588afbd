"""Sstc: the stimecmp CSR, its enable menvcfg.STCE, the mcounteren.TM gate on S-mode
access, and the supervisor timer interrupt it raises on time.

Expected behaviour comes from the Sstc specification (privileged spec, "Sstc"), and where
it leaves a choice, from QEMU's target/riscv (csr.c: the sstc predicate, write_menvcfg,
rmw_mip). Time is deterministic: mtime = instret // 10 on a fresh hart."""

from __future__ import annotations

import numpy as np
from conftest import CODE, MTRAP, STRAP, Rig, enc, u64

from rvemu.cpu import state as S
from rvemu.cpu.trap import next_timer_deadline

M, SUP, U = S.PRIV_M, S.PRIV_S, S.PRIV_U
STIMECMP, MENVCFG, MCOUNTEREN, MIP, MIE, MIDELEG, TIME = (
    0x14D,
    0x30A,
    0x306,
    0x344,
    0x304,
    0x303,
    0xC01,
)
STCE = 1 << 63
TM = 1 << 1
STIP, MTIP = 1 << 5, 1 << 7
ILLEGAL = 2
INSNS_PER_TICK = 10  # README / design.md: one 10 MHz tick every 10 instructions
T0, T1 = 5, 6


def csr_op(rig: Rig, name: str, num: int, priv: int, value: int = 0) -> int | None:
    """Run csrrw/csrrs at `priv` (t1 = value); the old value, or None if it trapped
    as an illegal instruction."""
    rig.exec(enc(name, rd=T0, rs1=T1, imm=num), priv=priv, x6=value)
    if rig.hart.pc == CODE + 4:
        return rig.x(T0)
    assert rig.trapped_to_m() and rig.mcause == ILLEGAL
    return None


def write(rig: Rig, num: int, value: int, priv: int = M) -> bool:
    return csr_op(rig, "csrrw", num, priv, value) is not None


def read(rig: Rig, num: int, priv: int = M) -> int | None:
    return csr_op(rig, "csrrs", num, priv)


def test_menvcfg_stce_resets_to_zero_and_is_writable(rig: Rig):
    assert read(rig, MENVCFG) == 0
    write(rig, MENVCFG, (1 << 64) - 1)
    # the fields of the extensions the hart has: Sstc's, and Zicbom's and Zicboz's
    assert read(rig, MENVCFG) == STCE | S.ENVCFG_CBIE | S.ENVCFG_CBCFE | S.ENVCFG_CBZE
    write(rig, MENVCFG, 0)
    assert read(rig, MENVCFG) == 0


def test_m_mode_always_reaches_stimecmp(rig: Rig):
    assert write(rig, STIMECMP, 0x1234_5678_9ABC)  # even with STCE clear
    assert read(rig, STIMECMP) == 0x1234_5678_9ABC


def test_s_mode_needs_mcounteren_tm_and_stce(rig: Rig):
    for tm, stce in ((0, 0), (TM, 0), (0, STCE)):
        rig.reset()
        write(rig, MCOUNTEREN, tm)
        write(rig, MENVCFG, stce)
        assert read(rig, STIMECMP, SUP) is None, (tm, stce)
        assert not write(rig, STIMECMP, 5, SUP), (tm, stce)
    rig.reset()
    write(rig, MCOUNTEREN, TM)
    write(rig, MENVCFG, STCE)
    assert write(rig, STIMECMP, 777, SUP)
    assert read(rig, STIMECMP, SUP) == 777
    assert read(rig, STIMECMP, U) is None  # a supervisor CSR


def test_stip_follows_stimecmp_only_with_stce(rig: Rig):
    write(rig, STIMECMP, 0)  # time 0 >= 0
    assert read(rig, MIP) & STIP == 0  # STCE clear: stimecmp does nothing
    write(rig, MIP, STIP)
    assert read(rig, MIP) & STIP  # ... and STIP is software's
    write(rig, MIP, 0)
    write(rig, MENVCFG, STCE)
    assert read(rig, MIP) & STIP  # time >= stimecmp
    write(rig, MIP, 0)
    assert read(rig, MIP) & STIP, "software cleared STIP while STCE drives it"
    now = rig.hart.instret // INSNS_PER_TICK
    write(rig, STIMECMP, now + 1000)
    assert read(rig, MIP) & STIP == 0  # time < stimecmp
    write(rig, MIP, STIP)
    assert read(rig, MIP) & STIP == 0, "software set STIP while STCE drives it"
    write(rig, STIMECMP, (1 << 64) - 1)  # compared unsigned: never
    assert read(rig, MIP) & STIP == 0
    write(rig, MENVCFG, 0)  # the write of STIP above was ignored, not kept for later
    assert read(rig, MIP) & STIP == 0


def test_supervisor_timer_interrupt_arrives_on_time():
    """S-mode spins; the interrupt is taken at the first instruction boundary where
    time >= stimecmp, and the handler reads that time."""
    rig = Rig()
    deadline = 200  # ticks: instret 2000
    rig.place([enc("csrrs", rd=T1, imm=TIME), enc("jal", imm=0)], STRAP)  # t1 = time; j .
    rig.place([enc("jal", imm=0)], CODE + 0x100)  # j .
    write(rig, MCOUNTEREN, TM)
    write(rig, MENVCFG, STCE)
    write(rig, MIDELEG, STIP)
    write(rig, MIE, STIP)
    write(rig, STIMECMP, deadline)
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_SIE
    rig.hart.csr[S.SCOUNTEREN] = TM
    rig.hart.st[S.PRIV] = SUP
    rig.hart.pc = CODE + 0x100
    rig.step(deadline * INSNS_PER_TICK - rig.hart.instret - 1)
    assert rig.hart.pc == CODE + 0x100, "taken early"
    rig.step(50_000)
    assert u64(int(rig.hart.csr[S.SCAUSE])) == 1 << 63 | 5
    assert rig.hart.priv == SUP and rig.hart.pc == STRAP + 4
    assert rig.x(T1) == deadline  # not a stretch later


def test_supervisor_timer_interrupt_is_masked_by_stce():
    rig = Rig()
    rig.place([enc("jal", imm=0)], CODE + 0x100)
    write(rig, MIDELEG, STIP)
    write(rig, MIE, STIP)
    write(rig, STIMECMP, 10)
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_SIE
    rig.hart.st[S.PRIV] = SUP
    rig.hart.pc = CODE + 0x100
    rig.step(5_000)
    assert rig.hart.pc == CODE + 0x100 and rig.hart.pc != MTRAP + 4


def test_next_timer_deadline_includes_stimecmp():
    csr = np.zeros(4096, dtype=np.int64)
    st = np.zeros(S.ST_SIZE, dtype=np.int64)
    st[S.MTIMECMP] = 500
    csr[STIMECMP] = 300
    assert next_timer_deadline(csr, st) == -1  # no timer interrupt enabled
    csr[MIE] = MTIP | STIP
    assert next_timer_deadline(csr, st) == 500  # STCE clear: stimecmp is no timer
    csr[MENVCFG] = S.MENVCFG_STCE
    assert next_timer_deadline(csr, st) == 300
    csr[MIE] = MTIP
    assert next_timer_deadline(csr, st) == 500
    csr[MIE] = STIP
    st[S.MTIMECMP] = 100
    assert next_timer_deadline(csr, st) == 300


def test_software_cannot_set_stip_while_stce_drives_it(rig: Rig):
    """A write of mip.STIP under STCE is dropped, not kept: once STCE is cleared again
    (with no stimecmp write or mip read since, which recompute STIP), STIP is clear."""
    write(rig, MENVCFG, STCE)
    write(rig, STIMECMP, rig.hart.instret // INSNS_PER_TICK + 1000)  # not yet due
    write(rig, MIP, STIP)  # (no read in between: a read brings mip up to date)
    write(rig, MENVCFG, 0)
    assert read(rig, MIP) & STIP == 0
