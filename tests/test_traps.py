"""Traps, interrupts and privilege: every synchronous exception with its mcause/mepc/mtval,
delegation to S-mode, xRET transitions, mtvec modes, CLINT timer and software interrupts,
WFI, mstatus WARL fields, the TVM/TW/TSR traps and counter access rules.

Expected values come from the privileged spec; where it leaves a choice (what mtval holds,
WARL legalisation), from what QEMU's virt machine does."""

from __future__ import annotations

import random

import pytest
from conftest import (
    CODE,
    DATA,
    MTRAP,
    NOP,
    PTE_A,
    PTE_D,
    PTE_R,
    PTE_U,
    PTE_W,
    PTE_X,
    QEMU,
    RAM,
    STRAP,
    Rig,
    Sv39,
    console_on_rvemu_and_qemu,
    enc,
    s64,
    sext,
    u64,
)

from rvemu.cpu import state as S

M, SUP, U = S.PRIV_M, S.PRIV_S, S.PRIV_U
INTERRUPT = 1 << 63
UNMAPPED = 0x0800_0000  # a hole in QEMU virt's memory map (between platform bus and PLIC)
CLINT = S.CLINT_BASE
LOOP = enc("jal", imm=0)  # j .


def scause(rig: Rig) -> int:
    return u64(int(rig.hart.csr[S.SCAUSE]))


def sepc(rig: Rig) -> int:
    return u64(int(rig.hart.csr[S.SEPC]))


def stval(rig: Rig) -> int:
    return u64(int(rig.hart.csr[S.STVAL]))


def mstatus(rig: Rig) -> int:
    return u64(int(rig.hart.csr[S.MSTATUS]))


def mpp(rig: Rig) -> int:
    return (mstatus(rig) >> 11) & 3


def assert_m_trap(rig: Rig, cause: int, tval: int, epc: int = CODE, prev: int = M) -> None:
    assert rig.trapped_to_m(), f"no trap to M: pc {rig.hart.pc:#x}, priv {rig.hart.priv}"
    assert u64(rig.mcause) == cause, f"mcause {u64(rig.mcause):#x}, want {cause:#x}"
    assert rig.mepc == epc, f"mepc {rig.mepc:#x}, want {epc:#x}"
    assert rig.mtval == u64(tval), f"mtval {rig.mtval:#x}, want {u64(tval):#x}"
    assert mpp(rig) == prev, f"mstatus.MPP {mpp(rig)}, want {prev}"


# ----------------------------------------------------------------- synchronous exceptions

ILLEGAL_WORDS = [
    0xFE000033,  # OP with funct7 0x7f
    0x0000706B,  # reserved major opcode 0x1a
    0x04001013,  # slli with imm[11:6] = 0b000001: not a shift encoding
    0x00000007,  # LOAD-FP with funct3 0 (vector loads, V: not implemented)
]
# 0x0000; c.addi16sp 0; c.jr x0; c.subw/c.addw's reserved neighbours; c.lwsp/c.ldsp x0;
# c.addiw x0; c.lui x0, 0; and quadrant 0 funct3 4 (Zcb, not implemented)
ILLEGAL_RVC = [0x0000, 0x6101, 0x8002, 0x9C41, 0x9C61, 0x4002, 0x6002, 0x2001, 0x6001, 0x8000]


@pytest.mark.parametrize("priv", [M, SUP, U])
@pytest.mark.parametrize("word", ILLEGAL_WORDS + ILLEGAL_RVC)
def test_illegal_instruction_reports_its_bits(rig: Rig, word: int, priv: int) -> None:
    rig.exec(word, priv=priv)
    assert_m_trap(rig, S.CAUSE_ILLEGAL, word, prev=priv)


@pytest.mark.parametrize("priv", [M, SUP, U])
def test_ebreak(rig: Rig, priv: int) -> None:
    for word in (enc("ebreak"), 0x9002):  # ebreak, c.ebreak
        rig.exec(word, priv=priv)
        assert_m_trap(rig, S.CAUSE_BREAKPOINT, CODE, prev=priv)  # QEMU: mtval = pc
        rig.reset()


@pytest.mark.parametrize("priv,cause", [(U, 8), (SUP, 9), (M, 11)])
def test_ecall(rig: Rig, priv: int, cause: int) -> None:
    rig.hart.csr[S.MTVAL] = 0x1234
    rig.exec(enc("ecall"), priv=priv)
    assert_m_trap(rig, cause, 0, prev=priv)


AMO_NAMES = ["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax"]
AMO_NAMES += ["amominu", "amomaxu", "sc"]


@pytest.mark.parametrize("width,offset", [("w", 2), ("w", 1), ("d", 4), ("d", 7)])
def test_misaligned_atomics_trap(rig: Rig, width: str, offset: int) -> None:
    addr = DATA + offset
    rig.exec(enc(f"lr.{width}", rd=5, rs1=10), x10=addr)
    assert_m_trap(rig, S.CAUSE_LOAD_MISALIGNED, addr)
    for name in AMO_NAMES:
        rig.reset()
        rig.put(DATA, 0x1122334455667788, 8)
        rig.exec(enc(f"{name}.{width}", rd=5, rs1=10, rs2=11), x10=addr, x11=-1, x5=77)
        assert_m_trap(rig, S.CAUSE_STORE_MISALIGNED, addr)
        assert rig.get(DATA, 8) == 0x1122334455667788 and rig.x(5) == 77


def run_served(rig: Rig, n: int = 1) -> None:
    """Run through Machine.run so device accesses are served (or fault) as on the board."""
    rig.m.run(max_instructions=n)


@pytest.mark.parametrize("addr", [UNMAPPED, 0x0A00_0000, RAM + (1 << 20)])
def test_access_faults_on_unmapped_addresses(rig: Rig, addr: int) -> None:
    for name, cause in (("ld", S.CAUSE_LOAD_ACCESS), ("lw", S.CAUSE_LOAD_ACCESS)):
        rig.reset()
        rig.place([enc(name, rd=5, rs1=10, imm=0)])
        rig.set_x(x10=addr, x5=99)
        run_served(rig)
        assert_m_trap(rig, cause, addr)
        assert rig.x(5) == 99
    for name in ("sd", "sb"):
        rig.reset()
        rig.place([enc(name, rs1=10, rs2=11)])
        rig.set_x(x10=addr, x11=1)
        run_served(rig)
        assert_m_trap(rig, S.CAUSE_STORE_ACCESS, addr)
    rig.reset()
    rig.exec(enc("amoadd.d", rd=5, rs1=10, rs2=11), x10=addr)
    assert_m_trap(rig, S.CAUSE_STORE_ACCESS, addr)
    rig.reset()
    rig.exec(enc("lr.d", rd=5, rs1=10), x10=addr)
    assert_m_trap(rig, S.CAUSE_LOAD_ACCESS, addr)


@pytest.mark.parametrize("priv", [M, SUP])
@pytest.mark.parametrize("name", ["ld", "sd"])
def test_top_page_of_the_address_space(priv: int, name: str) -> None:
    """0xffff_ffff_ffff_fff8: no memory in M (access fault), unmapped in Sv39 (page fault).
    (Regression: an empty TLB entry's tag once equalled this page's number, -1.)"""
    rig = Rig()
    if priv == SUP:
        pt = Sv39(rig)
        pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
        pt.enable()
    last = RAM + (1 << 20) - 8
    rig.put(last, 0x1122334455667788, 8)
    rig.place([enc(name, rd=5, rs1=10, rs2=11)])
    rig.hart.st[S.PRIV] = priv
    rig.set_x(x10=-8, x11=0)
    run_served(rig)
    assert rig.get(last, 8) == 0x1122334455667788, "the store wrote the end of RAM"
    assert rig.x(5) == 0, "the load read the end of RAM"
    load = name == "ld"
    if priv == M:
        cause = S.CAUSE_LOAD_ACCESS if load else S.CAUSE_STORE_ACCESS
    else:
        cause = S.CAUSE_LOAD_PAGE if load else S.CAUSE_STORE_PAGE
    assert_m_trap(rig, cause, -8, prev=priv)


