"""The `rvemu` command line: exit codes, stats, one-line errors, and `rvemu test`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GCC = "riscv64-unknown-elf-gcc"
pytestmark = pytest.mark.skipif(
    shutil.which(GCC) is None, reason=f"{GCC} NOT INSTALLED: CLI tests need it (make deps)"
)

LINK = """
ENTRY(_start)
SECTIONS {
  . = 0x80000000;
  .text : { *(.text*) }
  . = ALIGN(0x1000);
  .tohost : { *(.tohost) }
  .data : { *(.data*) *(.bss*) }
}
"""

# Prints "hi\n" on the UART, then powers off with the code in a0 (0 = pass).
POWEROFF = """
.globl _start
_start:
  li t0, 0x10000000
  li t1, 'h'; sb t1, 0(t0)
  li t1, 'i'; sb t1, 0(t0)
  li t1, '\\n'; sb t1, 0(t0)
  li a0, {code}
  li t0, 0x100000
  beqz a0, 1f
  slli a0, a0, 16
  li t1, 0x3333
  or t1, t1, a0
  sw t1, 0(t0)
1:li t1, 0x5555
  sw t1, 0(t0)
2:j 2b
"""

# riscv-tests style: write (value) to tohost and spin.
TOHOST = """
.globl _start
_start:
  li t1, {value}
  la t0, tohost
  sd t1, 0(t0)
1:j 1b
.section .tohost, "aw"
.globl tohost
tohost: .dword 0
.globl fromhost
fromhost: .dword 0
"""

# The riscv-tests benchmarks' printf: a proxy-kernel write(1, msg, 3) through HTIF (tohost
# gets the address of [64, fd, buf, len], the host answers in fromhost and puts the result
# in the first word), then exit with code 0 if the result was 3, else 1.
HTIF_WRITE = """
.globl _start
_start:
  la a0, magic
  li t1, 64; sd t1, 0(a0)
  li t1, 1; sd t1, 8(a0)
  la t1, msg; sd t1, 16(a0)
  li t1, 3; sd t1, 24(a0)
  la t0, tohost
  sd a0, 0(t0)
  la t2, fromhost
1:ld t1, 0(t2)
  beqz t1, 1b
  ld a1, 0(a0)
  addi a1, a1, -3
  snez a1, a1
  slli a1, a1, 1
  ori a1, a1, 1
  sd a1, 0(t0)
