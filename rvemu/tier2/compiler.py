"""Compiling regions with LLVM and wiring them into the hart's decoded-instruction cache."""

from __future__ import annotations

import gc
import itertools
import sys
import time

import llvmlite.binding as llvm
import numpy as np

from ..cpu.decode import available, decode
from ..cpu.isa import Op
from ..cpu.memory import DC_OP, DC_RS3RM, DC_TAG, PAGE_REGION, dc_slot
from ..cpu.state import EXTENSIONS
from .emit import RegionEmitter, compiles
from .region import Insn, find_region

NEVER = -(1 << 62)  # a hot counter that can no longer reach the threshold
UNTRANSLATED = -1  # entry_pc of a region compiled for untranslated code (no pc is odd)
MAX_COMPILES_PER_PAGE = 16  # past this, code on the page is rewritten too often to pay

_engine: tuple | None = None
_names = itertools.count()


def _llvm() -> tuple:
    """One LLVM JIT engine per process (Numba has already initialised LLVM's native target)."""
    global _engine
    if _engine is None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        # Code generation at -O0 (fast instruction selection and register allocation)
        # is about ten times faster than at -O2; the IR passes below do the optimising
        # that matters for this straight-line code. The host CPU's features give a
        # native fused multiply-add (the FP fast paths' error terms).
        target_machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(),
            features=llvm.get_host_cpu_features().flatten(),
            opt=0,
            jit=True,
        )
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target_machine)
        _engine = (target_machine, engine)
    return _engine


def _optimize(module: llvm.ModuleRef, target_machine: llvm.TargetMachineRef) -> None:
    """A short pipeline: registers-to-SSA for the exit bookkeeping, then folding. The full
    -O2 pipeline costs several times more and makes no faster code for regions."""
    passes = llvm.create_new_function_pass_manager()
    passes.add_sroa_pass()
    passes.add_instruction_combine_pass()
    passes.add_simplify_cfg_pass()
    builder = llvm.create_pass_builder(
        target_machine, llvm.create_pipeline_tuning_options(speed_level=0)
    )
    for function in module.functions:
        passes.run(function, builder)


class Tier2:
    """The second tier for one hart: hot counters, compiled regions, and their entries."""

    def __init__(
        self, ram: np.ndarray, ram_base: int, dc: np.ndarray, page_flags: np.ndarray, st: np.ndarray
    ) -> None:
        self.ram = ram
        self.ram16 = ram.view(np.uint16)
        self.ram_base = ram_base
        self.dc = dc
        self.page_flags = page_flags
        self.st = st  # the hart's state: which optional extensions it has
        self.hot = np.zeros(len(dc) // 8, dtype=np.int64)  # taken jumps to each slot's pc
        self.entries = np.zeros(len(dc) // 8, dtype=np.int64)  # region address per slot
        # The pc a slot's region must be entered at (translated code: the same physical
        # code may run at several virtual addresses), or UNTRANSLATED.
        self.entry_pc = np.full(len(dc) // 8, UNTRANSLATED, dtype=np.int64)
        # (RAM offset, entry_pc) -> (address, the page's bytes it was compiled from)
        self.compiled: dict[tuple[int, int], tuple[int, bytes]] = {}
        self.compiles_per_page: dict[int, int] = {}
        self.regions = 0
        self.failed = 0  # regions LLVM could not compile (they run interpreted)
        self.instructions = 0
        self.seconds = 0.0

    def enter(self, pc: int, off: int, paged: bool) -> None:
        """pc (at RAM offset off) got hot: compile the region starting there (or reuse
        it) and mark its entry. `paged`: pc is a virtual address (translated code)."""
        slot = dc_slot(off)
        index = slot >> 3
        if not (0 <= off < len(self.ram)) or self.dc[slot + DC_TAG] != off:
            self.hot[index] = 0  # not decoded (yet) where the interpreter looks: try later
            return
        page = off >> 12
        code = self.ram[page << 12 : (page + 1) << 12].tobytes()
        entry_pc = pc if paged else UNTRANSLATED
        known = self.compiled.get((off, entry_pc))
        if known is not None and known[1] == code:
            address = known[0]
        elif self.compiles_per_page.get(page, 0) >= MAX_COMPILES_PER_PAGE:
            address = 0
        else:
            self.compiles_per_page[page] = self.compiles_per_page.get(page, 0) + 1
            try:
                address = self._compile(off, pc, paged)
            except Exception as error:  # a bug here must not stop the guest: interpret
                if not self.failed:
                    reason = (str(error).splitlines() or [type(error).__name__])[0]
                    print(f"rvemu: tier2 could not compile at {pc:#x}: {reason}", file=sys.stderr)
                self.failed += 1
                address = 0
            if address:
                self.compiled[off, entry_pc] = (address, code)
        if not address:
            self.hot[index] = NEVER
            return
        self.hot[index] = NEVER  # until the slot is decoded again (see core.run)
        self.entries[index] = address
        self.entry_pc[index] = entry_pc
        self.page_flags[page] |= PAGE_REGION
        if self.dc[slot + DC_OP] != Op.REGION:
            self.dc[slot + DC_RS3RM] = self.dc[slot + DC_OP]
            self.dc[slot + DC_OP] = Op.REGION

    def _insn_at(self, off: int) -> Insn | None:
        if off & 1 or off + 2 > len(self.ram):
            return None
        raw = int(self.ram16[off >> 1])
        if raw & 3 == 3:
            if off + 4 > len(self.ram):
                return None
            raw |= int(self.ram16[(off >> 1) + 1]) << 16
        op, rd, rs1, rs2, rs3_rm, imm, length = decode(raw)
        if not compiles(int(op)) or not available(op, int(self.st[EXTENSIONS])):
            return None
        rs3, rm = int(rs3_rm) >> 3, int(rs3_rm) & 7
        return Insn(off, int(op), int(rd), int(rs1), int(rs2), int(imm), int(length), rm, rs3)

    def _compile(self, off: int, pc: int, paged: bool) -> int:
        """Address of the compiled region entered at RAM offset off, or 0 if there is none."""
        start = time.perf_counter()
        gc.disable()  # the IR is many small objects; collecting while building only costs
        try:
            return self._compile_region(off, pc, paged, start)
        finally:
            gc.enable()

    def _compile_region(self, off: int, pc: int, paged: bool, start: float) -> int:
        region = find_region(off, self._insn_at)
        if off not in region.blocks:
            return 0
        name = f"region_{pc & (1 << 64) - 1:x}_{next(_names)}"  # unique in the engine
        page_pc = pc & ~0xFFF
        module = RegionEmitter(region, name, self.ram_base, len(self.ram), page_pc, paged).build()
        target_machine, engine = _llvm()
        module.triple = target_machine.triple
        module.data_layout = str(target_machine.target_data)
        parsed = llvm.parse_assembly(str(module))
        parsed.verify()
        _optimize(parsed, target_machine)
        engine.add_module(parsed)
        engine.finalize_object()
        self.regions += 1
        self.instructions += len(region)
        self.seconds += time.perf_counter() - start
        return engine.get_function_address(name)
