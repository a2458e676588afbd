"""`rvemu bench`: guest MIPS, boot latency and image sizes, side by side with QEMU.

QEMU's MIPS divides the guest instruction count (from rvemu's run of the same image) by
QEMU's wall time net of its empty start (the median time to boot and power off `hello`).
Every figure is the median of --runs runs.
"""

from __future__ import annotations

import json
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
    from . import Machine

    times, marks, count, output, compiled = [], [], 0, b"", {}
    for _ in range(runs):
        machine = Machine(memory="128M")
        machine.load(str(elf))
        result = machine.run()
        if result.reason != "poweroff" or result.exit_code != 0:
            raise RuntimeError(f"{elf.name} did not power off cleanly on rvemu: {result}")
        times.append(result.seconds)
        marks.append(machine.marks)
        count, output = result.instructions, machine.console
        tier2 = machine.hart.tier2  # (the same every run: the guest is deterministic)
        compiled = {"regions": tier2.regions, "compile_seconds": tier2.seconds}
    return {
        "instructions": count,
        "seconds": statistics.median(times),
        "marks": marks,
        "output": output,
        "tier2": compiled,
    }


def run_qemu(elf: Path, runs: int) -> dict:
    times, first_output = [], []
    for _ in range(runs):
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
        proc.wait(timeout=600)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "first_output": statistics.median(first_output)}


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
    empty = run_qemu(hello, runs)["seconds"] if have_qemu else None

    paged = {p.name: p for p in find_images(sv39, only)} if sv39 and sv39.is_dir() else {}
    if not paged:
        print(
            "rvemu bench: no Sv39 images (make apps-sv39): the Sv39 column is empty",
            file=sys.stderr,
        )
    print(
        f"{'benchmark':<14}{'instructions':>14}{'rvemu MIPS':>12}{'QEMU MIPS':>12}"
        f"{'ratio':>8}{'rvemu Sv39':>12}"
    )
    mips_all, mips_sv39 = [], []
    for elf in images:
        ours = run_rvemu(elf, runs)
        n = ours["instructions"]
        mips = n / ours["seconds"] / 1e6
        mips_all.append(mips)
        row = {
            "name": elf.stem,
            "instructions": n,
            "rvemu_seconds": ours["seconds"],
            "rvemu_mips": mips,
            "tier2": ours["tier2"],  # regions compiled, and seconds spent compiling them
        }
        qemu_text = ratio_text = "-"
        if have_qemu:
            theirs = run_qemu(elf, runs)
            net = max(theirs["seconds"] - empty, 1e-6)
            row.update(
                qemu_seconds=theirs["seconds"], qemu_net_seconds=net, qemu_mips=n / net / 1e6
            )
            row["ratio"] = mips / row["qemu_mips"]
            qemu_text, ratio_text = f"{row['qemu_mips']:.0f}", f"{row['ratio']:.3f}"
        sv39_text = "-"
        if elf.name in paged:  # the same work in S-mode with Sv39 paging on
            theirs = run_rvemu(paged[elf.name], runs)
            row["rvemu_sv39_mips"] = theirs["instructions"] / theirs["seconds"] / 1e6
            mips_sv39.append(row["rvemu_sv39_mips"])
            sv39_text = f"{row['rvemu_sv39_mips']:.1f}"
        report["benchmarks"].append(row)
        print(f"{elf.stem:<14}{n:>14}{mips:>12.1f}{qemu_text:>12}{ratio_text:>8}{sv39_text:>12}")
    geo = statistics.geometric_mean(mips_all)
    report["rvemu_geomean_mips"] = geo
    geo_sv39 = ""
    if len(mips_sv39) == len(mips_all):
        report["rvemu_sv39_geomean_mips"] = statistics.geometric_mean(mips_sv39)
        geo_sv39 = f"{report['rvemu_sv39_geomean_mips']:>32.1f}"
    print(f"{'geomean':<14}{'':>14}{geo:>12.1f}{geo_sv39}")

    ours = run_rvemu(hello, runs)
    boot = {}
    for mark in ("main", "first_output"):
        insns = [m[mark][0] for m in ours["marks"] if mark in m]
        secs = [m[mark][1] for m in ours["marks"] if mark in m]
        if insns:
            boot[mark] = {"instructions": insns[0], "rvemu_ms": statistics.median(secs) * 1e3}
    boot["rvemu_process_first_output_ms"] = rvemu_process_first_output(hello, runs) * 1e3
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
        f"  rvemu process: first output after {boot['rvemu_process_first_output_ms']:.1f} ms "
        "(process start, warm compile cache)"
    )
    if have_qemu:
        print(
            f"  QEMU: first output after {boot['qemu_first_output_ms']:.1f} ms, "
            f"power-off after {boot['qemu_total_ms']:.1f} ms (process start)"
        )

    print(f"\n{'image':<14}{'file':>8}{'text':>8}{'data':>8}{'bss':>8}")
    for s in report["sizes"]:
        print(f"{s['image']:<14}{s['file']:>8}{s['text']:>8}{s['data']:>8}{s['bss']:>8}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    return 0
