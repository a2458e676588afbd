"""`rvemu bench`'s rows for `rvemu serve` (rvemu/serve.py), each beside QEMU's figure:

- request to first output: from sending the create request (the three requests
  `rvemu boot --api-sock` sends at once: create, start, console) to the first console
  byte, `hello` on a warm server; and `rvemu boot --api-sock` from process start;
- microVMs per second: `hello` machines created, started, run to power-off, their
  console read and their status, then deleted, by several clients at once for a few
  seconds, against QEMU processes two at a time;
- resident memory per machine: the resident set of the server and its workers with N
  machines paused in the middle of a run (each holding a whole machine), less the guest
  RAM their guests touched, per machine; and with N machines created and not started.
  QEMU's is the peak resident set (ru_maxrss) of one `qemu-system-riscv64` running hello.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .apiclient import Api, ApiError, check

QEMU = "qemu-system-riscv64"
QEMU_ARGS = ["-machine", "virt", "-bios", "none", "-m", "128M", "-nographic", "-monitor", "none"]
MIB = 1 << 20


class Server:
    """An `rvemu serve` process on a temporary socket."""

    def __init__(self, workers: int = 2, cwd: str | None = None) -> None:
        self.folder = tempfile.mkdtemp(prefix="rvemu-serve-")
        self.path = os.path.join(self.folder, "api.sock")
        self.log = os.path.join(self.folder, "serve.log")  # (its stderr, and its workers')
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rvemu", "serve", "--api-sock", self.path, "--workers",
                 str(workers)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=cwd,
            )  # fmt: skip
        deadline = time.monotonic() + 600  # (a cold compile cache: the core compiles first)
        while not os.path.exists(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                errors = self.errors()
                self.close()
                raise RuntimeError(f"rvemu serve did not start: {errors}")
            time.sleep(0.02)

    def errors(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_ids = iter(range(1 << 62))


def boot(api: Api, kernel: str, first: list | None = None) -> dict:
    """One machine through the API, as `rvemu boot --api-sock` does it: create, start
    and console at once, then its status and DELETE. Appends the time of the first
    console byte to `first`."""
    mid = f"bench-{os.getpid()}-{next(_ids)}"
    api.send("PUT", f"/machines/{mid}", {"kernel": kernel})
    api.send("PUT", f"/machines/{mid}/actions", {"action_type": "InstanceStart"})
    api.send("GET", f"/machines/{mid}/console")

    def sink(data: bytes) -> None:
        if first is not None and len(first) == 0:
            first.append(time.perf_counter())

    for answer in (api.answer(), api.answer(), api.answer(sink)):
        check(*answer)
    info = api.request("GET", f"/machines/{mid}")
    api.request("DELETE", f"/machines/{mid}")
    if info["reason"] != "poweroff" or info["exit_code"] != 0:
        raise RuntimeError(f"{kernel} did not power off cleanly through the API: {info}")
    return info


def first_output(server: Server, kernel: str, runs: int) -> float:
    """Seconds from the create request to the first console byte (the median of at least
    20 boots, on a server that has booted the image before)."""
    times = []
    with Api(server.path) as api:
        boot(api, kernel)  # (the first boot of an image prepares its start state)
        for _ in range(max(runs, 20)):  # (each takes milliseconds: many, for a steady median)
            first: list[float] = []
            start = time.perf_counter()
            boot(api, kernel, first)
            times.append(first[0] - start)
    return statistics.median(times)


def client_first_output(server: Server, kernel: str, runs: int) -> float:
    """Seconds from starting `rvemu boot --api-sock` to its first console byte."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "rvemu", "boot", "--api-sock", server.path, kernel],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        proc.stdout.read(1)
        times.append(time.perf_counter() - start)
        proc.stdout.read()
        proc.stdout.close()
        if proc.wait(timeout=60) != 0:
            raise RuntimeError(f"rvemu boot --api-sock {kernel} failed")
    return statistics.median(times)


def machines_per_second(server: Server, kernel: str, seconds: float = 2.0, clients: int = 4):
    """Machines started and finished per second by `clients` threads, each on its own
    connection, booting `kernel` one after another for `seconds`."""
    counts = [0] * clients
    errors: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        try:
            with Api(server.path) as api:
                while time.perf_counter() < stop:
                    boot(api, kernel)
                    counts[index] += 1
        except BaseException as e:  # (reported below)
            errors.append(e)

    with Api(server.path) as api:
        for _ in range(4):  # every worker has its start state and pooled machines
            boot(api, kernel)
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def resident(api: Api) -> tuple[int, int, int]:
    """Resident bytes of the server and its workers, of those the workers', and of
    those the guest RAM of their live machines."""
    stats = api.request("GET", "/stats")
    workers = sum(w["rss"] for w in stats["workers"])
    ram = sum(w["guest_ram_resident"] for w in stats["workers"])
    return stats["rss"] + workers, workers, ram


def start_and_pause(api: Api, mid: str, kernel: str) -> dict:
    """Start a machine and pause it at once; again if it ended first (a loaded host may
    hold this process back for the whole run)."""
    for _ in range(5):
        api.request("PUT", f"/machines/{mid}", {"kernel": kernel})
        api.request("PUT", f"/machines/{mid}/actions", {"action_type": "InstanceStart"})
        try:
            api.request("PUT", f"/machines/{mid}/actions", {"action_type": "Pause"})
            return api.request("GET", f"/machines/{mid}")
        except ApiError as e:
            if e.status != 409:
                raise
        api.request("DELETE", f"/machines/{mid}")
    raise RuntimeError(f"{kernel} ended five times before it could be paused")


