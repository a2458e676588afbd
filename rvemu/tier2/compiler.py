"""Compiling regions with LLVM and wiring them into the hart's decoded-instruction cache."""

from __future__ import annotations

import ctypes
import gc
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cpu.isa import Op
from ..cpu.layout import (
    CODE_MAP,
    DC_ENTRIES,
    DC_OP,
    DC_RS3RM,
    DC_TAG,
    GRANULE,
    PAGE_REGION,
    dc_slot,
    granules,
)
from ..cpu.native import core
from ..cpu.region_abi import UNTRANSLATED
from ..cpu.state import EXTENSIONS
from .region import PAGE, Insn, Region, find_region
from .worker import CompileWorker

if TYPE_CHECKING:
    import llvmlite.binding as llvm

# LLVM, Numba and the region emitter are imported where code is first compiled or
# loaded, not with this module: a guest that never gets hot never loads them.

NEVER = -(1 << 62)  # a hot counter that can no longer reach the threshold
# Taken jumps to a pc before the code cache is asked for a region there (at most the hot
# threshold): code compiled by an earlier run starts after a few jumps, not a thousand.
LOOK = 50
# A region ends where one of at least this many instructions starts, and continues in it
# (Job.stops), rather than compiling its code again: inner loops got hot first, and every
# region entered outside them held another copy (sha256 compiled 1342 instructions for
# about 300). Smaller ones are copied: a chain costs more than their code (bench-vm's
# dispatch, reached from every handler).
SHARE = 32
MAX_COMPILES_PER_PAGE = 16  # recompiles of rewritten code: past this, it does not pay

# Compile regions in a worker process while the guest runs on (needs a second CPU to pay);
# RVEMU_BACKGROUND_COMPILE=0 compiles them at once, the guest waiting.
BACKGROUND = (
    os.environ.get("RVEMU_BACKGROUND_COMPILE", "1") != "0" and len(os.sched_getaffinity(0)) > 1
)

_engine: tuple | None = None
_worker: CompileWorker | None = None
# Compiled code by key (code_key): regions are pure functions of their key, so machines in
# one process share them, and the object code is kept on disk for the next process.
# key -> (address, guest instructions in the region, its code-map bits)
_loaded: dict[str, tuple[int, int, int]] = {}
_host: str | None = None  # the host CPU, as code_key names it
_SOURCES = hashlib.sha1(
    b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))
).hexdigest()


def _llvm() -> tuple:
    """One LLVM JIT engine per process."""
    global _engine
    import llvmlite.binding as llvm

    if _engine is None:
        target_machine = host_target_machine()
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), host_target_machine())
        _engine = (target_machine, engine)
    return _engine


