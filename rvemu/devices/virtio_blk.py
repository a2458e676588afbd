"""virtio-blk backed by a raw image file (virtio spec 1.2, 5.2; QEMU hw/block/virtio-blk.c).

Writes go straight to the file with pwrite, so the host sees them once the guest's request
completes; FLUSH also fsyncs. A request outside the disk or with a length that is not a
whole number of sectors completes with VIRTIO_BLK_S_IOERR, as virtio_blk_sect_range_ok
makes QEMU do.
"""

from __future__ import annotations

import os
import struct

from .virtio_mmio import Chain, VirtioDevice, VirtioError, VirtioMmio

DEVICE_ID = 2
SECTOR = 512
QUEUE_SIZE = 256  # QEMU's default queue-size for virtio-blk
SEG_MAX = QUEUE_SIZE - 2

F_SEG_MAX, F_RO, F_BLK_SIZE, F_FLUSH = 1 << 2, 1 << 5, 1 << 6, 1 << 9

T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
ID_BYTES = 20
MAX_REQUEST = 1 << 24  # bytes per request; larger requests are refused with IOERR


class DiskError(ValueError):
    """The disk image cannot be used (message is one line for the user)."""


def parse_disk(spec: str, slots: int = 8) -> tuple[str, bool, str, int | None]:
    """'FILE[,ro][,serial=ID][,slot=N]' -> (path, read_only, serial, slot or None).

    `slot=N` puts the disk in virtio-mmio slot N (0x10001000 + N * 0x1000, IRQ 1 + N);
    QEMU's spelling `bus=virtio-mmio-bus.N` means the same (hw/riscv/virt.c creates the
    transports, and so their buses .0 to .7, from the lowest address up)."""
    path, *opts = spec.split(",")
    read_only, serial, slot = False, "", None
    for opt in opts:
        if opt in ("ro", "readonly", "readonly=on"):
            read_only = True
        elif opt.startswith("serial="):
            serial = opt[len("serial=") :]
        elif opt.startswith(("slot=", "bus=virtio-mmio-bus.")):
            number = opt.removeprefix("slot=").removeprefix("bus=virtio-mmio-bus.")
            if number not in [str(n) for n in range(slots)]:
                raise DiskError(f"--disk {spec}: the slot is a number from 0 to {slots - 1}")
            slot = int(number)
        else:
            raise DiskError(
                f"--disk {spec}: unknown option {opt!r} (use FILE[,ro][,serial=ID][,slot=N])"
            )
    return path, read_only, serial, slot


class VirtioBlk(VirtioDevice):
    device_id = DEVICE_ID
    queue_sizes = (QUEUE_SIZE,)
    HOST_SIDE = ("fd",)  # not in a snapshot: a restored disk opens its file again

    def __init__(self, path: str, read_only: bool = False, serial: str = "") -> None:
        self.fd = -1
        try:
            self.fd = os.open(path, os.O_RDONLY if read_only else os.O_RDWR)
        except OSError as e:
            raise DiskError(f"{path}: cannot open disk image: {e.strerror}") from None
        self.path = path
        self.read_only = read_only
        self.serial = serial.encode()[:ID_BYTES]
        self.capacity = os.fstat(self.fd).st_size // SECTOR
        self.features = F_SEG_MAX | F_BLK_SIZE | F_FLUSH | (F_RO if read_only else 0)

    def config(self) -> bytes:
        # struct virtio_blk_config: capacity, size_max, seg_max, geometry, blk_size
        return struct.pack("<QIIHBBI", self.capacity, 0, SEG_MAX, 0, 0, 0, SECTOR)

    def queue_notify(self, transport: VirtioMmio, index: int) -> None:
        q, mem = transport.queues[index], transport.mem
        while True:
            chain = q.pop(mem)
            if chain is None:
                break
            written = self._request(transport, chain)
            q.push(mem, chain, written)
        transport.used(index)

    def _request(self, transport: VirtioMmio, chain: Chain) -> int:
        mem = transport.mem
        if chain.readable_len < 16 or chain.writable_len < 1:
            raise VirtioError("virtio-blk request without header or status byte")
        kind, _, sector = struct.unpack("<IIQ", chain.read(mem, limit=16))
        data_in = chain.writable_len - 1  # bytes the guest lets us write before the status
        status, written = S_OK, 0
        if kind == T_IN:
            data = self._pread(sector, data_in)
            if data is None:
                status = S_IOERR
            else:
                written = chain.write(mem, data)
        elif kind == T_OUT:
            length = chain.readable_len - 16
            if self.read_only or not self._in_range(sector, length):
                status = S_IOERR
            else:
                try:
                    os.pwrite(self.fd, chain.read(mem, skip=16), sector * SECTOR)
                except OSError:
                    status = S_IOERR
        elif kind == T_FLUSH:
            try:
                if not self.read_only:
                    os.fsync(self.fd)
            except OSError:
                status = S_IOERR
        elif kind == T_GET_ID:
            written = chain.write(mem, self.serial.ljust(ID_BYTES, b"\0")[: min(data_in, ID_BYTES)])
        else:
            status = S_UNSUPP
        chain.write(mem, bytes([status]), skip=data_in)
        return written + 1

    def _in_range(self, sector: int, length: int) -> bool:
        return (
            length % SECTOR == 0
            and length <= MAX_REQUEST
            and sector <= self.capacity
            and sector + length // SECTOR <= self.capacity
        )

    def _pread(self, sector: int, length: int) -> bytes | None:
        if not self._in_range(sector, length):
            return None
        try:
            data = os.pread(self.fd, length, sector * SECTOR)
        except OSError:
            return None
        return data.ljust(length, b"\0")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()
