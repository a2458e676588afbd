"""A GDB remote-protocol server (QEMU's -gdb): `rvemu boot --gdb [HOST:]PORT [--wait]`.

The target description follows QEMU's for a RISC-V hart (gdb-xml/riscv-64bit-*.xml):
x0-x31 and pc, f0-f31 with fflags/frm/fcsr, every CSR the hart has at register number
65 + its CSR number, and the privilege level. Breakpoints (Z0/Z1) stop the hart before
an instruction without patching memory; write watchpoints (Z2) stop it after the store.
Single steps hold interrupts pending, as QEMU's do (SSTEP_NOIRQ).
"""

from __future__ import annotations

import select
import socket
import sys
from dataclasses import dataclass

from .cpu.names import CSR_NAMES, F_NAMES, X_NAMES
from .machine import Machine, RunResult
from .views import implemented_csrs

PC_REGNUM = 32
FIRST_F_REGNUM = 33
FIRST_CSR_REGNUM = 65  # GDB's RISCV_FIRST_CSR_REGNUM: CSR n is register 65 + n
PRIV_REGNUM = FIRST_CSR_REGNUM + 4096
FP_CSRS = ("fflags", "frm", "fcsr")  # in the fpu feature, 32 bits wide (as QEMU's)
SIGINT, SIGTRAP = 2, 5
RUN_CHUNK = 1_000_000  # instructions between looks for Ctrl-C from GDB
PACKET_SIZE = 0x4000  # what qSupported offers GDB: the largest packet either side sends


@dataclass
class Register:
    name: str
    regnum: int
    bits: int


def registers() -> list[Register]:
    regs = [Register(name, n, 64) for n, name in enumerate(X_NAMES)]
    regs.append(Register("pc", PC_REGNUM, 64))
    regs += [Register(name, FIRST_F_REGNUM + n, 64) for n, name in enumerate(F_NAMES)]
    for num in implemented_csrs():
        name = CSR_NAMES.get(num)
        if name is not None:
            regs.append(Register(name, FIRST_CSR_REGNUM + num, 32 if name in FP_CSRS else 64))
    regs.append(Register("priv", PRIV_REGNUM, 64))
    return regs


def target_xml(regs: list[Register]) -> str:
    def feature(name: str, members: list[Register], kind: str = "int") -> str:
        lines = [f'<feature name="org.gnu.gdb.riscv.{name}">']
        for r in members:
            type_ = {"pc": "code_ptr", "ra": "code_ptr", "sp": "data_ptr"}.get(r.name, kind)
            if r.name in FP_CSRS:
                type_ = "int"
            attributes = f'bitsize="{r.bits}" type="{type_}" regnum="{r.regnum}"'
            lines.append(f'<reg name="{r.name}" {attributes}/>')
        return "\n".join([*lines, "</feature>"])

    cpu = [r for r in regs if r.regnum <= PC_REGNUM]
    fpu = [r for r in regs if FIRST_F_REGNUM <= r.regnum < FIRST_CSR_REGNUM or r.name in FP_CSRS]
    csr = [r for r in regs if r.regnum >= FIRST_CSR_REGNUM and r not in fpu and r.name != "priv"]
    virtual = [r for r in regs if r.name == "priv"]
    return "\n".join(
        [
            '<?xml version="1.0"?>',
            '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
            "<target>",
            "<architecture>riscv:rv64</architecture>",
            feature("cpu", cpu),
            feature("fpu", fpu, "ieee_double"),
            feature("csr", csr),
            feature("virtual", virtual),
            "</target>",
        ]
    )


class Disconnected(Exception):
    pass