@pytest.mark.parametrize(
    "target", [UNMAPPED, RAM + (1 << 20), 0x1000_0000, RAM - 2, (1 << 64) - 2, 1 << 62]
)
def test_fetch_access_fault(rig: Rig, target: int) -> None:
    rig.exec(enc("jalr", rd=1, rs1=10), x10=target)
    assert u64(rig.hart.pc) == target
    rig.step(1)
    assert_m_trap(rig, S.CAUSE_FETCH_ACCESS, target, epc=target)


def test_32_bit_instruction_straddling_the_end_of_ram(rig: Rig) -> None:
    """The first half is in RAM, the second is not: a fetch fault on the second half."""
    end = RAM + (1 << 20)
    rig.put(end - 2, 0x0013, 2)  # low half of a 32-bit instruction
    rig.hart.pc = end - 2
    rig.step(1)
    assert rig.trapped_to_m() and rig.mcause == S.CAUSE_FETCH_ACCESS
    assert rig.mepc == end - 2
    assert rig.mtval in (end - 2, end)  # QEMU reports the faulting half's address


# ----------------------------------------------------------------- page faults (Sv39)


def paged_rig(priv: int) -> tuple[Rig, Sv39]:
    """Code page identity-mapped executable (U-accessible when priv is U); data pages with
    various permissions at DATA..DATA+0x4000."""
    rig = Rig()
    pt = Sv39(rig)
    user = PTE_U if priv == U else 0
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A | user)
    pt.map(DATA, DATA, PTE_R | PTE_W | PTE_A | PTE_D | user)  # read-write
    pt.map(DATA + 0x1000, DATA + 0x1000, PTE_R | PTE_A | user)  # read-only
    pt.map(DATA + 0x2000, DATA + 0x2000, PTE_X | PTE_A | user)  # execute-only
    pt.map(DATA + 0x3000, DATA + 0x3000, PTE_R | PTE_W | PTE_A | PTE_D | (PTE_U ^ user))
    pt.enable()
    rig.hart.st[S.PRIV] = priv
    return rig, pt


@pytest.mark.parametrize("priv", [SUP, U])
def test_page_faults(priv: int) -> None:
    rig, _ = paged_rig(priv)
    cases = [
        ("ld", DATA, None),
        ("sd", DATA, None),
        ("ld", DATA + 0x1000, None),
        ("sd", DATA + 0x1000, S.CAUSE_STORE_PAGE),
        ("ld", DATA + 0x2000, S.CAUSE_LOAD_PAGE),  # X only, MXR clear
        ("ld", DATA + 0x3000, S.CAUSE_LOAD_PAGE),  # the other privilege's page
        ("sd", DATA + 0x3000, S.CAUSE_STORE_PAGE),
        ("ld", DATA + 0x5000, S.CAUSE_LOAD_PAGE),  # unmapped
        ("sd", DATA + 0x5000, S.CAUSE_STORE_PAGE),
        ("amoor.d", DATA + 0x1000, S.CAUSE_STORE_PAGE),  # AMOs need write permission
        ("lr.d", DATA + 0x2000, S.CAUSE_LOAD_PAGE),
        ("ld", 1 << 40, S.CAUSE_LOAD_PAGE),  # not canonical
        ("ld", -(1 << 20), S.CAUSE_LOAD_PAGE),  # canonical, unmapped
        ("lw", DATA + 0xFFE, None),  # misaligned across two readable pages
        ("sw", DATA + 0xFFE, S.CAUSE_STORE_PAGE),  # misaligned, second half read-only
    ]
    for name, addr, cause in cases:
        rig.hart.st[S.PRIV] = priv
        rig.exec(enc(name, rd=5, rs1=10, rs2=0 if name.startswith("lr") else 11), x10=addr)
        if cause is None:
            assert rig.hart.pc == CODE + 4, f"{name} {addr:#x} trapped: {rig.mcause}"
        else:
            rig_desc = f"{name} at {u64(addr):#x} from priv {priv}"
            assert rig.trapped_to_m(), rig_desc
            assert rig.mcause == cause, rig_desc
            # mtval: the faulting address (for a page-crossing access, QEMU reports the
            # address of the access itself or the first byte on the faulting page)
            assert rig.mtval in (u64(addr), DATA + 0x1000), rig_desc
            assert rig.mepc == CODE and mpp(rig) == priv


@pytest.mark.parametrize("priv", [SUP, U])
def test_fetch_page_faults(priv: int) -> None:
    rig, _ = paged_rig(priv)
    for target in (DATA, DATA + 0x2000, DATA + 0x3000, DATA + 0x5000):
        rig.hart.st[S.PRIV] = priv
        rig.exec(enc("jalr", rs1=10), x10=target)
        assert rig.hart.pc == target
        rig.step(1)
        if target == DATA + 0x2000:  # execute-only page: fetch works (the page holds 0s)
            assert rig.mcause == S.CAUSE_ILLEGAL and rig.mepc == target
            continue
        assert rig.trapped_to_m() and rig.mcause == S.CAUSE_FETCH_PAGE, hex(target)
        assert rig.mepc == target and rig.mtval == target


def test_sum_and_mxr() -> None:
    rig, _ = paged_rig(SUP)
    user_page = DATA + 0x3000  # a U page, seen from S
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_SUM
    rig.exec(enc("ld", rd=5, rs1=10), x10=user_page, priv=SUP)
    assert rig.hart.pc == CODE + 4, "SUM=1: S may load from U pages"
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_MXR
    rig.exec(enc("ld", rd=5, rs1=10), x10=DATA + 0x2000, priv=SUP)
    assert rig.hart.pc == CODE + 4, "MXR=1: loads from execute-only pages"


def test_mprv_translates_m_mode_loads() -> None:
    rig, _ = paged_rig(SUP)
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_MPRV | (SUP << 11)
    rig.exec(enc("ld", rd=5, rs1=10), x10=DATA + 0x5000, priv=M)
    assert rig.trapped_to_m() and rig.mcause == S.CAUSE_LOAD_PAGE
    assert rig.mtval == DATA + 0x5000


def test_page_fault_delegated_to_s() -> None:
    rig, pt = paged_rig(U)
    pt.map(STRAP, STRAP, PTE_R | PTE_X | PTE_A)  # S handler page
    rig.hart.csr[S.MEDELEG] = 1 << S.CAUSE_LOAD_PAGE
    rig.exec(enc("ld", rd=5, rs1=10), x10=DATA + 0x5000, priv=U)
    assert rig.trapped_to_s()
    assert scause(rig) == S.CAUSE_LOAD_PAGE and stval(rig) == DATA + 0x5000
    assert sepc(rig) == CODE and not mstatus(rig) & S.MSTATUS_SPP


def test_a_and_d_bits_are_set_by_hardware() -> None:
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
    pt.map(DATA, DATA, PTE_R | PTE_W)  # A and D clear
    pt.enable()
    leaf = pt.next_free - 4096 + 8 * ((DATA >> 12) & 0x1FF)  # the level-0 table's slot
    rig.exec(enc("ld", rd=5, rs1=10), x10=DATA, priv=SUP)
    assert rig.hart.pc == CODE + 4
    assert rig.get(leaf, 8) & (PTE_A | PTE_D) == PTE_A
    rig.exec(enc("sd", rs1=10, rs2=5), x10=DATA, priv=SUP)
    assert rig.get(leaf, 8) & (PTE_A | PTE_D) == PTE_A | PTE_D


# ----------------------------------------------------------------- delegation


@pytest.mark.parametrize("priv", [U, SUP])
def test_exceptions_delegated_to_s(rig: Rig, priv: int) -> None:
    rig.exec(enc("csrrw", rs1=5, imm=S.MEDELEG), x5=-1, priv=M)
    medeleg = u64(int(rig.hart.csr[S.MEDELEG]))
    assert not medeleg & (1 << S.CAUSE_ECALL_M), "ecall from M is not delegable"
    assert medeleg & (1 << S.CAUSE_ECALL_U) and medeleg & (1 << S.CAUSE_ILLEGAL)

    rig.exec(enc("ecall"), priv=priv)
    assert rig.trapped_to_s()
    assert scause(rig) == S.CAUSE_ECALL_U + priv and sepc(rig) == CODE and stval(rig) == 0
    assert bool(mstatus(rig) & S.MSTATUS_SPP) == (priv == SUP)
    assert rig.mcause == 0, "M-mode trap registers untouched"

    word = 0xFE000033
    rig.exec(word, priv=priv)
    assert rig.trapped_to_s() and scause(rig) == S.CAUSE_ILLEGAL and stval(rig) == word


