"""The hart as Python sees it: its state arrays and a `run` that enters the compiled core."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

import numpy as np

from . import state as S
from .isa import ALL_EXTENSIONS
from .layout import CODE_MAP, PAGE_CODE, PAGE_REGION, PAGE_WATCH, new_decoded_cache, new_tlb
from .names import X_NAMES
from .native import core

# Taken jumps to a pc before the second tier compiles the code there (0: never).
HOT_THRESHOLD = int(os.environ.get("RVEMU_HOT_THRESHOLD", "1000"))


def int64(value: int) -> int:
    """A 64-bit register value (an address up to 2**64 - 1 too) as the int64 it is stored as."""
    return value - (1 << 64) if value >= 1 << 63 else value


class SecondTier(Protocol):
    """What the hart needs of the second tier (rvemu.tier2's Tier2, handed in by the
    machine): the tables the loop reads, and what Hart.run calls."""

    hot: np.ndarray
    entries: np.ndarray
    entry_pc: np.ndarray
    threshold: int

    def install_ready(self) -> None: ...
    def enter(self, pc: int, off: int, paged: bool) -> None: ...
    def first_look(self) -> int: ...


class Hart:
    """One RV64GC hart. `x` and `f` are the register files (x has a 33rd scratch slot
    that absorbs writes to x0); `csr` is indexed by CSR number; `st` holds the rest."""

    HOST_SIDE = ("core",)  # not in a snapshot: the compiled code this process loaded

    def __init__(
        self,
        ram: np.ndarray,
        ram_base: int,
        second_tier: Callable[..., SecondTier],
        hart_id: int = 0,
    ) -> None:
        if len(ram) % 4096:
            raise ValueError("RAM size must be a multiple of 4 KiB")
        self.ram = ram
        self.ram_views = (ram, ram.view(np.uint16), ram.view(np.uint32), ram.view(np.int64))
        self.x = np.zeros(33, dtype=np.int64)
        self.f = np.zeros(32, dtype=np.int64)
        self.csr = np.zeros(4096, dtype=np.int64)
        self.st = np.zeros(S.ST_SIZE, dtype=np.int64)
        self.tlb = new_tlb()
        self.dc = new_decoded_cache(len(ram) // 4096)
        self.page_flags = np.zeros(len(ram) // 4096, dtype=np.uint8)
        self.st[S.RAM_BASE] = ram_base
        self.st[S.RAM_SIZE] = len(ram)
        self.hart_id = hart_id
        self.tier2 = second_tier(ram, ram_base, self.dc, self.page_flags, self.st)
        self.core = core  # the compiled entry points (native.py): one set per process
        self._hot_threshold = HOT_THRESHOLD
        self._extensions = ALL_EXTENSIONS
        self._paged = False  # which compiled copy of the core runs (see core.compile_run)
        self._breakpoints: tuple[int, ...] = ()
        self._watchpoints: tuple[tuple[int, int], ...] = ()  # (RAM offset, length)
        self._stepping = False
        self._interrupts_held = False
        self.profile = None  # a rvemu.profile.Profile times what run does
        self.reset()

    def reset(self, pc: int = 0) -> None:
        self.x[:] = 0
        self.f[:] = 0
        self.csr[:] = 0
        ram_base, ram_size = self.st[S.RAM_BASE], self.st[S.RAM_SIZE]
        self.st[:] = 0
        self.st[S.RAM_BASE] = ram_base
        self.st[S.RAM_SIZE] = ram_size
        self.st[S.PC] = int64(pc)
        self.st[S.PRIV] = S.PRIV_M
        self.st[S.RESERVATION] = -1
        self.st[S.MTIMECMP] = -1  # "never"; guests program it before enabling MTIE
        self.st[S.TOHOST] = -1
        self.st[S.MARK_MAIN] = -1
        self.st[S.SECOND_PAGE_FAULT] = -1
        self.st[S.HOT_THRESHOLD] = 0  # (set by _sync_debug below)
        self.st[S.EXTENSIONS] = self._extensions
        self.st[S.BREAK_SKIP] = -1
        self.csr[S.MISA] = S.MISA_VALUE
        self.csr[S.MSTATUS] = S.MSTATUS_UXL | S.MSTATUS_SXL
        self.csr[S.MHARTID] = self.hart_id
        self.core.pmp_changed(self.csr, self.st, self.tlb)  # no rule yet: S and U reach no memory
        self.flush_decoded()
        self._sync_debug()

    # --- running
    def run(self, budget: int) -> int:
        """Run up to `budget` instructions; returns why it stopped (state.EXIT_*)."""
        end = self.instret + budget
        if self.profile is not None:
            return self.profile.hart_run(self, end)
        while True:
            self.tier2.install_ready()  # regions the compile worker has finished
            run_core = self.core.run_paged if self._paged else self.core.run_bare
            why = int(run_core(*self._core_args(), end - self.instret))
            if not self.inner_exit(why):
                return why

    def inner_exit(self, why: int) -> bool:
        """Deal with an exit of the core that Hart.run handles itself, then runs on; False
        for the others (its caller's)."""
        if why == S.EXIT_HOT:
            pc, off = int(self.st[S.HOT_PC]), int(self.st[S.HOT_OFF])
            self.tier2.enter(pc, off, paged=self._paged)
        elif why == S.EXIT_MODE:
            self._paged = not self._paged  # the core's other compiled copy takes over
        elif why == S.EXIT_LIBRARY:
            self.core.load_lazy()
        else:
            return False
        return True

    def warm_up(self) -> None:
        """Load both compiled copies of the core and every library of it now (building
        them on a new machine), so that a guest does not pay for it in the middle of a run."""
        self.core.run_bare(*self._core_args(), 0)
        self.core.run_paged(*self._core_args(), 0)
        self.core.load_lazy()

    def _core_args(self) -> tuple:
        return (
            self.x,
            self.f,
            self.csr,
            self.st,
            *self.ram_views,
            self.tlb,
            self.dc,
            self.page_flags,
            self.tier2.hot,
            self.tier2.entries,
            self.tier2.entry_pc,
            self.core.aside,
        )

    def flush_decoded(self) -> None:
        """Forget decoded instructions: call after writing guest RAM from Python."""
        self.core.flush_code_pages(self.dc, self.page_flags)
        self.page_flags &= ~np.uint8(PAGE_CODE | PAGE_REGION)
        self.dc[CODE_MAP:] = 0
        self.core.tlb_flush(self.tlb)

    def invalidate_decoded(self, off: int, length: int) -> None:
        """Forget decoded instructions overlapping RAM [off, off + length) (a device wrote
        there)."""
        self.core.invalidate_decoded(self.dc, off, length)

    def watch_tohost(self, paddr: int) -> None:
        self.st[S.TOHOST] = paddr
        self._sync_debug()

    # --- a debugger's hold on the hart (rvemu.debug drives it)
    @property
    def breakpoints(self) -> tuple[int, ...]:
        """The pcs (virtual addresses) the hart stops before, leaving Hart.run with
        EXIT_DEBUG; run again, it passes the one it stopped at (st[BREAK_SKIP])."""
        return self._breakpoints

    @breakpoints.setter
    def breakpoints(self, pcs: tuple[int, ...]) -> None:
        if len(pcs) > S.MAX_BREAKPOINTS:
            raise ValueError(f"at most {S.MAX_BREAKPOINTS} breakpoints")
        self._breakpoints = tuple(pcs)
        self._sync_debug()

    @property
    def watchpoints(self) -> tuple[tuple[int, int], ...]:
        """(RAM offset, length) ranges a store to which leaves Hart.run with EXIT_DEBUG
        before the store (pc at it), st[DEBUG_HIT] = 1 + the range's index."""
        return self._watchpoints

    @watchpoints.setter
    def watchpoints(self, ranges: tuple[tuple[int, int], ...]) -> None:
        if len(ranges) > S.MAX_WATCHPOINTS:
            raise ValueError(f"at most {S.MAX_WATCHPOINTS} watchpoints")
        self._watchpoints = tuple(ranges)
        self._sync_debug()

    @property
    def stepping(self) -> bool:
        """Whether Hart.run returns after each instruction, trap or interrupt."""
        return self._stepping

    @stepping.setter
    def stepping(self, on: bool) -> None:
        if on == self._stepping:
            return
        self._stepping = on
        self._sync_debug()

    @property
    def interrupts_held(self) -> bool:
        """Whether pending interrupts wait (a debugger's single step does not take them)."""
        return self._interrupts_held

    @interrupts_held.setter
    def interrupts_held(self, on: bool) -> None:
        if on == self._interrupts_held:
            return
        self._interrupts_held = on
        self._sync_debug()

    @property
    def traps(self) -> int:
        """Traps and interrupts taken since reset."""
        return int(self.st[S.TRAPS])

    def _sync_debug(self) -> None:
        st = self.st
        bits = (S.DEBUG_STEP if self._stepping else 0) | (S.DEBUG_BREAK if self._breakpoints else 0)
        bits |= S.DEBUG_WATCH if self._watchpoints else 0
        bits |= S.DEBUG_NOIRQ if self._interrupts_held else 0
        st[S.DEBUG] = bits
        # No compiling while a debugger holds the hart: regions are not entered then.
        self.tier2.threshold = self._hot_threshold
        st[S.HOT_THRESHOLD] = 0 if bits else self.tier2.first_look()
        table = st[S.BREAKPOINTS : S.BREAKPOINTS + S.MAX_BREAKPOINTS]
        table[:] = -1
        table[: len(self._breakpoints)] = [int64(pc) for pc in self._breakpoints]
        st[S.WATCH_LEN : S.WATCH_LEN + S.MAX_WATCHPOINTS] = 0
        self.page_flags &= ~np.uint8(PAGE_WATCH)
        watched = [(int(st[S.TOHOST]) - int(st[S.RAM_BASE]), 8)] if st[S.TOHOST] != -1 else []
        for i, (off, length) in enumerate(self._watchpoints):
            st[S.WATCH_OFF + i], st[S.WATCH_LEN + i] = off, length
            watched.append((off, length))
        for off, length in watched:
            for page in range(off >> 12, ((off + length - 1) >> 12) + 1):
                if 0 <= page < len(self.page_flags):
                    self.page_flags[page] |= PAGE_WATCH
        self.core.tlb_flush(self.tlb)  # stores to watched pages must take the slow path

    @property
    def hot_threshold(self) -> int:
        """Taken jumps to a pc before the second tier compiles the code there; 0 turns
        the second tier off (the environment's RVEMU_HOT_THRESHOLD sets the default)."""
        return self._hot_threshold

    @hot_threshold.setter
    def hot_threshold(self, value: int) -> None:
        self._hot_threshold = value
        self._sync_debug()

    @property
    def extensions(self) -> int:
        """The optional extensions this hart has, as bits (isa.OPTIONAL_EXTENSIONS)."""
        return self._extensions

    @extensions.setter
    def extensions(self, value: int) -> None:
        self._extensions = value
        self.st[S.EXTENSIONS] = value
        self.flush_decoded()  # decoded instructions may be legal no longer

    # --- convenient views
    @property
    def pc(self) -> int:
        return int(self.st[S.PC])

    @pc.setter
    def pc(self, value: int) -> None:
        self.st[S.PC] = int64(value)

    @property
    def priv(self) -> int:
        return int(self.st[S.PRIV])

    @property
    def instret(self) -> int:
        return int(self.st[S.INSTRET])

    def reg(self, name: str) -> int:
        return int(self.x[X_NAMES.index(name)])
