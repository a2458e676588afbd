"""F and D instructions: loads and stores, and dispatch of the arithmetic to fpu.py."""

from numba import njit

from .isa import Op
from .memory import load, store
from .state import CAUSE_ILLEGAL, FCSR, MSTATUS, MSTATUS_FS, OK

NAN_BOX = -(1 << 32)  # upper 32 bits set: a single-precision value in a 64-bit register


@njit(cache=True, inline="always")
def fp_enabled(csr) -> bool:
    return (csr[MSTATUS] & MSTATUS_FS) != 0


@njit(cache=True, inline="always")
def mark_dirty(csr) -> None:
    csr[MSTATUS] |= MSTATUS_FS


@njit(cache=True)
def fp_load_store(op, rd, rs2, addr, f, mem, tlb, pagef, dc, csr, st, instret) -> int:
    """FLW/FLD/FSW/FSD: OK, SLOW, MMIO or a trap cause."""
    if not fp_enabled(csr):
        return CAUSE_ILLEGAL
    if op == Op.FLW or op == Op.FLD:
        size = 4 if op == Op.FLW else 8
        value, status = load(addr, size, mem, tlb, csr, st, instret)
        if status == OK:
            f[rd] = value | NAN_BOX if size == 4 else value
            mark_dirty(csr)
        return status
    size = 4 if op == Op.FSW else 8
    return store(addr, size, f[rs2], mem, tlb, pagef, dc, csr, st, instret)


@njit(cache=True)
def execute_fp(op, rd, rs1, rs2, rs3_rm, x, f, csr) -> bool:
    """Execute an F/D computational instruction; False when it is illegal."""
    if not fp_enabled(csr):
        return False
    return False  # arithmetic arrives with fpu.py
