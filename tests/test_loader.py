"""Malformed images are refused with a one-line error before anything large is read or
allocated: crafted headers that once crashed the loader, and a bounded campaign of
mutated images (tests/fuzz_elf.py; `make fuzz` runs a long one)."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from fuzz_elf import SEED_IMAGE, campaign

from rvemu import Machine
from rvemu.loader import LoadError

# ELF64 header fields: (offset, struct format)
E_ENTRY, E_PHOFF, E_SHOFF = (24, "<Q"), (32, "<Q"), (40, "<Q")
E_PHENTSIZE, E_SHNUM = (54, "<H"), (60, "<H")
P_OFFSET, P_FILESZ, P_MEMSZ = 8, 32, 40  # in a program header


def seed_image() -> bytes:
    if not SEED_IMAGE.exists():
        pytest.skip(f"*** {SEED_IMAGE} not built (make apps): loader tests NOT run ***")
    return SEED_IMAGE.read_bytes()


def patched(data: bytes, *fields: tuple[int, str, int]) -> bytes:
    out = bytearray(data)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def first_load_header(data: bytes) -> int:
    phoff = struct.unpack_from("<Q", data, 32)[0]
    for k in range(struct.unpack_from("<H", data, 56)[0]):
        if struct.unpack_from("<I", data, phoff + 56 * k)[0] == 1:  # PT_LOAD
            return phoff + 56 * k
    raise AssertionError("no PT_LOAD")


def load(tmp_path: Path, data: bytes) -> Machine:
    path = tmp_path / "image.elf"
    path.write_bytes(data)
    m = Machine(memory="16M")
    m.load(str(path))
    return m


def crafted() -> dict[str, bytes]:
    data = seed_image()
    ph = first_load_header(data)
    return {
        "huge p_filesz": patched(
            data, (ph + P_FILESZ, "<Q", 1 << 62), (ph + P_MEMSZ, "<Q", 1 << 62)
        ),
        "p_offset past the end": patched(data, (ph + P_OFFSET, "<Q", len(data) + 16)),
        "more file than memory bytes": patched(data, (ph + P_MEMSZ, "<Q", 1)),
        "program headers past the end": patched(data, (E_PHOFF[0], "<Q", 1 << 63)),
        "section headers past the end": patched(data, (E_SHOFF[0], "<Q", len(data) - 8)),
        "wrong program header size": patched(data, (E_PHENTSIZE[0], "<H", 7)),
        "truncated": data[:100],
    }


@pytest.mark.parametrize("name", list(crafted()) if SEED_IMAGE.exists() else ["absent"])
def test_malformed_images_are_refused_in_one_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoadError) as error:
        load(tmp_path, crafted()[name])
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "image.elf"))


def test_an_entry_above_2_to_63_is_kept_as_the_hart_stores_it(tmp_path: Path) -> None:
    """(It once overflowed the int64 pc while setting up the hart.)"""
    m = load(tmp_path, patched(seed_image(), (E_ENTRY[0], "<Q", 0xFFFF_FFFF_FFFF_F000)))
    assert m.image.entry == 0xFFFF_FFFF_FFFF_F000
    assert m.hart.pc == 0xFFFF_FFFF_FFFF_F000 - (1 << 64)  # the hart starts there (as int64)
    assert m.run(max_instructions=100).reason != "poweroff"  # and faults, as on QEMU


def test_bounded_campaign_of_mutated_images() -> None:
    seed_image()
    outcomes, crashes = campaign(2000, seed=11)
    assert not crashes, "\n".join(crashes.values())
    assert outcomes["loaded"] > 100 and outcomes["refused"] > 100, outcomes


def test_cli_refuses_a_malformed_image_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.elf"
    path.write_bytes(crafted()["huge p_filesz"])
    result = subprocess.run(
        [sys.executable, "-m", "rvemu", "boot", str(path)], capture_output=True, timeout=120
    )
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"rvemu: {path}: malformed ELF")


# --- Linux Images (Documentation/arch/riscv/boot-image-header.rst), flat and gzipped

T0, T1 = 5, 6  # registers


def linux_image(image_size: int = 0, letter: str = "K") -> bytes:
    """A 64-byte RISC-V Image header whose code0 jumps over it to a program that prints
    `letter` and powers off through sifive_test: what `qemu -kernel` loads raw."""
    from conftest import enc_i, enc_j, enc_s, enc_u

    program = [
        enc_u(0x1000_0000, T0, 0x37),  # lui t0, UART
        enc_i(ord(letter), 0, 0, T1, 0x13),  # li t1, letter
        enc_s(0, T1, T0, 0, 0x23),  # sb t1, 0(t0)
        enc_u(0x0010_0000, T0, 0x37),  # lui t0, sifive_test
        enc_u(0x5000, T1, 0x37),  # lui t1, 0x5000
        enc_i(0x555, T1, 0, T1, 0x13),  # addi t1, t1, 0x555
        enc_s(0, T1, T0, 2, 0x23),  # sw t1, 0(t0): power off, pass
    ]
    header = struct.pack(
        "<IIQQQIIQQII",
        enc_j(64, 0),  # code0: j over the header
        0,  # code1
        0x200000,  # text_offset
        image_size,
        0,  # flags: little endian
        2,  # version 0.2
        0,
        0,
        0x5643534952,  # "RISCV", deprecated
        0x05435352,  # "RSC\x05"
        0,
    )
    assert len(header) == 64
    return header + b"".join(struct.pack("<I", w) for w in program)


def firmware_jumping_to(address: int) -> bytes:
    """A raw --bios blob at the start of RAM: jump to the kernel's load address, as fw_jump
    does (auipc: lui would sign-extend the address)."""
    from conftest import enc_i, enc_u

    auipc = enc_u(address - 0x8000_0000, T0, 0x17)
    return struct.pack("<II", auipc, enc_i(0, T0, 0, 0, 0x67))


def boot(tmp_path: Path, name: str, data: bytes, **options) -> Machine:
    path = tmp_path / name
    path.write_bytes(data)
    m = Machine(memory="16M", **options)
    m.load(str(path))
    return m


def test_an_image_without_firmware_goes_at_the_start_of_ram(tmp_path: Path) -> None:
    m = boot(tmp_path, "Image", linux_image())
    assert m.hart.pc == 0x8000_0000  # riscv_calc_kernel_start_addr after no firmware
    result = m.run(1000)
    assert (result.reason, result.exit_code, m.console) == ("poweroff", 0, b"K")


def test_an_image_after_firmware_goes_2_mib_into_ram(tmp_path: Path) -> None:
    bios = tmp_path / "fw.bin"
    bios.write_bytes(firmware_jumping_to(0x8020_0000))
    m = boot(tmp_path, "Image", linux_image(), bios=str(bios))
    assert m.hart.pc == 0x8000_0000  # the firmware runs first
    assert m.bus.read(0x1028 + 16, 8) == 0x8020_0000  # fw_dynamic_info.next_addr
    assert m.read_phys(0x8020_0038, 4) == b"RSC\x05"
    assert m.run(1000).exit_code == 0 and m.console == b"K"


def test_a_gzipped_image_is_inflated(tmp_path: Path) -> None:
    m = boot(tmp_path, "Image.gz", gzip.compress(linux_image(letter="Z"), mtime=0))
    assert m.read_phys(0x8000_0038, 4) == b"RSC\x05"
    assert m.run(1000).exit_code == 0 and m.console == b"Z"


def test_the_image_size_in_the_header_counts_as_used_memory(tmp_path: Path) -> None:
    """image_size covers the kernel's bss: an initrd must not go there, and a kernel whose
    image_size passes the end of RAM is refused."""
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"x" * 4096)
    with pytest.raises(LoadError, match="overlap"):  # initrd at +8 MiB in 16 MiB of RAM
        boot(tmp_path, "Image", linux_image(image_size=9 << 20), initrd=str(initrd))
    with pytest.raises(LoadError, match="outside RAM"):
        boot(tmp_path, "Image", linux_image(image_size=17 << 20))


def gzip_bomb() -> bytes:
    """An Image header followed by 64 MiB of zeros, gzipped to about 64 KiB."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = z.compress(linux_image())
    for _ in range(64):
        out += z.compress(bytes(1 << 20))
    return out + z.flush()


