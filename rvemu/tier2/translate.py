"""Instruction semantics (isa.py's Python text, and the helpers it calls) to LLVM IR.

The interpreter runs the same text through Numba; this is the second reading of it, for
compiled regions. It understands the subset semantics are written in: int64 and float64
values, Python's operators and comparisons, `x if c else y` (evaluated lazily, so a guarded
division is never done), and calls. A call is to
- a primitive of ops.py: its llvmlite emitter builds it;
- a few Python and numpy functions (PYTHON_CALLS: np.int64, math.floor, ...);
- a function Numba inlines (`inline="always"`: ops.py's helpers, fpu.py's fast paths), or
  any other compiled function whose value is needed: its source is translated in place
  (assignments, `x op= y`, `if`, `return`);
- any other compiled function in `return f(...)` position: that is a slow path, and the
  region leaves before the instruction, for the interpreter to do it whole (`leave`) —
  but for the few that are the whole of their instruction (WHOLE: comparisons, fmin/fmax,
  conversions between doubles and integers), which are translated in place too.
Comparisons of constants (a helper's format or kind argument) are folded, and only the
arm of an `if` they choose is translated, so helpers written for every format translate
for the one an instruction uses. Anything else raises NotTranslatable, and the
instruction stays with the interpreter.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import textwrap
from collections.abc import Callable
from functools import cache

import numpy as np
from llvmlite import ir

from ..cpu import fpu, fpu_bits, fpu_compare, fpu_convert, ops

I1, I64, F64 = ir.IntType(1), ir.IntType(64), ir.DoubleType()


class NotTranslatable(Exception):
    """The semantics use something this translator does not know."""


def _const(value: object) -> ir.Constant:
    if isinstance(value, bool):
        return ir.Constant(I1, int(value))
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise NotTranslatable(f"constant {value} is no int64")
        return ir.Constant(I64, value)
    if isinstance(value, float):
        return ir.Constant(F64, value)
    raise NotTranslatable(f"constant {value!r}")


def _constant(v: ir.Value) -> int | None:
    """The value of an integer or boolean constant, else None."""
    if isinstance(v, ir.Constant) and isinstance(v.type, ir.IntType):
        value = v.constant
        return int(value) if isinstance(value, (bool, int)) else None
    return None


@cache  # (the trees are only read)
def _parsed(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


@cache  # (the trees are only read)
def _source_tree(fn: Callable) -> ast.FunctionDef:
    py = getattr(fn, "py_func", fn)
    tree = ast.parse(textwrap.dedent(inspect.getsource(py)))
    return tree.body[0]


def _inlined(fn: object) -> bool:
    return getattr(fn, "targetoptions", {}).get("inline") == "always"


_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_INT_OPS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.BitAnd: "and_",
    ast.BitOr: "or_",
    ast.BitXor: "xor",
    ast.LShift: "shl",
    ast.RShift: "ashr",
}
_FLOAT_OPS = {ast.Add: "fadd", ast.Sub: "fsub", ast.Mult: "fmul", ast.Div: "fdiv"}


class Translator:
    """Emits semantics with builder `b`. `names` binds the operand names (RS1, IMM, ...)
    to values; `leave()` returns the block that hands the instruction to the interpreter."""

    def __init__(
        self,
        b: ir.IRBuilder,
        names: dict[str, ir.Value],
        leave: Callable[[], ir.Block],
        namespace: dict[str, object],
    ) -> None:
        self.b = b
        self.names = names
        self.leave = leave
        self.namespace = namespace
        self.fn = b.function

    # --- values
    def as_int(self, v: ir.Value) -> ir.Value:
        if v.type == I1:
            return self.b.zext(v, I64)
        if v.type != I64:
            raise NotTranslatable(f"{v.type} where an integer is needed")
        return v

    def as_bool(self, v: ir.Value) -> ir.Value:
        if v.type == I1:
            return v
        if _constant(v) is not None:
            return _const(_constant(v) != 0)
        if v.type == I64:
            return self.b.icmp_signed("!=", v, ir.Constant(I64, 0))
        return self.b.fcmp_unordered("!=", v, ir.Constant(F64, 0.0))

    def expression(self, text: str) -> ir.Value:
        return self.expr(_parsed(text), self.names)

    def call_expression(self, text: str) -> list[ir.Value]:
        """A call that returns several values (an F/D operation's result and flags)."""
        node = _parsed(text)
        if not isinstance(node, ast.Call):
            raise NotTranslatable(f"{text!r} is no call")
        return self.call(node, self.names)

    def expr(self, node: ast.AST, env: dict[str, object]) -> ir.Value:  # noqa: C901
        b = self.b
        if isinstance(node, ast.Constant):
            return _const(node.value)
        if isinstance(node, ast.Name):
            if node.id in env:
                value = env[node.id]
                return value if isinstance(value, ir.Value) else _const(value)
            return self.global_value(node.id, env)
        if isinstance(node, ast.Attribute):
            return _const(self.resolve(node, env))
        if isinstance(node, ast.BinOp):
            x, y = self.expr(node.left, env), self.expr(node.right, env)
            if F64 in (x.type, y.type):
                if x.type != F64 or y.type != F64 or type(node.op) not in _FLOAT_OPS:
                    raise NotTranslatable("mixed or unsupported float operation")
                return getattr(b, _FLOAT_OPS[type(node.op)])(x, y)
            if type(node.op) not in _INT_OPS:
                raise NotTranslatable(f"operator {type(node.op).__name__}")
            return getattr(b, _INT_OPS[type(node.op)])(self.as_int(x), self.as_int(y))
        if isinstance(node, ast.UnaryOp):
            v = self.expr(node.operand, env)
            if isinstance(node.op, ast.Not):
                v = self.as_bool(v)
                return _const(not _constant(v)) if _constant(v) is not None else b.not_(v)
            if isinstance(node.op, ast.Invert):
                return b.not_(self.as_int(v))
            if isinstance(node.op, ast.USub):
                return b.fneg(v) if v.type == F64 else b.neg(self.as_int(v))
            raise NotTranslatable("unary operator")
        if isinstance(node, ast.Compare):
            result, left = None, self.expr(node.left, env)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.expr(right_node, env)
                test = self.compare(_CMP[type(op)], left, right)
                if result is not None and _constant(result) is not None:
                    result = test if _constant(result) else result
                elif result is not None and _constant(test) is None:
                    result = b.and_(result, test)
                elif result is not None:  # (result runtime, test constant)
                    result = result if _constant(test) else test
                else:
                    result = test
                left = right
            return result
        if isinstance(node, ast.BoolOp):  # both sides are pure: no short circuit needed
            values = [self.as_bool(self.expr(v, env)) for v in node.values]
            is_and = isinstance(node.op, ast.And)
            if any(_constant(v) == (not is_and) for v in values):
                return _const(not is_and)  # (a constant False in an and, True in an or)
            values = [v for v in values if _constant(v) is None] or [_const(is_and)]
            combine = b.and_ if is_and else b.or_
            result = values[0]
            for v in values[1:]:
                result = combine(result, v)
            return result
        if isinstance(node, ast.IfExp):
            return self.if_expression(node, env)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Call)
            and isinstance(node.slice, ast.Constant)
        ):  # one of a call's several results: layout(fmt)[2]
            return self.call(node.value, env)[node.slice.value]
        if isinstance(node, ast.Call):
            values = self.call(node, env)
            if len(values) != 1:
                raise NotTranslatable("a tuple where one value is needed")
            return values[0]
        raise NotTranslatable(f"{type(node).__name__} in semantics")

    def compare(self, pred: str, x: ir.Value, y: ir.Value) -> ir.Value:
        if F64 in (x.type, y.type):
            if x.type != F64 or y.type != F64:
                raise NotTranslatable("comparing a float with an integer")
            # Python: every comparison with a NaN is false, except !=
            if pred == "!=":
                return self.b.fcmp_unordered(pred, x, y)
            return self.b.fcmp_ordered(pred, x, y)
        known = _constant(x), _constant(y)
        if None not in known:  # (a format or kind argument: fold, so dead arms are left out)
            ops_ = {"==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__"}
            ops_ |= {">": "__gt__", ">=": "__ge__"}
            return _const(bool(getattr(known[0], ops_[pred])(known[1])))
        if x.type == I1 and y.type == I1:
            return self.b.icmp_unsigned(pred, x, y)
        return self.b.icmp_signed(pred, self.as_int(x), self.as_int(y))

    def if_expression(self, node: ast.IfExp, env: dict[str, object]) -> ir.Value:
        """`x if c else y`, with only the chosen arm evaluated (as Python and Numba do)."""
        b = self.b
        cond = self.as_bool(self.expr(node.test, env))
        if _constant(cond) is not None:
            return self.expr(node.body if _constant(cond) else node.orelse, env)
        yes, no, done = (self.fn.append_basic_block() for _ in range(3))
        b.cbranch(cond, yes, no)
        arms = []
        for block, arm in ((yes, node.body), (no, node.orelse)):
            b.position_at_end(block)
            arms.append((self.expr(arm, env), b.block))
        widen = {arm[0].type for arm in arms} == {I1, I64}  # a comparison meets an integer
        incoming = []
        for value, end in arms:
            b.position_at_end(end)
            if widen:
                value = self.as_int(value)
            b.branch(done)
            incoming.append((value, end))
        if incoming[0][0].type != incoming[1][0].type:
            raise NotTranslatable("arms of different types")
        b.position_at_end(done)
        phi = b.phi(incoming[0][0].type)
        for value, end in incoming:
            phi.add_incoming(value, end)
        return phi

    def global_value(self, name: str, env: dict[str, object]) -> ir.Value:
        return _const(self.lookup(name, env))

    def lookup(self, name: str, env: dict[str, object]) -> object:
        """A name as Python finds it: the function's module (the semantics namespace for
        isa.py's text), then the builtins (abs)."""
        scope = env.get("__globals__", self.namespace)
        if name in scope:
            return scope[name]
        if name in vars(builtins):
            return vars(builtins)[name]
        raise NotTranslatable(f"unknown name {name}")

    def resolve(self, node: ast.AST, env: dict[str, object]) -> object:
        """A dotted name (np.int64, math.sqrt) as the object it names."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id, env)
        if isinstance(node, ast.Attribute):
            return getattr(self.resolve(node.value, env), node.attr)
        raise NotTranslatable("a call through an expression")

    # --- calls
    def call(self, node: ast.Call, env: dict[str, object]) -> list[ir.Value]:
        b = self.b
        fn = self.resolve(node.func, env)
        name = getattr(fn, "__name__", "")
        if node.keywords:
            raise NotTranslatable("keyword arguments")
        if fn in PYTHON_CALLS:
            return [PYTHON_CALLS[fn](self, *(self.expr(a, env) for a in node.args))]
        if fn in ops.PRIMITIVES:
            args = [self.expr(a, env) for a in node.args]
            emit = ops.PRIMITIVES[fn]
            return [emit(b, *(a if a.type == F64 else self.as_int(a) for a in args))]
        if _inlined(fn) or hasattr(fn, "py_func"):
            # (a compiled function Numba calls rather than inlines is translated in place
            # too where its value is needed; in `return f(...)` position it is a slow path)
            args = [self.expr(a, env) for a in node.args]
            return self.inline(fn, args)
        raise NotTranslatable(f"call to {name or fn!r}")

    def float_abs(self, v: ir.Value) -> ir.Value:
        if v.type != F64:
            raise NotTranslatable("abs of an integer")
        return ops.llvm_intrinsic(self.b, "fabs", v)

    def inline(self, fn: Callable, args: list[ir.Value]) -> list[ir.Value]:
        """Translate fn's body in place with its parameters bound to args."""
        tree = _source_tree(fn)
        params = [a.arg for a in tree.args.args]
        if len(params) != len(args):
            raise NotTranslatable(f"{tree.name}: argument count")
        py = getattr(fn, "py_func", fn)
        env: dict[str, object] = dict(zip(params, args, strict=True))
        env["__globals__"] = py.__globals__
        return Body(self, env).run(tree.body)


