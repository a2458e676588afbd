"""Compiling regions in a second process, so that the guest runs on while LLVM works.

`Tier2` hands a `Job` to `CompileWorker.submit` and carries on interpreting; the worker
process (`main` below) builds the region's IR, has LLVM compile it,
writes the object code to the code cache and sends it back; `Tier2.install_ready` loads
it between two runs of the core. A process, not a thread: building IR is Python code,
which would hold the interpreter's lock half the time the guest needs it.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import subprocess
import sys
import threading

# Jobs handed to the worker process at a time; the others wait here, newest first: the
# code that got hot last is the code running now (in Linux's boot each phase's hot code
# is hot for a while only), and a job queued long ago may be for code that ran its course.
IN_FLIGHT = 2


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
        self._jobs: queue.LifoQueue = queue.LifoQueue()
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
            self._jobs.put(job)
        return True

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
                pickle.dump(self._jobs.get(), self.proc.stdin)
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
    from .compiler import compile_object, host_target_machine

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
        try:
            result: bytes | str = compile_object(job, target_machine)
        except Exception as error:  # the guest interprets this region instead
            result = f"{type(error).__name__}: {error}"
        try:
            pickle.dump((job.key, result), answers)
            answers.flush()
        except OSError:  # (BrokenPipeError: rvemu ended meanwhile)
            return
