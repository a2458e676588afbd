"""The instructions the hot loop hands off: atomics (A), CSR access (Zicsr), fence.i and the
privileged instructions.

They are rare in running code, so they live in their own compiled function rather than in
the hot loop: that keeps the loop small enough for the compiler to hold its working values in
registers, and it compiles separately.
"""

import numpy as np

from ..mmu.pmp import pmp_rules
from ..mmu.tlb import tlb_flush, tlb_forget_page
from .bits import sext
from .csr import accessible, csr_read, csr_write
from .isa import BY_OP, CACHE_BLOCK, Op, ops_where
from .jit import njit_generic
from .memory import WATCHED, amo_offset, load, read_ram, write_ram
from .ops import ltu
from .state import (
    CAUSE_BREAKPOINT,
    CAUSE_ECALL_U,
    CAUSE_ILLEGAL,
    CAUSE_LOAD_ACCESS,
    CAUSE_LOAD_MISALIGNED,
    CAUSE_STORE_MISALIGNED,
    ENVCFG_CBCFE,
    ENVCFG_CBIE,
    ENVCFG_CBZE,
    EXIT_DEBUG,
    EXIT_MARK,
    EXIT_WFI,
    INSTRET,
    MARK_MAIN,
    MENVCFG,
    MIE,
    MMIO,
    MSTATUS,
    MSTATUS_MPP,
    MSTATUS_TSR,
    MSTATUS_TVM,
    MSTATUS_TW,
    OK,
    PC,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    PROF_CSR_READS,
    PROF_CSR_WRITES,
    PROF_FENCE_I,
    PROF_SFENCE,
    PROF_TLB_FLUSHES,
    RESERVATION,
    RESERVED_VALUE,
    SENVCFG,
)
from .trap import mret, pending_interrupts, sret, take_trap

ATOMICS = ops_where(lambda r: r.ext == "a")
CSR_OPS = ops_where(lambda r: r.ext == "zicsr")
CACHE_BLOCK_OPS = ops_where(lambda r: r.ext in ("zicbom", "zicboz"))
# By op: the access size of an atomic (0: not an atomic), and whether a CSR instruction's
# source is its rs1 field itself (the immediate forms) rather than x[rs1].
ATOMIC_SIZE = np.zeros(len(Op), dtype=np.int64)
IS_CSR = np.zeros(len(Op), dtype=np.int64)
IS_CACHE_BLOCK_OP = np.zeros(len(Op), dtype=np.int64)
CSR_SOURCE_IMMEDIATE = np.zeros(len(Op), dtype=np.int64)
for _op in ATOMICS:
    ATOMIC_SIZE[_op] = 4 if BY_OP[_op].name.endswith("_w") else 8
for _op in CACHE_BLOCK_OPS:
    IS_CACHE_BLOCK_OP[_op] = 1
for _op in CSR_OPS:
    IS_CSR[_op] = 1
    CSR_SOURCE_IMMEDIATE[_op] = BY_OP[_op].name.endswith("i")

# What the hot loop does after execute_system (an exit code EXIT_* is returned as is).
NEXT = -1  # go on at the returned pc
NEW_STRETCH = -2  # go on at the returned pc, after re-checking interrupts
TRAPPED = -3  # the instruction trapped: the returned pc is the handler's


@njit_generic
def amo(op: int, old: int, src: int) -> int:
    """The value an AMO writes back, computed on sign-extended operands."""
    if op == Op.AMOSWAP_W or op == Op.AMOSWAP_D:
        return src
    if op == Op.AMOADD_W or op == Op.AMOADD_D:
        return old + src
    if op == Op.AMOXOR_W or op == Op.AMOXOR_D:
        return old ^ src
    if op == Op.AMOAND_W or op == Op.AMOAND_D:
        return old & src
    if op == Op.AMOOR_W or op == Op.AMOOR_D:
        return old | src
    if op == Op.AMOMIN_W or op == Op.AMOMIN_D:
        return min(old, src)
    if op == Op.AMOMAX_W or op == Op.AMOMAX_D:
        return max(old, src)
    if op == Op.AMOMINU_W or op == Op.AMOMINU_D:
        return old if ltu(old, src) else src
    return src if ltu(old, src) else old  # AMOMAXU