def memory_per_machine(server: Server, kernel: str, busy: str, counts=(8, 24)) -> dict:
    """Resident bytes each extra machine costs the server and its workers, beyond its
    guest's RAM: the difference between `counts[0]` and `counts[1]` machines paused in the
    middle of a run of `busy` (so that machines the pool held before count as new ones
    too), per machine; and for machines created and not started."""
    out: dict = {}
    with Api(server.path) as api:
        for _ in range(4):  # every worker has its start state and pooled machines
            boot(api, kernel)
        base, _, _ = resident(api)
        stats = api.request("GET", "/stats")
        out["at_rest_pss_bytes"] = stats["pss"] + sum(w["pss"] for w in stats["workers"])
        created = [f"idle-{os.getpid()}-{i}" for i in range(counts[1])]
        for mid in created:
            api.request("PUT", f"/machines/{mid}", {"kernel": kernel})
        rss, _, _ = resident(api)
        out["created_bytes"] = (rss - base) / len(created)
        for mid in created:
            api.request("DELETE", f"/machines/{mid}")
        figures = []
        live: list[str] = []
        for n in counts:
            while len(live) < n:
                mid = f"paused-{os.getpid()}-{len(live)}"
                start_and_pause(api, mid, busy)
                live.append(mid)
            time.sleep(0.2)  # (let the freed memory of anything transient go back)
            figures.append(resident(api))
        for mid in live:
            info = api.request("GET", f"/machines/{mid}")
            if info["state"] != "paused":
                raise RuntimeError(f"{busy} ended before it could be paused: {info}")
            api.request("DELETE", f"/machines/{mid}")
    (rss0, _, ram0), (rss1, _, ram1) = figures
    extra = counts[1] - counts[0]
    out["paused_bytes"] = (rss1 - rss0 - (ram1 - ram0)) / extra
    out["paused_guest_ram_bytes"] = (ram1 - ram0) / extra
    out["paused_machines"] = list(counts)
    return out


# Runs QEMU from a small process and prints its peak resident set: a process's ru_maxrss
# counts the memory of the process it was forked from until it called exec (and Python
# starts children with vfork), which for rvemu bench is a few hundred MiB.
QEMU_RSS = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.execvp(sys.argv[1], sys.argv[1:])
print(os.wait4(pid, 0)[2].ru_maxrss)
"""


def qemu_rss(kernel: str) -> int:
    """Peak resident bytes of one QEMU process running `kernel` (its ru_maxrss)."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", QEMU_RSS, QEMU, *QEMU_ARGS, "-kernel", kernel],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return int(out.stdout) * 1024


def qemu_per_second(kernel: str, seconds: float = 2.0, parallel: int = 2) -> float:
    """QEMU runs of `kernel` to power-off per second, `parallel` at a time."""
    done = 0
    stop = time.perf_counter() + seconds

    def run() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            subprocess.run(
                [QEMU, *QEMU_ARGS, "-kernel", kernel],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                check=True,
            )
            done += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done / (time.perf_counter() - start)


def serve_bench(folder: Path, runs: int, have_qemu: bool, qemu_first_ms: float | None) -> dict:
    """Measure and print the rows (the boot-latency section of `rvemu bench`)."""
    hello = str((folder / "hello.elf").resolve())
    busy = folder / "bench-sieve.elf"
    report: dict = {}
    with Server(workers=len(os.sched_getaffinity(0))) as server:
        report["first_output_ms"] = first_output(server, hello, runs) * 1e3
        report["client_first_output_ms"] = client_first_output(server, hello, runs) * 1e3
        report["machines_per_second"] = machines_per_second(server, hello)
        if busy.exists():
            report["memory"] = memory_per_machine(server, hello, str(busy.resolve()))
    if have_qemu:
        report["qemu_rss_bytes"] = qemu_rss(hello)
        report["qemu_per_second"] = qemu_per_second(hello)
    print_rows(report, qemu_first_ms)
    return report


def print_rows(report: dict, qemu_first_ms: float | None) -> None:
    def qemu(text: str | None) -> str:
        return f"   QEMU: {text}" if text else ""

    first = f"{qemu_first_ms:.1f} ms from process start" if qemu_first_ms else None
    print(f"  rvemu serve ({len(os.sched_getaffinity(0))} workers, hello):")
    print(f"    request to first output       {report['first_output_ms']:6.1f} ms" + qemu(first))
    print(
        f"    rvemu boot --api-sock          {report['client_first_output_ms']:6.1f} ms "
        "to first output from process start"
    )
    rate = report.get("qemu_per_second")
    print(
        f"    microVMs per second           {report['machines_per_second']:6.0f}"
        + qemu(f"{rate:.0f} (processes, 2 at a time)" if rate else None)
    )
    memory = report.get("memory")
    if memory:
        rss = report.get("qemu_rss_bytes")
        print(
            f"    resident memory per machine   {memory['paused_bytes'] / MIB:6.2f} MiB "
            f"beyond its guest's RAM (paused mid-run: {memory['paused_guest_ram_bytes'] / MIB:.2f}"
            f" MiB); {memory['created_bytes'] / 1024:.1f} KiB created, not started"
            + qemu(f"{rss / MIB:.0f} MiB a process (ru_maxrss)" if rss else None)
        )
        print(
            f"    the server at rest            {memory['at_rest_pss_bytes'] / MIB:6.0f} MiB "
            "(server and workers, proportional set: the workers share the loaded core)"
        )
