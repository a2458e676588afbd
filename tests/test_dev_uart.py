"""NS16550A at register level: the behaviour serial.c gives Linux, OpenSBI and U-Boot."""

from rvemu.devices.uart import (
    IER_DLM,
    IIR_FCR,
    LCR,
    LSR,
    MCR,
    MSR,
    RBR_THR_DLL,
    SCR,
    Uart16550,
)


def test_transmit_reaches_output_and_sink():
    seen = []
    u = Uart16550(sink=seen.append)
    for ch in b"hi\n":
        assert u.read(LSR, 1) & 0x20
        u.write(RBR_THR_DLL, 1, ch)
    assert u.output == b"hi\n" and b"".join(seen) == b"hi\n"


def test_divisor_latch_and_scratch():
    u = Uart16550()
    u.write(LCR, 1, 0x83)
    u.write(RBR_THR_DLL, 1, 0x01)
    u.write(IER_DLM, 1, 0x02)
    assert (u.read(RBR_THR_DLL, 1), u.read(IER_DLM, 1)) == (0x01, 0x02)
    u.write(LCR, 1, 0x03)
    assert u.read(IER_DLM, 1) == 0 and u.output == b""  # DLL write did not transmit
    u.write(SCR, 1, 0x5A)
    assert u.read(SCR, 1) == 0x5A and u.read(LCR, 1) == 0x03


def test_receive_sets_dr_and_interrupts_when_enabled():
    u = Uart16550()
    assert u.read(IIR_FCR, 1) == 0x01
    u.feed(b"ab")
    assert u.read(LSR, 1) & 0x01
    assert not u.interrupt_pending()
    u.write(IER_DLM, 1, 0x01)
    assert u.interrupt_pending() and u.read(IIR_FCR, 1) == 0x04
    assert u.read(RBR_THR_DLL, 1) == ord("a")
    assert u.read(RBR_THR_DLL, 1) == ord("b")
    assert not u.read(LSR, 1) & 0x01 and not u.interrupt_pending()


def test_fifo_trigger_level_and_character_timeout():
    u = Uart16550()
    u.write(IIR_FCR, 1, 0x81)  # FIFO on, trigger at 8
    u.write(IER_DLM, 1, 0x01)
    u.feed(b"abc")
    assert u.read(IIR_FCR, 1) == 0xCC  # below trigger: character timeout
    u.feed(b"defghijklmnopqrstuvwxyz")
    assert u.read(IIR_FCR, 1) == 0xC4
    got = bytearray()
    while u.read(LSR, 1) & 0x01:
        got.append(u.read(RBR_THR_DLL, 1))
    assert bytes(got) == b"abcdefghijklmnopqrstuvwxyz"  # host queue refills the 16-byte FIFO
    u.feed(b"xyz")
    u.write(IIR_FCR, 1, 0x83)  # clear the receive FIFO
    assert not u.read(LSR, 1) & 0x01


def test_thr_empty_interrupt_raised_on_enable_and_cleared_by_reading_iir():
    u = Uart16550()
    u.write(IER_DLM, 1, 0x02)
    assert u.read(IIR_FCR, 1) == 0x02
    assert u.read(IIR_FCR, 1) == 0x01  # reading IIR acknowledged it
    u.write(RBR_THR_DLL, 1, ord("x"))
    assert u.interrupt_pending()  # transmitted: THR empty again
    u.write(IER_DLM, 1, 0x00)
    assert not u.interrupt_pending()


def test_the_line_is_signalled_where_serial_c_calls_serial_update_irq_and_only_there():
    """QEMU's PLIC pends the UART's source at every serial_update_irq call, even at an
    unchanged level; polling LSR (xv6's uartgetc) must not be one of them."""
    u = Uart16550()
    u.write(IER_DLM, 1, 0x03)
    assert u.interrupt_pending()  # THR empty

    def signals(access) -> int:
        before = u.irq_updates
        access()
        return u.irq_updates - before

    assert signals(lambda: u.read(LSR, 1)) == 0
    assert signals(lambda: u.write(IER_DLM, 1, 0x03)) == 0  # IER unchanged
    assert signals(lambda: u.read(SCR, 1)) == 0
    assert signals(lambda: u.write(RBR_THR_DLL, 1, ord("a"))) > 0
    assert u.interrupt_pending()  # still high after the write, THR empty again
    assert signals(lambda: u.feed(b"z")) > 0
    assert signals(lambda: u.read(RBR_THR_DLL, 1)) > 0
    assert u.interrupt_pending()  # THR empty is still unacknowledged
    assert signals(lambda: u.read(IIR_FCR, 1)) > 0  # it was THRI: acknowledged
    assert not u.interrupt_pending()
    assert signals(lambda: u.read(IIR_FCR, 1)) == 0  # nothing to acknowledge


