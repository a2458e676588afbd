"""Snapshots: a restored machine goes on exactly as the original (libos apps, Linux's
boot), through memory and through a file; a malformed file is a one-line error."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_apps import build, disk_folder, image, make_disk

from rvemu import Machine
from rvemu.cpu import state as S
from rvemu.snapshot import SnapshotError, capture

ROOT = Path(__file__).resolve().parent.parent


# The second tier's scratch slots: what the last region or hot target was, not state.
TIER2_SCRATCH = [S.HOT_PC, S.HOT_OFF, S.REGION_RETIRED, S.REGION_JUMPED]


def state(m: Machine) -> dict:
    """Everything a guest or its devices could tell apart."""
    wiring = {id(o) for o in (m, m.hart, m.ram, m.board.bus, m.board.memory)}
    st = m.hart.st.copy()
    st[TIER2_SCRATCH] = 0
    # The host's side from st[PROFILE] on (counters for --profile, the last walk's page
    # size): a restored machine, whose TLB starts empty, walks more and is the same machine.
    st[S.PROFILE :] = 0
    return {
        "x": m.hart.x[:32].tolist(),  # (x[32] takes writes to x0: no guest sees it)
        "f": m.hart.f.tolist(),
        "csr": m.hart.csr.tolist(),
        "st": st.tolist(),
        "ram": m.ram.tobytes(),
        "console": m.console,
        "board": capture(m.board, wiring),
    }


def assert_same(a: dict, b: dict) -> None:
    for key in a:
        assert a[key] == b[key], f"{key} differs"


@pytest.mark.parametrize(
    "app,first,then",
    [
        ("hello", 300, 400),
        ("timers", 3_000, 6_000),
        ("files", 40_000, 80_000),
        ("heap", 5_000, 10_000),
    ],
)
def test_restored_machine_goes_on_as_the_original(app, first, then, tmp_path):
    build(app)
    options = {}
    if app == "files":
        options["disk"] = str(make_disk(disk_folder(tmp_path), tmp_path / "disk.img"))
    original = Machine(**options)
    original.load(str(image(app)))
    assert original.run(first).reason == "limit"
    snap = original.snapshot()
    original.save(str(tmp_path / "snap"))
    original.run(then)
    expected = state(original)

    in_memory = Machine(**options)
    in_memory.restore(snap)
    in_memory.run(then)
    assert_same(expected, state(in_memory))

    from_file = Machine.from_snapshot(str(tmp_path / "snap"))
    from_file.run(then)
    assert_same(expected, state(from_file))
    # And all three run to the same end.
    for m in (original, in_memory, from_file):
        result = m.run()
        assert (result.reason, result.exit_code) == ("poweroff", 0), result
    assert original.console == in_memory.console == from_file.console


def test_restore_rewinds_a_machine(tmp_path):
    build("hello")
    m = Machine()
    m.load(str(image("hello")))
    m.run(150)
    snap = m.snapshot()
    before = state(m)
    assert m.run().reason == "poweroff"
    m.restore(snap)
    assert_same(before, state(m))
    assert m.run().reason == "poweroff"  # (the power-off latch was rewound too)


def test_save_at_main_and_resume_on_the_command_line(tmp_path):
    build("hello")
    snap = tmp_path / "hello.snap"
    rvemu = [sys.executable, "-m", "rvemu"]
    boot = subprocess.run(
        [*rvemu, "boot", str(image("hello")), "--save-at", "main", str(snap)],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert boot.returncode == 0, boot.stderr
    resume = subprocess.run([*rvemu, "resume", str(snap)], capture_output=True, timeout=120)
    assert resume.returncode == 0, resume.stderr
    # Nothing was printed before main: the resumed run prints all of it, as boot did.
    assert resume.stdout == boot.stdout == b"Hello from the rvemu unikernel!\r\n"


def test_malformed_snapshots_are_one_line_errors(tmp_path):
    build("hello")
    m = Machine()
    m.load(str(image("hello")))
    m.run(200)
    good = tmp_path / "good.snap"
    m.save(str(good))
    data = good.read_bytes()
    rng = random.Random(7)
    cases = {
        "empty": b"",
        "garbage": b"\x7fELF not a snapshot",
        "magic only": data[:15],
        "half header": data[: len(data) // 4],
        "no RAM": data[: len(data) - 100],
    }
    for n in range(20):
        flipped = bytearray(data)
        for _ in range(3):
            flipped[rng.randrange(15, len(flipped))] ^= 1 << rng.randrange(8)
        cases[f"flipped {n}"] = bytes(flipped)
    for name, blob in cases.items():
        path = tmp_path / "bad.snap"
        path.write_bytes(blob)
        with pytest.raises(SnapshotError):
            Machine.from_snapshot(str(path))
        run = subprocess.run(
            [sys.executable, "-m", "rvemu", "resume", str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 1 and run.stderr.count("\n") == 1, (name, run.stderr)
        assert run.stderr.startswith("rvemu: "), (name, run.stderr)


def test_linux_boot_restored_mid_way_goes_on_the_same(tmp_path):
    from test_linux import LINUX, guest, opensbi

    kernel = guest() / "Image.gz"  # (skips loudly where the guest is absent)
    opensbi()
    from rvemu.initramfs import busybox_initramfs

    initrd = tmp_path / "initramfs.cpio.gz"
    busybox_initramfs(str(LINUX / "busybox")).write(str(initrd))
    options = dict(memory="256M", bios="default", initrd=str(initrd), append="console=ttyS0")
    original = Machine(**options)
    original.load(str(kernel))
    assert original.run(30_000_000).reason == "limit"
    original.save(str(tmp_path / "linux.snap"))
    original.run(20_000_000)
    restored = Machine.from_snapshot(str(tmp_path / "linux.snap"))
    restored.run(20_000_000)
    assert_same(state(original), state(restored))
    assert b"OpenSBI" in restored.console and restored.regs["satp"] != 0  # the kernel runs
    assert np.count_nonzero(restored.ram) > 1_000_000
