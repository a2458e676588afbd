"""Assemble snippets with the RISC-V cross toolchain (GNU as), for tests that want the
assembler's encoding as an oracle independent of rvemu. Outputs go to build/tests/ and are
never committed. Tests skip, loudly, when the toolchain is not installed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "tests"
PREFIX = "riscv64-unknown-elf-"
MARCH = ["-march=rv64gc", "-mabi=lp64d"]


def require_toolchain() -> None:
    """Skip the calling test with a loud message when the cross assembler is missing."""
    if shutil.which(PREFIX + "as") is None:
        pytest.skip(
            f"*** {PREFIX}as not found: install gcc-riscv64-unknown-elf; "
            "the assembler-checked tests did NOT run ***"
        )


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr}")


def assemble_each(lines: list[str], march: str = "rv64gc") -> list[bytes]:
    """The machine code of each assembly line, assembled on its own (one `as` run for all).

    Each line goes into its own section, so its bytes can be read back separately; lines may
    be several instructions separated by ';'."""
    require_toolchain()
    source = ".option norelax\n" + "".join(
        f'.section .t{k}, "ax"\n.option push\n{line}\n.option pop\n' for k, line in enumerate(lines)
    )
    digest = hashlib.sha256((march + source).encode()).hexdigest()[:16]
    BUILD.mkdir(parents=True, exist_ok=True)
    obj = BUILD / f"each-{digest}.o"
    if not obj.exists():
        src = BUILD / f"each-{digest}.{os.getpid()}.s"
        src.write_text(source)
        tmp = obj.with_name(f"{obj.name}.{os.getpid()}.tmp")
        _run([PREFIX + "as", f"-march={march}", "-mabi=lp64d", "-o", str(tmp), str(src)])
        tmp.replace(obj)
    with obj.open("rb") as f:
        elf = ELFFile(f)
        return [elf.get_section_by_name(f".t{k}").data() for k in range(len(lines))]


def build_elf(name: str, source: str, entry: str = "_start") -> Path:
    """Assemble and link a bare-metal program (text at 0x80000000, the entry of QEMU virt's
    -bios none) into build/tests/; returns the ELF's path. Safe to call from parallel test
    workers: every file is written under a temporary name and renamed into place."""
    require_toolchain()
    BUILD.mkdir(parents=True, exist_ok=True)
    src = BUILD / f"{name}.S"
    elf = BUILD / f"{name}.elf"
    if src.exists() and src.read_text() == source and elf.exists():
        return elf
    script = BUILD / "bare.ld"
    text = LINKER_SCRIPT.format(entry=entry)
    if not script.exists() or script.read_text() != text:
        _write_atomically(script, text)
    tmp_elf = elf.with_name(f"{elf.name}.{os.getpid()}.tmp")
    tmp_src = src.with_name(f"{name}.{os.getpid()}.S")
    tmp_src.write_text(source)
    _run(
        [PREFIX + "gcc", *MARCH, "-mcmodel=medany", "-nostdlib", "-nostartfiles", "-static"]
        + ["-T", str(script), "-o", str(tmp_elf), str(tmp_src)]
    )
    tmp_elf.replace(elf)
    tmp_src.replace(src)
    return elf


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


LINKER_SCRIPT = """
ENTRY({entry})
SECTIONS
{{
  . = 0x80000000;
  .text : {{ *(.text.init) *(.text .text.*) }}
  .rodata : {{ *(.rodata .rodata.* .srodata .srodata.*) }}
  .data : {{ *(.data .data.* .sdata .sdata.*) }}
  .bss : {{ *(.bss .bss.* .sbss .sbss.* COMMON) }}
}}
"""
