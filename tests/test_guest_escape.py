"""The guest never escapes: guests that aim the virtio devices at memory and files they were
not given (DMA addresses past RAM or wrapping 2^64, huge lengths, disk sectors past the end,
writes to a read-only disk) get an I/O error or a device that needs a reset, and nothing
outside what they were given changes: not the disk's bytes or mtime, not a file beside it,
not a byte of RAM outside the buffers they own.

Each guest is a small program (encoded here, no toolchain needed) that sets the device up
and notifies it through its MMIO registers, as a driver does, from descriptor tables and
rings prepared in its RAM; the exact edges (the last RAM byte, the disk's last sector) are
shown to work, so the refusals are not a device refusing everything.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import enc

from rvemu import Machine
from rvemu.devices import virtio_mmio as V
from rvemu.devices.virtio_blk import S_IOERR, S_OK, SECTOR

RAM = 0x8000_0000
RAM_SIZE = 1 << 20
RAM_END = RAM + RAM_SIZE
CODE, TABLE = RAM + 0x1000, RAM + 0x2000
DESC, AVAIL, USED = RAM + 0x10000, RAM + 0x11000, RAM + 0x12000
BUF = RAM + 0x20000
SLOTS = {"blk": 0x1000_8000, "net": 0x1000_7000, "rng": 0x1000_6000}  # the last slots down
DISK_SECTORS = 16
POWER_OFF = (0x10_0000, 0x5555)


def mmio_program() -> bytes:
    """Stores each (address, value) word pair of the table at a0 as a 32-bit write until an
    address of -1, then powers off: a driver's register writes, through the hart."""
    words = [
        enc("ld", rd=5, rs1=10, imm=0),  # 0: t0 = address
        enc("blt", rs1=5, rs2=0, imm=24),  # 4: -1: done
        enc("ld", rd=6, rs1=10, imm=8),  # 8: t1 = value
        enc("sw", rs1=5, rs2=6, imm=0),  # 12
        enc("addi", rd=10, rs1=10, imm=16),  # 16
        enc("jal", imm=-20),  # 20: loop
        0x00000013,  # 24
        enc("sw", rs1=12, rs2=13, imm=0),  # 28: done: power off
        enc("jal", imm=0),
    ]
    return b"".join(w.to_bytes(4, "little") for w in words)


def driver_writes(base: int, queues: int, notify: int, used: int) -> list[tuple[int, int]]:
    writes = [(V.R_STATUS, 0), (V.R_STATUS, 3), (V.R_DRIVER_FEATURES_SEL, 1)]
    writes += [(V.R_DRIVER_FEATURES, 1), (V.R_STATUS, 11)]
    for q in range(queues):
        writes += [(V.R_QUEUE_SEL, q), (V.R_QUEUE_NUM, 8)]
        for reg, addr in ((V.R_QUEUE_DESC_LOW, DESC), (V.R_QUEUE_DRIVER_LOW, AVAIL),
                          (V.R_QUEUE_DEVICE_LOW, used)):  # fmt: skip
            addr += 0x4000 * q
            writes += [(reg, addr & 0xFFFF_FFFF), (reg + 4, addr >> 32)]
        writes.append((V.R_QUEUE_READY, 1))
    writes += [(V.R_STATUS, 15), (V.R_QUEUE_NOTIFY, notify)]
    return [(base + off, value) for off, value in writes]


