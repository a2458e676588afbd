"""Control and status registers: access rules, WARL fields and the S-mode views.

Registers live in the `csr` array indexed by CSR number; this module holds every rule
that makes a CSR more than a plain slot. Reads and writes return False when the access
is illegal (the hart then raises an illegal-instruction exception).
"""

from numba import njit

from ..mmu.pmp import PMP_ENTRIES, pmpaddr_write, pmpcfg_write
from ..mmu.tlb import tlb_flush
from .clint import mtime
from .isa import extension_bit
from .jit import njit_generic
from .state import (
    COUNTEREN_TM,
    CYCLE,
    CYCLE_DELTA,
    ENVCFG_CBCFE,
    ENVCFG_CBIE,
    ENVCFG_CBZE,
    EXTENSIONS,
    FCSR,
    FFLAGS,
    FRM,
    INSTRET_CSR,
    INSTRET_DELTA,
    MARCHID,
    MCAUSE,
    MCONFIGPTR,
    MCOUNTEREN,
    MCOUNTINHIBIT,
    MCYCLE,
    MEDELEG,
    MEDELEG_WRITABLE,
    MENVCFG,
    MENVCFG_STCE,
    MEPC,
    MHARTID,
    MIDELEG,
    MIE,
    MIMPID,
    MINSTRET,
    MIP,
    MIP_STIP,
    MIP_WRITABLE,
    MISA,
    MSCRATCH,
    MSTATUS,
    MSTATUS_FS,
    MSTATUS_MPP,
    MSTATUS_SD,
    MSTATUS_SXL,
    MSTATUS_TRANSLATION,
    MSTATUS_TVM,
    MSTATUS_UXL,
    MSTATUS_WRITABLE,
    MTVAL,
    MTVEC,
    MVENDORID,
    PMPADDR0,
    PMPCFG0,
    PRIV,
    PRIV_M,
    PRIV_S,
    PROF_TLB_FLUSHES,
    S_INTERRUPTS,
    SATP,
    SCAUSE,
    SCOUNTEREN,
    SENVCFG,
    SEPC,
    SIE,
    SIP,
    SSCRATCH,
    SSTATUS,
    SSTATUS_VISIBLE,
    STIMECMP,
    STVAL,
    STVEC,
    TDATA1,
    TDATA3,
    TIME,
    TSELECT,
)
from .trap import pending_interrupts

MIP_SSIP = 1 << 1
TINFO = 0x7A4
TINFO_NO_TRIGGERS = 1  # debug spec: bit 0 alone means "no trigger at this tselect"


@njit_generic
def is_implemented(num: int) -> bool:
    if num in (FFLAGS, FRM, FCSR, CYCLE, TIME, INSTRET_CSR):
        return True
    # hpmcounters 3..18 (as QEMU 7.2's virt harts) and events: present, hardwired to zero
    if 0xC03 <= num <= 0xC12 or 0xB03 <= num <= 0xB12 or 0x323 <= num <= 0x33F:
        return True
    if num in (SSTATUS, SIE, STVEC, SCOUNTEREN, SENVCFG, SSCRATCH, SEPC, SCAUSE, STVAL, SIP):
        return True
    if num == STIMECMP:
        return True
    if num in (SATP, MSTATUS, MISA, MEDELEG, MIDELEG, MIE, MTVEC, MCOUNTEREN, MENVCFG):
        return True
    if num in (MCOUNTINHIBIT, MSCRATCH, MEPC, MCAUSE, MTVAL, MIP, MCYCLE, MINSTRET):
        return True
    if num in (MVENDORID, MARCHID, MIMPID, MHARTID, MCONFIGPTR):
        return True
    if PMPCFG0 <= num < PMPCFG0 + 4 and num % 2 == 0:  # RV64: pmpcfg0 and pmpcfg2 only
        return True
    if PMPADDR0 <= num < PMPADDR0 + PMP_ENTRIES:
        return True
    return TSELECT <= num <= TDATA3 or num == TINFO


