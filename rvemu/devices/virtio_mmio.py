"""virtio-mmio version 2 (virtio 1.x, "modern") transport and split virtqueues.

Register layout: virtio spec 1.2, 4.2.2. Where the spec leaves a choice this follows QEMU's
hw/virtio/virtio-mmio.c (non-legacy) and hw/virtio/virtio.c: a malformed queue makes the
device "broken" (status DEVICE_NEEDS_RESET plus a configuration-change interrupt, as
virtio_error() does) and it stops processing until the driver resets it.
"""

from __future__ import annotations

from .dma import GuestMemory

MAGIC = 0x74726976  # "virt"
VENDOR_QEMU = 0x554D4551  # "QEMU", as QEMU reports

# register offsets
R_MAGIC, R_VERSION, R_DEVICE_ID, R_VENDOR_ID = 0x000, 0x004, 0x008, 0x00C
R_DEVICE_FEATURES, R_DEVICE_FEATURES_SEL = 0x010, 0x014
R_DRIVER_FEATURES, R_DRIVER_FEATURES_SEL = 0x020, 0x024
R_QUEUE_SEL, R_QUEUE_NUM_MAX, R_QUEUE_NUM, R_QUEUE_READY = 0x030, 0x034, 0x038, 0x044
R_QUEUE_NOTIFY, R_INTERRUPT_STATUS, R_INTERRUPT_ACK, R_STATUS = 0x050, 0x060, 0x064, 0x070
R_QUEUE_DESC_LOW, R_QUEUE_DESC_HIGH = 0x080, 0x084
R_QUEUE_DRIVER_LOW, R_QUEUE_DRIVER_HIGH = 0x090, 0x094
R_QUEUE_DEVICE_LOW, R_QUEUE_DEVICE_HIGH = 0x0A0, 0x0A4
R_SHM_SEL, R_SHM_LEN_LOW, R_SHM_LEN_HIGH = 0x0AC, 0x0B0, 0x0B4
R_SHM_BASE_LOW, R_SHM_BASE_HIGH = 0x0B8, 0x0BC
R_CONFIG_GENERATION = 0x0FC
R_CONFIG = 0x100

# device status bits
S_ACKNOWLEDGE, S_DRIVER, S_DRIVER_OK, S_FEATURES_OK = 1, 2, 4, 8
S_NEEDS_RESET, S_FAILED = 0x40, 0x80

INT_USED_BUFFER, INT_CONFIG_CHANGE = 1, 2

F_INDIRECT_DESC = 1 << 28
F_VERSION_1 = 1 << 32

DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT = 1, 2, 4
AVAIL_F_NO_INTERRUPT = 1
MAX_INDIRECT = 1024  # VIRTQUEUE_MAX_SIZE in QEMU's include/hw/virtio/virtio.h


class VirtioError(Exception):
    """The driver broke the virtqueue rules; the device must be reset."""


class Chain:
    """One descriptor chain: the buffers the device reads, then those it writes."""

    def __init__(self, head: int) -> None:
        self.head = head
        self.readable: list[tuple[int, int]] = []
        self.writable: list[tuple[int, int]] = []

    @property
    def readable_len(self) -> int:
        return sum(n for _, n in self.readable)

    @property
    def writable_len(self) -> int:
        return sum(n for _, n in self.writable)

    def read(self, mem: GuestMemory, skip: int = 0, limit: int | None = None) -> bytes:
        """Up to `limit` bytes of the readable buffers after the first `skip`."""
        out = bytearray()
        for addr, n in self.readable:
            if skip >= n:
                skip -= n
                continue
            take = n - skip
            if limit is not None:
                take = min(take, limit - len(out))
            out += mem.read(addr + skip, take) or b""
            skip = 0
            if limit is not None and len(out) >= limit:
                break
        return bytes(out)

    def write(self, mem: GuestMemory, data: bytes, skip: int = 0) -> int:
        """Scatter `data` over the writable buffers after the first `skip` bytes."""
        done = 0
        for addr, n in self.writable:
            if done >= len(data):
                break
            if skip >= n:
                skip -= n
                continue
            take = min(n - skip, len(data) - done)
            mem.write(addr + skip, data[done : done + take])
            done += take
            skip = 0
        return done