def test_resetting_the_transmit_fifo_raises_thr_empty_again():
    """serial_ioport_write, FCR with XMIT FIFO reset: THRE and thr_ipending set."""
    u = Uart16550()
    u.write(IIR_FCR, 1, 0x01)  # FIFO on
    u.write(IER_DLM, 1, 0x02)
    assert u.read(IIR_FCR, 1) == 0xC2 and u.read(IIR_FCR, 1) == 0xC1  # acknowledged
    u.write(IIR_FCR, 1, 0x01 | 0x04)  # reset the transmit FIFO
    assert u.interrupt_pending() and u.read(IIR_FCR, 1) == 0xC2


def test_receive_has_priority_over_thr_empty():
    u = Uart16550()
    u.write(IER_DLM, 1, 0x03)
    u.feed(b"q")
    assert u.read(IIR_FCR, 1) == 0x04
    u.read(RBR_THR_DLL, 1)
    assert u.read(IIR_FCR, 1) == 0x02


def test_loopback_and_modem_status():
    u = Uart16550()
    assert u.read(MSR, 1) == 0xB0  # DCD DSR CTS, as QEMU's chardev reports
    u.write(MCR, 1, 0x10 | 0x0F)
    assert u.read(MSR, 1) & 0xF0 == 0xF0
    u.write(RBR_THR_DLL, 1, 0x42)
    assert u.output == b"" and u.read(RBR_THR_DLL, 1) == 0x42
    u.write(RBR_THR_DLL, 1, 1)
    u.write(RBR_THR_DLL, 1, 2)  # FIFO off: one-byte holding register overruns
    assert u.read(LSR, 1) & 0x02
    assert not u.read(LSR, 1) & 0x02  # reading LSR clears overrun


def test_line_status_interrupt_on_overrun():
    u = Uart16550()
    u.write(MCR, 1, 0x10)
    u.write(IER_DLM, 1, 0x04)
    u.write(RBR_THR_DLL, 1, 1)
    u.write(RBR_THR_DLL, 1, 2)
    assert u.read(IIR_FCR, 1) == 0x06
    u.read(LSR, 1)
    assert u.read(IIR_FCR, 1) == 0x01


def test_registers_repeat_every_8_bytes_and_wide_writes_use_the_low_byte():
    u = Uart16550()
    u.write(8 + SCR, 4, 0x1234_5678)
    assert u.read(SCR, 1) == 0x78 and u.read(0xF8 + SCR, 8) == 0x78
    u.write(0x40, 8, 0xFFFF_FFFF_FFFF_FF41)
    assert u.output == b"A"


def test_loopback_maps_each_modem_control_bit_to_its_status_bit():
    """DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD, each on its own (and no delta bits)."""
    for mcr, msr in ((0x01, 0x20), (0x02, 0x10), (0x04, 0x40), (0x08, 0x80), (0x00, 0x00)):
        u = Uart16550()
        u.write(MCR, 1, 0x10 | mcr)
        assert u.read(MSR, 1) == msr, (hex(mcr), hex(msr))


def test_an_overrun_keeps_the_other_line_status_bits():
    u = Uart16550()
    u.write(MCR, 1, 0x10)
    u.write(RBR_THR_DLL, 1, 1)
    u.write(RBR_THR_DLL, 1, 2)
    assert u.read(LSR, 1) == 0x20 | 0x40 | 0x02 | 0x01  # THRE TEMT OE DR
    assert u.read(RBR_THR_DLL, 1) == 1 and u.read(LSR, 1) == 0x60
