"""`rvemu boot --trace`: every executed instruction reads as objdump's disassembly of the
same image at that address; traps and interrupts are written with their causes; the
limits and Spike's commit-log format."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_apps import build, image, symbols_image
from test_disasm import LINE, OBJDUMP, require_objdump

INSN = re.compile(r"^([MSU]) ([0-9a-f]{16}): ([0-9a-f]{4,8}) *  (.*?)(?:  ; (.*))?$")
TRAP = re.compile(
    r"^([MSU]) (exception|interrupt) (\d+) \((.*)\) tval=0x(\w+) epc=0x(\w+) -> 0x(\w+)$"
)
SPIKE = re.compile(r"^core   0: ([013]) 0x([0-9a-f]{16}) \(0x([0-9a-f]{4}|[0-9a-f]{8})\)(.*)$")


def trace(
    elf: Path, tmp_path: Path, *options: str
) -> tuple[list[str], subprocess.CompletedProcess]:
    out = tmp_path / "trace.txt"
    cmd = [sys.executable, "-m", "rvemu", "boot", str(elf), "--trace", str(out), *options]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return out.read_text().splitlines(), run


def objdump(elf: Path) -> dict[int, tuple[str, str]]:
    """address -> (bytes column, text) of every instruction objdump lists."""
    listing = subprocess.run([OBJDUMP, "-d", str(elf)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    lines = (LINE.match(line) for line in listing.stdout.splitlines())
    return {int(m[1], 16): (m[2], m[3]) for m in lines if m}


@pytest.mark.parametrize("stripped", [True, False], ids=["hello.elf", "hello.sym.elf"])
def test_trace_of_hello_reads_as_objdump(tmp_path, stripped):
    require_objdump()
    build("hello")
    elf = image("hello") if stripped else symbols_image("hello")
    lines, run = trace(elf, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Hello from the rvemu unikernel!" in run.stdout
    listing = objdump(elf)
    executed = [INSN.match(line) for line in lines]
    assert all(executed), [line for line, m in zip(lines, executed, strict=True) if not m][:5]
    wrong = []
    for m in executed:
        pc = int(m[2], 16)
        if listing.get(pc) != (m[3], m[4]):
            wrong.append(f"{pc:#x}: trace {m[3]} {m[4]!r}, objdump {listing.get(pc)}")
    assert not wrong, "\n".join(wrong[:10])
    assert len(executed) > 500  # the whole boot: start, main, printf, power-off
    assert {m[1] for m in executed} == {"M"}
    # The last instruction is the store that powers the machine off.
    assert executed[-1][4].startswith("sw\t") and "mem[0x100000]=0x00005555" in executed[-1][5]


def test_trace_shows_register_writes_and_traps(tmp_path):
    build("crash")
    elf = symbols_image("crash")
    lines, run = trace(elf, tmp_path)
    assert run.returncode == 255, run.stderr  # the panic's exit status
    traps = [TRAP.match(line) for line in lines if TRAP.match(line)]
    assert len(traps) == 1
    priv, kind, code, name, tval, epc, handler = traps[0].groups()
    assert (priv, kind, int(code), name) == ("M", "exception", 3, "breakpoint")
    index = next(i for i, line in enumerate(lines) if TRAP.match(line))
    before, after = INSN.match(lines[index - 1]), INSN.match(lines[index + 1])
    assert before[4] == "ebreak" and int(before[2], 16) == int(epc, 16)
    assert before[5] is None  # it traps: no register written
    assert int(after[2], 16) == int(handler, 16)  # the handler's first instruction follows
    assert "a0=0x0000000000001234" in lines[index - 2]  # li a0, 0x1234


def test_trace_shows_interrupts(tmp_path):
    build("timers")
    lines, run = trace(image("timers"), tmp_path)
    assert run.returncode == 0, run.stderr
    interrupts = [m for line in lines if (m := TRAP.match(line)) and m[2] == "interrupt"]
    assert len(interrupts) >= 5  # one per tick at least
    assert {(m[3], m[4]) for m in interrupts} == {("7", "machine timer")}


def test_trace_limit_and_range(tmp_path):
    build("hello")
    lines, run = trace(image("hello"), tmp_path, "--trace-limit", "10")
    assert run.returncode == 0 and "Hello" in run.stdout  # the guest ran on to the end
    assert len(lines) == 10
    assert int(INSN.match(lines[0])[2], 16) == 0x8000_0000
    start, end = 0x8000_0008, 0x8000_0020
    lines, run = trace(image("hello"), tmp_path, "--trace-range", f"{start:#x}:{end:#x}")
    pcs = [int(INSN.match(line)[2], 16) for line in lines]
    assert pcs and all(start <= pc < end for pc in pcs)


def test_spike_commit_log_format(tmp_path):
    build("hello")
    lines, run = trace(image("hello"), tmp_path, "--trace-format", "spike")
    assert run.returncode == 0
    commits = [SPIKE.match(line) for line in lines]
    assert all(commits), [line for line, m in zip(lines, commits, strict=True) if not m][:5]
    first = commits[0]
    assert (first[1], first[2], first[3]) == ("3", "0000000080000000", "00002197")
    assert first[4] == " x3  0x0000000080002000"  # auipc gp: x3, padded as Spike pads
    stores = [m[4] for m in commits if " mem " in m[4]]
    assert any(re.fullmatch(r" mem 0x0{10}100000 0x00005555", s) for s in stores)


def test_trace_options_are_checked(tmp_path):
    cmd = [sys.executable, "-m", "rvemu", "boot", str(image("hello"))]
    for bad in (["--trace-range", "12"], ["--trace-format", "qemu"], ["--wait"]):
        run = subprocess.run(cmd + bad, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("rvemu: ")
