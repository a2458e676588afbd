"""The host console: piped stdin passes through; a terminal goes raw with QEMU's Ctrl-A
escapes, and is restored afterwards."""

from __future__ import annotations

import os
import pty
import sys
import termios
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import build  # noqa: E402

from rvemu import Machine  # noqa: E402
from rvemu.cpu import state as S  # noqa: E402
from rvemu.devices.console import StdinConsole  # noqa: E402


def test_piped_input_passes_through_unchanged_until_eof():
    r, w = os.pipe()
    os.write(w, b"ab\x01xc\n")
    os.close(w)
    con = StdinConsole(r)
    assert con.read_available() == b"ab\x01xc\n"  # no escapes on a pipe
    assert not con.quit_requested
    assert con.read_available() == b"" and con.eof
    os.close(r)


def test_terminal_goes_raw_handles_ctrl_a_and_is_restored():
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    con = StdinConsole(slave)
    con.start()
    raw = termios.tcgetattr(slave)
    assert not raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
    os.write(master, b"hi\x03\x01a")  # Ctrl-C goes to the guest; Ctrl-A a sends Ctrl-A
    assert con.read_available() == b"hi\x03\x01"
    os.write(master, b"\x01x")
    con.read_available()
    assert con.quit_requested
    con.close()
    assert termios.tcgetattr(slave) == before
    os.close(master)
    os.close(slave)


def test_ctrl_a_x_stops_the_machine():
    master, slave = pty.openpty()
    m = Machine()
    m.board.console = StdinConsole(slave)
    m.load(str(build("uart_irq")))
    os.write(master, b"\x01x")
    result = m.run(None)  # the guest waits for a line forever: only the escape ends this
    assert result.reason == "quit"
    m.board.close()
    os.close(master)
    os.close(slave)


def test_typed_line_reaches_the_guest():
    master, slave = pty.openpty()
    m = Machine()
    m.board.console = StdinConsole(slave)
    m.load(str(build("uart_irq")))
    # typed ahead: the console is read once the guest waits (after it set up the UART)
    os.write(master, b"typed\r\n")
    result = m.run(None)
    m.board.close()
    os.close(master)
    os.close(slave)
    assert result.exit_code == 0
    assert b"uart: received 7 bytes: typed\r\n" in m.console


def test_a_halted_guest_does_not_wait_for_input_it_cannot_receive():
    """wfi with every interrupt disabled: no typed key could wake it, so the run ends
    ("halt") although the console is still open."""
    r, w = os.pipe()
    m = Machine()
    m.board.console = StdinConsole(r)
    m.load(str(build("halt")))
    result = m.run(None)
    assert result.reason == "halt" and m.console == b"halting\r\n"
    os.close(r)
    os.close(w)


def test_cli_on_a_terminal_types_into_the_guest_and_restores_the_terminal():
    import subprocess
    import time

    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvemu", "boot", str(build("uart_irq"))],
        cwd=root,
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    out = b""
    deadline = time.time() + 120
    while b"waiting for a line" not in out and time.time() < deadline:
        out += os.read(master, 4096)
    os.write(master, b"on a tty\r")  # Enter on a raw terminal sends CR
    os.write(master, b"\n")
    proc.wait(timeout=60)
    while True:
        import select

        if not select.select([master], [], [], 0.2)[0]:
            break
        try:
            out += os.read(master, 4096)
        except OSError:
            break
    assert proc.returncode == 0, proc.stderr.read()
    assert b"uart: received 10 bytes: on a tty" in out
    assert b"on a tty" not in out.split(b"waiting for a line")[1].split(b"received")[0]  # no echo
    assert termios.tcgetattr(slave) == before
    os.close(master)
    os.close(slave)


def test_halted_guest_output_matches_qemu():
    """QEMU never ends such a run: it is stopped after a while and its output compared."""
    import subprocess

    from devguest import qemu_command, require_qemu

    require_qemu()
    elf = build("halt")
    proc = subprocess.Popen(qemu_command(elf), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    m = Machine()
    m.load(str(elf))
    assert m.run(None).reason == "halt"
    assert m.console == out == b"halting\r\n"


def test_input_that_raises_an_interrupt_while_the_hart_goes_idle_wakes_it():
    """A byte read by the board's last look before blocking has already raised the UART's
    interrupt: waiting for more input instead would leave the guest asleep for good (a
    line typed just as the guest reached WFI went unanswered)."""
    import threading

    r, w = os.pipe()
    m = Machine()
    m.board.console = StdinConsole(r)
    plic = 0x0C00_0000
    m.bus.write(plic + 4 * 10, 4, 1)  # UART's IRQ 10: priority 1
    m.bus.write(plic + 0x2000, 4, 1 << 10)  # enabled for hart 0's M-mode context
    m.board.uart.write(1, 1, 0x01)  # IER: received-data interrupts
    meie = 1 << 11
    os.write(w, b"x")  # arrives before the board looks
    woke = threading.Event()
    thread = threading.Thread(target=lambda: m.board.wait(None, meie) and woke.set(), daemon=True)
    thread.start()
    thread.join(30)
    assert woke.is_set(), "the board waited for more input with an interrupt pending"
    assert m.hart.st[S.EXT_IRQ] & S.MIP_MEIP
    os.close(w)
    os.close(r)
