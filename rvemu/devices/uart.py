"""NS16550A UART: the register file and interrupt rules of QEMU's hw/char/serial.c.

Transmission is instantaneous (THR is empty again as soon as it is written). Received bytes
wait in a host-side queue and enter the 16-byte receive FIFO as it has room, as QEMU's
chardev does through serial_can_receive.

The interrupt line changes only where serial.c calls serial_update_irq, which also latches
IIR; each call counts in `irq_updates`, because QEMU's PLIC takes every such call as a new
request, even at an unchanged level (see plic.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

RBR_THR_DLL = 0
IER_DLM = 1
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 0x01, 0x02, 0x04, 0x08
IIR_NO_INT, IIR_MSI, IIR_THRI, IIR_RDI, IIR_RLSI, IIR_CTI = 0x01, 0x00, 0x02, 0x04, 0x06, 0x0C
IIR_FIFO = 0xC0
FCR_FE, FCR_RFR, FCR_XFR = 0x01, 0x02, 0x04
LCR_DLAB = 0x80
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_DR, LSR_OE, LSR_BI, LSR_THRE, LSR_TEMT = 0x01, 0x02, 0x10, 0x20, 0x40
LSR_INT_ANY = 0x1E
MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD = 0x01, 0x02, 0x04, 0x08
MSR_ANY_DELTA = 0x0F
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80

FIFO_SIZE = 16
TRIGGER_LEVELS = (1, 4, 8, 14)


class Uart16550:
    size = 0x100

    def __init__(self, sink: Callable[[bytes], None] | None = None) -> None:
        self.output = bytearray()
        self.sink = sink  # called with each byte transmitted
        self.host_input: deque[int] = deque()  # bytes from the host not yet in the FIFO
        self.irq_updates = 0  # serial_update_irq calls so far: each one signals the line
        self.reset()

    def reset(self) -> None:
        """Registers and FIFO to power-on values (serial_reset); output and host input stay."""
        self.rx: deque[int] = deque()
        self.lcr = 0
        self.ier = 0
        self.fcr = 0
        self.mcr = MCR_OUT2
        self.scr = 0
        self.dll = 0x0C
        self.dlm = 0
        self.lsr = LSR_THRE | LSR_TEMT
        self.msr = MSR_DCD | MSR_DSR | MSR_CTS
        self.thr_ipending = False
        self.iir = IIR_NO_INT  # IIR as serial_update_irq last latched it
        self._update_irq()  # serial_reset: qemu_irq_lower

    # --- the host side
    def feed(self, data: bytes) -> None:
        """Bytes typed on the host console, received in order as the FIFO has room."""
        self.host_input.extend(data)
        self._pump()

    def _pump(self) -> None:
        if self.mcr & MCR_LOOP:
            return  # in loopback the receiver only hears the transmitter
        received = False
        while self.host_input and len(self.rx) < self._capacity():
            self.rx.append(self.host_input.popleft())
            received = True
        if received:  # serial_receive1
            self.lsr |= LSR_DR
            self._update_irq()

    def _capacity(self) -> int:
        return FIFO_SIZE if self.fcr & FCR_FE else 1

    def _receive(self, byte: int) -> None:
        if len(self.rx) >= self._capacity():
            self.lsr |= LSR_OE
        else:
            self.rx.append(byte)
            self.lsr |= LSR_DR
        self._update_irq()  # serial_receive1

    def _update_irq(self) -> None:
        """serial_update_irq: latch IIR and signal the line at its level."""
        self.iir = self._identify()
        self.irq_updates += 1

    def _identify(self) -> int:
        """The interrupt identification value for the current state (serial_update_irq)."""
        fifo = self.fcr & FCR_FE
        if self.ier & IER_RLSI and self.lsr & LSR_INT_ANY:
            ident = IIR_RLSI
        elif self.ier & IER_RDI and self.rx:
            if not fifo or len(self.rx) >= TRIGGER_LEVELS[self.fcr >> 6]:
                ident = IIR_RDI
            else:
                # QEMU raises the character timeout 4 character times after the last byte
                # arrives; here host time does not pass between bytes, so it is immediate.
                ident = IIR_CTI
        elif self.ier & IER_THRI and self.thr_ipending:
            ident = IIR_THRI
        elif self.ier & IER_MSI and self._msr() & MSR_ANY_DELTA:
            ident = IIR_MSI
        else:
            ident = IIR_NO_INT
        return ident | (IIR_FIFO if fifo else 0)

    def interrupt_pending(self) -> bool:
        """The level of the line, as the last serial_update_irq left it."""
        return not self.iir & IIR_NO_INT

    def _msr(self) -> int:
        if self.mcr & MCR_LOOP:
            # loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD
            m = self.mcr
            return (
                (MSR_DSR if m & MCR_DTR else 0)
                | (MSR_CTS if m & MCR_RTS else 0)
                | (MSR_RI if m & MCR_OUT1 else 0)
                | (MSR_DCD if m & MCR_OUT2 else 0)
                | (self.msr & MSR_ANY_DELTA)
            )
        return self.msr

    # --- the bus side
    def read(self, offset: int, size: int) -> int:
        offset &= 7  # serial.c: the 8 registers repeat through the 0x100 window
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                return self.dll
            value = self.rx.popleft() if self.rx else 0
            if not self.rx:
                self.lsr &= ~(LSR_DR | LSR_BI)
            self._update_irq()
            self._pump()  # qemu_chr_fe_accept_input: the host may send more
            return value
        if offset == IER_DLM:
            return self.dlm if dlab else self.ier
        if offset == IIR_FCR:
            value = self.iir
            if value & 0x0F == IIR_THRI:  # reading it acknowledges THR empty
                self.thr_ipending = False
                self._update_irq()
            return value
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            value = self.lsr
            if value & (LSR_BI | LSR_OE):  # reading clears break and overrun
                self.lsr &= ~(LSR_BI | LSR_OE)
                self._update_irq()
            return value
        if offset == MSR:
            value = self._msr()
            if self.msr & MSR_ANY_DELTA:
                self.msr &= ~MSR_ANY_DELTA
                self._update_irq()
            return value
        if offset == SCR:
            return self.scr
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        offset &= 7
        value &= 0xFF  # serial_mm_write: any access size writes the low byte
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                self.dll = value
            else:
                self._transmit(value)
        elif offset == IER_DLM:
            if dlab:
                self.dlm = value
            else:
                changed = (self.ier ^ value) & 0x0F
                self.ier = value & 0x0F
                if changed & IER_THRI:
                    # serial_ioport_write: enabling THRI with THR empty raises it at once
                    self.thr_ipending = bool(self.ier & IER_THRI and self.lsr & LSR_THRE)
                if changed:
                    self._update_irq()
        elif offset == IIR_FCR:
            if (value ^ self.fcr) & FCR_FE:
                value |= FCR_RFR | FCR_XFR  # changing FIFO mode resets both FIFOs
            if value & FCR_RFR:
                self.rx.clear()
                self.lsr &= ~(LSR_DR | LSR_BI)
            if value & FCR_XFR:  # an empty transmit FIFO is a THR-empty interrupt
                self.lsr |= LSR_THRE
                self.thr_ipending = True
            self.fcr = value & 0xC9
            self._update_irq()
            self._pump()
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self.mcr = value & 0x1F
            self._pump()
        elif offset == SCR:
            self.scr = value

    def _transmit(self, byte: int) -> None:
        # serial_ioport_write: THR full (the line drops unless something else is
        # pending), then serial_xmit sends it at once and THR is empty again
        self.thr_ipending = False
        self.lsr &= ~(LSR_THRE | LSR_TEMT)
        self._update_irq()
        self.lsr |= LSR_THRE | LSR_TEMT
        self.thr_ipending = True
        self._update_irq()
        if self.mcr & MCR_LOOP:
            self._receive(byte)
        else:
            self.output.append(byte)
            if self.sink is not None:
                self.sink(bytes([byte]))