class Virtqueue:
    """A split virtqueue (virtio 1.2, 2.7): descriptor table, driver (available) ring and
    device (used) ring, all in guest memory and all read with bounds checks."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.reset()

    def reset(self) -> None:
        self.num = self.max_size
        self.ready = 0
        self.desc = 0
        self.driver = 0
        self.device = 0
        self.last_avail = 0
        self.used_idx = 0

    def _u16(self, mem: GuestMemory, addr: int) -> int:
        value = mem.read_int(addr, 2)
        if value is None:
            raise VirtioError(f"ring address {addr:#x} outside RAM")
        return value

    def _check(self) -> None:
        if not self.ready:
            raise VirtioError("queue not ready")
        if self.num == 0 or self.num > self.max_size or self.num & (self.num - 1):
            raise VirtioError(f"bad queue size {self.num}")

    def has_available(self, mem: GuestMemory) -> bool:
        self._check()
        return self._u16(mem, self.driver + 2) != self.last_avail

    def pop(self, mem: GuestMemory) -> Chain | None:
        """The next chain the driver made available, or None."""
        self._check()
        avail_idx = self._u16(mem, self.driver + 2)
        if avail_idx == self.last_avail:
            return None
        if (avail_idx - self.last_avail) & 0xFFFF > self.num:
            raise VirtioError("available index moved by more than the queue size")
        head = self._u16(mem, self.driver + 4 + 2 * (self.last_avail % self.num))
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        return self._walk(mem, head)

    def _walk(self, mem: GuestMemory, head: int) -> Chain:
        chain = Chain(head)
        table, size, index = self.desc, self.num, head
        indirect = False
        seen = 0
        while True:
            if index >= size:
                raise VirtioError(f"descriptor index {index} beyond the table ({size})")
            raw = mem.read(table + 16 * index, 16)
            if raw is None:
                raise VirtioError("descriptor table outside RAM")
            addr = int.from_bytes(raw[0:8], "little")
            length = int.from_bytes(raw[8:12], "little")
            flags = int.from_bytes(raw[12:14], "little")
            nxt = int.from_bytes(raw[14:16], "little")
            seen += 1
            if seen > size:
                raise VirtioError("descriptor chain loops")
            if flags & DESC_F_INDIRECT:
                if indirect or flags & DESC_F_NEXT:
                    raise VirtioError("nested or chained indirect descriptor")
                if length == 0 or length % 16 or length > 16 * MAX_INDIRECT:
                    raise VirtioError("bad indirect descriptor table size")
                if mem.offset(addr, length) < 0:
                    raise VirtioError("bad indirect descriptor table")
                table, size, index, indirect, seen = addr, length // 16, 0, True, 0
                continue
            if mem.offset(addr, length) < 0:
                raise VirtioError(f"buffer {addr:#x}+{length:#x} outside RAM")
            if flags & DESC_F_WRITE:
                chain.writable.append((addr, length))
            elif chain.writable:
                raise VirtioError("readable descriptor after a writable one")
            else:
                chain.readable.append((addr, length))
            if not flags & DESC_F_NEXT:
                return chain
            index = nxt

    def push(self, mem: GuestMemory, chain: Chain, written: int) -> None:
        """Return a chain to the driver with `written` bytes written into it."""
        slot = self.device + 4 + 8 * (self.used_idx % self.num)
        if not (mem.write_int(slot, 4, chain.head) and mem.write_int(slot + 4, 4, written)):
            raise VirtioError("used ring outside RAM")
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        if not mem.write_int(self.device + 2, 2, self.used_idx):
            raise VirtioError("used ring outside RAM")

    def wants_interrupt(self, mem: GuestMemory) -> bool:
        flags = mem.read_int(self.driver, 2)
        return flags is None or not flags & AVAIL_F_NO_INTERRUPT


class VirtioDevice:
    """What a virtio device provides to the transport."""

    device_id = 0
    features = 0  # device-specific feature bits; the transport adds VERSION_1 and INDIRECT
    queue_sizes: tuple[int, ...] = ()

    def config(self) -> bytes:
        return b""

    def config_write(self, offset: int, size: int, value: int) -> None:
        pass

    def reset(self) -> None:
        pass

    def queue_notify(self, transport: VirtioMmio, index: int) -> None:
        pass

    def poll(self, transport: VirtioMmio) -> None:
        """Host-side input (received frames)."""

    def fileno(self) -> int | None:
        """A file descriptor to wait on for host-side input, if any."""
        return None

    def close(self) -> None:
        pass


class VirtioMmio:
    size = 0x1000

    def __init__(self, mem: GuestMemory, device: VirtioDevice | None = None) -> None:
        self.mem = mem
        self.device = device
        sizes = device.queue_sizes if device else ()
        self.queues = [Virtqueue(n) for n in sizes]
        self.device_features = device.features | F_VERSION_1 | F_INDIRECT_DESC if device else 0
        self.config_generation = 0
        self.irq_updates = 0  # virtio_mmio_update_irq calls: each one signals the line
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.driver_features = 0
        self.queue_sel = 0
        self.interrupt_status = 0
        self.irq_updates += 1  # virtio_reset: isr = 0, virtio_notify_vector
        self.broken = False
        for q in self.queues:
            q.reset()
        if self.device:
            self.device.reset()

    def interrupt_pending(self) -> bool:
        return self.interrupt_status != 0

    @property
    def driver_ok(self) -> bool:
        return bool(self.status & S_DRIVER_OK) and not self.broken

    def fail(self, why: str) -> None:
        """virtio_error(): the driver must reset the device before using it again."""
        self.broken = True
        self.broken_reason = why
        self.status |= S_NEEDS_RESET
        self._interrupt(INT_CONFIG_CHANGE)

    def used(self, index: int) -> None:
        """The device returned buffers on queue `index`: interrupt unless suppressed."""
        if self.queues[index].wants_interrupt(self.mem):
            self._interrupt(INT_USED_BUFFER)

    def config_changed(self) -> None:
        self.config_generation = (self.config_generation + 1) & 0xFFFF_FFFF
        if self.status & S_DRIVER_OK:
            self._interrupt(INT_CONFIG_CHANGE)

    def _interrupt(self, cause: int) -> None:
        """virtio_notify/virtio_notify_config: set ISR and signal the line, which QEMU's
        PLIC takes as a new request even while an earlier one is unacknowledged."""
        self.interrupt_status |= cause
        self.irq_updates += 1

    def _queue(self) -> Virtqueue | None:
        return self.queues[self.queue_sel] if self.queue_sel < len(self.queues) else None

    # --- the bus side
    def read(self, offset: int, size: int) -> int:
        if offset >= R_CONFIG:
            if self.device is None:
                return 0
            data = self.device.config()[offset - R_CONFIG : offset - R_CONFIG + size]
            return int.from_bytes(data, "little")
        if size != 4 or offset & 3:
            return 0  # virtio-mmio.c: registers are 32-bit
        if offset == R_MAGIC:
            return MAGIC
        if offset == R_VERSION:
            return 2
        if offset == R_DEVICE_ID:
            return self.device.device_id if self.device else 0
        if offset == R_VENDOR_ID:
            return VENDOR_QEMU
        if self.device is None:
            return 0
        q = self._queue()
        if offset == R_DEVICE_FEATURES:
            if self.device_features_sel > 1:
                return 0
            return (self.device_features >> (32 * self.device_features_sel)) & 0xFFFF_FFFF
        if offset == R_QUEUE_NUM_MAX:
            return q.max_size if q else 0
        if offset == R_QUEUE_READY:
            return q.ready if q else 0
        if offset == R_INTERRUPT_STATUS:
            return self.interrupt_status
        if offset == R_STATUS:
            return self.status
        if offset == R_CONFIG_GENERATION:
            return self.config_generation
        if offset == R_SHM_LEN_LOW or offset == R_SHM_LEN_HIGH:
            return 0xFFFF_FFFF  # no shared memory regions: length -1
        if q is not None:
            for reg, attr in _QUEUE_ADDRESS_REGS.items():
                if offset == reg:
                    return getattr(q, attr) & 0xFFFF_FFFF
                if offset == reg + 4:
                    return getattr(q, attr) >> 32
            if offset == R_QUEUE_NUM:
                return q.num
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if self.device is None:
            return
        if offset >= R_CONFIG:
            self.device.config_write(offset - R_CONFIG, size, value)
            return
        if size != 4 or offset & 3:
            return
        q = self._queue()
        if offset == R_DEVICE_FEATURES_SEL:
            self.device_features_sel = value
        elif offset == R_DRIVER_FEATURES_SEL:
            self.driver_features_sel = value
        elif offset == R_DRIVER_FEATURES:
            if self.driver_features_sel <= 1 and not self.status & S_FEATURES_OK:
                shift = 32 * self.driver_features_sel
                self.driver_features = (self.driver_features & ~(0xFFFF_FFFF << shift)) | (
                    value << shift
                )
        elif offset == R_QUEUE_SEL:
            self.queue_sel = value
        elif offset == R_QUEUE_NOTIFY:
            if value < len(self.queues) and self.driver_ok:
                try:
                    self.device.queue_notify(self, value)
                except VirtioError as e:
                    self.fail(str(e))
        elif offset == R_INTERRUPT_ACK:
            self.interrupt_status &= ~value
            self.irq_updates += 1  # virtio_update_irq
        elif offset == R_STATUS:
            self._write_status(value & 0xFF)
        elif q is not None:
            if offset == R_QUEUE_NUM:
                q.num = value
            elif offset == R_QUEUE_READY:
                q.ready = value & 1
            else:
                for reg, attr in _QUEUE_ADDRESS_REGS.items():
                    if offset == reg:
                        setattr(q, attr, (getattr(q, attr) & ~0xFFFF_FFFF) | value)
                    elif offset == reg + 4:
                        setattr(q, attr, (getattr(q, attr) & 0xFFFF_FFFF) | (value << 32))

    def _write_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        if value & S_FEATURES_OK and not self.status & S_FEATURES_OK:
            # QEMU 7.2 (force-legacy=false) never refuses FEATURES_OK here: virtio_mmio_write
            # calls virtio_set_features, whose virtio_set_features_nocheck keeps only the
            # offered bits (its error return is ignored), and virtio_set_status validates
            # features only when VERSION_1 was negotiated, with nothing to refuse for
            # blk, net or rng. xv6 writes bits 0-31 only, never VERSION_1, and needs this.
            self.driver_features &= self.device_features
        self.status = value | (self.status & S_NEEDS_RESET)

    # --- the host side
    def poll(self) -> None:
        if self.device is not None and self.driver_ok:
            try:
                self.device.poll(self)
            except VirtioError as e:
                self.fail(str(e))


_QUEUE_ADDRESS_REGS = {
    R_QUEUE_DESC_LOW: "desc",
    R_QUEUE_DRIVER_LOW: "driver",
    R_QUEUE_DEVICE_LOW: "device",
}
