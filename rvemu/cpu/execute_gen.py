"""The interpreter's dispatch, generated from the records of `isa.py`.

`source()` writes four functions as Python text, one `elif op == Op.X:` case per record:
- `execute`: integer, branch, jump, load and store instructions, inlined into the hart's
  loop (`core.py`); it returns HANDOFF for the rest;
- `alu_compute` (compiled apart, called by address: entry_points.ASIDE): the integer
  operations of the extensions beyond I and M;
- `execute_fp_hot` (inlined into the loop too) and `fp_compute` (compiled apart, called
  by address: entry_points.ASIDE): the F/D operations, the first only for the commonest;
the semantics text pasted in, with RS1 read as x[rs1] and so on. The text is written to a
file in Numba's cache folder (named by its own hash) and imported from there, so Numba
caches it like any module, and a change to the table makes a new file.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
import tempfile
from types import ModuleType

from .isa import ALU, BRANCH, FP, JUMP, LOAD, RECORDS, STORE, Record

# The modules whose public names the semantics may use, later ones winning (the generated
# code star-imports them in this order; the second tier looks names up the same way).
SEMANTICS_MODULES = ("rvemu.cpu.fpu", "rvemu.cpu.fpu_half", "rvemu.cpu.ops")

HANDOFF = -4  # `execute` does not do this op: the loop hands it to execute_fp / execute_system

# Where the hot cases go: first in the chain (LLVM's first jump table covers about 40 cases;
# what lands there is a measured choice, not a meaning).
HOT_FIRST = ("addi", "add", "lui", "auipc", "jal", "jalr")
# Integer operations of these extensions are inlined into the hart's loop (both copies);
# the others' are compiled once, in `alu_compute`: inlining all of them doubled the core's
# first compile for instructions that hot code runs compiled (tier 2) anyway.
INLINE_EXTENSIONS = ("i", "m")
# F/D operations whose fast paths (fpu.py's `<op>_fast`) are inlined into the hart's loop;
# the rest, and what those fast paths do not do, go through fp_compute. (Their exact paths
# inlined too were a sixth of the loop's first compile.)
FP_HOT = ("fadd_d", "fsub_d", "fmul_d", "fdiv_d", "fmadd_d")

# How each tier's interpreter reads an operand name of the semantics.
_INTERPRETER_NAMES = {
    "RS1": "x[rs1]",
    "RS2": "x[rs2]",
    "IMM": "imm",
    "PC": "pc",
    "FS1": "f[rs1]",
    "FS2": "f[rs2]",
    "FS3": "f[rs3_rm >> 3]",
    "RM": "rm",
}
_FP_COMPUTE_NAMES = {"FS1": "a", "FS2": "b", "FS3": "c", "RS1": "xa", "RM": "rm"}
_ALU_COMPUTE_NAMES = {"RS1": "a", "RS2": "b", "IMM": "imm", "PC": "pc"}


def expression(record: Record, names: dict[str, str]) -> str:
    """The record's semantics as Python source, operand names replaced."""

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return ast.parse(names[node.id], mode="eval").body if node.id in names else node

    tree = Rename().visit(ast.parse(record.semantics, mode="eval"))
    return ast.unparse(tree)


def _case(r: Record) -> list[str]:
    """The body of record r's case in `execute`."""
    if r.kind == ALU:
        return [f"x[rd] = {expression(r, _INTERPRETER_NAMES)}"]
    if r.kind == BRANCH:
        return [f"if {expression(r, _INTERPRETER_NAMES)}:", "    next_pc = pc + imm"]
    if r.kind == JUMP:
        return [
            f"target = {expression(r, _INTERPRETER_NAMES)}",
            "x[rd] = next_pc",
            "next_pc = target",
        ]
    lines = ["addr = x[rs1] + imm"]
    if r.kind == LOAD and r.fp_data:
        return lines + [
            "if not fp_enabled(csr[MSTATUS]):",
            "    status = CAUSE_ILLEGAL",
            "else:",
            f"    value, status = load(addr, {r.size}, mem, tlb, csr, st, instret, paged)",
            "    if status == OK:",
            f"        f[rd] = fp_load_value(value, {r.size})",
            "        csr[MSTATUS] = dirty(csr[MSTATUS])",
        ]
    if r.kind == LOAD:
        value = f"sext(value, {8 * r.size})" if r.signed and r.size < 8 else "value"
        return lines + [
            f"value, status = load(addr, {r.size}, mem, tlb, csr, st, instret, paged)",
            "if status == OK:",
            f"    x[rd] = {value}",
        ]
    data = "f[rs2]" if r.fp_data else "x[rs2]"
    call = f"store(addr, {r.size}, {data}, mem, tlb, pagef, dc, csr, st, instret, paged)"
    if r.fp_data:
        return lines + [f"status = {call} if fp_enabled(csr[MSTATUS]) else CAUSE_ILLEGAL"]
    return lines + [f"status = {call}"]


def _chain(cases: list[tuple[Record, list[str]]], indent: str, otherwise: list[str]) -> list[str]:
    out = []
    for k, (r, body) in enumerate(cases):
        out.append(f"{indent}{'if' if k == 0 else 'elif'} op == Op.{r.name.upper()}:")
        out += [f"{indent}    {line}" for line in body]
    out.append(f"{indent}else:")
    out += [f"{indent}    {line}" for line in otherwise]
    return out


def _fp_call(r: Record, names: dict[str, str], fast: bool = False) -> str:
    """`result, flags = <the record's operation>`, or its fast path (fpu.py's `<op>_fast`)."""
    call = ast.parse(expression(r, names), mode="eval").body
    if fast:
        call.func.id += "_fast"
    return f"result, flags = {ast.unparse(call)}"


