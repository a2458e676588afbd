"""Mutated ELF images through the loader: every one must load or be refused with a
LoadError (the CLI prints it as one line); anything else is a crash.

`python tests/fuzz_elf.py N [SEED]` runs N mutants of hello.elf and prints the counts
(`make fuzz` runs 100,000); tests/test_loader.py runs a bounded campaign in `make test`.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

from rvemu import Machine
from rvemu.loader import LoadError

ROOT = Path(__file__).resolve().parent.parent
SEED_IMAGE = ROOT / "build" / "unikernel" / "hello.elf"
HEADERS = 64 + 56 * 4  # the ELF header and the first program headers


def mutant(src: bytes, rng: random.Random) -> bytes:
    """A copy of src truncated, or with a few bytes changed, mostly in its headers."""
    data = bytearray(src)
    if rng.random() < 0.1:
        return bytes(data[: rng.randrange(len(data))])
    for _ in range(rng.randrange(1, 6)):
        where = rng.random()
        if where < 0.5:
            pos = rng.randrange(HEADERS)
        elif where < 0.8:  # the section headers, at the end of the file
            pos = rng.randrange(max(0, len(data) - 64 * 20), len(data))
        else:
            pos = rng.randrange(len(data))
        if rng.random() < 0.7:
            data[pos] = rng.randrange(256)
        else:
            data[pos] = rng.choice([0x00, 0xFF, 0x7F, 0x80])
    return bytes(data)


def campaign(count: int, seed: int) -> tuple[Counter, dict[str, str]]:
    """Load `count` mutants; (outcome counts, a traceback per kind of crash)."""
    src = SEED_IMAGE.read_bytes()
    rng = random.Random(seed)
    machine = Machine(memory="16M")
    outcomes: Counter = Counter()
    crashes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mutant.elf")
        for _ in range(count):
            Path(path).write_bytes(mutant(src, rng))
            try:
                machine.load(path)
                outcomes["loaded"] += 1
            except LoadError as e:
                outcomes["refused"] += 1
                if "\n" in str(e):
                    outcomes["crashed"] += 1
                    crashes.setdefault("multi-line error", str(e))
            except Exception as e:  # noqa: BLE001 (any other exception is the finding)
                outcomes["crashed"] += 1
                crashes.setdefault(f"{type(e).__name__}: {e}"[:100], traceback.format_exc())
    return outcomes, crashes


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    outcomes, crashes = campaign(count, seed)
    print(f"{count} mutants of {SEED_IMAGE.name} (seed {seed}): {dict(outcomes)}")
    for kind, trace in crashes.items():
        print(f"--- {kind}\n{trace}")
    sys.exit(1 if crashes else 0)
