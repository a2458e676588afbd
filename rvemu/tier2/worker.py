"""Compiling regions in a second process, so that the guest runs on while LLVM works.

`Tier2` hands a `Job` to `CompileWorker.submit` and carries on interpreting; the worker
process (`main` below) builds the region's IR, has LLVM compile it,
writes the object code to the code cache and sends it back; `Tier2.install_ready` loads
it between two runs of the core. A process, not a thread: building IR is Python code,
which would hold the interpreter's lock half the time the guest needs it.
"""

from __future__ import annotations

import collections
import gc
import math
import os
import pickle
import subprocess
import sys
import threading
import time

IN_FLIGHT = 2  # jobs handed to the worker process at a time; the others wait here
# The others go hottest first. A job's heat is 1 when it is queued, plus 1 each time
# the hart finds one of its pcs hot again while it waits (`heat`), halved every
# HALF_LIFE seconds: in Linux's boot each phase's code is hot for a while only, and the
# worker cannot compile all that gets hot (design.md, "Background compilation").
HALF_LIFE = 1.0
# LLVM's options in the worker process: instruction selection the quick way (FastISel,
# as at -O0) and no loop strength reduction. Code generation then costs half (the
# regions of Linux's boot: 3.35 -> 1.81 s, the worker's whole time about a fifth less),
# for code 5-20% slower in the compute benchmarks' loops. The worker is what falls
# behind, and a region ready sooner runs more; a region compiled with the guest
# waiting (no second CPU, `rvemu bench`'s compute rows) gets LLVM's defaults.
LLVM_OPTIONS = ("-fast-isel", "-disable-lsr")


class CompileWorker:
    """The worker process, and two threads that feed it and read its answers, so that
    neither side ever waits on a full pipe."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from rvemu.tier2.worker import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.alive = True
        # key -> [job, heat, the time it was last counted] while it waits here
        self._jobs: dict[str, list] = {}
        self._queued = threading.Condition()
        self._slots = threading.Semaphore(IN_FLIGHT)
        self._done: collections.deque = collections.deque()  # (appended by _read)
        self._pending: set[str] = set()
        threading.Thread(target=self._feed, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def submit(self, job) -> bool:  # noqa: ANN001 (a compiler.Job)
        """Queue a job (once per key); False if the worker is gone."""
        if not self.alive:
            return False
        if job.key not in self._pending:
            self._pending.add(job.key)
            with self._queued:
                self._jobs[job.key] = [job, 1.0, time.perf_counter()]
                self._queued.notify()
        return True

    def heat(self, key: str) -> None:
        """A pc of a waiting job got hot again: it goes before jobs that have not."""
        with self._queued:
            waiting = self._jobs.get(key)
            if waiting is not None:
                now = time.perf_counter()
                waiting[1] = waiting[1] * 2 ** ((waiting[2] - now) / HALF_LIFE) + 1
                waiting[2] = now

    def _hottest(self) -> object:  # (a compiler.Job)
        """Take the hottest waiting job, waiting for one if there is none. (Heats decay
        alike, so the one with the highest heat at its own time is the hottest now.)"""
        with self._queued:
            while not self._jobs:
                self._queued.wait()
            key = max(
                self._jobs, key=lambda k: math.log2(self._jobs[k][1]) + self._jobs[k][2] / HALF_LIFE
            )
            return self._jobs.pop(key)[0]

    def finished(self) -> list[tuple[str, bytes | str]]:
        """(key, object code) for each job done since the last call; (key, error text)
        for one that failed, and for every job left when the worker has died."""
        if not self._done and self.alive:
            return []  # (the hart asks between any two runs of the core: most often this)
        done = []
        while self._done:
            done.append(self._done.popleft())
        for key, _ in done:
            self._pending.discard(key)
        if not self.alive and not self._done:
            done += [(key, "the compile worker exited") for key in self._pending]
            self._pending.clear()
        return done

    def _feed(self) -> None:
        try:
            while True:
                self._slots.acquire()
                pickle.dump(self._hottest(), self.proc.stdin)
                self.proc.stdin.flush()
        except (OSError, ValueError):
            self.alive = False

    def _read(self) -> None:
        try:
            while True:
                self._done.append(pickle.load(self.proc.stdout))
                self._slots.release()
        except (EOFError, OSError, pickle.UnpicklingError):
            self.alive = False
            self._slots.release()  # (the feeder then finds the pipe closed)


def main() -> None:
    """The worker: compile each job read from stdin, answer on stdout, until stdin ends."""
    import llvmlite.binding as llvm

    from .compiler import compile_object, host_target_machine

    for option in LLVM_OPTIONS:
        llvm.set_option("", option)
    target_machine = host_target_machine()
    jobs, answers = sys.stdin.buffer, sys.stdout.buffer
    parent = os.getppid()
    while True:
        try:
            job = pickle.load(jobs)
        except (EOFError, OSError, pickle.UnpicklingError):
            return
        if os.getppid() != parent:
            return  # rvemu has ended: the jobs still queued are for nobody
        # The IR is many small objects: collecting while it is built only costs (a
        # collection once a job, not dozens: 13% less time a region).
        gc.disable()
        try:
            result: bytes | str = compile_object(job, target_machine)
        except Exception as error:  # the guest interprets this region instead
            result = f"{type(error).__name__}: {error}"
        finally:
            gc.enable()
        try:
            pickle.dump((job.key, result), answers)
            answers.flush()
        except OSError:  # (BrokenPipeError: rvemu ended meanwhile)
            return
