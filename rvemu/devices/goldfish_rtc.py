"""Goldfish RTC: wall-clock nanoseconds and one alarm (QEMU hw/rtc/goldfish_rtc.c)."""

from __future__ import annotations

import time
from collections.abc import Callable

TIME_LOW, TIME_HIGH = 0x00, 0x04
ALARM_LOW, ALARM_HIGH = 0x08, 0x0C
IRQ_ENABLED, CLEAR_ALARM, ALARM_STATUS, CLEAR_INTERRUPT = 0x10, 0x14, 0x18, 0x1C


class GoldfishRtc:
    """`now_ns` gives the current time in ns since the epoch; the board passes one that
    follows the guest's clock (boot wall time + mtime) so deterministic runs stay so."""

    access_sizes = (4,)  # QEMU goldfish_rtc_ops .valid: 4 bytes only
    size = 0x1000

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.now_ns = now_ns
        self.offset = 0  # set by guest writes of the time
        self.time_high = 0
        self.alarm_low = 0
        self.alarm_high = 0
        self.alarm_next = 0
        self.alarm_running = False
        self.irq_enabled = 0
        self.irq_pending = False

    def time(self) -> int:
        return (self.now_ns() + self.offset) & 0xFFFF_FFFF_FFFF_FFFF

    def interrupt_pending(self) -> bool:
        if self.alarm_running and self.time() >= self.alarm_next:
            self.alarm_running = False
            self.irq_pending = True
        return self.irq_pending and bool(self.irq_enabled)

    def read(self, offset: int, size: int) -> int:
        if offset == TIME_LOW:
            now = self.time()
            self.time_high = now >> 32  # goldfish_rtc_read: reading TIME_LOW latches HIGH
            return now & 0xFFFF_FFFF
        if offset == TIME_HIGH:
            return self.time_high
        if offset == ALARM_LOW:
            return self.alarm_next & 0xFFFF_FFFF
        if offset == ALARM_HIGH:
            return self.alarm_next >> 32
        if offset == IRQ_ENABLED:
            return self.irq_enabled
        if offset == ALARM_STATUS:
            return int(self.alarm_running)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFFFF_FFFF
        if offset == TIME_LOW:
            new = (self.time_high << 32) | value
            self.offset += new - self.time()
        elif offset == TIME_HIGH:
            self.time_high = value
        elif offset == ALARM_LOW:
            # goldfish_rtc_write: writing ALARM_LOW arms the alarm at (HIGH << 32) | LOW
            self.alarm_next = (self.alarm_high << 32) | value
            self.alarm_running = True
            if self.alarm_next <= self.time():
                self.alarm_running = False
                self.irq_pending = True
        elif offset == ALARM_HIGH:
            self.alarm_high = value
        elif offset == IRQ_ENABLED:
            self.irq_enabled = value & 1
        elif offset == CLEAR_ALARM:
            self.alarm_running = False
        elif offset == CLEAR_INTERRUPT:
            self.irq_pending = False
