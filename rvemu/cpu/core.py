"""The compiled hart: fetch, decode (through the decoded-instruction cache) and execute.

`run` executes guest instructions until it has retired `budget` of them or must leave
(an exit): a device access for Python's device model, WFI with nothing pending, a write to
tohost, a boot-latency mark. Interrupts are checked only where one can become pending:
before each stretch of instructions, when the CLINT timer is due, and after instructions
that change interrupt state (CSR writes, xRET, stores through the slow path).
"""

import numpy as np
from numba import njit

from ..mmu.sv import SATP_MODE_BARE, effective_priv, pmp_may_deny
from ..mmu.tlb import DELTA, INVALID, TAG, tlb_slot
from ..tier2.call import call_region
from ..tier2.compiler import UNTRANSLATED
from .alu import div, divu, divuw, divw, ltu, mulh, mulhsu, mulhu, rem, remu, remuw, remw, srl
from .bits import sext
from .decode import decode
from .fp_exec import execute_fp, fp_load_store
from .isa import Op
from .jit import njit_generic
from .memory import (
    DC_IMM,
    DC_MASK,
    DC_OP,
    DC_RAW,
    DC_RD,
    DC_RS1,
    DC_RS2,
    DC_RS3RM,
    DC_TAG,
    SLOW,
    dc_slot,
    fetch_page,
    load,
    store,
)
from .state import (
    ACCESS_FETCH,
    ACCESS_LOAD,
    CAUSE_ILLEGAL,
    CAUSE_LOAD_ACCESS,
    CAUSE_STORE_ACCESS,
    EXIT_BUDGET,
    EXIT_HOT,
    EXIT_MMIO,
    EXIT_MODE,
    EXIT_TOHOST,
    HOT_OFF,
    HOT_PC,
    HOT_THRESHOLD,
    INSTRET,
    MMIO,
    MMIO_FAULT,
    MMIO_LEN,
    MMIO_OP,
    MMIO_PENDING,
    MMIO_RD,
    MMIO_VADDR,
    MMIO_VALUE,
    OK,
    PC,
    PRIV,
    PRIV_M,
    RAM_BASE,
    REGION_JUMPED,
    REGION_RETIRED,
    SATP,
    SECOND_PAGE_FAULT,
    TOHOST_HIT,
)
from .system import NEW_STRETCH, NEXT, TRAPPED, execute_system
from .trap import (
    instret_when_timer_fires,
    interrupt_to_take,
    take_trap,
)

# Integer loads: size in bytes and whether the value is sign-extended, by op (used to
# complete a load that a device served; the executor has one case per load).
LOAD_SIZE = np.zeros(len(Op), dtype=np.int64)
LOAD_SIGNED = np.zeros(len(Op), dtype=np.int64)
for _op, _size, _signed in (
    (Op.LB, 1, 1),
    (Op.LH, 2, 1),
    (Op.LW, 4, 1),
    (Op.LD, 8, 0),
    (Op.LBU, 1, 0),
    (Op.LHU, 2, 0),
    (Op.LWU, 4, 0),
):
    LOAD_SIZE[_op] = _size
    LOAD_SIGNED[_op] = _signed
# Ops whose device access is a read (integer and FP loads).
IS_LOAD = (LOAD_SIZE != 0).astype(np.int64)
IS_LOAD[Op.FLW] = IS_LOAD[Op.FLD] = 1

FIRST_FP_OP = Op.FLW  # every op from here on belongs to F or D


@njit_generic
def finish_mmio(x, f, csr, st, tlb, pc: int) -> int:
    """Complete the device access Python performed for us; returns the next pc."""
    st[MMIO_PENDING] = 0
    op = st[MMIO_OP]
    if st[MMIO_FAULT]:
        st[MMIO_FAULT] = 0
        cause = CAUSE_LOAD_ACCESS if IS_LOAD[op] else CAUSE_STORE_ACCESS
        return take_trap(pc, cause, st[MMIO_VADDR], False, csr, st, tlb)
    value = st[MMIO_VALUE]
    rd = st[MMIO_RD]
    if LOAD_SIZE[op] != 0:
        size = LOAD_SIZE[op]
        x[rd] = sext(value, 8 * size) if LOAD_SIGNED[op] and size < 8 else value
    elif op == Op.FLW:
        f[rd] = value | -(1 << 32)
    elif op == Op.FLD:
        f[rd] = value
    st[INSTRET] += 1
    return pc + st[MMIO_LEN]


