"""Build the native core's shared libraries (see native.py):
`python -m rvemu.cpu.native_build NAME OUT.so [NAME OUT.so ...]`. native.py runs one such
process for each group of entry_points.BUILDS it needs, all at the same time: the loop's
two copies in one, the functions it calls by address (entry_points.ASIDE) in others.

Numba compiles each entry point of library NAME afresh (its own on-disk cache holds
machine code only, and this needs the LLVM IR), wrapped in a C-callable function
(numba.cfunc) that takes the arrays as a table of pointers and one of lengths; and the
library's ASIDE functions as aside.py wraps them. Numba stops
at each function's IR as lowered (numba_makes_ir_only); the IR of every function they use,
linked into one module, is optimised once, gets position-independent machine code for
this host's CPU from LLVM, and the system's C compiler links it into a shared library.
Calls to Numba's C helpers (raising exceptions, the GIL) go through pointers that native.py
fills in when it loads the library.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import traceback
from importlib import import_module
from pathlib import Path

from .entry_points import (
    ASIDE,
    ASIDE_PREFIX,
    ENTRY_POINTS,
    EXPORT_PREFIX,
    HELPER_PREFIX,
    EntryPoint,
)

# A declaration of one of Numba's C helpers, e.g. `declare void @numba_gil_ensure(ptr) ...`
HELPER_DECLARATION = re.compile(r"^declare (.*?)@((?:numba|NRT)_\w+)\(([^)]*)\)(.*)$", re.M)


def c_callable(name: str, entry: EntryPoint):  # noqa: ANN201 (a numba.cfunc)
    """Entry point `name` as a C function (ptrs, lens, scalars...): its array arguments
    are ptrs[k] (each array's data) and lens[k] (its length), in order, and its other
    arguments follow as themselves. One call then converts three values, not thirty."""
    import numpy as np
    from numba import carray, cfunc, types

    def numba_type(text: str):  # noqa: ANN202
        return {"int64": types.int64, "bool": types.boolean, "void": types.void}[text]

    fn = getattr(import_module(entry.module), entry.function)
    params, args = ["ptrs", "lens"], []
    signature = [types.CPointer(types.voidptr), types.CPointer(types.int64)]
    arrays = 0
    for i, param in enumerate(entry.params):
        if param.endswith("[]"):
            args.append(f"carray(ptrs[{arrays}], lens[{arrays}], dtype=np.{param[:-2]})")
            arrays += 1
        else:
            params.append(f"a{i}")
            args.append(f"a{i}")
            signature.append(numba_type(param))
    source = f"def {name}({', '.join(params)}):\n    return fn({', '.join(args)})\n"
    namespace = {"carray": carray, "fn": fn, "np": np}
    exec(source, namespace)
    return cfunc(numba_type(entry.returns)(*signature))(namespace[name])


def helpers_through_pointers(ir: str) -> tuple[str, list[str]]:
    """Each Numba helper the IR declares becomes a small function that calls through the
    pointer @"rvemu_helper.<name>" (filled in at load time); the list of their names goes
    into the library as @rvemu_helpers, a space-separated string."""
    names = []

    def through_pointer(match: re.Match) -> str:
        returns, name, params = match.group(1).strip(), match.group(2), match.group(3)
        returns = returns.split()[-1]  # (drop attributes such as noalias)
        types = [p.split()[0] for p in params.split(",") if p.strip()]
        names.append(name)
        formal = ", ".join(f"{t} %a{i}" for i, t in enumerate(types))
        actual = ", ".join(f"{t} %a{i}" for i, t in enumerate(types))
        pointer = f'@"{HELPER_PREFIX}{name}"'
        call = f"call {returns} %f({actual})"
        body = "  ret void" if returns == "void" else f"  ret {returns} %r"
        return (
            f"{pointer} = global ptr null\n"
            f"define internal {returns} @{name}({formal}) {{\n"
            f"  %f = load ptr, ptr {pointer}\n"
            f"  {'' if returns == 'void' else '%r = '}{call}\n{body}\n}}"
        )

    ir = HELPER_DECLARATION.sub(through_pointer, ir)
    text = " ".join(names)
    ir += (
        f"\n@rvemu_helpers.text = private constant [{len(text) + 1} x i8] "
        f'c"{text}\\00"\n@rvemu_helpers = global ptr @rvemu_helpers.text\n'
    )
    return ir, names


def inlined_by_llvm() -> None:
    """The functions marked inline="always" (ops.py's helpers, fpu.py's fast paths, ...)
    are compiled once each, with plain argument types, and marked for LLVM to inline, as
    jit.njit_inline does: Numba would copy, type and lower their bodies again at every call
    (a fifth of the build). Only in this process: the second tier finds them by the mark."""
    from numba.core.registry import CPUDispatcher

    from .jit import _plain_types

    for entry in [*ENTRY_POINTS.values(), *ASIDE.values()]:
        import_module(entry.module)
    import_module(".aside", __package__).wrappers()
    for module in [m for name, m in sys.modules.items() if name.startswith("rvemu.")]:
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and value.targetoptions.get("inline") == "always":
                value.targetoptions["inline"] = "never"
                value.targetoptions["forceinline"] = True
                _plain_types(value)


def compile_library(name: str) -> tuple[list, dict[str, str]]:
    """Numba's part of library `name`: its entry points compiled (to IR), as the libraries
    to link and the names to export them by. Numba keeps what it compiled for the next
    library, which then compiles only what it does not share with this one."""
    libraries, exports = [], {}
    for entry_name, entry in ENTRY_POINTS.items():
        if entry.library != name:
            continue
        compiled = c_callable(entry_name, entry)
        libraries.append(compiled._library)
        exports[compiled.native_name] = EXPORT_PREFIX + entry_name
    from .aside import c_function

    for aside_name, aside in ASIDE.items():  # what the loop calls by address (aside.py)
        if aside.library == name:
            compiled = c_function(aside_name, cache=False)
            libraries.append(compiled._library)
            exports[compiled.native_name] = ASIDE_PREFIX + aside_name
    return libraries, exports


def emit_library(libraries: list, exports: dict[str, str], out: Path) -> None:
    """LLVM's part: link, optimise, machine code, and the C compiler's shared library."""
    import llvmlite.binding as llvm

    module = link(libraries, exports)
    ir, _ = helpers_through_pointers(str(module))
    module = llvm.parse_assembly(ir)
    module.verify()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
        reloc="pic",
        codemodel="default",
    )
    optimise(module, machine)
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / f"{out.stem}.o"
        obj.write_bytes(machine.emit_object(module))
        partial = out.with_name(out.name + f".{os.getpid()}")
        subprocess.run(
            ["cc", "-shared", "-Wl,-Bsymbolic", "-o", str(partial), str(obj), "-lm"],
            check=True,
            capture_output=True,
        )
        partial.replace(out)  # (whole or not at all: other processes may be loading it)


def build(jobs: list[tuple[str, Path]]) -> bool:
    """Build each (library, output path) in turn, in this one process: the libraries
    share most of their functions (the dispatch, slow paths, the page walk), which Numba
    then compiles once. While Numba compiles the next library, a forked child does the LLVM
    part of the one before. False if a child failed (it says why on stderr)."""
    children: list[int] = []
    try:
        for k, (name, out) in enumerate(jobs):
            libraries, exports = compile_library(name)
            pid = None
            if k < len(jobs) - 1 and hasattr(os, "fork"):
                sys.stderr.flush()
                try:
                    pid = os.fork()
                except OSError:  # (no process to spare: do it here)
                    pid = None
            if pid is None:
                emit_library(libraries, exports, out)
            elif pid == 0:  # the child: LLVM's part, then leave without Python's clean-up
                status = 1
                try:
                    emit_library(libraries, exports, out)
                    status = 0
                except BaseException:  # noqa: BLE001 (reported, and the parent fails)
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(status)
            else:
                children.append(pid)
    finally:
        statuses = [os.waitpid(pid, 0)[1] for pid in children]
    return not any(statuses)


def link(roots: list, exports: dict[str, str]):  # noqa: ANN201 (an llvmlite module)
    """One LLVM module holding every Numba library the entry points' libraries use, each
    once. The entry points' functions are renamed as `exports` says; every other function
    becomes linkonce_odr, as when Numba links a library into its callers, so that what is
    not called, or is inlined everywhere, is dropped."""
    import llvmlite.binding as llvm

    found, seen, todo = [], set(), list(roots)
    while todo:
        library = todo.pop()
        if id(library) not in seen:
            seen.add(id(library))
            found.append(library)
            todo += library._linking_libraries
    module, defined = None, set()
    for library in found:
        part = library._final_module.clone()  # (the next library links it again)
        for fn in part.functions:
            if fn.is_declaration:
                continue
            if fn.name in exports:
                fn.name = exports[fn.name]
            elif fn.name in defined:  # (already linked from another library: keep that)
                fn.linkage = llvm.Linkage.linkonce_odr
            defined.add(fn.name)
        if module is None:
            module = part
        else:
            module.link_in(part)
    exported = set(exports.values())
    for fn in module.functions:
        if not fn.is_declaration and fn.name not in exported:
            fn.linkage = llvm.Linkage.linkonce_odr
    return module


def optimise(module, machine) -> None:  # noqa: ANN001 (llvmlite's)
    """The whole library's IR through Numba's pass that removes redundant reference counts,
    then LLVM's -O3 pipeline as Numba runs it (loop vectorisation on, SLP off)."""
    import llvmlite.binding as llvm

    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = False
    passes = llvm.create_pass_builder(machine, tuning)
    prune = llvm.create_new_module_pass_manager()
    prune.add_refprune_pass()
    prune.run(module, passes)
    passes.getModulePassManager().run(module, passes)


def numba_makes_ir_only() -> None:
    """Numba, in this process, stops at each function's LLVM IR as lowered: link() and
    optimise() then make one module of them and optimise it once. Numba would optimise
    each library, again with every library it calls linked in, and make machine code for
    each with its JIT (about a fifth of the build, all thrown away here). Nothing here calls
    what Numba compiles, so it needs no Python wrappers, addresses or cache either."""
    from numba.core import caching, codegen, dispatcher

    def finalize(self: codegen.CPUCodeLibrary) -> None:
        self._raise_if_finalized()
        self._finalized = True

    codegen.CPUCodeLibrary.finalize = finalize
    codegen.CPUCodeLibrary._optimize_functions = lambda self, module: None
    codegen.JITCodeLibrary.get_pointer_to_function = lambda self, name: 0
    codegen.JITCPUCodegen._add_module = lambda self, module: None
    codegen.JITCPUCodegen.set_env = lambda self, env_name, env: None
    caching.Cache.save_overload = lambda self, sig, data: None

    customize_flags = dispatcher._FunctionCompiler._customize_flags

    def no_wrappers(self, flags):  # noqa: ANN001, ANN202 (not the entry points' cfuncs)
        flags = customize_flags(self, flags)
        flags.no_cpython_wrapper = True
        flags.no_cfunc_wrapper = True
        return flags

    dispatcher._FunctionCompiler._customize_flags = no_wrappers


def main(argv: list[str]) -> int:
    if not argv or len(argv) % 2:
        print(
            "usage: python -m rvemu.cpu.native_build NAME OUT.so [NAME OUT.so ...]", file=sys.stderr
        )
        return 2
    jobs = [(name, Path(out)) for name, out in zip(argv[::2], argv[1::2], strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        # Numba's cache would give machine code without IR: compile afresh, cached nowhere.
        os.environ["NUMBA_CACHE_DIR"] = tmp
        import numba

        numba.config.CACHE_DIR = tmp
        numba_makes_ir_only()
        inlined_by_llvm()
        return 0 if build(jobs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
