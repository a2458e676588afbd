"""Compiling regions with LLVM and wiring them into the hart's decoded-instruction cache."""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cpu.isa import Op
from ..cpu.layout import DC_OP, DC_RS3RM, DC_TAG, PAGE_REGION, dc_slot
from ..cpu.state import EXTENSIONS
from .region import Insn, Region, find_region
from .worker import CompileWorker

if TYPE_CHECKING:
    import llvmlite.binding as llvm

# LLVM, Numba and the region emitter are imported where code is first compiled or
# loaded, not with this module: a guest that never gets hot never loads them.

NEVER = -(1 << 62)  # a hot counter that can no longer reach the threshold
UNTRANSLATED = -1  # entry_pc of a region compiled for untranslated code (no pc is odd)
MAX_COMPILES_PER_PAGE = 16  # past this, code on the page is rewritten too often to pay

# Compile regions in a worker process while the guest runs on (needs a second CPU to pay);
# RVEMU_BACKGROUND_COMPILE=0 compiles them at once, the guest waiting.
BACKGROUND = (
    os.environ.get("RVEMU_BACKGROUND_COMPILE", "1") != "0" and len(os.sched_getaffinity(0)) > 1
)

_engine: tuple | None = None
_worker: CompileWorker | None = None
# Compiled code by key (code_key): regions are pure functions of their key, so machines in
# one process share them, and the object code is kept on disk for the next process.
_loaded: dict[str, int] = {}
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
    """Code generation at -O0 (fast instruction selection and register allocation) is
    about ten times faster than at -O2; the IR passes of _optimize do the optimising that
    matters for this straight-line code. The host CPU's features give a native fused
    multiply-add (the FP fast paths' error terms)."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=0,
        jit=True,
    )


def _optimize(module: llvm.ModuleRef, target_machine: llvm.TargetMachineRef) -> None:
    """A short pipeline: registers-to-SSA for the exit bookkeeping, then folding. The full
    -O2 pipeline costs several times more and makes no faster code for regions."""
    import llvmlite.binding as llvm

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
        self.regions = 0  # regions installed: compiled now or taken from the code cache
        self.cached = 0  # of those, taken from the code cache (on disk, or this process's)
        self.failed = 0  # regions LLVM could not compile (they run interpreted)
        self.instructions = 0
        self.seconds = 0.0  # spent by the hart's thread (compiling, or loading compiled code)
        self.background = BACKGROUND
        # Regions the worker is compiling: key -> [(RAM offset, entry_pc, page bytes, job)]
        self._waiting: dict[str, list[tuple[int, int, bytes, Job]]] = {}

    def load_compiler(self) -> None:
        """Load now what the first hot region would (LLVM, Numba, the emitter and the
        compiled decoder), e.g. to time compiling apart from the process's start-up."""
        from ..cpu.decode import decode
        from .emit import RegionEmitter  # noqa: F401 (imported for its start-up cost)

        decode(0x13)
        _llvm()

    def enter(self, pc: int, off: int, paged: bool) -> None:
        """pc (at RAM offset off) got hot: compile the region starting there (or reuse
        it) and mark its entry. `paged`: pc is a virtual address (translated code). With
        `background`, a region not in the code cache is compiled by the worker process
        while the guest runs on; `install_ready` marks it when it is done."""
        slot = dc_slot(off)
        index = slot >> 3
        if not (0 <= off < len(self.ram)) or self.dc[slot + DC_TAG] != off:
            self.hot[index] = 0  # not decoded (yet) where the interpreter looks: try later
            return
        page = off >> 12
        code = self.ram[page << 12 : (page + 1) << 12].tobytes()
        entry_pc = pc if paged else UNTRANSLATED
        known = self.compiled.get((off, entry_pc))
        self.hot[index] = NEVER  # until installed, or the slot is decoded again (core.run)
        if known is not None and known[1] == code:
            self._install(off, entry_pc, known[0], code)
            return
        if self.compiles_per_page.get(page, 0) >= MAX_COMPILES_PER_PAGE:
            return
        self.compiles_per_page[page] = self.compiles_per_page.get(page, 0) + 1
        start = time.perf_counter()
        gc.disable()  # the IR is many small objects; collecting while building only costs
        try:
            job = self._job(off, pc, paged)
            if job is None:
                return
            address = self._cached_code(job)
            if address is None and self.background and self._worker().submit(job):
                self._waiting.setdefault(job.key, []).append((off, entry_pc, code, job))
                return
            if address is None:
                address = self._compile(job)
        except Exception as error:  # a bug here must not stop the guest: interpret
            self._failed(pc, error)
            return
        finally:
            gc.enable()
            self.seconds += time.perf_counter() - start
        self._install(off, entry_pc, address, code)

    def compile_at(self, off: int, pc: int, paged: bool) -> int:
        """The address of the region entered at RAM offset off (pc), compiled or taken
        from the code cache now, without marking it in the decoded cache; 0 if there is
        none (for tests that call regions directly)."""
        job = self._job(off, pc, paged)
        if job is None:
            return 0
        address = self._cached_code(job)
        return self._compile(job) if address is None else address

    def _compile(self, job: Job) -> int:
        """Compile the region here and now (the guest waiting); its address."""
        address = self._load(job, compile_object(job))
        self._count(job, cached=False)
        return address

    def install_ready(self) -> None:
        """Mark the regions the worker has finished, where their code is still what was
        compiled (the slot holds the same instruction, the page the same bytes)."""
        if not self._waiting:
            return
        for key, result in self._worker().finished():
            for off, entry_pc, code, job in self._waiting.pop(key, ()):
                if isinstance(result, str):
                    self._failed(job.page_pc + (off & 0xFFF), RuntimeError(result))
                    continue
                start = time.perf_counter()
                address = _loaded.get(key) or self._load(job, result)
                self.seconds += time.perf_counter() - start
                self._count(job, cached=False)
                page = off >> 12
                current = self.ram[page << 12 : (page + 1) << 12].tobytes()
                if self.dc[dc_slot(off) + DC_TAG] == off and current == code:
                    self._install(off, entry_pc, address, code)
                else:
                    self.hot[dc_slot(off) >> 3] = 0  # the code changed: count again

    def _install(self, off: int, entry_pc: int, address: int, code: bytes) -> None:
        slot = dc_slot(off)
        index = slot >> 3
        self.compiled[off, entry_pc] = (address, code)
        self.hot[index] = NEVER  # until the slot is decoded again (see core.run)
        self.entries[index] = address
        self.entry_pc[index] = entry_pc
        self.page_flags[off >> 12] |= PAGE_REGION
        if self.dc[slot + DC_OP] != Op.REGION:
            self.dc[slot + DC_RS3RM] = self.dc[slot + DC_OP]
            self.dc[slot + DC_OP] = Op.REGION

    def _failed(self, pc: int, error: Exception) -> None:
        if not self.failed:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            print(f"rvemu: tier2 could not compile at {pc:#x}: {reason}", file=sys.stderr)
        self.failed += 1

    def _job(self, off: int, pc: int, paged: bool) -> Job | None:
        region = find_region(off, self._insn_at)
        if off not in region.blocks:
            return None
        page_pc = pc & ~0xFFF
        key = code_key(repr(region), page_pc, paged, self.ram_base, len(self.ram))
        return Job(key, region, self.ram_base, len(self.ram), page_pc, paged)

    def _cached_code(self, job: Job) -> int | None:
        """The region's address if this process has it, or after loading it from disk."""
        address = _loaded.get(job.key)
        if address is None:
            folder = code_cache_dir()
            try:
                code = (folder / f"{job.key}.o").read_bytes() if folder else None
            except OSError:
                code = None
            if code is None:
                return None
            address = self._load(job, code)
        self._count(job, cached=True)
        return address

    def _count(self, job: Job, cached: bool) -> None:
        self.regions += 1
        self.instructions += len(job.region)
        self.cached += cached

    def _load(self, job: Job, code: bytes) -> int:
        """Add a region's object code to the JIT engine; its address."""
        import llvmlite.binding as llvm

        _, engine = _llvm()
        engine.add_object_file(llvm.ObjectFileRef.from_data(code))
        engine.finalize_object()
        address = _loaded[job.key] = engine.get_function_address(job.name)
        return address

    def _worker(self) -> CompileWorker:
        global _worker
        if _worker is None or not _worker.alive:
            _worker = CompileWorker()
        return _worker

    def _insn_at(self, off: int) -> Insn | None:
        from ..cpu.decode import available, decode
        from .emit import compiles

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


