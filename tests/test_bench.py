"""`rvemu bench` runs and reports every figure it promises (no timing is asserted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "build" / "unikernel"


@pytest.fixture(scope="module")
def images() -> Path:
    subprocess.run(
        ["make", "-s", "-C", str(REPO / "unikernel"), "all"], check=True, capture_output=True
    )
    return IMAGES


def bench_once(
    images: Path, tmp_path: Path, only: str, timeout: int
) -> tuple[subprocess.CompletedProcess, dict]:
    """`rvemu bench --only ONLY --runs 1` on the images, which must succeed: its output
    and its JSON report."""
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, "-m", "rvemu", "bench", "--only", only, "--runs", "1",
         "--images", str(images), "--json", str(out)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r, json.loads(out.read_text())


def test_bench_reports_mips_boot_latency_and_sizes(images: Path, tmp_path: Path) -> None:
    r, report = bench_once(images, tmp_path, "crc32", timeout=600)
    (row,) = report["benchmarks"]
    assert row["name"] == "bench-crc32" and row["instructions"] > 100_000_000
    assert row["rvemu_mips"] > 0 and row["rvemu_cold_mips"] > 0
    assert row["tier2"]["regions"] > 0  # the cold run compiled its regions itself
    if "qemu_mips" in row:
        assert row["qemu_mips"] > 0 and set(report["geomean_ratio"]) == {"cold", "warm"}
    assert "bench-crc32" in r.stdout and "geomean" in r.stdout
    assert report["boot"]["main"]["instructions"] < report["boot"]["first_output"]["instructions"]
    assert report["boot"]["rvemu_process_first_output_ms"] > 0
    assert report["boot"]["rvemu_snapshot_boots_per_second"] > 0
    serve = report["boot"]["serve"]  # (rvemu serve's rows: rvemu/benchserve.py)
    assert serve["first_output_ms"] > 0 and serve["machines_per_second"] > 0
    assert serve["memory"]["paused_bytes"] > 0 and "request to first output" in r.stdout
    sizes = {s["image"]: s for s in report["sizes"]}
    assert sizes["hello"]["file"] == (images / "hello.elf").stat().st_size


def test_bench_without_images_is_a_one_line_error(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "rvemu", "bench", "--images", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "make apps" in r.stderr


def test_sv39_variant_runs_main_in_s_mode_with_paging(images: Path, tmp_path: Path) -> None:
    """make apps-sv39's images: same output, but main ran in S-mode under Sv39."""
    from rvemu import Machine

    out = tmp_path / "sv39"
    subprocess.run(
        ["make", "-s", "-C", str(REPO / "unikernel"), "APP=bench-crc32", f"OUT={out}",
         "EXTRA_CFLAGS=-DLIBOS_SV39"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    plain, paged = Machine(), Machine()
    plain.load(str(images / "bench-crc32.elf"))
    paged.load(str(out / "bench-crc32.elf"))
    assert plain.run().exit_code == 0 and paged.run().exit_code == 0
    assert paged.console == plain.console and b"crc" in paged.console
    assert paged.hart.priv == 1 and (int(paged.hart.csr[0x180]) >> 60) & 0xF == 8  # S, Sv39
    assert plain.hart.priv == 3 and int(plain.hart.csr[0x180]) == 0


def test_bench_real_program_rows_and_method(images: Path, tmp_path: Path) -> None:
    """bench-bytecode is a real-program row with its own geomean, not a compute row, and
    the table says how it was measured."""
    r, report = bench_once(images, tmp_path, "bytecode", timeout=900)
    assert report["benchmarks"] == []  # no compute row matches, and bytecode is not one
    (row,) = report["programs"]
    assert row["name"] == "bench-bytecode" and row["instructions"] > 100_000_000
    assert row["span"] == "to power-off" and "checksum 0x" in row["output"]
    assert row["rvemu_mips"] > 0 and row["rvemu_cold_mips"] > 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("method: CPU seconds of the guest's run alone")
    method = " ".join(" ".join(lines[:10]).split())
    for words in ("gdb stub", "watchpoint", "start-up and exit excluded", "rvemu cold", "warm"):
        assert words in method and words in report["method"]
    assert any(line.startswith("real programs:") for line in lines)
    assert any(line.startswith("bench-bytecode ") for line in lines)
    assert any(line.startswith("geomean (real)") for line in lines)
    if shutil.which("qemu-system-riscv64"):
        assert row["qemu_mips"] > 0 and set(report["programs_geomean_ratio"]) == {"cold", "warm"}


def test_riscv_tests_benchmark_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """riscv-tests' benchmarks are rows where installed, measured up to their first HTIF
    call (after their work, before their report); one loud line where not."""
    from rvemu import benchprograms

    programs = benchprograms.real_programs(IMAGES, "towers")
    if benchprograms.riscv_benchmarks_folder()[0] is None:
        assert "riscv-tests BENCHMARKS NOT FOUND" in capsys.readouterr().err
        pytest.skip("riscv-tests benchmarks not installed (see riscv-tests/README.md)")
    (towers,) = programs
    assert towers.htif and towers.path.name == "towers.riscv"
    row = benchprograms.measure(towers, 1, shutil.which("qemu-system-riscv64") is not None)
    assert "minstret = " in row["output"]  # its report, printed through HTIF by rvemu
    assert 1_000 < row["instructions"] < 10_000_000 and row["rvemu_mips"] > 0
    if "qemu_mips" in row:  # net of the stub's own cost, which was measured
        assert 0 < row["qemu_stub_cpu_seconds"] < min(row["qemu_cpu_seconds_all"])


@pytest.mark.skipif(shutil.which("qemu-system-riscv64") is None, reason="QEMU NOT INSTALLED")
def test_qemu_figure_leaves_start_up_out(images: Path) -> None:
    """hello runs 140 instructions: QEMU's figure for it must be a small part of its
    process's CPU time (start-up), which the old method subtracted only approximately."""
    from rvemu import bench, benchprograms

    hello = benchprograms.Program("hello", images / "hello.elf")
    guest = benchprograms.qemu_run(hello)
    assert guest["output"].replace(b"\r", b"") == b"Hello from the rvemu unikernel!\n"
    whole = bench.run_qemu(hello.path, 1)["cpu_seconds"]
    assert 0 < guest["cpu_seconds"] < whole / 3
