"""F and D instructions: loads and stores, and dispatch of the arithmetic to fpu.py."""

import numpy as np
from numba import njit

from . import fpu
from .isa import Op
from .jit import njit_generic
from .memory import load, store
from .state import CAUSE_ILLEGAL, FCSR, MSTATUS, MSTATUS_FS, OK

RM_DYN = 7

# Ops whose funct3 is a rounding mode (an invalid one makes the instruction illegal).
USES_RM = np.zeros(len(Op), dtype=np.int64)
for _op in Op:
    if _op.name.startswith(
        ("FMADD", "FMSUB", "FNM", "FADD", "FSUB", "FMUL", "FDIV", "FSQRT", "FCVT")
    ):
        USES_RM[_op] = 1

NAN_BOX = -(1 << 32)  # upper 32 bits set: a single-precision value in a 64-bit register


@njit(cache=True, inline="always")
def fp_enabled(csr) -> bool:
    return (csr[MSTATUS] & MSTATUS_FS) != 0


@njit(cache=True, inline="always")
def mark_dirty(csr) -> None:
    csr[MSTATUS] |= MSTATUS_FS


@njit(cache=True, inline="always")
def fp_load_store(op, rd, rs2, addr, f, mem, tlb, pagef, dc, csr, st, instret, paged) -> int:
    """FLW/FLD/FSW/FSD: OK, SLOW, MMIO or a trap cause."""
    if not fp_enabled(csr):
        return CAUSE_ILLEGAL
    if op == Op.FLW or op == Op.FLD:
        size = 4 if op == Op.FLW else 8
        value, status = load(addr, size, mem, tlb, csr, st, instret, paged)
        if status == OK:
            f[rd] = value | NAN_BOX if size == 4 else value
            mark_dirty(csr)
        return status
    size = 4 if op == Op.FSW else 8
    return store(addr, size, f[rs2], mem, tlb, pagef, dc, csr, st, instret, paged)


@njit(cache=True, inline="always")
def execute_fp(op, rd, rs1, rs2, rs3_rm, x, f, csr) -> bool:
    """Execute an F/D computational instruction; False when it is illegal."""
    if not fp_enabled(csr):
        return False
    rm = rs3_rm & 7
    if rm == RM_DYN:
        rm = (csr[FCSR] >> 5) & 7
    if rm > 4 and USES_RM[op]:
        return False
    a, b = f[rs1], f[rs2]
    to_x = False
    # The commonest double-precision operations are called from here; the rest from
    # fp_compute, compiled once out of the hot loop.
    if op == Op.FADD_D:
        result, flags = fpu.fadd_d(a, b, rm)
    elif op == Op.FSUB_D:
        result, flags = fpu.fsub_d(a, b, rm)
    elif op == Op.FMUL_D:
        result, flags = fpu.fmul_d(a, b, rm)
    elif op == Op.FDIV_D:
        result, flags = fpu.fdiv_d(a, b, rm)
    elif op == Op.FMADD_D:
        result, flags = fpu.fmadd_d(a, b, f[rs3_rm >> 3], rm)
    else:
        result, flags, to_x = fp_compute(op, a, b, f[rs3_rm >> 3], x[rs1], rm)
        if flags < 0:
            return False
    if to_x:
        x[rd] = result
    else:
        f[rd] = result
    csr[FCSR] |= flags
    mark_dirty(csr)
    return True


