"""How compiled regions (rvemu.tier2) are called: their signature and the context block
they share. The interpreter's loop calls them (region_call.py), and they call each other.

A region is `i64 region(i64* x, i8* ram, i64* ctx, i64 budget, i64 done)`. `x` and `ram`
are the two arrays a region touches most (passed as arguments, so LLVM knows they alias
nothing else); `ctx` points at the addresses of the hart's other arrays (`CTX_*` below).
`done` is how many instructions the regions before it in the same call have retired
(0 when the interpreter calls it, having set st[INSTRET] to its count of instructions
retired, which counter reads add `done` to); the region runs while `done` stays within
`budget` and
returns the pc where the interpreter takes over, with st[REGION_RETIRED] = every
instruction retired since the interpreter's call and st[REGION_JUMPED] = why (LEFT_*):
that pc is the target of a jump it took, or holds an instruction it does not do (or one
whose access it cannot make: a TLB miss, a device), or starts a block that does not fit
what is left of the budget.

A region that leaves by a jump looks up the target in the decoded-instruction cache and,
if a region compiled for this mode (and, translated, this very pc) starts there, tail-calls
it with the same `budget` and its `done`: control follows the guest from region to region
without going back through the interpreter's loop, and the budget (hence timer interrupts
and the caller's limit) stays exact.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .state import REGION_RETIRED

UNTRANSLATED = -1  # entry_pc of a region compiled for untranslated code (no pc is odd)

# Why a region handed back (st[REGION_JUMPED]). The interpreter counts the pc after a
# jump (LEFT_JUMP), and the pc after the instruction a region stopped before (LEFT_BEFORE),
# towards compiling a region there: code that follows a TLB miss, a device access or a CSR
# then runs compiled too.
LEFT_BUDGET, LEFT_JUMP, LEFT_BEFORE = 0, 1, 2

# The addresses in the context block, by index.
CTX_F, CTX_CSR, CTX_PAGE_FLAGS, CTX_TLB, CTX_ST, CTX_DC, CTX_ENTRIES, CTX_ENTRY_PC = range(8)
CTX_SIZE = 8

PROTOTYPE = ctypes.CFUNCTYPE(
    ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
    ctypes.c_int64,
)  # fmt: skip


def context(hart) -> np.ndarray:  # noqa: ANN001 (a cpu.hart.Hart)
    """The context block for calling a region of `hart` from Python (the interpreter builds
    its own on its stack, see region_call.py)."""
    t2 = hart.tier2
    arrays = (hart.f, hart.csr, hart.page_flags, hart.tlb, hart.st, hart.dc, t2.entries)
    return np.array([a.ctypes.data for a in (*arrays, t2.entry_pc)], dtype=np.int64)


def call_from_python(hart, address: int, budget: int) -> tuple[int, int]:  # noqa: ANN001
    """Run the region at `address` on `hart` (for tests): (the pc it returns, retired)."""
    ctx = context(hart)
    pc = PROTOTYPE(address)(hart.x.ctypes.data, hart.ram.ctypes.data, ctx.ctypes.data, budget, 0)
    return pc, int(hart.st[REGION_RETIRED])
