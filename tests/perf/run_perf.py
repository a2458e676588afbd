"""Guest MIPS of the perf kernels: paging on/off, floating point vs integer.

    cd /work/main && PYTHONPATH=. .venv/bin/python tests/perf/run_perf.py [--scale 1.0]

Builds tests/perf/{start.S,kernels.c} into build/tests/perf.elf, then for each (kernel, mode)
boots a fresh Machine, writes the guest's `config` and runs it to power-off through the
Python API; MIPS = RunResult.instructions / RunResult.seconds (wall clock), and the same over
the process's CPU time (steadier on a shared, loaded host). A warm-up run first keeps Numba
compilation out of the figures. Checksums of one kernel must agree across modes.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from guestbuild import build_files  # noqa: E402

from rvemu import Machine  # noqa: E402

KERNELS = {"int_mem": 0, "int_matmul": 1, "fp_matmul": 2, "fp_mix": 3, "int_mix": 4,
           "int_mem_big": 5}  # fmt: skip
MODES = {"M": 0, "S-bare": 1, "S-Sv39-2M": 2, "S-Sv39-4K": 3}
FRM = {"RNE": 0, "RTZ": 1}
# iterations giving roughly 20-40 M guest instructions each at scale 1
ITERATIONS = {"int_mem": 45, "int_mem_big": 6, "int_matmul": 120, "fp_matmul": 140, "fp_mix": 600,
              "int_mix": 600}  # fmt: skip


def build() -> Path:
    flags = ["-O2", "-fno-math-errno", "-Wl,--no-warn-rwx-segments"]
    return build_files("perf", [HERE / "start.S", HERE / "kernels.c"], flags)


def run_one(elf: Path, kernel: str, mode: str, iterations: int, frm: str = "RNE"):
    """One run on a fresh machine: (RunResult, checksum, CPU seconds of the run)."""
    m = Machine(memory="64M")
    m.load(str(elf))
    syms = m.image.symbols
    config = struct.pack("<4Q", KERNELS[kernel], MODES[mode], iterations, FRM[frm])
    m.write_phys(syms["config"], config)
    cpu = time.process_time()
    r = m.run(max_instructions=2_000_000_000)
    cpu = time.process_time() - cpu
    if r.reason != "poweroff":
        raise RuntimeError(f"{kernel}/{mode}: stopped with {r}")
    result = struct.unpack("<Q", m.read_phys(syms["result"], 8))[0]
    cause = struct.unpack("<Q", m.read_phys(syms["trap_cause"], 8))[0]
    want_cause = (1 << 64) - 1 if mode == "M" else 9  # M-mode powers off itself; S ecalls
    if cause != want_cause:
        raise RuntimeError(f"{kernel}/{mode}: trapped with mcause {cause}")
    return r, result, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the iteration counts")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs")
    args = ap.parse_args()
    elf = build()
    run_one(elf, "int_mix", "S-Sv39-4K", 1)  # warm-up: compile and load the core
    plan = [(k, mode, "RNE") for k in ("int_mem", "int_mem_big", "int_matmul") for mode in MODES]
    plan += [(k, "M", "RNE") for k in ("fp_matmul", "fp_mix", "int_mix")]
    plan += [(k, "M", "RTZ") for k in ("fp_matmul", "fp_mix")]
    plan += [("fp_matmul", "S-Sv39-4K", "RNE")]
    checks: dict[tuple[str, str], int] = {}
    print(
        f"{'kernel':12} {'mode':10} {'frm':4} {'instructions':>13} {'wall s':>7} {'MIPS':>6}"
        f" {'cpu s':>7} {'MIPS(cpu)':>9}"
    )
    for kernel, mode, frm in plan:
        n = max(1, round(ITERATIONS[kernel] * args.scale))
        best = None
        for _ in range(args.repeat):
            r, checksum, cpu = run_one(elf, kernel, mode, n, frm)
            if best is None or cpu < best[1]:
                best = (r, cpu)
        r, cpu = best
        prev = checks.setdefault((kernel, frm), checksum)
        ok = "" if prev == checksum else "  CHECKSUM DIFFERS"
        print(
            f"{kernel:12} {mode:10} {frm:4} {r.instructions:13,d} {r.seconds:7.3f}"
            f" {r.instructions / r.seconds / 1e6:6.1f} {cpu:7.3f}"
            f" {r.instructions / cpu / 1e6:9.1f}{ok}",
            flush=True,
        )


if __name__ == "__main__":
    main()
