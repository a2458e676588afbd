"""How `rvemu bench` times a program on rvemu and on QEMU, and its real-program rows.

Every figure is the CPU time of the guest's run alone, the median of several rounds; in
each round one rvemu cold run, one QEMU run and one rvemu warm run follow each other, so a
change in the machine's load touches all three columns alike.

- rvemu: `time.process_time()` around `Machine.run()` of a loaded machine. *Cold*: a fresh
  process with no code cache (RVEMU_CODE_CACHE=0), compiling every region it needs, as QEMU
  translates on every run. *Warm*: in the bench's own process, the regions in the code
  cache. Regions are compiled with the guest waiting (no background compile), so every
  CPU second is the measured process's.
- QEMU: started held at reset (`-S`) with its gdb stub on a socket. The bench reads QEMU's
  process CPU clock (all its threads) there, when start-up is over, sets a write watchpoint
  on the program's last store, continues, and reads the clock again when the watchpoint
  stops QEMU, less what resuming and stopping through the stub cost by themselves (a
  probe run stopped by a breakpoint at the entry: about 0.2 ms, which matters only for
  the shortest programs). Start-up and exit are not in the figure; translating guest code
  is, as compiling is in rvemu's cold column. (The old way, CPU time of a whole run less
  that of an empty one, each near QEMU's start-up cost, could be off by more than the
  figure.) Checked once against an N/2N difference: bench-crc32 built with 200 and 400
  rounds, QEMU 7.2, medians of 7 runs: 2146 and 2164 MIPS this way (without taking off the
  stub's 0.2 ms, under 0.4 % here), 2181 MIPS from the difference of the two programs'
  CPU times and instruction counts.

What a program's last store is: for the unikernel apps, the power-off write to the virt
board's sifive_test register; for riscv-tests' benchmarks, their first HTIF `tohost`
write, the system call that prints their report after the measured work. QEMU's virt board
has no HTIF; its `spike` machine has, but QEMU 7.2 does not serve HTIF system calls (it
logs "pk syscall proxy not supported" and the guest waits for `fromhost` forever), so on
QEMU they run on `-machine spike` up to that store and no further; rvemu's span is the
same (its figure is taken at the first HTIF output). MIPS divides rvemu's instruction count
for the span by each emulator's CPU seconds.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-riscv64"
SIFIVE_TEST = 0x100000  # the virt board's power-off register: the apps' last store

# riscv-tests' benchmarks/ programs that run on one RV64GC hart (the vec-* need V, the
# mt-* are written for several harts).
RISCV_BENCHMARKS = (
    "dhrystone", "median", "multiply", "qsort", "rsort", "spmv", "towers", "vvadd", "mm",
    "memcpy",
)  # fmt: skip
REAL_APPS = ("bench-bytecode",)  # our apps that are real-program rows, not compute rows

METHOD = (
    "method: CPU seconds of the guest's run alone, median of {runs} rounds; each round runs "
    "rvemu cold, QEMU and rvemu warm in turn. rvemu: process time around Machine.run (cold: "
    "a fresh process without the code cache, compiling every region; warm: regions from the "
    "code cache). QEMU{version}: held at reset by its gdb stub (-S), its process CPU clock "
    "read there and again when a write watchpoint stops it at the program's last store "
    "(power-off; riscv-tests: the first HTIF tohost write, on -machine spike), less the "
    "stub's own cost of resuming and stopping (a run stopped at the entry: {stub}): start-up "
    "and exit excluded, translation included. MIPS = rvemu's instruction count for that span "
    "/ CPU seconds."
)


@dataclass(frozen=True)
class Program:
    name: str
    path: Path
    htif: bool = False  # riscv-tests style: measured up to its first tohost write

    @property
    def span(self) -> str:
        return "to first HTIF call" if self.htif else "to power-off"


def qemu_version() -> str:
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    words = out.stdout.split()
    return words[3] if len(words) > 3 and words[2] == "version" else ""


def method_text(runs: int, programs: list[Program] = ()) -> str:
    """The method, with the stub's cost on each machine the programs run on (measured
    now, where QEMU is installed)."""
    version = qemu_version()
    costs = {}
    if version:
        for program in programs:
            costs.setdefault(qemu_machine(program), stub_cost(program))
    stub = ", ".join(f"{s * 1e3:.2f} ms on {m}" for m, s in costs.items()) or "-"
    return METHOD.format(runs=runs, version=f" {version}" if version else "", stub=stub)


def print_wrapped(text: str, width: int = 92) -> None:
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            print(line)
            line = "  "
        line += (" " if line.strip() else "") + word
    print(line)


# ---------------------------------------------------------------- finding the programs


def riscv_benchmarks_folder() -> tuple[Path | None, list[Path]]:
    """The installed riscv-tests benchmarks/ folder (beside its isa/ folder), and where
    it was looked for: $RVEMU_RISCV_TESTS/../benchmarks, riscv-tests/benchmarks in this
    repository, /opt/riscv-tests/benchmarks."""
    looked = []
    if os.environ.get("RVEMU_RISCV_TESTS"):
        looked.append(Path(os.environ["RVEMU_RISCV_TESTS"]).resolve().parent / "benchmarks")
    looked.append(Path(__file__).resolve().parent.parent / "riscv-tests" / "benchmarks")
    looked.append(Path("/opt/riscv-tests/benchmarks"))
    for folder in looked:
        if any((folder / f"{name}.riscv").is_file() for name in RISCV_BENCHMARKS):
            return folder, looked
    return None, looked


def real_programs(images: Path, only: str | None) -> list[Program]:
    """riscv-tests' benchmarks where installed (one loud line where not), then our apps."""
    programs = []
    folder, looked = riscv_benchmarks_folder()
    if folder is None:
        print(
            "rvemu bench: riscv-tests BENCHMARKS NOT FOUND (looked in "
            + ", ".join(map(str, looked))
            + "): their rows are skipped; riscv-tests/README.md says how to build them",
            file=sys.stderr,
        )
    else:
        missing = [n for n in RISCV_BENCHMARKS if not (folder / f"{n}.riscv").is_file()]
        if missing:
            print(
                f"rvemu bench: {folder} lacks {', '.join(missing)}: those rows are skipped",
                file=sys.stderr,
            )
        programs += [
            Program(n, folder / f"{n}.riscv", htif=True)
            for n in RISCV_BENCHMARKS
            if n not in missing
        ]
    programs += [
        Program(a, images / f"{a}.elf") for a in REAL_APPS if (images / f"{a}.elf").exists()
    ]
    return [p for p in programs if not only or only in p.name]


