"""The official riscv-tests suite (RV64GC families), one pytest case per ELF, when present.

Looked up in $RVEMU_RISCV_TESTS, then riscv-tests/isa, then /opt/riscv-tests/isa
(riscv-tests/README.md says how to build it). Where none exists, one loud skip says so.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from rvemu.testrunner import run_one

FAMILIES = ["rv64ui", "rv64um", "rv64ua", "rv64uc", "rv64uf", "rv64ud", "rv64mi", "rv64si"]
REPO = Path(__file__).resolve().parent.parent


def suite_dir() -> Path | None:
    for candidate in (
        os.environ.get("RVEMU_RISCV_TESTS"),
        REPO / "riscv-tests" / "isa",
        "/opt/riscv-tests/isa",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def suite_elfs() -> list[Path]:
    folder = suite_dir()
    if folder is None:
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.suffix
        and any(fnmatch.fnmatch(p.name, f"{fam}-[pv]-*") for fam in FAMILIES)
    )


ELFS = suite_elfs()


@pytest.mark.skipif(
    not ELFS,
    reason="OFFICIAL riscv-tests SUITE NOT FOUND: set RVEMU_RISCV_TESTS or install it under "
    "/opt/riscv-tests/isa (see riscv-tests/README.md); its tests were NOT run",
)
@pytest.mark.parametrize("elf", ELFS or [None], ids=[p.name for p in ELFS] or ["absent"])
def test_official(elf: Path) -> None:
    result = run_one(str(elf), max_instructions=20_000_000)
    assert result["passed"], f"{elf.name}: {result['detail']}"


def test_suite_is_complete_when_present() -> None:
    """Every family must be there when the suite is: a half-built suite fails loudly."""
    if not ELFS:
        pytest.skip("OFFICIAL riscv-tests SUITE NOT FOUND (see riscv-tests/README.md)")
    for fam in FAMILIES:
        assert any(p.name.startswith(fam + "-p-") for p in ELFS), f"no {fam}-p-* tests"
