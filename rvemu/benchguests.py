"""`rvemu bench --only guests`: real operating systems on rvemu and on QEMU, side by side.

Rows (each skipped with one loud line where its guest is absent):

- `xv6-boot`: xv6-riscv from reset to its shell's first `$ ` prompt;
- `xv6-usertests`: then `usertests -q` at that shell, to `ALL TESTS PASSED` (minutes);
- `linux-init`: Debian's Linux (../shared/guests/linux) through OpenSBI (--bios default)
  to a line its initramfs' /init prints first.

Each row gives the guest instructions rvemu retired, and the seconds to the marker on
rvemu and on QEMU with the same machine and command line, run one after the other in the
same sitting; the ratio is QEMU's time over rvemu's (1.0: as fast as QEMU). Times are wall
time, CPU time beside it: QEMU's guest clock follows the host's, so its boots wait out
their timers (CPU time < wall time), while rvemu's clock follows instructions and skips
idle time. rvemu runs in this process from `Machine()` (loading the kernel included; the
compiled core loaded before, regions compiled in the background or taken from the code
cache as a user's run does); QEMU from starting its process. `--only guests:NAME,...`
picks rows; `--runs N` gives medians of N runs of the short rows (usertests runs once).

xv6 is found in $RVEMU_XV6, then /opt/xv6-riscv (README.md, "xv6-riscv"); Linux in
$RVEMU_GUESTS/linux, else ../shared/guests/linux beside the project.
"""

from __future__ import annotations

import gzip
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-riscv64"
ROOT = Path(__file__).resolve().parent.parent
XV6_PROMPT = b"\n$ "
XV6_PASSED = b"ALL TESTS PASSED"
LINUX_MARK = b"rvemu bench: /init reached"
LINUX_INIT = b'#!/bin/busybox sh\necho "rvemu bench: /init reached"\n/bin/busybox poweroff -f\n'
LINUX_APPEND = "console=ttyS0"
TIMEOUT = 3 * 3600  # seconds for one marker on either emulator (usertests under load)
CHUNK = 2_000_000  # instructions between looks at the console on rvemu
ROWS = ("xv6-boot", "xv6-usertests", "linux-init")
SLOW_ROWS = ("xv6-usertests",)  # run once, whatever --runs says


class GuestError(Exception):
    """A guest did not reach its marker."""


@dataclass
class Mark:
    """What a run had spent when a marker appeared on the console."""

    instructions: int | None  # guest instructions (rvemu only)
    seconds: float  # wall time since the run started
    cpu_seconds: float


# --- where the guests are


def xv6_folder() -> Path | None:
    folders = [Path(os.environ["RVEMU_XV6"])] if os.environ.get("RVEMU_XV6") else []
    for folder in [*folders, Path("/opt/xv6-riscv")]:
        if (folder / "kernel").is_file() and (folder / "fs.img").is_file():
            return folder
    return None


def linux_folder() -> Path:
    guests = os.environ.get("RVEMU_GUESTS") or str(ROOT / ".." / "shared" / "guests")
    return Path(guests).resolve() / "linux"


def opensbi() -> str | None:
    from .firmware import bios_path
    from .loader import LoadError

    try:
        return bios_path("default")
    except LoadError:
        return None


# --- running to markers


