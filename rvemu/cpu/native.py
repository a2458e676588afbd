"""The compiled core as the rest of rvemu calls it: `core.run_bare(...)`, `core.tlb_flush(tlb)`.

Every entry point is a Numba-compiled function. Importing Numba and loading its cached
code takes about half a second, while a small guest runs in milliseconds; so the entry
points are also built, once per machine, into shared libraries (native_build.py) that
this module loads with ctypes, without importing Numba. A `rvemu boot` of a unikernel then
starts in a fraction of the time. It is the same compiled code: where a library is
missing or cannot be built (no C linker, another architecture), or RVEMU_NATIVE_CORE=0,
the Numba functions themselves serve.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

RUN = (
    # x, f, csr, st, ram8, ram16, ram32, ram64, tlb, dc, page_flags, hot, entries, entry_pc
    ("int64[]",) * 4
    + ("uint8[]", "uint16[]", "uint32[]", "int64[]")
    + ("int64[]", "int64[]", "uint8[]", "int64[]", "int64[]", "int64[]")
    + ("int64",)  # budget
)


@dataclass(frozen=True)
class EntryPoint:
    module: str
    function: str
    returns: str  # "int64", "bool" or "void"
    params: tuple[str, ...]  # "int64", "bool", or an array: "<dtype>[]"
    library: str  # which shared library holds it (each is built by its own process)


# What Python calls in the compiled code, and nothing else: everything these call is
# compiled into their library.
ENTRY_POINTS = {
    "run_bare": EntryPoint("rvemu.cpu.core", "run_bare", "int64", RUN, "bare"),
    "run_paged": EntryPoint("rvemu.cpu.core", "run_paged", "int64", RUN, "paged"),
    "tlb_flush": EntryPoint("rvemu.mmu.tlb", "tlb_flush", "void", ("int64[]",), "bare"),
    "pmp_changed": EntryPoint("rvemu.mmu.pmp", "pmp_changed", "void", ("int64[]",) * 3, "bare"),
    "flush_code_pages": EntryPoint(
        "rvemu.cpu.memory", "flush_code_pages", "void", ("int64[]", "uint8[]"), "bare"
    ),
    "invalidate_decoded": EntryPoint(
        "rvemu.cpu.memory", "invalidate_decoded", "void", ("int64[]", "int64", "int64"), "bare"
    ),
    "next_timer_deadline": EntryPoint(
        "rvemu.cpu.trap", "next_timer_deadline", "int64", ("int64[]", "int64[]"), "bare"
    ),
    "is_implemented": EntryPoint("rvemu.cpu.csr", "is_implemented", "bool", ("int64",), "bare"),
    "accessible": EntryPoint(
        "rvemu.cpu.csr", "accessible", "bool", ("int64", "int64[]", "int64[]", "bool"), "bare"
    ),
    "csr_read": EntryPoint(
        "rvemu.cpu.csr", "csr_read", "int64", ("int64", "int64[]", "int64[]", "int64"), "bare"
    ),
    "csr_write": EntryPoint(
        "rvemu.cpu.csr",
        "csr_write",
        "void",
        ("int64", "int64", "int64[]", "int64[]", "int64[]", "int64"),
        "bare",
    ),
}
LIBRARIES = sorted({e.library for e in ENTRY_POINTS.values()})
EXPORT_PREFIX = "rvemu_"  # a library's symbol for entry point `name` is rvemu_<name>
HELPER_PREFIX = "rvemu_helper."  # pointers to Numba's C helpers, filled in when loading

_C_TYPES = {"int64": ctypes.c_int64, "bool": ctypes.c_bool, "void": None}


def library_path(name: str) -> Path:
    """Where library `name` lives: beside Numba's cache of the same sources (rvemu/__init__
    keys that folder on every compiled source file)."""
    return Path(os.environ["NUMBA_CACHE_DIR"]) / f"core-{name}.so"


def native_wanted() -> bool:
    return os.environ.get("RVEMU_NATIVE_CORE", "1") != "0"


def libraries_built() -> bool:
    return all(library_path(name).exists() for name in LIBRARIES)


def _announce_compiling() -> None:
    """A new user's first run waits for this: say for what and how long."""
    print(
        "rvemu: compiling the CPU core for this machine: once, 30-90 s "
        f"(cached in {library_path(LIBRARIES[0]).parent})",
        file=sys.stderr,
        flush=True,
    )


def build_libraries(announce: Callable[[], None]) -> bool:
    """Build the missing libraries, one process each, in parallel where there are CPUs
    for it; another process building them meanwhile is waited for (a lock beside them).
    False if they could not be built: the reason is in core-<name>.failed."""
    folder = library_path(LIBRARIES[0]).parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "core.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [n for n in LIBRARIES if not library_path(n).exists()]
        if any(library_path(n).with_suffix(".failed").exists() for n in missing):
            return False  # tried before on this machine: not again for every run
        if not missing:
            return True
        announce()
        progress = Progress(len(missing))
        at_once = min(len(missing), len(os.sched_getaffinity(0)))
        waiting, running, ok = list(missing), {}, True
        while waiting or running:
            while waiting and len(running) < at_once:
                name = waiting.pop(0)
                running[name] = _start_build(name)
            for name, (job, errors) in list(running.items()):
                if job.poll() is not None:
                    del running[name]
                    ok = _finished(name, job, errors) and ok
                    progress.done += 1
            progress.show()
            time.sleep(0.2)
        progress.end(ok)
        return ok


