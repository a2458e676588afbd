"""Running riscv-tests style ELFs: each runs until it writes its `tohost` word."""

from __future__ import annotations

import fnmatch
import os
from concurrent.futures import ProcessPoolExecutor

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile


def has_tohost(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return False
            f.seek(0)
            symtab = ELFFile(f).get_section_by_name(".symtab")
            return symtab is not None and bool(symtab.get_symbol_by_name("tohost"))
    except (OSError, ELFError):
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


def run_one(path: str, max_instructions: int = 50_000_000) -> dict:
    from . import Machine
    from .loader import LoadError

    try:
        machine = Machine(memory="128M")
        machine.load(path)
        if machine.tohost is None:
            return {"path": path, "passed": False, "detail": "no tohost symbol", "instructions": 0}
        result = machine.run(max_instructions=max_instructions)
    except LoadError as e:
        return {"path": path, "passed": False, "detail": str(e), "instructions": 0}
    if result.reason == "tohost":
        passed = result.exit_code == 0
        detail = "" if passed else f"test {result.exit_code} failed"
    elif result.reason == "limit":
        passed, detail = False, f"instruction limit ({max_instructions}) reached"
    else:
        passed, detail = False, f"stopped: {result.reason} (code {result.exit_code})"
    return {
        "path": path,
        "passed": passed,
        "detail": detail,
        "instructions": result.instructions,
        "seconds": result.seconds,
    }


def run_tests(paths: list[str], jobs: int = 1, max_instructions: int = 50_000_000) -> list[dict]:
    if jobs <= 1 or len(paths) <= 1:
        return [run_one(p, max_instructions) for p in paths]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_one, paths, [max_instructions] * len(paths)))
