"""Device access to guest RAM (virtio DMA), bounds-checked, keeping the hart's caches true.

Every access is checked against RAM first: an address a guest gives a device can be
anything, and the host must never read or write outside guest RAM.
"""

from __future__ import annotations

import numpy as np

from ..cpu.layout import PAGE_CODE, PAGE_REGION

WHOLE_FLUSH = 1 << 17  # beyond this many bytes, dropping every decoded instruction is cheaper


class GuestMemory:
    def __init__(self, hart, ram: np.ndarray, ram_base: int) -> None:
        self.hart = hart
        self.ram = ram
        self.base = ram_base
        self.size = len(ram)

    def offset(self, paddr: int, length: int) -> int:
        """RAM offset of [paddr, paddr+length), or -1 if any of it is outside RAM."""
        off = paddr - self.base
        if off < 0 or length < 0 or off + length > self.size:
            return -1
        return off

    def read(self, paddr: int, length: int) -> bytes | None:
        off = self.offset(paddr, length)
        if off < 0:
            return None
        return self.ram[off : off + length].tobytes()

    def read_int(self, paddr: int, size: int) -> int | None:
        data = self.read(paddr, size)
        return None if data is None else int.from_bytes(data, "little")

    def write(self, paddr: int, data: bytes) -> bool:
        off = self.offset(paddr, len(data))
        if off < 0:
            return False
        if data:
            self.ram[off : off + len(data)] = np.frombuffer(data, dtype=np.uint8)
            self._invalidate(off, len(data))
        return True

    def write_int(self, paddr: int, size: int, value: int) -> bool:
        return self.write(paddr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    def _invalidate(self, off: int, length: int) -> None:
        flags = self.hart.page_flags[off >> 12 : ((off + length - 1) >> 12) + 1]
        if not (flags & PAGE_CODE).any():
            return
        if length > WHOLE_FLUSH or (flags & PAGE_REGION).any():
            self.hart.flush_decoded()
        else:
            self.hart.invalidate_decoded(off, length)
