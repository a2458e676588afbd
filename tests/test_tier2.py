"""The second tier (rvemu.tier2) against the interpreter: the same program, run with hot
code compiled at its first taken jump and with nothing compiled, must end in the same
state (registers, pc, instructions retired, all of RAM), and stop at the same points.

Every test also checks that regions were compiled, so none passes by never using them."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from conftest import enc
from toolchain import build_elf

from rvemu import Machine
from rvemu.cpu import state as S
from rvemu.cpu.region_abi import UNTRANSLATED, call_from_python
from rvemu.tier2 import compiler

R_TYPE = (
    "add sub sll slt sltu xor srl sra or and addw subw sllw srlw sraw "
    "mul mulh mulhsu mulhu div divu rem remu mulw divw divuw remw remuw"
).split()
I_TYPE = "addi slti sltiu xori ori andi addiw".split()
SHIFTS = {"slli": 64, "srli": 64, "srai": 64, "slliw": 32, "srliw": 32, "sraiw": 32}
LOADS = "lb lh lw ld lbu lhu lwu".split()
STORES = "sb sh sw sd".split()
BRANCHES = "beq bne blt bge bltu bgeu".split()
AMOS = "amoswap amoadd amoxor amoand amoor amomin amomax amominu amomaxu".split()
FP_ARITH = "fadd.d fsub.d fmul.d fdiv.d".split()
FP_SIGN = "fsgnj.d fsgnjn.d fsgnjx.d".split()
FP_FUSED = "fmadd.d fmsub.d fnmadd.d fnmsub.d".split()
FP_COMPARE = "feq.d flt.d fle.d".split()
FP_MIN_MAX = "fmin.d fmax.d".split()
FP_TO_INT = "fcvt.w.d fcvt.wu.d fcvt.l.d fcvt.lu.d".split()
FP_FROM_INT = "fcvt.d.w fcvt.d.wu fcvt.d.l fcvt.d.lu".split()
# Doubles that find the edges of the fast paths: zeros, subnormals, the smallest normal,
# huge values, infinities, NaNs (quiet and signalling), and ordinary ones.
FP_EDGES = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308]
FP_EDGES += [float("inf"), -float("inf"), float("nan"), 1.0, -3.5, 0.1, 2.0**-960, 2.0**-500]
SNAN = 0x7FF0000000000001
BASES = ("sp", "s0", "t6")  # point into the buffer in memory programs; never written
WRITABLE = [n for n in range(1, 32) if n not in (2, 8, 31)]
# Register values that find the edges: division overflow, shifts by 63, sign bits.
EDGES = [0, 1, 2, 31, 32, 63, 64, -1, -2, 1 << 63, (1 << 63) - 1, 0x80000000, 0xFFFFFFFF]


def random_fp(rng: random.Random, memory: bool) -> str:
    """One random double-precision instruction: arithmetic in every rounding mode, sign
    injection, moves, and (in memory programs) loads and stores."""
    fd, fs1, fs2 = (rng.randrange(32) for _ in range(3))
    kind = rng.random()
    if kind < 0.15:  # fused multiply-adds, comparisons, min/max, conversions, fclass
        rd, fs3 = rng.choice(WRITABLE), rng.randrange(32)
        rm = rng.choice(["", "", ", rne", ", dyn", ", rtz", ", rdn"])
        return rng.choice(
            [
                f"{rng.choice(FP_FUSED)} f{fd}, f{fs1}, f{fs2}, f{fs3}{rm}",
                f"{rng.choice(FP_COMPARE)} x{rd}, f{fs1}, f{fs2}",
                f"{rng.choice(FP_MIN_MAX)} f{fd}, f{fs1}, f{fs2}",
                f"{rng.choice(FP_TO_INT)} x{rd}, f{fs1}{rm}",
                f"{rng.choice(FP_FROM_INT)} f{fd}, x{rng.randrange(32)}",  # (exact or dyn)
                f"fclass.d x{rd}, f{fs1}",
            ]
        )
    if kind < 0.5:
        rm = rng.choice(["", "", "", ", rne", ", dyn", ", rtz"])
        if rng.random() < 0.15:
            return f"fsqrt.d f{fd}, f{fs1}{rm}"
        return f"{rng.choice(FP_ARITH)} f{fd}, f{fs1}, f{fs2}{rm}"
    if kind < 0.65:
        return f"{rng.choice(FP_SIGN)} f{fd}, f{fs1}, f{fs2}"
    if kind < 0.75 or not memory:
        if rng.random() < 0.5:
            return f"fmv.x.d x{rng.choice(WRITABLE)}, f{fs1}"
        return f"fmv.d.x f{fd}, x{rng.randrange(32)}"
    # Mostly aligned: loads keep bringing in fresh (mostly finite) values.
    base, off = rng.choice(BASES), rng.choice([8 * rng.randrange(-8, 8), rng.randrange(-64, 64)])
    return f"fld f{fd}, {off}({base})" if rng.random() < 0.6 else f"fsd f{fs2}, {off}({base})"


def random_body(rng: random.Random, count: int, memory: bool, fp: bool = False) -> list[str]:
    """`count` random integer instructions (the assembler compresses what it can), with
    forward branches and jumps, and an indirect jump now and then; with `fp`, a third of
    them are double-precision instructions."""
    body: list[str] = []
    pending = False  # a forward branch waits for its label "1:"
    while len(body) < count:
        rd, rs1, rs2 = rng.choice(WRITABLE), rng.randrange(32), rng.randrange(32)
        kind = rng.random()
        if fp and rng.random() < 0.33:
            body.append(random_fp(rng, memory))
        elif kind < 0.45:
            body.append(f"{rng.choice(R_TYPE)} x{rd}, x{rs1}, x{rs2}")
        elif kind < 0.6:
            body.append(f"{rng.choice(I_TYPE)} x{rd}, x{rs1}, {rng.randrange(-2048, 2048)}")
        elif kind < 0.7:
            name = rng.choice(list(SHIFTS))
            body.append(f"{name} x{rd}, x{rs1}, {rng.randrange(SHIFTS[name])}")
        elif kind < 0.73:
            body.append(f"{rng.choice(('lui', 'auipc'))} x{rd}, {rng.randrange(1 << 20)}")
        elif kind < 0.85 and memory:
            base, off = rng.choice(BASES), rng.randrange(-64, 64)
            if rng.random() < 0.15:  # atomics (bases stay 8-aligned: never written)
                width = rng.choice("wd")
                if rng.random() < 0.5:
                    body.append(f"{rng.choice(AMOS)}.{width} x{rd}, x{rs2}, ({base})")
                else:  # an LR/SC pair, or an SC alone (no reservation, or a stale one)
                    if rng.random() < 0.7:
                        body.append(f"lr.{width} x{rd}, ({base})")
                    body.append(f"sc.{width} x{rng.choice(WRITABLE)}, x{rs2}, ({base})")
            elif rng.random() < 0.5:
                body.append(f"{rng.choice(LOADS)} x{rd}, {off}({base})")
            else:
                body.append(f"{rng.choice(STORES)} x{rs2}, {off}({base})")
        elif kind < 0.95 and not pending:
            body.append(f"{rng.choice(BRANCHES)} x{rs1}, x{rs2}, 1f")
            pending = True
            continue
        elif kind < 0.97 and not pending:
            body.append(f"jal x{rd}, 1f")
            pending = True
            continue
        elif not pending:
            body += ["la t4, 2f", f"jalr x{rd}, 0(t4)", "2:"]
        if pending and rng.random() < 0.4:
            body.append("1:")
            pending = False
    if pending:
        body.append("1:")
    return body


def bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


# From M-mode into S-mode under Sv39, at virtual addresses 1 GiB below the physical ones
# (VA 0x4000_0000 + x is PA 0x8000_0000 + x), with the first GiB (devices) mapped as is.
TO_SUPERVISOR = """
        la      t0, root
        li      t1, 0xCF               # V R W X A D: VA 0 -> PA 0, 1 GiB
        sd      t1, 0(t0)
        li      t1, (0x80000000 >> 2) | 0xCF
        sd      t1, 8(t0)              # VA 0x40000000 -> PA 0x80000000
        srli    t0, t0, 12
        li      t1, 8 << 60
        or      t0, t0, t1
        csrw    satp, t0
        li      t0, 0x1800
        csrc    mstatus, t0
        li      t0, 0x800              # MPP = S
        csrs    mstatus, t0
        li      t0, -1
        csrw    pmpaddr0, t0
        li      t0, 0x1f               # PMP entry 0: all memory RWX (S/U need a rule)
        csrw    pmpcfg0, t0
        la      t0, supervisor
        li      t1, 0x40000000
        sub     t0, t0, t1
        csrw    mepc, t0
        mret
