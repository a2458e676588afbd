"""The device tree: a valid blob (read back by dtc and by a reader written here from the
Devicetree Specification), describing the machine as configured, node for node what QEMU's
virt machine describes for the devices rvemu has, placed in RAM and passed in a1."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import QEMU, build  # noqa: E402

from rvemu import Machine  # noqa: E402

# QEMU nodes for hardware rvemu does not have (PCI, flash, fw-cfg, PMU, platform bus)
NOT_IN_RVEMU = ("pci@", "flash@", "fw-cfg@", "pmu", "platform-bus@")
# properties that describe the hart's features (QEMU 7.2's harts have fewer extensions,
# and name them only in riscv,isa) or are random per boot
HART_OR_RANDOM = {"riscv,isa", "rng-seed", "riscv,isa-base", "riscv,isa-extensions"}
HART_OR_RANDOM |= {f"riscv,{block}-block-size" for block in ("cbom", "cbop", "cboz")}


def read_fdt(blob: bytes) -> dict[str, dict[str, bytes]]:
    """{'/soc/serial@10000000': {'compatible': b'ns16550a\\0', ...}, ...}"""
    magic, total, off_struct, off_strings = struct.unpack_from(">4I", blob)
    assert magic == 0xD00DFEED and total <= len(blob)
    version, last_comp = struct.unpack_from(">II", blob, 20)
    assert version == 17 and last_comp == 16
    nodes: dict[str, dict[str, bytes]] = {}
    path: list[str] = []
    pos = off_struct
    while True:
        (token,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if token == 1:
            end = blob.index(b"\0", pos)
            path.append(blob[pos:end].decode())
            pos = (end + 4) & ~3
            nodes["/".join(path) or "/"] = {}
        elif token == 2:
            path.pop()
        elif token == 3:
            length, nameoff = struct.unpack_from(">II", blob, pos)
            name_end = blob.index(b"\0", off_strings + nameoff)
            name = blob[off_strings + nameoff : name_end].decode()
            nodes["/".join(path) or "/"][name] = blob[pos + 8 : pos + 8 + length]
            pos = (pos + 8 + length + 3) & ~3
        elif token == 4:
            continue
        elif token == 9:
            return nodes
        else:
            raise AssertionError(f"bad token {token}")


def ours(**options) -> bytes:
    m = Machine(**options)
    m.load(str(build("rtc")))
    return m.board.dtb()


def qemu_dtb(tmp_path: Path, args: list[str]) -> bytes:
    if shutil.which(QEMU) is None:
        pytest.skip(f"*** {QEMU} not installed: device tree NOT compared with QEMU's ***")
    out = tmp_path / "qemu.dtb"
    cmd = [QEMU, "-machine", f"virt,dumpdtb={out}", "-bios", "none", "-nographic"]
    cmd += ["-kernel", str(build("rtc")), *args]
    subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    return out.read_bytes()


def comparable(nodes: dict[str, dict[str, bytes]]) -> dict[str, dict[str, bytes]]:
    return {
        path: {k: v for k, v in props.items() if k not in HART_OR_RANDOM}
        for path, props in nodes.items()
        if not any(part.startswith(NOT_IN_RVEMU) for part in path.split("/"))
    }


@pytest.mark.parametrize(
    "options,args",
    [
        ({}, ["-m", "128M"]),
        ({"memory": "256M", "append": "console=ttyS0 quiet"},
         ["-m", "256M", "-append", "console=ttyS0 quiet"]),
        ({"memory": "64M", "initrd": "INITRD"}, ["-m", "64M", "-initrd", "INITRD"]),
    ],
)  # fmt: skip
def test_tree_matches_qemu_virt(tmp_path, options, args):
    initrd = tmp_path / "initrd.bin"
    initrd.write_bytes(bytes(range(256)) * 7)
    options = {k: (str(initrd) if v == "INITRD" else v) for k, v in options.items()}
    args = [str(initrd) if a == "INITRD" else a for a in args]
    mine = comparable(read_fdt(ours(**options)))
    theirs = comparable(read_fdt(qemu_dtb(tmp_path, args)))
    assert sorted(mine) == sorted(theirs)
    for path in theirs:
        assert mine[path] == theirs[path], path


def test_tree_reflects_the_options(tmp_path):
    initrd = tmp_path / "initrd.bin"
    initrd.write_bytes(b"x" * 5000)
    nodes = read_fdt(ours(memory="64M", append="root=/dev/vda", initrd=str(initrd)))
    assert nodes["/memory@80000000"]["reg"] == struct.pack(">4I", 0, 0x8000_0000, 0, 64 << 20)
    chosen = nodes["/chosen"]
    assert chosen["bootargs"] == b"root=/dev/vda\0"
    assert chosen["stdout-path"] == b"/soc/serial@10000000\0"
    start = struct.unpack(">I", chosen["linux,initrd-start"])[0]
    end = struct.unpack(">I", chosen["linux,initrd-end"])[0]
    assert end - start == 5000 and start == 0x8000_0000 + (32 << 20)
    assert "bootargs" not in read_fdt(ours())["/chosen"]


def test_dtc_reads_our_blob_as_it_reads_qemus(tmp_path):
    if shutil.which("dtc") is None:
        pytest.skip("*** dtc not installed (device-tree-compiler): blob NOT checked by dtc ***")
    blob = tmp_path / "rvemu.dtb"
    blob.write_bytes(ours(append="console=ttyS0"))
    result = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(blob)], capture_output=True)
    assert result.returncode == 0
    # the one warning dtc gives QEMU's tree too (cpu-intc without #address-cells)
    warnings = [w for w in result.stderr.decode().splitlines() if w.strip()]
    assert all("interrupt_provider" in w for w in warnings), warnings
    assert b'compatible = "ns16550a";' in result.stdout
    assert b'bootargs = "console=ttyS0";' in result.stdout


def test_tree_is_in_ram_and_in_a1_with_hart_id_in_a0():
    m = Machine(memory="128M")
    m.load(str(build("rtc")))
    assert m.hart.reg("a0") == 0
    a1 = m.hart.reg("a1")
    assert a1 == 0x87E0_0000  # QEMU: 2 MiB aligned below the end of RAM
    blob = m.board.dtb()
    assert m.read_phys(a1, len(blob)) == blob
    assert m.hart.pc == 0x8000_0000  # the ELF entry, as the reset stub jumps to it


def test_tree_address_matches_qemus_reset_vector(tmp_path):
    """QEMU's reset vector in the mask ROM holds the device tree address; ours must hold
    the same one (and the same code) for the same RAM size."""
    m = Machine(memory="128M")
    m.load(str(build("rtc")))
    rom = bytes(m.bus.read(0x1000 + k, 1) for k in range(40))
    words = struct.unpack("<10I", rom)
    assert words[:6] == (0x297, 0x2828613, 0xF1402573, 0x202B583, 0x182B283, 0x28067)
    assert words[6] | words[7] << 32 == 0x8000_0000
    assert words[8] | words[9] << 32 == m.hart.reg("a1")


@pytest.mark.parametrize("memory", ["1M", "2M", "3M"])
def test_tree_never_covers_the_loaded_image_in_small_ram(memory):
    m = Machine(memory=memory)
    m.load(str(build("rtc")))
    a1 = m.hart.reg("a1")
    image_end = max(a + n for a, _, n in m.image.segments)
    assert a1 >= image_end and a1 + len(m.board.dtb()) <= 0x8000_0000 + m.board.ram_size
    result = m.run(10_000_000)
    assert result.exit_code == 0
