"""A region as one LLVM function, each instruction emitted from its record in isa.py.

The function is `i64 region(i64* x, i64* f, i64* csr, i8* ram, i8* page_flags, i64* tlb,
i64 budget, i64* out)`: it runs at most `budget` instructions and returns the pc where
the interpreter takes over, with out[0] the number of instructions it retired and out[1]
1 if that pc is the target of a jump it took (0 if it stopped before an instruction it
does not do).

What an instruction does comes from its record: ALU results, branch conditions and jump
targets are the record's semantics translated to IR (`translate.py`), F/D operations are
fpu.py's functions translated the same way (their fast paths; a slow path leaves the
region), and loads and stores follow the record's size and sign.
"""

from __future__ import annotations

from functools import cache

from llvmlite import ir

from ..cpu.decode import X_SCRATCH
from ..cpu.execute_gen import semantics_namespace
from ..cpu.fp_state import RM_MAX, dirty, fp_enabled, resolve_rm
from ..cpu.isa import ALU, BRANCH, BY_OP, FP, JUMP, LOAD, STORE, Record
from ..cpu.layout import DELTA, TAG, TLB_ENTRIES
from ..cpu.ops import fp_load_value
from ..cpu.state import ACCESS_LOAD, ACCESS_STORE, FCSR, MSTATUS
from .region import Block, Insn, Region, static_target
from .translate import NotTranslatable, Translator

i8, i64 = ir.IntType(8), ir.IntType(64)
p64, p8 = i64.as_pointer(), i8.as_pointer()
SIGNATURE = ir.FunctionType(i64, [p64, p64, p64, p8, p8, p64, i64, p64])
CONTROL = (BRANCH, JUMP)
# FENCE orders memory for other harts and devices: one hart that does each access in
# order needs nothing (as the interpreter, system.py). Linux has one in every lock and
# atomic; ending regions there left the code after them to the interpreter.
NO_OPS = frozenset(op for op, r in BY_OP.items() if r.name == "fence")

# Instructions retired before the one being emitted: (count at its block's start, index).
Retired = tuple[ir.Value, int]


def c64(value: int) -> ir.Constant:
    return ir.Constant(i64, value)


@cache
def _namespace() -> dict[str, object]:
    return semantics_namespace()