@njit_generic
def counter_allowed(num: int, csr, priv: int) -> bool:
    """cycle/time/instret/hpmcounterN below M-mode need mcounteren (and scounteren for U)."""
    bit = 1 << (num - CYCLE)
    if priv < PRIV_M and (csr[MCOUNTEREN] & bit) == 0:
        return False
    if priv < PRIV_S and (csr[SCOUNTEREN] & bit) == 0:
        return False
    return True


@njit_generic
def accessible(num: int, csr, st, write: bool) -> bool:
    priv = st[PRIV]
    if not is_implemented(num):
        return False
    if ((num >> 8) & 3) > priv:
        return False  # needs a higher privilege
    if write and (num >> 10) == 3:
        return False  # read-only CSR
    if num <= FCSR and (csr[MSTATUS] & MSTATUS_FS) == 0:
        return False  # floating-point unit off
    if CYCLE <= num <= 0xC1F and not counter_allowed(num, csr, priv):
        return False
    if num == SATP and priv == PRIV_S and (csr[MSTATUS] & MSTATUS_TVM):
        return False
    if num == STIMECMP and not st[EXTENSIONS] & SSTC:
        return False
    if num == STIMECMP and priv < PRIV_M:  # as QEMU: both enables, else illegal
        return (csr[MCOUNTEREN] & COUNTEREN_TM) != 0 and (csr[MENVCFG] & MENVCFG_STCE) != 0
    return True


SSTC = extension_bit("sstc")
ZICBOM = extension_bit("zicbom")
ZICBOZ = extension_bit("zicboz")


@njit_generic
def envcfg_writable(num: int, st) -> int:  # noqa: ANN001
    """menvcfg's and senvcfg's writable bits: the fields of the extensions the hart has."""
    bits = 0
    if st[EXTENSIONS] & ZICBOM:
        bits |= ENVCFG_CBIE | ENVCFG_CBCFE
    if st[EXTENSIONS] & ZICBOZ:
        bits |= ENVCFG_CBZE
    if num == MENVCFG and st[EXTENSIONS] & SSTC:
        bits |= MENVCFG_STCE
    return bits


@njit_generic
def csr_read(num: int, csr, st, instret: int) -> int:
    """The value of CSR `num` (call `accessible` first)."""
    if num == FFLAGS:
        return csr[FCSR] & 0x1F
    if num == FRM:
        return (csr[FCSR] >> 5) & 7
    if num == MSTATUS:
        return status_with_sd(csr[MSTATUS])
    if num == SSTATUS:
        return status_with_sd(csr[MSTATUS]) & SSTATUS_VISIBLE
    if num == SIE:
        return csr[MIE] & csr[MIDELEG]
    if num == MIP:  # the software-writable bits plus the CLINT and PLIC lines
        return pending_interrupts(csr, st, instret)
    if num == SIP:
        return pending_interrupts(csr, st, instret) & csr[MIDELEG]
    if num == CYCLE or num == MCYCLE:
        return instret + st[CYCLE_DELTA]
    if num == INSTRET_CSR or num == MINSTRET:
        return instret + st[INSTRET_DELTA]
    if num == TIME:
        return mtime(st, instret)
    if num == TINFO:
        return TINFO_NO_TRIGGERS
    return csr[num]


@njit(cache=True, inline="always")
def status_with_sd(mstatus: int) -> int:
    if (mstatus & MSTATUS_FS) == MSTATUS_FS:
        return mstatus | MSTATUS_SD
    return mstatus


