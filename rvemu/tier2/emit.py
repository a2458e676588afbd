"""A region as one LLVM function, each instruction emitted from its record in isa.py.

How it is called (its signature, the context block, and how a region that leaves by a
jump continues into the region at the target) is cpu/region_abi.py's.

What an instruction does comes from its record: ALU results, branch conditions and jump
targets are the record's semantics translated to IR (`translate.py`), F/D operations are
fpu.py's functions translated the same way (their fast paths; a slow path leaves the
region), and loads and stores follow the record's size and sign.
"""

from __future__ import annotations

from functools import cache

from llvmlite import ir

from ..cpu import region_abi as abi
from ..cpu.decode import X_SCRATCH
from ..cpu.execute_gen import semantics_namespace
from ..cpu.fp_state import RM_MAX, dirty, fp_enabled, resolve_rm
from ..cpu.isa import ALU, BRANCH, BY_OP, FP, JUMP, LOAD, STORE, Op, Record
from ..cpu.layout import (
    CODE_MAP,
    DC_MASK,
    DC_OP,
    DC_TAG,
    DELTA,
    GRANULE,
    PAGE_WATCH,
    TAG,
    TLB_ENTRIES,
)
from ..cpu.ops import fp_load_value
from ..cpu.region_abi import UNTRANSLATED
from ..cpu.region_call import SIGNATURE
from ..cpu.state import (
    ACCESS_FETCH,
    ACCESS_LOAD,
    ACCESS_STORE,
    CYCLE,
    CYCLE_DELTA,
    FCSR,
    INSNS_PER_TICK,
    INSTRET,
    INSTRET_CSR,
    INSTRET_DELTA,
    MCOUNTEREN,
    MCYCLE,
    MINSTRET,
    MSTATUS,
    MTIME_BASE,
    PRIV,
    PRIV_M,
    PRIV_S,
    REGION_JUMPED,
    REGION_RETIRED,
    RESERVATION,
    RESERVED_VALUE,
    SCOUNTEREN,
    TIME,
)
from .region import PAGE, Block, Insn, Region, static_target
from .translate import NotTranslatable, Translator

i8, i64 = ir.IntType(8), ir.IntType(64)
p64, p8 = i64.as_pointer(), i8.as_pointer()
CONTROL = (BRANCH, JUMP)
# Instructions with nothing to do in a region: fences order nothing on one hart, and
# fence.i nothing either (stores keep decoded and compiled code true to memory).
NO_OPS = frozenset({Op.FENCE, Op.FENCE_I})
ATOMICS = frozenset(op for op, r in BY_OP.items() if r.ext == "a")  # (emit_atomic)
# Reads (no write: rs1 or uimm 0) of the counters, which need only the retired count:
# CSR number -> the st slot added to instret (None: time, from mtime's base).
COUNTERS = {CYCLE: CYCLE_DELTA, MCYCLE: CYCLE_DELTA, INSTRET_CSR: INSTRET_DELTA}
COUNTERS |= {MINSTRET: INSTRET_DELTA, TIME: None}
CSR_READS = frozenset({Op.CSRRS, Op.CSRRC, Op.CSRRSI, Op.CSRRCI})


def counter_read(op: int, rs1: int, imm: int) -> bool:
    """Whether an instruction reads a counter CSR and writes none (emit_counter)."""
    return op in CSR_READS and rs1 == 0 and imm in COUNTERS


# Instructions retired before the one being emitted: (count at its block's start, index).
Retired = tuple[ir.Value, int]


def c64(value: int) -> ir.Constant:
    return ir.Constant(i64, value)


def plus(b: ir.IRBuilder, value: ir.Value, k: int) -> ir.Value:
    """value + k, with no instruction for k = 0 (LLVM would fold it, but the worker's
    time goes into building and printing each one)."""
    return b.add(value, c64(k)) if k else value


@cache
def _namespace() -> dict[str, object]:
    return semantics_namespace()


