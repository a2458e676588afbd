"""xv6-riscv, MIT's teaching OS, boots on rvemu as on QEMU: its shell answers typed
commands with the same console output, and usertests gives the same verdicts.

xv6 is upstream code, never kept in this repository: build it by hand as README.md
("xv6-riscv") says. It is looked for in $RVEMU_XV6, then /opt/xv6-riscv; without it this
module is one loud skip. Every run boots a copy of fs.img, which xv6 writes to.
"""

from __future__ import annotations

import shutil

import pytest
from xv6 import QEMU, QemuSession, RvemuSession, find_xv6, verdicts, xv6_dirs

XV6 = find_xv6()
if XV6 is None:
    pytest.skip(
        "*** xv6-riscv NOT FOUND: no kernel and fs.img in "
        + " or ".join(str(d) for d in xv6_dirs())
        + " (set RVEMU_XV6, or build it as README.md 'xv6-riscv' says): xv6 NOT tested ***",
        allow_module_level=True,
    )

BOOT_AND_COMMANDS = 2_000_000_000  # instructions per step on rvemu (boot takes 0.43 G)
USERTESTS_ONE = 10_000_000_000  # `usertests NAME` takes 5.2 G: most in its countfree
QEMU_SECONDS = 120  # per step on QEMU, which needs a few seconds for any of them

SHELL = [
    "echo hi",
    "ls",
    "mkdir d",
    "echo hello > d/f",
    "ln d/f g",
    "rm d/f",
    "cat g",
    "ls d",
    "wc README",
    "forktest",
]


def transcript(session, commands: list[str]) -> bytes:
    """The console from power-on to the prompt after the last command."""
    out = session.wait_for()
    for line in commands:
        out += session.command(line)
    return out


def no_qemu() -> None:
    if shutil.which(QEMU) is None:
        pytest.skip(f"*** {QEMU} not installed: xv6 passed on rvemu, NOT compared with QEMU ***")


def test_xv6_shell_answers_as_on_qemu(tmp_path):
    with RvemuSession(XV6, tmp_path, BOOT_AND_COMMANDS) as rvemu:
        ours = transcript(rvemu, SHELL)
    assert ours.startswith(b"\nxv6 kernel is booting\n\ninit: starting sh\n$ "), ours
    assert b"$ echo hi\nhi\n$ " in ours
    assert b"\nusertests      2 " in ours and b"\nconsole        3 " in ours  # ls
    assert b"$ cat g\nhello\n$ " in ours  # written through a link, read after the unlink
    assert b"fork test OK\n" in ours
    no_qemu()
    with QemuSession(XV6, tmp_path, QEMU_SECONDS) as qemu:
        theirs = transcript(qemu, SHELL)
    assert ours == theirs


def test_xv6_usertests_copyin_passes_as_on_qemu(tmp_path):
    """One of usertests' quick tests: its two page counts (countfree, before and after)
    take most of the time."""
    with RvemuSession(XV6, tmp_path, USERTESTS_ONE) as rvemu:
        rvemu.wait_for()
        ours = verdicts(rvemu.command("usertests copyin"))
    assert ours == ["usertests starting", "copyin: OK", "ALL TESTS PASSED"]
    no_qemu()
    with QemuSession(XV6, tmp_path, QEMU_SECONDS) as qemu:
        qemu.wait_for()
        assert verdicts(qemu.command("usertests copyin")) == ours