supervisor:
"""


def loop_program(
    seed: int,
    count: int,
    memory: bool,
    iterations: int = 4,
    fp: bool = False,
    frm: int = 0,
    supervisor: bool = False,
) -> str:
    """Random registers, then a random body run `iterations` times (its loop counter kept
    in memory, as the body may write any register), then power-off. With `fp`, random
    double-precision instructions too, with the dynamic rounding mode `frm`; with
    `supervisor`, all of it in S-mode at virtual addresses other than the physical ones."""
    rng = random.Random(seed)
    status = "sstatus" if supervisor else "mstatus"
    init = ["li t0, 0x2000", f"csrs {status}, t0", f"csrwi frm, {frm}"]  # FS Initial
    for n in range(32):  # mostly ordinary doubles, so that results stay finite a while
        if rng.random() < 0.2:
            value = rng.choice([SNAN, bits(rng.choice(FP_EDGES))])
        else:
            value = bits(rng.uniform(-9, 9))
        init += [f"li t0, {value:#x}", f"fmv.d.x f{n}, t0"]
    for n in WRITABLE:
        value = rng.choice([rng.getrandbits(64), rng.randrange(-99, 99), rng.choice(EDGES)])
        init.append(f"li x{n}, {value & ((1 << 64) - 1):#x}")
    init += ["la t6, buffer + 2048", "mv sp, t6", "mv s0, t6"]
    words = [rng.getrandbits(64) for _ in range(512)]
    if fp:  # doubles in the buffer, mostly ordinary ones
        words = [bits(rng.uniform(-9, 9)) if w & 7 else bits(rng.choice(FP_EDGES)) for w in words]
    data = ", ".join(f"{w:#x}" for w in words)
    lines = [
        ".text",
        ".globl _start",
        "_start:",
        *(TO_SUPERVISOR.strip().splitlines() if supervisor else []),
        *init,
        "loop:",
        *random_body(rng, count, memory, fp),
        "la t5, counter",
        "ld t4, 0(t5)",
        "addi t4, t4, -1",
        "sd t4, 0(t5)",
        "beqz t4, 4f",
        # fflags and mstatus.FS are sticky: clear them before another time round, so that
        # the end state shows what the last (compiled) run of the body set.
        "csrw fflags, x0",
        "li t5, 0x6000",
        f"csrc {status}, t5",
        "li t5, 0x2000",
        f"csrs {status}, t5",
        "j loop",
        "4:",
        "li t0, 0x100000",  # sifive_test: power off
        "li t1, 0x5555",
        "sw t1, 0(t0)",
        "3: j 3b",
        ".data",
        ".balign 4096",  # data apart from code, so stores do not hit code pages
        f"counter: .dword {iterations}",
        ".balign 4096",
        f"buffer: .dword {data}",
        ".balign 4096",
        "root: .space 4096",  # the Sv39 root page table (supervisor programs)
    ]
    return (
        "\n".join(ln if ln.endswith(":") or ln[0] == " " else f"        {ln}" for ln in lines)
        + "\n"
    )


def machine(elf: str, threshold: int) -> Machine:
    m = Machine(memory="16M")
    m.hart.hot_threshold = threshold
    # These tests are about when and what code gets compiled: at once, the guest waiting,
    # even where the environment says background (make tier2-modes; test_code_cache.py
    # covers the worker).
    m.hart.tier2.background = False
    m.load(elf)
    return m


def assert_same_state(a: Machine, b: Machine) -> None:
    assert a.hart.pc == b.hart.pc
    assert a.hart.instret == b.hart.instret
    assert list(a.hart.x[:32]) == list(b.hart.x[:32])
    assert list(a.hart.f) == list(b.hart.f)
    assert a.hart.csr[S.FCSR] == b.hart.csr[S.FCSR]
    assert a.hart.csr[S.MSTATUS] == b.hart.csr[S.MSTATUS]
    assert np.array_equal(a.hart.ram, b.hart.ram)


@pytest.mark.parametrize(
    "seed,memory,supervisor",
    [(1, False, False), (2, False, False), (3, True, False), (4, True, False), (5, True, False)]
    + [(21, False, True), (22, True, True), (23, True, True)],
)
def test_random_loops_end_as_in_the_interpreter(seed: int, memory: bool, supervisor: bool) -> None:
    """Random integer loops, untranslated (M-mode) and translated (S-mode, Sv39)."""
    program = loop_program(seed, 300, memory, supervisor=supervisor)
    elf = str(build_elf(f"tier2-loop-{seed}", program))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    for m in (compiled, interpreted):
        result = m.run(max_instructions=1_000_000)
        assert result.reason == "poweroff", result
    assert compiled.hart.tier2.regions > 0 and interpreted.hart.tier2.regions == 0
    if supervisor:  # the loop ran translated, and so did regions compiled for it
        assert compiled.hart.priv == S.PRIV_S
        assert (compiled.hart.tier2.entry_pc != UNTRANSLATED).any()
    assert_same_state(compiled, interpreted)


@pytest.mark.parametrize(
    "seed,memory,frm,supervisor",
    [(11, False, 0, False), (12, True, 0, False), (13, True, 1, False), (14, True, 0, True)],
)
def test_random_fp_loops_end_as_in_the_interpreter(
    seed: int, memory: bool, frm: int, supervisor: bool
) -> None:
    """Double-precision arithmetic in compiled loops: results, fflags and mstatus.FS as
    the interpreter has them, fast path or not (edge values leave for the slow path)."""
    program = loop_program(seed, 300, memory, fp=True, frm=frm, supervisor=supervisor)
    elf = str(build_elf(f"tier2-fp-{seed}", program))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    for m in (compiled, interpreted):
        result = m.run(max_instructions=1_000_000)
        assert result.reason == "poweroff", result
    assert compiled.hart.tier2.regions > 0
    assert_same_state(compiled, interpreted)


@pytest.mark.parametrize(
    "seed,fp,supervisor",
    [(6, False, False), (7, False, False), (8, True, False), (9, True, False), (10, True, True)],
)
def test_stopping_anywhere_matches_the_interpreter(seed: int, fp: bool, supervisor: bool) -> None:
    """Run both in random-sized steps: a region must retire exactly the budget it is given
    and leave with the state the interpreter has after that many instructions (fflags
    included, which a final state alone would not show: they are sticky)."""
    program = loop_program(seed, 120, True, iterations=6, fp=fp, supervisor=supervisor)
    elf = str(build_elf(f"tier2-steps-{seed}", program))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    rng = random.Random(seed)
    for _ in range(600):
        step = rng.randrange(1, 40)
        assert compiled.hart.run(step) == interpreted.hart.run(step)
        assert_same_state(compiled, interpreted)
    assert compiled.hart.tier2.regions > 0


def run_source(name: str, source: str, threshold: int) -> Machine:
    m = machine(str(build_elf(name, source)), threshold)
    result = m.run(max_instructions=5_000_000)
    assert result.reason == "poweroff", result
    return m


POWER_OFF = """
        li      t0, 0x100000
        li      t1, 0x5555
        sw      t1, 0(t0)