def host_target_machine() -> llvm.TargetMachineRef:
    """Code generation at -O2: its register allocator keeps the region's guest registers
    (locals, see emit.py) in host registers, where -O0's spills every value at every
    block's end. Measured on the compute benchmarks' regions: twice as fast code (sha256
    1.6 -> 2.7 G guest instructions/s, matmul 1.2 -> 3.5) for about twice the compile
    time (0.4 ms per guest instruction instead of 0.04 in LLVM's code generator; building
    the IR in Python costs 0.1-0.4 ms). The host CPU's features give a native fused
    multiply-add (the FP fast paths' error terms)."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=2,
        jit=True,
    )


def _optimize(module: llvm.ModuleRef, target_machine: llvm.TargetMachineRef) -> None:
    """A short pipeline: registers-to-SSA for the guest registers and the exit
    bookkeeping, folding, and dead stores (a register written twice with no exit between
    is stored once). The full -O2 pipeline costs several times more and made no faster
    code for regions."""
    import llvmlite.binding as llvm

    passes = llvm.create_new_function_pass_manager()
    passes.add_sroa_pass()
    passes.add_instruction_combine_pass()
    passes.add_simplify_cfg_pass()
    passes.add_dead_store_elimination_pass()
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
        self.ram_base = ram_base
        self.dc = dc
        self.page_flags = page_flags
        self.st = st  # the hart's state: which optional extensions it has
        self.hot = np.zeros(DC_ENTRIES, dtype=np.int64)  # taken jumps to each slot's pc
        self.entries = np.zeros(DC_ENTRIES, dtype=np.int64)  # region address per slot
        # The pc a slot's region must be entered at (translated code: the same physical
        # code may run at several virtual addresses), or UNTRANSLATED.
        self.entry_pc = np.full(DC_ENTRIES, UNTRANSLATED, dtype=np.int64)
        # (RAM offset, entry_pc) -> (address, the page's bytes it was compiled from)
        self.compiled: dict[tuple[int, int], tuple[int, bytes]] = {}
        self.compiles_per_page: dict[int, int] = {}
        self.regions = 0  # regions installed: compiled now or taken from the code cache
        self.cached = 0  # of those, taken from the code cache (on disk, or this process's)
        self.failed = 0  # regions LLVM could not compile (they run interpreted)
        self.instructions = 0
        self.seconds = 0.0  # spent by the hart's thread (compiling, or loading compiled code)
        self.background = BACKGROUND
        self.threshold = 0  # taken jumps before compiling (the hart's hot_threshold)
        # Regions the worker is compiling: key -> [(RAM offset, entry_pc, page bytes, job)]
        self._waiting: dict[str, list[tuple[int, int, bytes, Job]]] = {}
        self._looked: set[tuple[int, int]] = set()  # (off, entry_pc) not in the code cache
        # Region entries compiled (or being compiled) on each page: (page, its pc when
        # translated, else -1) -> RAM offsets and their keys. (An entry whose region has
        # since gone only makes a region hand over there: the interpreter compiles it
        # again.)
        self._page_entries: dict[tuple[int, int], dict[int, str]] = {}  # (offset -> key)
        # Keys of the regions the worker is compiling on each page (as _page_entries)
        self._waiting_on_page: dict[tuple[int, int], set[str]] = {}
        # (off, entry_pc) of each pc counted on while a region the worker is compiling
        # holds it (as its entry or a block) -> that region's key
        self._counted: dict[tuple[int, int], str] = {}

    def load_compiler(self) -> None:
        """Load now what the first hot region would (LLVM, Numba, the emitter and the
        compiled decoder), e.g. to time compiling apart from the process's start-up."""
        from .emit import RegionEmitter  # noqa: F401 (imported for its start-up cost)

        decoded(0x13)
        _llvm()

    def first_look(self) -> int:
        """The count of taken jumps at which the hart first hands a pc to `enter`."""
        return min(self.threshold, LOOK)

    def enter(self, pc: int, off: int, paged: bool) -> None:
        """pc (at RAM offset off) got hot: mark the region starting there, from the code
        cache (looked in after `first_look` jumps) or compiled (after `threshold`).
        `paged`: pc is a virtual address (translated code). With `background`, a region
        not in the code cache is compiled by the worker process while the guest runs on;
        `install_ready` marks it when it is done."""
        slot = dc_slot(off)
        index = slot >> 3
        if not (0 <= off < len(self.ram)) or self.dc[slot + DC_TAG] != off:
            self.hot[index] = 0  # not decoded (yet) where the interpreter looks: try later
            return
        entry_pc = pc if paged else UNTRANSLATED
        waiting_for = self._counted.get((off, entry_pc))
        if waiting_for in self._waiting:  # hot again while its region waits: sooner
            self._worker().heat(waiting_for)
            self.hot[index] = self._count_on()
            return
        page = off >> 12
        code = self.ram[page << 12 : (page + 1) << 12].tobytes()
        known = self.compiled.get((off, entry_pc))
        self.hot[index] = NEVER  # until installed, or the slot is decoded again (core.run)
        if known is not None and same_code(known[1], code, _loaded[known[0]][2]):
            self._install(off, entry_pc, known[0], code)
            return
        start = time.perf_counter()
        gc.disable()  # the IR is many small objects; collecting while building only costs
        try:
            key = self._key(off, pc, paged, code)
            address = self._cached_code(key)
            if address is None:
                early = self.first_look()
                if early < self.threshold and (off, entry_pc) not in self._looked:
                    # Not compiled before: count on to the threshold.
                    self._looked.add((off, entry_pc))
                    self.hot[index] = self._count_on()
                    return
                if known is not None:  # compiled before, from other code: rewritten
                    if self.compiles_per_page.get(page, 0) >= MAX_COMPILES_PER_PAGE:
                        return
                    self.compiles_per_page[page] = self.compiles_per_page.get(page, 0) + 1
                where = page_key(off, pc, paged)
                covering = self._covering(where, off) if self.background else None
                if covering is not None:
                    # A region on its way from the worker holds this code as a block:
                    # count its jumps on (each time they make it hot, the worker takes
                    # that region sooner), and compile it on its own only if it still
                    # gets hot after that one runs. (Else, while the worker is behind,
                    # every branch target of a hot page gets hot and is queued, each a
                    # region of much the same code: 109 for one page of Linux's ECC
                    # code.)
                    self._counted[off, entry_pc] = covering
                    self.hot[index] = self._count_on()
                    return
                job = self._job(key, off, pc, paged, code)
                if self.background and self._worker().submit(job):
                    self._waiting.setdefault(job.key, []).append((off, entry_pc, code, job))
                    self._waiting_on_page.setdefault(where, set()).add(job.key)
                    self._counted[off, entry_pc] = job.key
                    self.hot[index] = self._count_on()
                    return
                if self._compile(job) is None:
                    return
        except Exception as error:  # a bug here must not stop the guest: interpret
            self._failed(pc, error)
            return
        finally:
            gc.enable()
            self.seconds += time.perf_counter() - start
        self._install(off, entry_pc, key, code)

    def compile_at(self, off: int, pc: int, paged: bool) -> int:
        """The address of the region entered at RAM offset off (pc), compiled or taken
        from the code cache now, without marking it in the decoded cache; 0 if there is
        none (for tests that call regions directly)."""
        page = off >> 12
        code = self.ram[page << 12 : (page + 1) << 12].tobytes()
        key = self._key(off, pc, paged, code)
        address = self._cached_code(key)
        if address is None:
            job = replace(self._job(key, off, pc, paged, code), run=None)  # (none has run)
            address = self._compile(job)
        return address or 0

    def _compile(self, job: Job) -> int | None:
        """Compile the region here and now (the guest waiting); its address, or None if
        its first instruction is one regions do not do."""
        code = compile_object(job)
        if not code:
            return None
        address = self._load(job.key, code)
        self._count(_loaded[job.key][1], cached=False)
        return address

    def install_ready(self) -> None:
        """Mark the regions the worker has finished, where their code is still what was
        compiled (the slot holds the same instruction, the page the same bytes where the
        region's instructions are)."""
        if not self._waiting:
            return
        for key, result in self._worker().finished():
            waiting = self._waiting.pop(key, ())
            for off, _, _, job in waiting:
                where = page_key(off, job.page_pc, job.paged)
                self._waiting_on_page.get(where, set()).discard(key)
            if isinstance(result, str) or not result:
                for off, _, _, job in waiting:
                    if self.dc[dc_slot(off) + DC_TAG] == off:
                        self.hot[dc_slot(off) >> 3] = NEVER  # interpreted from now on
                    if result:
                        self._failed(job.page_pc + (off & 0xFFF), RuntimeError(result))
                continue  # (no result: no region starts there)
            if not waiting:
                continue
            start = time.perf_counter()
            if key not in _loaded:
                self._load(key, result)
            self.seconds += time.perf_counter() - start
            _, size, cover = _loaded[key]
            self._count(size, cached=False)  # (once: a pc can wait twice for one region)
            for off, entry_pc, code, _ in waiting:
                page = off >> 12
                current = self.ram[page << 12 : (page + 1) << 12].tobytes()
                if self.dc[dc_slot(off) + DC_TAG] == off and same_code(current, code, cover):
                    self._install(off, entry_pc, key, code)
                else:
                    self.hot[dc_slot(off) >> 3] = 0  # the code changed: count again

    def _count_on(self) -> int:
        """The hot counter that brings a pc back after another threshold's worth of
        jumps (core.jumped_to hands it over when the counter reaches `first_look`):
        counting from 0, every 50 jumps came here (175,000 exits in Linux's boot)."""
        early = self.first_look()
        return early - (self.threshold - early)

    def _covering(self, where: tuple[int, int], off: int) -> str | None:
        """The key of a region the worker is compiling on page `where` (as _page_entries
        keys it) that has a block at RAM offset `off` (decoded here once per such
        region), if there is one."""
        for key in self._waiting_on_page.get(where, ()):
            waiting = self._waiting.get(key)
            if waiting and off in waiting[0][3].region.blocks:
                return key
        return None

    def _install(self, off: int, entry_pc: int, key: str, code: bytes) -> None:
        """Mark the region `key` (loaded) at its entry; `code` is the page it was made
        from."""
        slot = dc_slot(off)
        index = slot >> 3
        address, _, cover = _loaded[key]
        self.compiled[off, entry_pc] = (key, code)
        self.hot[index] = NEVER  # until the slot is decoded again (see core.run)
        self.entries[index] = address
        self.entry_pc[index] = entry_pc
        self.page_flags[off >> 12] |= PAGE_REGION
        self.dc[CODE_MAP + (off >> 12)] |= cover  # stores there must forget it
        if self.dc[slot + DC_OP] != Op.REGION:
            self.dc[slot + DC_RS3RM] = self.dc[slot + DC_OP]
            self.dc[slot + DC_OP] = Op.REGION

    def _failed(self, pc: int, error: Exception) -> None:
        if not self.failed:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            print(f"rvemu: tier2 could not compile at {pc:#x}: {reason}", file=sys.stderr)
        self.failed += 1

    def _key(self, off: int, pc: int, paged: bool, code: bytes) -> str:
        """The code cache's key for the region entered at RAM offset off (pc), whose page
        holds `code`: everything the region is made from (see code_key)."""
        page_pc = pc & ~0xFFF
        mode = (paged, page_pc, off, self.ram_base, len(self.ram), int(self.st[EXTENSIONS]))
        return code_key(code, repr(mode))

    def _job(self, key: str, off: int, pc: int, paged: bool, code: bytes) -> Job:
        """The region at `off` to compile, ending at the page's other entries (for this
        mode and, translated, this virtual page), which are then this one's too."""
        extensions = int(self.st[EXTENSIONS])
        page_pc = pc & ~0xFFF
        entries = self._page_entries.setdefault(page_key(off, pc, paged), {})
        stops = frozenset(o for o, key in entries.items() if _loaded.get(key, (0, 0))[1] >= SHARE)
        entries[off] = key
        ram_size = len(self.ram)
        # (A hart that compiles at a pc's first jumps, as tests do, has run little of the
        # code around it yet: its regions take all of it.)
        run = self._run_on_page(off) if self.threshold >= LOOK else None
        return Job(key, code, off, extensions, self.ram_base, ram_size, page_pc, paged, stops, run)

    def _run_on_page(self, off: int) -> bytes:
        """Which halfwords of off's page hold an instruction the interpreter has decoded
        (so run), one bit each (Job.run)."""
        first = off & ~(PAGE - 1)
        offsets = np.arange(first, first + PAGE, 2)
        tags = self.dc[dc_slot(offsets) + DC_TAG]  # (dc_slot of each, as numpy does it)
        return np.packbits(tags == offsets, bitorder="little").tobytes()

    def _cached_code(self, key: str) -> int | None:
        """The region's address if this process has it, or after loading it from disk."""
        if key in _loaded:
            address, count, _ = _loaded[key]
        else:
            folder = code_cache_dir()
            if folder is None or key not in _disk_keys(folder):
                return None
            try:
                code = (folder / f"{key}.o").read_bytes()
            except OSError:
                return None
            address = self._load(key, code)
            count = _loaded[key][1]
        self._count(count, cached=True)
        return address

    def _count(self, instructions: int, cached: bool) -> None:
        self.regions += 1
        self.instructions += instructions
        self.cached += cached

    def _load(self, key: str, code: bytes) -> int:
        """Add a region's object code to the JIT engine; its address."""
        import llvmlite.binding as llvm

        _, engine = _llvm()
        engine.add_object_file(llvm.ObjectFileRef.from_data(code))
        engine.finalize_object()
        address = engine.get_function_address(Job.function_name(key))
        size, cover = (
            ctypes.c_int64.from_address(engine.get_global_value_address(f"{name}_{key}")).value
            for name in ("size", "cover")
        )
        _loaded[key] = (address, size, cover)
        return address

    def _worker(self) -> CompileWorker:
        global _worker
        if _worker is None or not _worker.alive:
            _worker = CompileWorker()
        return _worker


