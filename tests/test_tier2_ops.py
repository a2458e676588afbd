"""Every op the second tier compiles, as a one-instruction region, against the interpreter.

For each record `compiles()` accepts, the instruction is compiled alone (with the tier's
own compiler) and called directly, then the interpreter runs it from the same state, over
a grid of edge values: 0, +-1, the limits of 8/16/32/64-bit integers, and for F/D every
NaN class, subnormals, infinities and boxed singles and halves, in several rounding modes.
Where the region retires the instruction, x, f, fcsr, mstatus and the next pc must equal
the interpreter's; where it hands back (a slow path, a rounding mode it leaves alone), it
must have changed nothing. Each op must run in its region for some of the grid, so none
passes by always handing back.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import CODE, RD, RS1, RS2, RS3, Rig, encode_record, s64

from rvemu.cpu import state as S
from rvemu.cpu.isa import (
    ALU,
    BRANCH,
    BY_OP,
    FMT_I,
    FMT_SHAMT,
    FMT_U,
    FP,
    JUMP,
    LOAD,
    STORE,
    SYSTEM,
    Record,
)
from rvemu.cpu.region_abi import call_from_python
from rvemu.tier2.emit import compiles

EBREAK = 0x00100073
DATA = CODE + 0x1008  # loads and stores reach this buffer (rs1 points at it), off the code page

INT_EDGES = [0, 1, -1, 2, -2, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF]
INT_EDGES += [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, (1 << 63) - 1, 1 << 63, 0x0123456789ABCDEF]
BOX32, BOX16 = 0xFFFFFFFF_00000000, 0xFFFFFFFF_FFFF0000
FP_EDGES = [
    0x0000000000000000,  # +0
    0x8000000000000000,  # -0
    0x0000000000000001,  # smallest subnormal
    0x000FFFFFFFFFFFFF,  # largest subnormal
    0x0010000000000000,  # smallest normal
    0x8010000000000000,
    0x3FF0000000000000,  # 1
    0xBFF8000000000000,  # -1.5
    0x3FB999999999999A,  # 0.1
    0x7FEFFFFFFFFFFFFF,  # largest finite
    0x7FF0000000000000,  # +inf
    0xFFF0000000000000,  # -inf
    0x7FF8000000000000,  # canonical quiet NaN
    0xFFF8000000000001,  # negative quiet NaN with payload
    0x7FF0000000000001,  # signalling NaN
    0x00F0000000000000,  # 2^-1008: small enough that error terms underflow
    BOX32 | 0x3F800000,  # single 1.0, boxed
    BOX32 | 0x7FC00000,  # single quiet NaN, boxed
    BOX32 | 0x00000001,  # single subnormal, boxed
    BOX32 | 0x00800000,  # smallest normal single
    BOX32 | 0xBFC00000,  # single -1.5
    BOX32 | 0x3DCCCCCD,  # single 0.1
    BOX32 | 0x7F7FFFFF,  # largest finite single
    BOX32 | 0xFF800000,  # single -inf
    BOX32 | 0x7F800001,  # single signalling NaN
    BOX16 | 0x3C00,  # half 1.0, boxed
    BOX16 | 0x7C01,  # half signalling NaN, boxed
    0x3C00,  # half 1.0, improperly boxed
]
RM_CASES = [(0, 0), (1, 0), (7, 0), (7, 1), (7, 5)]  # (rm field, fcsr.frm)


def third(a: int, b: int) -> int:
    """A third operand from two: their xor, boxed again if both are boxed singles."""
    both_singles = a & BOX32 == b & BOX32 == BOX32
    return (a ^ b) | (BOX32 if both_singles else 0)


def immediates(record: Record) -> list[int]:
    if record.kind in (BRANCH, JUMP) and record.fmt != FMT_I:
        return [8]
    if record.kind in (LOAD, STORE):
        return [0, 1, 8, -8, 3]
    if record.fmt == FMT_SHAMT:
        return [0, 1, 31, 63]
    if record.fmt == FMT_I:
        return [0, 1, -1, 2047, -2048, 0x555]
    if record.fmt == FMT_U:
        return [0, 0x12345000, -0x1000]
    return [0]


class Pair:
    """One instruction at CODE: run by the interpreter, and as a compiled region."""

    def __init__(self, rig: Rig, word: int) -> None:
        self.rig = rig
        self.hart = rig.hart
        rig.place([word, EBREAK], CODE)
        self.hart.flush_decoded()
        off = CODE - int(self.hart.st[S.RAM_BASE])
        address = self.hart.tier2.compile_at(off, CODE, False)
        assert address, f"{word:#010x}: no region compiled"
        self.address = address

    def run(self, x: np.ndarray, f: np.ndarray, csr_fcsr: int, data: int) -> tuple[bool, str]:
        """(whether the region retired it, a description of any difference)."""
        hart, rig = self.hart, self.rig
        state = []
        for compiled in (True, False):
            hart.reset(pc=CODE)
            hart.csr[S.MSTATUS] |= 1 << 13  # FS Initial
            hart.csr[S.FCSR] = csr_fcsr
            hart.x[:32] = x
            hart.f[:] = f
            rig.put(DATA - 8, data, 8)
            rig.put(DATA, data, 8)
            rig.put(DATA + 8, ~data, 8)
            if compiled:
                pc, retired = call_from_python(hart, self.address, 1)
            else:
                hart.run(1)
                pc = hart.pc
            ram = rig.m.read_phys(DATA - 8, 24)
            regs = (hart.x[:32].copy(), hart.f.copy(), int(hart.csr[S.FCSR]))
            state.append((regs, int(hart.csr[S.MSTATUS]), pc & (1 << 64) - 1, ram))
        (c_regs, c_status, c_pc, c_ram), (i_regs, i_status, i_pc, i_ram) = state
        if retired == 0:
            unchanged = (c_regs[0] == x).all() and (c_regs[1] == f).all() and c_pc == CODE
            return False, "" if unchanged and c_regs[2] == csr_fcsr else "handed back changed"
        diffs = []
        if not (c_regs[0] == i_regs[0]).all():
            diffs.append(f"x {list(c_regs[0][RD : RD + 1])} vs {list(i_regs[0][RD : RD + 1])}")
        if not (c_regs[1] == i_regs[1]).all():
            diffs.append(
                f"f {[hex(v & (1 << 64) - 1) for v in c_regs[1][RD : RD + 1]]} vs "
                f"{[hex(v & (1 << 64) - 1) for v in i_regs[1][RD : RD + 1]]}"
            )
        if c_regs[2] != i_regs[2]:
            diffs.append(f"fcsr {c_regs[2]:#x} vs {i_regs[2]:#x}")
        if c_status != i_status:
            diffs.append(f"mstatus {c_status:#x} vs {i_status:#x}")
        if c_pc != i_pc:
            diffs.append(f"pc {c_pc:#x} vs {i_pc:#x}")
        if c_ram != i_ram:
            diffs.append("memory")
        return True, "; ".join(diffs)


def compiled_records() -> list[Record]:
    return [r for op, r in sorted(BY_OP.items()) if compiles(op)]


@pytest.fixture(scope="module")
def rig() -> Rig:
    rig = Rig("1M")
    rig.hart.hot_threshold = 0  # the interpreter never enters a region by itself
    return rig


def test_the_tier_compiles_every_kind() -> None:
    """Integer, branch, jump, load, store, some F/D and some system records (fences,
    atomics) are compiled (a record the translator cannot read would silently drop out of
    this grid otherwise)."""
    kinds = {r.kind for r in compiled_records()}
    assert kinds == {ALU, BRANCH, JUMP, LOAD, STORE, FP, SYSTEM}
    names = {r.name for r in compiled_records()}
    assert {"fadd_d", "fmul_d", "fdiv_d", "fsqrt_d", "fld", "fsd", "clmul", "xperm8"} <= names
    assert {"fadd_s", "fmadd_s", "fsqrt_s", "fle_s", "fmin_s", "fcvt_s_d", "fcvt_w_s"} <= names
    assert {"fence", "fence_i", "lr_d", "sc_w", "amoadd_w", "amomaxu_d"} <= names


@pytest.mark.parametrize("record", compiled_records(), ids=lambda r: r.name)
def test_one_instruction_region_matches_the_interpreter(rig: Rig, record: Record) -> None:
    uses_fp = record.kind == FP or record.fp_data
    values = FP_EDGES if uses_fp else INT_EDGES
    rms = RM_CASES if record.uses_rm else [(0, 0)]
    ran_in_region = 0
    failures = []
    for imm, (rm, frm) in itertools.product(immediates(record), rms):
        pair = Pair(rig, encode_record(record, imm, rm))
        for a, b in itertools.product(values, repeat=2):
            x = np.zeros(32, dtype=np.int64)
            f = np.zeros(32, dtype=np.int64)
            if record.kind in (LOAD, STORE) or record.ext == "a":  # (memory at rs1)
                x[RS1] = DATA
                x[RS2] = s64(b) if not uses_fp else 0
                f[RS2] = s64(b)
                data = a
            else:
                x[RS1], x[RS2] = s64(a), s64(b)
                f[RS1], f[RS2], f[RS3] = s64(a), s64(b), s64(third(a, b))
                data = 0
            retired, diff = pair.run(x, f, frm << 5, data)
            ran_in_region += retired
            if diff:
                failures.append(f"imm {imm} rm {rm} frm {frm} a {a:#x} b {b:#x}: {diff}")
    assert not failures, f"{record.name}: {len(failures)} differences, e.g. {failures[:3]}"
    assert ran_in_region, f"{record.name}: the region never retired the instruction"


def test_an_fp_instruction_under_a_region_mark_keeps_its_rounding_mode() -> None:
    """A region whose first instruction hands back at once (fsqrt.d with rtz) leaves the
    interpreter to run it from a slot marked as a region entry: it must still round
    toward zero (it once took the slot's op id, under the mark, for its rm field)."""
    results = []
    for threshold in (1, 0):
        rig = Rig("1M")
        rig.hart.hot_threshold = threshold
        fsqrt_rtz, addi, bnez = 0x5A051153, 0xFFF28293, 0xFE029CE3  # t0 -= 1; loop
        rig.place([fsqrt_rtz, addi, bnez, EBREAK])
        rig.hart.x[5] = 4
        rig.hart.f[10] = 0x3FF47C8046AE683A  # sqrt rounds differently toward zero
        rig.hart.run(12)
        results.append((int(rig.hart.f[2]), int(rig.hart.instret), rig.hart.tier2.regions))
    (compiled, n1, regions), (interpreted, n2, _) = results
    assert regions > 0 and n1 == n2
    assert compiled == interpreted == 0x3FF21ACFB5D1588D


@pytest.mark.parametrize("rm", [1, 2, 3], ids=["rtz", "rdn", "rup"])
@pytest.mark.parametrize("name", ["fadd_d", "fsub_d", "fmul_d", "fdiv_d", "fsqrt_d", "fmadd_d"])
def test_directed_rounding_runs_in_the_region(rig: Rig, name: str, rm: int) -> None:
    """Double arithmetic in RTZ, RDN and RUP is done in the region (fpu_arith's directed
    fast paths), as the interpreter does it, for inexact results either side of zero."""
    record = next(r for r in BY_OP.values() if r.name == name)
    pair = Pair(rig, encode_record(record, 0, rm))
    tenth, three = 0x3FB999999999999A, 0x4008000000000000
    cases = [(tenth, three, tenth), (three | 1 << 63, tenth, tenth), (three, tenth, three)]
    for a, b, c in cases[::2] if name == "fsqrt_d" else cases:  # (no root of a negative)
        x, f = np.zeros(32, dtype=np.int64), np.zeros(32, dtype=np.int64)
        f[RS1], f[RS2], f[RS3] = s64(a), s64(b), s64(c)
        retired, diff = pair.run(x, f, 0, 0)
        assert retired and not diff, f"{name} rm {rm} {a:#x} {b:#x} {c:#x}: {diff or 'handed back'}"