def not_kernels() -> dict[str, tuple[bytes, str]]:
    """name: (file contents, what the one-line error says)"""
    gz = lambda data: gzip.compress(data, mtime=0)  # noqa: E731
    return {
        "text": (b"hello, world\n" * 10, "not an ELF file or a RISC-V Linux Image"),
        "short image": (linux_image()[:60], "not an ELF file or a RISC-V Linux Image"),
        "gzipped text": (gz(b"hello, world\n" * 10), "not a RISC-V Linux Image"),
        "corrupt gzip": (b"\x1f\x8b\x08\x00" + bytes(range(200)), "corrupt gzip data"),
        "truncated gzip": (gz(linux_image() + bytes(100000))[:-12], "truncated"),
        "gzip bomb": (gzip_bomb(), "inflates to more than fits in RAM"),
    }


@pytest.mark.parametrize("name", list(not_kernels()))
def test_what_is_neither_elf_nor_image_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    data, message = not_kernels()[name]
    with pytest.raises(LoadError) as error:
        boot(tmp_path, "kernel", data)
    text = str(error.value)
    assert message in text and "\n" not in text and text.startswith(str(tmp_path / "kernel"))


def test_bios_default_is_opensbi_fw_dynamic_and_none_is_no_firmware(
    tmp_path: Path, monkeypatch
) -> None:
    from rvemu import firmware

    fw = tmp_path / "fw_dynamic.bin"
    fw.write_bytes(firmware_jumping_to(0x8020_0000))
    monkeypatch.setattr(firmware, "DEFAULT_BIOS", (str(tmp_path / "absent.bin"), str(fw)))
    m = boot(tmp_path, "Image", linux_image(), bios="default")
    assert m.read_phys(0x8000_0000, 8) == fw.read_bytes()
    assert m.run(1000).exit_code == 0
    m = boot(tmp_path, "Image", linux_image(), bios="none")
    assert m.hart.pc == 0x8000_0000 and m.read_phys(0x8000_0038, 4) == b"RSC\x05"


def test_bios_default_without_opensbi_is_a_one_line_error(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from rvemu import cli, firmware

    monkeypatch.setattr(firmware, "DEFAULT_BIOS", (str(tmp_path / "absent.bin"),))
    kernel = tmp_path / "Image"
    kernel.write_bytes(linux_image())
    assert cli.main(["boot", "--bios", "default", str(kernel)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt install opensbi" in err, err
    assert err.startswith("rvemu: --bios default: ")