@dataclass
class Job:
    """A region to compile, and everything its code depends on: the bytes of its page,
    decoded where it is compiled (the worker process, in the background)."""

    key: str
    code: bytes  # the page's bytes
    entry: int  # the RAM offset of its first instruction
    extensions: int  # the hart's optional extensions (st[EXTENSIONS])
    ram_base: int
    ram_size: int
    page_pc: int
    paged: bool
    # Entries of the page's other regions (compiled, or being compiled): this one ends
    # there and chains into them. Not in the key: any set gives a region that behaves
    # the same, only the code is shared differently.
    stops: frozenset[int] = frozenset()
    # The instructions of the page that have run, one bit per halfword (None: all of
    # them): the region leaves for the interpreter where the others start. In Linux's
    # boot a third of what a page's branches reach never runs (error paths, other
    # configurations), and compiling it cost the worker as much as the rest. Not in the
    # key, as stops: a region cut shorter behaves the same.
    run: bytes | None = None

    @cached_property
    def region(self) -> Region:
        first = self.entry & ~(PAGE - 1)
        decoder = page_decoder(self.code, first, self.extensions)
        if self.run is not None:
            run, all_of = self.run, decoder

            def decoder(off: int) -> Insn | None:
                k = (off - first) >> 1
                return all_of(off) if run[k >> 3] >> (k & 7) & 1 else None

        return find_region(self.entry, decoder, stops=self.stops)

    @property
    def name(self) -> str:
        return self.function_name(self.key)

    @staticmethod
    def function_name(key: str) -> str:
        return f"region_{key}"  # (the same code has the same name in every process)


