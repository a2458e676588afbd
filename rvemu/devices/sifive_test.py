"""sifive_test: the finisher QEMU virt uses for power-off, reset and exit codes."""

from __future__ import annotations

# hw/misc/sifive_test.c
FINISHER_FAIL = 0x3333
FINISHER_PASS = 0x5555
FINISHER_RESET = 0x7777


class SifiveTest:
    access_sizes = (2, 4)  # QEMU sifive_test_ops .valid: 2 to 4 bytes
    size = 0x1000

    def __init__(self) -> None:
        self.exit_code: int | None = None  # set when the guest powers off
        self.reset_requested = False

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset != 0:
            return
        status, code = value & 0xFFFF, (value >> 16) & 0xFFFF
        if status == FINISHER_PASS:
            self.exit_code = 0
        elif status == FINISHER_FAIL:
            self.exit_code = code if code else 1
        elif status == FINISHER_RESET:
            self.reset_requested = True
        # QEMU ignores any other value.
