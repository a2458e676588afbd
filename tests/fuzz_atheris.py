"""Coverage-guided fuzzing of the harnesses in test_fuzz_inputs.py with atheris (libFuzzer
for Python): libFuzzer mutates the bytes hypothesis draws its inputs from, and keeps those
that reach new lines of rvemu's Python code (the loader, the firmware layout, the command
line, the board and every device; the Numba-compiled hart is not instrumented).

    python tests/fuzz_atheris.py HARNESS RUNS [libFuzzer options...]

HARNESS is one of the names below; the corpus grows in build/fuzz-corpus/HARNESS, and a
crasher is written to build/fuzz-crashes/ (keep it as an @example in test_fuzz_inputs.py).
`make fuzz` runs each harness for a while. Prints libFuzzer's own summary ("Done N runs").
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESSES = {
    "elf": "test_mutated_images_load_or_are_refused_in_one_line",
    "cli": "test_cli_options_exit_with_one_line_and_change_no_other_file",
    "registers": "test_random_register_accesses_on_every_device",
    "guest-mmio": "test_guest_loads_and_stores_on_every_device",
    "virtqueues": "test_hostile_virtqueues_complete_or_break_and_stay_in_their_buffers",
    "frames": "test_frames_from_the_host_fit_the_buffers_or_wait",
}
# Pure-Python modules whose coverage guides the fuzzer (Numba-compiled ones must keep their
# bytecode as it is).
INSTRUMENTED = [
    "rvemu.loader", "rvemu.firmware", "rvemu.cli", "rvemu.board", "rvemu.fdt",
    "rvemu.devices.bus", "rvemu.devices.dma", "rvemu.devices.plic", "rvemu.devices.uart",
    "rvemu.devices.virtio_mmio", "rvemu.devices.virtio_blk", "rvemu.devices.virtio_net",
    "rvemu.devices.virtio_rng", "rvemu.devices.goldfish_rtc", "rvemu.devices.sifive_test",
    "elftools",
]  # fmt: skip


def instrument(atheris, module) -> None:  # noqa: ANN001
    """Coverage for every function and method defined in `module` (atheris' import hook
    would also reach the Numba-compiled modules imported on the way, which must not change)."""
    for value in list(vars(module).values()):
        if getattr(value, "__module__", None) != module.__name__:
            continue
        members = vars(value).values() if inspect.isclass(value) else [value]
        for member in members:
            if isinstance(member, property):
                member = member.fget
            member = getattr(member, "__func__", member)  # static and class methods
            if inspect.isfunction(member):
                atheris.instrument_func(member)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] not in HARNESSES:
        sys.exit(f"usage: {argv[0]} {{{','.join(HARNESSES)}}} RUNS [libFuzzer options]")
    try:
        import atheris
    except ImportError:
        sys.exit("fuzz_atheris: atheris is not installed (pip install atheris)")
    name, runs = argv[1], int(argv[2])
    sys.path.insert(0, str(HERE))
    import test_fuzz_inputs

    for module in list(sys.modules.values()):
        if any(module.__name__.startswith(prefix) for prefix in INSTRUMENTED):
            instrument(atheris, module)
    test = getattr(test_fuzz_inputs, HARNESSES[name])
    corpus = ROOT / "build" / "fuzz-corpus" / name
    crashes = ROOT / "build" / "fuzz-crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    options = [f"-runs={runs}", f"-artifact_prefix={crashes}/{name}-"]
    options += ["-len_control=0", "-max_len=8192"]  # hypothesis needs some bytes to draw from
    options += [*argv[3:], str(corpus)]
    atheris.Setup([argv[0], *options], test.hypothesis.fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