def compile_object(job: Job, target_machine: llvm.TargetMachineRef | None = None) -> bytes:
    """The region's object code (and into the code cache on disk). In a second thread
    or process, pass a target machine of its own."""
    import llvmlite.binding as llvm

    from .emit import RegionEmitter

    if job.entry not in job.region.blocks:
        return b""  # its first instruction is not one regions do
    target_machine = target_machine or _llvm()[0]
    emitter = RegionEmitter(
        job.region, job.name, job.ram_base, job.ram_size, job.page_pc, job.paged
    )
    module = emitter.build()
    from llvmlite import ir

    # What Tier2._load reads besides the function: the region's size in instructions, and
    # the granules of its page its instructions lie in (layout.CODE_MAP).
    for name, value in (("size", len(job.region)), ("cover", coverage(job.region))):
        variable = ir.GlobalVariable(module, ir.IntType(64), f"{name}_{job.key}")
        variable.initializer = ir.Constant(ir.IntType(64), value)
        variable.global_constant = True
    module.triple = target_machine.triple
    module.data_layout = str(target_machine.target_data)
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    _optimize(parsed, target_machine)
    code = target_machine.emit_object(parsed)
    folder = code_cache_dir()
    if folder is not None:
        _store(folder / f"{job.key}.o", code)
    return code


