"""`rvemu bench`'s network figures, for the http image (apps/http) on rvemu and on QEMU:
its size, the time from process start to the first HTTP response, and requests per second
under the same load generator (ab, from Debian's apache2-utils) on loopback.

Both emulators get the same image, disk and forwarded port, and the client asks only once
the guest has said on its console that it is serving (before that, libslirp accepts the
connection but the guest is not there to answer, and the request waits for slirp's own
retransmission, seconds later).
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

QEMU = "qemu-system-riscv64"
READY = b"serving"
LIMIT_BYTES = 32 * 1024
CONCURRENCY = 8

Command = Callable[[Path, Path, int], list[str]]  # (image, disk, host port) -> argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rvemu_command(elf: Path, disk: Path, port: int) -> list[str]:
    net = f"user,hostfwd=tcp:127.0.0.1:{port}-:80"
    return [sys.executable, "-m", "rvemu", "boot", str(elf), "--net", net, "--disk", str(disk)]


def qemu_command(elf: Path, disk: Path, port: int) -> list[str]:
    return [
        QEMU, "-machine", "virt", "-bios", "none", "-m", "128M", "-nographic",
        "-monitor", "none", "-global", "virtio-mmio.force-legacy=false",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:80",
        "-device", "virtio-net-device,netdev=n0",
        "-drive", f"file={disk},if=none,format=raw,id=d0,readonly=on",
        "-device", "virtio-blk-device,drive=d0", "-kernel", str(elf),
    ]  # fmt: skip


def first_get(port: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET / answered {response.status}")
        return body
    finally:
        conn.close()


def start(cmd: list[str]) -> subprocess.Popen:
    """Starts an emulator and returns once its guest says it is serving."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    console = b""
    while READY not in console:
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=60)
            raise RuntimeError(f"{cmd[0]} exited before serving: {console!r}")
        console += line
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=60)


def process_first_response(command: Command, elf: Path, disk: Path, runs: int) -> float:
    """Median seconds from starting the process to the end of the first response."""
    times = []
    for _ in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        proc = start(command(elf, disk, port))
        try:
            first_get(port)
            times.append(time.perf_counter() - t0)
        finally:
            stop(proc)
    return statistics.median(times)


# Run in a child process (so the machine and its sockets end with it): from Machine()
# to the first response, with rvemu already imported and its compiled core loaded.
IN_PROCESS = """
import sys, threading, time
from rvemu import Machine
from rvemu.netbench import READY, first_get
elf, disk, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
Machine(memory="1M").hart.warm_up()
ready = threading.Event()
t0 = time.perf_counter()
m = Machine(net=f"user,hostfwd=tcp:127.0.0.1:{port}-:80", disk=disk)
m.on_console(lambda data: READY in m.console and ready.set())
m.load(elf)
threading.Thread(target=m.run, daemon=True).start()
ready.wait(120)
first_get(port)
print(time.perf_counter() - t0, flush=True)
"""


def api_first_response(elf: Path, disk: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        cmd = [sys.executable, "-c", IN_PROCESS, str(elf), str(disk), str(free_port())]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"in-process first response failed: {out.stderr[-500:]}")
        times.append(float(out.stdout.split()[-1]))
    return statistics.median(times)


def ab(port: int, requests: int, keepalive: bool) -> float:
    cmd = ["ab", "-q", "-n", str(requests), "-c", str(CONCURRENCY), "-s", "60"]
    cmd += ["-k"] if keepalive else []
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=600
    ).stdout
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    rate = re.search(r"Requests per second:\s+([\d.]+)", out)
    if not failed or not rate or int(failed.group(1)) or "Non-2xx" in out:
        raise RuntimeError(f"ab failed: {out[-800:]}")
    return float(rate.group(1))


def requests_per_second(command: Command, elf: Path, disk: Path, requests: int) -> dict:
    """ab, new connections and keep-alive, after a warm-up run (both emulators compile
    guest code as it gets hot)."""
    port = free_port()
    proc = start(command(elf, disk, port))
    try:
        ab(port, requests // 4, keepalive=False)
        return {
            "close": ab(port, requests, keepalive=False),
            "keepalive": ab(port, requests, keepalive=True),
        }
    finally:
        stop(proc)


def net_bench(folder: Path, runs: int) -> dict | None:
    """Prints the network rows and returns them (None when there is no http image)."""
    elf, disk = folder / "http.elf", folder / "http.img"
    if not elf.exists() or not disk.exists():
        print(f"rvemu bench: no {elf} and {disk} (make apps): NO network figures",
              file=sys.stderr)  # fmt: skip
        return None
    have_qemu = shutil.which(QEMU) is not None
    have_ab = shutil.which("ab") is not None
    if not have_ab:
        print("rvemu bench: ab NOT installed (apt install apache2-utils): no requests/s",
              file=sys.stderr)  # fmt: skip
    size = elf.stat().st_size
    report: dict = {"http_image_bytes": size, "first_response_ms": {}, "requests_per_second": {}}
    latency = report["first_response_ms"]
    latency["rvemu_process"] = process_first_response(rvemu_command, elf, disk, runs) * 1e3
    latency["rvemu_api"] = api_first_response(elf, disk, runs) * 1e3
    if have_qemu:
        latency["qemu_process"] = process_first_response(qemu_command, elf, disk, runs) * 1e3
    requests = 1000 * runs
    if have_ab:
        rps = report["requests_per_second"]
        rps["rvemu"] = requests_per_second(rvemu_command, elf, disk, requests)
        if have_qemu:
            rps["qemu"] = requests_per_second(qemu_command, elf, disk, requests)

    print(f"\nnetwork (http image, --net user with a forwarded port; median of {runs})")
    print(f"  http.elf: {size} bytes (at most {LIMIT_BYTES})")
    print("  first HTTP response after:"
          f" rvemu process {latency['rvemu_process']:.0f} ms,"
          f" rvemu API (Machine() on) {latency['rvemu_api']:.0f} ms"
          + (f", QEMU process {latency['qemu_process']:.0f} ms" if have_qemu else ""))  # fmt: skip
    for mode, label in (("close", "a connection each"), ("keepalive", "keep-alive")):
        row = report["requests_per_second"]
        if "rvemu" in row:
            qemu = f"{row['qemu'][mode]:>10.0f}" if "qemu" in row else f"{'-':>10}"
            print(f"  requests/s, ab -c {CONCURRENCY} -n {requests}, {label + ':':<18}"
                  f" rvemu {row['rvemu'][mode]:>8.0f}   QEMU {qemu}")  # fmt: skip
    return report
