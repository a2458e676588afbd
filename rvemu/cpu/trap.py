"""Taking traps and choosing which pending interrupt to take (privileged spec, 3.1.6-3.1.9)."""

from numba import njit

from ..mmu.tlb import tlb_flush
from .clint import mtime
from .jit import njit_generic
from .state import (
    EXT_IRQ,
    INSNS_PER_TICK,
    MCAUSE,
    MEDELEG,
    MENVCFG,
    MENVCFG_STCE,
    MEPC,
    MIDELEG,
    MIE,
    MIP,
    MIP_MSIP,
    MIP_MTIP,
    MIP_STIP,
    MSIP,
    MSTATUS,
    MSTATUS_MIE,
    MSTATUS_MPIE,
    MSTATUS_MPP,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
    MSTATUS_SIE,
    MSTATUS_SPIE,
    MSTATUS_SPP,
    MSTATUS_TRANSLATION,
    MTIME_BASE,
    MTIMECMP,
    MTVAL,
    MTVEC,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    PROF_INTERRUPTS,
    PROF_TLB_FLUSHES,
    SCAUSE,
    SEPC,
    STIMECMP,
    STVAL,
    STVEC,
    TRAPS,
)

# Interrupts in the order the spec gives them priority: MEI, MSI, MTI, SEI, SSI, STI.
PRIORITY = (11, 3, 7, 9, 1, 5)


@njit_generic
def take_trap(pc: int, cause: int, tval: int, interrupt: bool, csr, st, tlb) -> int:
    """Enter the trap handler for `cause`; returns the handler's address."""
    priv = st[PRIV]
    deleg = csr[MIDELEG] if interrupt else csr[MEDELEG]
    code = cause | (-(1 << 63) if interrupt else 0)
    status = csr[MSTATUS]
    if priv <= PRIV_S and (deleg >> cause) & 1:
        csr[SCAUSE] = code
        csr[SEPC] = pc
        csr[STVAL] = tval
        status &= ~(MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE)
        if priv == PRIV_S:
            status |= MSTATUS_SPP
        if csr[MSTATUS] & MSTATUS_SIE:
            status |= MSTATUS_SPIE
        new_priv = PRIV_S
        vector = csr[STVEC]
    else:
        csr[MCAUSE] = code
        csr[MEPC] = pc
        csr[MTVAL] = tval
        status &= ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE)
        status |= priv << MSTATUS_MPP_SHIFT
        if csr[MSTATUS] & MSTATUS_MIE:
            status |= MSTATUS_MPIE
        new_priv = PRIV_M
        vector = csr[MTVEC]
    translation_changed = new_priv != priv or (status ^ csr[MSTATUS]) & MSTATUS_TRANSLATION
    csr[MSTATUS] = status
    st[PRIV] = new_priv
    st[TRAPS] += 1
    st[PROF_INTERRUPTS] += interrupt
    if translation_changed:  # (an S-mode trap from S-mode keeps the TLB: Linux's interrupts)
        st[PROF_TLB_FLUSHES] += 1
        tlb_flush(tlb)
    if interrupt and (vector & 3) == 1:
        return (vector & ~3) + 4 * cause
    return vector & ~3