@cache
def compiles(op: int) -> bool:
    """Whether the second tier compiles this op: every integer, branch, jump, load and store
    record, fences (NO_OPS), atomics, and each F/D operation whose semantics translate
    (with a fast path)."""
    record = BY_OP.get(op)
    if record is None:
        return False
    if record.kind in (ALU, BRANCH, JUMP, LOAD, STORE) or op in NO_OPS or op in ATOMICS:
        return True
    if record.kind != FP:
        return False
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(i64, [i64] * 4 + [p64]), name="probe")
    b = ir.IRBuilder(fn.append_basic_block())
    leave = fn.append_basic_block()
    ir.IRBuilder(leave).ret(c64(0))
    a = fn.args
    names = {"FS1": a[0], "FS2": a[1], "FS3": a[2], "RS1": a[0], "RM": a[3]}
    try:
        Translator(b, names, lambda: leave, _namespace()).call_expression(record.semantics)
    except NotTranslatable:
        return False
    return True


class RegionEmitter:
    """Builds the LLVM function for one region. `ram_base` and `ram_size` are compiled in:
    a region belongs to one machine. `page_pc` is the address its page runs at: the
    physical one when nothing is translated, else the virtual one (`paged`), in which case
    loads and stores go through the hart's TLB and leave the region when it misses."""

    def __init__(
        self, region: Region, name: str, ram_base: int, ram_size: int, page_pc: int, paged: bool
    ) -> None:
        self.region = region
        self.ram_base = ram_base
        self.ram_size = ram_size
        self.page_pc = page_pc
        self.paged = paged
        self.module = ir.Module(name=name)
        self.fn = ir.Function(self.module, SIGNATURE, name=name)
        for arg in self.fn.args:
            if isinstance(arg.type, ir.PointerType):
                arg.add_attribute("noalias")
        self.x, self.ram, self.ctx, self.budget, self.done = self.fn.args

    def build(self) -> ir.Module:
        b = ir.IRBuilder(self.fn.append_basic_block("entry"))

        # The hart's other arrays, from the context block (LLVM drops those not used).
        def array(k: int, ty: ir.Type) -> ir.Value:
            return b.inttoptr(b.load(b.gep(self.ctx, [c64(k)])), ty)

        self.f, self.csr, self.tlb, self.st = (
            array(k, p64) for k in (abi.CTX_F, abi.CTX_CSR, abi.CTX_TLB, abi.CTX_ST)
        )
        self.page_flags = array(abi.CTX_PAGE_FLAGS, p8)
        self.dc, self.entries, self.entry_pc = (
            array(k, p64) for k in (abi.CTX_DC, abi.CTX_ENTRIES, abi.CTX_ENTRY_PC)
        )
        insns = [i for block in self.region.blocks.values() for i in block.insns]
        named = {r for i in insns for r in (i.rd, i.rs1, i.rs2)}
        fp = set().union(*(i.fp_regs() for i in insns))
        # Each guest register the region names is read once, at entry, into a local that
        # SROA makes an SSA value: reads never wait for x[], and writes go to both (x[]
        # stays exact at every exit, so exits need no write-back).
        self.regs = self.promote(b, self.x, sorted(named - {0, X_SCRATCH}))
        self.fregs = self.promote(b, self.f, sorted(fp))
        self.mstatus = b.gep(self.csr, [c64(MSTATUS)])
        self.fcsr = b.gep(self.csr, [c64(FCSR)])
        # Instructions retired at the start of the block running (SROA makes it a phi)
        self.retired = b.alloca(i64, name="retired")
        b.store(self.done, self.retired)
        self.blocks = {s: self.fn.append_basic_block(f"b{s:x}") for s in self.region.blocks}
        b.branch(self.blocks[self.region.entry])

        # Where and how the region leaves, from each block that branches here (`leave`):
        # phis from the start, not allocas SROA turns into them (a sixth of the IR the
        # worker built and printed was the stores of the exits).
        self.exit_block = self.fn.append_basic_block("exit")
        out = ir.IRBuilder(self.exit_block)
        self.pc_out, self.retired_out, self.jumped = (out.phi(i64) for _ in range(3))
        out.store(self.retired_out, out.gep(self.st, [c64(REGION_RETIRED)]))
        out.store(self.jumped, out.gep(self.st, [c64(REGION_JUMPED)]))
        out.ret(self.pc_out)

        for start, block in self.region.blocks.items():
            self.emit_block(ir.IRBuilder(self.blocks[start]), block)
        return self.module

    # --- registers, exits and control flow
    @staticmethod
    def promote(b: ir.IRBuilder, array: ir.Value, regs: list[int]) -> dict:
        """(pointer into the array, local copy) for each register, the copy loaded now."""
        out = {}
        for r in regs:
            ptr, local = b.gep(array, [c64(r)]), b.alloca(i64)
            b.store(b.load(ptr), local)
            out[r] = (ptr, local)
        return out

    def read(self, b: ir.IRBuilder, r: int) -> ir.Value:
        return c64(0) if r == 0 else b.load(self.regs[r][1])

    def write(self, b: ir.IRBuilder, r: int, value: ir.Value) -> None:
        if r not in (0, X_SCRATCH):
            ptr, local = self.regs[r]
            b.store(value, local)
            b.store(value, ptr)

    def fread(self, b: ir.IRBuilder, r: int) -> ir.Value:
        return b.load(self.fregs[r][1])

    def fwrite(self, b: ir.IRBuilder, r: int, value: ir.Value) -> None:
        ptr, local = self.fregs[r]
        b.store(value, local)
        b.store(value, ptr)

    def pc(self, off: int) -> int:
        """The pc of RAM offset `off`: in the region's page, or (falling through its end, or
        a branch target) beyond it, as laid out in the address space the pc is in."""
        return self.page_pc + off - (self.region.entry & ~0xFFF)

    def leave(self, b: ir.IRBuilder, pc: ir.Value | int, retired: ir.Value, how: int) -> None:
        """Hand back to the interpreter at pc with `retired` instructions done; `how` is
        why (abi.LEFT_*: the interpreter counts jump targets, and what follows an
        instruction a region does not do, towards compiling)."""
        self.pc_out.add_incoming(c64(pc) if isinstance(pc, int) else pc, b.block)
        self.retired_out.add_incoming(retired, b.block)
        self.jumped.add_incoming(c64(how), b.block)
        b.branch(self.exit_block)

    def go_to(self, b: ir.IRBuilder, off: int, retired: ir.Value, jumped: bool) -> None:
        """Continue at RAM offset `off`: a block of the region, else (a jump's target,
        another region's entry, or the next page) the region compiled there, else the
        interpreter."""
        first = self.region.entry & ~(PAGE - 1)
        if off in self.blocks:
            b.store(retired, self.retired)
            b.branch(self.blocks[off])
        elif jumped or not first <= off < first + PAGE or off in self.region.stops:
            self.chain(b, self.pc(off), retired)
        else:  # (an instruction the region does not do)
            self.leave(b, self.pc(off), retired, abi.LEFT_BEFORE)

    def chain(self, b: ir.IRBuilder, target: ir.Value | int, retired: ir.Value) -> None:
        """Go on at pc `target` in the region that starts there, if the decoded cache says
        there is one, compiled for this mode and (translated) this very pc, as the
        interpreter checks before it calls one; else leave for the interpreter, which
        counts the jump (region_abi.py). `retired` counts every instruction since the
        interpreter's call, so the next region keeps to the same budget."""
        constant = isinstance(target, int)
        pc = c64(target) if constant else target
        off, known = self.code_offset(b, target)
        if off is None:
            self.leave(b, pc, retired, abi.LEFT_JUMP)
            return
        index = b.and_(b.lshr(off, c64(1)), c64(DC_MASK))
        slot = b.shl(index, c64(3))
        tag = b.load(b.gep(self.dc, [plus(b, slot, DC_TAG)]))
        op = b.load(b.gep(self.dc, [plus(b, slot, DC_OP)]))
        entry_pc = b.load(b.gep(self.entry_pc, [index]))
        ok = b.and_(b.icmp_signed("==", tag, off), b.icmp_signed("==", op, c64(Op.REGION)))
        ok = b.and_(ok, b.icmp_signed("==", entry_pc, pc if self.paged else c64(UNTRANSLATED)))
        if known is not None:
            ok = b.and_(ok, known)
        go, stay = self.fn.append_basic_block(), self.fn.append_basic_block()
        b.cbranch(ok, go, stay)
        self.leave(ir.IRBuilder(stay), pc, retired, abi.LEFT_JUMP)
        b = ir.IRBuilder(go)
        function = b.inttoptr(b.load(b.gep(self.entries, [index])), SIGNATURE.as_pointer())
        args = [self.x, self.ram, self.ctx, self.budget, retired]
        b.ret(b.call(function, args, tail="musttail"))

    def code_offset(self, b: ir.IRBuilder, target: ir.Value | int) -> tuple:
        """(RAM offset of pc `target`, an i1 that holds if that is known, or None if it
        is always known): as core.code_offset finds it, from the region's own page or,
        translated, the fetch TLB. (None, None) when it is known never to be."""
        first = self.region.entry & ~(PAGE - 1)
        if isinstance(target, int):
            if (target ^ self.page_pc) >> 12 == 0:
                return c64(first + (target & 0xFFF)), None
            if not self.paged:
                off = target - self.ram_base
                return (c64(off), None) if 0 <= off < self.ram_size else (None, None)
            target = c64(target)
        if not self.paged:
            off = b.sub(target, c64(self.ram_base))
            return off, b.icmp_unsigned("<", off, c64(self.ram_size))
        vpn = b.ashr(target, c64(12))
        t = b.shl(plus(b, b.and_(vpn, c64(TLB_ENTRIES - 1)), ACCESS_FETCH << 8), c64(1))
        hit = b.icmp_signed("==", b.load(b.gep(self.tlb, [plus(b, t, TAG)])), vpn)
        delta = b.load(b.gep(self.tlb, [plus(b, t, DELTA)]))
        same = b.icmp_signed("==", vpn, c64(self.page_pc >> 12))
        mine = b.add(c64(first), b.and_(target, c64(0xFFF)))
        return b.select(same, mine, b.add(delta, target)), b.or_(same, hit)

    def exit_before(self, off: int, retired: Retired, how: int = abi.LEFT_BEFORE) -> ir.Block:
        """The block that leaves for the interpreter to carry on at RAM offset `off` with
        `retired` instructions done (one per instruction: fewer blocks for LLVM)."""
        out = self.exits.get((off, how))
        if out is None:
            out = self.exits[off, how] = self.fn.append_basic_block()
            done, k = retired
            leaving = ir.IRBuilder(out)
            self.leave(leaving, self.pc(off), plus(leaving, done, k), how)
        return out

    def side_exit(
        self, b: ir.IRBuilder, ok: ir.Value, off: int, retired: Retired, how: int = abi.LEFT_BEFORE
    ) -> ir.IRBuilder:
        """Continue where `ok` holds; otherwise leave before the instruction at `off`."""
        cont = self.fn.append_basic_block()
        b.cbranch(ok, cont, self.exit_before(off, retired, how))
        return ir.IRBuilder(cont)

    def translator(self, b: ir.IRBuilder, ins: Insn, retired: Retired) -> Translator:
        """Reads the semantics of `ins` with its operands bound; a slow path leaves."""
        names = {"IMM": c64(ins.imm), "PC": c64(self.pc(ins.off))}
        record = BY_OP[ins.op]
        used = record.names
        if "RS1" in used:
            names["RS1"] = self.read(b, ins.rs1)
        if "RS2" in used:
            names["RS2"] = self.read(b, ins.rs2)
        for name, r in (("FS1", ins.rs1), ("FS2", ins.rs2), ("FS3", ins.rs3)):
            if name in used:
                names[name] = self.fread(b, r)
        return Translator(b, names, lambda: self.exit_before(ins.off, retired), _namespace())

    def emit_block(self, b: ir.IRBuilder, block: Block) -> None:
        self.exits: dict[tuple[int, int], ir.Block] = {}  # by (offset, how), for this block
        done = b.load(self.retired)
        n = len(block.insns)
        # A block runs whole or not at all: it must fit in what is left of the budget.
        fits = b.icmp_unsigned("<=", b.add(done, c64(n)), self.budget)
        b = self.side_exit(b, fits, block.start, (done, 0), abi.LEFT_BUDGET)
        for k, ins in enumerate(block.insns[:-1] if block.insns else []):
            b = self.emit_insn(b, ins, (done, k))
        after = b.add(done, c64(n))
        last = block.insns[-1] if block.insns else None
        if last is None or BY_OP[last.op].kind not in CONTROL:
            if last is not None:
                b = self.emit_insn(b, last, (done, n - 1))
            self.go_to(b, block.fall_through, after, jumped=False)
            return
        record = BY_OP[last.op]
        next_off = last.off + last.length
        t = self.translator(b, last, (done, n - 1))
        if record.kind == JUMP:
            target = static_target(record, last)
            if target is None:
                value = t.as_int(t.expression(record.semantics))
            self.write(b, last.rd, c64(self.pc(next_off)))
            if target is None:
                self.chain(b, value, after)
            else:
                self.go_to(b, target, after, jumped=True)
        else:
            taken = t.as_bool(t.expression(record.semantics))
            yes, no = self.fn.append_basic_block(), self.fn.append_basic_block()
            b.cbranch(taken, yes, no)
            self.go_to(ir.IRBuilder(yes), last.off + last.imm, after, jumped=True)
            self.go_to(ir.IRBuilder(no), next_off, after, jumped=False)

    # --- one instruction
    def emit_insn(self, b: ir.IRBuilder, ins: Insn, retired: Retired) -> ir.IRBuilder:
        record = BY_OP[ins.op]
        if ins.op in NO_OPS:
            return b
        if record.kind == ALU:
            t = self.translator(b, ins, retired)
            self.write(b, ins.rd, t.as_int(t.expression(record.semantics)))
            return b
        if record.kind == STORE and not record.fp_data:
            return self.emit_store(b, ins, record, retired, self.read(b, ins.rs2))
        if record.kind == LOAD and not record.fp_data:
            b, value = self.emit_load(b, ins, record, retired)
            self.write(b, ins.rd, value)
            return b
        if ins.op in ATOMICS:
            return self.emit_atomic(b, ins, record, retired)
        if counter_read(ins.op, ins.rs1, ins.imm):
            return self.emit_counter(b, ins, retired)
        return self.emit_fp(b, ins, record, retired)

    # --- reads of cycle, time, instret (mcycle, minstret), as csr.csr_read does them
    def emit_counter(self, b: ir.IRBuilder, ins: Insn, retired: Retired) -> ir.IRBuilder:
        num = ins.imm
        priv = b.load(b.gep(self.st, [c64(PRIV)]))
        if (num >> 8) & 3 == PRIV_M:  # mcycle, minstret
            ok = b.icmp_signed("==", priv, c64(PRIV_M))
        else:  # csr.counter_allowed: mcounteren below M, scounteren below S
            bit = c64(1 << (num - CYCLE))
            enabled = []
            for reg, level in ((MCOUNTEREN, PRIV_M), (SCOUNTEREN, PRIV_S)):
                on = b.icmp_unsigned("!=", b.and_(b.load(b.gep(self.csr, [c64(reg)])), bit), c64(0))
                enabled.append(b.or_(b.icmp_signed(">=", priv, c64(level)), on))
            ok = b.and_(*enabled)
        b = self.side_exit(b, ok, ins.off, retired)  # (else the interpreter traps)
        done, k = retired  # (st[INSTRET]: the count when the interpreter called the region)
        instret = b.add(b.load(b.gep(self.st, [c64(INSTRET)])), plus(b, done, k))
        delta = COUNTERS[num]
        if delta is None:  # clint.mtime
            base = b.load(b.gep(self.st, [c64(MTIME_BASE)]))
            value = b.add(base, b.sdiv(instret, c64(INSNS_PER_TICK)))
        else:
            value = b.add(instret, b.load(b.gep(self.st, [c64(delta)])))
        self.write(b, ins.rd, value)
        return b

    # --- LR, SC and the AMOs on RAM, as system.execute_atomic does them
    def emit_atomic(self, b: ir.IRBuilder, ins: Insn, record: Record, retired: Retired):
        name = record.name
        size = 4 if name.endswith("_w") else 8
        ty = ir.IntType(8 * size)
        addr = self.read(b, ins.rs1)  # (ram_pointer leaves if it is misaligned: a trap)
        reservation = b.gep(self.st, [c64(RESERVATION)])
        reserved_value = b.gep(self.st, [c64(RESERVED_VALUE)])

        def widen(v: ir.Value) -> ir.Value:  # (sign-extended words, as the interpreter)
            return b.sext(v, i64) if size == 4 else v

        if name.startswith("lr_"):
            b, ptr = self.ram_pointer(b, ins, size, retired, store=False)
            raw = b.load(ptr, align=size)
            b.store(addr, reservation)
            b.store(b.zext(raw, i64) if size == 4 else raw, reserved_value)
            self.write(b, ins.rd, widen(raw))
            return b
        b, ptr = self.ram_pointer(b, ins, size, retired, store=True)
        src = self.read(b, ins.rs2)
        if name.startswith("sc_"):
            # QEMU's way: the reservation's address, and memory still holding what LR read
            current = b.load(ptr, align=size)
            current = b.zext(current, i64) if size == 4 else current
            ok = b.and_(
                b.icmp_signed("==", b.load(reservation), addr),
                b.icmp_signed("==", current, b.load(reserved_value)),
            )
            write, done = self.fn.append_basic_block(), self.fn.append_basic_block()
            b.cbranch(ok, write, done)
            w = ir.IRBuilder(write)
            w.store(w.trunc(src, ty) if size == 4 else src, ptr, align=size)
            w.branch(done)
            b = ir.IRBuilder(done)
            self.write(b, ins.rd, b.select(ok, c64(0), c64(1)))
            b.store(c64(-1), reservation)
            return b
        old = widen(b.load(ptr, align=size))
        src = b.sext(b.trunc(src, ty), i64) if size == 4 else src
        operation = name[3:-2]
        if operation == "swap":
            new = src
        elif operation in ("add", "xor", "and", "or"):
            new = getattr(b, {"add": "add", "xor": "xor", "and": "and_", "or": "or_"}[operation])(
                old, src
            )
        else:  # min, max (signed), minu, maxu (unsigned): on the sign-extended values
            less = (b.icmp_unsigned if operation.endswith("u") else b.icmp_signed)("<", old, src)
            keep_old = less if operation.startswith("min") else b.not_(less)
            new = b.select(keep_old, old, src)
        b.store(b.trunc(new, ty) if size == 4 else new, ptr, align=size)
        self.write(b, ins.rd, old)
        return b

    # --- loads and stores that hit RAM (anything else leaves the region)
    def emit_load(self, b: ir.IRBuilder, ins: Insn, record: Record, retired: Retired):
        """(builder, the loaded value extended to 64 bits as the record says)."""
        size = record.size
        b, ptr = self.ram_pointer(b, ins, size, retired, store=False)
        value = b.load(ptr, align=size)
        if size < 8:
            value = b.sext(value, i64) if record.signed else b.zext(value, i64)
        return b, value

    def emit_store(self, b: ir.IRBuilder, ins: Insn, record: Record, retired: Retired, value):  # noqa: ANN001
        size = record.size
        b, ptr = self.ram_pointer(b, ins, size, retired, store=True)
        b.store(value if size == 8 else b.trunc(value, ir.IntType(8 * size)), ptr, align=size)
        return b

    # --- floating point: the checks every F/D instruction makes, then its operation
    def emit_fp(self, b: ir.IRBuilder, ins: Insn, record: Record, retired: Retired):
        t = self.translator(b, ins, retired)
        mstatus = b.load(self.mstatus)
        b = self.side_exit(b, t.as_bool(t.inline(fp_enabled, [mstatus])[0]), ins.off, retired)
        t.b = b
        if record.kind == STORE:
            return self.emit_store(b, ins, record, retired, self.fread(b, ins.rs2))
        if record.kind == LOAD:
            b, raw = self.emit_load(b, ins, record, retired)
            t.b = b
            value = t.inline(fp_load_value, [raw, c64(record.size)])[0]
            to_x = False
        else:
            rm = t.inline(resolve_rm, [c64(ins.rm), b.load(self.fcsr)])[0]
            if record.uses_rm:
                b = self.side_exit(b, b.icmp_unsigned("<=", rm, c64(RM_MAX)), ins.off, retired)
                t.b = b
            t.names["RM"] = rm
            value, flags = t.call_expression(record.semantics)
            b = t.b
            b.store(b.or_(b.load(self.fcsr), flags), self.fcsr)
            to_x = not record.fp_rd
        b = t.b
        if to_x:
            self.write(b, ins.rd, value)
        else:
            self.fwrite(b, ins.rd, value)
        b.store(t.inline(dirty, [b.load(self.mstatus)])[0], self.mstatus)
        return b

    def ram_pointer(self, b: ir.IRBuilder, ins: Insn, size: int, retired: Retired, store: bool):
        """The host pointer for an aligned access to RAM, leaving the region when it is not
        one (or, for a store, when its page holds code or the tohost word)."""
        addr = plus(b, self.read(b, ins.rs1), ins.imm)
        aligned = b.icmp_unsigned("==", b.and_(addr, c64(size - 1)), c64(0))
        if self.paged:
            return self.tlb_pointer(b, ins, addr, aligned, size, retired, store)
        off = b.sub(addr, c64(self.ram_base))
        in_ram = b.icmp_unsigned("<", off, c64(self.ram_size))
        b = self.side_exit(b, b.and_(in_ram, aligned), ins.off, retired)
        if store:  # (not to the tohost word, nor to code: see layout.CODE_MAP)
            page = b.lshr(off, c64(12))
            flags = b.load(b.gep(self.page_flags, [page]))
            plain, check = self.fn.append_basic_block(), self.fn.append_basic_block()
            b.cbranch(b.icmp_unsigned("==", flags, ir.Constant(i8, 0)), plain, check)
            b = ir.IRBuilder(check)
            code = b.load(b.gep(self.dc, [b.add(page, c64(CODE_MAP))]))
            granule = b.and_(b.lshr(off, c64(GRANULE)), c64(63))
            data = b.icmp_unsigned("==", b.and_(b.lshr(code, granule), c64(1)), c64(0))
            watch = b.and_(flags, ir.Constant(i8, PAGE_WATCH))
            unwatched = b.icmp_unsigned("==", watch, ir.Constant(i8, 0))
            b = self.side_exit(b, b.and_(data, unwatched), ins.off, retired)
            b.branch(plain)
            b = ir.IRBuilder(plain)
        ptr = b.gep(self.ram, [off])
        return b, b.bitcast(ptr, ir.IntType(8 * size).as_pointer())

    def tlb_pointer(self, b, ins, addr, aligned, size: int, retired, store: bool):  # noqa: ANN001, ANN201
        """ram_pointer through the TLB (mmu/tlb.py): a hit is the interpreter's fast path.
        Pages holding code or the tohost word never enter the store TLB, so a store that
        hits needs no page-flag check."""
        kind = ACCESS_STORE if store else ACCESS_LOAD
        vpn = b.ashr(addr, c64(12))
        slot = b.shl(plus(b, b.and_(vpn, c64(TLB_ENTRIES - 1)), kind << 8), c64(1))
        tag = b.load(b.gep(self.tlb, [plus(b, slot, TAG)]))
        hit = b.and_(b.icmp_signed("==", tag, vpn), aligned)
        b = self.side_exit(b, hit, ins.off, retired)
        off = b.add(b.load(b.gep(self.tlb, [plus(b, slot, DELTA)])), addr)
        ptr = b.gep(self.ram, [off])
        return b, b.bitcast(ptr, ir.IntType(8 * size).as_pointer())
