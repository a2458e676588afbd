"""Build tiny bare-metal guest programs (assembly or C) with the cross toolchain.

Images go to build/tests/ and link at the start of RAM (0x8000_0000), where rvemu and QEMU's
`virt` machine start a `-bios none` kernel; they stop by writing the sifive_test power-off.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "tests"
CC = "riscv64-unknown-elf-gcc"

LINKER_SCRIPT = """\
ENTRY(_start)
SECTIONS {
  . = 0x80000000;
  .text : { *(.text.init) *(.text*) }
  . = ALIGN(8);
  .rodata : { *(.rodata*) *(.srodata*) }
  .data : { *(.data*) *(.sdata*) }
  .bss : { *(.bss*) *(.sbss*) *(COMMON) }
  . = ALIGN(4096);
  _end = .;
}
"""


def _compile(name: str, sources: list[Path], flags: list[str]) -> Path:
    if shutil.which(CC) is None:
        raise FileNotFoundError(f"{CC} not installed")
    OUT.mkdir(parents=True, exist_ok=True)
    lds = OUT / "guest.ld"
    if not lds.exists() or lds.read_text() != LINKER_SCRIPT:
        lds.write_text(LINKER_SCRIPT)
    elf = OUT / f"{name}.elf"
    key = hashlib.sha256(
        b"".join(p.read_bytes() for p in sources) + " ".join(flags).encode()
    ).hexdigest()
    stamp = OUT / f"{name}.hash"
    if elf.exists() and stamp.exists() and stamp.read_text() == key:
        return elf
    cmd = [CC, "-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-nostdlib",
           "-nostartfiles", "-static", "-ffreestanding", "-T", str(lds), *flags,
           *map(str, sources), "-o", str(elf)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    stamp.write_text(key)
    return elf


def build_asm(name: str, source: str) -> Path:
    """Assemble a program given as text (entry symbol `_start`)."""
    OUT.mkdir(parents=True, exist_ok=True)
    src = OUT / f"{name}.S"
    if not src.exists() or src.read_text() != source:
        src.write_text(source)
    return _compile(name, [src], [])


def build_files(name: str, sources: list[Path], flags: list[str] | None = None) -> Path:
    """Compile and link C/assembly files (one must define `_start`)."""
    return _compile(name, sources, flags or ["-O2"])