@dataclass(frozen=True)
class Job:
    """A region to compile, and everything its code depends on."""

    key: str
    region: Region
    ram_base: int
    ram_size: int
    page_pc: int
    paged: bool

    @property
    def name(self) -> str:
        return f"region_{self.key}"  # (the same code has the same name in every process)


def compile_object(job: Job, target_machine: llvm.TargetMachineRef | None = None) -> bytes:
    """The region's object code (and into the code cache on disk). In a second thread
    or process, pass a target machine of its own."""
    import llvmlite.binding as llvm

    from .emit import RegionEmitter

    target_machine = target_machine or _llvm()[0]
    emitter = RegionEmitter(
        job.region, job.name, job.ram_base, job.ram_size, job.page_pc, job.paged
    )
    module = emitter.build()
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


def code_key(region: str, page_pc: int, paged: bool, ram_base: int, ram_size: int) -> str:
    """What a region's code depends on: its instructions and where they sit, the mode, the
    RAM it reaches, rvemu's tier-2 sources (the rest of rvemu keys the cache folder, see
    code_cache_dir) and the host CPU the code is generated for."""
    import llvmlite.binding as llvm

    host = f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"
    text = f"{region} {page_pc} {paged} {ram_base} {ram_size} {_SOURCES} {host}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def code_cache_dir() -> Path | None:
    """Where compiled regions are kept between runs: beside Numba's cache of the core,
    whose folder is keyed on every compiled source of rvemu (see rvemu/__init__.py).
    None with RVEMU_CODE_CACHE=0: every process compiles afresh (as `rvemu bench`'s cold
    runs do, and as QEMU does)."""
    if os.environ.get("RVEMU_CODE_CACHE", "1") == "0":
        return None
    return Path(os.environ["NUMBA_CACHE_DIR"]) / "regions"


def _store(path: Path, code: bytes) -> None:
    """Write atomically: other processes may be reading the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(code)
        tmp.replace(path)
    except OSError:
        pass  # a read-only or full cache only costs the next run a compile
