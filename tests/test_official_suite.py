"""The official riscv-tests suite, every rv64 family, one pytest case per ELF and tier.

Looked up in $RVEMU_RISCV_TESTS, then riscv-tests/isa, then /opt/riscv-tests/isa
(riscv-tests/README.md says how to build it). Each ELF runs twice: in the interpreter alone
(hot threshold 0) and with the second tier compiling every jump target it takes (threshold
1). Where no suite exists, test_suite_is_complete is the one loud skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rvemu.testrunner import DEFAULT_LIMIT, run_one

# (-p- tests, -v- tests) per family, as riscv-tests 34e6b6d builds them (riscv-tests/README.md)
FAMILIES = {
    "rv64ui": (54, 54),
    "rv64um": (13, 13),
    "rv64ua": (19, 19),
    "rv64uc": (1, 1),
    "rv64uf": (11, 11),
    "rv64ud": (12, 12),
    "rv64uzfh": (11, 11),
    "rv64uzba": (8, 8),
    "rv64uzbb": (24, 24),
    "rv64uzbc": (3, 3),
    "rv64uzbkb": (4, 4),
    "rv64uzbkx": (2, 2),
    "rv64uzbs": (8, 8),
    "rv64uziccid": (1, 1),
    "rv64mi": (17, 0),
    "rv64si": (7, 0),
    "rv64mzicbo": (1, 0),
    "rv64ssvnapot": (1, 0),
}
EXPECTED = sum(p + v for p, v in FAMILIES.values())  # 368
TIERS = {"interpreter": 0, "tier2": 1}
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


def family_and_env(name: str) -> tuple[str, str] | None:
    """('rv64ui', 'p') for 'rv64ui-p-add'; None for anything not of a listed family."""
    parts = name.split("-", 2)
    if len(parts) == 3 and parts[0] in FAMILIES and parts[1] in ("p", "v"):
        return parts[0], parts[1]
    return None


def suite_elfs() -> list[Path]:
    folder = suite_dir()
    if folder is None:
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.suffix and family_and_env(p.name)
    )


ELFS = suite_elfs()


@pytest.mark.parametrize("found", [len(ELFS)], ids=[f"{len(ELFS)}-of-{EXPECTED}"])
def test_suite_is_complete(found: int) -> None:
    """A partly built suite must not pass as the whole one."""
    if not ELFS:
        pytest.skip(
            "OFFICIAL riscv-tests SUITE NOT FOUND: set RVEMU_RISCV_TESTS or install it under "
            "/opt/riscv-tests/isa (see riscv-tests/README.md); its tests were NOT run"
        )
    counts = {(fam, env): 0 for fam in FAMILIES for env in ("p", "v")}
    for elf in ELFS:
        counts[family_and_env(elf.name)] += 1
    short = [
        f"{fam}-{env}: {counts[fam, env]} of {want}"
        for fam, (p, v) in FAMILIES.items()
        for env, want in (("p", p), ("v", v))
        if counts[fam, env] != want
    ]
    assert not short and found == EXPECTED, (
        f"{found} of {EXPECTED} official tests found in {suite_dir()}; " + ", ".join(short)
    )


if ELFS:  # without the suite, nothing more is collected: one skip says it all

    @pytest.mark.parametrize("tier", TIERS)
    @pytest.mark.parametrize("elf", ELFS, ids=[p.name for p in ELFS])
    def test_official(elf: Path, tier: str) -> None:
        result = run_one(str(elf), limit=DEFAULT_LIMIT, hot_threshold=TIERS[tier])
        dump = elf.with_name(elf.name + ".dump")
        where = f"; the test cases are in {dump}" if dump.exists() else ""
        assert result["passed"], f"{elf.name} ({tier}): {result['detail']}{where}"
