"""What Python calls in the compiled core, and how: the contract between the native
libraries native_build.py makes and native.py loads (a change here rebuilds them)."""

from dataclasses import dataclass

RUN = (
    # x, f, csr, st, ram8, ram16, ram32, ram64, tlb, dc, page_flags, hot, entries, entry_pc,
    # aside (the addresses of the ASIDE functions, in the table's order)
    ("int64[]",) * 4
    + ("uint8[]", "uint16[]", "uint32[]", "int64[]")
    + ("int64[]", "int64[]", "uint8[]", "int64[]", "int64[]", "int64[]", "int64[]")
    + ("int64",)  # budget
)


@dataclass(frozen=True)
class EntryPoint:
    module: str
    function: str
    returns: str  # "int64", "bool" or "void"
    params: tuple[str, ...]  # "int64", "bool", or an array: "<dtype>[]"
    library: str  # which shared library holds it (BUILDS: which process builds it)


# What Python calls in the compiled code, and nothing else: everything these call is
# compiled into their library.
ENTRY_POINTS = {
    "run_bare": EntryPoint("rvemu.cpu.core", "run_bare", "int64", RUN, "bare"),
    "run_paged": EntryPoint("rvemu.cpu.core", "run_paged", "int64", RUN, "paged"),
    "tlb_flush": EntryPoint("rvemu.mmu.tlb", "tlb_flush", "void", ("int64[]",), "bare"),
    "pmp_changed": EntryPoint("rvemu.mmu.pmp", "pmp_changed", "void", ("int64[]",) * 3, "rare"),
    "flush_code_pages": EntryPoint(
        "rvemu.cpu.memory", "flush_code_pages", "void", ("int64[]", "uint8[]"), "bare"
    ),
    "invalidate_decoded": EntryPoint(
        "rvemu.cpu.memory", "invalidate_decoded", "void", ("int64[]", "int64", "int64"), "bare"
    ),
    "next_timer_deadline": EntryPoint(
        "rvemu.cpu.trap", "next_timer_deadline", "int64", ("int64[]", "int64[]"), "bare"
    ),
    "is_implemented": EntryPoint("rvemu.cpu.csr", "is_implemented", "bool", ("int64",), "rare"),
    "decode_into": EntryPoint(
        "rvemu.cpu.decode", "decode_into", "void", ("int64", "int64[]"), "rare"
    ),
    "accessible": EntryPoint(
        "rvemu.cpu.csr", "accessible", "bool", ("int64", "int64[]", "int64[]", "bool"), "rare"
    ),
    "csr_read": EntryPoint(
        "rvemu.cpu.csr", "csr_read", "int64", ("int64", "int64[]", "int64[]", "int64"), "rare"
    ),
    "csr_write": EntryPoint(
        "rvemu.cpu.csr",
        "csr_write",
        "void",
        ("int64", "int64", "int64[]", "int64[]", "int64[]", "int64"),
        "rare",
    ),
}


@dataclass(frozen=True)
class Aside:
    module: str
    function: str
    params: tuple[str, ...]  # "int64", an array "<dtype>[]", or "mem" (the RAM views' tuple)
    returns: tuple[str, ...]  # "int64" or "bool" each: one value, or a tuple of them
    library: str  # which shared library holds it


# What the hart's loop hands off (core.compile_run) and calls by address, not directly: so
# the loop's compile does not include them, and they compile at the same time in another
# process, into libraries of their own (aside.py has the calling convention). The loop gets
# their addresses in RUN's `aside` array, in this order.
ASIDE = {
    # (the fast paths of the commonest double-precision operations stay inline in the loop:
    # fp_exec.py)
    "fp_compute": Aside(
        "rvemu.cpu.fp_exec", "fp_compute", ("int64",) * 6, ("int64", "int64", "bool"), "fp"
    ),
    "alu_compute": Aside("rvemu.cpu.core", "alu_compute", ("int64",) * 5, ("int64",), "rare"),
    "execute_system": Aside(
        "rvemu.cpu.system",
        "execute_system",
        ("int64",) * 8
        + ("int64[]", "int64[]", "int64[]", "mem", "int64[]", "uint8[]", "int64[]", "int64"),
        ("int64", "int64"),
        "rare",
    ),
}
ASIDE_PREFIX = "rvemu_aside_"  # a library's symbol for ASIDE function `name`

LIBRARIES = sorted({e.library for e in [*ENTRY_POINTS.values(), *ASIDE.values()]})
# Built when the loop first needs them, not before a machine's first run: the loop finds
# their ASIDE functions' addresses 0 until then, and leaves with EXIT_LIBRARY instead of
# calling them. Many guests never run an F/D operation beyond the loop's inline fast
# paths (a unikernel's boot, an OS kernel); a third of the core's first compile was theirs.
LAZY = ("fp",)
# The libraries each build process makes (one after the other, sharing what Numba
# compiled); the processes run at the same time, one per CPU.
BUILDS = (("bare", "paged"), ("rare",), ("fp",))
EXPORT_PREFIX = "rvemu_"  # a library's symbol for entry point `name` is rvemu_<name>
HELPER_PREFIX = "rvemu_helper."  # pointers to Numba's C helpers, filled in when loading
