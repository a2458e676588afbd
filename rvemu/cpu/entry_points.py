"""What Python calls in the compiled core, and how: the contract between the native
libraries native_build.py makes and native.py loads (a change here rebuilds them)."""

from dataclasses import dataclass

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
