"""`rvemu bench`: guest MIPS, boot latency, the http image's network figures (netbench.py)
and image sizes, side by side with QEMU.

Speeds are CPU time, so that another process on the machine does not skew them. QEMU's
MIPS divides the guest instruction count (from rvemu's run of the same image) by QEMU's
CPU time net of an empty run's (booting and powering off `hello`), each the least of
several runs: QEMU runs these images in 0.05-0.2 s, so its column is the roughest. rvemu's
are given twice: *cold*, a fresh process compiling every region (RVEMU_CODE_CACHE=0), as
QEMU compiles on every run; and *warm*, with the regions in the code cache, as a second
run of the same image finds them. Regions are compiled at once, the guest waiting
(RVEMU_BACKGROUND_COMPILE=0), so every CPU second is the measured process's. rvemu's
figures are the median of --runs runs.
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
    images = sorted(p for p in folder.glob("bench-*.elf") if not p.name.endswith(".sym.elf"))
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


COLD_RUN = """
import json, sys, time
from rvemu import Machine
m = Machine(memory="128M")
m.load(sys.argv[1])
m.run(0)
cpu = time.process_time()
result = m.run()
cpu = time.process_time() - cpu
t = m.hart.tier2
print(json.dumps([result.reason, result.instructions, cpu, t.regions, t.seconds]))
"""


def run_rvemu_cold(elf: Path, runs: int) -> dict:
    """Fresh processes that compile every region they need, none from the code cache."""
    env = {**os.environ, "RVEMU_CODE_CACHE": "0", "RVEMU_BACKGROUND_COMPILE": "0"}
    cpu, compile_seconds = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_RUN, str(elf)],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{elf.name}: cold run failed: {out.stderr.strip()[-500:]}")
        reason, _, seconds, regions, compiling = json.loads(out.stdout.splitlines()[-1])
        if reason != "poweroff":
            raise RuntimeError(f"{elf.name} did not power off on a cold run: {reason}")
        cpu.append(seconds)
        compile_seconds.append(compiling)
    return {
        "cpu_seconds": statistics.median(cpu),
        "regions": regions,
        "compile_seconds": statistics.median(compile_seconds),
    }


QEMU_CPU_RUNS = 5  # at least: QEMU runs these images in 0.05-0.2 s, near its start-up cost


def run_qemu(elf: Path, runs: int) -> dict:
    """QEMU's wall time and time to first output (medians), and its CPU time (user +
    system): the least of at least QEMU_CPU_RUNS runs, the one least disturbed."""
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
    images = find_images(folder, only)
    hello = folder / "hello.elf"
    if only == "http":  # the network figures alone
        from .netbench import net_bench

        report = {"runs": runs, "network": net_bench(folder, runs)}
        if json_path:
            with open(json_path, "w") as f:
                json.dump(report, f, indent=1)
        return 0 if report["network"] else 2
    if not images or not hello.exists():
        print(
            f"rvemu: no benchmark images in {folder} (build them with `make apps`)", file=sys.stderr
        )
        return 2
    have_qemu = shutil.which(QEMU) is not None
    if not have_qemu:
        print(f"rvemu bench: {QEMU} NOT INSTALLED: QEMU columns are empty", file=sys.stderr)

    from . import Machine

    Machine(memory="1M").hart.warm_up()  # load both compiled cores before timing anything
    report: dict = {"runs": runs, "benchmarks": [], "boot": {}, "sizes": image_sizes(folder)}
    empty = run_qemu(hello, runs)["cpu_seconds"] if have_qemu else None

    paged = {p.name: p for p in find_images(sv39, only)} if sv39 and sv39.is_dir() else {}
    if not paged:
        print(
            "rvemu bench: no Sv39 images (make apps-sv39): the Sv39 column is empty",
            file=sys.stderr,
        )
    print("guest MIPS by CPU time; rvemu cold = compiling every region, warm = code cache")
    print(
        f"{'benchmark':<14}{'instructions':>13}{'rvemu cold':>11}{'warm':>8}{'QEMU':>8}"
        f"{'cold/QEMU':>10}{'warm/QEMU':>10}{'Sv39 warm':>10}"
    )
    ratios: dict[str, list[float]] = {"cold": [], "warm": []}
    mips_all, mips_sv39 = [], []
    for elf in images:
        ours = run_rvemu(elf, runs)
        cold = run_rvemu_cold(elf, runs)
        n = ours["instructions"]
        mips = n / ours["cpu_seconds"] / 1e6
        cold_mips = n / cold["cpu_seconds"] / 1e6
        mips_all.append(mips)
        row = {
            "name": elf.stem,
            "instructions": n,
            "rvemu_seconds": ours["seconds"],
            "rvemu_cpu_seconds": ours["cpu_seconds"],
            "rvemu_mips": mips,
            "rvemu_cold_cpu_seconds": cold["cpu_seconds"],
            "rvemu_cold_mips": cold_mips,
            "tier2": {"regions": cold["regions"], "compile_seconds": cold["compile_seconds"]},
        }
        qemu_text = cold_ratio = warm_ratio = "-"
        if have_qemu:
            theirs = run_qemu(elf, runs)
            net = max(theirs["cpu_seconds"] - empty, 1e-3)  # (CPU time is counted in ms)
            row.update(qemu_cpu_seconds=theirs["cpu_seconds"], qemu_net_cpu_seconds=net)
            row["qemu_mips"] = n / net / 1e6
            row["ratio"] = mips / row["qemu_mips"]
            row["cold_ratio"] = cold_mips / row["qemu_mips"]
            ratios["warm"].append(row["ratio"])
            ratios["cold"].append(row["cold_ratio"])
            qemu_text = f"{row['qemu_mips']:.0f}"
            cold_ratio, warm_ratio = f"{row['cold_ratio']:.2f}", f"{row['ratio']:.2f}"
        sv39_text = "-"
        if elf.name in paged:  # the same work in S-mode with Sv39 paging on
            theirs = run_rvemu(paged[elf.name], runs)
            row["rvemu_sv39_mips"] = theirs["instructions"] / theirs["cpu_seconds"] / 1e6
            mips_sv39.append(row["rvemu_sv39_mips"])
            sv39_text = f"{row['rvemu_sv39_mips']:.0f}"
        report["benchmarks"].append(row)
        print(
            f"{elf.stem:<14}{n:>13}{cold_mips:>11.0f}{mips:>8.0f}{qemu_text:>8}"
            f"{cold_ratio:>10}{warm_ratio:>10}{sv39_text:>10}"
        )
    geo = statistics.geometric_mean(mips_all)
    report["rvemu_geomean_mips"] = geo
    line = f"{'geomean':<14}{'':>13}{'':>11}{geo:>8.0f}{'':>8}"
    if ratios["warm"]:
        report["geomean_ratio"] = {k: statistics.geometric_mean(v) for k, v in ratios.items()}
        line += f"{report['geomean_ratio']['cold']:>10.2f}{report['geomean_ratio']['warm']:>10.2f}"
    if len(mips_sv39) == len(mips_all):
        report["rvemu_sv39_geomean_mips"] = statistics.geometric_mean(mips_sv39)
        line += f"{report['rvemu_sv39_geomean_mips']:>10.0f}"
    print(line)

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
