"""rvemu.disasm against GNU objdump (`riscv64-unknown-elf-objdump -d`, Debian's binutils 2.40).

Every instruction line objdump prints must read the same from rvemu.disasm, bytes column
and text (symbols, `# address` notes and all), fed in objdump's order through one
Disassembler per file with the file's symbols for each section:

- the libos images, stripped (`hello.elf`) and not (`hello.sym.elf`), of `make apps` and
  `make apps-sv39` (build/unikernel*/): all must match;
- the official riscv-tests ELFs, looked up as tests/test_official_suite.py does: every
  `-p-` test and the first `-v-` test of each family (the `-v-` tests add the same
  virtual-memory environment to the same test code);
- an ELF built here of random encodings of every record of cpu/isa.py, every 16-bit
  word, every CSR number and the aliases' corner cases.

Lines objdump prints as data (`.word`, `.short`: the assembler's mapping symbols say the
bytes are data) are skipped. The only differences allowed are those in KNOWN_DIFFERENCES,
each with its reason; the test prints how many lines it compared and how many differed.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from test_official_suite import family_and_env, suite_dir
from toolchain import PREFIX, build_elf, require_toolchain

from rvemu.cpu.isa import RECORDS
from rvemu.disasm import (
    Disassembler,
    disassemble,
    elf_symbols,
    global_pointer,
    raw_text,
)

ROOT = Path(__file__).resolve().parent.parent
OBJDUMP = PREFIX + "objdump"
LINE = re.compile(r"^ *([0-9a-f]+):\t([0-9a-f]+) *\t(.*)$")
DATA = (".word", ".short", ".byte", ".dword")

# (objdump's mnemonic, rvemu's): why they differ. Nothing else may.
KNOWN_DIFFERENCES = {
    (".2byte", "unimp"): "the file's ISA attribute has no C: objdump shows 16-bit words as data",
    ("packw", "zext.h"): "the file's ISA attribute has Zbkb but not Zbb, whose name zext.h is",
    (".4byte", "czero.eqz"): "Zicond is newer than binutils 2.40",
    (".4byte", "czero.nez"): "Zicond is newer than binutils 2.40",
    (".4byte", "fence"): "objdump wants fence's rd, rs1 and fm zero; rvemu executes it",
    (".4byte", "fence.i"): "objdump wants fence.i's rd, rs1 and imm zero; rvemu executes it",
    (".4byte", "fcvt.s.h"): "binutils 2.40 takes no rounding mode on exact conversions",
    (".4byte", "fcvt.d.s"): "binutils 2.40 takes no rounding mode on exact conversions",
    (".4byte", "fcvt.d.h"): "binutils 2.40 takes no rounding mode on exact conversions",
    (".4byte", "fcvt.d.w"): "binutils 2.40 takes no rounding mode on exact conversions",
    (".4byte", "fcvt.d.wu"): "binutils 2.40 takes no rounding mode on exact conversions",
    ("add", ".2byte"): "C.ADDI16SP with a zero immediate is reserved: rvemu traps on it",
}


def require_objdump() -> None:
    if shutil.which(OBJDUMP) is None:
        pytest.skip(f"*** {OBJDUMP} not found: the disassembler was NOT compared ***")


def compare(elf: Path) -> tuple[int, Counter, list[str]]:
    """Lines compared, the known differences met, and the unexplained ones."""
    listing = subprocess.run([OBJDUMP, "-d", str(elf)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    disassembler = Disassembler(gp=global_pointer(str(elf)))
    compared, known, wrong = 0, Counter(), []
    for line in listing.stdout.splitlines():
        if line.startswith("Disassembly of section "):
            section = line.removeprefix("Disassembly of section ").removesuffix(":")
            disassembler.symbols = elf_symbols(str(elf), section)
            continue
        match = LINE.match(line)
        if match is None or match[3].startswith(DATA):
            continue
        address, column, expected = match.groups()
        raw = int(column, 16)
        ours = disassembler(raw, int(address, 16))
        compared += 1
        if ours == expected and raw_text(raw, len(column) // 2) == column:
            continue
        pair = (expected.split("\t")[0], ours.split("\t")[0])
        if pair in KNOWN_DIFFERENCES:
            known[pair] += 1
        else:
            wrong.append(f"{elf.name} {address}: {column}  objdump {expected!r}  rvemu {ours!r}")
    return compared, known, wrong


def check(elfs: list[Path], allowed: set[tuple[str, str]]) -> None:
    """All lines of all files read as objdump's, or differ only as `allowed` says."""
    total, known, wrong = 0, Counter(), []
    for elf in elfs:
        compared, k, w = compare(elf)
        total, known, wrong = total + compared, known + k, wrong + w
    differences = f"{sum(known.values())} known differences {dict(known)}"
    print(f"\n{len(elfs)} files, {total} instructions compared, {differences}, {len(wrong)} wrong")
    assert not wrong, f"{len(wrong)} of {total} lines differ:\n" + "\n".join(wrong[:40])
    assert set(known) <= allowed, f"differences not expected here: {set(known) - allowed}"


