"""Compiling regions with LLVM and wiring them into the hart's decoded-instruction cache."""

from __future__ import annotations

import functools
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
MAX_REWRITES_PER_PAGE = 16  # past this, code on the page is rewritten too often to pay

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
        # Per page: a hash of its bytes when code there was last compiled, and how many
        # times they had changed since the first (rewritten code: JITs, self-patching).
        self.page_code: dict[int, int] = {}
        self.rewrites_per_page: dict[int, int] = {}
        self.regions = 0  # regions installed: compiled now or taken from the code cache
        self.cached = 0  # of those, taken from the code cache (on disk, or this process's)
        self.failed = 0  # regions LLVM could not compile (they run interpreted)
        self.instructions = 0
        self.seconds = 0.0  # spent by the hart's thread (compiling, or loading compiled code)
        self.background = BACKGROUND
        # Regions the worker is compiling: key -> [(RAM offset, entry_pc, page bytes, job)]
        self._waiting: dict[str, list[tuple[int, int, bytes, Job]]] = {}
        self._waiting_on_page: dict[int, dict[str, Job]] = {}  # page -> those jobs by key

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
        # (Counting compiles instead left a page of dense code with more than 16 hot entry
        # points, loop heads and return points, to the interpreter: Linux's crypto tests.)
        last, now = self.page_code.get(page), hash(code)
        if last is not None and last != now:
            self.rewrites_per_page[page] = self.rewrites_per_page.get(page, 0) + 1
        self.page_code[page] = now
        if self.rewrites_per_page.get(page, 0) >= MAX_REWRITES_PER_PAGE:
            return
        page_key = self._page_key(code, off, pc, paged)
        start = time.perf_counter()
        address = self._cached_by_page(page_key)
        self.seconds += time.perf_counter() - start
        if address is not None:
            self._install(off, entry_pc, address, code)
            return
        if self._covered(page, off, pc, paged):
            # A region on its way to the worker holds this code: count its jumps again,
            # and compile it on its own only if it still gets hot once that one runs.
            # (Else, while the worker is behind, every branch target of a hot page gets
            # hot and is queued, each a region of much the same code: 109 for one page of
            # Linux's ECC code, and the queue only grows.)
            self.hot[index] = 0
            return
        start = time.perf_counter()
        gc.disable()  # the IR is many small objects; collecting while building only costs
        try:
            job = self._job(off, pc, paged)
            if job is None:
                return
            self._remember(page_key, job)
            address = self._cached_code(job)
            if address is None and self.background and self._worker().submit(job):
                self._waiting.setdefault(job.key, []).append((off, entry_pc, code, job))
                self._waiting_on_page.setdefault(page, {})[job.key] = job
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
                self._waiting_on_page.get(off >> 12, {}).pop(key, None)
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

    def _covered(self, page: int, off: int, pc: int, paged: bool) -> bool:
        """Whether a region waiting for the worker has a block starting at `off`, for
        the same mode and, translated, the same virtual page."""
        for job in self._waiting_on_page.get(page, {}).values():
            if off in job.region.blocks and job.paged == paged:
                if not paged or job.page_pc == pc & ~0xFFF:
                    return True
        return False

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
        key = code_key(region_text(region), page_pc, paged, self.ram_base, len(self.ram))
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

    def _count(self, job: Job, cached: bool, instructions: int | None = None) -> None:
        self.regions += 1
        self.instructions += len(job.region) if instructions is None else instructions
        self.cached += cached

    def _load(self, job: Job, code: bytes) -> int:
        """Add a region's object code to the JIT engine; its address."""
        return _load_object(job.key, code)

    # --- the code cache by page: a region found without finding it again
    def _page_key(self, code: bytes, off: int, pc: int, paged: bool) -> str:
        """A key for the region entered at `off`, from what it is a function of: the bytes
        of its page, the entry, the mode, the extensions (and what code_key adds)."""
        digest = hashlib.sha256(code)
        digest.update(f"{off & 0xFFF} {int(self.st[EXTENSIONS])}".encode())
        return code_key(digest.hexdigest(), pc & ~0xFFF, paged, self.ram_base, len(self.ram))

    def _remember(self, page_key: str, job: Job) -> None:
        entry = (job.key, len(job.region))
        if _by_page.get(page_key) != entry:
            _by_page[page_key] = entry
            folder = code_cache_dir()
            if folder is not None:
                _store(folder / f"{page_key}.k", f"{job.key} {len(job.region)}".encode())

    def _cached_by_page(self, page_key: str) -> int | None:
        """The address of the region a page key names, if its code is loaded or on disk
        (None: find the region, whose code may still be in the cache by its own key)."""
        entry = _by_page.get(page_key)
        folder = code_cache_dir()
        if entry is None and folder is not None:
            try:
                key, count = (folder / f"{page_key}.k").read_text().split()
                entry = _by_page[page_key] = (key, int(count))
            except (OSError, ValueError):
                return None
        if entry is None:
            return None
        key, count = entry
        address = _loaded.get(key)
        if address is None and folder is not None:
            try:
                address = _load_object(key, (folder / f"{key}.o").read_bytes())
            except OSError:
                return None
        if address is None:
            return None
        self.regions += 1
        self.instructions += count
        self.cached += 1
        return address

    def _worker(self) -> CompileWorker:
        global _worker
        if _worker is None or not _worker.alive:
            _worker = CompileWorker()
        return _worker

    def _insn_at(self, off: int) -> Insn | None:
        if off & 1 or off + 2 > len(self.ram):
            return None
        raw = int(self.ram16[off >> 1])
        if raw & 3 == 3:
            if off + 4 > len(self.ram):
                return None
            raw |= int(self.ram16[(off >> 1) + 1]) << 16
        extensions = int(self.st[EXTENSIONS])
        fields = _decoded.get((raw, extensions), _UNSEEN)
        if fields is _UNSEEN:  # (a call into Numba per instruction cost more than the rest)
            from ..cpu.decode import available, decode
            from .emit import compiles

            op, rd, rs1, rs2, rs3_rm, imm, length = decode(raw)
            fields = None
            if compiles(int(op)) and available(op, extensions):
                rs3, rm = int(rs3_rm) >> 3, int(rs3_rm) & 7
                fields = (int(op), int(rd), int(rs1), int(rs2), int(imm), int(length), rm, rs3)
            _decoded[raw, extensions] = fields
        return None if fields is None else Insn(off, *fields)


