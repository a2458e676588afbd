"""Running riscv-tests style ELFs: each runs until it writes its `tohost` word."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator

# Instructions a test may run before it counts as failed. The slowest passing official
# test (rv64uziccid-v-ziccid) retires 86,800. A -v- test of a missing extension ends in a
# trap storm, each trap a trip through Python that retires 3 instructions (~0.6 M a
# second), so the limit is what bounds its time: about 2 s; at worst, one trip per
# instruction, about 8 s.
DEFAULT_LIMIT = 1_000_000


def has_tohost(path: str) -> bool:
    """Whether path is an image the loader accepts with a `tohost` symbol (the loader's
    checks first: a malformed file in a folder is skipped, not a crash)."""
    from .loader import LoadError, read_elf  # (here: `rvemu` starts without pyelftools)

    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return False
        return "tohost" in read_elf(path).symbols
    except (OSError, LoadError):
        return False


def collect(paths: list[str], pattern: str | None) -> list[str]:
    """Test ELFs named by `paths` (files, or folders searched one level deep)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            found += [os.path.join(path, n) for n in names if has_tohost(os.path.join(path, n))]
        elif os.path.exists(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    if pattern:
        found = [p for p in found if fnmatch.fnmatch(os.path.basename(p), pattern)]
    return found


def run_one(path: str, limit: int = DEFAULT_LIMIT, hot_threshold: int | None = None) -> dict:
    """Run one test ELF for at most `limit` instructions. `hot_threshold` overrides the
    machine's second-tier threshold (0: interpreter only, 1: compile every jump target)."""
    from . import Machine
    from .loader import LoadError

    try:
        machine = Machine(memory="128M")
        machine.load(path)
        if machine.tohost is None:
            return not_run(path, "no tohost symbol")
        if hot_threshold is not None:
            machine.hart.hot_threshold = hot_threshold
        result = machine.run(max_instructions=limit)
    except LoadError as e:
        return not_run(path, str(e))
    if result.reason == "tohost":
        passed = result.exit_code == 0
        detail = "" if passed else failure(result.exit_code)
    elif result.reason == "limit":
        passed = False
        detail = f"instruction limit: no tohost result after {limit} instructions"
        detail += f" (pc {machine.hart.pc & (1 << 64) - 1:#x})"
    else:
        passed, detail = False, f"stopped: {result.reason} (code {result.exit_code})"
    return {
        "path": path,
        "passed": passed,
        "detail": detail,
        "instructions": result.instructions,
        "seconds": result.seconds,
    }


def not_run(path: str, why: str) -> dict:
    return {"path": path, "passed": False, "detail": why, "instructions": 0, "seconds": 0.0}


def failure(code: int) -> str:
    """Why a test failed, from the code it wrote to tohost (value >> 1)."""
    tohost = (code << 1) | 1
    detail = f"test {code} failed (tohost {tohost:#x}"
    # riscv-test-env's codes for a trap no test expected: env/p writes the test number
    # or'ed with 1337, env/v's wtf() writes 841 (an exception that reached M-mode).
    if tohost & 1337 == 1337 or tohost == 841:
        detail += ": riscv-test-env's code for an unexpected trap"
    return detail + ")"


def run_tests(paths: list[str], jobs: int = 1, limit: int = DEFAULT_LIMIT) -> Iterator[dict]:
    """Results in the order of `paths`, each as soon as it and those before it are done."""
    if jobs <= 1 or len(paths) <= 1:
        yield from (run_one(p, limit) for p in paths)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(run_one, paths, [limit] * len(paths))