def test_delegation_does_not_apply_to_m_mode(rig: Rig) -> None:
    rig.exec(enc("csrrw", rs1=5, imm=S.MEDELEG), x5=-1)
    rig.exec(enc("ebreak"), priv=M)
    assert_m_trap(rig, S.CAUSE_BREAKPOINT, CODE)
    assert scause(rig) == 0


def test_sie_spie_on_delegated_trap(rig: Rig) -> None:
    rig.hart.csr[S.MEDELEG] = 1 << S.CAUSE_ECALL_U
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_SIE
    rig.exec(enc("ecall"), priv=U)
    status = mstatus(rig)
    assert rig.trapped_to_s()
    assert status & S.MSTATUS_SPIE and not status & S.MSTATUS_SIE


# ----------------------------------------------------------------- mret / sret


@pytest.mark.parametrize("target", [U, SUP, M])
@pytest.mark.parametrize("mpie", [0, 1])
def test_mret(rig: Rig, target: int, mpie: int) -> None:
    status = mstatus(rig) & ~(S.MSTATUS_MPP | S.MSTATUS_MPIE | S.MSTATUS_MIE)
    status |= (target << 11) | (S.MSTATUS_MPIE if mpie else 0) | S.MSTATUS_MPRV
    rig.hart.csr[S.MSTATUS] = s64(status)
    rig.hart.csr[S.MEPC] = DATA + 0x40
    rig.exec(enc("mret"))
    assert rig.hart.pc == DATA + 0x40 and rig.hart.priv == target
    after = mstatus(rig)
    assert bool(after & S.MSTATUS_MIE) == bool(mpie)
    assert after & S.MSTATUS_MPIE and mpp(rig) == U  # MPP := least-privileged mode
    assert bool(after & S.MSTATUS_MPRV) == (target == M)  # leaving M clears MPRV


@pytest.mark.parametrize("spp", [0, 1])
@pytest.mark.parametrize("spie", [0, 1])
def test_sret(rig: Rig, spp: int, spie: int) -> None:
    status = mstatus(rig) & ~(S.MSTATUS_SPP | S.MSTATUS_SPIE | S.MSTATUS_SIE)
    status |= (S.MSTATUS_SPP if spp else 0) | (S.MSTATUS_SPIE if spie else 0)
    rig.hart.csr[S.MSTATUS] = s64(status)
    rig.hart.csr[S.SEPC] = DATA + 0x80
    rig.exec(enc("sret"), priv=SUP)
    assert rig.hart.pc == DATA + 0x80 and rig.hart.priv == (SUP if spp else U)
    after = mstatus(rig)
    assert bool(after & S.MSTATUS_SIE) == bool(spie)
    assert after & S.MSTATUS_SPIE and not after & S.MSTATUS_SPP


def test_sret_from_m_mode(rig: Rig) -> None:
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_SPP
    rig.hart.csr[S.SEPC] = DATA
    rig.exec(enc("sret"), priv=M)
    assert rig.hart.pc == DATA and rig.hart.priv == SUP


@pytest.mark.parametrize(
    "name,priv",
    [("mret", SUP), ("mret", U), ("sret", U), ("wfi", U), ("sfence.vma", U)],
)
def test_privileged_instructions_from_lower_modes(rig: Rig, name: str, priv: int) -> None:
    word = enc(name)
    rig.exec(word, priv=priv)
    assert_m_trap(rig, S.CAUSE_ILLEGAL, word, prev=priv)


@pytest.mark.parametrize("csr", [S.MSTATUS, S.MEPC, S.MSCRATCH, S.MHARTID, S.SSTATUS, S.SATP])
@pytest.mark.parametrize("priv", [SUP, U])
def test_csr_privilege(rig: Rig, csr: int, priv: int) -> None:
    word = enc("csrrs", rd=5, rs1=0, imm=csr)
    rig.exec(word, priv=priv)
    if (csr >> 8) & 3 > priv:
        assert_m_trap(rig, S.CAUSE_ILLEGAL, word, prev=priv)
    else:
        assert rig.hart.pc == CODE + 4


# ----------------------------------------------------------------- interrupts


def enable_m_interrupts(rig: Rig, mie_bits: int) -> None:
    rig.hart.csr[S.MIE] = mie_bits
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_MIE


def store_to_clint(rig: Rig, offset: int, value: int) -> None:
    """Run `sd value, offset(CLINT)` as a guest store."""
    rig.place([enc("sd", rs1=10, rs2=11, imm=0)], CODE + 0x800)
    pc, priv = rig.hart.pc, rig.hart.priv
    rig.hart.pc = CODE + 0x800
    rig.set_x(x10=CLINT + offset, x11=value)
    status = rig.hart.csr[S.MSTATUS]
    rig.hart.csr[S.MSTATUS] &= ~S.MSTATUS_MIE
    rig.hart.st[S.PRIV] = M
    rig.step(1)
    rig.hart.csr[S.MSTATUS] = status
    rig.hart.pc, rig.hart.st[S.PRIV] = pc, priv


def test_software_interrupt_via_msip(rig: Rig) -> None:
    enable_m_interrupts(rig, S.MIP_MSIP)
    rig.place(
        [
            enc("sw", rs1=10, rs2=11, imm=0),  # msip = 1
            enc("addi", rd=5, rs1=0, imm=1),  # not reached before the interrupt
        ]
    )
    rig.set_x(x10=CLINT, x11=1)
    rig.step(2)  # the store, then the interrupt's handler nop
    assert_m_trap(rig, INTERRUPT | S.IRQ_M_SOFT, 0, epc=CODE + 4)
    assert rig.x(5) == 0
    assert not mstatus(rig) & S.MSTATUS_MIE and mstatus(rig) & S.MSTATUS_MPIE
    # msip reads back 1 through the CLINT, and clearing it stops the interrupt
    rig.exec(enc("lw", rd=6, rs1=10), x10=CLINT)
    assert rig.x(6) == 1


def test_msip_masked_by_mie(rig: Rig) -> None:
    rig.hart.csr[S.MSTATUS] |= S.MSTATUS_MIE  # global enable, but MSIE clear
    rig.place([enc("sw", rs1=10, rs2=11), NOP, NOP])
    rig.set_x(x10=CLINT, x11=1)
    rig.step(3)
    assert rig.hart.pc == CODE + 12 and rig.mcause == 0


@pytest.mark.parametrize("vectored", [False, True])
def test_timer_interrupt_mtvec_modes(rig: Rig, vectored: bool) -> None:
    """mtimecmp = 50 ticks: the interrupt is taken before instruction 501 (10 per tick)."""
    rig.place([NOP] * 16, MTRAP)
    rig.place([LOOP], MTRAP + 64)
    if vectored:
        rig.hart.csr[S.MTVEC] = MTRAP | 1
    rig.place([LOOP])
    store_to_clint(rig, 0x4000, 50)
    assert rig.hart.instret == 1
    enable_m_interrupts(rig, S.MIP_MTIP)
    rig.step(499 - rig.hart.instret + 1)
    assert rig.hart.pc == CODE and rig.mcause == 0 and rig.hart.instret == 500
    rig.step(1)
    handler = MTRAP + 4 * S.IRQ_M_TIMER if vectored else MTRAP
    assert rig.hart.pc == handler + 4
    assert u64(rig.mcause) == INTERRUPT | S.IRQ_M_TIMER and rig.mepc == CODE


@pytest.mark.parametrize("bit", [S.MIP_MTIP, S.MIP_MSIP])
def test_mip_shows_clint_interrupts(rig: Rig, bit: int) -> None:
    if bit == S.MIP_MTIP:
        store_to_clint(rig, 0x4000, 0)  # mtime >= mtimecmp: MTIP pending
    else:
        store_to_clint(rig, 0, 1)  # msip = 1
    rig.exec(enc("csrrs", rd=5, imm=S.MIP))
    assert rig.x(5) & bit, f"mip = {rig.x(5):#x}: bit {bit:#x} pending but not visible"