9:      j       9b
"""


def test_store_into_a_compiled_loop_is_seen() -> None:
    """Halfway through, the loop overwrites its own first instruction (no fence.i, which
    rvemu does not need): the compiled copy must be dropped and the new code run."""
    new = enc("addi", rd=10, rs1=10, imm=1000)
    source = f"""
        .text
        .option norvc
        .globl _start
_start: li      a0, 0
        li      a1, 0
        li      a2, 100
        la      t0, patch
        li      t1, {new}
loop:
patch:  addi    a0, a0, 1
        addi    a1, a1, 1
        li      t2, 50
        bne     a1, t2, 1f
        sw      t1, 0(t0)
1:      blt     a1, a2, loop
{POWER_OFF}"""
    compiled = run_source("tier2-smc", source, 1)
    assert compiled.hart.reg("a0") == 50 * 1 + 50 * 1000
    assert compiled.hart.tier2.regions >= 2  # compiled once before the store, once after


def test_timer_interrupts_land_where_the_interpreter_takes_them() -> None:
    """A compiled loop is interrupted by the timer at exactly the instruction where the
    interpreter is: the handler sums the mepc values it sees and counts its calls."""
    source = f"""
        .text
        .globl _start
_start: la      t0, handler
        csrw    mtvec, t0
        li      s5, 0x2004000          # CLINT mtimecmp
        li      t0, 37
        sd      t0, 0(s5)
        li      t0, 0x80
        csrs    mie, t0                # MTIE
        csrsi   mstatus, 8             # MIE
        li      a2, 20000
