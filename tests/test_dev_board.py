"""The board as a whole: the bus map QEMU virt has, interrupts routed through the PLIC to
MEIP/SEIP, and a hostile guest's random device accesses never raising on the host."""

from __future__ import annotations

import random

import pytest

from rvemu import Machine
from rvemu.board import UART0_IRQ
from rvemu.cpu import state as S
from rvemu.devices.bus import BusError
from rvemu.devices.plic import CONTEXT_BASE, ENABLE_BASE, ENABLE_STRIDE
from rvemu.devices.virtio_blk import DiskError

PLIC = 0x0C00_0000


def test_bus_map_matches_qemu_virt(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    m = Machine(disk=str(disk), rng=True)
    ranges = {name: (base, end) for base, end, name in m.bus.ranges()}
    assert ranges["mrom"] == (0x1000, 0x10000)
    assert ranges["sifive_test"] == (0x100000, 0x101000)
    assert ranges["rtc"] == (0x101000, 0x102000)
    assert ranges["plic"] == (0xC000000, 0xC600000)
    assert ranges["uart0"] == (0x10000000, 0x10000100)
    for slot in range(8):
        assert ranges[f"virtio{slot}"] == (0x10001000 + slot * 0x1000, 0x10002000 + slot * 0x1000)
    # devices fill slots from the top, in command-line order, as on QEMU
    assert m.bus.read(0x10008008, 4) == 2 and m.bus.read(0x10007008, 4) == 4
    assert m.bus.read(0x10001008, 4) == 0
    with pytest.raises(BusError):
        m.bus.attach(0x10000080, m.uart, "overlap")


@pytest.mark.parametrize(
    "option, slot", [("slot=0", 0), ("bus=virtio-mmio-bus.0", 0), ("slot=7", 7), ("slot=3", 3)]
)
def test_disk_goes_to_the_slot_asked_for_and_the_others_fill_from_the_top(tmp_path, option, slot):
    """xv6 looks for its disk at 0x10001000 (IRQ 1), where QEMU's bus=virtio-mmio-bus.0
    puts it; devices without a slot still fill the free slots from the last one down."""
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    m = Machine(disk=f"{disk},{option}", rng=True)
    ids = [m.bus.read(0x10001008 + n * 0x1000, 4) for n in range(8)]
    rng_slot = 6 if slot == 7 else 7
    assert ids == [2 if n == slot else 4 if n == rng_slot else 0 for n in range(8)]
    assert (1 + slot, m.board.virtio[slot]) in m.board.irq_sources
    assert m.board.virtio[slot].device is m.board.disk


@pytest.mark.parametrize("option", ["slot=8", "slot=-1", "slot=x", "bus=virtio-mmio-bus.9"])
def test_a_disk_slot_that_does_not_exist_is_a_one_line_error(tmp_path, option):
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    with pytest.raises(DiskError, match="slot is a number from 0 to 7"):
        Machine(disk=f"{disk},{option}")


def test_uart_interrupt_reaches_meip_and_seip_through_the_plic():
    m = Machine(memory="1M")
    st = m.hart.st
    m.bus.write(PLIC + 4 * UART0_IRQ, 4, 1)
    m.bus.write(0x10000001, 1, 0x01)  # UART: receive interrupts
    m.uart.feed(b"k")
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == 0  # not enabled in any context
    m.bus.write(PLIC + ENABLE_BASE + ENABLE_STRIDE, 4, 1 << UART0_IRQ)  # S context
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == S.MIP_SEIP
    m.bus.write(PLIC + ENABLE_BASE, 4, 1 << UART0_IRQ)  # and M
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == S.MIP_SEIP | S.MIP_MEIP
    assert m.bus.read(PLIC + CONTEXT_BASE + 4, 4) == UART0_IRQ  # M claims it
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == 0
    m.bus.read(0x10000000, 1)  # drain the byte: the line drops
    m.bus.write(PLIC + CONTEXT_BASE + 4, 4, UART0_IRQ)
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == 0


def test_uart_line_left_high_interrupts_once_per_signal_as_xv6_needs():
    """xv6's uartintr reads LSR and RBR but never IIR, so THR-empty stays pending in the
    UART and its line stays high. On QEMU the PLIC pends it again only when serial.c
    signals the line again (serial_update_irq: a THR write, an RBR read, a received
    byte), not at each completion: a completion must not bring the interrupt back."""
    m = Machine(memory="1M")
    st, claim = m.hart.st, PLIC + CONTEXT_BASE + 0x1000 + 4  # S context's claim

    def sync() -> int:
        m.board.sync_interrupts()
        return int(st[S.EXT_IRQ])

    m.bus.write(PLIC + 4 * UART0_IRQ, 4, 1)
    m.bus.write(PLIC + ENABLE_BASE + ENABLE_STRIDE, 4, 1 << UART0_IRQ)
    m.bus.write(0x10000001, 1, 0x03)  # IER: receive and THR-empty interrupts
    assert sync() == S.MIP_SEIP
    assert m.bus.read(claim, 4) == UART0_IRQ
    assert m.bus.read(0x10000005, 1) & 0x21 == 0x20  # LSR: THR empty, no data
    m.bus.write(claim, 4, UART0_IRQ)
    assert m.uart.interrupt_pending() and sync() == 0  # high, but not pending again
    for _ in range(3):
        m.bus.read(0x10000005, 1)  # polling LSR signals nothing
        assert sync() == 0
    m.bus.write(0x10000000, 1, ord("x"))  # a THR write signals the line again
    assert sync() == S.MIP_SEIP
    assert m.bus.read(claim, 4) == UART0_IRQ
    m.bus.write(claim, 4, UART0_IRQ)
    assert sync() == 0
    m.uart.feed(b"k")  # a received byte signals it too
    assert sync() == S.MIP_SEIP
    assert m.bus.read(claim, 4) == UART0_IRQ
    assert m.bus.read(0x10000000, 1) == ord("k")  # the RBR read signals (THRI still on)
    m.bus.write(claim, 4, UART0_IRQ)
    assert sync() == S.MIP_SEIP  # so one more interrupt follows, as on QEMU
    assert m.bus.read(0x10000002, 1) & 0x0F == 0x02  # reading IIR acknowledges THRI
    assert not m.uart.interrupt_pending()
    assert sync() == 0 and m.bus.read(claim, 4) == 0  # the lowered line cleared it


def test_virtio_used_buffer_during_a_claim_interrupts_again_after_the_completion(tmp_path):
    """virtio_notify signals the line at every used buffer, even while ISR is still set;
    QEMU's PLIC pends the source each time."""
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    m = Machine(memory="1M", disk=f"{disk},slot=0")
    st, claim, t = m.hart.st, PLIC + CONTEXT_BASE + 0x1000 + 4, m.board.virtio[0]
    m.bus.write(PLIC + 4 * 1, 4, 1)
    m.bus.write(PLIC + ENABLE_BASE + ENABLE_STRIDE, 4, 1 << 1)
    t._interrupt(1)
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == S.MIP_SEIP and m.bus.read(claim, 4) == 1
    t._interrupt(1)  # a second request completes before the driver acknowledged the first
    m.board.sync_interrupts()
    m.bus.write(claim, 4, 1)
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == S.MIP_SEIP and m.bus.read(claim, 4) == 1
    m.bus.write(0x10001064, 4, 1)  # InterruptACK: the line drops
    m.bus.write(claim, 4, 1)
    m.board.sync_interrupts()
    assert st[S.EXT_IRQ] == 0


def test_random_device_accesses_never_raise(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(64 * 1024))
    m = Machine(memory="1M", disk=str(disk), rng=True)
    rng = random.Random(1234)
    ranges = [(b, e) for b, e, _ in m.bus.ranges()]
    interesting = [0, 4, 8, 0x14, 0x20, 0x24, 0x30, 0x38, 0x44, 0x50, 0x64, 0x70, 0x80, 0x84,
                   0x90, 0x94, 0xA0, 0xA4, 0x100, 0x104]  # fmt: skip
    for _ in range(30_000):
        base, end = rng.choice(ranges)
        if rng.random() < 0.5 and end - base >= 0x1000:
            addr = base + rng.choice(interesting)
        else:
            addr = rng.randrange(base, end)
        size = rng.choice((1, 2, 4, 8))
        if rng.random() < 0.5:
            value = rng.choice(
                (0, 1, 0xFFFF_FFFF, rng.getrandbits(64), 0x8000_0000 + rng.getrandbits(20))
            )
            m.bus.write(addr, size, value)
        else:
            m.bus.read(addr, size)
        m.board.sync_interrupts()
    m.board.poll()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.img"]
    assert disk.stat().st_size == 64 * 1024


def test_accesses_outside_every_device_fault():
    m = Machine(memory="1M")
    assert m.bus.read(0x0, 4) is None
    assert m.bus.read(0x1000_0100, 1) is None
    assert m.bus.write(0x2000_0000, 4, 1) is False


def test_access_sizes_qemu_rejects_are_bus_errors():
    m = Machine(memory="1M")
    assert m.bus.read(PLIC + 4, 1) is None and m.bus.read(PLIC + 4, 8) is None
    assert m.bus.write(PLIC + 4, 2, 1) is False
    assert m.bus.read(PLIC + 4, 4) == 0
    assert m.bus.read(0x101000, 8) is None and m.bus.read(0x101000, 4) is not None
    assert m.bus.write(0x100000, 1, 0x55) is False and m.bus.write(0x100000, 8, 0x5555) is False
    assert m.finisher.exit_code is None
    assert m.bus.read(0x1000_0005, 1) is not None and m.bus.read(0x1000_0005, 8) is not None


def test_loading_again_resets_the_devices(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))
    from devguest import build

    m = Machine()
    elf = str(build("rtc"))
    m.load(elf)
    assert m.run(10_000_000).exit_code == 0
    first = m.console
    m.load(elf)
    assert m.bus.read(PLIC + 4 * 11, 4) == 0  # priorities back to zero
    result = m.run(10_000_000)
    assert result.reason == "poweroff" and result.exit_code == 0
    assert m.console == first * 2