def test_vectored_mtvec_sends_exceptions_to_base(rig: Rig) -> None:
    rig.hart.csr[S.MTVEC] = MTRAP | 1
    rig.exec(enc("ecall"))
    assert_m_trap(rig, S.CAUSE_ECALL_M, 0)


def test_mtimecmp_and_mtime_through_the_clint(rig: Rig) -> None:
    store_to_clint(rig, 0x4000, 0x123456789)
    rig.exec(enc("ld", rd=5, rs1=10), x10=CLINT + 0x4000)
    assert rig.x(5) == 0x123456789
    rig.place([NOP] * 100)
    rig.hart.pc = CODE
    before = rig.hart.instret
    rig.step(100)
    rig.exec(enc("ld", rd=6, rs1=10), x10=CLINT + 0xBFF8, pc=CODE + 400)
    assert rig.x(6) == (before + 100) // S.INSNS_PER_TICK


def test_timer_interrupt_not_taken_with_mie_clear_in_m(rig: Rig) -> None:
    rig.place([LOOP])
    store_to_clint(rig, 0x4000, 0)
    rig.hart.csr[S.MIE] = S.MIP_MTIP  # enabled, but mstatus.MIE = 0 in M-mode
    rig.step(50)
    assert rig.hart.pc == CODE and rig.mcause == 0


def test_m_timer_preempts_lower_modes_regardless_of_mie(rig: Rig) -> None:
    rig.place([LOOP])
    store_to_clint(rig, 0x4000, 0)
    rig.hart.csr[S.MIE] = S.MIP_MTIP
    rig.hart.st[S.PRIV] = SUP  # mstatus.MIE = 0 does not mask M interrupts in S
    rig.step(1)
    assert_m_trap(rig, INTERRUPT | S.IRQ_M_TIMER, 0, prev=SUP)


def test_supervisor_timer_via_stip_delegated(rig: Rig) -> None:
    """M-mode sets mip.STIP (as an SBI timer would) with it delegated: S takes it."""
    rig.place([LOOP], CODE + 0x100)
    rig.place(
        [
            enc("csrrs", rs1=10, imm=S.MIDELEG),
            enc("csrrs", rs1=10, imm=S.MIE),
            enc("csrrs", rs1=10, imm=S.MIP),  # STIP pending, still in M: not taken (deleg)
            enc("csrrs", rs1=11, imm=S.MSTATUS),  # MPP = S, MPIE
            enc("mret"),
        ]
    )
    rig.hart.csr[S.MEPC] = CODE + 0x100
    rig.set_x(x10=S.MIP_STIP, x11=(SUP << 11) | S.MSTATUS_SIE)
    rig.step(5)
    assert rig.hart.pc == CODE + 0x100 and rig.hart.priv == SUP
    rig.step(1)
    assert rig.trapped_to_s()
    assert scause(rig) == INTERRUPT | S.IRQ_S_TIMER and sepc(rig) == CODE + 0x100
    assert mstatus(rig) & S.MSTATUS_SPP and mstatus(rig) & S.MSTATUS_SPIE


def test_mideleg_cannot_delegate_m_interrupts(rig: Rig) -> None:
    rig.exec(enc("csrrw", rs1=5, imm=S.MIDELEG), x5=-1)
    mideleg = u64(int(rig.hart.csr[S.MIDELEG]))
    assert mideleg & (S.MIP_MTIP | S.MIP_MSIP | S.MIP_MEIP) == 0
    assert mideleg & S.MIP_STIP


def test_undelegated_supervisor_interrupt_goes_to_m(rig: Rig) -> None:
    rig.place([LOOP])
    rig.hart.csr[S.MIE] = S.MIP_SSIP
    rig.hart.csr[S.MIP] = S.MIP_SSIP
    rig.hart.st[S.PRIV] = U
    rig.step(1)
    assert_m_trap(rig, INTERRUPT | S.IRQ_S_SOFT, 0, prev=U)


def test_interrupt_priority_msi_before_mti(rig: Rig) -> None:
    rig.place([LOOP])
    store_to_clint(rig, 0x4000, 0)
    store_to_clint(rig, 0, 1)
    enable_m_interrupts(rig, S.MIP_MTIP | S.MIP_MSIP)
    rig.step(1)
    assert u64(rig.mcause) == INTERRUPT | S.IRQ_M_SOFT


def test_wfi_wakes_up_on_the_timer() -> None:
    """WFI with MTIE enabled but mstatus.MIE clear: the hart sleeps until mtimecmp, then
    continues after the WFI (no trap), then powers off with a0 = 42."""
    rig = Rig()
    program = [
        enc("lui", rd=10, imm=CLINT),
        enc("addi", rd=11, rs1=0, imm=2000),
        enc("lui", rd=12, imm=0x4000),
        enc("add", rd=12, rs1=12, rs2=10),
        enc("sd", rs1=12, rs2=11),  # mtimecmp = 2000 ticks
        enc("addi", rd=13, rs1=0, imm=128),
        enc("csrrw", rs1=13, imm=S.MIE),  # MTIE
        enc("wfi"),
        enc("addi", rd=10, rs1=0, imm=42),
        enc("lui", rd=14, imm=0x100000),
        enc("lui", rd=15, imm=0x5000),
        enc("addi", rd=15, rs1=15, imm=0x555),
        enc("sw", rs1=14, rs2=15),  # sifive_test: pass
    ]
    rig.place(program)
    result = rig.m.run(max_instructions=10_000)
    assert result.reason == "poweroff" and result.exit_code == 0
    assert rig.x(10) == 42
    rig.exec(enc("ld", rd=5, rs1=6), x6=CLINT + 0xBFF8)
    assert rig.x(5) >= 2000, "mtime jumped forward to mtimecmp while the hart slept"
    assert rig.mcause == 0


def test_wfi_with_nothing_to_wait_for_halts() -> None:
    rig = Rig()
    rig.place([enc("wfi"), LOOP])
    result = rig.m.run(max_instructions=1000)
    assert result.reason == "halt"


def test_wfi_takes_the_interrupt_when_enabled() -> None:
    rig = Rig()
    rig.place([LOOP], MTRAP + 4)
    rig.place([enc("wfi"), LOOP])
    rig.hart.st[S.MTIMECMP] = 300
    enable_m_interrupts(rig, S.MIP_MTIP)
    rig.m.run(max_instructions=20)
    assert u64(rig.mcause) == INTERRUPT | S.IRQ_M_TIMER
    assert rig.mepc == CODE + 4  # the instruction after the WFI


# ----------------------------------------------------------------- mstatus WARL, TVM/TW/TSR


def test_mstatus_warl(rig: Rig) -> None:
    rig.hart.csr[S.MSTATUS] = s64((mstatus(rig) & ~S.MSTATUS_MPP) | (SUP << 11))
    rig.exec(enc("csrrs", rs1=5, imm=S.MSTATUS), x5=2 << 11)  # MPP |= 2 -> 3: legal
    assert mpp(rig) == M
    rig.exec(enc("csrrc", rs1=5, imm=S.MSTATUS), x5=1 << 11)  # MPP = 2: reserved, kept
    assert mpp(rig) == M
    rig.exec(enc("csrrw", rs1=5, imm=S.MSTATUS), x5=(SUP << 11))
    assert mpp(rig) == SUP
    rig.exec(enc("csrrw", rs1=5, imm=S.MSTATUS), x5=0)  # UXL, SXL stay 64-bit
    assert (mstatus(rig) >> 32) & 0xF == 0xA
    rig.exec(enc("csrrw", rs1=5, imm=S.MSTATUS), x5=S.MSTATUS_FS)  # FS dirty -> SD
    rig.exec(enc("csrrs", rd=6, imm=S.MSTATUS))
    assert rig.x(6) >> 63 == 1
    rig.exec(enc("csrrs", rd=7, imm=S.SSTATUS))
    assert rig.x(7) >> 63 == 1 and not rig.x(7) & S.MSTATUS_MPP


def test_sstatus_is_a_view_of_mstatus(rig: Rig) -> None:
    rig.exec(enc("csrrw", rs1=5, imm=S.SSTATUS), x5=-1, priv=SUP)
    status = mstatus(rig)
    assert status & S.MSTATUS_SIE and status & S.MSTATUS_SUM
    assert not status & (S.MSTATUS_MIE | S.MSTATUS_MPP | S.MSTATUS_TVM)


