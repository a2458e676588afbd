"""Debian's Linux 6.12 (../shared/guests/linux) boots from its gzipped Image through
OpenSBI's fw_dynamic (--bios default) to a busybox shell on the console, and to a root file
system on a virtio-blk disk; `poweroff -f` ends the run with status 0. Each boot also runs
on QEMU with the same options, and the marker lines and exit status must match.

A Linux boot costs 40-60 s on rvemu (2-6 s on QEMU), so there are two. QEMU gets the
Image inflated: its RISC-V boards load a kernel that is not an ELF as it is, gzip and all
(hw/riscv/boot.c riscv_load_kernel); rvemu inflates it."""

from __future__ import annotations

import gzip
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rvemu.firmware import bios_path
from rvemu.initramfs import busybox_initramfs
from rvemu.loader import LoadError

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(os.environ.get("RVEMU_GUESTS", ROOT / ".." / "shared" / "guests")).resolve()
LINUX = GUESTS / "linux"
QEMU = "qemu-system-riscv64"
MEMORY = "256M"
TIMEOUT = 900  # seconds for one boot, on a busy 2-core machine
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
# what the root disk needs, in the order of ../shared/guests/README.md
ROOT_MODULES = ("virtio_mmio", "virtio_blk", "crc16", "crc32c_generic", "mbcache", "jbd2", "ext4")


def guest() -> Path:
    if not (LINUX / "Image.gz").exists():
        pytest.skip(f"*** {LINUX}/Image.gz not found: Linux boot NOT tested ***")
    return LINUX


def opensbi() -> str:
    try:
        return bios_path("default")
    except LoadError:
        pytest.skip("*** OpenSBI not installed (apt install opensbi): Linux boot NOT tested ***")


def tool(name: str) -> str:
    path = shutil.which(name, path=SBIN)
    if path is None:
        pytest.skip(f"*** {name} not found (apt install e2fsprogs): virtio-blk root NOT tested ***")
    return path


class Console:
    """A guest's console through a pipe: wait for text, type, collect the rest."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.output = b""
        self.seen = 0  # where the last text expected ended
        self.deadline = time.monotonic() + TIMEOUT

    def expect(self, text: bytes) -> None:
        """Wait for `text` after what was last expected."""
        while (at := self.output.find(text, self.seen)) < 0:
            if not self._read():
                raise AssertionError(f"no {text!r} on the console:\n{self.tail()}")
        self.seen = at + len(text)

    def send(self, text: bytes) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self) -> int:
        while self._read():
            pass
        return self.proc.wait(timeout=max(1, self.deadline - time.monotonic()))

    def _read(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        self.output += chunk
        return bool(chunk)

    def tail(self) -> str:
        return self.output[-3000:].decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def markers(output: bytes, prefixes: tuple[str, ...]) -> list[str]:
    lines = output.decode(errors="replace").replace("\r", "").split("\n")
    return [line for line in lines if line.startswith(prefixes)]


def boot_options(initrd: Path, append: str, disk: Path | None = None) -> dict:
    """One boot, as options both emulators are given."""
    return dict(bios=opensbi(), initrd=initrd, append=append, disk=disk)


def rvemu_command(kernel: Path, o: dict) -> list[str]:
    cmd = [sys.executable, "-m", "rvemu", "boot", str(kernel), "--memory", MEMORY]
    cmd += ["--bios", o["bios"], "--initrd", str(o["initrd"]), "--append", o["append"]]
    return cmd + (["--disk", str(o["disk"])] if o["disk"] else [])


def qemu_command(kernel: Path, o: dict) -> list[str]:
    cmd = [QEMU, "-machine", "virt", "-m", MEMORY, "-bios", o["bios"], "-kernel", str(kernel)]
    cmd += ["-initrd", str(o["initrd"]), "-append", o["append"]]
    cmd += ["-display", "none", "-monitor", "none", "-serial", "stdio", "-nodefaults"]
    cmd += ["-global", "virtio-mmio.force-legacy=false"]
    if o["disk"]:
        cmd += ["-drive", f"file={o['disk']},if=none,format=raw,id=d0"]
        cmd += ["-device", "virtio-blk-device,drive=d0"]
    return cmd


def inflated_image(tmp_path: Path) -> Path:
    """The Image for QEMU, which does not inflate gzip on RISC-V."""
    if shutil.which(QEMU) is None:
        pytest.skip(
            f"*** {QEMU} not installed (apt install qemu-system-misc): rvemu's Linux boot "
            "passed but was NOT compared with QEMU ***"
        )
    image = tmp_path / "Image"
    with gzip.open(guest() / "Image.gz") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return image


# --- an initramfs with busybox, to a shell

SHELL_MARKS = ("rvemu initramfs:", "shell:")


def shell_session(command: list[str]) -> tuple[int, bytes]:
    """Boot to the busybox prompt, run a command, power off from the shell."""
    console = Console(command)
    try:
        console.expect(b"rvemu initramfs: busybox shell")
        console.expect(b"# ")
        console.send(b"echo shell: $((6 * 7)) $(uname -m) $(uname -r) $(cat /proc/cmdline)\n")
        console.expect(b"shell: 42")
        console.expect(b"# ")  # the next prompt: typing sooner would echo into the line
        console.send(b"poweroff -f\n")
        return console.finish(), console.output
    finally:
        console.close()


def test_linux_boots_to_a_busybox_shell_and_powers_off(tmp_path: Path) -> None:
    linux = guest()
    initrd = tmp_path / "initramfs.cpio.gz"
    busybox_initramfs(str(linux / "busybox")).write(str(initrd))
    options = boot_options(initrd, "console=ttyS0")
    status, output = shell_session(rvemu_command(linux / "Image.gz", options))
    assert status == 0, output[-3000:].decode(errors="replace")
    ours = markers(output, SHELL_MARKS)
    assert ours == [
        "rvemu initramfs: busybox shell ('poweroff -f' powers off)",
        "shell: 42 riscv64 6.12.117+deb13-riscv64 console=ttyS0",
    ], output[-3000:].decode(errors="replace")
    assert b"reboot: Power down" in output
    status, theirs = shell_session(qemu_command(inflated_image(tmp_path), options))
    assert status == 0
    assert markers(theirs, SHELL_MARKS) == ours


# --- root on a virtio-blk disk (ext2 from mke2fs -d), modules from the initramfs

ROOT_INIT = b"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "root init: $(/bin/busybox grep ' / ' /proc/mounts)"
echo "written by the guest" > /from-guest
/bin/busybox sync
/bin/busybox poweroff -f
"""
ROOT_MARKS = ("rvemu initramfs:", "root init:")