@cache
def compiles(op: int) -> bool:
    """Whether the second tier compiles this op: every integer, branch, jump, load and store
    record, and each F/D operation whose semantics translate (with a fast path)."""
    record = BY_OP.get(op)
    if record is None:
        return False
    if record.kind in (ALU, BRANCH, JUMP, LOAD, STORE) or op in NO_OPS:
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
        (self.x, self.f, self.csr, self.ram, self.page_flags, self.tlb, self.budget, self.out) = (
            self.fn.args
        )

    def build(self) -> ir.Module:
        b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        # Guest registers stay in x[]: with x marked noalias LLVM forwards their loads and
        # stores itself, and a region's many exits need no write-back.
        # (pointers only for the registers the region names: each GEP costs Python time)
        insns = [i for block in self.region.blocks.values() for i in block.insns]
        named = {r for i in insns for r in (i.rd, i.rs1, i.rs2)}
        self.regs = {r: b.gep(self.x, [c64(r)]) for r in sorted(named - {0, X_SCRATCH})}
        fp = set().union(*(i.fp_regs() for i in insns))
        self.fregs = {r: b.gep(self.f, [c64(r)]) for r in sorted(fp)}
        self.mstatus = b.gep(self.csr, [c64(MSTATUS)])
        self.fcsr = b.gep(self.csr, [c64(FCSR)])
        # Where and how the region leaves: these become phis in the exit block.
        self.pc_out = b.alloca(i64, name="pc_out")
        self.retired = b.alloca(i64, name="retired")
        self.jumped = b.alloca(i64, name="jumped")
        b.store(c64(0), self.retired)
        self.blocks = {s: self.fn.append_basic_block(f"b{s:x}") for s in self.region.blocks}
        b.branch(self.blocks[self.region.entry])

        self.exit_block = self.fn.append_basic_block("exit")
        out = ir.IRBuilder(self.exit_block)
        out.store(out.load(self.retired), self.out)
        out.store(out.load(self.jumped), out.gep(self.out, [c64(1)]))
        out.ret(out.load(self.pc_out))

        for start, block in self.region.blocks.items():
            self.emit_block(ir.IRBuilder(self.blocks[start]), block)
        return self.module

    # --- registers, exits and control flow
    def read(self, b: ir.IRBuilder, r: int) -> ir.Value:
        return c64(0) if r == 0 else b.load(self.regs[r])

    def write(self, b: ir.IRBuilder, r: int, value: ir.Value) -> None:
        if r not in (0, X_SCRATCH):
            b.store(value, self.regs[r])

    def pc(self, off: int) -> int:
        """The pc of RAM offset `off`: in the region's page, or (falling through its end, or
        a branch target) beyond it, as laid out in the address space the pc is in."""
        return self.page_pc + off - (self.region.entry & ~0xFFF)

    def leave(self, b: ir.IRBuilder, pc: ir.Value | int, retired: ir.Value, jumped: bool) -> None:
        """Hand back to the interpreter at pc with `retired` instructions done; `jumped`
        when pc is a jump's target (the interpreter counts those towards compiling)."""
        b.store(c64(pc) if isinstance(pc, int) else pc, self.pc_out)
        b.store(retired, self.retired)
        b.store(c64(int(jumped)), self.jumped)
        b.branch(self.exit_block)

    def go_to(self, b: ir.IRBuilder, off: int, retired: ir.Value, jumped: bool) -> None:
        if off in self.blocks:
            b.store(retired, self.retired)
            b.branch(self.blocks[off])
        else:
            # Code that runs on into the next page goes on there as a jump would: the
            # interpreter counts it, so that it gets a region of its own when hot (the
            # second half of a long unrolled loop, such as Linux's SHA-3 or ECC code).
            page = self.region.entry & ~0xFFF
            self.leave(b, self.pc(off), retired, jumped or not page <= off < page + 4096)

    def exit_before(self, off: int, retired: Retired) -> ir.Block:
        """The block that leaves for the interpreter to carry on at RAM offset `off` with
        `retired` instructions done (one per instruction: fewer blocks for LLVM)."""
        out = self.exits.get(off)
        if out is None:
            out = self.exits[off] = self.fn.append_basic_block()
            done, k = retired
            leaving = ir.IRBuilder(out)
            self.leave(leaving, self.pc(off), leaving.add(done, c64(k)), jumped=False)
        return out

    def side_exit(self, b: ir.IRBuilder, ok: ir.Value, off: int, retired: Retired) -> ir.IRBuilder:
        """Continue where `ok` holds; otherwise leave before the instruction at `off`."""
        cont = self.fn.append_basic_block()
        b.cbranch(ok, cont, self.exit_before(off, retired))
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
                names[name] = b.load(self.fregs[r])
        return Translator(b, names, lambda: self.exit_before(ins.off, retired), _namespace())

    def emit_block(self, b: ir.IRBuilder, block: Block) -> None:
        self.exits: dict[int, ir.Block] = {}  # exits by offset, for this block
        done = b.load(self.retired)
        n = len(block.insns)
        # A block runs whole or not at all: it must fit in what is left of the budget.
        fits = b.icmp_unsigned("<=", b.add(done, c64(n)), self.budget)
        b = self.side_exit(b, fits, block.start, (done, 0))
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
                self.leave(b, value, after, jumped=True)
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
        return self.emit_fp(b, ins, record, retired)

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
            return self.emit_store(b, ins, record, retired, b.load(self.fregs[ins.rs2]))
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
            b.store(value, self.fregs[ins.rd])
        b.store(t.inline(dirty, [b.load(self.mstatus)])[0], self.mstatus)
        return b

    def ram_pointer(self, b: ir.IRBuilder, ins: Insn, size: int, retired: Retired, store: bool):
        """The host pointer for an aligned access to RAM, leaving the region when it is not
        one (or, for a store, when its page holds code or the tohost word)."""
        addr = b.add(self.read(b, ins.rs1), c64(ins.imm))
        aligned = b.icmp_unsigned("==", b.and_(addr, c64(size - 1)), c64(0))
        if self.paged:
            return self.tlb_pointer(b, ins, addr, aligned, size, retired, store)
        off = b.sub(addr, c64(self.ram_base))
        in_ram = b.icmp_unsigned("<", off, c64(self.ram_size))
        b = self.side_exit(b, b.and_(in_ram, aligned), ins.off, retired)
        if store:
            flags = b.load(b.gep(self.page_flags, [b.lshr(off, c64(12))]))
            b = self.side_exit(
                b, b.icmp_unsigned("==", flags, ir.Constant(i8, 0)), ins.off, retired
            )
        ptr = b.gep(self.ram, [off])
        return b, b.bitcast(ptr, ir.IntType(8 * size).as_pointer())

    def tlb_pointer(self, b, ins, addr, aligned, size: int, retired, store: bool):  # noqa: ANN001, ANN201
        """ram_pointer through the TLB (mmu/tlb.py): a hit is the interpreter's fast path.
        Pages holding code or the tohost word never enter the store TLB, so a store that
        hits needs no page-flag check."""
        kind = ACCESS_STORE if store else ACCESS_LOAD
        vpn = b.ashr(addr, c64(12))
        slot = b.shl(b.or_(c64(kind << 8), b.and_(vpn, c64(TLB_ENTRIES - 1))), c64(1))
        tag = b.load(b.gep(self.tlb, [b.add(slot, c64(TAG))]))
        hit = b.and_(b.icmp_signed("==", tag, vpn), aligned)
        b = self.side_exit(b, hit, ins.off, retired)
        off = b.add(b.load(b.gep(self.tlb, [b.add(slot, c64(DELTA))])), addr)
        ptr = b.gep(self.ram, [off])
        return b, b.bitcast(ptr, ir.IntType(8 * size).as_pointer())
