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
import threading
import time
import weakref
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import numpy as np

from .entry_points import (
    ASIDE,
    ASIDE_PREFIX,
    BUILDS,
    ENTRY_POINTS,
    EXPORT_PREFIX,
    HELPER_PREFIX,
    LAZY,
    LIBRARIES,
    EntryPoint,
)

_C_TYPES = {"int64": ctypes.c_int64, "bool": ctypes.c_bool, "void": None}


def library_path(name: str) -> Path:
    """Where library `name` lives: beside Numba's cache of the same sources (rvemu/__init__
    keys that folder on every compiled source file)."""
    return Path(os.environ["NUMBA_CACHE_DIR"]) / f"core-{name}.so"


def native_wanted() -> bool:
    return os.environ.get("RVEMU_NATIVE_CORE", "1") != "0"


def needed_with(name: str) -> list[str]:
    """The libraries built together with library `name` when it is missing: a LAZY one
    alone, when the loop first needs it; the others all at once, before a first run."""
    return [name] if name in LAZY else [n for n in LIBRARIES if n not in LAZY]


def _what(names: list[str]) -> tuple[str, str]:
    """What libraries `names` are, for a user waiting for them, and about how long they
    take to build (measured on a 2-core machine: native_build's processes, one per group
    of BUILDS, share the CPUs)."""
    if set(names) <= set(LAZY):
        return "CPU core's F and D operations", "about 7 s"
    return "CPU core", "about 10 s on two CPUs"


def _announce_compiling(names: list[str]) -> None:
    """A new user's first run waits for this: say for what and how long."""
    what, estimate = _what(names)
    print(
        f"rvemu: compiling the {what} for this machine: once, {estimate} "
        f"(cached in {library_path(names[0]).parent})",
        file=sys.stderr,
        flush=True,
    )


def build_libraries(names: list[str], announce: Callable[[list[str]], None]) -> bool:
    """Build those of libraries `names` that are missing: a process for each group of
    BUILDS, all at once (one process builds its group's libraries in turn, sharing what
    they have in common); another process building them meanwhile is waited for (a lock
    beside them). False if they could not be built: the reason is in core-<name>.failed."""
    folder = library_path(names[0]).parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "core.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [n for n in names if not library_path(n).exists()]
        if any(library_path(n).with_suffix(".failed").exists() for n in missing):
            return False  # tried before on this machine: not again for every run
        if not missing:
            return True
        announce(missing)
        progress = Progress(len(missing), _what(missing)[0])
        groups = [[n for n in group if n in missing] for group in BUILDS]
        jobs = [(group, *_start_build(group)) for group in groups if group]
        while any(job.poll() is None for _, job, _ in jobs):
            progress.done = sum(library_path(n).exists() for n in missing)
            progress.show()
            time.sleep(0.2)
        ok = all([_finished(group, job, errors) for group, job, errors in jobs])
        progress.end(ok)
        return ok