class Console:
    """A guest run whose console is read up to markers: `wait_for` returns the Mark."""

    def __init__(self) -> None:
        self.output = bytearray()
        self.seen = 0

    def wait_for(self, marker: bytes) -> Mark:
        raise NotImplementedError

    def type(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _found(self, marker: bytes) -> bool:
        at = self.output.find(marker, self.seen)
        if at < 0:
            return False
        self.seen = at + len(marker)
        return True


class RvemuConsole(Console):
    """A Machine in this process; the instructions and times at a marker are taken when
    its last byte reaches the UART (a console hook), not at the end of a run chunk."""

    def __init__(self, make: Callable[[], object]) -> None:
        super().__init__()
        from .profile import Profile

        self.t0, self.p0 = time.perf_counter(), time.process_time()
        self.machine = make()
        self.start_instret = self.machine.hart.instret
        self.profile = Profile(self.machine) if os.environ.get("RVEMU_BENCH_PROFILE") else None
        self._marker = b""
        self._mark: Mark | None = None
        self.machine.on_console(self._heard)

    def _heard(self, data: bytes) -> None:
        self.output += data
        if self._mark is None and self._marker and self.output.find(self._marker, self.seen) >= 0:
            self._mark = Mark(
                self.machine.hart.instret - self.start_instret,
                time.perf_counter() - self.t0,
                time.process_time() - self.p0,
            )

    def wait_for(self, marker: bytes) -> Mark:
        self._marker, self._mark = marker, None
        if self._found(marker):
            raise GuestError(f"{marker!r} was on the console before it was waited for")
        while self._mark is None:
            result = self.machine.run(CHUNK)
            if self._mark is None and result.reason != "limit":
                tail = bytes(self.output[-2000:]).decode(errors="replace")
                raise GuestError(f"no {marker!r} on rvemu: it stopped ({result.reason}):\n{tail}")
            if time.perf_counter() - self.t0 > TIMEOUT:
                raise GuestError(f"no {marker!r} on rvemu after {TIMEOUT} s")
        self._found(marker)
        return self._mark

    def type(self, data: bytes) -> None:
        self.machine.uart.feed(data)

    def close(self) -> None:
        if self.profile is not None:
            self.profile.stop()
            print(self.profile.table(), file=sys.stderr)
        self.machine.board.close()


class QemuConsole(Console):
    """qemu-system-riscv64 with its console on a pipe; CPU time from /proc at a marker."""

    def __init__(self, command: list[str]) -> None:
        super().__init__()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def cpu_seconds(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def wait_for(self, marker: bytes) -> Mark:
        while not self._found(marker):
            left = self.t0 + TIMEOUT - time.perf_counter()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise GuestError(f"no {marker!r} on QEMU after {TIMEOUT} s")
            data = os.read(self.proc.stdout.fileno(), 65536)
            if not data:
                tail = bytes(self.output[-2000:]).decode(errors="replace")
                raise GuestError(f"QEMU exited before {marker!r}:\n{tail}")
            self.output += data
        return Mark(None, time.perf_counter() - self.t0, self.cpu_seconds())

    def type(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# --- the guests: how each emulator starts them


class Xv6:
    """xv6 with a fresh copy of fs.img per run (it writes to its disk), in the first
    virtio-mmio slot as xv6's own Makefile has QEMU put it."""

    def __init__(self, folder: Path, work: Path) -> None:
        self.folder, self.work = folder, work
        self.runs = 0

    def disk(self) -> Path:
        self.runs += 1
        disk = self.work / f"fs-{self.runs}.img"
        shutil.copyfile(self.folder / "fs.img", disk)
        return disk

    def rvemu(self) -> Console:
        from . import Machine

        disk = self.disk()

        def make() -> Machine:
            machine = Machine(memory="128M", disk=f"{disk},slot=0")
            machine.load(str(self.folder / "kernel"))
            return machine

        return RvemuConsole(make)

    def qemu(self) -> Console:
        return QemuConsole(
            [
                QEMU, "-machine", "virt", "-bios", "none", "-kernel", str(self.folder / "kernel"),
                "-m", "128M", "-smp", "1", "-nographic",
                "-global", "virtio-mmio.force-legacy=false",
                "-drive", f"file={self.disk()},if=none,format=raw,id=x0",
                "-device", "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0",
            ]
        )  # fmt: skip


class Linux:
    """Debian's kernel with OpenSBI's fw_dynamic and an initramfs whose /init prints
    LINUX_MARK and powers off. QEMU gets the Image inflated (its RISC-V boards load a
    non-ELF kernel as it is); rvemu inflates Image.gz itself."""

    def __init__(self, folder: Path, bios: str, work: Path) -> None:
        from .initramfs import busybox_initramfs

        self.folder, self.bios = folder, bios
        self.initrd = work / "initramfs.cpio.gz"
        busybox_initramfs(str(folder / "busybox"), init=LINUX_INIT).write(str(self.initrd))
        self.image = work / "Image"
        self.work = work

    def rvemu(self) -> Console:
        from . import Machine

        def make() -> Machine:
            machine = Machine(
                memory="256M", bios=self.bios, initrd=str(self.initrd), append=LINUX_APPEND
            )
            machine.load(str(self.folder / "Image.gz"))
            return machine

        return RvemuConsole(make)

    def qemu(self) -> Console:
        if not self.image.exists():
            with gzip.open(self.folder / "Image.gz") as src, open(self.image, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return QemuConsole(
            [
                QEMU, "-machine", "virt", "-m", "256M", "-bios", self.bios,
                "-kernel", str(self.image), "-initrd", str(self.initrd),
                "-append", LINUX_APPEND, "-display", "none", "-monitor", "none",
                "-serial", "stdio", "-nodefaults", "-global", "virtio-mmio.force-legacy=false",
            ]
        )  # fmt: skip


# --- the rows


def run_xv6(start: Callable[[], Console], usertests: bool) -> dict[str, Mark]:
    """Boot to the prompt; with `usertests`, run `usertests -q` there too (its Mark is
    taken from when it was typed)."""
    console = start()
    try:
        marks = {"xv6-boot": console.wait_for(XV6_PROMPT)}
        if usertests:
            console.type(b"usertests -q\n")
            done = console.wait_for(XV6_PASSED)
            boot = marks["xv6-boot"]
            marks["xv6-usertests"] = Mark(
                None if done.instructions is None else done.instructions - boot.instructions,
                done.seconds - boot.seconds,
                done.cpu_seconds - boot.cpu_seconds,
            )
            if b"FAILED" in console.output:
                raise GuestError("usertests reported FAILED")
        return marks
    finally:
        console.close()


def run_linux(start: Callable[[], Console]) -> dict[str, Mark]:
    console = start()
    try:
        return {"linux-init": console.wait_for(LINUX_MARK)}
    finally:
        console.close()


def median_marks(runs: list[Mark]) -> dict:
    return {
        "instructions": runs[0].instructions,
        "seconds": statistics.median(m.seconds for m in runs),
        "cpu_seconds": statistics.median(m.cpu_seconds for m in runs),
        "runs": len(runs),
    }


def selected(only: str | None) -> list[str]:
    """The rows `--only guests[:NAME,...]` asks for (every row for plain "guests")."""
    _, _, names = (only or "guests").partition(":")
    if not names:
        return list(ROWS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in ROWS]
    if unknown:
        raise ValueError(f"no guest row {', '.join(unknown)} (rows: {', '.join(ROWS)})")
    return [row for row in ROWS if row in wanted]


def guests_bench(only: str | None, runs: int, json_path: str | None) -> int:
    """The guests section: print its table, write it to json_path; 0 if every row that
    could run did."""
    try:
        rows = selected(only)
    except ValueError as error:
        print(f"rvemu bench: {error}", file=sys.stderr)
        return 2
    have_qemu = shutil.which(QEMU) is not None
    if not have_qemu:
        print(f"rvemu bench: {QEMU} NOT INSTALLED: the guests' QEMU column is empty", flush=True)
    from . import Machine

    Machine(memory="1M").hart.warm_up()  # both compiled cores loaded before timing
    report: dict = {"guests": {}, "skipped": {}}
    failed = False
    with tempfile.TemporaryDirectory(prefix="rvemu-bench-guests-") as tmp:
        work = Path(tmp)
        plans = plan(rows, work)
        print(
            "\nreal guests: seconds to each marker, wall (CPU), rvemu and QEMU in turn; "
            "ratio = QEMU time / rvemu time"
        )
        print(f"{'guest':<15}{'instructions':>14}{'rvemu':>16}{'QEMU':>16}{'ratio':>8}")
        for names, why_not, go in plans:
            if why_not is not None:
                for name in names:
                    print(f"{name:<15}*** NOT MEASURED: {why_not} ***", flush=True)
                    report["skipped"][name] = why_not
                continue
            times = 1 if any(n in SLOW_ROWS for n in names) else max(1, runs)
            ours: dict[str, list[Mark]] = {n: [] for n in names}
            theirs: dict[str, list[Mark]] = {n: [] for n in names}
            try:
                for _ in range(times):  # interleaved: a change in load hits both columns
                    for name, mark in go("rvemu").items():
                        ours[name].append(mark)
                    if have_qemu:
                        for name, mark in go("qemu").items():
                            theirs[name].append(mark)
            except GuestError as error:
                failed = True
                for name in names:
                    print(f"{name:<15}*** FAILED: {str(error).splitlines()[0]} ***", flush=True)
                    report["skipped"][name] = f"failed: {error}"
                continue
            for name in names:
                row = {"rvemu": median_marks(ours[name])}
                if theirs[name]:
                    row["qemu"] = median_marks(theirs[name])
                    row["ratio"] = row["qemu"]["seconds"] / row["rvemu"]["seconds"]
                report["guests"][name] = row
                print_row(name, row)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if failed else 0


def plan(rows: list[str], work: Path) -> list[tuple[list[str], str | None, Callable]]:
    """(rows, why they cannot run or None, run(emulator) -> {row: Mark}) per guest."""
    plans: list[tuple[list[str], str | None, Callable]] = []
    xv6_rows = [r for r in rows if r.startswith("xv6")]
    if xv6_rows:
        folder = xv6_folder()
        if folder is None:
            where = "$RVEMU_XV6 or /opt/xv6-riscv (README.md, xv6-riscv)"
            plans.append((xv6_rows, f"no xv6 kernel and fs.img in {where}", None))
        else:
            xv6 = Xv6(folder, work)
            usertests = "xv6-usertests" in xv6_rows

            def go_xv6(emulator: str) -> dict[str, Mark]:
                start = xv6.rvemu if emulator == "rvemu" else xv6.qemu
                marks = run_xv6(start, usertests)
                return {k: v for k, v in marks.items() if k in xv6_rows}

            plans.append((xv6_rows, None, go_xv6))
    if "linux-init" in rows:
        folder, bios = linux_folder(), opensbi()
        if not (folder / "Image.gz").is_file() or not (folder / "busybox").is_file():
            plans.append((["linux-init"], f"no Image.gz and busybox in {folder}", None))
        elif bios is None:
            plans.append((["linux-init"], "OpenSBI not installed (apt install opensbi)", None))
        else:
            linux = Linux(folder, bios, work)

            def go_linux(emulator: str) -> dict[str, Mark]:
                return run_linux(linux.rvemu if emulator == "rvemu" else linux.qemu)

            plans.append((["linux-init"], None, go_linux))
    return plans


def print_row(name: str, row: dict) -> None:
    ours = row["rvemu"]
    n = ours["instructions"]
    rvemu = f"{ours['seconds']:.2f} ({ours['cpu_seconds']:.2f})"
    qemu = ratio = "-"
    if "qemu" in row:
        qemu = f"{row['qemu']['seconds']:.2f} ({row['qemu']['cpu_seconds']:.2f})"
        ratio = f"{row['ratio']:.2f}"
    print(f"{name:<15}{n:>14,}{rvemu:>16}{qemu:>16}{ratio:>8}", flush=True)