@njit_generic
def execute_atomic(op, rd, rs1, rs2, pc, next_pc, x, csr, st, mem, tlb, pagef, dc, instret):
    """LR, SC and the AMOs: (pc, NEXT) or (handler, TRAPPED)."""
    size = ATOMIC_SIZE[op]
    word = size == 4
    addr = x[rs1]
    is_lr = op == Op.LR_W or op == Op.LR_D
    if addr & (size - 1):
        cause = CAUSE_LOAD_MISALIGNED if is_lr else CAUSE_STORE_MISALIGNED
        return take_trap(pc, cause, addr, False, csr, st, tlb), TRAPPED
    if is_lr:
        value, status = load(addr, size, mem, tlb, csr, st, instret, True)
        if status != OK:
            if status == MMIO:
                status = CAUSE_LOAD_ACCESS  # no reservations on devices
            return take_trap(pc, status, addr, False, csr, st, tlb), TRAPPED
        st[RESERVATION] = addr
        st[RESERVED_VALUE] = value
        x[rd] = sext(value, 32) if word else value
        return next_pc, NEXT
    off, status = amo_offset(addr, size, mem, tlb, pagef, dc, csr, st)
    if status == WATCHED:
        return watch_stop(pc, st, instret)
    if status != OK:
        return take_trap(pc, status, addr, False, csr, st, tlb), TRAPPED
    if op == Op.SC_W or op == Op.SC_D:
        # As QEMU does: SC succeeds if the reservation's address matches and memory still
        # holds the value LR read (a compare-and-swap).
        reserved = st[RESERVATION] == addr
        if reserved and read_ram(mem, off, size) == st[RESERVED_VALUE]:
            write_ram(mem, off, size, x[rs2])
            x[rd] = 0
        else:
            x[rd] = 1
        st[RESERVATION] = -1
        return next_pc, NEXT
    old = read_ram(mem, off, size)
    src = x[rs2]
    if word:
        old = sext(old, 32)
        src = sext(src, 32)
    write_ram(mem, off, size, amo(op, old, src))
    x[rd] = old
    return next_pc, NEXT


@njit_generic
def watch_stop(pc: int, st, instret: int) -> tuple[int, int]:
    """Stop before a store that would hit a watchpoint: an exit with pc at the store."""
    st[PC] = pc
    st[INSTRET] = instret
    return pc, EXIT_DEBUG


@njit_generic
def cbo_allowed(field: int, csr, st) -> bool:
    """Whether this privilege may run a cache-block operation (envcfg fields, as QEMU)."""
    priv = st[PRIV]
    if priv != PRIV_M and (csr[MENVCFG] & field) == 0:
        return False
    return priv != PRIV_U or (csr[SENVCFG] & field) != 0


@njit_generic
def execute_cbo(op, rs1, raw, pc, next_pc, x, csr, st, mem, tlb, pagef, dc, instret):
    """CBO.ZERO zeroes a cache block; CBO.CLEAN/FLUSH/INVAL have no cache to act on
    here, so they only check that the address may be read or written, as QEMU does."""
    field = ENVCFG_CBIE if op == Op.CBO_INVAL else ENVCFG_CBCFE
    if op == Op.CBO_ZERO:
        field = ENVCFG_CBZE
    if not cbo_allowed(field, csr, st):
        return take_trap(pc, CAUSE_ILLEGAL, raw, False, csr, st, tlb), TRAPPED
    addr = x[rs1]
    if op == Op.CBO_ZERO:
        addr &= ~(CACHE_BLOCK - 1)
        off, status = amo_offset(addr, CACHE_BLOCK, mem, tlb, pagef, dc, csr, st)
        if status == WATCHED:
            return watch_stop(pc, st, instret)
        if status != OK:
            return take_trap(pc, status, addr, False, csr, st, tlb), TRAPPED
        for k in range(0, CACHE_BLOCK, 8):
            write_ram(mem, off + k, 8, 0)
        return next_pc, NEXT
    _, status = load(addr, 1, mem, tlb, csr, st, instret, True)
    if status != OK and status != MMIO:
        _, status = amo_offset(addr, 1, mem, tlb, pagef, dc, csr, st)
        if status != OK and status != WATCHED:  # (a clean or flush writes nothing)
            return take_trap(pc, status, addr, False, csr, st, tlb), TRAPPED
    return next_pc, NEXT


