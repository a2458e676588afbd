"""The system bus: maps physical address ranges to devices.

Like Firecracker's device model, each device is attached at a base address,
overlapping ranges are rejected, and a device only ever sees offsets relative
to its own base.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Protocol


class Device(Protocol):
    """What the bus needs from a memory-mapped device."""

    size: int

    def read(self, offset: int, size: int) -> int:
        """Return the value of a `size`-byte read at `offset` (unsigned)."""
        ...

    def write(self, offset: int, size: int, value: int) -> None:
        """Perform a `size`-byte write of `value` (unsigned) at `offset`."""
        ...


class BusError(ValueError):
    """A device could not be attached (overlap, bad range)."""


class Bus:
    def __init__(self) -> None:
        self._bases: list[int] = []
        self._entries: list[tuple[int, int, Device, str]] = []

    def attach(self, base: int, device: Device, name: str = "") -> None:
        end = base + device.size
        if device.size <= 0 or base < 0:
            raise BusError(f"bad range for {name or device!r}: {base:#x}+{device.size:#x}")
        for b, e, _, other in self._entries:
            if base < e and b < end:
                raise BusError(f"{name} at {base:#x}-{end:#x} overlaps {other} at {b:#x}-{e:#x}")
        i = bisect_right(self._bases, base)
        self._bases.insert(i, base)
        self._entries.insert(i, (base, end, device, name))

    def find(self, addr: int) -> tuple[int, Device] | None:
        """The (base, device) that holds `addr`, or None."""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            base, end, device, _ = self._entries[i]
            if addr < end:
                return base, device
        return None

    def ranges(self) -> list[tuple[int, int, str]]:
        """(base, end, name) of every attached device, sorted by address."""
        return [(b, e, n) for b, e, _, n in self._entries]

    def read(self, addr: int, size: int) -> int | None:
        """Read through the bus; None when no device claims the address (or the device
        does not accept accesses of this size: its `access_sizes`, if it has one)."""
        hit = self.find(addr)
        if hit is None or addr + size > hit[0] + hit[1].size or not _size_ok(hit[1], size):
            return None
        return hit[1].read(addr - hit[0], size) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> bool:
        """Write through the bus; False when no device claims the address (or the size)."""
        hit = self.find(addr)
        if hit is None or addr + size > hit[0] + hit[1].size or not _size_ok(hit[1], size):
            return False
        hit[1].write(addr - hit[0], size, value & ((1 << (8 * size)) - 1))
        return True


def _size_ok(device: Device, size: int) -> bool:
    # like a MemoryRegionOps .valid range in QEMU: other sizes are bus errors (access faults)
    sizes = getattr(device, "access_sizes", None)
    return sizes is None or size in sizes