class GdbServer:
    """Serves one GDB at a time for `machine`; `serve()` runs the guest to its end."""

    def __init__(self, machine: Machine, address: str, wait: bool) -> None:
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"--gdb {address!r}: use [HOST:]PORT, e.g. localhost:1234")
        self.machine = machine
        self.wait = wait
        self.listener = socket.create_server((host or "localhost", int(port)))
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.regs = registers()
        self.by_regnum = {r.regnum: r for r in self.regs}
        self.xml = target_xml(self.regs).encode()
        self.result: RunResult | None = None
        self.killed = False
        self._buffer = b""
        self._no_ack = False

    # --- the run
    def serve(self) -> RunResult | None:
        """Run the machine under GDB's control: wait for it first with `wait`, else run
        and let GDB attach at any time (the guest stops when it does, as on QEMU). Returns
        how the guest ended, or None if GDB killed it."""
        print(f"rvemu: gdb server on localhost:{self.port}", file=sys.stderr, flush=True)
        if self.wait:
            self._accept(block=True)
        while self.result is None and not self.killed:
            if self.conn is None:
                result = self.machine.run(RUN_CHUNK)
                if result.reason != "limit":
                    self.result = result
                else:
                    self._accept(block=False)
                continue
            try:
                self._session()
            except Disconnected:
                self._close()  # GDB went away: the guest runs on, as on QEMU
        self._close()
        self.listener.close()
        return self.result

    def _accept(self, block: bool) -> None:
        if not block and not select.select([self.listener], [], [], 0)[0]:
            return
        self.conn, _ = self.listener.accept()
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self._no_ack = False

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _session(self) -> None:
        """Answer packets while the guest is stopped; resume it when GDB says."""
        while self.conn is not None and self.result is None and not self.killed:
            packet = self._receive()
            if packet is None:  # Ctrl-C while stopped: already stopped
                continue
            try:
                reply = self._handle(packet)
            except (ValueError, IndexError, KeyError, OverflowError):
                reply = "E01"  # a malformed packet (bad hex, missing fields)
            if reply is not None:
                self._send(reply)

    # --- packets
    def _handle(self, packet: str) -> str | None:
        cmd, rest = packet[:1], packet[1:]
        m = self.machine
        if packet.startswith("qSupported"):
            features = "qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+"
            return f"PacketSize={PACKET_SIZE:x};{features}"
        if packet == "QStartNoAckMode":
            self._send("OK")
            self._no_ack = True
            return None
        if packet.startswith("qXfer:features:read:target.xml:"):
            offset, length = (int(v, 16) for v in packet.rsplit(":", 1)[1].split(","))
            chunk = self.xml[offset : offset + length]
            return ("m" if offset + length < len(self.xml) else "l") + chunk.decode()
        if packet == "?":
            return self._stop_reply(SIGTRAP)
        if packet == "qAttached":
            return "1"
        if packet == "qC":
            return "QC1"
        if packet == "qfThreadInfo":
            return "m1"
        if packet == "qsThreadInfo":
            return "l"
        if cmd == "H" or cmd == "T":
            return "OK"
        if cmd == "g":
            return "".join(self._reg_hex(n) for n in range(PC_REGNUM + 1))
        if cmd == "G":
            if len(rest) != 16 * (PC_REGNUM + 1):
                return "E01"
            for n in range(PC_REGNUM + 1):
                self._set_reg(n, rest[16 * n : 16 * n + 16])
            return "OK"
        if cmd == "p":
            n = int(rest, 16)
            return self._reg_hex(n) if n in self.by_regnum else "E01"
        if cmd == "P":
            n, value = rest.split("=")
            if int(n, 16) not in self.by_regnum:
                return "E01"
            return self._set_reg(int(n, 16), value)
        if cmd == "m":
            addr, length = (int(v, 16) for v in rest.split(","))
            if length > PACKET_SIZE // 2:
                return "E01"
            try:
                return m.virt.read(addr, length).hex()
            except IndexError:
                return "E14"
        if cmd in "MX":
            where, data = rest.split(":", 1)
            addr, length = (int(v, 16) for v in where.split(","))
            raw = bytes.fromhex(data) if cmd == "M" else self._unescape(data.encode("latin-1"))
            try:
                m.virt.write(addr, raw[:length])
            except IndexError:
                return "E14"
            return "OK"
        if cmd in "Zz":
            return self._breakpoint(cmd == "Z", rest)
        if packet == "vCont?":
            return "vCont;c;C;s;S"
        if packet.startswith("vCont;"):
            action = packet[6:7].lower()
            return self._resume(step=action == "s")
        if cmd in "cC":
            return self._resume(step=False)
        if cmd in "sS":
            return self._resume(step=True)
        if cmd == "k" or packet.startswith("vKill"):
            self.killed = True
            return "OK" if packet.startswith("vKill") else None
        if cmd == "D":
            self._send("OK")
            self._clear_debug()
            self._close()
            return None
        return ""  # not supported

    def _reg_hex(self, n: int) -> str:
        r = self.by_regnum[n]
        value = self.machine.regs[r.name]
        return value.to_bytes(r.bits // 8, "little").hex()

    def _set_reg(self, n: int, hex_value: str) -> str:
        r = self.by_regnum[n]
        if len(hex_value) != r.bits // 4:
            return "E01"
        value = int.from_bytes(bytes.fromhex(hex_value), "little")
        try:
            self.machine.regs[r.name] = value
        except ValueError:
            return "E01"
        return "OK"

    def _breakpoint(self, insert: bool, rest: str) -> str:
        kind, addr, length = rest.split(",")[:3]
        address = int(addr, 16)
        m = self.machine
        try:
            if kind in ("0", "1"):  # software or hardware: both stop before the pc
                (m.add_breakpoint if insert else m.remove_breakpoint)(address)
            elif kind == "2":  # write watchpoint
                if insert:
                    m.watch(address, int(length, 16))
                else:
                    m.unwatch(address)
            else:
                return ""  # read and access watchpoints: not supported
        except ValueError:
            return "E01"
        return "OK"

    def _clear_debug(self) -> None:
        m = self.machine
        for pc in list(m.breakpoints):
            m.remove_breakpoint(pc)
        for address in list(m.watchpoints):
            m.unwatch(address)

    # --- running the guest for GDB
    def _resume(self, step: bool) -> str | None:
        m = self.machine
        if step:
            result = m.step(1, interrupts=False)
            return self._after(result)
        while True:
            result = m.run(RUN_CHUNK)
            if result.reason == "halt":  # nothing can wake the hart: wait for Ctrl-C
                self._wait_for_interrupt(None)
                return self._stop_reply(SIGINT)
            if result.reason != "limit":
                return self._after(result)
            if self._wait_for_interrupt(0):
                return self._stop_reply(SIGINT)

    def _after(self, result: RunResult) -> str | None:
        reason = result.reason
        if reason in ("poweroff", "tohost", "quit", "reset"):
            self.result = result
            code = result.exit_code if result.exit_code is not None else 0
            self._send(f"W{code & 0xFF:02x}")
            return None
        if reason == "watchpoint":
            return self._stop_reply(SIGTRAP, f"watch:{self.machine.stop_address:x};")
        if reason == "breakpoint":
            return self._stop_reply(SIGTRAP, "swbreak:;")
        return self._stop_reply(SIGTRAP)

    def _stop_reply(self, signal: int, extra: str = "") -> str:
        return f"T{signal:02x}{extra}thread:1;"

    def _wait_for_interrupt(self, timeout: float | None) -> bool:
        """Whether GDB sent Ctrl-C (waiting up to `timeout` seconds for it)."""
        while True:
            if not self._buffer and not select.select([self.conn], [], [], timeout)[0]:
                return False
            data = self._buffer or self.conn.recv(4096)
            if not data:
                raise Disconnected
            if b"\x03" in data:
                self._buffer = data[data.index(b"\x03") + 1 :]
                return True
            self._buffer = data  # (a packet while running: read when stopped)
            if timeout == 0:
                return False

    # --- framing
    def _receive(self) -> str | None:
        """The next packet's text (acknowledged), or None for a Ctrl-C byte."""
        while True:
            start = self._buffer.find(b"$")
            if self._buffer[:1] == b"\x03" and (start == -1 or start > 0):
                self._buffer = self._buffer[1:]
                return None
            if start != -1:
                end = self._buffer.find(b"#", start)
                if end != -1 and len(self._buffer) >= end + 3:
                    body = self._buffer[start + 1 : end]
                    checksum = self._buffer[end + 1 : end + 3]
                    self._buffer = self._buffer[end + 3 :]
                    if not self._no_ack:
                        ok = int(checksum, 16) == sum(body) & 0xFF
                        self.conn.sendall(b"+" if ok else b"-")
                        if not ok:
                            continue
                    return body.decode("latin-1")
            data = self.conn.recv(4096)
            if not data:
                raise Disconnected
            self._buffer += data

    def _send(self, text: str) -> None:
        body = self._escape(text.encode("latin-1"))
        frame = b"$" + body + b"#" + f"{sum(body) & 0xFF:02x}".encode()
        try:
            self.conn.sendall(frame)
        except OSError:
            raise Disconnected from None
        # (acknowledgements from GDB are "+", skipped by _receive as noise before "$")

    @staticmethod
    def _escape(data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if b in b"$#}*":
                out += bytes([0x7D, b ^ 0x20])
            else:
                out.append(b)
        return bytes(out)

    @staticmethod
    def _unescape(data: bytes) -> bytes:
        out = bytearray()
        it = iter(data)
        for b in it:
            out.append(next(it) ^ 0x20 if b == 0x7D else b)
        return bytes(out)