def page_key(off: int, pc: int, paged: bool) -> tuple[int, int]:
    """The key of the page holding RAM offset `off` (at pc) in Tier2's per-page tables:
    its RAM page and, for translated code, its virtual page (-1 for untranslated)."""
    return off >> 12, (pc & ~0xFFF) if paged else -1


def same_code(a: bytes, b: bytes, cover: int) -> bool:
    """Whether two versions of a page have the same bytes in the granules `cover` names
    (a region's code-map bits: what the region was made from)."""
    if a == b:
        return True
    granule = 1 << GRANULE
    return all(
        a[k * granule : (k + 1) * granule] == b[k * granule : (k + 1) * granule]
        for k in range(64)
        if cover >> k & 1
    )


def coverage(region: Region) -> int:
    """The code-map bits (layout.CODE_MAP) of the bytes the region's instructions lie in."""
    bits = 0
    for block in region.blocks.values():
        for ins in block.insns:
            bits |= granules(ins.off, ins.length)
    return bits - (1 << 64) if bits >> 63 else bits  # (as an int64)


# Decoded instructions by their bits, for every page this process decodes.
_decoded: dict[int, tuple[int, int, int, int, int, int, int]] = {}


def decoded(raw: int) -> tuple[int, int, int, int, int, int, int]:
    """cpu.decode's (op, rd, rs1, rs2, rs3_rm, imm, length) of an instruction's bits, from
    the native core (Numba's decoder would be compiled on a machine's first hot code, in
    the hart's process and the worker's alike), remembered."""
    fields = _decoded.get(raw)
    if fields is None:
        out = np.zeros(7, dtype=np.int64)  # (its own: harts in other threads decode too)
        core.decode_into(raw, out)
        fields = _decoded[raw] = tuple(int(v) for v in out)
    return fields