1:      addi    a0, a0, 3
        xor     a1, a1, a0
        addi    a2, a2, -1
        bnez    a2, 1b
        csrci   mstatus, 8
{POWER_OFF}
        .balign 4
handler:
        addi    s2, s2, 1
        csrr    t3, mepc
        add     s3, s3, t3
        ld      t4, 0(s5)
        addi    t4, t4, 37
        sd      t4, 0(s5)
        mret
"""
    compiled = run_source("tier2-timer", source, 1)
    interpreted = run_source("tier2-timer", source, 0)
    assert compiled.hart.reg("s2") > 100  # the timer did interrupt the loop, often
    assert compiled.hart.tier2.regions > 0
    assert_same_state(compiled, interpreted)


def test_wild_jump_from_compiled_code_traps() -> None:
    """An indirect jump out of RAM from a compiled loop raises the fetch access fault at
    the right place, as in the interpreter."""
    source = f"""
        .text
        .globl _start
_start: la      t0, handler
        csrw    mtvec, t0
        li      a2, 50
1:      addi    a2, a2, -1
        bnez    a2, 1b
        li      t0, 0x1000
        jalr    ra, 0(t0)
        .balign 4
handler:
        csrr    s2, mcause
        csrr    s3, mepc
        csrr    s4, mtval
{POWER_OFF}"""
    compiled = run_source("tier2-wild", source, 1)
    interpreted = run_source("tier2-wild", source, 0)
    assert compiled.hart.reg("s2") == S.CAUSE_FETCH_ACCESS
    assert compiled.hart.reg("s3") == 0x1000
    assert compiled.hart.tier2.regions > 0
    assert_same_state(compiled, interpreted)


def test_code_compiled_untranslated_still_runs_with_paging_on() -> None:
    """A loop compiled in M-mode runs again from S-mode under Sv39: the translated core
    meets the entry compiled for untranslated code (whose pcs are physical) and must run
    the instruction under it instead, until the loop is compiled again for its virtual
    address."""
    source = f"""
        .text
        .globl _start