# Compiled once, out of the hot loop: its callers pass plain values, not register files.
@njit_generic
def fp_compute(op: int, a: int, b: int, c: int, xa: int, rm: int) -> tuple[int, int, bool]:
    """(result, fflags, whether the result goes to an x register) of the operation on f
    registers a, b, c and x register xa; fflags is -1 when op is not one of the F/D
    operations execute_fp leaves to this function (it does the commonest ones itself)."""
    result, flags, to_x = 0, 0, False

    # three operands
    if op == Op.FMADD_S:
        result, flags = fpu.fmadd_s(a, b, c, rm)
    elif op == Op.FMSUB_S:
        result, flags = fpu.fmsub_s(a, b, c, rm)
    elif op == Op.FNMSUB_S:
        result, flags = fpu.fnmsub_s(a, b, c, rm)
    elif op == Op.FNMADD_S:
        result, flags = fpu.fnmadd_s(a, b, c, rm)
    elif op == Op.FMSUB_D:
        result, flags = fpu.fmsub_d(a, b, c, rm)
    elif op == Op.FNMSUB_D:
        result, flags = fpu.fnmsub_d(a, b, c, rm)
    elif op == Op.FNMADD_D:
        result, flags = fpu.fnmadd_d(a, b, c, rm)
    # arithmetic
    elif op == Op.FADD_S:
        result, flags = fpu.fadd_s(a, b, rm)
    elif op == Op.FSUB_S:
        result, flags = fpu.fsub_s(a, b, rm)
    elif op == Op.FMUL_S:
        result, flags = fpu.fmul_s(a, b, rm)
    elif op == Op.FDIV_S:
        result, flags = fpu.fdiv_s(a, b, rm)
    elif op == Op.FSQRT_S:
        result, flags = fpu.fsqrt_s(a, rm)
    elif op == Op.FSQRT_D:
        result, flags = fpu.fsqrt_d(a, rm)
    # sign injection, min/max (their funct3 is not a rounding mode)
    elif op == Op.FSGNJ_S:
        result, flags = fpu.fsgnj_s(a, b)
    elif op == Op.FSGNJN_S:
        result, flags = fpu.fsgnjn_s(a, b)
    elif op == Op.FSGNJX_S:
        result, flags = fpu.fsgnjx_s(a, b)
    elif op == Op.FSGNJ_D:
        result, flags = fpu.fsgnj_d(a, b)
    elif op == Op.FSGNJN_D:
        result, flags = fpu.fsgnjn_d(a, b)
    elif op == Op.FSGNJX_D:
        result, flags = fpu.fsgnjx_d(a, b)
    elif op == Op.FMIN_S:
        result, flags = fpu.fmin_s(a, b)
    elif op == Op.FMAX_S:
        result, flags = fpu.fmax_s(a, b)
    elif op == Op.FMIN_D:
        result, flags = fpu.fmin_d(a, b)
    elif op == Op.FMAX_D:
        result, flags = fpu.fmax_d(a, b)
    # comparisons and classification write x registers
    elif op == Op.FEQ_S:
        (result, flags), to_x = fpu.feq_s(a, b), True
    elif op == Op.FLT_S:
        (result, flags), to_x = fpu.flt_s(a, b), True
    elif op == Op.FLE_S:
        (result, flags), to_x = fpu.fle_s(a, b), True
    elif op == Op.FEQ_D:
        (result, flags), to_x = fpu.feq_d(a, b), True
    elif op == Op.FLT_D:
        (result, flags), to_x = fpu.flt_d(a, b), True
    elif op == Op.FLE_D:
        (result, flags), to_x = fpu.fle_d(a, b), True
    elif op == Op.FCLASS_S:
        (result, flags), to_x = fpu.fclass_s(a), True
    elif op == Op.FCLASS_D:
        (result, flags), to_x = fpu.fclass_d(a), True
    # moves between register files
    elif op == Op.FMV_X_W:
        (result, flags), to_x = fpu.fmv_x_w(a), True
    elif op == Op.FMV_X_D:
        (result, flags), to_x = fpu.fmv_x_d(a), True
    elif op == Op.FMV_W_X:
        result, flags = fpu.fmv_w_x(xa)
    elif op == Op.FMV_D_X:
        result, flags = fpu.fmv_d_x(xa)
    # conversions
    elif op == Op.FCVT_W_S:
        (result, flags), to_x = fpu.fcvt_w_s(a, rm), True
    elif op == Op.FCVT_WU_S:
        (result, flags), to_x = fpu.fcvt_wu_s(a, rm), True
    elif op == Op.FCVT_L_S:
        (result, flags), to_x = fpu.fcvt_l_s(a, rm), True
    elif op == Op.FCVT_LU_S:
        (result, flags), to_x = fpu.fcvt_lu_s(a, rm), True
    elif op == Op.FCVT_W_D:
        (result, flags), to_x = fpu.fcvt_w_d(a, rm), True
    elif op == Op.FCVT_WU_D:
        (result, flags), to_x = fpu.fcvt_wu_d(a, rm), True
    elif op == Op.FCVT_L_D:
        (result, flags), to_x = fpu.fcvt_l_d(a, rm), True
    elif op == Op.FCVT_LU_D:
        (result, flags), to_x = fpu.fcvt_lu_d(a, rm), True
    elif op == Op.FCVT_S_W:
        result, flags = fpu.fcvt_s_w(xa, rm)
    elif op == Op.FCVT_S_WU:
        result, flags = fpu.fcvt_s_wu(xa, rm)
    elif op == Op.FCVT_S_L:
        result, flags = fpu.fcvt_s_l(xa, rm)
    elif op == Op.FCVT_S_LU:
        result, flags = fpu.fcvt_s_lu(xa, rm)
    elif op == Op.FCVT_D_W:
        result, flags = fpu.fcvt_d_w(xa, rm)
    elif op == Op.FCVT_D_WU:
        result, flags = fpu.fcvt_d_wu(xa, rm)
    elif op == Op.FCVT_D_L:
        result, flags = fpu.fcvt_d_l(xa, rm)
    elif op == Op.FCVT_D_LU:
        result, flags = fpu.fcvt_d_lu(xa, rm)
    elif op == Op.FCVT_S_D:
        result, flags = fpu.fcvt_s_d(a, rm)
    elif op == Op.FCVT_D_S:
        result, flags = fpu.fcvt_d_s(a, rm)
    else:
        return 0, -1, False

    return result, flags, to_x