def compile_run(paged: bool):  # noqa: ANN201 (returns a Numba dispatcher)
    """The hart's loop, as one compiled copy per translation mode. With translation off
    (paged=False: M-mode, or satp Bare) a guest address's RAM offset is address - RAM_BASE,
    and that copy fetches with no page check and reaches RAM directly for loads and stores;
    the other copy goes through the TLBs and keeps the executing page's translation.
    A stretch that finds the hart in the other mode returns EXIT_MODE."""

    # No reference counting inside the hot loop: every array here is owned by the Hart,
    # which outlives the call, and Numba's per-call increments of array counts cost more
    # than the instructions themselves.
    @njit(cache=True, _nrt=False)
    def run(
        x, f, csr, st, ram8, ram16, ram32, ram64, tlb, dc, pagef, hot, entries, entry_pc, budget
    ):
        mem = (ram8, ram16, ram32, ram64)
        pc = st[PC]
        instret = st[INSTRET]
        end = instret + budget
        stretch_start = -1
        idle_stretches = 0
        if st[MMIO_PENDING]:
            pc = finish_mmio(x, f, csr, st, tlb, pc)
            instret = st[INSTRET]

        while instret < end:
            # Stretches that retire nothing, many in a row (a trap whose handler traps again),
            # use up the budget too, so a trap storm cannot keep the core from returning.
            if instret == stretch_start:
                idle_stretches += 1
                if idle_stretches > 16:
                    end -= 1
            else:
                idle_stretches = 0
            stretch_start = instret
            # --- between stretches: exits that stores asked for, then interrupts
            if st[TOHOST_HIT]:
                st[TOHOST_HIT] = 0
                st[PC] = pc
                st[INSTRET] = instret
                return EXIT_TOHOST
            irq = interrupt_to_take(csr, st, instret)
            if irq >= 0:
                pc = take_trap(pc, irq, 0, True, csr, st, tlb)
            if translates(csr, st) != paged:
                st[PC] = pc
                st[INSTRET] = instret
                return EXIT_MODE
            limit = min(end, max(instret + 1, instret_when_timer_fires(csr, st, instret)))
            # The page being executed, kept out of memory for the stretch. Anything that can
            # change translations (traps, CSR writes, xRET, sfence.vma) ends the stretch.
            fetch_vpn = INVALID
            fetch_delta = 0 if paged else -st[RAM_BASE]

            while instret < limit:
                # --- fetch
                if paged:
                    vpn = pc >> 12
                    if vpn == fetch_vpn:
                        off = fetch_delta + pc
                    else:
                        t = tlb_slot(ACCESS_FETCH, vpn)
                        if tlb[t + TAG] != vpn:
                            _, status = fetch_page(pc, mem, tlb, pagef, csr, st)
                            if status != OK:
                                pc = take_trap(pc, status, pc, False, csr, st, tlb)
                                break
                        fetch_vpn = vpn
                        fetch_delta = tlb[t + DELTA]
                        off = fetch_delta + pc
                else:
                    off = fetch_delta + pc
                d = dc_slot(off)
                if dc[d + DC_TAG] != off:
                    if not paged:  # is pc in RAM? (and mark its page as holding code)
                        _, status = fetch_page(pc, mem, tlb, pagef, csr, st)
                        if status != OK:
                            pc = take_trap(pc, status, pc, False, csr, st, tlb)
                            break
                    status = fill_decoded(pc, off, d, mem, tlb, pagef, dc, csr, st)
                    if status != OK:
                        pc = take_trap(pc, status, pc + 2, False, csr, st, tlb)
                        break
                    hot[d >> 3] = 0  # new code in the slot: count jumps to it afresh
                op = dc[d + DC_OP]
                if op == Op.REGION:  # compiled code starts here (rvemu.tier2)
                    # (compiled for this mode: translated code at this very virtual pc)
                    if entry_pc[d >> 3] == (pc if paged else UNTRANSLATED):
                        region = entries[d >> 3]
                        budget_left = limit - instret
                        region_pc = call_region(
                            region, x, f, csr, ram8, pagef, tlb, st, budget_left
                        )
                        if st[REGION_RETIRED] > 0:
                            instret += st[REGION_RETIRED]
                            if st[REGION_JUMPED]:
                                target = code_offset(region_pc, pc, fetch_delta, tlb, paged)
                                if jumped_to(target, hot, st):
                                    return hot_exit(st, region_pc, target, instret)
                            pc = region_pc
                            continue
                    elif hot[d >> 3] < 0:
                        # Compiled for the other mode or another virtual pc (code run before
                        # and after paging is on): count jumps here again, to compile it
                        # for this one too.
                        hot[d >> 3] = 0
                    op = dc[d + DC_RS3RM]  # it could not start: interpret the instruction
                # The masks change nothing (rs1, rs2 < 32; rd < 33) but let the compiler
                # see the indices are not negative, which drops a check from every x[] access.
                rd = dc[d + DC_RD] & 63
                rs1 = dc[d + DC_RS1] & 31
                rs2 = dc[d + DC_RS2] & 31
                imm = dc[d + DC_IMM]
                length = dc[d + DC_RAW] & 7
                next_pc = pc + length
                status = OK
                addr = 0

                # --- execute: one line per instruction where the spec's semantics are one line
                if op == Op.ADDI:
                    x[rd] = x[rs1] + imm
                elif op == Op.ADD:
                    x[rd] = x[rs1] + x[rs2]
                elif op == Op.LUI:
                    x[rd] = imm
                elif op == Op.AUIPC:
                    x[rd] = pc + imm
                elif op == Op.JAL:
                    x[rd] = next_pc
                    next_pc = pc + imm
                elif op == Op.JALR:
                    target = (x[rs1] + imm) & ~1
                    x[rd] = next_pc
                    next_pc = target
                elif op == Op.BEQ:
                    if x[rs1] == x[rs2]:
                        next_pc = pc + imm
                elif op == Op.BNE:
                    if x[rs1] != x[rs2]:
                        next_pc = pc + imm
                elif op == Op.BLT:
                    if x[rs1] < x[rs2]:
                        next_pc = pc + imm
                elif op == Op.BGE:
                    if x[rs1] >= x[rs2]:
                        next_pc = pc + imm
                elif op == Op.BLTU:
                    if ltu(x[rs1], x[rs2]):
                        next_pc = pc + imm
                elif op == Op.BGEU:
                    if not ltu(x[rs1], x[rs2]):
                        next_pc = pc + imm
                # loads and stores: x[rs1] status other than OK is dealt with after the chain
                elif op == Op.LD:
                    addr = x[rs1] + imm
                    value, status = load(addr, 8, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = value
                elif op == Op.LW:
                    addr = x[rs1] + imm
                    value, status = load(addr, 4, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = sext(value, 32)
                elif op == Op.LWU:
                    addr = x[rs1] + imm
                    value, status = load(addr, 4, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = value
                elif op == Op.LH:
                    addr = x[rs1] + imm
                    value, status = load(addr, 2, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = sext(value, 16)
                elif op == Op.LHU:
                    addr = x[rs1] + imm
                    value, status = load(addr, 2, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = value
                elif op == Op.LB:
                    addr = x[rs1] + imm
                    value, status = load(addr, 1, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = sext(value, 8)
                elif op == Op.LBU:
                    addr = x[rs1] + imm
                    value, status = load(addr, 1, mem, tlb, csr, st, instret, paged)
                    if status == OK:
                        x[rd] = value
                elif op == Op.SD:
                    addr = x[rs1] + imm
                    status = store(addr, 8, x[rs2], mem, tlb, pagef, dc, csr, st, instret, paged)
                elif op == Op.SW:
                    addr = x[rs1] + imm
                    status = store(addr, 4, x[rs2], mem, tlb, pagef, dc, csr, st, instret, paged)
                elif op == Op.SH:
                    addr = x[rs1] + imm
                    status = store(addr, 2, x[rs2], mem, tlb, pagef, dc, csr, st, instret, paged)
                elif op == Op.SB:
                    addr = x[rs1] + imm
                    status = store(addr, 1, x[rs2], mem, tlb, pagef, dc, csr, st, instret, paged)
                elif op == Op.SLTI:
                    x[rd] = 1 if x[rs1] < imm else 0
                elif op == Op.SLTIU:
                    x[rd] = 1 if ltu(x[rs1], imm) else 0
                elif op == Op.XORI:
                    x[rd] = x[rs1] ^ imm
                elif op == Op.ORI:
                    x[rd] = x[rs1] | imm
                elif op == Op.ANDI:
                    x[rd] = x[rs1] & imm
                elif op == Op.SLLI:
                    x[rd] = x[rs1] << imm
                elif op == Op.SRLI:
                    x[rd] = srl(x[rs1], imm)
                elif op == Op.SRAI:
                    x[rd] = x[rs1] >> imm
                elif op == Op.SUB:
                    x[rd] = x[rs1] - x[rs2]
                elif op == Op.SLL:
                    x[rd] = x[rs1] << (x[rs2] & 63)
                elif op == Op.SLT:
                    x[rd] = 1 if x[rs1] < x[rs2] else 0
                elif op == Op.SLTU:
                    x[rd] = 1 if ltu(x[rs1], x[rs2]) else 0
                elif op == Op.XOR:
                    x[rd] = x[rs1] ^ x[rs2]
                elif op == Op.SRL:
                    x[rd] = srl(x[rs1], x[rs2] & 63)
                elif op == Op.SRA:
                    x[rd] = x[rs1] >> (x[rs2] & 63)
                elif op == Op.OR:
                    x[rd] = x[rs1] | x[rs2]
                elif op == Op.AND:
                    x[rd] = x[rs1] & x[rs2]
                elif op == Op.ADDIW:
                    x[rd] = sext(x[rs1] + imm, 32)
                elif op == Op.SLLIW:
                    x[rd] = sext(x[rs1] << imm, 32)
                elif op == Op.SRLIW:
                    x[rd] = sext(srl(x[rs1] & 0xFFFFFFFF, imm), 32)
                elif op == Op.SRAIW:
                    x[rd] = sext(x[rs1], 32) >> imm
                elif op == Op.ADDW:
                    x[rd] = sext(x[rs1] + x[rs2], 32)
                elif op == Op.SUBW:
                    x[rd] = sext(x[rs1] - x[rs2], 32)
                elif op == Op.SLLW:
                    x[rd] = sext(x[rs1] << (x[rs2] & 31), 32)
                elif op == Op.SRLW:
                    x[rd] = sext(srl(x[rs1] & 0xFFFFFFFF, x[rs2] & 31), 32)
                elif op == Op.SRAW:
                    x[rd] = sext(x[rs1], 32) >> (x[rs2] & 31)
                elif op == Op.MUL:
                    x[rd] = x[rs1] * x[rs2]
                elif op == Op.MULH:
                    x[rd] = mulh(x[rs1], x[rs2])
                elif op == Op.MULHSU:
                    x[rd] = mulhsu(x[rs1], x[rs2])
                elif op == Op.MULHU:
                    x[rd] = mulhu(x[rs1], x[rs2])
                elif op == Op.DIV:
                    x[rd] = div(x[rs1], x[rs2])
                elif op == Op.DIVU:
                    x[rd] = divu(x[rs1], x[rs2])
                elif op == Op.REM:
                    x[rd] = rem(x[rs1], x[rs2])
                elif op == Op.REMU:
                    x[rd] = remu(x[rs1], x[rs2])
                elif op == Op.MULW:
                    x[rd] = sext(x[rs1] * x[rs2], 32)
                elif op == Op.DIVW:
                    x[rd] = divw(x[rs1], x[rs2])
                elif op == Op.DIVUW:
                    x[rd] = divuw(x[rs1], x[rs2])
                elif op == Op.REMW:
                    x[rd] = remw(x[rs1], x[rs2])
                elif op == Op.REMUW:
                    x[rd] = remuw(x[rs1], x[rs2])
                # --- FP, then everything rarer: past the jump table
                elif op >= FIRST_FP_OP:
                    if op <= Op.FSD:
                        addr = x[rs1] + imm
                        status = fp_load_store(
                            op, rd, rs2, addr, f, mem, tlb, pagef, dc, csr, st, instret, paged
                        )
                        if status == MMIO:
                            return mmio_exit(st, pc, instret, op, rd, addr, length)
                        if status == SLOW:
                            limit = instret + 1
                        elif status != OK:
                            tval = (
                                dc[d + DC_RAW] >> 3
                                if status == CAUSE_ILLEGAL
                                else fault_address(st, addr)
                            )
                            pc = take_trap(pc, status, tval, False, csr, st, tlb)
                            break
                    elif not execute_fp(op, rd, rs1, rs2, dc[d + DC_RS3RM], x, f, csr):
                        raw = dc[d + DC_RAW] >> 3
                        pc = take_trap(pc, CAUSE_ILLEGAL, raw, False, csr, st, tlb)
                        break
                else:  # atomics, CSRs, fences, privileged instructions, the boot mark, illegal
                    next_pc, action = execute_system(
                        op,
                        rd,
                        rs1,
                        rs2,
                        imm,
                        dc[d + DC_RAW] >> 3,
                        pc,
                        next_pc,
                        x,
                        csr,
                        st,
                        mem,
                        tlb,
                        pagef,
                        dc,
                        instret,
                    )
                    if action != NEXT:
                        if action == TRAPPED:
                            pc = next_pc
                            break
                        if action != NEW_STRETCH:
                            return action  # an exit: the hart's pc and instret are saved
                        limit = instret + 1

                if status != OK:  # a load or store that did not simply complete
                    if status == SLOW:
                        limit = instret + 1  # re-check interrupts and exits after this one
                    elif status == MMIO:
                        return mmio_exit(st, pc, instret, op, rd, addr, length)
                    else:
                        pc = take_trap(pc, status, fault_address(st, addr), False, csr, st, tlb)
                        break
                if next_pc != pc + length:  # a taken jump
                    target = code_offset(next_pc, pc, fetch_delta, tlb, paged)
                    if jumped_to(target, hot, st):
                        return hot_exit(st, next_pc, target, instret + 1)
                pc = next_pc
                instret += 1

        st[PC] = pc
        st[INSTRET] = instret
        return EXIT_BUDGET

    return run


run_bare = compile_run(paged=False)
run_paged = compile_run(paged=True)


@njit(cache=True, inline="always")
def translates(csr, st) -> bool:
    """Whether fetches or loads and stores go through Sv39/Sv48: satp is not Bare, and the
    hart is not in M-mode or is in M-mode with MPRV pointing loads and stores lower."""
    if pmp_may_deny(csr, st):
        return True  # the TLB's copy checks PMP (identity-mapped when nothing translates)
    if (csr[SATP] >> 60) & 0xF == SATP_MODE_BARE:
        return False
    return st[PRIV] != PRIV_M or effective_priv(ACCESS_LOAD, csr, st) != PRIV_M


@njit(cache=True, inline="always")
def code_offset(target: int, pc: int, fetch_delta: int, tlb, paged: bool) -> int:
    """The RAM offset of a jump target, from the page being executed (pc's, whose offset
    is pc + fetch_delta) or, translated, the fetch TLB; -1 if that does not know it."""
    if not paged or (target ^ pc) >> 12 == 0:
        return target + fetch_delta
    vpn = target >> 12
    t = tlb_slot(ACCESS_FETCH, vpn)
    return tlb[t + DELTA] + target if tlb[t + TAG] == vpn else -1


@njit(cache=True, inline="always")
def jumped_to(off: int, hot, st) -> bool:
    """Count a taken jump to RAM offset `off` (if known); True when that makes the code
    there hot, for the second tier to compile (counts share the decoded cache's slots)."""
    if off < 0:
        return False
    h = (off >> 1) & DC_MASK
    hot[h] += 1
    return hot[h] == st[HOT_THRESHOLD]


@njit_generic
def hot_exit(st, pc: int, off: int, instret: int) -> int:
    st[PC] = pc
    st[INSTRET] = instret
    st[HOT_PC] = pc
    st[HOT_OFF] = off
    return EXIT_HOT


@njit(cache=True, inline="always")
def fault_address(st, addr: int) -> int:
    """mtval for a faulting load or store at addr: the second page's first byte when a
    misaligned access faulted there (the spec's "portion that faulted"), else addr."""
    second = st[SECOND_PAGE_FAULT]
    if second == -1:
        return addr
    st[SECOND_PAGE_FAULT] = -1
    return second


@njit_generic
def mmio_exit(st, pc: int, instret: int, op: int, rd: int, vaddr: int, length: int) -> int:
    st[MMIO_LEN] = length
    st[MMIO_OP] = op
    st[MMIO_RD] = rd
    st[MMIO_VADDR] = vaddr
    st[MMIO_PENDING] = 1
    st[PC] = pc
    st[INSTRET] = instret
    return EXIT_MMIO


@njit_generic
def fill_decoded(pc: int, off: int, d: int, mem, tlb, pagef, dc, csr, st) -> int:
    """Decode the instruction at pc (RAM offset `off`) into cache slot d; OK or a cause."""
    raw = np.int64(mem[1][off >> 1])
    tag = off
    if raw & 3 == 3:
        if (pc & 0xFFF) == 0xFFE:
            # A 32-bit instruction spanning two pages: fetch its upper half through the
            # next page's translation, and do not cache it (that mapping may change).
            off2, status = fetch_page(pc + 2, mem, tlb, pagef, csr, st)
            if status != OK:
                return status
            raw |= np.int64(mem[1][off2 >> 1]) << 16
            tag = -1
        else:
            raw |= np.int64(mem[1][(off >> 1) + 1]) << 16
    op, rd, rs1, rs2, rs3_rm, imm, length = decode(raw)
    dc[d + DC_TAG] = tag
    dc[d + DC_OP] = op
    dc[d + DC_RD] = rd
    dc[d + DC_RS1] = rs1
    dc[d + DC_RS2] = rs2
    dc[d + DC_RS3RM] = rs3_rm
    dc[d + DC_IMM] = imm
    dc[d + DC_RAW] = (raw << 3) | length
    return OK
