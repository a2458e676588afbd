"""sifive_test: power-off, fail codes and reset, at register level and from a guest."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import build, qemu, require_qemu  # noqa: E402

from rvemu import Machine  # noqa: E402
from rvemu.devices.sifive_test import SifiveTest  # noqa: E402


def test_registers():
    t = SifiveTest()
    assert t.read(0, 4) == 0 and t.read(8, 4) == 0  # reads as zero
    t.write(0, 4, 0x1234)  # unknown status: ignored, as QEMU does
    t.write(4, 4, 0x5555)  # other offsets: ignored
    assert t.exit_code is None and not t.reset_requested
    t.write(0, 4, (7 << 16) | 0x3333)
    assert t.exit_code == 7
    t = SifiveTest()
    t.write(0, 4, 0x3333)  # fail without a code still fails
    assert t.exit_code == 1
    t = SifiveTest()
    t.write(0, 4, 0x5555)
    assert t.exit_code == 0
    t = SifiveTest()
    t.write(0, 4, 0x7777)
    assert t.reset_requested and t.exit_code is None


def test_guest_fail_code_and_qemu_exit_status():
    elf = build("exit_code")
    m = Machine()
    m.load(str(elf))
    result = m.run(1_000_000)
    assert (result.reason, result.exit_code) == ("poweroff", 42)
    require_qemu()
    status, out = qemu(elf)
    assert (status, out) == (42, m.console)
