"""Extensions beyond RV64GC can be turned off as with QEMU's -cpu (rv64,zba=false): their
instructions become illegal in both tiers, and the device tree stops naming them."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CODE, Rig, encode_record
from test_dev_fdt import read_fdt

from rvemu import Machine
from rvemu.cpu import state as S
from rvemu.cpu.isa import (
    ALL_EXTENSIONS,
    IMPLIES,
    OPTIONAL_EXTENSIONS,
    RECORDS,
    SYSTEM,
    Record,
    extension_bit,
    parse_cpu,
)

EBREAK = 0x00100073


def first_record(ext: str) -> Record:
    """An instruction only `ext` has (not one it shares with another extension)."""
    return next(r for r in RECORDS if r.extensions == (ext,))


INSTRUCTION_EXTENSIONS = sorted(
    {e for r in RECORDS for e in r.extensions} & set(OPTIONAL_EXTENSIONS)
)


def test_parse_cpu() -> None:
    assert parse_cpu("rv64") == ALL_EXTENSIONS
    assert parse_cpu("rv64,zba=false,sstc=off") == ALL_EXTENSIONS & ~(
        extension_bit("zba") | extension_bit("sstc")
    )
    assert parse_cpu("rv64,zba=off,zba=on") == ALL_EXTENSIONS
    # Zfh needs Zfhmin: as on QEMU, turning Zfhmin off alone leaves it on
    assert parse_cpu("rv64,zfhmin=off") & extension_bit("zfhmin")
    assert not parse_cpu("rv64,zfh=off,zfhmin=off") & extension_bit("zfhmin")
    for bad in ("rv32", "rv64,zzz=on", "rv64,zba=maybe", "rv64,zba"):
        with pytest.raises(ValueError):
            parse_cpu(bad)


def run_one(rig: Rig, record: Record) -> int:
    """Run the record's instruction at CODE in M-mode; mcause if it trapped, else -1."""
    rig.reset()
    rig.hart.x[6] = CODE + 0x1000  # a RAM address, for the cache-block operations
    rig.place([encode_record(record), EBREAK])
    rig.hart.csr[S.MCAUSE] = -1
    rig.step(1)
    return int(rig.hart.csr[S.MCAUSE]) if rig.trapped_to_m() else -1


@pytest.mark.parametrize("ext", INSTRUCTION_EXTENSIONS)
def test_a_turned_off_extension_is_illegal(ext: str) -> None:
    rig = Rig()
    record = first_record(ext)
    assert run_one(rig, record) == -1, f"{record.name} trapped with {ext} on"
    # (and whatever implies it: Zfh brings Zfhmin back)
    implied_by = [e for e, implied in IMPLIES.items() if ext in implied]
    rig.hart.extensions = parse_cpu(",".join(["rv64"] + [f"{e}=off" for e in [ext, *implied_by]]))
    assert run_one(rig, record) == S.CAUSE_ILLEGAL, f"{record.name} ran with {ext} off"
    assert rig.hart.csr[S.MTVAL] == encode_record(record)
    rig.hart.extensions = ALL_EXTENSIONS
    assert run_one(rig, record) == -1


def test_a_shared_instruction_needs_only_one_of_its_extensions() -> None:
    rig = Rig()
    andn = next(r for r in RECORDS if r.name == "andn")
    assert set(andn.extensions) == {"zbb", "zbkb"}
    rig.hart.extensions = parse_cpu("rv64,zbb=off")
    assert run_one(rig, andn) == -1
    rig.hart.extensions = parse_cpu("rv64,zbb=off,zbkb=off")
    assert run_one(rig, andn) == S.CAUSE_ILLEGAL


def test_the_second_tier_does_not_compile_a_turned_off_instruction() -> None:
    """A jump makes the code after it hot at once (threshold 1): compiled with sh1add in
    its region, it would run instead of trapping."""
    rig = Rig()
    rig.hart.hot_threshold = 1
    rig.hart.extensions = parse_cpu("rv64,zba=off")
    sh1add = first_record("zba")
    assert sh1add.kind != SYSTEM
    jal_plus_4 = 0x0040006F
    rig.place([jal_plus_4, encode_record(sh1add), EBREAK])
    rig.hart.csr[S.MCAUSE] = -1
    rig.hart.run(2)  # the jump, then sh1add (or, trapping, the handler's nop)
    assert rig.hart.csr[S.MCAUSE] == S.CAUSE_ILLEGAL
    assert rig.hart.csr[S.MEPC] == CODE + 4


def cpu_node(cpu: str) -> dict[str, bytes]:
    return read_fdt(Machine(memory="16M", cpu=cpu).board.dtb())["/cpus/cpu@0"]


def strings(value: bytes) -> list[str]:
    return value.decode().rstrip("\0").split("\0")


def test_device_tree_names_the_extensions_the_hart_has() -> None:
    node = cpu_node("rv64")
    isa = strings(node["riscv,isa"])[0]
    assert isa.startswith("rv64imafdc_zicbom_")
    assert "_zba_" in isa and isa.endswith("_sstc_svnapot")
    listed = strings(node["riscv,isa-extensions"])
    assert listed[:6] == list("imafdc") and {"zicsr", "zfh", "zbkx", "sstc"} <= set(listed)
    assert strings(node["riscv,isa-base"]) == ["rv64i"]
    for name in ("cbom", "cbop", "cboz"):
        assert struct.unpack(">I", node[f"riscv,{name}-block-size"]) == (64,)

    off = cpu_node("rv64,zba=false,zicboz=off,sstc=off")
    assert "zba" not in strings(off["riscv,isa"])[0].split("_")
    assert "sstc" not in strings(off["riscv,isa"])[0].split("_")
    assert "zba" not in strings(off["riscv,isa-extensions"])
    assert "riscv,cboz-block-size" not in off and "riscv,cbom-block-size" in off


def test_cli_cpu_option(tmp_path: Path) -> None:
    out = tmp_path / "virt.dtb"
    cmd = [sys.executable, "-m", "rvemu", "dtb", "--cpu", "rv64,zbb=off", "-o", str(out)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    isa = strings(read_fdt(out.read_bytes())["/cpus/cpu@0"]["riscv,isa"])[0]
    assert "zbb" not in isa.split("_") and "zbkb" in isa.split("_")
    bad = subprocess.run(
        [sys.executable, "-m", "rvemu", "dtb", "--cpu", "rv64,zbq=off"], capture_output=True
    )
    assert bad.returncode != 0
    lines = bad.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "zbq" in lines[0], lines
