"""`rvemu boot --gdb`: Debian's gdb-multiarch drives guests through rvemu's GDB stub, as it
would through QEMU's: breakpoints by function name, stepping by source line and into and
out of a trap, variables, registers, a watched store, Ctrl-C, detach, kill; and a
backtrace in xv6's kernel."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_apps import build, symbols_image
from toolchain import build_elf

from rvemu.gdbstub import FIRST_CSR_REGNUM as FIRST_CSR
from rvemu.gdbstub import PC_REGNUM as PC
from rvemu.loader import read_elf

GDB = "gdb-multiarch"
XV6 = Path(os.environ.get("RVEMU_XV6", "/opt/xv6-riscv"))


def require_gdb() -> None:
    if shutil.which(GDB) is None:
        pytest.skip(f"*** {GDB} not installed (apt-get install gdb-multiarch): GDB NOT TESTED ***")


class Rvemu:
    """`rvemu boot ELF --gdb 127.0.0.1:0 --wait` in the background; .port is where it serves.
    Every one started is killed when its test ends (see the autouse fixture below)."""

    started: list[Rvemu] = []

    def __init__(self, elf: Path, *options: str) -> None:
        cmd = [sys.executable, "-m", "rvemu", "boot", str(elf), "--gdb", "127.0.0.1:0"]
        self.proc = subprocess.Popen(
            [*cmd, "--wait", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        Rvemu.started.append(self)
        line = self.proc.stderr.readline()
        match = re.search(r"gdb server on localhost:(\d+)", line)
        assert match, line + self.proc.stderr.read()
        self.port = int(match[1])

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            self.proc.kill()
        return self.proc.returncode, out


@pytest.fixture(autouse=True)
def no_rvemu_left_running():
    yield
    while Rvemu.started:
        Rvemu.started.pop().proc.kill()


def gdb(elf: Path, port: int, commands: str, timeout: float = 180) -> str:
    """Run gdb-multiarch in batch mode on `commands` against rvemu; its output."""
    script = f"set pagination off\nset confirm off\ntarget remote 127.0.0.1:{port}\n{commands}"
    with tempfile.NamedTemporaryFile("w", suffix=".gdb") as f:
        f.write(script)
        f.flush()
        run = subprocess.run(
            [GDB, "-q", "-nx", "-batch", "-ex", "set style enabled off", "-x", f.name, str(elf)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return run.stdout + run.stderr


def test_break_step_print_set_watch_continue_to_power_off():
    require_gdb()
    build("timers")
    elf = symbols_image("timers")
    rvemu = Rvemu(elf)
    out = gdb(
        elf,
        rvemu.port,
        """
break main
continue
next
print ticks
info registers priv
set $a0 = 0x55
print/x $a0
print $mstatus != 0
watch ticks
continue
bt
print ticks
delete
continue
""",
    )
    code, console = rvemu.finish()
    assert re.search(r"Breakpoint 1, main \(\) at .*apps/timers/main.c:31", out), out
    assert re.search(r"^32\t", out, re.M), out  # `next` went to the following line
    assert "$1 = 0" in out  # print ticks
    assert re.search(r"priv\s+0x3\s+prv:3 \[Machine\]", out), out
    assert "$2 = 0x55" in out  # the register was set
    assert "$3 = 1" in out
    assert re.search(r"Hardware watchpoint 2: ticks\s+Old value = 0\s+New value = 1", out), out
    assert re.search(r"#0\s+on_tick \(.*\) at .*main.c:17", out), out  # just after ticks++
    assert re.search(r"#\d+\s+0x[0-9a-f]+ in main \(\)", out), out
    assert "$4 = 1" in out
    assert "exited normally" in out, out
    assert code == 0
    assert "event loop done after 5 ticks" in console


TRAP_PROGRAM = """
        .globl _start
_start: la t0, handler
        csrw mtvec, t0
        li a0, 7
call:   ecall
after:  li a1, 8
        lui t0, 0x100
        li t1, 0x5555
        sw t1, 0(t0)
1:      j 1b
        .align 2
handler:
        csrr t0, mepc
        addi t0, t0, 4
        csrw mepc, t0
back:   mret
"""


def test_break_in_a_trap_handler_and_return():
    require_gdb()
    elf = build_elf("gdb-trap", TRAP_PROGRAM)
    rvemu = Rvemu(elf)
    out = gdb(
        elf,
        rvemu.port,
        """
