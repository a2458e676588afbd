"""Compiled regions outlive the process (the code cache on disk) and are compiled in a
worker process while the guest runs on (background compilation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from test_tier2 import assert_same_state, loop_program
from toolchain import build_elf

from rvemu import Machine
from rvemu.tier2 import compiler

RUN_AND_REPORT = """
import json, sys
from rvemu import Machine
from rvemu.tier2 import compiler
if sys.argv[2:] == ["by-page"]:  # regions must come by their page key: never found again
    compiler.find_region = None
m = Machine(memory="16M")
m.hart.hot_threshold = 1
m.load(sys.argv[1])
result = m.run(max_instructions=1_000_000)
t = m.hart.tier2
print(json.dumps([result.reason, t.regions, t.cached, t.failed]))
"""


def test_a_second_process_loads_what_the_first_compiled():
    # A program no other test runs (its seed gives new code), so the cache starts cold.
    seed = time.time_ns() % 1_000_000
    elf = build_elf("code-cache", loop_program(seed, 60, memory=True, iterations=3))
    runs = []
    for how in ("", "", "by-page"):
        out = subprocess.run(
            [sys.executable, "-c", RUN_AND_REPORT, str(elf), how],
            capture_output=True,
            text=True,
            timeout=300,
            # (the cache on even where the suite runs with RVEMU_CODE_CACHE=0)
            env={**os.environ, "RVEMU_BACKGROUND_COMPILE": "0", "RVEMU_CODE_CACHE": "1"},
        )
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    (reason1, regions1, cached1, failed1), (reason2, regions2, cached2, failed2) = runs[:2]
    assert reason1 == reason2 == "poweroff"
    assert regions1 > 0 and cached1 == 0 and failed1 == 0  # compiled, none from the cache
    assert regions2 == regions1 and cached2 == regions2  # every region from the cache
    # ... by the bytes of its page and its entry, without finding the region again
    assert runs[2] == ["poweroff", regions1, regions1, 0]


def test_background_compilation_ends_as_the_interpreter():
    seed = time.time_ns() % 1_000_000 + 1_000_000
    program = loop_program(seed, 200, memory=True, iterations=5000)
    elf = str(build_elf("code-background", program))
    background = Machine(memory="16M")
    background.hart.hot_threshold = 1
    background.hart.tier2.background = True
    interpreted = Machine(memory="16M")
    interpreted.hart.hot_threshold = 0
    for m in (background, interpreted):
        m.load(elf)
    # Run in slices, giving the worker time, until the regions it compiled are installed.
    deadline = time.monotonic() + 120
    while background.hart.tier2.regions == 0 and time.monotonic() < deadline:
        assert background.run(max_instructions=1000).reason == "limit"
        time.sleep(0.01)
    assert background.hart.tier2.regions > 0, "the worker installed nothing"
    assert background.hart.tier2.cached == 0  # new code: compiled by the worker
    assert compiler._worker is not None and compiler._worker.alive
    for m in (background, interpreted):
        assert m.run(max_instructions=5_000_000).reason == "poweroff"
    assert_same_state(background, interpreted)
