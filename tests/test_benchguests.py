"""`rvemu bench --only guests` (rvemu/benchguests.py): real guests beside QEMU, and the
profile of where a run's host time goes (rvemu/profile.py). No speed is asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rvemu import benchguests


def test_xv6_boot_row_measures_both_emulators_to_the_prompt(tmp_path: Path) -> None:
    if benchguests.xv6_folder() is None:
        pytest.skip("*** no xv6 build ($RVEMU_XV6, /opt/xv6-riscv): guests bench NOT tested ***")
    out = tmp_path / "guests.json"
    env = {**os.environ, "RVEMU_BENCH_PROFILE": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "rvemu", "bench", "--only", "guests:xv6-boot", "--runs", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(out.read_text())
    assert list(report["guests"]) == ["xv6-boot"] and report["skipped"] == {}
    row = report["guests"]["xv6-boot"]
    # xv6 retires about 0.4 G instructions to its first prompt (README.md)
    assert 100_000_000 < row["rvemu"]["instructions"] < 2_000_000_000
    assert 0 < row["rvemu"]["cpu_seconds"] and 0 < row["rvemu"]["seconds"] < 600
    if shutil.which(benchguests.QEMU):
        assert row["qemu"]["seconds"] > 0
        assert row["ratio"] == pytest.approx(row["qemu"]["seconds"] / row["rvemu"]["seconds"])
    line = next(t for t in r.stdout.splitlines() if t.startswith("xv6-boot"))
    assert f"{row['rvemu']['instructions']:,}" in line
    # RVEMU_BENCH_PROFILE: the profile of the rvemu run, on stderr
    profile = r.stderr[r.stderr.index("where host time went") :]
    counts = {
        name.strip(): int(count.replace(",", ""))
        for name, _, count in (line.rpartition(" ") for line in profile.splitlines())
        if count.replace(",", "").isdigit()
    }
    assert counts["traps and interrupts taken"] >= counts["of which interrupts"] > 0
    assert counts["page walks: fetch"] > 0 and counts["CSR writes (each ends a stretch)"] > 0
    assert "interpreter (compiled core)" in profile and "exit to Python: device access" in profile


def test_absent_guests_are_each_skipped_with_one_loud_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(benchguests, "xv6_folder", lambda: None)
    monkeypatch.setenv("RVEMU_GUESTS", str(tmp_path))
    out = tmp_path / "guests.json"
    assert benchguests.guests_bench("guests", 1, str(out)) == 0
    lines = [t for t in capsys.readouterr().out.splitlines() if "NOT MEASURED" in t]
    assert [t.split()[0] for t in lines] == ["xv6-boot", "xv6-usertests", "linux-init"]
    assert str(tmp_path / "linux") in lines[2]
    report = json.loads(out.read_text())
    assert report["guests"] == {} and set(report["skipped"]) == set(benchguests.ROWS)


def test_rows_are_picked_by_name_and_an_unknown_one_is_a_one_line_error(
    capsys: pytest.CaptureFixture,
) -> None:
    assert benchguests.selected("guests") == list(benchguests.ROWS)
    assert benchguests.selected("guests:linux-init,xv6-boot") == ["xv6-boot", "linux-init"]
    assert benchguests.guests_bench("guests:xv6-bot", 1, None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "xv6-bot" in err and "xv6-boot" in err