class Progress:
    """One line on stderr while the first run waits for the core, updated in place on a
    terminal (elsewhere, only the last)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.terminal = sys.stderr.isatty()
        self.shown = -1

    def show(self) -> None:
        seconds = int(time.perf_counter() - self.start)
        if self.terminal and seconds != self.shown:
            self.shown = seconds
            print(f"\r{self._line()} {seconds} s ", end="", file=sys.stderr, flush=True)

    def end(self, ok: bool) -> None:
        seconds = time.perf_counter() - self.start
        start = "\r" if self.terminal else ""
        verdict = "compiled" if ok else "not built (see above)"
        print(f"{start}rvemu: CPU core {verdict} in {seconds:.0f} s   ", file=sys.stderr)

    def _line(self) -> str:
        return f"rvemu: compiling the CPU core: {self.done} of {self.total} parts done,"


def _start_build(name: str) -> tuple[subprocess.Popen, object]:
    errors = tempfile.TemporaryFile(mode="w+")  # (a pipe could fill while we poll)
    cmd = [sys.executable, "-m", "rvemu.cpu.native_build", name, str(library_path(name))]
    env = {**os.environ, "RVEMU_NATIVE_CORE": "0"}  # (what it builds, it must not load)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env), errors


def _finished(name: str, job: subprocess.Popen, errors) -> bool:  # noqa: ANN001
    errors.seek(0)
    text = errors.read().strip()
    errors.close()
    if job.returncode == 0 and library_path(name).exists():
        return True
    reason = text.splitlines()[-1:] or [f"exit status {job.returncode}"]
    library_path(name).with_suffix(".failed").write_text(reason[0] + "\n")
    print(f"\nrvemu: no native core ({reason[0]}); Numba serves it", file=sys.stderr)
    return False


def _numba_helpers() -> dict[str, int]:
    """Addresses of the C helpers Numba's compiled code calls (exceptions, the GIL, its
    allocator), from Numba's two extension modules, loaded without the numba package."""
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("numba")  # (finds it without importing it)
    folder = Path(spec.submodule_search_locations[0])
    helpers = {}
    for module, prefix in (("_helperlib", "numba_"), ("core.runtime._nrt_python", "NRT_")):
        name = "numba." + module
        if name not in sys.modules:
            path = next(folder.glob(module.replace(".", "/") + ".*.so"))
            loader = importlib.machinery.ExtensionFileLoader(name, str(path))
            mod = importlib.util.module_from_spec(
                importlib.util.spec_from_file_location(name, path, loader=loader)
            )
            loader.exec_module(mod)
            sys.modules[name] = mod  # a later `import numba` uses this very module
        for key, address in sys.modules[name].c_helpers.items():
            helpers[prefix + key] = address
    return helpers


class NativeLibrary:
    def __init__(self, name: str) -> None:
        self.dll = ctypes.CDLL(str(library_path(name)))
        helpers = _numba_helpers()
        wanted = ctypes.c_char_p.in_dll(self.dll, "rvemu_helpers").value.decode().split()
        for symbol in wanted:
            slot = ctypes.c_void_p.in_dll(self.dll, HELPER_PREFIX + symbol)
            slot.value = helpers[symbol]

    def function(self, name: str, entry: EntryPoint) -> Callable:
        fn = getattr(self.dll, EXPORT_PREFIX + name)
        fn.restype = _C_TYPES[entry.returns]
        argtypes, checks = [], []
        for i, param in enumerate(entry.params):
            if param.endswith("[]"):
                argtypes += [ctypes.c_void_p, ctypes.c_int64]
                checks.append((i, np.dtype(param[:-2])))
            else:
                argtypes.append(_C_TYPES[param])
        fn.argtypes = argtypes
        arrays = tuple(i for i, _ in checks)

        def call(*args):  # noqa: ANN002, ANN202
            flat = list(args)
            for i, dtype in reversed(checks):
                a = args[i]
                if a.dtype != dtype or not a.flags.c_contiguous:
                    raise TypeError(f"{name}: argument {i} must be a contiguous {dtype} array")
                flat[i : i + 1] = (a.ctypes.data, len(a))
            return fn(*flat)

        call.__name__ = name
        call.arrays = arrays
        return call


class Core:
    """The entry points, each resolved on first use: from the native library when there is
    one (building it first on a new machine), else the Numba function itself (imported
    then). native=False: always the Numba functions."""

    def __init__(self, native: bool = True) -> None:
        self._native = native
        self._libraries: dict[str, NativeLibrary | None] = {}

    def __getattr__(self, name: str) -> Callable:
        entry = ENTRY_POINTS.get(name)
        if entry is None:
            raise AttributeError(name)
        library = self._library(entry.library)
        if library is not None:
            fn = library.function(name, entry)
        else:
            fn = getattr(import_module(entry.module), entry.function)
        setattr(self, name, fn)  # (found here from now on, without __getattr__)
        return fn

    def _library(self, name: str) -> NativeLibrary | None:
        if name not in self._libraries:
            lib = None
            wanted = self._native and native_wanted()
            if wanted and not libraries_built():
                build_libraries(_announce_compiling)
            if wanted and library_path(name).exists():
                try:
                    lib = NativeLibrary(name)
                except (OSError, ValueError, KeyError, StopIteration) as error:
                    print(f"rvemu: cannot load {library_path(name)}: {error}", file=sys.stderr)
            self._libraries[name] = lib
        return self._libraries[name]

    @property
    def native(self) -> bool:
        """Whether the hart's loop runs from the native library."""
        return self._library(ENTRY_POINTS["run_bare"].library) is not None


core = Core()