def root_disk(tmp_path: Path, name: str) -> Path:
    """An 8 MiB ext2 image holding busybox and an /sbin/init that reports the root mount,
    writes a file and powers off."""
    tree = tmp_path / "rootfs"
    if not tree.exists():
        for folder in ("bin", "sbin", "dev", "proc", "sys", "tmp"):
            (tree / folder).mkdir(parents=True)
        shutil.copy(guest() / "busybox", tree / "bin" / "busybox")
        (tree / "sbin" / "init").write_bytes(ROOT_INIT)
        (tree / "sbin" / "init").chmod(0o755)
    disk = tmp_path / name
    subprocess.run(
        [tool("mke2fs"), "-q", "-t", "ext2", "-E", "root_owner=0:0", "-d", tree, disk, "8M"],
        check=True,
        timeout=60,
    )
    return disk


def read_back(disk: Path, path: str) -> bytes:
    result = subprocess.run(
        [tool("debugfs"), "-R", f"cat {path}", disk], capture_output=True, timeout=60
    )
    return result.stdout


def test_linux_mounts_its_root_from_virtio_blk(tmp_path: Path) -> None:
    linux = guest()
    disk = root_disk(tmp_path, "disk.img")
    modules = [str(linux / "modules" / f"{name}.ko.xz") for name in ROOT_MODULES]
    initrd = tmp_path / "initramfs.cpio.gz"
    busybox_initramfs(str(linux / "busybox"), modules=modules).write(str(initrd))
    options = boot_options(initrd, "console=ttyS0 root=/dev/vda", disk)
    console = Console(rvemu_command(linux / "Image.gz", options))
    try:
        status = console.finish()
    finally:
        console.close()
    ours = markers(console.output, ROOT_MARKS)
    assert status == 0 and ours == [
        "rvemu initramfs: switching to root=/dev/vda",
        "root init: /dev/vda / ext2 rw,relatime 0 0",
    ], console.tail()
    assert read_back(disk, "/from-guest") == b"written by the guest\n"

    kernel = inflated_image(tmp_path)
    options["disk"] = root_disk(tmp_path, "disk-qemu.img")
    console = Console(qemu_command(kernel, options))
    try:
        status = console.finish()
    finally:
        console.close()
    assert status == 0 and markers(console.output, ROOT_MARKS) == ours, console.tail()
    assert read_back(options["disk"], "/from-guest") == b"written by the guest\n"
