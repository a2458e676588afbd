"""A region as one LLVM function: the instructions' semantics, one line each where the
spec's are.

The function is `i64 region(i64* x, i64* f, i64* csr, i8* ram, i8* page_flags, i64* tlb,
i64 budget, i64* out)`: it runs at most `budget` instructions and returns the pc where
the interpreter takes over, with out[0] the number of instructions it retired and out[1]
1 if that pc is the target of a jump it took (0 if it stopped before an instruction it
does not do).
"""

from __future__ import annotations

from llvmlite import ir

from ..cpu.decode import X_SCRATCH
from ..cpu.fpu_bits import MIN_NORMAL_D, NX
from ..cpu.isa import Op
from ..cpu.state import ACCESS_LOAD, ACCESS_STORE, FCSR, MSTATUS, MSTATUS_FS
from ..mmu.tlb import DELTA, TAG, TLB_ENTRIES
from .region import BRANCHES, Block, Insn, Region

i8, i32, i64, i128 = ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.IntType(128)
f64 = ir.DoubleType()
p64, p8 = i64.as_pointer(), i8.as_pointer()
SIGNATURE = ir.FunctionType(i64, [p64, p64, p64, p8, p8, p64, i64, p64])
INT64_MIN = -(1 << 63)


def c64(value: int) -> ir.Constant:
    return ir.Constant(i64, value)