@pytest.mark.parametrize(
    "bit,word",
    [
        (S.MSTATUS_TVM, enc("csrrs", rd=5, imm=S.SATP)),
        (S.MSTATUS_TVM, enc("csrrw", rs1=0, imm=S.SATP)),
        (S.MSTATUS_TVM, enc("sfence.vma")),
        (S.MSTATUS_TW, enc("wfi")),
        (S.MSTATUS_TSR, enc("sret")),
    ],
)
def test_tvm_tw_tsr(rig: Rig, bit: int, word: int) -> None:
    rig.hart.csr[S.MSTATUS] |= bit
    rig.exec(word, priv=SUP)
    assert_m_trap(rig, S.CAUSE_ILLEGAL, word, prev=SUP)
    rig.reset()  # with the bit clear the same instruction executes in S
    rig.hart.csr[S.SEPC] = CODE + 4
    rig.hart.csr[S.MIE] = S.MIP_MTIP  # so WFI has something to wait for
    rig.exec(word, priv=SUP)
    assert rig.mcause == 0 and rig.hart.pc == CODE + 4
    rig.reset()  # and M-mode is never trapped by them
    rig.hart.csr[S.MSTATUS] |= bit
    rig.hart.csr[S.SEPC] = CODE + 4
    rig.hart.csr[S.MIE] = S.MIP_MTIP
    rig.exec(word, priv=M)
    assert rig.mcause == 0 and rig.hart.pc == CODE + 4


# ----------------------------------------------------------------- counters


def test_counters_in_m_mode(rig: Rig) -> None:
    reads = [enc("csrrs", rd=5, imm=S.INSTRET_CSR), enc("csrrs", rd=6, imm=S.CYCLE)]
    rig.place([NOP] * 37 + reads + [enc("csrrs", rd=7, imm=S.TIME)])
    rig.step(40)
    assert rig.x(5) == 37, "instret counts the instructions retired before the read"
    assert rig.x(6) >= 38
    assert rig.x(7) == 39 // S.INSNS_PER_TICK
    # minstret is writable: the write replaces the increment of the writing instruction
    rig.place([enc("csrrw", rs1=10, imm=S.MINSTRET), enc("csrrs", rd=5, imm=S.INSTRET_CSR)])
    rig.hart.pc = CODE
    rig.set_x(x10=1000)
    rig.step(2)
    assert rig.x(5) == 1000


@pytest.mark.parametrize("counter", [S.CYCLE, S.TIME, S.INSTRET_CSR])
@pytest.mark.parametrize("priv", [SUP, U])
def test_counter_enables(rig: Rig, counter: int, priv: int) -> None:
    bit = 1 << (counter - S.CYCLE)
    word = enc("csrrs", rd=5, imm=counter)
    for mcounteren in (0, bit):
        for scounteren in (0, bit):
            rig.reset()
            rig.hart.csr[S.MCOUNTEREN] = mcounteren
            rig.hart.csr[S.SCOUNTEREN] = scounteren
            rig.exec(word, priv=priv)
            allowed = bool(mcounteren) and (priv == SUP or bool(scounteren))
            if allowed:
                assert rig.hart.pc == CODE + 4, f"{counter:#x} from {priv} trapped"
            else:
                assert_m_trap(rig, S.CAUSE_ILLEGAL, word, prev=priv)


# ----------------------------------------------------------------- whole programs (tests/asm)

ASM = __import__("pathlib").Path(__file__).parent / "asm"


@pytest.mark.parametrize("program", ["priv_roundtrip", "timer_wfi"])
def test_assembly_programs(program: str) -> None:
    """Guest programs that check traps and interrupts themselves and report through
    sifive_test, loaded as ELFs and run on the Machine like any image."""
    from toolchain import build_elf

    from rvemu import Machine

    elf = build_elf(program, (ASM / f"{program}.S").read_text())
    m = Machine(memory="16M")  # QEMU's layout puts the device tree at the top 2 MiB boundary
    m.load(str(elf))
    result = m.run(max_instructions=200_000)
    assert result.reason == "poweroff", result
    assert result.exit_code == 0, f"{program} failed at step {result.exit_code}"


TRAP_STORM = """
from rvemu import Machine
from rvemu.cpu import state as S
m = Machine(memory="1M")
m.hart.csr[S.MTVEC] = 0x80000000  # the handler is itself an illegal instruction (zeros)
m.hart.pc = 0x80000000
assert m.hart.run(100) == S.EXIT_BUDGET
m.hart.csr[S.MTVEC] = 0x0800_0000  # unmapped: every fetch of the handler faults
result = m.run(max_instructions=1000)
assert result.reason == "limit", result
assert m.hart.csr[S.MCAUSE] == S.CAUSE_FETCH_ACCESS
print("ok")
"""


def test_trap_storm_returns_to_python() -> None:
    """A handler that traps again retires nothing; the core must still return (this ran
    forever once). In a subprocess with a timeout, so a regression cannot hang the suite."""
    import subprocess
    import sys

    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            [sys.executable, "-c", TRAP_STORM], cwd=root, timeout=120, capture_output=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a trap storm kept the core from returning (killed after 120 s)")
    assert done.returncode == 0 and done.stdout.strip() == b"ok", done.stderr.decode()


# ----------------------------------------------------------------- more WARL and edge cases


def test_xepc_and_xtvec_warl(rig: Rig) -> None:
    rig.exec(enc("csrrw", rs1=5, imm=S.MEPC), x5=CODE + 3)
    assert rig.mepc == CODE + 2, "mepc[0] is always zero (IALIGN 16)"
    rig.exec(enc("csrrw", rs1=5, imm=S.SEPC), x5=CODE + 7)
    assert sepc(rig) == CODE + 6
    for mode_bits in (2, 3):  # reserved modes: QEMU ignores the write
        rig.exec(enc("csrrw", rs1=5, imm=S.MTVEC), x5=DATA | mode_bits)
        assert u64(int(rig.hart.csr[S.MTVEC])) == MTRAP


def test_satp_ignores_unsupported_modes(rig: Rig) -> None:
    sv39 = (8 << 60) | (DATA >> 12)
    rig.exec(enc("csrrw", rs1=5, imm=S.SATP), x5=sv39)
    assert u64(int(rig.hart.csr[S.SATP])) == sv39
    for mode in (1, 10, 15):  # reserved, Sv57 (not implemented), custom
        rig.exec(enc("csrrw", rs1=5, imm=S.SATP), x5=(mode << 60) | 123)
        assert u64(int(rig.hart.csr[S.SATP])) == sv39, f"satp mode {mode} accepted"


def test_misa_reports_rv64gc_with_s_and_u(rig: Rig) -> None:
    rig.exec(enc("csrrs", rd=5, imm=S.MISA))
    misa = rig.x(5)
    assert misa >> 62 == 2, "MXL = 64"
    letters = {chr(ord("A") + i) for i in range(26) if misa >> i & 1}
    assert set("IMAFDCSU") <= letters


def test_fetch_page_fault_on_the_second_half_of_an_instruction() -> None:
    """A 32-bit instruction whose upper half lies on an unmapped page."""
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)  # CODE + 0x1000 stays unmapped
    pt.enable()
    rig.put(CODE + 0xFFE, 0x0513, 2)  # low half of `addi a0, zero, 0`
    rig.put(CODE + 0x1000, 0x0000, 2)
    rig.hart.pc = CODE + 0xFFE
    rig.hart.st[S.PRIV] = SUP
    rig.step(1)
    assert rig.trapped_to_m() and rig.mcause == S.CAUSE_FETCH_PAGE
    assert rig.mepc == CODE + 0xFFE and rig.mtval == CODE + 0x1000


def test_instruction_across_a_page_boundary_executes() -> None:
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
    pt.map(CODE + 0x1000, DATA, PTE_R | PTE_X | PTE_A)  # next virtual page -> elsewhere
    pt.enable()
    word = enc("addi", rd=10, rs1=0, imm=0x123)
    rig.put(CODE + 0xFFE, word & 0xFFFF, 2)
    rig.put(DATA, word >> 16, 2)  # the upper half, through the second page's mapping
    rig.hart.pc = CODE + 0xFFE
    rig.hart.st[S.PRIV] = SUP
    rig.step(1)
    assert rig.hart.pc == CODE + 0x1002 and rig.x(10) == 0x123