2:j 2b
.data
.balign 64
magic: .dword 0, 0, 0, 0
msg: .ascii "hi\\n"
.section .tohost, "aw"
.globl tohost
tohost: .dword 0
.globl fromhost
fromhost: .dword 0
"""

SPIN = """
.globl _start
_start:
1:j 1b
"""


def build(tmp_path: Path, name: str, source: str, extra: list[str] | None = None) -> Path:
    src = tmp_path / f"{name}.S"
    lds = tmp_path / "link.ld"
    src.write_text(source)
    lds.write_text(LINK)
    out = tmp_path / name
    subprocess.run(
        [GCC, "-march=rv64gc", "-mabi=lp64d", "-nostdlib", "-nostartfiles", "-T", str(lds)]
        + (extra or [])
        + [str(src), "-o", str(out)],
        check=True,
    )
    return out


def rvemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rvemu", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_boot_prints_console_and_returns_guest_exit_code(tmp_path: Path) -> None:
    ok = rvemu("boot", build(tmp_path, "ok", POWEROFF.format(code=0)))
    assert (ok.returncode, ok.stdout) == (0, "hi\n")
    bad = rvemu("boot", build(tmp_path, "bad", POWEROFF.format(code=7)))
    assert (bad.returncode, bad.stdout) == (7, "hi\n")


def test_boot_stats(tmp_path: Path) -> None:
    r = rvemu("boot", build(tmp_path, "ok", POWEROFF.format(code=0)), "--stats")
    assert r.returncode == 0
    assert "instructions retired  " in r.stderr
    retired = int(r.stderr.split("instructions retired")[1].split()[0])
    assert retired == 13  # the instructions up to and including the power-off store
    for word in ("guest time", "host wall time", "MIPS"):
        assert word in r.stderr


def test_instruction_limit_is_an_error(tmp_path: Path) -> None:
    r = rvemu("boot", build(tmp_path, "spin", SPIN), "--max-instructions", "1000")
    assert r.returncode != 0
    assert "instruction limit" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda d: d / "missing.elf", "no such file"),
        (lambda d: (d / "text.elf").write_text("hello") and d / "text.elf", "not an ELF"),
        (lambda d: Path(sys.executable).resolve(), "not a RISC-V ELF"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path: Path, make_input, message: str) -> None:
    path = make_input(tmp_path)
    before = sorted(os.listdir(tmp_path))
    r = rvemu("boot", path)
    assert r.returncode != 0
    assert message.lower() in r.stderr.lower() and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing written


def test_32bit_and_outside_ram_elfs_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "x.S"
    src.write_text(SPIN)
    elf32 = tmp_path / "x32"
    subprocess.run(
        [GCC, "-march=rv32i", "-mabi=ilp32", "-nostdlib", "-Ttext=0x80000000", src, "-o", elf32],
        check=True,
    )
    r = rvemu("boot", elf32)
    assert r.returncode != 0 and "32-bit" in r.stderr and r.stderr.count("\n") == 1
    low = tmp_path / "low"
    subprocess.run([GCC, "-march=rv64gc", "-nostdlib", "-Ttext=0x1000", src, "-o", low], check=True)
    r = rvemu("boot", low)
    assert r.returncode != 0 and "outside RAM" in r.stderr and r.stderr.count("\n") == 1


def test_unknown_option_is_a_one_line_error() -> None:
    r = rvemu("boot", "--no-such-option", "x.elf")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_rvemu_test_reports_each_test_and_a_closing_line(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    build(suite, "pass1", TOHOST.format(value=1))
    build(suite, "fail3", TOHOST.format(value=(3 << 1) | 1))
    for leftover in ("link.ld", "pass1.S", "fail3.S"):
        (suite / leftover).unlink()
    r = rvemu("test", suite)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert any(line.startswith("pass1") and "PASS" in line for line in lines)
    assert any(line.startswith("fail3") and "test 3 failed" in line for line in lines)
    only_pass = rvemu("test", suite, "--filter", "pass*", "--json", tmp_path / "r.json")
    assert only_pass.returncode == 0 and only_pass.stdout.splitlines()[-1] == "1 passed, 0 failed"
    assert (tmp_path / "r.json").exists()


# riscv-tests style, but it never writes tohost: it spins in a loop that retires forever.
def test_htif_write_system_call_prints(tmp_path: Path) -> None:
    """How riscv-tests' benchmarks print: rvemu serves write(2) and answers in fromhost."""
    from rvemu import Machine

    m = Machine()
    m.load(str(build(tmp_path, "write", HTIF_WRITE)))
    result = m.run(max_instructions=10_000)
    assert (result.reason, result.exit_code, m.console) == ("tohost", 0, b"hi\n")
    assert "first_output" in m.marks


NO_TOHOST = """
.globl _start
_start:
1:addi t0, t0, 1
  j 1b
.section .tohost, "aw"
.globl tohost
tohost: .dword 0
"""


def tohost_suite(tmp_path: Path, **tests: str) -> Path:
    """A folder holding only the given riscv-tests style ELFs (name=source)."""
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, source in tests.items():
        build(suite, name, source)
        (suite / f"{name}.S").unlink()
    (suite / "link.ld").unlink()
    return suite


def test_rvemu_test_ends_a_test_that_never_writes_tohost(tmp_path: Path) -> None:
    suite = tohost_suite(tmp_path, forever=NO_TOHOST, pass1=TOHOST.format(value=1))
    r = rvemu("test", suite, "-j", "2")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    forever = next(line for line in lines if line.startswith("forever"))
    assert "FAIL" in forever and "instruction limit" in forever and "1000000" in forever


def test_rvemu_test_limit(tmp_path: Path) -> None:
    suite = tohost_suite(tmp_path, forever=NO_TOHOST)
    for option in ("--limit", "--max-instructions"):
        r = rvemu("test", suite, option, "5000", "--json", tmp_path / "r.json")
        assert r.returncode == 1 and "after 5000 instructions" in r.stdout, r.stdout
        (result,) = json.loads((tmp_path / "r.json").read_text())["results"]
        assert (result["passed"], result["instructions"]) == (False, 5000)
    for bad in ("0", "-3", "many"):
        r = rvemu("test", suite, "--limit", bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--limit" in r.stderr


def test_dtb_writes_the_machine_device_tree(tmp_path: Path) -> None:
    out = tmp_path / "virt.dtb"
    r = rvemu("dtb", "--memory", "256M", "--append", "console=ttyS0", "-o", out)
    assert r.returncode == 0, r.stderr
    blob = out.read_bytes()
    assert blob[:4] == bytes.fromhex("d00dfeed")  # FDT magic
    if shutil.which("dtc"):
        dts = subprocess.run(
            ["dtc", "-I", "dtb", "-O", "dts", out], capture_output=True, text=True, check=True
        ).stdout
        assert 'bootargs = "console=ttyS0"' in dts
        assert "reg = <0x00 0x80000000 0x00 0x10000000>" in dts  # 256 MiB of RAM
