"""xv6-riscv on rvemu and on QEMU: find an installed build, boot it, type at its shell.

xv6 is upstream code and never part of this repository: README.md ("xv6-riscv") says how
to build it by hand and where to put it. This module looks in $RVEMU_XV6, then in
/opt/xv6-riscv, for `kernel` and `fs.img`; each session boots a copy of fs.img, since
xv6 writes to its disk.

    python tests/xv6.py ["usertests -q"] [--no-qemu]   # what `make xv6-usertests` runs
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rvemu import Machine  # noqa: E402

QEMU = "qemu-system-riscv64"
PROMPT = b"\n$ "  # sh's prompt, at the start of a line
CHUNK = 10_000_000  # instructions between looks at the console


def xv6_dirs() -> list[Path]:
    """Where an xv6 build is looked for, in order."""
    dirs = [Path(os.environ["RVEMU_XV6"])] if os.environ.get("RVEMU_XV6") else []
    return dirs + [Path("/opt/xv6-riscv")]


def find_xv6() -> Path | None:
    """The first folder holding both `kernel` and `fs.img`, or None."""
    for folder in xv6_dirs():
        if (folder / "kernel").is_file() and (folder / "fs.img").is_file():
            return folder
    return None


def qemu_command(kernel: Path, disk: Path) -> list[str]:
    """QEMU's command line for xv6, as xv6's Makefile and ../shared/guests/README.md have it:
    the disk on virtio-mmio-bus.0 (0x10001000, IRQ 1), where xv6 looks for it."""
    return [
        QEMU, "-machine", "virt", "-bios", "none", "-kernel", str(kernel), "-m", "128M",
        "-smp", "1", "-nographic", "-global", "virtio-mmio.force-legacy=false",
        "-drive", f"file={disk},if=none,format=raw,id=x0",
        "-device", "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0",
    ]  # fmt: skip


def rvemu_command(kernel: Path, disk: Path) -> list[str]:
    """The same machine on rvemu (what README.md shows)."""
    return ["rvemu", "boot", str(kernel), "--disk", f"{disk},slot=0"]


class Xv6Error(Exception):
    """xv6 did not answer as expected in time."""


class Session:
    """A booted xv6 whose console output is read up to markers; subclasses run it."""

    def __init__(self, echo: bool = False) -> None:
        self.output = bytearray()
        self.seen = 0  # output before this was returned by wait_for already
        self.echo = echo

    def wait_for(self, marker: bytes = PROMPT) -> bytes:
        """Run until the console shows `marker` after what was already read; that output."""
        while self.output.find(marker, self.seen) < 0:
            before = len(self.output)
            self._advance(marker)
            if self.echo:
                sys.stdout.write(self.output[before:].decode(errors="replace"))
                sys.stdout.flush()
        end = self.output.find(marker, self.seen) + len(marker)
        text = bytes(self.output[self.seen : end])
        self.seen = end
        return text

    def command(self, line: str, marker: bytes = PROMPT) -> bytes:
        """Type `line` at the shell; its echo and output up to `marker` (the next prompt)."""
        self.type(line.encode() + b"\n")
        return self.wait_for(marker)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _advance(self, marker: bytes) -> None:
        raise NotImplementedError

    def type(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class RvemuSession(Session):
    """xv6 on rvemu through the Python API. Each wait_for may retire `budget` instructions
    (deterministic guest time: 10 instructions are one 10 MHz tick)."""

    def __init__(self, xv6: Path, workdir: Path, budget: int, echo: bool = False) -> None:
        super().__init__(echo)
        disk = workdir / "fs-rvemu.img"
        shutil.copyfile(xv6 / "fs.img", disk)
        self.machine = Machine(memory="128M", disk=f"{disk},slot=0")
        self.machine.load(str(xv6 / "kernel"))
        self.machine.run(0)  # load (or compile) the core now, so waits time the guest
        self.output = self.machine.uart.output
        self.budget = budget
        self._spent = 0

    def wait_for(self, marker: bytes = PROMPT) -> bytes:
        self._spent = 0
        return super().wait_for(marker)

    def _advance(self, marker: bytes) -> None:
        if self._spent >= self.budget:
            raise Xv6Error(f"no {marker!r} on rvemu after {self.budget:,} instructions")
        result = self.machine.run(CHUNK)
        self._spent += result.instructions
        if result.reason != "limit":
            raise Xv6Error(f"xv6 stopped on rvemu: {result.reason}")

    def type(self, data: bytes) -> None:
        self.machine.uart.feed(data)

    def close(self) -> None:
        self.machine.board.close()


class QemuSession(Session):
    """xv6 on qemu-system-riscv64; each wait_for may take `seconds` of host time."""

    def __init__(self, xv6: Path, workdir: Path, seconds: float, echo: bool = False) -> None:
        super().__init__(echo)
        disk = workdir / "fs-qemu.img"
        shutil.copyfile(xv6 / "fs.img", disk)
        self.proc = subprocess.Popen(
            qemu_command(xv6 / "kernel", disk),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.seconds = seconds
        self._deadline = 0.0

    def wait_for(self, marker: bytes = PROMPT) -> bytes:
        self._deadline = time.monotonic() + self.seconds
        return super().wait_for(marker)

    def _advance(self, marker: bytes) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise Xv6Error(f"no {marker!r} on QEMU after {self.seconds} s")
        ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
        if ready:
            data = os.read(self.proc.stdout.fileno(), 65536)
            if not data:
                raise Xv6Error(f"QEMU exited with status {self.proc.wait()}")
            self.output += data

    def type(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def verdicts(text: bytes) -> list[str]:
    """usertests' verdicts: "NAME: OK" or "NAME: FAILED" per test, and its summary lines.
    What a test prints between its name and its verdict (fault reports naming pids and
    addresses) is left out."""
    out, name = [], None
    for line in text.decode(errors="replace").splitlines():
        if line.startswith(("usertests starting", "usertests slow", "ALL TESTS", "SOME TESTS")):
            out.append(line)
        elif line.startswith("FAILED --"):
            out.append(line)
        if line.startswith("test ") and ": " in line:
            name = line[len("test ") : line.index(": ")]
        if name is not None and line.endswith(("OK", "FAILED")):
            out.append(f"{name}: {'OK' if line.endswith('OK') else 'FAILED'}")
            name = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a command at xv6's shell and time it.")
    parser.add_argument("command", nargs="?", default="usertests -q")
    parser.add_argument("--no-qemu", action="store_true", help="do not run it on QEMU too")
    args = parser.parse_args(argv)
    xv6 = find_xv6()
    if xv6 is None:
        where = ", ".join(str(d) for d in xv6_dirs())
        print(f"xv6: no kernel and fs.img in {where}: build it as README.md says", file=sys.stderr)
        return 2
    runs = [("rvemu", lambda d: RvemuSession(xv6, d, budget=1 << 40, echo=True))]
    if not args.no_qemu and shutil.which(QEMU):
        runs.append(("QEMU", lambda d: QemuSession(xv6, d, seconds=4 * 3600, echo=True)))
    passed = True
    for name, start in runs:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with start(Path(tmp)) as session:
                session.wait_for()
                t1 = time.perf_counter()
                out = session.command(args.command)
                t2 = time.perf_counter()
        ok = b"FAILED" not in out  # usertests' word for a failed test and for lost pages
        passed = passed and ok
        print(
            f"\n{name}: boot to prompt {t1 - t0:.1f} s, `{args.command}` {t2 - t1:.1f} s"
            f" ({'passed' if ok else 'FAILED'})",
            flush=True,
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