def source() -> str:
    by_name = {r.name: r for r in RECORDS}
    ordered = [by_name[n] for n in HOT_FIRST] + [r for r in RECORDS if r.name not in HOT_FIRST]

    def inline(r: Record) -> bool:
        return r.kind != ALU or set(r.extensions) <= set(INLINE_EXTENSIONS)

    integer = [r for r in ordered if r.kind in (ALU, BRANCH, JUMP, LOAD, STORE) and inline(r)]
    rare = [r for r in RECORDS if r.kind == ALU and not inline(r)]
    fp = [r for r in RECORDS if r.kind == FP]
    hot = [by_name[n] for n in FP_HOT]
    lines = [
        '"""Generated by rvemu/cpu/execute_gen.py from rvemu/cpu/isa.py: do not edit."""',
        "",
        "import numpy as np",
        "from numba import njit",
        "",
        "from rvemu.cpu.aside import caller",
        "from rvemu.cpu.execute_gen import HANDOFF",
        "from rvemu.cpu.fp_state import NOT_LOADED, dirty, fp_enabled",
        "from rvemu.cpu.isa import Op",
        "from rvemu.cpu.jit import njit_generic, njit_inline",
        "from rvemu.cpu.memory import load, store",
        *(f"from {m} import *  # noqa: F403" for m in SEMANTICS_MODULES),
        "from rvemu.cpu.state import CAUSE_ILLEGAL, MSTATUS, OK",
        "",
        "OUT_OF_LINE = np.zeros(len(Op), dtype=np.int64)  # integer ops alu_compute does",
        "# alu_compute and fp_compute are called by address (aside.py, entry_points.ASIDE)",
        "call_alu_compute = caller('alu_compute')",
        "call_fp_compute = caller('fp_compute')",
        *(f"OUT_OF_LINE[Op.{r.name.upper()}] = 1" for r in rare),
        "",
        "",
        "@njit_generic",
        "def alu_compute(op, a, b, imm, pc):",
        '    """The result of an integer operation not inlined into the loop."""',
    ]
    lines += _chain(
        [(r, [f"return {expression(r, _ALU_COMPUTE_NAMES)}"]) for r in rare], "    ", ["return 0"]
    )
    lines += [
        "",
        "",
        # LLVM inlines it (Numba's own inlining copies its IR and took most of the compile).
        # With plain types it is compiled once for both copies of the loop: `paged` only
        # goes on to load and store, and LLVM folds it there.
        "@njit_inline",
        "def execute(op, rd, rs1, rs2, imm, pc, next_pc, x, f, mem, tlb, pagef, dc, csr, st,"
        " instret, paged, alu_compute_at):",
        "    status = OK",
        "    addr = 0",
    ]
    lines += _chain(
        [(r, _case(r)) for r in integer],
        "    ",
        [
            "if OUT_OF_LINE[op]:",
            "    x[rd] = call_alu_compute(alu_compute_at, op, x[rs1], x[rs2], imm, pc)",
            "else:",
            "    status = HANDOFF",
        ],
    )
    lines += ["    return next_pc, status, addr", "", ""]
    lines += [
        "",
        "",
        '@njit(cache=True, inline="always")',
        "def execute_fp_hot(op, rd, rs1, rs2, rs3_rm, rm, x, f, fp_compute_at):",
        "    to_x = False",
    ]
    lines += _chain(
        [(r, [_fp_call(r, _INTERPRETER_NAMES, fast=True)]) for r in hot],
        "    ",
        ["result, flags = 0, NOT_FAST"],
    )
    lines += [
        "    if flags == NOT_FAST:",
        "        if fp_compute_at == 0:  # (its library is built when first needed)",
        "            return 0, NOT_LOADED, False",
        "        result, flags, to_x = call_fp_compute(",
        "            fp_compute_at, op, f[rs1], f[rs2], f[rs3_rm >> 3], x[rs1], rm",
        "        )",
        "    return result, flags, to_x",
        "",
        "",
    ]
    lines += [
        "@njit_generic",
        "def fp_compute(op, a, b, c, xa, rm):",
        '    """(result, fflags, whether the result goes to an x register); fflags -1 for',
        '    an op that is no F/D operation."""',
    ]
    fp_cases = [(r, [_fp_call(r, _FP_COMPUTE_NAMES), f"to_x = {not r.fp_rd}"]) for r in fp]
    lines += _chain(fp_cases, "    ", ["return 0, -1, False"])
    lines += ["    return result, flags, to_x", ""]
    return "\n".join(lines)


def semantics_namespace() -> dict[str, object]:
    """The names the semantics text sees, as the generated module's star-imports give them."""
    namespace: dict[str, object] = {}
    for name in SEMANTICS_MODULES:
        module = importlib.import_module(name)
        namespace.update((k, v) for k, v in vars(module).items() if not k.startswith("_"))
    return namespace


def load_module() -> ModuleType:
    """The generated module, written to Numba's cache folder unless already there."""
    return import_generated(source(), "execute", "rvemu.cpu._execute")


def import_generated(text: str, stem: str, name: str) -> ModuleType:
    """Module `name` of source `text`, from a file named by its hash in Numba's cache folder
    (written unless already there), so that Numba caches what it compiles from it."""
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    folder = os.path.join(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir(), "generated")
    path = os.path.join(folder, f"{stem}_{digest}.py")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)  # atomic: processes starting together may all write it
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