@njit_generic
def csr_write(num: int, value: int, csr, st, tlb, instret: int) -> None:
    """Write CSR `num` with WARL legalisation (call `accessible` first)."""
    if num == FFLAGS:
        csr[FCSR] = (csr[FCSR] & ~0x1F) | (value & 0x1F)
        csr[MSTATUS] |= MSTATUS_FS
    elif num == FRM:
        csr[FCSR] = (csr[FCSR] & 0x1F) | ((value & 7) << 5)
        csr[MSTATUS] |= MSTATUS_FS
    elif num == FCSR:
        csr[FCSR] = value & 0xFF
        csr[MSTATUS] |= MSTATUS_FS
    elif num == MSTATUS:
        write_mstatus(csr, st, tlb, value, MSTATUS_WRITABLE)
    elif num == SSTATUS:
        write_mstatus(csr, st, tlb, value, SSTATUS_VISIBLE)
    elif num == MISA:
        pass  # QEMU's virt harts do not let software change misa
    elif num == MEDELEG:
        csr[MEDELEG] = value & MEDELEG_WRITABLE
    elif num == MIDELEG:
        csr[MIDELEG] = value & S_INTERRUPTS
    elif num == MIE:
        csr[MIE] = value & 0xAAA
    elif num == SIE:
        mask = csr[MIDELEG]
        csr[MIE] = (csr[MIE] & ~mask) | (value & mask)
    elif num == MIP:
        mask = MIP_WRITABLE
        if csr[MENVCFG] & MENVCFG_STCE:
            mask &= ~MIP_STIP  # stimecmp drives STIP (trap.pending_interrupts)
        csr[MIP] = (csr[MIP] & ~mask) | (value & mask)
    elif num == SIP:
        mask = csr[MIDELEG] & MIP_SSIP  # only SSIP is writable through sip
        csr[MIP] = (csr[MIP] & ~mask) | (value & mask)
    elif num == MTVEC or num == STVEC:
        if (value & 3) < 2:  # QEMU ignores writes of a reserved mode
            csr[num] = value
    elif num == MEPC or num == SEPC:
        csr[num] = value & ~1
    elif num == MCOUNTEREN or num == SCOUNTEREN:
        csr[num] = value & 0xFFFFFFFF
    elif num == SATP:
        mode = (value >> 60) & 0xF
        if mode == 0 or mode == 8 or mode == 9:  # Bare, Sv39, Sv48; others leave satp as is
            csr[SATP] = value & ((0xF << 60) | (0xFFFF << 44) | ((1 << 44) - 1))
            st[PROF_TLB_FLUSHES] += 1
            tlb_flush(tlb)
    elif num == MCYCLE:
        st[CYCLE_DELTA] = value - instret
    elif num == MINSTRET:
        # The write takes effect after this instruction retires, which adds one.
        st[INSTRET_DELTA] = value - instret - 1
    elif PMPCFG0 <= num < PMPCFG0 + 4:
        pmpcfg_write(num, value, csr, st, tlb)
    elif PMPADDR0 <= num < PMPADDR0 + PMP_ENTRIES:
        pmpaddr_write(num, value, csr, st, tlb)
    elif num == TSELECT or num == TDATA1 or num == TDATA3:
        pass  # no debug triggers: tselect and tdata1 read as zero
    elif num == MENVCFG or num == SENVCFG:
        csr[num] = value & envcfg_writable(num, st)
    elif num == MCOUNTINHIBIT:
        pass  # no counters to inhibit
    elif num in (MSCRATCH, SSCRATCH, MCAUSE, SCAUSE, MTVAL, STVAL, STIMECMP):
        csr[num] = value
    # hpmcounters, hpmevents and read-only registers ignore writes


@njit_generic
def write_mstatus(csr, st, tlb, value: int, mask: int) -> None:
    mask &= MSTATUS_WRITABLE
    new = (csr[MSTATUS] & ~mask) | (value & mask)
    if (new & MSTATUS_MPP) == (2 << 11):  # MPP = 2 is reserved: keep the old value
        new = (new & ~MSTATUS_MPP) | (csr[MSTATUS] & MSTATUS_MPP)
    new |= MSTATUS_UXL | MSTATUS_SXL
    old = csr[MSTATUS]
    csr[MSTATUS] = new
    if (new ^ old) & MSTATUS_TRANSLATION:
        # MPRV, MPP, SUM and MXR change what a translation allows. Nothing else does: Linux
        # sets and clears SIE around every critical section, and those keep the TLB.
        st[PROF_TLB_FLUSHES] += 1
        tlb_flush(tlb)