break handler
continue
print $mcause
print $mepc == &call
break after
continue
print $priv
print $a0
continue
""",
    )
    code, _ = rvemu.finish()
    assert re.search(r"Breakpoint 1, 0x[0-9a-f]+ in handler \(\)", out), out
    assert "$1 = 11" in out, out  # environment call from M-mode
    assert "$2 = 1" in out, out
    assert re.search(r"Breakpoint 2, 0x[0-9a-f]+ in after \(\)", out), out
    assert "$3 = 3" in out and "$4 = 7" in out, out
    assert "exited normally" in out, out
    assert code == 0


class Client:
    """A bare remote-protocol client, for what gdb-multiarch never sends: GDB 13 steps a
    RISC-V target by breakpoints of its own, never with the target's single step."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)

    def send(self, text: str) -> None:
        body = text.encode()
        self.sock.sendall(b"$" + body + b"#" + f"{sum(body) & 0xFF:02x}".encode())

    def reply(self) -> str:
        data = b""
        while not re.search(rb"\$[^#]*#..", data):
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed"
            data += chunk
        return re.search(rb"\$([^#]*)#", data)[1].decode()

    def ask(self, text: str) -> str:
        self.send(text)
        return self.reply()

    def reg(self, regnum: int) -> int:
        return int.from_bytes(bytes.fromhex(self.ask(f"p{regnum:x}")), "little")


def test_single_step_into_and_out_of_a_trap():
    elf = build_elf("gdb-trap", TRAP_PROGRAM)
    symbols = read_elf(str(elf)).symbols
    rvemu = Rvemu(elf)
    gdb = Client(rvemu.port)
    assert gdb.ask("?").startswith("T05")
    assert gdb.ask(f"Z0,{symbols['call']:x},4") == "OK"
    assert gdb.ask("vCont;c").startswith("T05")
    assert gdb.reg(PC) == symbols["call"]
    assert gdb.ask("vCont;s").startswith("T05")  # the ecall traps: the step ends there
    assert gdb.reg(PC) == symbols["handler"]
    assert gdb.reg(FIRST_CSR + 0x342) == 11  # mcause
    while gdb.reg(PC) != symbols["back"]:
        assert gdb.ask("s").startswith("T05")
    assert gdb.ask("s").startswith("T05")  # mret
    assert gdb.reg(PC) == symbols["after"]
    assert gdb.ask(f"z0,{symbols['call']:x},4") == "OK"
    assert gdb.ask("c") == "W00"
    assert rvemu.finish()[0] == 0


def test_ctrl_c_detach_and_kill():
    """Interrupt a guest spinning forever, detach, attach again, kill."""
    elf = build_elf("gdb-spin", ".globl _start\n_start: addi a0, a0, 1\n j _start\n")
    rvemu = Rvemu(elf)
    gdb = Client(rvemu.port)
    assert gdb.ask("?").startswith("T05")
    gdb.send("c")
    gdb.sock.sendall(b"\x03")
    assert gdb.reply().startswith("T02")  # SIGINT: stopped by Ctrl-C
    a0 = gdb.reg(10)
    assert a0 > 0  # it ran
    assert gdb.ask("D") == "OK"
    gdb.sock.close()
    gdb = Client(rvemu.port)  # the guest ran on; a new GDB stops it again
    assert gdb.ask("?").startswith("T05")
    assert gdb.reg(10) >= a0
    gdb.send("k")
    code, _ = rvemu.finish(timeout=30)
    assert code == 0


def test_break_in_xv6_kernel_by_name_with_backtrace():
    require_gdb()
    kernel = XV6 / "kernel"
    if not kernel.exists():
        pytest.skip(f"*** xv6 not built at {XV6} (README: xv6-riscv): xv6 NOT DEBUGGED ***")
    rvemu = Rvemu(kernel)
    out = gdb(
        kernel,
        rvemu.port,
        """
break kvminit
continue
bt
print/x $satp
kill
""",
    )
    rvemu.finish()
    assert re.search(r"Breakpoint 1, kvminit \(\) at kernel/vm.c:\d+", out), out
    assert re.search(r"#1\s+0x[0-9a-f]+ in main \(\) at kernel/main.c:\d+", out), out
    assert "$1 = 0x0" in out  # paging not on yet


def test_malformed_packets_get_errors_not_a_crash():
    elf = build_elf("gdb-spin", ".globl _start\n_start: addi a0, a0, 1\n j _start\n")
    rvemu = Rvemu(elf)
    gdb = Client(rvemu.port)
    bad = [
        "mzz,4",
        "m80000000",
        "M1,2:zz",
        "X",
        "p",
        "pzz",
        "P1=",
        "Pfffff=00",
        "Z0,zz,4",
        "G00",
        "qXfer:features:read:target.xml:zz",
        "m" + "f" * 40 + ",4",
        "vCont;s:zz",
    ]
    for packet in bad:
        reply = gdb.ask(packet)
        assert reply.startswith("E") or reply == "" or reply.startswith("T"), (packet, reply)
    assert gdb.ask("?").startswith("T05")  # still serving
    gdb.send("k")
    assert rvemu.finish(timeout=30)[0] == 0