def _load_object(key: str, code: bytes) -> int:
    """Add a region's object code to the JIT engine; its address."""
    import llvmlite.binding as llvm

    _, engine = _llvm()
    engine.add_object_file(llvm.ObjectFileRef.from_data(code))
    engine.finalize_object()
    address = _loaded[key] = engine.get_function_address(f"region_{key}")
    return address


# page key (Tier2._page_key) -> (region key, instructions), as the .k files on disk say
_by_page: dict[str, tuple[str, int]] = {}
_UNSEEN = object()
# What _insn_at makes of an instruction's bits with a set of extensions: the fields of its
# Insn, or None where regions stop. Hot pages are looked at again for each entry on them.
_decoded: dict[tuple[int, int], tuple | None] = {}


def region_text(region: Region) -> str:
    """A region's blocks and instructions as text, for its key (repr() of the dataclasses
    says the same at several times the cost)."""
    return (
        ";".join(
            f"{b.start}>{b.fall_through}:"
            + ",".join(
                f"{i.off}.{i.op}.{i.rd}.{i.rs1}.{i.rs2}.{i.imm}.{i.length}.{i.rm}.{i.rs3}"
                for i in b.insns
            )
            for b in region.blocks.values()
        )
        + f"@{region.entry}"
    )


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
    text = f"{region} {page_pc} {paged} {ram_base} {ram_size} {_SOURCES} {_host()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@functools.cache
def _host() -> str:
    """The host CPU and its features: asking LLVM each time cost more than the rest of a
    region's key (Linux's boot looks up thousands)."""
    import llvmlite.binding as llvm

    return f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"


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