def page_decoder(code: bytes, first: int, extensions: int) -> Callable[[int], Insn | None]:
    """find_region's `insn_at` over a page's bytes `code` (at RAM offset `first`): the
    instruction at a RAM offset, or None where a region must stop (an instruction the
    emitter does not translate, one the hart's extensions lack, one running off the
    page)."""
    from ..cpu.decode import EXTENSION_MASK
    from .emit import compiles, counter_read

    def insn_at(off: int) -> Insn | None:
        i = off - first
        if off & 1 or not 0 <= i <= len(code) - 2:
            return None
        raw = code[i] | code[i + 1] << 8
        if raw & 3 == 3:
            if i + 4 > len(code):
                return None
            raw |= (code[i + 2] | code[i + 3] << 8) << 16
        op, rd, rs1, rs2, rs3_rm, imm, length = decoded(raw)
        mask = int(EXTENSION_MASK[op])
        if not (compiles(op) or counter_read(op, rs1, imm)):
            return None
        if mask != 0 and mask & extensions == 0:
            return None
        return Insn(off, op, rd, rs1, rs2, imm, length, rs3_rm & 7, rs3_rm >> 3)

    return insn_at


_disk_index: tuple[Path, set[str]] | None = None


def _disk_keys(folder: Path) -> set[str]:
    """The keys of the regions in the code cache on disk, listed once per process (a
    region another process adds meanwhile is compiled here again: only a cost)."""
    global _disk_index
    if _disk_index is None or _disk_index[0] != folder:
        try:
            names = os.listdir(folder)
        except OSError:
            names = []
        _disk_index = (folder, {n[:-2] for n in names if n.endswith(".o")})
    return _disk_index[1]


def code_key(code: bytes, where: str) -> str:
    """What a region's code depends on: the bytes of its page (a region never leaves it),
    `where` (its entry, the page's pc and RAM offset, the mode, the RAM it reaches, the
    extensions the hart has), rvemu's tier-2 sources (the rest of rvemu keys the cache
    folder, see code_cache_dir) and the host CPU the code is generated for. Computed
    without decoding anything, so that a region from the cache costs no more than its
    lookup."""
    global _host
    if _host is None:
        import llvmlite.binding as llvm

        _host = f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"
    text = f"{where} {_SOURCES} {_host}".encode()
    return hashlib.sha256(code + text).hexdigest()[:32]


def code_cache_dir() -> Path | None:
    """Where compiled regions are kept between runs: beside Numba's cache of the core,
    whose folder is keyed on every compiled source of rvemu (see rvemu/__init__.py).
    None with RVEMU_CODE_CACHE=0: every process compiles afresh (as `rvemu bench`'s cold
    runs do, and as QEMU does)."""
    if os.environ.get("RVEMU_CODE_CACHE", "1") == "0":
        return None
    return _regions_folder(os.environ["NUMBA_CACHE_DIR"])


@cache  # (the hart asks at every pc that gets hot: a Path costs more than the lookup)
def _regions_folder(numba_cache: str) -> Path:
    return Path(numba_cache) / "regions"


def _store(path: Path, code: bytes) -> None:
    """Write atomically: other processes may be reading the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(code)
        tmp.replace(path)
    except OSError:
        pass  # a read-only or full cache only costs the next run a compile
