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
from ..mmu.tlb import tlb_slot
from .aside import INDEX, caller
from .bits import sext
from .decode import available, decode, rs3_rm_field
from .execute_gen import HANDOFF
from .fp_exec import _generated, execute_fp
from .fp_state import NOT_LOADED
from .isa import BY_OP, FP, LOAD, Op
from .jit import njit_generic
from .layout import (
    DC_IMM,
    DC_MASK,
    DC_OP,
    DC_RAW,
    DC_RD,
    DC_RS1,
    DC_RS2,
    DC_RS3RM,
    DC_TAG,
    DELTA,
    INVALID,
    PAGE_REGION,
    TAG,
)
from .memory import SLOW, WATCHED, dc_slot, fetch_page, mark_code
from .ops import fp_load_value
from .region_abi import LEFT_BEFORE, LEFT_JUMP, UNTRANSLATED
from .region_call import call_region
from .state import (
    ACCESS_FETCH,
    ACCESS_LOAD,
    BREAK_SKIP,
    BREAKPOINTS,
    CAUSE_ILLEGAL,
    CAUSE_LOAD_ACCESS,
    CAUSE_STORE_ACCESS,
    DEBUG,
    DEBUG_BREAK,
    DEBUG_NOIRQ,
    DEBUG_STEP,
    EXIT_BUDGET,
    EXIT_DEBUG,
    EXIT_HOT,
    EXIT_LIBRARY,
    EXIT_MMIO,
    EXIT_MODE,
    EXIT_TOHOST,
    EXTENSIONS,
    HOT_OFF,
    HOT_PC,
    HOT_THRESHOLD,
    INSTRET,
    MAX_BREAKPOINTS,
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
from .system import NEW_STRETCH, NEXT, TRAPPED
from .trap import (
    instret_when_timer_fires,
    interrupt_to_take,
    take_trap,
)

execute = _generated.execute  # the generated dispatch (execute_gen.py)
alu_compute = _generated.alu_compute
# The loop calls these by address (aside.py), from its `aside` array: they are compiled
# apart from it (entry_points.ASIDE).
execute_system_at = caller("execute_system")
ALU_COMPUTE, FP_COMPUTE = INDEX["alu_compute"], INDEX["fp_compute"]
EXECUTE_SYSTEM = INDEX["execute_system"]

# By op: the size of a load (0: not a load), whether it sign-extends, whether it loads an
# f register, and whether it is an F/D computational instruction.
LOAD_SIZE = np.zeros(len(Op), dtype=np.int64)
LOAD_SIGNED = np.zeros(len(Op), dtype=np.int64)
LOAD_FP = np.zeros(len(Op), dtype=np.int64)
IS_FP = np.zeros(len(Op), dtype=np.int64)
for _op, _r in BY_OP.items():
    if _r.kind == LOAD:
        LOAD_SIZE[_op], LOAD_SIGNED[_op], LOAD_FP[_op] = _r.size, _r.signed, _r.fp_data
    IS_FP[_op] = _r.kind == FP
IS_LOAD = (LOAD_SIZE != 0).astype(np.int64)  # a device access that is a read


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
    size = LOAD_SIZE[op]
    if LOAD_FP[op]:
        f[rd] = fp_load_value(value, size)
    elif size != 0:
        x[rd] = sext(value, 8 * size) if LOAD_SIGNED[op] and size < 8 else value
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
    # than the instructions themselves. nogil: the threads that talk to the compile
    # worker (tier2/worker.py) run meanwhile.
    @njit(cache=True, _nrt=False, nogil=True)
    def run(
        x,
        f,
        csr,
        st,
        ram8,
        ram16,
        ram32,
        ram64,
        tlb,
        dc,
        pagef,
        hot,
        entries,
        entry_pc,
        aside,
        budget,
    ):
        mem = (ram8, ram16, ram32, ram64)
        alu_compute_at = aside[ALU_COMPUTE]
        fp_compute_at = aside[FP_COMPUTE]
        execute_system_address = aside[EXECUTE_SYSTEM]
        pc = st[PC]
        instret = st[INSTRET]
        end = instret + budget
        stretch_start = -1
        idle_stretches = 0
        resume = False  # the instruction at pc is one a region stopped before
        # A debugger's hold (Hart.stepping, .breakpoints, .watchpoints): compiled regions
        # are not entered, and with DEBUG_STEP one instruction, trap or interrupt is a run.
        debugging = st[DEBUG] != 0
        stepping = (st[DEBUG] & DEBUG_STEP) != 0
        breaking = (st[DEBUG] & DEBUG_BREAK) != 0
        interrupts = (st[DEBUG] & DEBUG_NOIRQ) == 0
        if st[MMIO_PENDING]:
            pc = finish_mmio(x, f, csr, st, tlb, pc)
            instret = st[INSTRET]
            if stepping:
                end = instret

        while instret < end:
            if stepping and stretch_start != -1:
                break  # the stretch before ended in a trap
            # Stretches that retire nothing, many in a row (a trap whose handler traps again),
            # use up the budget too, so a trap storm cannot keep the core from returning.
            if instret == stretch_start:
                idle_stretches += 1
                if idle_stretches > 16:
                    end -= 1
            else:
                idle_stretches = 0
            stretch_start = instret
            resume = False
            # --- between stretches: exits that stores asked for, then interrupts
            if st[TOHOST_HIT]:
                st[TOHOST_HIT] = 0
                st[PC] = pc
                st[INSTRET] = instret
                return EXIT_TOHOST
            irq = interrupt_to_take(csr, st, instret) if interrupts else -1
            if irq >= 0:
                pc = take_trap(pc, irq, 0, True, csr, st, tlb)
                if stepping:
                    break
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
                if breaking and at_breakpoint(pc, st):
                    if pc != st[BREAK_SKIP]:
                        st[PC] = pc
                        st[INSTRET] = instret
                        return EXIT_DEBUG
                    st[BREAK_SKIP] = -1  # resumed at this breakpoint: run it once
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
                rs3_rm = dc[d + DC_RS3RM]
                if op == Op.REGION:  # compiled code starts here (rvemu.tier2)
                    # (compiled for this mode: translated code at this very virtual pc)
                    if entry_pc[d >> 3] == (pc if paged else UNTRANSLATED) and not debugging:
                        region = entries[d >> 3]
                        budget_left = limit - instret
                        st[INSTRET] = instret  # (counter reads in regions count from it)
                        region_pc = call_region(
                            region,
                            x,
                            f,
                            csr,
                            ram8,
                            pagef,
                            tlb,
                            st,
                            dc,
                            entries,
                            entry_pc,
                            budget_left,
                        )
                        if st[REGION_RETIRED] > 0:
                            instret += st[REGION_RETIRED]
                            left = st[REGION_JUMPED]
                            if left == LEFT_JUMP:
                                target = code_offset(region_pc, pc, fetch_delta, tlb, paged)
                                if jumped_to(target, hot, st):
                                    return hot_exit(st, region_pc, target, instret)
                            resume = left == LEFT_BEFORE
                            pc = region_pc
                            continue
                    elif hot[d >> 3] < 0:
                        # Compiled for the other mode or another virtual pc (code run before
                        # and after paging is on): count jumps here again, to compile it
                        # for this one too.
                        hot[d >> 3] = 0
                    # It could not start: interpret the instruction. (The slot's rs3/rm field
                    # holds the op under the mark; F/D operations read theirs from the bits.)
                    op = rs3_rm
                    rs3_rm = rs3_rm_field(dc[d + DC_RAW] >> 3)
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

                # --- execute: the dispatch generated from isa.py's records
                next_pc, status, addr = execute(
                    op,
                    rd,
                    rs1,
                    rs2,
                    imm,
                    pc,
                    next_pc,
                    x,
                    f,
                    mem,
                    tlb,
                    pagef,
                    dc,
                    csr,
                    st,
                    instret,
                    paged,
                    alu_compute_at,
                )
                if status == HANDOFF:
                    status = OK
                    if IS_FP[op]:
                        status = execute_fp(op, rd, rs1, rs2, rs3_rm, x, f, csr, fp_compute_at)
                        if status == NOT_LOADED:  # Python loads it, and we come back here
                            st[PC] = pc
                            st[INSTRET] = instret
                            return EXIT_LIBRARY
                        if status != OK:
                            raw = dc[d + DC_RAW] >> 3
                            pc = take_trap(pc, status, raw, False, csr, st, tlb)
                            break
                    else:  # atomics, CSRs, fences, privileged, the boot mark, illegal
                        next_pc, action = execute_system_at(
                            execute_system_address,
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
                    # A region stops before what it cannot do (an atomic, a CSR access...):
                    # the code after it is where one can go on, so it counts as a jump
                    # target does, and becomes a region of its own when it gets hot. Only
                    # on a page with no region yet: where there is one, a region that
                    # stops says so (`resume`). (Counting after every F/D operation there
                    # too left each pc of a compiled FP loop one short of hot, and every
                    # interpreted pass after a budget's end compiled one more region per
                    # instruction: 29 for nbody's one loop.)
                    if next_pc == pc + length and pagef[off >> 12] & PAGE_REGION == 0:
                        target = code_offset(next_pc, pc, fetch_delta, tlb, paged)
                        if jumped_to(target, hot, st):
                            return hot_exit(st, next_pc, target, instret + 1)

                if status != OK:  # a load or store that did not simply complete
                    if status == SLOW:
                        limit = instret + 1  # re-check interrupts and exits after this one
                    elif status == MMIO:
                        return mmio_exit(st, pc, instret, op, rd, addr, length)
                    elif status == WATCHED:  # stop before the store (as QEMU for GDB)
                        st[PC] = pc
                        st[INSTRET] = instret
                        return EXIT_DEBUG
                    else:  # a trap (an FP load or store with FS off is illegal)
                        tval = (
                            dc[d + DC_RAW] >> 3
                            if status == CAUSE_ILLEGAL
                            else fault_address(st, addr)
                        )
                        pc = take_trap(pc, status, tval, False, csr, st, tlb)
                        break
                # A taken jump, or the instruction a region stopped before: count the pc
                # that follows towards compiling a region there.
                if next_pc != pc + length or resume:
                    target = code_offset(next_pc, pc, fetch_delta, tlb, paged)
                    if jumped_to(target, hot, st):
                        return hot_exit(st, next_pc, target, instret + 1)
                    resume = False
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


@njit_generic
def at_breakpoint(pc: int, st) -> bool:
    for i in range(BREAKPOINTS, BREAKPOINTS + MAX_BREAKPOINTS):
        if st[i] == pc:
            return True
        if st[i] == -1:
            return False
    return False


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
    if not available(op, st[EXTENSIONS]):  # an extension turned off (--cpu)
        op = Op.ILLEGAL
    if tag >= 0:
        mark_code(dc, off, length)  # stores there must now forget it (memory.note_store)
    dc[d + DC_TAG] = tag
    dc[d + DC_OP] = op
    dc[d + DC_RD] = rd
    dc[d + DC_RS1] = rs1
    dc[d + DC_RS2] = rs2
    dc[d + DC_RS3RM] = rs3_rm
    dc[d + DC_IMM] = imm
    dc[d + DC_RAW] = (raw << 3) | length
    return OK