class Progress:
    """One line on stderr while the first run waits for the core, updated in place on a
    terminal (elsewhere, only the last)."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.what = what
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
        print(f"{start}rvemu: {self.what} {verdict} in {seconds:.0f} s   ", file=sys.stderr)

    def _line(self) -> str:
        return f"rvemu: compiling the {self.what}: {self.done} of {self.total} parts done,"


def _start_build(names: list[str]) -> tuple[subprocess.Popen, object]:
    errors = tempfile.TemporaryFile(mode="w+")  # (a pipe could fill while we poll)
    cmd = [sys.executable, "-m", "rvemu.cpu.native_build"]
    for name in names:
        cmd += [name, str(library_path(name))]
    env = {**os.environ, "RVEMU_NATIVE_CORE": "0"}  # (what it builds, it must not load)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env), errors


def _finished(names: list[str], job: subprocess.Popen, errors) -> bool:  # noqa: ANN001
    errors.seek(0)
    text = errors.read().strip()
    errors.close()
    if job.returncode == 0 and all(library_path(n).exists() for n in names):
        return True
    reason = text.splitlines()[-1:] or [f"exit status {job.returncode}"]
    for name in names:
        if not library_path(name).exists():
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
        scalars = [_C_TYPES[p] for p in entry.params if not p.endswith("[]")]
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, *scalars]
        return ArrayCall(name, entry, fn)

    def aside_address(self, name: str) -> int:
        """Where ASIDE function `name` is, for the loop (aside.py)."""
        return ctypes.cast(getattr(self.dll, ASIDE_PREFIX + name), ctypes.c_void_p).value


class ArrayCall:
    """A library function called with numpy arrays: it takes a table of their addresses
    and one of their lengths (native_build.c_callable), then the other arguments. A hart
    calls its loop with the same arrays every time, so each thread keeps its tables and
    fills them again only when an array is not the same object as in its call before
    (weak references: keeping the arrays alive would keep a discarded machine's RAM).
    Threads have tables of their own: several machines may run at once (rvemu serve)."""

    def __init__(self, name: str, entry: EntryPoint, fn: Callable) -> None:
        self.__name__ = name
        self.fn = fn
        self.params = entry.params
        self.array_args = [i for i, p in enumerate(entry.params) if p.endswith("[]")]
        self.scalar_args = [i for i, p in enumerate(entry.params) if not p.endswith("[]")]
        self.local = threading.local()

    def __call__(self, *args):  # noqa: ANN002, ANN204
        mine = self.local
        before = getattr(mine, "before", None)
        if before is None or any(
            ref() is not args[i] for ref, i in zip(before, self.array_args, strict=True)
        ):
            self._fill_tables(mine, args)
        return self.fn(*mine.tables, *[args[i] for i in self.scalar_args])

    def _fill_tables(self, mine: threading.local, args: tuple) -> None:
        n = max(len(self.array_args), 1)
        pointers, lengths = (ctypes.c_void_p * n)(), (ctypes.c_int64 * n)()
        before = []
        for k, i in enumerate(self.array_args):
            array, dtype = args[i], np.dtype(self.params[i][:-2])
            if array.dtype != dtype or not array.flags.c_contiguous:
                raise TypeError(f"{self.__name__}: argument {i} must be a contiguous {dtype} array")
            pointers[k], lengths[k] = array.ctypes.data, len(array)
            before.append(weakref.ref(array))
        mine.keep = (pointers, lengths)
        mine.tables = (ctypes.addressof(pointers), ctypes.addressof(lengths))
        mine.before = before


class Core:
    """The entry points, each resolved on first use: from the native library when there is
    one (building it first on a new machine), else the Numba function itself (imported
    then). native=False: always the Numba functions."""

    def __init__(self, native: bool = True) -> None:
        self._native = native
        self._libraries: dict[str, NativeLibrary | None] = {}

    def __getattr__(self, name: str) -> Callable:
        if name == "aside":  # the addresses the loop calls the ASIDE functions at
            self.aside = np.zeros(len(ASIDE), dtype=np.int64)
            self._fill_aside(build_lazy=False)
            return self.aside
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

    def load_lazy(self) -> None:
        """Build and load the LAZY libraries the loop has not got yet (it left with
        EXIT_LIBRARY, needing one)."""
        self._fill_aside(build_lazy=True)

    def _fill_aside(self, build_lazy: bool) -> None:
        """The addresses of the ASIDE functions still 0 in self.aside: from their
        libraries, of a LAZY one only if it is built already or build_lazy; from Numba's
        own copies where there is no library."""
        for k, (name, aside) in enumerate(ASIDE.items()):
            if self.aside[k]:
                continue
            library_wanted = self._native and native_wanted()
            built = library_path(aside.library).exists()
            if library_wanted and aside.library in LAZY and not built and not build_lazy:
                continue  # (0: the loop leaves with EXIT_LIBRARY when it needs it)
            library = self._library(aside.library)
            if library is not None:
                self.aside[k] = library.aside_address(name)
            else:
                self.aside[k] = import_module(".aside", __package__).numba_address(name)

    def _library(self, name: str) -> NativeLibrary | None:
        if name not in self._libraries:
            lib = None
            wanted = self._native and native_wanted()
            group = needed_with(name)
            if wanted and not all(library_path(n).exists() for n in group):
                build_libraries(group, _announce_compiling)
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