_start: la      t0, handler
        csrw    mtvec, t0
        call    work                   # compiled here, untranslated
        mv      s6, a0
{TO_SUPERVISOR}
        call    work                   # the same code, translated
        mv      s7, a0
        ecall
work:   csrr    t3, sscratch           # no region starts here: the loop is fallen into
        li      a0, 0
        li      a1, 200
1:      addi    a0, a0, 7
        auipc   t2, 0                  # the pc itself: physical, then virtual
        add     a0, a0, t2
        xor     a0, a0, a1
        addi    a1, a1, -1
        bnez    a1, 1b
        ret
        .balign 4
handler:
        csrr    s8, mcause
{POWER_OFF}
        .data
        .balign 4096
root:   .space  4096
"""
    compiled = run_source("tier2-paged", source, 1)
    interpreted = run_source("tier2-paged", source, 0)
    assert compiled.hart.reg("s8") == S.CAUSE_ECALL_S  # S-mode ran and called back
    assert compiled.hart.reg("s6") != compiled.hart.reg("s7")  # (the pcs differ)
    assert (compiled.hart.tier2.entry_pc != UNTRANSLATED).any()  # compiled for S-mode too
    assert compiled.hart.tier2.regions > 0
    assert_same_state(compiled, interpreted)


@pytest.mark.parametrize("frm", [0, 1])
def test_fp_arithmetic_on_edge_values_matches_the_interpreter(frm: int) -> None:
    """Each double operation over every pair of edge values (and some ordinary ones), one
    per compiled loop iteration, with the fflags it raised and mstatus recorded after it: the
    compiled fast path and its guards must give the interpreter's results and flags. With
    frm = RTZ the dynamic-rounding operations must all be left to the interpreter."""
    rng = random.Random(frm)
    values = FP_EDGES + [-v for v in FP_EDGES] + [rng.uniform(-9, 9) for _ in range(8)]
    pairs = [(a, b) for a in values for b in values]
    table = ", ".join(f"{bits(a):#x}, {bits(b):#x}" for a, b in pairs)
    loops = []
    for k, op in enumerate(["fadd.d", "fsub.d", "fmul.d", "fdiv.d", "fsqrt.d"]):
        operands = "f1, f2" if op == "fsqrt.d" else "f1, f2, f3"
        loops.append(f"""
        la      s0, pairs
        la      s1, results + {k * 24 * len(pairs)}
        li      s2, {len(pairs)}
{k + 1}:      fld     f2, 0(s0)
        fld     f3, 8(s0)
        {op}  {operands}
        fsd     f1, 0(s1)
        csrr    t0, mstatus            # FS: Dirty after the operation
        sd      t0, 16(s1)
        frflags t0
        sd      t0, 8(s1)
        fsflags x0
        li      t0, 0x4000             # FS back to Initial
        csrc    mstatus, t0
        addi    s0, s0, 16
        addi    s1, s1, 24
        addi    s2, s2, -1
        bnez    s2, {k + 1}b""")
    source = f"""
        .text
        .globl _start
