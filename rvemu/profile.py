"""Where a run's host time goes: `rvemu boot --profile`, or `Profile(machine)` in Python.

The hart counts the events that cost it time on their own slow paths (traps, interrupts,
whole-TLB flushes, page walks, CSR accesses, sfence.vma: `st[PROF_*]`, always on) and
counts the compiled regions it enters and what they retire. A Profile adds the rest: the
time inside the compiled core and, in there, the host cycles spent in compiled regions
(read around each region call while `st[PROFILE]` is set), and the time spent in Python
serving each kind of exit (device accesses, compiling hot code, idle waits).

Times are the CPU time of the hart's thread, so that other processes on a busy machine do
not inflate them; the cycle counter runs in wall time, so regions get the share of the
core's CPU time that their cycles are of the core's.

    >>> from rvemu import Machine
    >>> from rvemu.profile import Profile
    >>> m = Machine(); m.load("build/unikernel/hello.elf"); p = Profile(m)
    >>> result = m.run(); print(p.table(), file=sys.stderr)     # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .cpu import state as S

if TYPE_CHECKING:
    from .cpu.hart import Hart
    from .machine import Machine

EXITS = {
    S.EXIT_BUDGET: "budget (device polls)",
    S.EXIT_MMIO: "device access (MMIO)",
    S.EXIT_WFI: "WFI (idle)",
    S.EXIT_TOHOST: "tohost",
    S.EXIT_MARK: "boot mark",
    S.EXIT_DEBUG: "debugger",
}
COUNTERS = {  # st slot -> what it counts
    S.TRAPS: "traps and interrupts taken",
    S.PROF_INTERRUPTS: "  of which interrupts",
    S.PROF_TLB_FLUSHES: "whole-TLB flushes",
    S.PROF_WALKS + S.ACCESS_FETCH: "page walks: fetch",
    S.PROF_WALKS + S.ACCESS_LOAD: "page walks: load",
    S.PROF_WALKS + S.ACCESS_STORE: "page walks: store",
    S.PROF_CSR_READS: "CSR reads",
    S.PROF_CSR_WRITES: "CSR writes (each ends a stretch)",
    S.PROF_SFENCE: "sfence.vma",
    S.PROF_FENCE_I: "fence.i",
    S.PROF_REGION_CALLS: "compiled-region calls",
}


class Profile:
    """Times a machine's runs from now on (until `stop`); `table()` says where it went."""

    def __init__(self, machine: Machine) -> None:
        from .cpu.region_call import cycle_counter

        self.machine = machine
        self.hart = machine.hart
        self.hart.warm_up()  # both copies of the core loaded first: timings are the guest's
        self._cycles = cycle_counter
        self.core_seconds = 0.0
        self.core_cycles = 0
        self.core_calls = 0
        self.mode_switches = 0
        self.hot_seconds = 0.0  # Tier2.enter: finding, compiling or loading hot code
        self.hot_exits = 0
        self.install_seconds = 0.0  # Tier2.install_ready: the background worker's code
        self.exits: dict[int, list] = {}  # why -> [count, seconds serving it in Python]
        st = self.hart.st
        self._start = {slot: int(st[slot]) for slot in (*COUNTERS, S.PROF_REGION_INSNS)}
        self._start_cycles = int(st[S.PROF_REGION_CYCLES])
        self._start_instret = self.hart.instret
        self._start_compile = self.hart.tier2.seconds
        self._start_regions = self.hart.tier2.regions
        self._t0, self._p0 = time.perf_counter(), time.thread_time()
        self._t1 = self._p1 = None
        self.hart.profile = self
        st[S.PROFILE] = 1

    def stop(self) -> None:
        """Stop timing (the table then covers what ran until now)."""
        self._t1, self._p1 = time.perf_counter(), time.thread_time()
        self.hart.profile = None
        self.hart.st[S.PROFILE] = 0

    # --- called by Hart.run and Machine.run while profiling
    def hart_run(self, hart: Hart, end: int) -> int:
        """Hart.run's loop, timed."""
        clock, cycles = time.thread_time, self._cycles
        while True:
            t0 = clock()
            hart.tier2.install_ready()
            t1 = clock()
            run_core = hart.core.run_paged if hart._paged else hart.core.run_bare
            c1 = cycles()
            why = int(run_core(*hart._core_args(), end - hart.instret))
            self.core_cycles += cycles() - c1
            t2 = clock()
            self.install_seconds += t1 - t0
            self.core_seconds += t2 - t1
            self.core_calls += 1
            if not hart.inner_exit(why):
                return why
            if why == S.EXIT_HOT:
                self.hot_seconds += clock() - t2
                self.hot_exits += 1
            elif why == S.EXIT_MODE:
                self.mode_switches += 1

    def serve(self, serve_exit, why: int):  # noqa: ANN001, ANN201 (Machine._serve_exit)
        start = time.thread_time()
        try:
            return serve_exit(why)
        finally:
            entry = self.exits.setdefault(why, [0, 0.0])
            entry[0] += 1
            entry[1] += time.thread_time() - start

    # --- the report
    def figures(self) -> dict:
        """Every figure of the table, as data."""
        t1 = self._t1 if self._t1 is not None else time.perf_counter()
        p1 = self._p1 if self._p1 is not None else time.thread_time()
        wall, cpu = max(t1 - self._t0, 1e-9), max(p1 - self._p0, 1e-9)
        st = self.hart.st
        counts = {COUNTERS[k]: int(st[k]) - v for k, v in self._start.items() if k in COUNTERS}
        instructions = self.hart.instret - self._start_instret
        region_insns = int(st[S.PROF_REGION_INSNS]) - self._start[S.PROF_REGION_INSNS]
        region_cycles = int(st[S.PROF_REGION_CYCLES]) - self._start_cycles
        region_seconds = self.core_seconds * region_cycles / max(self.core_cycles, 1)
        exits = {
            EXITS.get(why, str(why)): {"count": n, "seconds": seconds}
            for why, (n, seconds) in self.exits.items()
        }
        served = sum(s for _, s in self.exits.values())
        return {
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "instructions": instructions,
            "core_seconds": self.core_seconds,
            "core_calls": self.core_calls,
            "region_seconds": region_seconds,
            "region_instructions": region_insns,
            "interpreter_seconds": self.core_seconds - region_seconds,
            "interpreter_instructions": instructions - region_insns,
            "hot_exits": self.hot_exits,
            "hot_seconds": self.hot_seconds,
            "install_seconds": self.install_seconds,
            "regions": self.hart.tier2.regions - self._start_regions,
            "compile_seconds": self.hart.tier2.seconds - self._start_compile,
            "exits": exits,
            "python_other_seconds": cpu
            - self.core_seconds
            - self.hot_seconds
            - self.install_seconds
            - served,
            "mode_switches": self.mode_switches,
            "counts": counts,
        }

    def table(self) -> str:
        fig = self.figures()
        cpu, n = fig["cpu_seconds"], max(fig["instructions"], 1)

        def row(what: str, seconds: float, note: str = "") -> str:
            return f"  {what:<40}{seconds:>9.3f} s {100 * seconds / cpu:>5.1f}%  {note}".rstrip()

        lines = [
            f"where host time went: {cpu:.3f} s CPU of the hart's thread ({fig['wall_seconds']:.3f}"
            f" s wall), {fig['instructions']:,} instructions"
        ]
        ri, ii = fig["region_instructions"], fig["interpreter_instructions"]
        lines.append(
            row(
                "interpreter (compiled core)",
                fig["interpreter_seconds"],
                f"{ii:,} instructions ({100 * ii / n:.1f}%), "
                f"{ii / max(fig['interpreter_seconds'], 1e-9) / 1e6:.0f} MIPS",
            )
        )
        calls = fig["counts"]["compiled-region calls"]
        lines.append(
            row(
                "compiled regions (tier 2)",
                fig["region_seconds"],
                f"{ri:,} instructions ({100 * ri / n:.1f}%) in {calls:,} calls, "
                f"{ri / max(calls, 1):.1f} per call",
            )
        )
        lines.append(
            row(
                "hot code: find, compile, load",
                fig["hot_seconds"],
                f"{fig['hot_exits']:,} exits, {fig['regions']} regions installed",
            )
        )
        lines.append(row("background compiles: install", fig["install_seconds"]))
        for name, e in sorted(fig["exits"].items(), key=lambda kv: -kv[1]["seconds"]):
            lines.append(row(f"exit to Python: {name}", e["seconds"], f"{e['count']:,} exits"))
        lines.append(
            row(
                "Python between core calls",
                fig["python_other_seconds"],
                f"{fig['core_calls']:,} core calls, {fig['mode_switches']:,} mode switches",
            )
        )
        lines.append("events counted by the hart")
        for name, count in fig["counts"].items():
            lines.append(f"  {name:<40}{count:>12,}")
        return "\n".join(lines)
