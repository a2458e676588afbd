"""The virt board's devices: what sits on the bus, and how their interrupts reach the hart.

Addresses and IRQ numbers follow QEMU's hw/riscv/virt.c (virt_memmap[]).
"""

from __future__ import annotations

import sys

from .cpu import state as S
from .devices.bus import Bus
from .devices.sifive_test import SifiveTest
from .devices.uart import Uart16550

VIRT_TEST = 0x0010_0000
VIRT_CLINT = S.CLINT_BASE  # served inside the hart
VIRT_UART0 = 0x1000_0000
VIRT_DRAM = 0x8000_0000


class VirtBoard:
    """Builds the bus for the given options and connects device interrupts to the hart."""

    def __init__(self, hart, ram, ram_base: int, echo: bool = False) -> None:
        self.hart = hart
        self.bus = Bus()
        self.finisher = SifiveTest()
        self.uart = Uart16550(sink=_stdout_write if echo else None)
        self.bus.attach(VIRT_TEST, self.finisher, "sifive_test")
        self.bus.attach(VIRT_UART0, self.uart, "uart0")

    def sync_interrupts(self) -> None:
        """Copy device interrupt lines (through the PLIC) into the hart's MEIP/SEIP."""

    def poll(self) -> None:
        """Let devices with host-side input (console, network) make progress."""

    def wait(self, timeout: float | None) -> bool:
        """Block up to `timeout` seconds for host input; True if a device may now interrupt."""
        return False


def _stdout_write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
