"""Time: deterministic by default (mtime from retired instructions), host wall time with
clock="host" (--clock host), and the goldfish RTC's registers."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import build, qemu, require_qemu  # noqa: E402

from rvemu import Machine  # noqa: E402
from rvemu.cpu import state as S  # noqa: E402
from rvemu.devices import goldfish_rtc as R  # noqa: E402

SPIN = bytes.fromhex("6f000000")  # j .


def spinning(clock: str) -> Machine:
    m = Machine(memory="1M", clock=clock)
    m.write_phys(0x8000_0000, SPIN)
    m.hart.pc = 0x8000_0000
    return m


def test_deterministic_time_follows_instructions():
    m = spinning("instructions")
    m.run(1_000_000)
    assert m.board.mtime() == m.hart.instret // S.INSNS_PER_TICK


def test_host_time_follows_the_wall_clock():
    m = spinning("host")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        m.run(100_000)
    elapsed = time.perf_counter() - t0
    ticks = m.board.mtime()
    assert 0.8 * elapsed * 10_000_000 <= ticks <= 1.1 * elapsed * 10_000_000


@pytest.mark.parametrize("clock", ["instructions", "host"])
def test_timer_wakes_wfi(clock):
    m = Machine(clock=clock)
    m.load(str(build("timer")))
    t0 = time.perf_counter()
    result = m.run(10_000_000)
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 0 and m.console == b"timer: fired after at least 100 ms\r\n"
    if clock == "host":
        assert elapsed >= 0.1  # slept until the deadline in host time
    else:
        assert result.instructions < 10_000  # skipped ahead, deterministically
        assert 1_000_000 <= m.board.mtime() < 1_000_000 + 1_000


def test_timer_guest_same_output_on_qemu():
    require_qemu()
    elf = build("timer")
    m = Machine()
    m.load(str(elf))
    m.run(10_000_000)
    assert m.console == qemu(elf)[1]


def test_rtc_registers():
    now = [1_700_000_000_123_456_789]
    rtc = R.GoldfishRtc(lambda: now[0])
    low = rtc.read(R.TIME_LOW, 4)
    now[0] += 1 << 33  # reading HIGH gives the value latched with LOW
    assert (rtc.read(R.TIME_HIGH, 4) << 32 | low) == 1_700_000_000_123_456_789
    rtc.write(R.IRQ_ENABLED, 4, 1)
    rtc.write(R.ALARM_HIGH, 4, (now[0] + 1000) >> 32)
    rtc.write(R.ALARM_LOW, 4, (now[0] + 1000) & 0xFFFF_FFFF)
    assert rtc.read(R.ALARM_STATUS, 4) == 1 and not rtc.interrupt_pending()
    now[0] += 1000
    assert rtc.interrupt_pending() and rtc.read(R.ALARM_STATUS, 4) == 0
    rtc.write(R.CLEAR_INTERRUPT, 4, 1)
    assert not rtc.interrupt_pending()
    rtc.write(R.ALARM_LOW, 4, 0)  # in the past: fires at once
    assert rtc.interrupt_pending()
    rtc.write(R.CLEAR_INTERRUPT, 4, 1)
    rtc.write(R.IRQ_ENABLED, 4, 0)
    rtc.write(R.ALARM_LOW, 4, 0)
    assert not rtc.interrupt_pending()  # masked


def test_rtc_time_can_be_set_by_the_guest():
    now = [5_000_000_000]
    rtc = R.GoldfishRtc(lambda: now[0])
    rtc.write(R.TIME_HIGH, 4, 1)
    rtc.write(R.TIME_LOW, 4, 0)
    now[0] += 7
    assert rtc.read(R.TIME_LOW, 4) == 7 and rtc.read(R.TIME_HIGH, 4) == 1


def test_rtc_in_deterministic_mode_advances_with_guest_time():
    m = spinning("instructions")
    t0 = m.board.rtc.time()
    m.run(1_000_000)
    assert m.board.rtc.time() - t0 == m.board.mtime() * 100


def test_rtc_alarm_registers_edges_and_clearing():
    now = [5_000]
    rtc = R.GoldfishRtc(lambda: now[0])
    rtc.write(R.IRQ_ENABLED, 4, 1)
    rtc.write(R.ALARM_HIGH, 4, 0x12)
    rtc.write(R.ALARM_LOW, 4, 0x3456_7890)
    assert rtc.read(R.ALARM_LOW, 4) == 0x3456_7890 and rtc.read(R.ALARM_HIGH, 4) == 0x12
    assert rtc.read(R.ALARM_STATUS, 4) == 1 and not rtc.interrupt_pending()
    rtc.write(R.CLEAR_ALARM, 4, 0)
    assert rtc.read(R.ALARM_STATUS, 4) == 0
    now[0] = 1 << 40
    assert not rtc.interrupt_pending()  # a cleared alarm never fires
    rtc.write(R.ALARM_HIGH, 4, 0)
    rtc.write(R.ALARM_LOW, 4, 1 << 20)  # now - in the past: fires at once
    assert rtc.read(R.ALARM_STATUS, 4) == 0 and rtc.interrupt_pending()
    rtc.write(R.CLEAR_INTERRUPT, 4, 0)
    assert not rtc.interrupt_pending()
    now[0] = 0x200
    rtc.write(R.ALARM_HIGH, 4, 0)
    rtc.write(R.ALARM_LOW, 4, 0x200)  # exactly now: due at once
    assert rtc.read(R.ALARM_STATUS, 4) == 0 and rtc.interrupt_pending()
    assert rtc.read(0x20, 4) == 0 and rtc.read(0xFFC, 4) == 0  # no registers there


def test_rtc_time_written_twice_keeps_the_last():
    now = [1_000]
    rtc = R.GoldfishRtc(lambda: now[0])
    for value in (50_000, 70_000):
        rtc.write(R.TIME_HIGH, 4, 0)
        rtc.write(R.TIME_LOW, 4, value)
        assert rtc.read(R.TIME_LOW, 4) == value
    now[0] += 10
    assert rtc.read(R.TIME_LOW, 4) == 70_010


def test_rtc_power_on_state():
    rtc = R.GoldfishRtc(lambda: 1 << 40)
    for reg in (R.TIME_HIGH, R.ALARM_LOW, R.ALARM_HIGH, R.IRQ_ENABLED, R.ALARM_STATUS):
        assert rtc.read(reg, 4) == 0, hex(reg)
    rtc.write(R.IRQ_ENABLED, 4, 1)
    assert not rtc.interrupt_pending()  # no alarm armed, nothing pending
    rtc.write(R.ALARM_LOW, 4, 5)  # the high half is 0 until written
    assert rtc.read(R.ALARM_HIGH, 4) == 0 and rtc.interrupt_pending()
