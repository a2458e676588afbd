"""Boot layout as QEMU's hw/riscv/boot.c lays it out: firmware at the start of RAM, the
kernel after it, the initrd and the device tree high in RAM, and the reset vector in the
mask ROM at 0x1000 that hands a0 = hart id, a1 = device tree, a2 = fw_dynamic info."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from .loader import Image, LoadError, kernel_format, read_elf, read_linux_image

VIRT_MROM = 0x1000  # hw/riscv/virt.c: virt_memmap[VIRT_MROM] = { 0x1000, 0xf000 }
VIRT_MROM_SIZE = 0xF000
MiB = 1 << 20

FW_DYNAMIC_INFO_MAGIC = 0x4942534F  # "OSBI", include/hw/riscv/boot_opensbi.h
FW_DYNAMIC_INFO_VERSION = 2
FW_DYNAMIC_INFO_NEXT_MODE_S = 1
RESET_VEC_WORDS = 10
# `-bios default` on QEMU's virt loads RISCV64_BIOS_BIN, its own build of OpenSBI's
# fw_dynamic ("opensbi-riscv64-generic-fw_dynamic.bin", hw/riscv/virt.c
# virt_machine_done -> riscv_find_and_load_firmware). rvemu takes Debian's build of the same
# firmware (package opensbi), else the copy Debian's QEMU ships (package qemu-system-data).
DEFAULT_BIOS = (
    "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
    "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin",
)
FW_DYNAMIC_INFO_ADDR = VIRT_MROM + 4 * RESET_VEC_WORDS  # what QEMU's stub puts in a2


def reset_vector(start_addr: int, fdt_addr: int, kernel_entry: int) -> bytes:
    """The contents of QEMU's mask ROM (riscv_setup_rom_reset_vec for RV64) followed by
    the fw_dynamic_info that OpenSBI's fw_dynamic reads through a2."""
    words = [
        0x00000297,  # 1: auipc t0, %pcrel_hi(fw_dyn)
        0x02828613,  #    addi  a2, t0, %pcrel_lo(1b)
        0xF1402573,  #    csrr  a0, mhartid
        0x0202B583,  #    ld    a1, 32(t0)
        0x0182B283,  #    ld    t0, 24(t0)
        0x00028067,  #    jr    t0
        start_addr & 0xFFFF_FFFF,
        start_addr >> 32,
        fdt_addr & 0xFFFF_FFFF,
        fdt_addr >> 32,
    ]
    info = struct.pack(
        "<6Q",
        FW_DYNAMIC_INFO_MAGIC,
        FW_DYNAMIC_INFO_VERSION,
        kernel_entry,
        FW_DYNAMIC_INFO_NEXT_MODE_S,
        0,  # options
        0,  # boot_hart
    )
    return struct.pack("<10I", *words) + info


class BootRom:
    """The mask ROM as a read-only bus device: guests (fw_dynamic) read the info block
    through it. Instruction fetch from it is not supported, so the machine starts the
    hart in the state the stub would leave it in."""

    size = VIRT_MROM_SIZE

    def __init__(self) -> None:
        self.data = bytes(self.size)

    def load(self, contents: bytes) -> None:
        self.data = contents[: self.size] + bytes(self.size - min(len(contents), self.size))

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset : offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        pass  # ROM


@dataclass
class Placement:
    """Where things go in RAM: [(physical address, bytes, memory size)] plus addresses."""

    segments: list[tuple[int, bytes, int]]
    start: int  # where the reset stub jumps
    kernel_entry: int
    image: Image | None  # the kernel ELF (symbols for tohost, marks)
    initrd: tuple[int, int] | None  # (start, end)