@njit_generic
def execute_system(
    op, rd, rs1, rs2, imm, raw, pc, next_pc, x, csr, st, mem, tlb, pagef, dc, instret
):
    """Execute one handed-off instruction: (pc to go on at, NEXT / NEW_STRETCH / TRAPPED),
    or (pc, EXIT_*) when the hart must return to Python (st's PC and INSTRET are set)."""
    illegal = CAUSE_ILLEGAL
    if ATOMIC_SIZE[op] != 0:
        return execute_atomic(
            op, rd, rs1, rs2, pc, next_pc, x, csr, st, mem, tlb, pagef, dc, instret
        )
    priv = st[PRIV]
    if IS_CSR[op]:
        source = rs1 if CSR_SOURCE_IMMEDIATE[op] else x[rs1]
        writes = op == Op.CSRRW or op == Op.CSRRWI or rs1 != 0
        if not accessible(imm, csr, st, writes):
            return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED
        old = csr_read(imm, csr, st, instret)
        if not writes:
            st[PROF_CSR_READS] += 1
            x[rd] = old
            return next_pc, NEXT
        st[PROF_CSR_WRITES] += 1
        if op == Op.CSRRW or op == Op.CSRRWI:
            new = source
        elif op == Op.CSRRS or op == Op.CSRRSI:
            new = old | source
        else:
            new = old & ~source
        csr_write(imm, new, csr, st, tlb, instret)
        x[rd] = old
        return next_pc, NEW_STRETCH  # the write may enable an interrupt or change paging
    if op == Op.FENCE:
        return next_pc, NEXT
    if IS_CACHE_BLOCK_OP[op]:
        return execute_cbo(op, rs1, raw, pc, next_pc, x, csr, st, mem, tlb, pagef, dc, instret)
    if op == Op.FENCE_I:
        # Nothing to do: decoded instructions (and compiled regions) never go stale, as
        # every store to a page holding code, the hart's or a device's, forgets what it
        # overwrote. Flushing the whole cache here cost Linux's boot a fifth of its time
        # (it runs fence.i after each jump-label patch and executable page it maps).
        st[PROF_FENCE_I] += 1
        return next_pc, NEXT
    if op == Op.ECALL:
        return take_trap(pc, CAUSE_ECALL_U + priv, 0, False, csr, st, tlb), TRAPPED
    if op == Op.EBREAK:
        return take_trap(pc, CAUSE_BREAKPOINT, pc, False, csr, st, tlb), TRAPPED
    if op == Op.MRET:
        if priv != PRIV_M:
            return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED
        # As QEMU (helper_mret): going to S or U with no PMP rule is an illegal instruction,
        # where the lower privilege could not reach memory anyway.
        if csr[MSTATUS] & MSTATUS_MPP != MSTATUS_MPP and pmp_rules(csr) == 0:
            return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED
        return mret(csr, st, tlb), NEW_STRETCH
    if op == Op.SRET:
        if priv == PRIV_U or (priv == PRIV_S and csr[MSTATUS] & MSTATUS_TSR):
            return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED
        return sret(csr, st, tlb), NEW_STRETCH
    if op == Op.WFI:
        if priv == PRIV_U or (priv == PRIV_S and csr[MSTATUS] & MSTATUS_TW):
            return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED
        if (pending_interrupts(csr, st, instret) & csr[MIE]) == 0:
            st[PC] = next_pc
            st[INSTRET] = instret + 1
            return next_pc, EXIT_WFI
        return next_pc, NEXT
    if op == Op.SFENCE_VMA:
        if priv == PRIV_U or (priv == PRIV_S and csr[MSTATUS] & MSTATUS_TVM):
            return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED
        st[PROF_SFENCE] += 1
        if rs1 != 0:  # one address (of any address space: the TLB holds no ASIDs)
            tlb_forget_page(tlb, x[rs1])
        else:
            st[PROF_TLB_FLUSHES] += 1
            tlb_flush(tlb)
        return next_pc, NEW_STRETCH  # translations changed
    if op == Op.MARK_MAIN:
        st[MARK_MAIN] = instret
        st[PC] = next_pc
        st[INSTRET] = instret + 1
        return next_pc, EXIT_MARK
    return take_trap(pc, illegal, raw, False, csr, st, tlb), TRAPPED  # ILLEGAL
