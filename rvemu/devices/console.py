"""The host side of the console: stdin into the UART, in raw mode on a terminal.

On a terminal the keys go to the guest unchanged (Ctrl-C included) and Ctrl-A x quits, as
with QEMU's -nographic; Ctrl-A a sends a literal Ctrl-A. Piped input is passed through as is.
"""

from __future__ import annotations

import atexit
import os
import select
import sys

CTRL_A = 0x01


class StdinConsole:
    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            try:
                fd = sys.stdin.fileno()
            except (AttributeError, ValueError, OSError):
                fd = -1
        self.fd = fd
        self.eof = fd < 0
        self.quit_requested = False
        self._saved = None
        self._started = False
        self._escape = False

    def start(self) -> None:
        if self._started or self.eof:
            return
        self._started = True
        if os.isatty(self.fd):
            import termios

            try:
                background = os.tcgetpgrp(self.fd) not in (os.getpgrp(), 0)
            except OSError:
                background = False  # not our controlling terminal: no job control applies
            if background:
                # a background job must not touch the terminal (SIGTTOU/SIGTTIN stop it)
                self.eof = True
                return

            self._saved = termios.tcgetattr(self.fd)
            # the settings of QEMU's chardev/char-stdio.c qemu_chr_set_echo_stdio
            attrs = termios.tcgetattr(self.fd)
            attrs[0] &= ~(
                termios.IGNBRK
                | termios.BRKINT
                | termios.PARMRK
                | termios.ISTRIP
                | termios.INLCR
                | termios.IGNCR
                | termios.ICRNL
                | termios.IXON
            )
            attrs[1] |= termios.OPOST
            attrs[3] &= ~(
                termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN | termios.ISIG
            )
            attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
            attrs[6][termios.VMIN] = 1
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
            atexit.register(self.close)

    def close(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
            self._saved = None

    def fileno(self) -> int:
        return self.fd

    def read_available(self) -> bytes:
        """What can be read now without blocking, with the Ctrl-A escapes handled."""
        self.start()
        if self.eof:
            return b""
        try:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                return b""
            data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return b""
        if self._saved is None:
            return data  # piped: no escapes
        out = bytearray()
        for b in data:
            if self._escape:
                self._escape = False
                if b in (ord("x"), ord("X")):
                    self.quit_requested = True
                    break
                if b == CTRL_A or b in (ord("a"), ord("A")):
                    out.append(CTRL_A)
                continue
            if b == CTRL_A:
                self._escape = True
            else:
                out.append(b)
        return bytes(out)