def sext32(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """The low 32 bits of v, sign-extended (the W instructions' result)."""
    return b.sext(b.trunc(v, i32), i64)


def low32(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    return b.trunc(v, i32)


def high64(b: ir.IRBuilder, x: ir.Value, y: ir.Value, x_ext: str, y_ext: str) -> ir.Value:
    """Upper 64 bits of the 128-bit product (MULH, MULHU, MULHSU)."""
    wide = b.mul(getattr(b, x_ext)(x, i128), getattr(b, y_ext)(y, i128))
    return b.trunc(b.lshr(wide, ir.Constant(i128, 64)), i64)


def divide(b: ir.IRBuilder, x: ir.Value, y: ir.Value, signed: bool, remainder: bool, word: bool):
    """Division as RISC-V defines it: by zero gives all ones (DIV) or the dividend (REM);
    the one signed overflow gives the dividend (DIV) or zero (REM). LLVM's division is
    undefined in both cases, so the divisor is replaced before dividing."""
    ty = i32 if word else i64
    if word:
        x, y = b.trunc(x, i32), b.trunc(y, i32)
    zero = b.icmp_unsigned("==", y, ir.Constant(ty, 0))
    bad = zero
    overflow = ir.Constant(ir.IntType(1), 0)
    if signed:
        overflow = b.and_(
            b.icmp_signed("==", x, ir.Constant(ty, -(1 << (ty.width - 1)))),
            b.icmp_signed("==", y, ir.Constant(ty, -1)),
        )
        bad = b.or_(zero, overflow)
    safe = b.select(bad, ir.Constant(ty, 1), y)
    if remainder:
        q = (b.srem if signed else b.urem)(x, safe)
        result = b.select(zero, x, b.select(overflow, ir.Constant(ty, 0), q))
    else:
        q = (b.sdiv if signed else b.udiv)(x, safe)
        result = b.select(zero, ir.Constant(ty, -1), b.select(overflow, x, q))
    return b.sext(result, i64) if word else result


def compare(b: ir.IRBuilder, signed: bool, pred: str, x: ir.Value, y: ir.Value) -> ir.Value:
    return (b.icmp_signed if signed else b.icmp_unsigned)(pred, x, y)


def slt(b, x, y, signed):
    return b.zext(compare(b, signed, "<", x, y), i64)


# Register-register operations: result from (builder, rs1 value, rs2 value).
ALU = {
    Op.ADD: lambda b, x, y: b.add(x, y),
    Op.SUB: lambda b, x, y: b.sub(x, y),
    Op.SLL: lambda b, x, y: b.shl(x, b.and_(y, c64(63))),
    Op.SLT: lambda b, x, y: slt(b, x, y, True),
    Op.SLTU: lambda b, x, y: slt(b, x, y, False),
    Op.XOR: lambda b, x, y: b.xor(x, y),
    Op.SRL: lambda b, x, y: b.lshr(x, b.and_(y, c64(63))),
    Op.SRA: lambda b, x, y: b.ashr(x, b.and_(y, c64(63))),
    Op.OR: lambda b, x, y: b.or_(x, y),
    Op.AND: lambda b, x, y: b.and_(x, y),
    Op.ADDW: lambda b, x, y: sext32(b, b.add(x, y)),
    Op.SUBW: lambda b, x, y: sext32(b, b.sub(x, y)),
    Op.SLLW: lambda b, x, y: sext32(b, b.shl(x, b.and_(y, c64(31)))),
    Op.SRLW: lambda b, x, y: b.sext(
        b.lshr(low32(b, x), b.and_(low32(b, y), ir.Constant(i32, 31))), i64
    ),
    Op.SRAW: lambda b, x, y: b.sext(
        b.ashr(low32(b, x), b.and_(low32(b, y), ir.Constant(i32, 31))), i64
    ),
    Op.MUL: lambda b, x, y: b.mul(x, y),
    Op.MULH: lambda b, x, y: high64(b, x, y, "sext", "sext"),
    Op.MULHSU: lambda b, x, y: high64(b, x, y, "sext", "zext"),
    Op.MULHU: lambda b, x, y: high64(b, x, y, "zext", "zext"),
    Op.DIV: lambda b, x, y: divide(b, x, y, signed=True, remainder=False, word=False),
    Op.DIVU: lambda b, x, y: divide(b, x, y, signed=False, remainder=False, word=False),
    Op.REM: lambda b, x, y: divide(b, x, y, signed=True, remainder=True, word=False),
    Op.REMU: lambda b, x, y: divide(b, x, y, signed=False, remainder=True, word=False),
    Op.MULW: lambda b, x, y: sext32(b, b.mul(x, y)),
    Op.DIVW: lambda b, x, y: divide(b, x, y, signed=True, remainder=False, word=True),
    Op.DIVUW: lambda b, x, y: divide(b, x, y, signed=False, remainder=False, word=True),
    Op.REMW: lambda b, x, y: divide(b, x, y, signed=True, remainder=True, word=True),
    Op.REMUW: lambda b, x, y: divide(b, x, y, signed=False, remainder=True, word=True),
}
# Register-immediate operations are their register-register twin with rs2 = imm (the
# decoder has already limited shift amounts to 6 bits, or 5 for the W forms).
WITH_IMMEDIATE = {
    Op.ADDI: Op.ADD,
    Op.SLTI: Op.SLT,
    Op.SLTIU: Op.SLTU,
    Op.XORI: Op.XOR,
    Op.ORI: Op.OR,
    Op.ANDI: Op.AND,
    Op.SLLI: Op.SLL,
    Op.SRLI: Op.SRL,
    Op.SRAI: Op.SRA,
    Op.ADDIW: Op.ADDW,
    Op.SLLIW: Op.SLLW,
    Op.SRLIW: Op.SRLW,
    Op.SRAIW: Op.SRAW,
}
# (size in bytes, sign-extended?) of the loads, and the stores' sizes.
LOADS = {
    Op.LB: (1, True),
    Op.LH: (2, True),
    Op.LW: (4, True),
    Op.LD: (8, True),
    Op.LBU: (1, False),
    Op.LHU: (2, False),
    Op.LWU: (4, False),
}
STORES = {Op.SB: 1, Op.SH: 2, Op.SW: 4, Op.SD: 8}
BRANCH_TEST = {
    Op.BEQ: (True, "=="),
    Op.BNE: (True, "!="),
    Op.BLT: (True, "<"),
    Op.BGE: (True, ">="),
    Op.BLTU: (False, "<"),
    Op.BGEU: (False, ">="),
}
CONTROL = BRANCHES | {Op.JAL, Op.JALR}

# Double-precision arithmetic, done with the host's IEEE arithmetic where fpu.py's fast
# path would be taken (round to nearest even, a normal result) and with the same test for
# inexactness; anything else leaves the region for the interpreter's exact slow path.
SIGN = 1 << 63
SAFE_LO = 2.0**-960  # fpu.py's _SAFE_LO: below it an error term could underflow
FP_ARITH = {Op.FADD_D, Op.FSUB_D, Op.FMUL_D, Op.FDIV_D, Op.FSQRT_D}
FP_BITS = {  # sign injection, on the bits: (a, b) -> result
    Op.FSGNJ_D: lambda b, x, y: b.or_(b.and_(x, c64(~SIGN)), b.and_(y, c64(SIGN))),
    Op.FSGNJN_D: lambda b, x, y: b.or_(b.and_(x, c64(~SIGN)), b.and_(b.not_(y), c64(SIGN))),
    Op.FSGNJX_D: lambda b, x, y: b.xor(x, b.and_(y, c64(SIGN))),
}
FP_OPS = FP_ARITH | set(FP_BITS) | {Op.FLD, Op.FSD, Op.FMV_X_D, Op.FMV_D_X}
RM_RNE, RM_DYN = 0, 7

# Instructions retired before the one being emitted: (count at its block's start, index).
Retired = tuple[ir.Value, int]
TRANSLATED = (
    frozenset(ALU)
    | frozenset(WITH_IMMEDIATE)
    | frozenset(LOADS)
    | frozenset(STORES)
    | CONTROL
    | {Op.LUI, Op.AUIPC}
    | FP_OPS
)


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
        fp = {r for i in insns if i.op in FP_OPS for r in (i.rd, i.rs1, i.rs2)}
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
            self.leave(b, self.pc(off), retired, jumped)

    def side_exit(self, b: ir.IRBuilder, ok: ir.Value, off: int, retired: Retired) -> ir.IRBuilder:
        """Continue where `ok` holds; otherwise leave, for the interpreter to carry on at
        RAM offset `off` with `retired` instructions done. (The exit is shared by every
        check of one instruction: fewer blocks for LLVM to compile.)"""
        out = self.exits.get(off)
        if out is None:
            out = self.exits[off] = self.fn.append_basic_block()
            done, k = retired
            leaving = ir.IRBuilder(out)
            self.leave(leaving, self.pc(off), leaving.add(done, c64(k)), jumped=False)
        cont = self.fn.append_basic_block()
        b.cbranch(ok, cont, out)
        return ir.IRBuilder(cont)

    def emit_block(self, b: ir.IRBuilder, block: Block) -> None:
        self.exits: dict[int, ir.Block] = {}  # side exits by offset, for this block
        done = b.load(self.retired)
        n = len(block.insns)
        # A block runs whole or not at all: it must fit in what is left of the budget.
        fits = b.icmp_unsigned("<=", b.add(done, c64(n)), self.budget)
        b = self.side_exit(b, fits, block.start, (done, 0))
        for k, ins in enumerate(block.insns):
            b = self.emit_insn(b, ins, (done, k))
        after = b.add(done, c64(n))
        last = block.insns[-1] if block.insns else None
        if last is None or last.op not in CONTROL:
            self.go_to(b, block.fall_through, after, jumped=False)
            return
        next_off = last.off + last.length
        if last.op == Op.JAL:
            self.write(b, last.rd, c64(self.pc(next_off)))
            self.go_to(b, last.off + last.imm, after, jumped=True)
        elif last.op == Op.JALR:
            target = b.and_(b.add(self.read(b, last.rs1), c64(last.imm)), c64(~1))
            self.write(b, last.rd, c64(self.pc(next_off)))
            self.leave(b, target, after, jumped=True)
        else:
            signed, pred = BRANCH_TEST[last.op]
            taken = compare(b, signed, pred, self.read(b, last.rs1), self.read(b, last.rs2))
            yes, no = self.fn.append_basic_block(), self.fn.append_basic_block()
            b.cbranch(taken, yes, no)
            self.go_to(ir.IRBuilder(yes), last.off + last.imm, after, jumped=True)
            self.go_to(ir.IRBuilder(no), next_off, after, jumped=False)

    # --- one instruction
    def emit_insn(self, b: ir.IRBuilder, ins: Insn, retired: Retired) -> ir.IRBuilder:
        op = ins.op
        if op in ALU:
            self.write(b, ins.rd, ALU[op](b, self.read(b, ins.rs1), self.read(b, ins.rs2)))
        elif op in WITH_IMMEDIATE:
            self.write(b, ins.rd, ALU[WITH_IMMEDIATE[op]](b, self.read(b, ins.rs1), c64(ins.imm)))
        elif op == Op.LUI:
            self.write(b, ins.rd, c64(ins.imm))
        elif op == Op.AUIPC:
            self.write(b, ins.rd, c64(self.pc(ins.off) + ins.imm))
        elif op in LOADS:
            size, signed = LOADS[op]
            b, ptr = self.ram_pointer(b, ins, size, retired, store=False)
            value = b.load(ptr, align=size)
            if size < 8:
                value = b.sext(value, i64) if signed else b.zext(value, i64)
            self.write(b, ins.rd, value)
        elif op in STORES:
            size = STORES[op]
            b, ptr = self.ram_pointer(b, ins, size, retired, store=True)
            value = self.read(b, ins.rs2)
            b.store(value if size == 8 else b.trunc(value, ir.IntType(8 * size)), ptr, align=size)
        elif op in FP_OPS:
            b = self.emit_fp(b, ins, retired)
        else:
            assert op in CONTROL, f"op {op} is not translated"
        return b

    # --- double-precision floating point
    def emit_fp(self, b: ir.IRBuilder, ins: Insn, retired: Retired) -> ir.IRBuilder:
        op = ins.op
        # FP instructions are illegal while mstatus.FS is Off: the interpreter traps.
        status = b.load(self.mstatus)
        enabled = b.icmp_unsigned("!=", b.and_(status, c64(MSTATUS_FS)), c64(0))
        b = self.side_exit(b, enabled, ins.off, retired)
        if op == Op.FSD:
            b, ptr = self.ram_pointer(b, ins, 8, retired, store=True)
            b.store(b.load(self.fregs[ins.rs2]), ptr, align=8)
            return b
        if op == Op.FLD:
            b, ptr = self.ram_pointer(b, ins, 8, retired, store=False)
            b.store(b.load(ptr, align=8), self.fregs[ins.rd])
        elif op == Op.FMV_X_D:
            self.write(b, ins.rd, b.load(self.fregs[ins.rs1]))
        elif op == Op.FMV_D_X:
            b.store(self.read(b, ins.rs1), self.fregs[ins.rd])
        elif op in FP_BITS:
            x, y = b.load(self.fregs[ins.rs1]), b.load(self.fregs[ins.rs2])
            b.store(FP_BITS[op](b, x, y), self.fregs[ins.rd])
        else:
            b = self.fp_arith(b, ins, retired)
        # Like the interpreter, every executed F/D instruction but a store marks FS Dirty.
        b.store(b.or_(b.load(self.mstatus), c64(MSTATUS_FS)), self.mstatus)
        return b

    def fp_arith(self, b: ir.IRBuilder, ins: Insn, retired: Retired) -> ir.IRBuilder:
        """fpu.py's fast paths for FADD/FSUB/FMUL/FDIV/FSQRT.D, guard for guard."""
        if ins.rm == RM_DYN:  # the dynamic rounding mode must be RNE too
            frm = b.and_(b.lshr(b.load(self.fcsr), c64(5)), c64(7))
            b = self.side_exit(b, b.icmp_unsigned("==", frm, c64(RM_RNE)), ins.off, retired)
        x = b.bitcast(b.load(self.fregs[ins.rs1]), f64)
        y = b.bitcast(b.load(self.fregs[ins.rs2]), f64)
        fabs, sqrt, fma = (
            self.intrinsic("fabs", 1),
            self.intrinsic("sqrt", 1),
            self.intrinsic("fma", 3),
        )
        op = ins.op
        if op in (Op.FADD_D, Op.FSUB_D):
            if op == Op.FSUB_D:
                y = b.fneg(y)
            q = b.fadd(x, y)
            bb = b.fsub(q, x)  # two-sum: the exact error of the addition
            error = b.fadd(b.fsub(x, b.fsub(q, bb)), b.fsub(y, bb))
            fast = self.between(b, MIN_NORMAL_D, b.call(fabs, [q]))
        elif op == Op.FMUL_D:
            q = b.fmul(x, y)
            error = b.call(fma, [x, y, b.fneg(q)])
            fast = self.between(b, SAFE_LO, b.call(fabs, [q]))
        elif op == Op.FDIV_D:
            q = b.fdiv(x, y)  # (IEEE: no trap for a zero divisor; the guard rejects it)
            error = b.call(fma, [b.fneg(q), y, x])
            fast = b.and_(
                self.between(b, MIN_NORMAL_D, b.call(fabs, [q])),
                b.fcmp_ordered(">", b.call(fabs, [x]), ir.Constant(f64, SAFE_LO)),
            )
        else:  # FSQRT_D
            q = b.call(sqrt, [x])
            error = b.call(fma, [b.fneg(q), q, x])
            fast = self.between(b, SAFE_LO, x)
        b = self.side_exit(b, fast, ins.off, retired)
        b.store(b.bitcast(q, i64), self.fregs[ins.rd])
        inexact = b.fcmp_unordered("!=", error, ir.Constant(f64, 0.0))
        flags = b.select(inexact, c64(NX), c64(0))
        b.store(b.or_(b.load(self.fcsr), flags), self.fcsr)
        return b

    def between(self, b: ir.IRBuilder, low: float, value: ir.Value) -> ir.Value:
        """low < value < infinity (false for a NaN)."""
        return b.and_(
            b.fcmp_ordered(">", value, ir.Constant(f64, low)),
            b.fcmp_ordered("<", value, ir.Constant(f64, float("inf"))),
        )

    def intrinsic(self, name: str, arity: int) -> ir.Function:
        """LLVM's llvm.<name>.f64 (declared once per module)."""
        full = f"llvm.{name}.f64"
        if full in self.module.globals:
            return self.module.globals[full]
        return ir.Function(self.module, ir.FunctionType(f64, [f64] * arity), name=full)

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
