"""Malformed images are refused with a one-line error before anything large is read or
allocated: crafted headers that once crashed the loader, and a bounded campaign of
mutated images (tests/fuzz_elf.py; `make fuzz` runs a long one)."""

from __future__ import annotations

import struct
import subprocess
import sys
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