_start: li      t0, 0x2000
        csrs    mstatus, t0
        csrwi   frm, {frm}
{"".join(loops)}
{POWER_OFF}
        .data
        .balign 4096
pairs:  .dword  {table}
results: .space {5 * 24 * len(pairs)}
"""
    compiled = run_source(f"tier2-fp-edges-{frm}", source, 1)
    interpreted = run_source(f"tier2-fp-edges-{frm}", source, 0)
    assert compiled.hart.tier2.regions >= 5
    assert_same_state(compiled, interpreted)


@pytest.mark.parametrize("supervisor", [False, True])
def test_loop_across_a_page_boundary(supervisor: bool) -> None:
    """A loop whose first instructions end one page and whose rest start the next: the
    region (one page only) must hand over at the right pc of the next page."""
    source = f"""
        .text
        .option norvc
        .globl _start
_start:
{TO_SUPERVISOR if supervisor else ""}
        li      a0, 0
        li      a1, 300
        j       loop
        .balign 4096
        .skip   4096 - 12
loop:   addi    a0, a0, 3
        xori    a0, a0, 0x55
        addi    a0, a0, 1              # the first instruction of the next page
        addi    a1, a1, -1
        bnez    a1, loop
{POWER_OFF}
        .data
        .balign 4096
root:   .space  4096
"""
    name = f"tier2-page-end-{int(supervisor)}"
    compiled, interpreted = run_source(name, source, 1), run_source(name, source, 0)
    assert compiled.hart.tier2.regions > 0
    assert_same_state(compiled, interpreted)


CALLS = """
        {timer}
        li      a2, 3000
        la      s4, table
1:      mv      a0, a2
        call    far                    # on another page: a call, then a return
        add     a1, a1, a0
        andi    t0, a2, 3
        slli    t0, t0, 3
        add     t0, t0, s4
        ld      t0, 0(t0)
        sub     t0, t0, s6             # (the table holds physical addresses)
        jalr    t0                     # through a table, as an interpreter dispatches
        addi    a2, a2, -1
        bnez    a2, 1b
        j       done
case0:  addi    a3, a3, 1
        ret
case1:  xor     a3, a3, a1
        ret
case2:  addi    a3, a3, -7
        ret
case3:  slli    a4, a3, 1
        add     a3, a3, a4
        ret
        .balign 4096
far:    slli    t1, a0, 2
        add     a0, a0, t1
        xori    a0, a0, 0x5a
        ret
done:
{power_off}
        .balign 4
handler:
        addi    s2, s2, 1
        csrr    t3, mepc
        add     s3, s3, t3
        ld      t4, 0(s5)
        addi    t4, t4, 41
        sd      t4, 0(s5)
        mret
        .data
        .balign 4096
table:  .dword  case0, case1, case2, case3
        .balign 4096
root:   .space  4096
"""

TIMER = """
        li      s5, 0x2004000          # CLINT mtimecmp
        li      t0, 41
        sd      t0, 0(s5)
        li      t0, 0x80
        csrs    mie, t0                # MTIE
        csrsi   mstatus, 8             # MIE"""


@pytest.mark.parametrize("supervisor", [False, True])
def test_calls_returns_and_jump_tables_chain_region_to_region(supervisor: bool) -> None:
    """A loop that calls a function on another page and dispatches through a jump table:
    the compiled regions continue into each other at calls, returns and indirect jumps
    without the interpreter, and still stop exactly where the interpreter is when the
    timer interrupts (M-mode) or at any budget they are given."""
    if supervisor:  # S-mode under Sv39, at virtual addresses 1 GiB below the physical
        body = CALLS.format(timer="li s6, 0x40000000", power_off=POWER_OFF)
        source = f".text\n.globl _start\n_start:\n{TO_SUPERVISOR}{body}"
    else:
        body = CALLS.format(timer=TIMER, power_off=POWER_OFF)
        source = f".text\n.globl _start\n_start:\nla t0, handler\ncsrw mtvec, t0\n{body}"
    elf = str(build_elf(f"tier2-chain-{int(supervisor)}", source))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    rng = random.Random(5)
    for _ in range(300):  # in random steps: budgets end chains anywhere
        step = rng.randrange(1, 60)
        assert compiled.hart.run(step) == interpreted.hart.run(step)
        assert_same_state(compiled, interpreted)
    for m in (compiled, interpreted):
        assert m.run(max_instructions=2_000_000).reason == "poweroff"
    assert_same_state(compiled, interpreted)
    if supervisor:
        assert (compiled.hart.tier2.entry_pc != UNTRANSLATED).any()
        return
    assert compiled.hart.reg("s2") > 100  # the timer did interrupt, often
    # Called alone, the loop's region runs on through the others, to its budget.
    hart = compiled.hart
    compiled = hart.tier2.compiled.items()
    loop = [compiler._loaded[k][0] for (off, _), (k, _) in compiled if loop_entry(hart, off)]
    assert loop, "the loop was not compiled"
    hart.x[12] = 10**6  # a2: many iterations to go
    _, retired = call_from_python(hart, loop[0], 5000)
    assert 5000 - 10 < retired <= 5000