# The Python and numpy calls semantics may make, beside ops.py's words.
def _int64(t: Translator, v: ir.Value) -> ir.Value:
    if v.type == F64:  # (semantics convert only floats they have checked are in range)
        return t.b.fptosi(v, I64)
    return t.as_int(v)


def _float64(t: Translator, v: ir.Value) -> ir.Value:
    if v.type == F64:
        return v
    return t.b.sitofp(t.as_int(v), F64)


# Singles: a float32 value is held as the float64 of the same value (every single is one),
# so np.float32(q) rounds q to single (to nearest: the fast paths use it under RNE only)
# and np.float64 of it is q itself; an int32 is held sign-extended, as the int64 it equals.
F32, I32 = ir.FloatType(), ir.IntType(32)


def _float32(t: Translator, v: ir.Value) -> ir.Value:
    if v.type != F64:
        raise NotTranslatable("np.float32 of an integer")
    return t.b.fpext(t.b.fptrunc(v, F32), F64)


def _int32(t: Translator, v: ir.Value) -> ir.Value:
    return t.b.sext(t.b.trunc(t.as_int(v), I32), I64)


def _f32_from_i32(t: Translator, v: ir.Value) -> ir.Value:
    return t.b.fpext(t.b.bitcast(t.b.trunc(t.as_int(v), I32), F32), F64)