def test_mtimecmp_written_in_32_bit_halves(rig: Rig) -> None:
    rig.place(
        [
            enc("sw", rs1=10, rs2=11, imm=0),  # low half
            enc("sw", rs1=10, rs2=12, imm=4),  # high half
            enc("ld", rd=5, rs1=10, imm=0),
            enc("lw", rd=6, rs1=10, imm=4),
        ]
    )
    rig.set_x(x10=CLINT + 0x4000, x11=0x89ABCDEF, x12=0x1234)
    rig.step(4)
    assert rig.x(5) == 0x1234_89ABCDEF
    assert rig.x(6) == 0x1234


def test_sip_and_sie_expose_only_delegated_bits(rig: Rig) -> None:
    rig.hart.csr[S.MIDELEG] = S.MIP_SSIP | S.MIP_STIP
    rig.exec(enc("csrrw", rs1=5, imm=S.SIE), x5=-1, priv=SUP)
    assert u64(int(rig.hart.csr[S.MIE])) == S.MIP_SSIP | S.MIP_STIP, "sie writes delegated bits"
    rig.exec(enc("csrrw", rs1=5, imm=S.SIP), x5=-1, priv=SUP)
    mip = u64(int(rig.hart.csr[S.MIP]))
    assert mip & S.MIP_SSIP, "sip.SSIP is writable when delegated"
    assert not mip & S.MIP_STIP, "sip.STIP is read-only"


def test_delegated_interrupts_respect_sie_only_in_s(rig: Rig) -> None:
    rig.place([LOOP])
    rig.hart.csr[S.MIDELEG] = S.MIP_SSIP
    rig.hart.csr[S.MIE] = S.MIP_SSIP
    rig.hart.csr[S.MIP] = S.MIP_SSIP
    rig.hart.st[S.PRIV] = SUP  # S with sstatus.SIE = 0: masked
    rig.step(3)
    assert rig.hart.pc == CODE and scause(rig) == 0
    rig.hart.st[S.PRIV] = U  # from U, S-level interrupts are always enabled
    rig.step(1)
    assert rig.trapped_to_s() and scause(rig) == INTERRUPT | S.IRQ_S_SOFT
    assert sepc(rig) == CODE and rig.mcause == 0


@pytest.mark.parametrize("level", [1, 2])
def test_superpages(level: int) -> None:
    """A 2 MiB / 1 GiB leaf translates the low 21 / 30 bits untouched; a leaf whose PPN is
    not aligned to its size is a page fault."""
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
    size = 1 << (12 + 9 * level)
    va = 0x40_0000_0000 - 2 * size if level == 2 else 0x1000_0000  # far from CODE
    pt.map(va, RAM, PTE_R | PTE_W | PTE_A | PTE_D, level=level)
    pt.map(va + size, RAM + 4096, PTE_R | PTE_A, level=level)  # misaligned PPN
    pt.enable()
    rig.put(DATA, 0x0123456789ABCDEF, 8)
    rig.exec(enc("ld", rd=5, rs1=10), x10=va + (DATA - RAM), priv=SUP)
    assert rig.hart.pc == CODE + 4 and rig.x(5) == 0x0123456789ABCDEF
    rig.exec(enc("ld", rd=5, rs1=10), x10=va + size + 8, priv=SUP)
    assert rig.trapped_to_m() and rig.mcause == S.CAUSE_LOAD_PAGE
    assert rig.mtval == va + size + 8


@pytest.mark.parametrize(
    "flags",
    [PTE_W | PTE_A | PTE_D, PTE_W | PTE_X | PTE_A | PTE_D],  # W without R: reserved
)
def test_reserved_pte_permissions_fault(flags: int) -> None:
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
    pt.map(DATA, DATA, flags)
    pt.enable()
    rig.exec(enc("ld", rd=5, rs1=10), x10=DATA, priv=SUP)
    assert rig.trapped_to_m() and rig.mcause == S.CAUSE_LOAD_PAGE


def test_sv48_translation() -> None:
    """Sv48 (mode 9): a four-level walk; the same leaf reached through an extra level."""
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
    pt.map(DATA, DATA, PTE_R | PTE_W | PTE_A | PTE_D)
    top = pt.next_free  # a level-3 table whose entry 0 points at the Sv39 root
    rig.m.write_phys(top, bytes(4096))
    rig.put(top, ((pt.root >> 12) << 10) | 1, 8)
    rig.hart.csr[S.SATP] = s64((9 << 60) | (top >> 12))
    rig.hart.flush_decoded()
    rig.put(DATA, 42, 8)
    rig.exec(enc("ld", rd=5, rs1=10), x10=DATA, priv=SUP)
    assert rig.hart.pc == CODE + 4 and rig.x(5) == 42
    rig.exec(enc("ld", rd=5, rs1=10), x10=1 << 40, priv=SUP)  # canonical in Sv48, unmapped
    assert rig.trapped_to_m() and rig.mcause == S.CAUSE_LOAD_PAGE and rig.mtval == 1 << 40


def test_stvec_vectored_for_supervisor_interrupts(rig: Rig) -> None:
    rig.place([NOP] * 16, STRAP)
    rig.place([LOOP])
    rig.hart.csr[S.STVEC] = STRAP | 1
    rig.hart.csr[S.MIDELEG] = S.MIP_SSIP
    rig.hart.csr[S.MIE] = S.MIP_SSIP
    rig.hart.csr[S.MIP] = S.MIP_SSIP
    rig.hart.st[S.PRIV] = U
    rig.step(1)
    assert rig.hart.pc == STRAP + 4 * S.IRQ_S_SOFT + 4 and rig.hart.priv == SUP
    assert scause(rig) == INTERRUPT | S.IRQ_S_SOFT


@pytest.mark.parametrize(
    "name,size,signed",
    [("lb", 1, 1), ("lbu", 1, 0), ("lh", 2, 1), ("lhu", 2, 0), ("lw", 4, 1), ("lwu", 4, 0)],
)
def test_clint_loads_extend_like_ram_loads(rig: Rig, name: str, size: int, signed: int) -> None:
    """Narrow loads from a device register (mtimecmp) are sign- or zero-extended."""
    value = 0x8081828384858687
    store_to_clint(rig, 0x4000, s64(value))
    for offset in range(0, 8, size):
        rig.exec(enc(name, rd=5, rs1=10, imm=offset), x10=CLINT + 0x4000)
        raw = (value >> (8 * offset)) & ((1 << (8 * size)) - 1)
        want = u64(sext(raw, 8 * size)) if signed else raw
        assert rig.x(5) == want, f"{name} at mtimecmp+{offset}: {rig.x(5):#x}"


# ----------------------------------------------------------------- Sv39 against QEMU