def load_blob_or_elf(
    path: str, default_addr: int, limit: int
) -> tuple[list[tuple[int, bytes, int]], int]:
    """Firmware: an ELF's loadable segments, or a raw binary placed at `default_addr` (as
    QEMU's riscv_load_firmware falls back to); a raw binary longer than `limit` (the RAM)
    is refused."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head != b"\x7fELF":
                data = head + read_at_most(f, path, limit)
                return [(default_addr, data, len(data))], default_addr
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror}") from None
    image = read_elf(path)
    return list(image.segments), image.entry


def bios_path(bios: str | None) -> str | None:
    """The firmware file for a --bios value: "none" (or None) for no firmware, "default"
    for OpenSBI's fw_dynamic as QEMU's virt board loads it (riscv_find_firmware), else the
    file named."""
    if bios is None or bios == "none":
        return None
    if bios == "default":
        for path in DEFAULT_BIOS:
            if os.path.isfile(path):
                return path
        raise LoadError(
            "--bios default: OpenSBI's fw_dynamic.bin is not installed (apt install opensbi)"
        )
    return bios


def check(kernel: str | None, bios: str | None = None) -> None:
    """Refuse a kernel rvemu cannot boot, or firmware that is missing, in one line, before
    a machine is built: an ELF is read whole (its tables checked), an Image by its header."""
    if kernel is not None and kernel_format(kernel) == "elf":
        read_elf(kernel)
    fw = bios_path(bios)
    if fw is not None and not os.path.isfile(fw):
        raise LoadError(f"{fw}: no such firmware file")


def place(
    kernel: str | None,
    ram_base: int,
    ram_size: int,
    bios: str | None = None,
    initrd: str | None = None,
) -> Placement:
    """Lay out firmware, kernel and initrd as QEMU virt does (hw/riscv/boot.c). `bios` is
    a --bios value ("none", "default" or a file)."""
    segments: list[tuple[int, bytes, int]] = []
    image = None
    bios = bios_path(bios)
    firmware_end = ram_base
    start = ram_base
    if bios is not None:
        fw_segments, _ = load_blob_or_elf(bios, ram_base, ram_size)
        segments += fw_segments
        firmware_end = max(a + m for a, _, m in fw_segments)
    # riscv_calc_kernel_start_addr: after the firmware, 2 MiB aligned on RV64
    kernel_start = (firmware_end + 2 * MiB - 1) & ~(2 * MiB - 1)
    kernel_entry = kernel_start
    if kernel is not None:
        if kernel_format(kernel) == "elf":
            image = read_elf(kernel)
            segments += list(image.segments)
            kernel_entry = image.entry
        else:
            # riscv_load_kernel: what is not an ELF (or a U-Boot uImage) goes in as it is at
            # kernel_start (load_image_targphys_as), and the firmware jumps there. QEMU's
            # RISC-V boards do not inflate a gzipped Image (hw/arm/boot.c's
            # load_aarch64_image does, for arm64's Image.gz); rvemu does, since gzip bytes
            # as code can only hang the guest.
            data, memsz = read_linux_image(kernel, max(0, ram_base + ram_size - kernel_start))
            segments.append((kernel_start, data, memsz))
        if bios is None:
            start = kernel_entry
    initrd_range = None
    if initrd is not None:
        try:
            with open(initrd, "rb") as f:
                data = read_at_most(f, initrd, ram_size)
        except OSError as e:
            raise LoadError(f"{initrd}: cannot read: {e.strerror}") from None
        # riscv_load_initrd: halfway into small RAMs, at 128 MiB into large ones
        at = kernel_entry + min(ram_size // 2, 128 * MiB)
        segments.append((at, data, len(data)))
        initrd_range = (at, at + len(data))
    end = ram_base + ram_size
    for paddr, _, memsz in segments:
        if paddr < ram_base or paddr + memsz > end:
            raise LoadError(
                f"segment at {paddr:#x}+{memsz:#x} is outside RAM ({ram_base:#x}-{end:#x})"
            )
    if initrd_range is not None:
        lo, hi = initrd_range
        for paddr, _, memsz in segments[:-1]:
            if lo < paddr + memsz and paddr < hi:
                raise LoadError(
                    f"{initrd}: the initrd at {lo:#x}-{hi:#x} would overlap the image at "
                    f"{paddr:#x}+{memsz:#x} (give the machine more memory)"
                )
    return Placement(segments, start, kernel_entry, image, initrd_range)


def fdt_address(
    ram_base: int, ram_size: int, fdt_size: int, used: list[tuple[int, bytes, int]] = ()
) -> int:
    """riscv_compute_fdt_addr / riscv_load_fdt: 2 MiB aligned, below the end of RAM and
    below 3 GiB so 32-bit kernels reach it. In RAM too small for that without covering
    what was loaded (`used` segments), just below the end of RAM; 0 when it fits nowhere."""
    end = ram_base + ram_size
    top = min(end, 3072 * MiB) if ram_base < 3072 * MiB else end

    def free(addr: int) -> bool:
        return addr >= ram_base and all(addr + fdt_size <= a or addr >= a + m for a, _, m in used)

    for addr in ((top - fdt_size) & ~(2 * MiB - 1), (end - fdt_size) & ~0xFFF):
        if free(addr):
            return addr
    return 0


def read_at_most(f, path: str, limit: int) -> bytes:  # noqa: ANN001 (a binary file)
    """The rest of f, refused if longer than `limit` (a device such as /dev/zero has no
    end: never read more than could be placed)."""
    data = f.read(limit + 1)
    if len(data) > limit:
        raise LoadError(f"{path}: larger than the machine's memory ({limit} bytes)")
    return data


def open_or_fail(path: str):
    try:
        return open(path, "rb")
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror}") from None
