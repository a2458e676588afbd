"""The second tier (rvemu.tier2) against the interpreter: the same program, run with hot
code compiled at its first taken jump and with nothing compiled, must end in the same
state (registers, pc, instructions retired, all of RAM), and stop at the same points.

Every test also checks that regions were compiled, so none passes by never using them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import enc
from toolchain import build_elf

from rvemu import Machine
from rvemu.cpu import state as S

R_TYPE = (
    "add sub sll slt sltu xor srl sra or and addw subw sllw srlw sraw "
    "mul mulh mulhsu mulhu div divu rem remu mulw divw divuw remw remuw"
).split()
I_TYPE = "addi slti sltiu xori ori andi addiw".split()
SHIFTS = {"slli": 64, "srli": 64, "srai": 64, "slliw": 32, "srliw": 32, "sraiw": 32}
LOADS = "lb lh lw ld lbu lhu lwu".split()
STORES = "sb sh sw sd".split()
BRANCHES = "beq bne blt bge bltu bgeu".split()
BASES = ("sp", "s0", "t6")  # point into the buffer in memory programs; never written
WRITABLE = [n for n in range(1, 32) if n not in (2, 8, 31)]
# Register values that find the edges: division overflow, shifts by 63, sign bits.
EDGES = [0, 1, 2, 31, 32, 63, 64, -1, -2, 1 << 63, (1 << 63) - 1, 0x80000000, 0xFFFFFFFF]


def random_body(rng: random.Random, count: int, memory: bool) -> list[str]:
    """`count` random integer instructions (the assembler compresses what it can), with
    forward branches and jumps, and an indirect jump now and then."""
    body: list[str] = []
    pending = False  # a forward branch waits for its label "1:"
    while len(body) < count:
        rd, rs1, rs2 = rng.choice(WRITABLE), rng.randrange(32), rng.randrange(32)
        kind = rng.random()
        if kind < 0.45:
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
            if rng.random() < 0.5:
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


def loop_program(seed: int, count: int, memory: bool, iterations: int = 4) -> str:
    """Random registers, then a random body run `iterations` times (its loop counter kept
    in memory, as the body may write any register), then power-off."""
    rng = random.Random(seed)
    init = []
    for n in WRITABLE:
        value = rng.choice([rng.getrandbits(64), rng.randrange(-99, 99), rng.choice(EDGES)])
        init.append(f"li x{n}, {value & ((1 << 64) - 1):#x}")
    init += ["la t6, buffer + 2048", "mv sp, t6", "mv s0, t6"]
    data = ", ".join(f"{rng.getrandbits(64):#x}" for _ in range(512))
    lines = [
        ".text",
        ".globl _start",
        "_start:",
        *init,
        "loop:",
        *random_body(rng, count, memory),
        "la t5, counter",
        "ld t4, 0(t5)",
        "addi t4, t4, -1",
        "sd t4, 0(t5)",
        "bnez t4, loop",
        "li t0, 0x100000",  # sifive_test: power off
        "li t1, 0x5555",
        "sw t1, 0(t0)",
        "3: j 3b",
        ".data",
        ".balign 4096",  # data apart from code, so stores do not hit code pages
        f"counter: .dword {iterations}",
        ".balign 4096",
        f"buffer: .dword {data}",
    ]
    return "\n".join(f"        {ln}" if not ln.endswith(":") else ln for ln in lines) + "\n"


def machine(elf: str, threshold: int) -> Machine:
    m = Machine(memory="16M")
    m.hart.hot_threshold = threshold
    m.load(elf)
    return m


def assert_same_state(a: Machine, b: Machine) -> None:
    assert a.hart.pc == b.hart.pc
    assert a.hart.instret == b.hart.instret
    assert list(a.hart.x[:32]) == list(b.hart.x[:32])
    assert np.array_equal(a.hart.ram, b.hart.ram)


@pytest.mark.parametrize("seed,memory", [(1, False), (2, False), (3, True), (4, True), (5, True)])
def test_random_loops_end_as_in_the_interpreter(seed: int, memory: bool) -> None:
    elf = str(build_elf(f"tier2-loop-{seed}", loop_program(seed, 300, memory)))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    for m in (compiled, interpreted):
        result = m.run(max_instructions=1_000_000)
        assert result.reason == "poweroff", result
    assert compiled.hart.tier2.regions > 0 and interpreted.hart.tier2.regions == 0
    assert_same_state(compiled, interpreted)


@pytest.mark.parametrize("seed", [6, 7])
def test_stopping_anywhere_matches_the_interpreter(seed: int) -> None:
    """Run both in random-sized steps: a region must retire exactly the budget it is given
    and leave with the state the interpreter has after that many instructions."""
    elf = str(build_elf(f"tier2-steps-{seed}", loop_program(seed, 120, True, iterations=6)))
    compiled, interpreted = machine(elf, 1), machine(elf, 0)
    rng = random.Random(seed)
    for _ in range(400):
        step = rng.randrange(1, 80)
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
    """A loop compiled in M-mode runs again from S-mode under Sv39 (an identity gigapage):
    the translated core meets the compiled entry and must run the instruction under it."""
    source = f"""
        .text
        .globl _start
_start: la      t0, handler
        csrw    mtvec, t0
        call    work                   # compiled here, untranslated
        mv      s6, a0
        la      t0, root               # Sv39: VA 0x80000000 -> PA 0x80000000, 1 GiB, RWX
        li      t1, (0x80000000 >> 2) | 0xCF
        sd      t1, 16(t0)
        srli    t0, t0, 12
        li      t1, 8 << 60
        or      t0, t0, t1
        csrw    satp, t0
        li      t0, 0x1800
        csrc    mstatus, t0
        li      t0, 0x800              # MPP = S
        csrs    mstatus, t0
        la      t0, s_mode
        csrw    mepc, t0
        mret
s_mode: call    work                   # the same code, translated
        mv      s7, a0
        ecall
work:   li      a0, 0
        li      a1, 200
1:      addi    a0, a0, 7
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
    assert compiled.hart.reg("s6") == compiled.hart.reg("s7") != 0
    assert compiled.hart.tier2.regions > 0
    assert_same_state(compiled, interpreted)
