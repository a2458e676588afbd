"""The vocabulary instruction semantics are written in (`isa.py`'s last column).

Two kinds of words, each defined once and used by both tiers:
- *primitives*: one LLVM operation or a short fixed sequence (a logical shift, a 128-bit
  product's high half, a carry-less product). Each is an llvmlite builder function; the
  interpreter gets it as a Numba intrinsic, and the second tier calls it on its own builder.
- *helpers*: plain Python written with primitives and operators (`div` with RISC-V's rules
  for a zero divisor). Numba compiles them inline; the second tier translates their
  source (`rvemu.tier2.translate`).
Semantics and helpers use int64 values only (bit patterns), Python's `x if c else y` for
anything that must not be evaluated on the other path (a division by zero), and masks
for shift amounts (an LLVM shift by 64 or more has no defined result).
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

I1, I64, I128, F64 = ir.IntType(1), ir.IntType(64), ir.IntType(128), ir.DoubleType()

# A primitive's emitter: (builder, *llvm values) -> llvm value.
Emitter = Callable[..., ir.Value]
PRIMITIVES: dict[object, Emitter] = {}  # the Numba intrinsic -> its emitter

INT64_MIN = -(1 << 63)
M32 = 0xFFFFFFFF


def primitive(signature: str) -> Callable[[Emitter], Callable]:
    """Declare an LLVM-level operation: `emit(builder, *args)` builds it. Returns the Numba
    intrinsic the interpreter calls; the emitter is kept for the second tier."""

    def wrap(emit: Emitter) -> Callable:
        sig = getattr(types, signature.split("(")[0])(
            *(getattr(types, a.strip()) for a in signature.split("(")[1][:-1].split(","))
        )

        def codegen(context, builder, signature, llargs):  # noqa: ANN001, ANN202
            return emit(builder, *llargs)

        # Numba's intrinsic hook needs the exact arity (it reads the parameters).
        typers = {
            1: lambda typingctx, a: (sig, codegen),
            2: lambda typingctx, a, b: (sig, codegen),
            3: lambda typingctx, a, b, c: (sig, codegen),
        }
        typer = typers[len(sig.args)]
        typer.__name__ = emit.__name__
        numba_intrinsic = intrinsic(typer)
        PRIMITIVES[numba_intrinsic] = emit
        return numba_intrinsic

    return wrap


def helper(fn: Callable) -> Callable:
    """A helper both tiers use: Numba inlines it; the second tier translates its source."""
    return njit(cache=True, inline="always")(fn)


def llvm_intrinsic(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    """A call of LLVM's llvm.<name> for the arguments' type (declared once per module)."""
    ty = args[0].type
    full = f"llvm.{name}.{'f64' if isinstance(ty, ir.DoubleType) else f'i{ty.width}'}"
    fn = b.module.globals.get(full)
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(ty, [a.type for a in args]), full)
    return b.call(fn, list(args))


# --- floating-point bits


@primitive("float64(int64)")
def f64_from_bits(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Reinterpret an int64 bit pattern as a float64."""
    return b.bitcast(x, F64)


