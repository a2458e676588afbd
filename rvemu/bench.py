"""`rvemu bench`: guest MIPS, boot latency, the http image's network figures (netbench.py)
and image sizes, side by side with QEMU.

Speeds are CPU time, so that another process on the machine does not skew them: the CPU
time of the guest's run alone, on rvemu *cold* (a fresh process compiling every region, as
QEMU translates on every run) and *warm* (regions from the code cache), and on QEMU with
its start-up and exit left out (held at reset by its gdb stub, stopped by a watchpoint at
the program's last store). benchprograms.py says how, runs the rows (rvemu and QEMU
interleaved, medians of --runs rounds) and has the real-program rows: riscv-tests'
benchmarks and bench-bytecode, with their own geomean.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from elftools.elf.elffile import ELFFile

QEMU = "qemu-system-riscv64"
QEMU_ARGS = ["-machine", "virt", "-bios", "none", "-m", "128M", "-nographic", "-monitor", "none"]


def find_images(folder: Path, only: str | None) -> list[Path]:
    """The compute benchmarks (bench-*.elf, less the apps that are real-program rows)."""
    from .benchprograms import REAL_APPS

    images = sorted(
        p
        for p in folder.glob("bench-*.elf")
        if not p.name.endswith(".sym.elf") and p.stem not in REAL_APPS
    )
    if only:
        images = [p for p in images if only in p.stem]
    return images


def run_rvemu(elf: Path, runs: int) -> dict:
    """Warm runs in this process: one to fill the code cache, then `runs` timed ones."""
    from . import Machine

    times, cpu, marks, count, output, compiled = [], [], [], 0, b"", {}
    for _ in range(runs + 1):
        machine = Machine(memory="128M")
        machine.hart.tier2.background = False
        machine.load(str(elf))
        start = time.process_time()
        result = machine.run()
        cpu.append(time.process_time() - start)
        if result.reason != "poweroff" or result.exit_code != 0:
            raise RuntimeError(f"{elf.name} did not power off cleanly on rvemu: {result}")
        times.append(result.seconds)
        marks.append(machine.marks)
        count, output = result.instructions, machine.console
        tier2 = machine.hart.tier2  # (the same every run: the guest is deterministic)
        compiled = {"regions": tier2.regions, "compile_seconds": tier2.seconds}
    return {
        "instructions": count,
        "seconds": statistics.median(times[1:]),
        "cpu_seconds": statistics.median(cpu[1:]),
        "marks": marks[1:],
        "output": output,
        "tier2": compiled,
    }


QEMU_CPU_RUNS = 5  # at least: QEMU runs these images in 0.05-0.2 s, near its start-up cost


def run_qemu(elf: Path, runs: int) -> dict:
    """QEMU's wall time and time to first output (medians) from process start, and its
    CPU time (user + system) for the whole process, start-up included: the least of at
    least QEMU_CPU_RUNS runs. (MIPS come from benchprograms.qemu_run, which leaves
    start-up and exit out.)"""
    times, first_output, cpu = [], [], []
    for _ in range(max(runs, QEMU_CPU_RUNS)):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [QEMU, *QEMU_ARGS, "-kernel", str(elf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        proc.stdout.read(1)
        first_output.append(time.perf_counter() - start)
        proc.stdout.read()
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # (reaped here, for its resource usage)
        times.append(time.perf_counter() - start)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return {
        "seconds": statistics.median(times),
        "first_output": statistics.median(first_output),
        "cpu_seconds": min(cpu),
    }


def rvemu_process_first_output(elf: Path, runs: int) -> float:
    """Seconds from starting `python -m rvemu boot` to its first console byte (warm cache)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "rvemu", "boot", str(elf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        proc.stdout.read(1)
        times.append(time.perf_counter() - start)
        proc.stdout.read()
        proc.wait(timeout=600)
    return statistics.median(times)


def boots_from_snapshot(elf: Path, seconds: float = 2.0) -> float:
    """Boots per second of `elf` to power-off in this process, each restored from a
    snapshot taken when it reached main (Machine.restore, then run)."""
    from . import Machine

    machine = Machine(memory="128M")
    machine.load(str(elf))
    machine.stop_at.add("main")
    if machine.run().reason != "mark":
        raise RuntimeError(f"{elf.name} never reached main")
    machine.stop_at.clear()
    snap = machine.snapshot()
    boots, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        machine.restore(snap)
        result = machine.run()
        if result.reason != "poweroff":
            raise RuntimeError(f"{elf.name} did not power off after a restore: {result}")
        boots += 1
    return boots / (time.perf_counter() - start)


def image_sizes(folder: Path) -> list[dict]:
    rows = []
    for elf in sorted(folder.glob("*.elf")):
        if elf.name.endswith(".sym.elf"):
            continue
        text = data = bss = 0
        with open(elf, "rb") as f:
            for section in ELFFile(f).iter_sections():
                flags, size = section["sh_flags"], section["sh_size"]
                if not flags & 0x2:  # SHF_ALLOC
                    continue
                if section["sh_type"] == "SHT_NOBITS":
                    bss += size
                elif flags & 0x4:  # SHF_EXECINSTR
                    text += size
                else:
                    data += size
        rows.append(
            {"image": elf.stem, "file": elf.stat().st_size, "text": text, "data": data, "bss": bss}
        )
    return rows


def bench(
    folder: Path, only: str | None, runs: int, json_path: str | None, sv39: Path | None = None
) -> int:
    if only is not None and only.startswith("guests"):  # xv6 and Linux (benchguests.py)
        from .benchguests import guests_bench

        return guests_bench(only, runs, json_path)
    images = find_images(folder, only)
    hello = folder / "hello.elf"
    if only == "http":  # the network figures alone
        from .netbench import net_bench

        report = {"runs": runs, "network": net_bench(folder, runs)}
        if json_path:
            with open(json_path, "w") as f:
                json.dump(report, f, indent=1)
        return 0 if report["network"] else 2
    if not find_images(folder, None) or not hello.exists():
        print(
            f"rvemu: no benchmark images in {folder} (build them with `make apps`)", file=sys.stderr
        )
        return 2
    have_qemu = shutil.which(QEMU) is not None
    if not have_qemu:
        print(f"rvemu bench: {QEMU} NOT INSTALLED: QEMU columns are empty", file=sys.stderr)

    from . import Machine
    from .benchprograms import (
        HEADER,
        Program,
        bench_programs,
        geomean_text,
        geomeans,
        measure,
        method_text,
        print_wrapped,
        real_programs,
        row_text,
    )

    Machine(memory="1M").hart.warm_up()  # load both compiled cores before timing anything
    report: dict = {"runs": runs, "benchmarks": [], "boot": {}, "sizes": image_sizes(folder)}
    programs = real_programs(folder, only)  # (one loud line if riscv-tests' are missing)
    report["method"] = method_text(runs, [Program(e.stem, e) for e in images] + programs)

    paged = {p.name: p for p in find_images(sv39, only)} if sv39 and sv39.is_dir() else {}
    if not paged and images:
        print(
            "rvemu bench: no Sv39 images (make apps-sv39): the Sv39 column is empty",
            file=sys.stderr,
        )
    print_wrapped(report["method"])
    if images:
        print("\ncompute: guest MIPS by CPU time; Sv39 warm = the same in S-mode under Sv39")
        print(f"{HEADER}{'Sv39 warm':>10}")
    rows, mips_sv39 = [], []
    for elf in images:
        row = measure(Program(elf.stem, elf), runs, have_qemu)
        del row["output"]
        sv39_text = "-"
        if elf.name in paged:  # the same work in S-mode with Sv39 paging on
            theirs = run_rvemu(paged[elf.name], runs)
            row["rvemu_sv39_mips"] = theirs["instructions"] / theirs["cpu_seconds"] / 1e6
            mips_sv39.append(row["rvemu_sv39_mips"])
            sv39_text = f"{row['rvemu_sv39_mips']:.0f}"
        rows.append(row)
        print(f"{row_text(row)}{sv39_text:>10}", flush=True)
    report["benchmarks"] = rows
    if rows:
        geo = geomeans(rows)
        report["rvemu_geomean_mips"] = geo["rvemu_mips"]
        line = geomean_text(geo)
        if "ratio" in geo:
            report["geomean_ratio"] = {"cold": geo["cold_ratio"], "warm": geo["ratio"]}
        if len(mips_sv39) == len(rows):
            report["rvemu_sv39_geomean_mips"] = statistics.geometric_mean(mips_sv39)
            line += f"{report['rvemu_sv39_geomean_mips']:>10.0f}"
        print(line)

    real = bench_programs(programs, runs, have_qemu)
    report["programs"] = real["rows"]
    if "ratio" in real.get("geomean", {}):
        geo = real["geomean"]
        report["programs_geomean_ratio"] = {"cold": geo["cold_ratio"], "warm": geo["ratio"]}

    ours = run_rvemu(hello, runs)
    boot = {}
    for mark in ("main", "first_output"):
        insns = [m[mark][0] for m in ours["marks"] if mark in m]
        secs = [m[mark][1] for m in ours["marks"] if mark in m]
        if insns:
            boot[mark] = {"instructions": insns[0], "rvemu_ms": statistics.median(secs) * 1e3}
    boot["rvemu_process_first_output_ms"] = rvemu_process_first_output(hello, runs) * 1e3
    boot["rvemu_snapshot_boots_per_second"] = boots_from_snapshot(hello)
    if have_qemu:
        q = run_qemu(hello, runs)
        boot["qemu_first_output_ms"] = q["first_output"] * 1e3
        boot["qemu_total_ms"] = q["seconds"] * 1e3
    report["boot"] = boot
    print("\nboot latency (hello)")
    for mark in ("main", "first_output"):
        if mark in boot:
            b = boot[mark]
            print(
                f"  reset -> {mark:<13} {b['instructions']:>7} instructions  "
                f"rvemu {b['rvemu_ms']:.3f} ms"
            )
    print(
        f"  process start to first output (CLI, cold path: `rvemu boot hello.elf`, warm "
        f"compile cache): {boot['rvemu_process_first_output_ms']:.1f} ms"
    )
    print(
        f"  rvemu in one process: {boot['rvemu_snapshot_boots_per_second']:.0f} boots/s to "
        "power-off, each restored from a snapshot taken at main"
    )
    if have_qemu:
        print(
            f"  QEMU: first output after {boot['qemu_first_output_ms']:.1f} ms, "
            f"power-off after {boot['qemu_total_ms']:.1f} ms (process start)"
        )
    from .benchserve import serve_bench  # request to first output, microVMs/s, memory

    boot["serve"] = serve_bench(folder, runs, have_qemu, boot.get("qemu_first_output_ms"))

    if only is None:
        from .netbench import net_bench

        report["network"] = net_bench(folder, runs)

    print(f"\n{'image':<14}{'file':>8}{'text':>8}{'data':>8}{'bss':>8}")
    for s in report["sizes"]:
        print(f"{s['image']:<14}{s['file']:>8}{s['text']:>8}{s['data']:>8}{s['bss']:>8}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    return 0