@njit_generic
def mret(csr, st, tlb) -> int:
    status = csr[MSTATUS]
    new_priv = (status & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT
    status &= ~(MSTATUS_MIE | MSTATUS_MPP)
    if status & MSTATUS_MPIE:
        status |= MSTATUS_MIE
    status |= MSTATUS_MPIE  # MPP becomes U (0)
    if new_priv != PRIV_M:
        status &= ~MSTATUS_MPRV
    xret_status(status, new_priv, csr, st, tlb)
    return csr[MEPC]


@njit_generic
def sret(csr, st, tlb) -> int:
    status = csr[MSTATUS]
    new_priv = PRIV_S if status & MSTATUS_SPP else PRIV_U
    status &= ~(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV)
    if status & MSTATUS_SPIE:
        status |= MSTATUS_SIE
    status |= MSTATUS_SPIE
    xret_status(status, new_priv, csr, st, tlb)
    return csr[SEPC]


@njit_generic
def xret_status(status: int, new_priv: int, csr, st, tlb) -> None:
    """mstatus and the privilege after an xRET; the TLB is flushed only if what
    translations depend on changed."""
    if new_priv != st[PRIV] or (status ^ csr[MSTATUS]) & MSTATUS_TRANSLATION:
        st[PROF_TLB_FLUSHES] += 1
        tlb_flush(tlb)
    csr[MSTATUS] = status
    st[PRIV] = new_priv


NEVER = 1 << 62  # an instret no run reaches


@njit(cache=True, inline="always")
def time_reached(now: int, cmp: int) -> bool:
    """now >= cmp for the unsigned 64-bit time and compare registers."""
    return (now ^ (-(1 << 63))) >= (cmp ^ (-(1 << 63)))


@njit_generic
def pending_interrupts(csr, st, instret: int) -> int:
    """mip as the hart sees it: software bits plus the CLINT and PLIC lines, and with
    menvcfg.STCE (Sstc) STIP from stimecmp instead of software."""
    mip = csr[MIP] | st[EXT_IRQ]
    if st[MSIP]:
        mip |= MIP_MSIP
    now = mtime(st, instret)
    if time_reached(now, st[MTIMECMP]):
        mip |= MIP_MTIP
    if csr[MENVCFG] & MENVCFG_STCE:
        mip &= ~MIP_STIP
        if time_reached(now, csr[STIMECMP]):
            mip |= MIP_STIP
    return mip


@njit_generic
def interrupt_to_take(csr, st, instret: int) -> int:
    """The interrupt number to take now, or -1."""
    pending = pending_interrupts(csr, st, instret) & csr[MIE]
    if pending == 0:
        return -1
    priv = st[PRIV]
    status = csr[MSTATUS]
    m_enabled = priv < PRIV_M or (status & MSTATUS_MIE) != 0
    s_enabled = priv < PRIV_S or (priv == PRIV_S and (status & MSTATUS_SIE) != 0)
    m_pending = pending & ~csr[MIDELEG]
    s_pending = pending & csr[MIDELEG]
    for irq in PRIORITY:
        if m_enabled and (m_pending >> irq) & 1:
            return irq
    for irq in PRIORITY:
        if s_enabled and (s_pending >> irq) & 1:
            return irq
    return -1


@njit_generic
def instret_when_timer_fires(csr, st, instret: int) -> int:
    """The first instret at which mtime reaches mtimecmp or, with Sstc enabled, stimecmp
    (NEVER when neither will)."""
    when = instret_when_time_reaches(st[MTIMECMP], st, instret)
    if csr[MENVCFG] & MENVCFG_STCE:
        when = min(when, instret_when_time_reaches(csr[STIMECMP], st, instret))
    return when


@njit_generic
def instret_when_time_reaches(cmp: int, st, instret: int) -> int:
    if cmp < 0:  # beyond 2^63 ticks: never
        return NEVER
    ticks = cmp - st[MTIME_BASE]
    if ticks <= instret // INSNS_PER_TICK:
        return NEVER  # already pending: nothing new will happen until the compare changes
    if ticks > (1 << 58):
        return NEVER
    return ticks * INSNS_PER_TICK


@njit_generic
def next_timer_deadline(csr, st) -> int:
    """The mtime at which the next timer interrupt the hart has enabled in mie comes:
    mtimecmp's (MTIE) or, with Sstc enabled, stimecmp's (STIE); -1 for none. A hart
    waiting in WFI with nothing else to wake it may skip ahead to it."""
    deadline = -1
    if csr[MIE] & MIP_MTIP and st[MTIMECMP] >= 0:
        deadline = st[MTIMECMP]
    if csr[MIE] & MIP_STIP and csr[MENVCFG] & MENVCFG_STCE and csr[STIMECMP] >= 0:
        if deadline < 0 or csr[STIMECMP] < deadline:
            deadline = csr[STIMECMP]
    return deadline