def _f32_to_i32(t: Translator, v: ir.Value) -> ir.Value:
    if v.type != F64:
        raise NotTranslatable("the bits of a single from an integer")
    return t.b.sext(t.b.bitcast(t.b.fptrunc(v, F32), I32), I64)


PYTHON_CALLS: dict[object, Callable[[Translator, ir.Value], ir.Value]] = {
    np.int64: _int64,
    np.float64: _float64,
    np.int32: _int32,
    np.float32: _float32,
    fpu_bits._f32_from_i32: _f32_from_i32,
    fpu_bits._f32_to_i32: _f32_to_i32,
    abs: Translator.float_abs,
    math.sqrt: lambda t, v: ops.llvm_intrinsic(t.b, "sqrt", v),
    math.isnan: lambda t, v: t.b.fcmp_unordered("uno", v, v),
    # (Numba's floor, ceil and trunc of a float give an int64; where the semantics use
    # them, on values below 2**52, that is the same number as the float LLVM gives, but
    # for the sign of a zero, which no integer conversion sees)
    math.floor: lambda t, v: ops.llvm_intrinsic(t.b, "floor", v),
    math.ceil: lambda t, v: ops.llvm_intrinsic(t.b, "ceil", v),
    math.trunc: lambda t, v: ops.llvm_intrinsic(t.b, "trunc", v),
    math.copysign: lambda t, x, y: ops.llvm_intrinsic(t.b, "copysign", x, y),
}