@primitive("int64(float64)")
def f64_bits(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Reinterpret a float64 as its int64 bit pattern."""
    return b.bitcast(x, I64)


@primitive("float64(float64, float64, float64)")
def fma(b: ir.IRBuilder, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    """x*y + z with a single rounding (the host's FMA instruction, or libm's fma)."""
    return llvm_intrinsic(b, "fma", x, y, z)


# --- integer primitives


@primitive("int64(int64, int64)")
def srl(b: ir.IRBuilder, a: ir.Value, s: ir.Value) -> ir.Value:
    """Logical shift right (s < 64)."""
    return b.lshr(a, s)


@primitive("boolean(int64, int64)")
def ltu(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """Unsigned less-than."""
    return b.icmp_unsigned("<", x, y)


@primitive("int64(int64, int64)")
def mulhu(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """The upper 64 bits of the unsigned 128-bit product."""
    wide = b.mul(b.zext(x, I128), b.zext(y, I128))
    return b.trunc(b.lshr(wide, ir.Constant(I128, 64)), I64)


@primitive("int64(int64, int64)")
def sdiv(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """Signed division rounding toward zero (y != 0, and not INT64_MIN / -1)."""
    return b.sdiv(x, y)


@primitive("int64(int64, int64)")
def srem(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.srem(x, y)


@primitive("int64(int64, int64)")
def udiv(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.udiv(x, y)


@primitive("int64(int64, int64)")
def urem(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.urem(x, y)


@primitive("int64(int64)")
def clz(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """Leading zero bits (64 for zero)."""
    return b.ctlz(a, ir.Constant(I1, 0))


@primitive("int64(int64)")
def ctz(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """Trailing zero bits (64 for zero)."""
    return b.cttz(a, ir.Constant(I1, 0))


@primitive("int64(int64)")
def cpop(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """Set bits."""
    return llvm_intrinsic(b, "ctpop", a)


@primitive("int64(int64)")
def rev8(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """The bytes in reverse order."""
    return b.bswap(a)


@primitive("int64(int64)")
def brev8(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """The bits of each byte in reverse order."""
    return b.bswap(b.bitreverse(a))


def _each(b: ir.IRBuilder, count: int, part: Callable[[int], ir.Value]) -> ir.Value:
    result = ir.Constant(I64, 0)
    for i in range(count):
        result = b.or_(result, part(i))
    return result


@primitive("int64(int64)")
def orc_b(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """Each byte all ones if it is nonzero, else zero."""

    def byte(i: int) -> ir.Value:
        mask = ir.Constant(I64, 0xFF << (8 * i))
        return b.select(
            b.icmp_unsigned("!=", b.and_(a, mask), ir.Constant(I64, 0)), mask, ir.Constant(I64, 0)
        )

    return _each(b, 8, byte)


def _clmul(
    b: ir.IRBuilder, x: ir.Value, y: ir.Value, shift: Callable[[int], tuple[str, int]]
) -> ir.Value:
    """XOR of x shifted by shift(i) for every set bit i of y (a carry-less product)."""
    zero = ir.Constant(I64, 0)
    result = zero
    for i in range(64):
        direction, amount = shift(i)
        if amount >= 64:
            continue
        shifted = (b.shl if direction == "left" else b.lshr)(x, ir.Constant(I64, amount))
        bit = b.trunc(b.lshr(y, ir.Constant(I64, i)), I1)
        result = b.xor(result, b.select(bit, shifted, zero))
    return result


@primitive("int64(int64, int64)")
def clmul(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """The low 64 bits of the carry-less product."""
    return _clmul(b, x, y, lambda i: ("left", i))


@primitive("int64(int64, int64)")
def clmulr(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """Bits 126..63 of the carry-less product."""
    return _clmul(b, x, y, lambda i: ("right", 63 - i))


def _xperm(b: ir.IRBuilder, x: ir.Value, y: ir.Value, width: int) -> ir.Value:
    """Each `width`-bit element of y selects that element of x (zero past the end)."""
    mask = ir.Constant(I64, (1 << width) - 1)
    count = 64 // width

    def element(i: int) -> ir.Value:
        index = b.and_(b.lshr(y, ir.Constant(I64, i * width)), mask)
        in_range = b.icmp_unsigned("<", index, ir.Constant(I64, count))
        amount = b.mul(b.and_(index, ir.Constant(I64, count - 1)), ir.Constant(I64, width))
        picked = b.and_(b.lshr(x, amount), mask)
        return b.shl(b.select(in_range, picked, ir.Constant(I64, 0)), ir.Constant(I64, i * width))

    return _each(b, count, element)


@primitive("int64(int64, int64)")
def xperm4(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _xperm(b, x, y, 4)


@primitive("int64(int64, int64)")
def xperm8(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _xperm(b, x, y, 8)


# --- helpers: written with the primitives, once for both tiers


@helper
def sext(value: int, bits: int) -> int:
    """The low `bits` bits of value, sign-extended."""
    return ((value & ((1 << bits) - 1)) ^ (1 << (bits - 1))) - (1 << (bits - 1))


@helper
def zext32(value: int) -> int:
    return value & M32


@helper
def mulh(a: int, b: int) -> int:
    return mulhu(a, b) - (b if a < 0 else 0) - (a if b < 0 else 0)


@helper
def mulhsu(a: int, b: int) -> int:
    return mulhu(a, b) - (b if a < 0 else 0)


@helper
def div(a: int, b: int) -> int:
    return -1 if b == 0 else (a if a == INT64_MIN and b == -1 else sdiv(a, b))


@helper
def rem(a: int, b: int) -> int:
    return a if b == 0 else (0 if a == INT64_MIN and b == -1 else srem(a, b))


@helper
def divu(a: int, b: int) -> int:
    return -1 if b == 0 else udiv(a, b)


@helper
def remu(a: int, b: int) -> int:
    return a if b == 0 else urem(a, b)


@helper
def rol(a: int, shamt: int) -> int:
    """Rotate left by shamt (0..63)."""
    return (a << shamt) | srl(srl(a, 63 - shamt), 1)


@helper
def ror(a: int, shamt: int) -> int:
    return srl(a, shamt) | ((a << (63 - shamt)) << 1)


@helper
def rolw(a: int, shamt: int) -> int:
    """Rotate the low 32 bits left by shamt (0..31); the result sign-extended."""
    low = a & M32
    return sext((low << shamt) | srl(low, 32 - shamt), 32)


@helper
def rorw(a: int, shamt: int) -> int:
    low = a & M32
    return sext(srl(low, shamt) | (low << (32 - shamt)), 32)


@helper
def fp_load_value(value: int, size: int) -> int:
    """An f register's value after a load of `size` bytes: narrower formats NaN-boxed."""
    return value | -(1 << (8 * size)) if size < 8 else value