# Once a hart bug (see test_misaligned_fault_reports_the_faulting_portion); kept off so the
# QEMU comparison checks those mtvals too.
TOLERATE_CROSSING_TVAL = False
MMU_OPS = [  # (mnemonic, is a store/AMO)
    ("lb", False), ("lbu", False), ("lh", False), ("lhu", False), ("lw", False),
    ("lwu", False), ("ld", False), ("flw", False), ("fld", False), ("lr.d", False),
    ("sb", True), ("sh", True), ("sw", True), ("sd", True), ("fsd", True),
    ("amoadd.w", True), ("amoswap.d", True), ("amoor.d", True),
]  # fmt: skip
MMU_HARNESS = """
        .option norvc
        .text
        .globl _start
_start: la      t0, handler
        csrw    mtvec, t0
        li      t0, 0x6000
        csrs    mstatus, t0                     # FS on
        la      s0, pt_root
        la      s1, pt_l1
        la      s2, pt_l0
        srli    t0, s1, 12
        slli    t0, t0, 10
        ori     t0, t0, 1
        sd      t0, 8(s0)                       # root[1] -> l1 (VA 0x4000_0000...)
        li      t0, (0x80000 << 10) | {code_flags}
        sd      t0, 16(s0)                      # root[2]: gigapage over RAM (the code)
        srli    t0, s2, 12
        slli    t0, t0, 10
        ori     t0, t0, 1
        sd      t0, 0(s1)                       # l1[0] -> l0
{ptes}
        srli    t0, s0, 12
        li      t1, 8 << 60
        or      t0, t0, t1
        csrw    satp, t0
        sfence.vma
        li      t0, {status_bits}
        csrs    mstatus, t0
        li      t0, 0x1800
        csrc    mstatus, t0
        li      t0, {mpp} << 11
        csrs    mstatus, t0
        li      t0, -1
        csrw    pmpaddr0, t0
        li      t0, 0x1f
        csrw    pmpcfg0, t0                     # PMP: all memory RWX (QEMU requires a rule)
        la      t0, lower
        csrw    mepc, t0
        mret
lower:
{cases}
        ecall

        .align  2
handler:                                        # M-mode, bare: print and resume
        csrr    x28, mcause
        li      x29, 3
        beq     x28, x29, 1f                    # ebreak: end of a case, print x6
        li      x29, 8
        bgeu    x28, x29, 2f
        j       fault
2:      li      x29, 10
        bltu    x28, x29, finish                # ecall from U or S
fault:  mv      x31, x28
        jal     x30, hex
        csrr    x31, mtval
        jal     x30, hex
        j       skip
1:      mv      x31, x6
        jal     x30, hex
        li      x29, 0x10000000
        li      x28, 10
        sb      x28, 0(x29)
skip:   csrr    x28, mepc
        addi    x28, x28, 4
        csrw    mepc, x28
        mret
finish: li      t0, 0x100000
        li      t1, 0x5555
        sw      t1, 0(t0)
3:      j       3b
hex:    li      x29, 0x10000000
        li      x28, 16
4:      srli    x27, x31, 60
        addi    x27, x27, 48
        li      x26, 58
        blt     x27, x26, 5f
        addi    x27, x27, 39
5:      sb      x27, 0(x29)
        slli    x31, x31, 4
        addi    x28, x28, -1
        bnez    x28, 4b
        li      x27, 32
        sb      x27, 0(x29)
        jr      x30

        .data
        .align  12
pt_root: .space 4096
pt_l1:  .space  4096
pt_l0:  .space  4096
pages:  .dword  {page_data}
"""


def mmu_program(
    rng: random.Random, mode: int, sum_bit: bool, mxr_bit: bool
) -> tuple[str, list[str]]:
    """A program that maps 32 pages at 0x4000_0000 (random permissions, some reserved, A/D
    random) and a megapage after them, then makes random accesses from S or U mode; the
    M-mode handler prints each fault's mcause and mtval and each access's loaded value."""
    npages = 32
    ptes = []
    for k in range(npages):
        flags = 1 if rng.random() < 0.9 else 0
        for bit in (PTE_R, PTE_W, PTE_X, PTE_U, PTE_A, PTE_D):
            flags |= bit if rng.random() < 0.5 else 0
        if mode == U and rng.random() < 0.5:
            flags |= PTE_U
        page = rng.randrange(8)
        ptes += [
            f"        la      t0, pages + {4096 * page}",
            "        srli    t0, t0, 12",
            "        slli    t0, t0, 10",
            f"        ori     t0, t0, {flags}",
            f"        sd      t0, {8 * k}(s2)",
        ]
    # l1[1]: a megapage leaf whose PPN is not 2 MiB aligned (a page fault on every access)
    ptes += [
        "        la      t0, pages",
        "        srli    t0, t0, 12",
        "        slli    t0, t0, 10",
        f"        ori     t0, t0, {PTE_R | PTE_W | PTE_A | PTE_D | PTE_U | 1}",
        "        sd      t0, 8(s1)",
    ]
    cases, names = [], []
    for _ in range(300):
        name, _store = rng.choice(MMU_OPS)
        names.append(name)
        size = {"b": 1, "h": 2, "w": 4, "d": 8}[name.rstrip("u").split(".")[-1][-1]]
        page = rng.randrange(npages + 1) if rng.random() < 0.95 else npages + 512
        offset = rng.choice([0, 8, 4096 - size, 4096 - size + 1, rng.randrange(4096)])
        if name.startswith(("amo", "lr")):
            offset &= ~(size - 1)
        va = 0x4000_0000 + 4096 * page + offset
        if name.startswith(("amo", "lr")):
            op = f"{name} x6, x7, (x5)" if name.startswith("amo") else f"{name} x6, (x5)"
        elif name.startswith("f"):
            op = f"{name} f1, 0(x5)"
        elif name.startswith("s"):
            op = f"{name} x7, 0(x5)"
        else:
            op = f"{name} x6, 0(x5)"
        cases += [f"        li x5, {va:#x}", "        li x6, 0", f"        li x7, {va:#x}"]
        cases += [
            f"        {op}",
            "        fmv.x.d x6, f1" if name.startswith("fl") else "",
            "        ebreak",
        ]
    code_flags = PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | 1 | (PTE_U if mode == U else 0)
    status = (S.MSTATUS_SUM if sum_bit else 0) | (S.MSTATUS_MXR if mxr_bit else 0)
    data = ", ".join(f"{rng.getrandbits(64):#x}" for _ in range(8 * 512))
    source = MMU_HARNESS.format(
        code_flags=code_flags,
        ptes="\n".join(ptes),
        status_bits=status,
        mpp=mode,
        cases="\n".join(cases),
        page_data=data,
    )
    return source, names


def mmu_qemu_7_2_difference(name: str, ours: list[str], theirs: list[str]) -> bool:
    """Known differences: an AMO's page fault is a store/AMO page fault (15) as the spec
    says, QEMU 7.2 reports a load page fault (13); and (a hart bug while
    TOLERATE_CROSSING_TVAL, see test_misaligned_fault_reports_the_faulting_portion) a
    misaligned access whose second page faults reports its own address, not the page's."""
    if len(ours) != 3 or len(theirs) != 3 or ours[2] != theirs[2]:
        return False
    cause, tval = int(ours[0], 16), int(ours[1], 16)
    qemu_cause, qemu_tval = int(theirs[0], 16), int(theirs[1], 16)
    if name.startswith("amo") and (cause, qemu_cause) == (15, 13):
        qemu_cause = cause
    if TOLERATE_CROSSING_TVAL and qemu_tval == (tval | 0xFFF) + 1 and cause in (13, 15):
        qemu_tval = tval
    return (cause, tval) == (qemu_cause, qemu_tval)


@pytest.mark.parametrize(
    "mode,sum_bit,mxr_bit",
    [(SUP, False, False), (SUP, True, False), (SUP, False, True), (U, False, False)],
    ids=["S", "S-SUM", "S-MXR", "U"],
)
def test_sv39_accesses_like_qemu(mode: int, sum_bit: bool, mxr_bit: bool) -> None:
    """Random loads, stores and AMOs through random Sv39 page permissions (with hardware
    A/D updates) fault, or load the same values, as on QEMU."""
    import shutil

    from toolchain import build_elf

    if shutil.which(QEMU) is None:
        pytest.skip(f"*** {QEMU} not installed: the QEMU Sv39 comparison did NOT run ***")
    rng = random.Random(f"mmu-{mode}-{sum_bit}-{mxr_bit}")
    source, names = mmu_program(rng, mode, sum_bit, mxr_bit)
    elf = build_elf(f"mmu-{mode}-{int(sum_bit)}{int(mxr_bit)}", source)
    ours, theirs, qemu_stderr = console_on_rvemu_and_qemu(elf, 2_000_000)
    assert len(theirs) == 300, f"QEMU printed {len(theirs)} lines"
    problems = []
    for k, (name, a, b) in enumerate(zip(names, ours, theirs, strict=False)):
        if a != b and not mmu_qemu_7_2_difference(name, a.split(), b.split()):
            problems.append(f"case {k} ({name}): rvemu {a} / qemu {b}")
    assert len(ours) == 300 and not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("name,cause", [("ld", S.CAUSE_LOAD_PAGE), ("sw", S.CAUSE_STORE_PAGE)])
def test_misaligned_fault_reports_the_faulting_portion(name: str, cause: int) -> None:
    rig = Rig()
    pt = Sv39(rig)
    pt.map(CODE, CODE, PTE_R | PTE_X | PTE_A)
    pt.map(DATA, DATA, PTE_R | PTE_W | PTE_A | PTE_D)  # DATA + 0x1000 unmapped
    pt.enable()
    rig.exec(enc(name, rd=5, rs1=10, rs2=11), x10=DATA + 0xFFD, priv=SUP)
    assert rig.trapped_to_m() and rig.mcause == cause
    assert rig.mtval == DATA + 0x1000, f"mtval {rig.mtval:#x}"