class Guest:
    """A machine with a disk (read-only or not), a network on a wire nobody listens to and
    the rng; files and RAM are recorded before the guest runs."""

    def __init__(self, folder: Path, read_only: bool = False) -> None:
        self.disk = folder / "disk.img"
        self.disk.write_bytes(b"".join(bytes([k + 1]) * SECTOR for k in range(DISK_SECTORS)))
        self.neighbour = folder / "neighbour.txt"  # a file the guest was not given
        self.neighbour.write_bytes(b"not the guest's")
        for path in (self.disk, self.neighbour):
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        spec = str(self.disk) + (",ro" if read_only else "")
        self.m = Machine(memory="1M", disk=spec, net="udp:0:127.0.0.1:9", rng=True)
        self.mem = self.m.board.memory
        self.granted: list[tuple[int, int]] = []  # buffers the guest gave the device

    def desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0,
             queue: int = 0) -> None:  # fmt: skip
        self.mem.write(
            DESC + 0x4000 * queue + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt)
        )

    def give(self, addr: int, length: int) -> None:
        self.granted.append((addr, length))

    def run(self, device: str, queue: int = 0, used: int = USED) -> None:
        """Make descriptor 0 available on `queue` and run the guest: it sets the device up
        (its used ring at `used`, + 0x4000 for queue 1) and notifies the queue."""
        self.mem.write_int(AVAIL + 0x4000 * queue + 4, 2, 0)
        self.mem.write_int(AVAIL + 0x4000 * queue + 2, 2, 1)
        queues = 2 if device == "net" else 1
        table = driver_writes(SLOTS[device], queues, queue, used) + [(-1, 0)]
        self.m.write_phys(TABLE, b"".join(struct.pack("<qQ", a, v) for a, v in table))
        self.m.write_phys(CODE, mmio_program())
        self.before = (self._files(), self._outside())
        self.m.hart.reset(pc=CODE)
        self.m.hart.x[10], self.m.hart.x[12], self.m.hart.x[13] = TABLE, *POWER_OFF
        result = self.m.run(max_instructions=100_000)
        assert result.reason == "poweroff", result

    def _files(self) -> list[tuple[bytes, int]]:
        return [(p.read_bytes(), p.stat().st_mtime_ns) for p in (self.disk, self.neighbour)]

    def _outside(self) -> np.ndarray:
        """RAM but the used rings and the buffers granted."""
        ram = self.m.ram.copy()
        for q in range(2):
            ram[USED + 0x4000 * q - RAM :][:0x1000] = 0
        for addr, length in self.granted:
            off = max(addr - RAM, 0)
            ram[off : max(min(addr + length - RAM, RAM_SIZE), off)] = 0
        return ram

    def transport(self, device: str) -> V.VirtioMmio:
        return self.m.board.virtio[(SLOTS[device] - 0x1000_1000) // 0x1000]

    def status_byte(self, addr: int) -> int:
        return self.mem.read(addr, 1)[0]

    def files_unchanged(self) -> bool:
        return self._files() == self.before[0]

    def ram_outside_unchanged(self) -> bool:
        return np.array_equal(self._outside(), self.before[1])


def blk_request(g: Guest, kind: int, sector: int, data: tuple[int, int] | None,
                write: bool, status: int = BUF + 0x3000) -> None:  # fmt: skip
    """header, [data], status as a chain; the guest gives the device the data buffer (if
    in RAM) and the status byte."""
    g.mem.write(BUF, struct.pack("<IIQ", kind, 0, sector))
    g.mem.write(status, b"\xee")
    g.desc(0, BUF, 16, V.DESC_F_NEXT, 1)
    if data is not None:
        g.desc(1, *data, V.DESC_F_NEXT | (0 if write else V.DESC_F_WRITE), 2)
        g.give(*data)
    else:
        g.desc(0, BUF, 16, V.DESC_F_NEXT, 2)
    g.desc(2, status, 1, V.DESC_F_WRITE)
    g.give(status, 1)


T_IN, T_OUT, T_GET_ID = 0, 1, 8
WRAP = (1 << 64) - 256


@pytest.mark.parametrize(
    "name,kind,sector,data,read_only",
    [
        ("read into a buffer past RAM", T_IN, 0, (RAM_END - 256, 512), False),
        ("read into a buffer wrapping 2^64", T_IN, 0, (WRAP, 512), False),
        ("read of a huge length", T_IN, 0, (BUF + 0x100, 0xFFFF_FFFF), False),
        ("write from a buffer past RAM", T_OUT, 0, (RAM_END - 256, 512), False),
        ("write from a buffer wrapping 2^64", T_OUT, 0, (WRAP, 512), False),
        ("write of a huge length", T_OUT, 0, (BUF + 0x100, 0xFFFF_FFFF), False),
        ("read past the last sector", T_IN, DISK_SECTORS, (BUF + 0x100, 512), False),
        ("read across the end", T_IN, DISK_SECTORS - 1, (BUF + 0x100, 1024), False),
        ("write past the last sector", T_OUT, DISK_SECTORS, (BUF + 0x100, 512), False),
        ("write across the end", T_OUT, DISK_SECTORS - 1, (BUF + 0x100, 1024), False),
        ("write at sector 2^64 - 1", T_OUT, (1 << 64) - 1, (BUF + 0x100, 512), False),
        ("write at a sector whose offset wraps 2^64", T_OUT, 1 << 55, (BUF + 0x100, 512), False),
        ("write to a read-only disk", T_OUT, 0, (BUF + 0x100, 512), True),
        ("write of the last sector, read-only", T_OUT, DISK_SECTORS - 1, (BUF + 0x100, 512),
         True),
        ("id into a buffer past RAM", T_GET_ID, 0, (RAM_END - 8, 20), False),
    ],
)  # fmt: skip
def test_blk_guests_reach_nothing_they_were_not_given(
    tmp_path: Path, name: str, kind: int, sector: int, data: tuple[int, int], read_only: bool
) -> None:
    g = Guest(tmp_path, read_only)
    g.mem.write(BUF + 0x100, b"W" * 1024)
    blk_request(g, kind, sector, data, write=kind == T_OUT)
    g.run("blk")
    t = g.transport("blk")
    assert t.broken or g.status_byte(BUF + 0x3000) == S_IOERR, name
    assert g.files_unchanged(), f"{name}: a file changed"
    assert g.ram_outside_unchanged(), f"{name}: RAM outside the buffers changed"


def test_blk_edges_that_are_the_guests_work(tmp_path: Path) -> None:
    """The last sector is read into the last bytes of RAM and written back from there; the
    status byte may be the very last byte of RAM."""
    g = Guest(tmp_path)
    last = RAM_END - 1
    blk_request(g, T_IN, DISK_SECTORS - 1, (RAM_END - 1 - SECTOR, SECTOR), False, status=last)
    g.run("blk")
    assert g.status_byte(last) == S_OK
    assert g.mem.read(RAM_END - 1 - SECTOR, SECTOR) == bytes([DISK_SECTORS]) * SECTOR
    assert g.ram_outside_unchanged()

    g = Guest(tmp_path)
    g.mem.write(RAM_END - SECTOR - 1, b"L" * SECTOR)
    blk_request(g, T_OUT, DISK_SECTORS - 1, (RAM_END - 1 - SECTOR, SECTOR), True, status=last)
    g.run("blk")
    assert g.status_byte(last) == S_OK
    assert g.disk.read_bytes()[-SECTOR:] == b"L" * SECTOR
    assert g.neighbour.read_bytes() == b"not the guest's"


@pytest.mark.parametrize(
    "name,addr,length",
    [
        ("past RAM", RAM_END - 8, 64),
        ("wrapping 2^64", WRAP, 512),
        ("below RAM", RAM - 16, 64),
        ("huge", BUF, 0xFFFF_FFFF),
    ],
)
def test_rng_and_net_guests_reach_nothing_they_were_not_given(
    tmp_path: Path, name: str, addr: int, length: int
) -> None:
    # rng: a buffer to fill; net: a frame to send from it, and a buffer to receive into
    for device, queue, flags in (("rng", 0, V.DESC_F_WRITE), ("net", 1, 0), ("net", 0, 2)):
        g = Guest(tmp_path)
        g.desc(0, addr, length, flags, queue=queue)
        g.run(device, queue)
        if device == "net" and queue == 0:
            g.m.board.net.pending.append(b"\xab" * 1500)  # a frame arrives for the guest
            g.m.board.poll()
        assert g.transport(device).broken, f"{device} queue {queue}: {name} was accepted"
        assert g.ram_outside_unchanged(), f"{device} queue {queue}: {name}: RAM changed"
        assert g.files_unchanged()


@pytest.mark.parametrize("used", [RAM_END - 2, (1 << 64) - 8], ids=["past RAM", "wrapping"])
def test_a_used_ring_out_of_ram_breaks_the_device_and_is_not_written(
    tmp_path: Path, used: int
) -> None:
    """The request is served into the guest's buffers; returning it cannot be done."""
    g = Guest(tmp_path)
    blk_request(g, T_IN, 0, (BUF + 0x100, 512), False)
    g.run("blk", used=used)
    assert g.transport("blk").broken
    assert g.ram_outside_unchanged() and g.files_unchanged()
