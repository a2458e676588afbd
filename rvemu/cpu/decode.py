"""Decoding: the table in isa.py turned into lookup arrays and a Numba decoder.

The hart calls `decode` only when an instruction is not yet in its decoded-instruction
cache, so this favours being plainly the table over being clever.
"""

import numpy as np
from numba import njit

from .bits import field, sext
from .compressed import expand
from .isa import (
    FMT_B,
    FMT_CSR,
    FMT_I,
    FMT_J,
    FMT_S,
    FMT_SHAMT,
    FMT_U,
    RECORDS,
    Op,
    extension_mask,
)
from .jit import njit_generic


def _build_tables() -> tuple[np.ndarray, ...]:
    # Group the table by major opcode (bits 6..2) so a lookup scans only its own group;
    # the sort is stable, so "first matching line wins" still holds within a group.
    order = sorted(RECORDS, key=lambda r: (r.match >> 2) & 31)
    masks = np.array([r.mask for r in order], dtype=np.int64)
    matches = np.array([r.match for r in order], dtype=np.int64)
    ops = np.array([Op[r.name.upper()] for r in order], dtype=np.int64)
    formats = np.array([r.fmt for r in order], dtype=np.int64)
    starts = np.zeros(33, dtype=np.int64)
    for r in order:
        starts[((r.match >> 2) & 31) + 1] += 1
    starts = np.cumsum(starts)
    rd_is_fp = np.zeros(len(Op), dtype=np.int64)
    extension_masks = np.zeros(len(Op), dtype=np.int64)
    for r in RECORDS:
        rd_is_fp[Op[r.name.upper()]] = int(r.fp_rd)
        extension_masks[Op[r.name.upper()]] = extension_mask(r)
    return masks, matches, ops, formats, starts, rd_is_fp, extension_masks


MASKS, MATCHES, OPS, FORMATS, GROUP_START, RD_IS_FP, EXTENSION_MASK = _build_tables()

# Where an x-register rd of 0 is redirected: x[32] is written and never read.
X_SCRATCH = 32


@njit(cache=True)
def available(op: int, extensions: int) -> bool:
    """Whether the hart has op, given its optional extensions (st[EXTENSIONS], --cpu)."""
    return EXTENSION_MASK[op] == 0 or (EXTENSION_MASK[op] & extensions) != 0


@njit(cache=True, inline="always")
def rs3_rm_field(insn: int) -> int:
    """rs3 << 3 | rm: the R4 format's third source and the rounding-mode field."""
    return (field(insn, 31, 27) << 3) | field(insn, 14, 12)


@njit_generic
def lookup(insn: int) -> tuple[int, int]:
    """(op id, format) of a 32-bit instruction; op 0 (ILLEGAL) when no line matches."""
    if insn & 3 != 3:
        return 0, 0
    group = (insn >> 2) & 31
    for k in range(GROUP_START[group], GROUP_START[group + 1]):
        if insn & MASKS[k] == MATCHES[k]:
            return OPS[k], FORMATS[k]
    return 0, 0


@njit_generic
def immediate(fmt: int, insn: int) -> int:
    if fmt == FMT_I:
        return sext(insn >> 20, 12)
    if fmt == FMT_S:
        return sext((field(insn, 31, 25) << 5) | field(insn, 11, 7), 12)
    if fmt == FMT_B:
        return sext(
            (field(insn, 31, 31) << 12)
            | (field(insn, 7, 7) << 11)
            | (field(insn, 30, 25) << 5)
            | (field(insn, 11, 8) << 1),
            13,
        )
    if fmt == FMT_U:
        return sext(insn & 0xFFFFF000, 32)
    if fmt == FMT_J:
        return sext(
            (field(insn, 31, 31) << 20)
            | (field(insn, 19, 12) << 12)
            | (field(insn, 20, 20) << 11)
            | (field(insn, 30, 21) << 1),
            21,
        )
    if fmt == FMT_SHAMT:
        return field(insn, 25, 20)
    if fmt == FMT_CSR:
        return field(insn, 31, 20)
    return 0


@njit_generic
def decode(raw: int) -> tuple[int, int, int, int, int, int, int]:
    """Decode the instruction whose low bits are `raw` (16 or 32 bits valid).

    Returns (op, rd, rs1, rs2, rs3_rm, imm, length); rs3_rm packs rs3 << 3 | rm.
    """
    length = 4
    insn = raw & 0xFFFFFFFF
    if raw & 3 != 3:
        length = 2
        insn = expand(raw & 0xFFFF)
        if insn == 0:
            return 0, 0, 0, 0, 0, 0, 2
    op, fmt = lookup(insn)
    rd = field(insn, 11, 7)
    if rd == 0 and RD_IS_FP[op] == 0:
        rd = X_SCRATCH
    rs3_rm = rs3_rm_field(insn)
    return op, rd, field(insn, 19, 15), field(insn, 24, 20), rs3_rm, immediate(fmt, insn), length


@njit(cache=True)
def decode_into(raw: int, out: np.ndarray) -> None:
    """decode(raw)'s seven fields into out[0:7]: for Python (the second tier), which
    calls it through the native core (entry_points.ENTRY_POINTS) without compiling it."""
    op, rd, rs1, rs2, rs3_rm, imm, length = decode(raw)
    out[0] = op
    out[1] = rd
    out[2] = rs1
    out[3] = rs2
    out[4] = rs3_rm
    out[5] = imm
    out[6] = length
