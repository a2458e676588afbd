"""Build the device test guests and run them on QEMU (the oracle) as well as on rvemu.

Guests are C or assembly files in tests/guest/, built with the cross compiler into
build/tests/dev/ (never committed). Tests skip loudly when a tool is missing."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = ROOT / "build" / "tests" / "dev"
CC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv64"
CFLAGS = ["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-nostdlib", "-ffreestanding"]
CFLAGS += ["-O2", "-Wall", "-Werror", "-fno-builtin", "-static"]
OPENSBI_DIR = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic")


def build(name: str, sources: list[str] | None = None, ld: str = "guest.ld") -> Path:
    """build/tests/dev/NAME.elf from tests/guest/NAME.c (plus crt.S), rebuilt when stale."""
    if shutil.which(CC) is None:
        pytest.skip(f"*** {CC} not found: device guest programs NOT built or run ***")
    srcs = [HERE / s for s in (sources or ["crt.S", f"{name}.c"])]
    deps = srcs + [HERE / ld, HERE / "guest.h"]
    out = BUILD / f"{name}.elf"
    if not out.exists() or any(d.stat().st_mtime > out.stat().st_mtime for d in deps):
        BUILD.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        cmd = [CC, *CFLAGS, "-I", str(HERE), "-T", str(HERE / ld), *map(str, srcs), "-o", str(tmp)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}\n{result.stderr}")
        tmp.replace(out)
    return out


def free_udp_ports(n: int) -> list[int]:
    """`n` distinct UDP ports free right now on 127.0.0.1 (tests may run concurrently)."""
    import socket

    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def require_qemu() -> None:
    if shutil.which(QEMU) is None:
        pytest.skip(
            f"*** {QEMU} not installed: this guest was NOT checked against QEMU "
            "(apt install qemu-system-misc) ***"
        )


def qemu(
    kernel: Path,
    args: list[str] = (),
    stdin: bytes = b"",
    bios: str = "none",
    timeout: float = 60,
) -> tuple[int, bytes]:
    """Boot `kernel` on QEMU's virt machine; (exit status, console output)."""
    require_qemu()
    cmd = qemu_command(kernel, args, bios)
    result = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    return result.returncode, result.stdout


def qemu_command(kernel: Path, args: list[str] = (), bios: str = "none") -> list[str]:
    cmd = [QEMU, "-machine", "virt", "-m", "128M", "-bios", bios, "-kernel", str(kernel)]
    cmd += ["-display", "none", "-monitor", "none", "-serial", "stdio", "-nodefaults"]
    return cmd + ["-global", "virtio-mmio.force-legacy=false", *args]


def start_qemu(kernel: Path, args: list[str] = (), bios: str = "none") -> subprocess.Popen:
    require_qemu()
    cmd = qemu_command(kernel, args, bios)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)


def qemu_interactive(
    kernel: Path, feed: bytes, feed_after: bytes, args: list[str] = (), bios: str = "none"
) -> bytes:
    """Boot on QEMU, type `feed` once the console shows `feed_after`; the console output."""
    require_qemu()
    cmd = qemu_command(kernel, args, bios)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out = b""
    deadline = time.time() + 60
    try:
        while feed_after not in out and time.time() < deadline:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            out += chunk
        proc.stdin.write(feed)
        proc.stdin.flush()
        rest, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return out + rest