# ---------------------------------------------------------------- rvemu


def _check(program: Program, reason: str, code: int | None) -> None:
    want = "tohost" if program.htif else "poweroff"
    if reason != want or code != 0:
        raise RuntimeError(f"{program.name} did not end cleanly on rvemu: {reason} (code {code})")


def rvemu_run(program: Program) -> dict:
    """One warm run in this process: CPU seconds and instructions to the end of the span."""
    from . import Machine

    machine = Machine(memory="128M")
    machine.hart.tier2.background = False
    machine.load(str(program.path))
    end: list[tuple[float, int]] = []
    if program.htif:
        machine.on_console(lambda _: end or end.append((time.process_time(), machine.hart.instret)))
    start = time.process_time()
    result = machine.run()
    stop = time.process_time()
    _check(program, result.reason, result.exit_code)
    tier2 = machine.hart.tier2
    seconds, count = (end[0][0] - start, end[0][1]) if end else (stop - start, result.instructions)
    return {
        "cpu_seconds": seconds,
        "instructions": count,
        "output": machine.console,
        "regions": tier2.regions,
        "compile_seconds": tier2.seconds,
    }


COLD_RUN = """
import json, sys, time
from rvemu import Machine
m = Machine(memory="128M")
m.load(sys.argv[1])
m.run(0)
m.hart.tier2.load_compiler()  # (start-up, as QEMU's before its clock starts)
end = []
if sys.argv[2] == "htif":
    m.on_console(lambda _: end or end.append((time.process_time(), m.hart.instret)))
cpu = time.process_time()
result = m.run()
stop = time.process_time()
cpu, count = (end[0][0] - cpu, end[0][1]) if end else (stop - cpu, result.instructions)
t = m.hart.tier2
print(json.dumps([result.reason, result.exit_code, count, cpu, t.regions, t.seconds]))
"""


