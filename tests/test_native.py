"""The native core (rvemu/cpu/native.py): the compiled entry points loaded with ctypes
from the libraries native_build.py makes, without importing Numba; and the same results
as the Numba functions they are built from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rvemu import Machine
from rvemu.cpu import native
from rvemu.cpu.native import ENTRY_POINTS, Core

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "build" / "unikernel"
SUITE = Path(os.environ.get("RVEMU_RISCV_TESTS") or "/opt/riscv-tests/isa")

needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None, reason="NO C COMPILER (cc): the Numba core serves instead"
)


@needs_cc
def test_a_boot_loads_the_native_core_and_not_numba() -> None:
    """Nor does importing any device module (they are plain Python)."""
    devices = sorted(p.stem for p in (ROOT / "rvemu" / "devices").glob("*.py"))
    code = (
        "import sys, importlib, rvemu\n"
        f"for name in {devices!r}: importlib.import_module('rvemu.devices.' + name)\n"
        "from rvemu.cpu.native import core\n"
        "m = rvemu.Machine(memory='1M')\n"
        "m.hart.warm_up()\n"
        "print(core.native, 'numba' in sys.modules, 'llvmlite' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False"]


def run(elf: Path, numba: bool) -> tuple:
    machine = Machine(memory="128M")
    if numba:
        machine.hart.core = Core(native=False)
    machine.load(str(elf))
    result = machine.run(max_instructions=50_000_000)
    hart = machine.hart
    return (
        result.reason,
        result.exit_code,
        result.instructions,
        machine.console,
        hart.x[:32].tobytes(),  # (x[32] takes writes to x0: no guest sees it)
        hart.f.tobytes(),
        hart.csr.tobytes(),
    )


def images() -> list[Path]:
    chosen = [APPS / f"{app}.elf" for app in ("hello", "bench-qsort", "timers")]
    chosen += sorted(SUITE.glob("rv64u[imacfd]-p-*"))[::9]  # (a spread of them)
    return [p for p in chosen if p.exists() and p.suffix != ".dump"]


@needs_cc
@pytest.mark.parametrize("elf", images(), ids=lambda p: p.name)
def test_native_and_numba_cores_agree(elf: Path) -> None:
    """Instruction counts, console, registers, CSRs: the same from either core."""
    assert Core().native
    assert run(elf, numba=False) == run(elf, numba=True)


def test_every_entry_point_is_a_compiled_function() -> None:
    from importlib import import_module

    for name, entry in ENTRY_POINTS.items():
        fn = getattr(import_module(entry.module), entry.function)
        assert hasattr(fn, "py_func"), f"{name} is not a Numba function"
        assert entry.library in native.LIBRARIES


def test_a_failed_build_is_not_retried_and_numba_serves(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    for name in native.LIBRARIES:
        (tmp_path / f"core-{name}.failed").write_text("cc: not found\n")
    core = Core()
    assert not core.native
    from rvemu.mmu.tlb import tlb_flush

    assert core.tlb_flush is tlb_flush
    assert not any(tmp_path.glob("*.so"))


def test_a_library_that_will_not_load_is_one_line_and_numba_serves(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    for name in native.LIBRARIES:
        (tmp_path / f"core-{name}.so").write_bytes(b"\x7fELF truncated")
    core = Core()
    assert not core.native
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith("rvemu: cannot load") for line in lines)


SQRT_PROGRAM = """
    .section .text.init
    .globl _start
_start:
    li t0, 0x2000  # mstatus.FS: Initial
    csrs mstatus, t0
    li t0, 0x4010000000000000  # 4.0
    fmv.d.x f1, t0
    fsqrt.d f2, f1  # (not among the loop's own fast paths: fp_compute's)
    fmv.x.d a0, f2
    li t0, 0x100000  # sifive_test: power off
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
"""


@needs_cc
def test_the_fp_library_is_built_when_a_guest_first_needs_it(tmp_path, monkeypatch, capfd) -> None:
    """A boot that runs no F/D operation of fp_compute's builds none of its library
    (entry_points.LAZY); the first that does builds it then, says so on stderr, and runs
    on with it."""
    from toolchain import build_elf

    from rvemu.cpu.aside import INDEX
    from rvemu.cpu.entry_points import LAZY

    assert Core().native  # (the other libraries, built for this run already)
    for name in native.LIBRARIES:
        if name not in LAZY:
            (tmp_path / f"core-{name}.so").symlink_to(native.library_path(name))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    core = Core()

    def boot(elf: Path) -> Machine:
        machine = Machine(memory="1M")
        machine.hart.core = core
        machine.load(str(elf))
        assert machine.run(max_instructions=10_000_000).reason == "poweroff"
        return machine

    assert b"Hello" in boot(APPS / "hello.elf").console
    assert not (tmp_path / "core-fp.so").exists()
    assert core.aside[INDEX["fp_compute"]] == 0
    assert "compiling" not in capfd.readouterr().err
    machine = boot(build_elf("native-lazy-fsqrt", SQRT_PROGRAM))
    lines = capfd.readouterr().err.splitlines()
    assert lines[0].startswith("rvemu: compiling the CPU core's F and D operations")
    assert "F and D operations compiled in" in lines[-1]
    assert machine.hart.reg("a0") == 0x4000000000000000  # 2.0
    assert (tmp_path / "core-fp.so").exists()
    assert core.aside[INDEX["fp_compute"]] != 0