# Compiled functions that F/D instructions return the result of, as if a slow path, but
# that are small and all of what the instruction does: comparisons, fmin/fmax, and
# conversions to integers (their own rare cases still leave, through their slow paths);
# and for singles, the operations with their fast paths and the helpers that read and
# box a single.
WHOLE = {
    fpu_compare.compare.py_func,
    fpu_compare.min_max.py_func,
    fpu_convert.to_int.py_func,
    fpu_convert.from_int.py_func,
    fpu._add_s.py_func,
    fpu._fma_s.py_func,
    fpu._min_max_s.py_func,
    fpu._s_value.py_func,
    fpu_bits.box_f32.py_func,
    fpu_bits.s_to_f64.py_func,
    fpu_convert.s_to_d.py_func,
    fpu_convert.widen.py_func,
    fpu_convert.d_to_s.py_func,
}


class Body:
    """One inlined function body: locals live in allocas (SROA makes them registers), and
    every `return` stores the results and jumps to one block after the body."""

    def __init__(self, t: Translator, env: dict[str, object]) -> None:
        self.t = t
        self.env = env
        self.slots: dict[str, ir.AllocaInstr] = {}
        self.results: list[ir.AllocaInstr] | None = None
        self.done = t.fn.append_basic_block()
        self.fast_returns = 0

    def alloca(self, ty: ir.Type) -> ir.AllocaInstr:
        entry = ir.IRBuilder(self.t.fn.entry_basic_block)
        entry.position_at_start(self.t.fn.entry_basic_block)
        return entry.alloca(ty)

    def run(self, statements: list[ast.stmt]) -> list[ir.Value]:
        b = self.t.b
        self.block(statements)
        if not b.block.is_terminated:
            raise NotTranslatable("a body that does not end in return")
        if self.fast_returns == 0:
            raise NotTranslatable("no fast path: every way through leaves the region")
        b.position_at_end(self.done)
        return [b.load(slot) for slot in self.results]

    def scope(self) -> dict[str, object]:
        """The parameters, and the locals' current values."""
        env = dict(self.env)
        for name, slot in self.slots.items():
            env[name] = self.t.b.load(slot)
        return env

    def value(self, node: ast.AST) -> ir.Value:
        return self.t.expr(node, self.scope())

    def block(self, statements: list[ast.stmt]) -> None:
        b = self.t.b
        for stmt in statements:
            if b.block.is_terminated:
                return
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a docstring
            if isinstance(stmt, ast.AugAssign):  # x op= v is x = x op v
                value = ast.BinOp(ast.Name(stmt.target.id, ast.Load()), stmt.op, stmt.value)
                self.assign(ast.Assign([stmt.target], value))
            elif isinstance(stmt, ast.Assign):
                self.assign(stmt)
            elif isinstance(stmt, ast.Return):
                self.ret(stmt)
            elif isinstance(stmt, ast.If):
                self.branch(stmt)
            else:
                raise NotTranslatable(f"{type(stmt).__name__} statement")

    def assign(self, stmt: ast.Assign) -> None:
        if len(stmt.targets) != 1:
            raise NotTranslatable("chained assignment")
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            pairs = [(target.id, self.value(stmt.value))]
        elif isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple):
            values = [self.value(v) for v in stmt.value.elts]
            pairs = [(t.id, v) for t, v in zip(target.elts, values, strict=True)]
        elif isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Call):
            values = self.t.call(stmt.value, self.scope())  # a call's several results
            if len(values) != len(target.elts):
                raise NotTranslatable("unpacking the wrong number of results")
            pairs = [(t.id, v) for t, v in zip(target.elts, values, strict=True)]
        else:
            raise NotTranslatable("assignment form")
        for name, value in pairs:
            slot = self.slots.get(name)
            if slot is None:
                slot = self.slots[name] = self.alloca(value.type)
            if slot.type.pointee != value.type:
                raise NotTranslatable(f"{name} changes type")
            self.t.b.store(value, slot)

    def ret(self, stmt: ast.Return) -> None:
        b = self.t.b
        node = stmt.value
        if isinstance(node, ast.Call) and self.slow(node):
            b.branch(self.t.leave())  # a slow path: the interpreter does the instruction
            return
        if isinstance(node, ast.Call):  # an inlined function's results are ours
            values = self.t.call(node, self.scope())
        else:
            elements = node.elts if isinstance(node, ast.Tuple) else [node]
            values = [self.value(v) for v in elements]
        values = [v if v.type == F64 else self.t.as_int(v) for v in values]
        if self.results is None:
            self.results = [self.alloca(v.type) for v in values]
        if [r.type.pointee for r in self.results] != [v.type for v in values]:
            raise NotTranslatable("returns of different types")
        for slot, v in zip(self.results, values, strict=True):
            b.store(v, slot)
        b.branch(self.done)
        self.fast_returns += 1

    def slow(self, node: ast.Call) -> bool:
        """A call to a compiled function Numba does not inline: a slow path (but for the
        few that are the whole of their instruction, WHOLE)."""
        fn = self.t.resolve(node.func, self.env)
        if fn in PYTHON_CALLS or fn in ops.PRIMITIVES or _inlined(fn):
            return False
        return getattr(fn, "py_func", fn) not in WHOLE

    def branch(self, stmt: ast.If) -> None:
        b = self.t.b
        cond = self.t.as_bool(self.value(stmt.test))
        if _constant(cond) is not None:  # (only the arm taken: the other may not translate)
            self.block(stmt.body if _constant(cond) else stmt.orelse)
            return
        yes, no, after = (self.t.fn.append_basic_block() for _ in range(3))
        b.cbranch(cond, yes, no)
        falls_through = False
        for block, body in ((yes, stmt.body), (no, stmt.orelse)):
            b.position_at_end(block)
            self.block(body)
            if not b.block.is_terminated:
                b.branch(after)
                falls_through = True
        b.position_at_end(after)
        if not falls_through:  # both ways returned: nothing follows
            b.unreachable()