def rvemu_cold_run(program: Program) -> dict:
    """One run in a fresh process that compiles every region it needs (no code cache)."""
    env = {**os.environ, "RVEMU_CODE_CACHE": "0", "RVEMU_BACKGROUND_COMPILE": "0"}
    kind = "htif" if program.htif else "poweroff"
    out = subprocess.run(
        [sys.executable, "-c", COLD_RUN, str(program.path), kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{program.name}: cold run failed: {out.stderr.strip()[-500:]}")
    reason, code, count, seconds, regions, compiling = json.loads(out.stdout.splitlines()[-1])
    _check(program, reason, code)
    return {
        "cpu_seconds": seconds,
        "instructions": count,
        "regions": regions,
        "compile_seconds": compiling,
    }


# ---------------------------------------------------------------- QEMU


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) of another process so far, to the
    nanosecond: its CPU-time clock (clock_getcpuclockid's id), else /proc in ticks."""
    try:
        return time.clock_gettime((~pid << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, SCHED)
    except OSError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GdbRemote:
    """The few packets of GDB's remote protocol the bench needs, over a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(b"$%s#%02x" % (data, sum(data) & 0xFF))

    def receive(self, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        while True:
            start = self.buffer.find(b"$")
            end = self.buffer.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buffer) >= end + 3:
                packet, self.buffer = self.buffer[start + 1 : end], self.buffer[end + 3 :]
                self.sock.sendall(b"+")
                return packet
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("QEMU closed its gdb connection")
            self.buffer += chunk

    def command(self, data: bytes, timeout: float = 30) -> bytes:
        self.send(data)
        return self.receive(timeout)


def tohost_address(path: Path) -> int:
    from .loader import read_elf

    return read_elf(str(path)).symbols["tohost"]


def qemu_machine(program: Program) -> str:
    return "spike" if program.htif else "virt"


def qemu_run(program: Program, timeout: float = 600, probe: bool = False) -> dict:
    """One QEMU run: CPU seconds from reset to the program's last store (see the module's
    docstring), and what it printed to then. A probe stops at the program's entry instead
    (a breakpoint there; only the boot ROM's few instructions run): what resuming and
    stopping through the stub cost by themselves."""
    from .loader import read_elf

    machine = qemu_machine(program)
    if probe:
        stop_packet, expect = b"Z0,%x,4" % read_elf(str(program.path)).entry, b"T05"
    elif program.htif:
        stop_packet, expect = b"Z2,%x,8" % tohost_address(program.path), b"watch"
    else:
        stop_packet, expect = b"Z2,%x,4" % SIFIVE_TEST, b"watch"
    with tempfile.TemporaryDirectory(prefix="rvemu-bench-") as tmp:
        stub = os.path.join(tmp, "gdb")
        out_path = os.path.join(tmp, "console")
        with open(out_path, "wb") as out, open(os.path.join(tmp, "stderr"), "w+b") as err:
            proc = subprocess.Popen(
                [QEMU, "-machine", machine, "-bios", "none", "-m", "128M", "-nographic",
                 "-monitor", "none", "-S", "-gdb", f"unix:{stub},server=on,wait=off",
                 "-kernel", str(program.path)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while not os.path.exists(stub):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err.seek(0)
                        why = err.read().decode(errors="replace").strip()[-300:]
                        raise RuntimeError(f"{program.name}: QEMU did not start: {why}")
                    time.sleep(0.002)
                with socket.socket(socket.AF_UNIX) as sock:
                    while sock.connect_ex(stub) != 0:  # (bound, but maybe not listening yet)
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError(f"{program.name}: QEMU's gdb stub never answered")
                        time.sleep(0.002)
                    gdb = GdbRemote(sock)
                    gdb.command(b"?")  # answered from the main loop: start-up is over
                    if gdb.command(stop_packet) != b"OK":
                        raise RuntimeError(f"{program.name}: QEMU refused {stop_packet!r}")
                    start = process_cpu_seconds(proc.pid)
                    gdb.send(b"c")
                    stop = gdb.receive(timeout)
                    seconds = process_cpu_seconds(proc.pid) - start
                if expect not in stop:
                    raise RuntimeError(
                        f"{program.name}: QEMU stopped with {stop!r}, not at the end"
                    )
            finally:
                proc.kill()
                proc.wait()
        output = Path(out_path).read_bytes()
    return {"cpu_seconds": seconds, "output": output}


# ---------------------------------------------------------------- one row


STUB_PROBES = 7
_stub_costs: dict[str, float] = {}


def stub_cost(program: Program) -> float:
    """CPU seconds QEMU spends resuming and stopping through its gdb stub on this
    program's machine (the median of STUB_PROBES probes, measured once per machine)."""
    machine = qemu_machine(program)
    if machine not in _stub_costs:
        probes = [qemu_run(program, probe=True)["cpu_seconds"] for _ in range(STUB_PROBES)]
        _stub_costs[machine] = statistics.median(probes)
    return _stub_costs[machine]


def measure(program: Program, runs: int, qemu: bool) -> dict:
    """A row: rvemu warm (a first run fills the code cache), then `runs` rounds of rvemu
    cold, QEMU and rvemu warm; medians of each. QEMU's figure is net of the stub's own
    cost (stub_cost)."""
    first = rvemu_run(program)
    cost = stub_cost(program) if qemu else 0.0
    cold, warm, theirs = [], [], []
    for _ in range(runs):
        cold.append(rvemu_cold_run(program))
        if qemu:
            theirs.append(qemu_run(program))
        warm.append(rvemu_run(program))
    n = first["instructions"]
    for run in cold + warm:
        if program.htif:  # (a few instructions format mcycle before the first call)
            if abs(run["instructions"] - n) > 1000:
                raise RuntimeError(f"{program.name}: {run['instructions']} instructions, not {n}")
        elif run["instructions"] != n:
            raise RuntimeError(f"{program.name}: {run['instructions']} instructions, not {n}")
    if theirs and not program.htif:
        ours = first["output"].replace(b"\r", b"")
        if theirs[0]["output"].replace(b"\r", b"") != ours:
            raise RuntimeError(
                f"{program.name}: QEMU printed {theirs[0]['output']!r}, not {ours!r}"
            )
    row = {
        "name": program.name,
        "path": str(program.path),
        "span": program.span,
        "instructions": n,
        "rvemu_cpu_seconds": statistics.median(r["cpu_seconds"] for r in warm),
        "rvemu_cold_cpu_seconds": statistics.median(r["cpu_seconds"] for r in cold),
        "tier2": {
            "regions": cold[-1]["regions"],
            "compile_seconds": statistics.median(r["compile_seconds"] for r in cold),
        },
        "output": first["output"].decode(errors="replace"),
    }
    row["rvemu_mips"] = n / row["rvemu_cpu_seconds"] / 1e6
    row["rvemu_cold_mips"] = n / row["rvemu_cold_cpu_seconds"] / 1e6
    if theirs:
        row["qemu_stub_cpu_seconds"] = cost
        row["qemu_cpu_seconds_all"] = [r["cpu_seconds"] for r in theirs]
        net = statistics.median(r["cpu_seconds"] for r in theirs) - cost
        if net <= 0:
            raise RuntimeError(f"{program.name}: QEMU's run cost no more than its stub's")
        row["qemu_cpu_seconds"] = net
        row["qemu_mips"] = n / row["qemu_cpu_seconds"] / 1e6
        row["ratio"] = row["rvemu_mips"] / row["qemu_mips"]
        row["cold_ratio"] = row["rvemu_cold_mips"] / row["qemu_mips"]
    return row


HEADER = (
    f"{'benchmark':<15}{'instructions':>13}{'rvemu cold':>11}{'warm':>8}{'QEMU':>8}"
    f"{'cold/QEMU':>10}{'warm/QEMU':>10}"
)


def _line(label: str, instructions: str, figures: dict, missing: str) -> str:
    """A line of the table under HEADER; `missing` stands for a figure not measured."""
    qemu = f"{figures['qemu_mips']:.0f}" if "qemu_mips" in figures else missing
    cold = f"{figures['cold_ratio']:.2f}" if "cold_ratio" in figures else missing
    warm = f"{figures['ratio']:.2f}" if "ratio" in figures else missing
    return (
        f"{label:<15}{instructions:>13}{figures['rvemu_cold_mips']:>11.0f}"
        f"{figures['rvemu_mips']:>8.0f}{qemu:>8}{cold:>10}{warm:>10}"
    )


def row_text(row: dict) -> str:
    return _line(row["name"], str(row["instructions"]), row, "-")


def geomeans(rows: list[dict]) -> dict:
    """Geometric means of the rows' MIPS and, where every row has QEMU's, of the ratios."""
    if not rows:
        return {}
    geo = {
        "rvemu_cold_mips": statistics.geometric_mean(r["rvemu_cold_mips"] for r in rows),
        "rvemu_mips": statistics.geometric_mean(r["rvemu_mips"] for r in rows),
    }
    if all("qemu_mips" in r for r in rows):
        geo["qemu_mips"] = statistics.geometric_mean(r["qemu_mips"] for r in rows)
        geo["cold_ratio"] = statistics.geometric_mean(r["cold_ratio"] for r in rows)
        geo["ratio"] = statistics.geometric_mean(r["ratio"] for r in rows)
    return geo


def geomean_text(geo: dict, label: str = "geomean") -> str:
    return _line(label, "", geo, "")


def bench_programs(programs: list[Program], runs: int, qemu: bool) -> dict:
    """The real-program rows (real_programs: riscv-tests' benchmarks, bench-bytecode) and
    their geomean, printed as their own table; returned for the JSON report."""
    if not programs:
        return {"rows": []}
    print("\nreal programs: guest MIPS by CPU time (riscv-tests' benchmarks up to their first")
    print("HTIF call, the report after their work; the apps to power-off)")
    print(HEADER)
    rows = []
    for program in programs:
        row = measure(program, runs, qemu)
        rows.append(row)
        print(row_text(row), flush=True)
    geo = geomeans(rows)
    print(geomean_text(geo, "geomean (real)"))
    return {"rows": rows, "geomean": geo}