@pytest.mark.parametrize("folder", ["unikernel", "unikernel-sv39"])
def test_libos_images(folder: str) -> None:
    require_objdump()
    elfs = sorted((ROOT / "build" / folder).glob("*.elf"))
    if not elfs:
        target = "apps" if folder == "unikernel" else "apps-sv39"
        pytest.skip(f"*** no images in build/{folder} (make {target}): NOT compared ***")
    check(elfs, allowed=set())


def riscv_tests() -> dict[str, list[Path]]:
    """Every -p- test and the first -v- test of each family, by family."""
    found: dict[str, list[Path]] = {}
    folder = suite_dir()
    for elf in sorted(folder.iterdir()) if folder else []:
        kind = family_and_env(elf.name)
        if kind is None or elf.suffix:
            continue
        family, env = kind
        tests = found.setdefault(family, [])
        if env == "p" or not any("-v-" in t.name for t in tests):
            tests.append(elf)
    return found


RISCV_TESTS = riscv_tests()


@pytest.mark.parametrize("family", sorted(RISCV_TESTS) or ["none"])
def test_riscv_tests(family: str) -> None:
    require_objdump()
    if not RISCV_TESTS:
        pytest.skip("*** riscv-tests not found (see test_official_suite.py): NOT compared ***")
    check(RISCV_TESTS[family], allowed={(".2byte", "unimp"), ("packw", "zext.h")})


# --- every encoding

ISA = "rv64gc_zba_zbb_zbc_zbs_zbkb_zbkx_zfh_zicbom_zicboz_zicbop_zihintpause"
CORNERS = [
    0x0000_0013, 0x0FF0_000F, 0x8330_000F, 0x0100_000F, 0x0000_100F, 0xC000_1073,  # nop ... unimp
    0x0000_8067, 0x0000_0067, 0x0002_8067, 0x0002_80E7, 0x0000_00EF, 0x0000_006F,  # jumps
    0x0010_2013,  # rvemu's MARK_MAIN: slti zero,zero,1
    0x0000, 0x0001, 0x4001, 0x6001, 0x6101, 0x8082, 0x9002, 0x8002, 0x0002, 0x8001,  # compressed
]  # fmt: skip


def every_encoding(seed: int = 2024, per_record: int = 40) -> list[int]:
    """Random operand bits for each record (fields often 0, 1, all ones or equal to one
    another, so aliases come up), then every 16-bit word, every CSR and the corners."""
    rng = random.Random(seed)
    words = []
    for record in RECORDS:
        for _ in range(per_record):
            word = record.match | (rng.getrandbits(32) & ~record.mask)
            for low, width in ((7, 5), (15, 5), (20, 5), (27, 5), (20, 12), (12, 3)):
                field = ((1 << width) - 1) << low
                if not record.mask & field and rng.random() < 0.2:
                    value = rng.choice([0, 0, 1, 2, 7, -1]) << low
                    word = word & ~field | value & field
            if not record.mask & (31 << 15) and rng.random() < 0.15:  # rs1 = rs2
                word = word & ~(31 << 15) | ((word >> 20) & 31) << 15
            words.append(word & 0xFFFF_FFFF)
    words += [h for h in range(1 << 16) if h & 3 != 3]
    words += [csr << 20 | 2 << 12 | 10 << 7 | 0x73 for csr in range(1 << 12)]  # csrrs a0,csr,zero
    return words + CORNERS


def test_every_encoding() -> None:
    require_toolchain()
    require_objdump()
    lines = [f".insn 2, 0x{w:x}" if w & 3 != 3 else f".insn 0x{w:08x}" for w in every_encoding()]
    source = (
        f".option arch, {', '.join('+' + e for e in ISA.split('_')[1:])}\n"
        ".globl _start, __global_pointer$\n"
        ".set __global_pointer$, _start + 0x800\n"
        "_start:\n" + "\n".join(lines) + "\n"
    )
    check([build_elf("disasm-every-encoding", source)], allowed=set(KNOWN_DIFFERENCES))


def test_one_instruction() -> None:
    """The stateless form, with and without symbols."""
    assert disassemble(0x1141, 0x8000_0050) == "add\tsp,sp,-16"
    assert disassemble(0x00113423, 0) == "sd\tra,8(sp)"
    assert disassemble(0x8082, 0) == "ret"
    assert disassemble(0x300027F3, 0) == "csrr\ta5,mstatus"
    assert disassemble(0x2F6000EF, 0x8000_005C) == "jal\t0x80000352"
    assert disassemble(0x2F6000EF, 0x8000_005C, {0x8000_0352: "puts"}) == "jal\t80000352 <puts>"
    assert disassemble(0x0000_0517, 0x8000_0052) == "auipc\ta0,0x0"  # no note without a pair
    assert raw_text(0x1141, 2) == "1141" and raw_text(0x297, 4) == "00000297"