def loop_entry(hart, off: int) -> bool:  # noqa: ANN001
    """Whether RAM offset `off` holds the loop's first instruction (mv a0, a2)."""
    return int(hart.ram[off]) | int(hart.ram[off + 1]) << 8 == 0x8532  # c.mv a0, a2


@pytest.mark.parametrize("supervisor", [False, True])
def test_stores_to_data_beside_compiled_code_keep_it(supervisor: bool) -> None:
    """A loop that writes a counter kept on its own code page (small programs put .data
    right after .text): the store touches no instruction, so the compiled loop stays
    (it is not compiled again and again), and the store still lands."""
    source = f"""
        .text
        .globl _start
_start:
{TO_SUPERVISOR if supervisor else ""}
        li      a2, 3000
        la      s4, counter
1:      ld      t0, 0(s4)
        addi    t0, t0, 3
        sd      t0, 0(s4)
        addi    a2, a2, -1
        bnez    a2, 1b
{POWER_OFF}
        .balign 64
counter: .dword 0
        .data
        .balign 4096
root:   .space  4096
"""
    name = f"tier2-data-beside-code-{int(supervisor)}"
    compiled, interpreted = run_source(name, source, 1), run_source(name, source, 0)
    assert_same_state(compiled, interpreted)
    assert 0 < compiled.hart.tier2.regions <= 3
    assert not compiled.hart.tier2.compiles_per_page  # (no page compiled again)


COUNTER_LOOP = """
        li      a2, 2000
1:      rdcycle t0
        add     s2, s2, t0
        rdtime  t1
        add     s3, s3, t1
        rdinstret t2
        xor     s4, s4, t2
        {machine_counters}
        addi    a2, a2, -1
        bnez    a2, 1b
{power_off}
        .balign 4
handler:                               # an illegal counter read: count it, skip it
        addi    s6, s6, 1
        csrr    t3, mepc
        addi    t3, t3, 4
        csrw    mepc, t3
        mret
        .data
        .balign 4096
root:   .space  4096
"""


@pytest.mark.parametrize("supervisor", [False, True])
def test_counter_reads_in_compiled_code(supervisor: bool) -> None:
    """rdcycle, rdtime, rdinstret (and mcycle, minstret in M-mode) inside a compiled loop
    read what the interpreter reads at that instruction, under any budget; in S-mode
    mcounteren lets cycle and instret through and makes time an illegal instruction."""
    head = ".text\n.globl _start\n_start:\nla t0, handler\ncsrw mtvec, t0\n"
    if supervisor:
        head += "li t0, 5\ncsrw mcounteren, t0\n" + TO_SUPERVISOR
        body = COUNTER_LOOP.format(machine_counters="", power_off=POWER_OFF)
    else:
        counters = "csrr t3, mcycle\nadd s5, s5, t3\ncsrr t4, minstret\nadd s5, s5, t4"
        body = COUNTER_LOOP.format(machine_counters=counters, power_off=POWER_OFF)
    elf = str(build_elf(f"tier2-counters-{int(supervisor)}", head + body))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    rng = random.Random(7)
    for _ in range(200):
        step = rng.randrange(1, 50)
        assert compiled.hart.run(step) == interpreted.hart.run(step)
        assert_same_state(compiled, interpreted)
    for m in (compiled, interpreted):
        assert m.run(max_instructions=1_000_000).reason == "poweroff"
    assert_same_state(compiled, interpreted)
    sizes = [compiler._loaded[key][1] for key, _ in compiled.hart.tier2.compiled.values()]
    assert max(sizes) >= 11  # one region holds the whole loop, counter reads and all
    assert compiled.hart.reg("s6") == (2000 if supervisor else 0)  # time trapped in S