# ----------------------------------------------------------------- the CSR set, as QEMU's

# QEMU 7.2's rv64 virt hart has 16 PMP entries (pmpcfg0/2, pmpaddr0-15), hpmcounters 3-18
# and the debug tinfo CSR; where the spec leaves the choice, rvemu has the same set.


@pytest.mark.parametrize("csr", [0x3A1, 0x3A3, 0x3AF])
def test_odd_pmpcfg_is_illegal_on_rv64(rig: Rig, csr: int) -> None:
    word = enc("csrrs", rd=5, rs1=0, imm=csr)
    rig.exec(word)
    assert_m_trap(rig, S.CAUSE_ILLEGAL, word)


@pytest.mark.parametrize(
    "csr,exists",
    [
        (0x3A4, False),  # pmpcfg4
        (0x3C0, False),  # pmpaddr16
        (0xB13, False),  # mhpmcounter19
        (0xC13, False),  # hpmcounter19
        (0x7A4, True),  # tinfo
    ],
)
def test_csr_set_matches_qemu_virt(rig: Rig, csr: int, exists: bool) -> None:
    word = enc("csrrs", rd=5, rs1=0, imm=csr)
    rig.hart.csr[S.MCOUNTEREN] = -1
    rig.exec(word)
    if exists:
        assert rig.hart.pc == CODE + 4, f"csr {csr:#x} should exist"
    else:
        assert_m_trap(rig, S.CAUSE_ILLEGAL, word)


CSR_HARNESS = """
        .text
        .globl _start
_start: la      t0, handler
        csrw    mtvec, t0
        li      t0, 0x6000
        csrs    mstatus, t0                     # FS on
        li      t0, -1
        csrw    pmpaddr0, t0
        li      t0, 0x1f
        csrw    pmpcfg0, t0                     # PMP: all memory RWX
        li      t0, -1
        csrw    mcounteren, t0
        li      t0, 0x1800
        csrc    mstatus, t0
        li      t0, {mode} << 11
        csrs    mstatus, t0
        la      t0, lower
        csrw    mepc, t0
        mret
lower:
{cases}
        li      t0, 0x100000
        li      t1, 0x5555
        sw      t1, 0(t0)
1:      j       1b

        .align  2
handler:                                        # record mcause/mtval in memory, skip
        csrw    mscratch, x31
        la      x31, trapinfo
        sd      x30, 16(x31)
        csrr    x30, mcause
        sd      x30, 0(x31)
        csrr    x30, mtval
        sd      x30, 8(x31)
        csrr    x30, mepc
        addi    x30, x30, 4
        csrw    mepc, x30
        ld      x30, 16(x31)
        csrr    x31, mscratch
        mret
report: li      x10, 0x10000000
        la      x11, trapinfo
        ld      x7, 0(x11)
        jal     x9, hex
        ld      x7, 8(x11)
        jal     x9, hex
        li      x8, 10
        sb      x8, 0(x10)
        ret
hex:    li      x12, 16
2:      srli    x8, x7, 60
        addi    x8, x8, 48
        li      x13, 58
        blt     x8, x13, 3f
        addi    x8, x8, 39
3:      sb      x8, 0(x10)
        slli    x7, x7, 4
        addi    x12, x12, -1
        bnez    x12, 2b
        li      x8, 32
        sb      x8, 0(x10)
        jr      x9

        .data
        .align  3
trapinfo: .dword 0, 0, 0
"""
CSR_CASE = """
        la      x11, trapinfo
        sd      x0, 0(x11)
        sd      x0, 8(x11)
        li      x5, 0
        .word   {word:#010x}
        jal     ra, report
"""
# Writes that would break the harness (trap vector, status, delegation, interrupts,
# translation, PMP) are not generated; everything else is fair game.
CSR_NO_WRITE = {0x100, 0x104, 0x105, 0x144, 0x180, 0x300, 0x302, 0x303, 0x304, 0x305, 0x344}
CSR_INTERESTING = sorted(
    {0x001, 0x002, 0x003, 0x015, 0x100, 0x104, 0x105, 0x106, 0x10A, 0x140, 0x141, 0x142}
    | {0x143, 0x144, 0x14D, 0x180, 0x300, 0x301, 0x302, 0x303, 0x304, 0x305, 0x306, 0x30A}
    | {0x320, 0x323, 0x340, 0x341, 0x342, 0x343, 0x344, 0x3A0, 0x3A2, 0x3B0, 0x3BF, 0x747}
    | {0x7A0, 0x7A1, 0x7A2, 0x7A3, 0x7B0, 0xB00, 0xB02, 0xB03, 0xB12, 0xC00, 0xC01, 0xC02}
    | {0xC03, 0xC12, 0xC80, 0xF11, 0xF12, 0xF13, 0xF14, 0xF15, 0x5A8, 0x9A8}
)


def qemu_csr_deviation(csr: int) -> bool:
    """CSRs test_odd_pmpcfg_is_illegal_on_rv64 / test_csr_set_matches_qemu_virt (xfail)
    cover: tolerated here so that the comparison keeps checking every other CSR."""
    return (
        (0x3A0 <= csr <= 0x3AF and (csr & 1 or csr >= 0x3A4))
        or 0x3C0 <= csr <= 0x3EF
        or 0xB13 <= csr <= 0xB1F
        or 0xC13 <= csr <= 0xC1F
        or csr == 0x7A4
        or csr == 0x24D  # QEMU 7.2's Sstc lets M-mode reach vstimecmp without H
    )


@pytest.mark.parametrize("mode", [M, SUP, U], ids=["M", "S", "U"])
def test_csr_access_rules_like_qemu(mode: int) -> None:
    """Random CSR instructions (any CSR number, read and write forms) from M, S and U
    trap, or not, with the same mcause and mtval as on QEMU 7.2."""
    import shutil

    from toolchain import build_elf

    if shutil.which(QEMU) is None:
        pytest.skip(f"*** {QEMU} not installed: the QEMU CSR comparison did NOT run ***")
    rng = random.Random(f"csr-{mode}")
    words = []
    while len(words) < 1500:
        csr = rng.randrange(4096) if rng.random() < 0.6 else rng.choice(CSR_INTERESTING)
        f3 = rng.choice([1, 2, 3, 5, 6, 7])
        rs1 = rng.choice([0, 0, 5, 7])  # x5 holds 0 at the instruction; uimm 0/5/7
        writes = f3 in (1, 5) or rs1 != 0
        if writes and (csr in CSR_NO_WRITE or 0x3A0 <= csr <= 0x3EF):
            continue
        if writes and mode == M and csr >> 8 == 0x3 and csr not in (0x340, 0x342, 0x343):
            continue  # other M-mode registers steer the harness
        words.append((csr << 20) | (rs1 << 15) | (f3 << 12) | (6 << 7) | 0x73)
    source = CSR_HARNESS.format(mode=mode, cases="".join(CSR_CASE.format(word=w) for w in words))
    elf = build_elf(f"csr-access-{mode}", source)
    ours, theirs, qemu_stderr = console_on_rvemu_and_qemu(elf, 5_000_000)
    assert len(ours) == len(theirs) == len(words)
    problems = []
    for word, a, b in zip(words, ours, theirs, strict=True):
        csr, f3, rs1 = word >> 20, (word >> 12) & 7, (word >> 15) & 31
        if a == b or qemu_csr_deviation(csr):
            continue
        # QEMU 7.2 decides "writes" by the value of rs1 for csrrs/csrrc (x5 = 0 here); the
        # spec by the register number, so rvemu traps on read-only CSRs and QEMU does not.
        zero_valued_write = f3 in (2, 3) and rs1 != 0 and csr >> 10 == 3
        if zero_valued_write and int(a.split()[0], 16) == 2 and int(b.split()[0], 16) == 0:
            continue
        problems.append(f"{word:#010x} (csr {csr:#05x}): rvemu {a} / qemu {b}")
    assert not problems, f"{len(problems)} differ:\n" + "\n".join(problems[:30])