def test_regions_continue_in_an_inner_loop_compiled_first() -> None:
    """An inner loop gets hot (and compiled) before the code around it: the regions
    compiled later for the function's entry and for the caller end where the loop's
    region starts and continue in it, instead of each compiling the loop again."""
    body = "\n".join(f"        xori    a{k % 6}, a{(k + 1) % 6}, {k}" for k in range(40))
    source = f"""
        .text
        .globl _start
_start: li      s2, 200
1:      call    work
        addi    s3, s3, 1
        addi    s2, s2, -1
        bnez    s2, 1b
{POWER_OFF}
work:   li      t0, 20
        addi    s4, s4, 1
2:
{body}
        addi    t0, t0, -1
        bnez    t0, 2b
        ret
"""
    compiled = machine(str(build_elf("tier2-shared-loop", source)), 10)
    interpreted = machine(str(build_elf("tier2-shared-loop", source)), 0)
    for m in (compiled, interpreted):
        assert m.run(max_instructions=1_000_000).reason == "poweroff"
    assert_same_state(compiled, interpreted)
    t = compiled.hart.tier2
    assert t.regions >= 3  # the loop, the function's entry, the caller after its call
    assert t.instructions < 42 + 2 * 20, "the loop was compiled more than once"


def test_a_region_leaves_where_code_has_not_run() -> None:
    """A hot loop's region holds the paths that ran before it got hot, not a path no pass
    has taken yet: that one leaves for the interpreter, as the interpreter would run it,
    and is compiled on its own once it gets hot."""
    rare = "\n".join(f"        xori    a{k % 6}, a{(k + 1) % 6}, {k}" for k in range(30))
    source = f"""
        .text
        .globl _start
_start: li      s2, 3000
1:      addi    s3, s3, 1
        li      t0, 2000
        bgeu    s3, t0, 2f
        addi    s4, s4, 5
        j       3f
2:
{rare}
3:      addi    s2, s2, -1
        bnez    s2, 1b
{POWER_OFF}"""
    compiled = run_source("tier2-unrun-path", source, compiler.LOOK)
    interpreted = run_source("tier2-unrun-path", source, 0)
    assert_same_state(compiled, interpreted)
    sizes = sorted(compiler._loaded[k][1] for k, _ in compiled.hart.tier2.compiled.values())
    assert sizes[0] < 30 < sizes[-1]  # the loop without the rare path; the path itself


def compiled_share(m: Machine) -> float:
    """The share of the instructions retired that compiled regions retired."""
    return int(m.hart.st[S.PROF_REGION_INSNS]) / m.hart.instret


def test_code_after_what_a_region_cannot_do_is_compiled() -> None:
    """A loop that starts with a CSR read (as Linux's udelay and jitterentropy loops do):
    no region can start at its head, so the code after the CSR access counts as a jump
    target and is compiled; fences are compiled through."""
    source = f"""
        .text
        .option norvc
        .globl _start
_start: li      a0, 0
        li      a1, 3000
loop:   csrr    a2, mscratch
        add     a0, a0, a2
        fence   rw, rw
        addi    a0, a0, 7
        xori    a0, a0, 0x55
        fence
        slli    a3, a0, 3
        add     a0, a0, a3
        addi    a1, a1, -1
        bnez    a1, loop
{POWER_OFF}"""
    compiled, interpreted = (
        run_source("tier2-after-csr", source, 5),
        run_source("tier2-after-csr", source, 0),
    )
    assert_same_state(compiled, interpreted)
    assert compiled_share(compiled) > 0.8  # all but the csrr of each pass, once compiled


@pytest.mark.parametrize("straddle", [False, True])
def test_code_running_on_into_the_next_page_is_compiled_there(straddle: bool) -> None:
    """A loop body that ends one page and runs on into the next: the region of its head
    hands over at the page end as a jump would, so the rest is compiled too; also when
    a 32-bit instruction straddles the two pages (it is never compiled itself)."""
    body = "\n".join("        addi    a0, a0, 3\n        xori    a0, a0, 0x55" for _ in range(20))
    source = f"""
        .text
        .option norvc
        .globl _start
_start: li      a0, 0
        li      a1, 3000
        j       loop
        .balign 4096
        .skip   4096 - {42 if straddle else 40}
loop:
{body}
        addi    a1, a1, -1
        bnez    a1, loop
{POWER_OFF}"""
    compiled, interpreted = (
        run_source("tier2-next-page", source, 5),
        run_source("tier2-next-page", source, 0),
    )
    assert_same_state(compiled, interpreted)
    assert compiled.hart.tier2.regions >= 2
    assert compiled_share(compiled) > 0.9
