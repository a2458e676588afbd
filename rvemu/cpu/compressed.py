"""RVC: expand each 16-bit instruction to the 32-bit instruction it stands for.

Follows the RVC chapter's tables quadrant by quadrant (RV64: C.LD/C.SD/C.ADDIW/C.SUBW/C.ADDW
replace RV32's C.FLW/C.FSW/C.JAL). Returns 0 for reserved and illegal encodings, which
the decoder then reports as an illegal instruction.
"""

from numba import njit

from .bits import field, sext
from .jit import njit_generic

OP_LOAD, OP_LOAD_FP, OP_STORE, OP_STORE_FP = 0x03, 0x07, 0x23, 0x27
OP_IMM, OP_IMM_32, OP_REG, OP_REG_32 = 0x13, 0x1B, 0x33, 0x3B
OP_LUI, OP_BRANCH, OP_JALR, OP_JAL, OP_SYSTEM = 0x37, 0x63, 0x67, 0x6F, 0x73


@njit(cache=True, inline="always")
def i_type(imm: int, rs1: int, f3: int, rd: int, opcode: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode


@njit(cache=True, inline="always")
def s_type(imm: int, rs2: int, rs1: int, f3: int, opcode: int) -> int:
    return (
        (((imm >> 5) & 0x7F) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | ((imm & 31) << 7)
        | opcode
    )


@njit(cache=True, inline="always")
def r_type(f7: int, rs2: int, rs1: int, f3: int, rd: int, opcode: int) -> int:
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode


@njit(cache=True, inline="always")
def b_type(imm: int, rs2: int, rs1: int, f3: int) -> int:
    return (
        (((imm >> 12) & 1) << 31)
        | (((imm >> 5) & 0x3F) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | (((imm >> 1) & 0xF) << 8)
        | (((imm >> 11) & 1) << 7)
        | OP_BRANCH
    )


@njit(cache=True, inline="always")
def j_type(imm: int, rd: int) -> int:
    return (
        (((imm >> 20) & 1) << 31)
        | (((imm >> 1) & 0x3FF) << 21)
        | (((imm >> 11) & 1) << 20)
        | (((imm >> 12) & 0xFF) << 12)
        | (rd << 7)
        | OP_JAL
    )


@njit_generic
def expand(h: int) -> int:
    """The 32-bit equivalent of compressed instruction `h`, or 0 if it is illegal."""
    quadrant = h & 3
    f3 = field(h, 15, 13)
    rd = field(h, 11, 7)  # also rs1 in CR/CI forms
    rs2 = field(h, 6, 2)
    rdp = field(h, 4, 2) + 8  # rd' / rs2'
    rs1p = field(h, 9, 7) + 8  # rs1' / rd'
    imm6 = sext((field(h, 12, 12) << 5) | field(h, 6, 2), 6)
    uimm_d = (field(h, 12, 10) << 3) | (field(h, 6, 5) << 6)  # C.LD/C.SD/C.FLD/C.FSD
    uimm_w = (field(h, 12, 10) << 3) | (field(h, 6, 6) << 2) | (field(h, 5, 5) << 6)

    if quadrant == 0:
        if f3 == 0:  # C.ADDI4SPN
            nzuimm = (
                (field(h, 12, 11) << 4)
                | (field(h, 10, 7) << 6)
                | (field(h, 6, 6) << 2)
                | (field(h, 5, 5) << 3)
            )
            if nzuimm == 0:
                return 0
            return i_type(nzuimm, 2, 0, rdp, OP_IMM)
        if f3 == 1:  # C.FLD
            return i_type(uimm_d, rs1p, 3, rdp, OP_LOAD_FP)
        if f3 == 2:  # C.LW
            return i_type(uimm_w, rs1p, 2, rdp, OP_LOAD)
        if f3 == 3:  # C.LD
            return i_type(uimm_d, rs1p, 3, rdp, OP_LOAD)
        if f3 == 5:  # C.FSD
            return s_type(uimm_d, rdp, rs1p, 3, OP_STORE_FP)
        if f3 == 6:  # C.SW
            return s_type(uimm_w, rdp, rs1p, 2, OP_STORE)
        if f3 == 7:  # C.SD
            return s_type(uimm_d, rdp, rs1p, 3, OP_STORE)
        return 0  # f3 == 4 is reserved

    if quadrant == 1:
        if f3 == 0:  # C.ADDI (C.NOP when rd == 0)
            return i_type(imm6, rd, 0, rd, OP_IMM)
        if f3 == 1:  # C.ADDIW
            if rd == 0:
                return 0
            return i_type(imm6, rd, 0, rd, OP_IMM_32)
        if f3 == 2:  # C.LI
            return i_type(imm6, 0, 0, rd, OP_IMM)
        if f3 == 3:
            if rd == 2:  # C.ADDI16SP
                nzimm = sext(
                    (field(h, 12, 12) << 9)
                    | (field(h, 6, 6) << 4)
                    | (field(h, 5, 5) << 6)
                    | (field(h, 4, 3) << 7)
                    | (field(h, 2, 2) << 5),
                    10,
                )
                if nzimm == 0:
                    return 0
                return i_type(nzimm, 2, 0, 2, OP_IMM)
            if imm6 == 0:  # C.LUI with nzimm == 0 is reserved
                return 0
            return ((imm6 & 0xFFFFF) << 12) | (rd << 7) | OP_LUI
        if f3 == 4:
            f2 = field(h, 11, 10)
            shamt = (field(h, 12, 12) << 5) | rs2
            if f2 == 0:  # C.SRLI
                return i_type(shamt, rs1p, 5, rs1p, OP_IMM)
            if f2 == 1:  # C.SRAI
                return i_type(shamt | 0x400, rs1p, 5, rs1p, OP_IMM)
            if f2 == 2:  # C.ANDI
                return i_type(imm6, rs1p, 7, rs1p, OP_IMM)
            f2b = field(h, 6, 5)
            if field(h, 12, 12) == 0:
                if f2b == 0:  # C.SUB
                    return r_type(0x20, rdp, rs1p, 0, rs1p, OP_REG)
                if f2b == 1:  # C.XOR
                    return r_type(0, rdp, rs1p, 4, rs1p, OP_REG)
                if f2b == 2:  # C.OR
                    return r_type(0, rdp, rs1p, 6, rs1p, OP_REG)
                return r_type(0, rdp, rs1p, 7, rs1p, OP_REG)  # C.AND
            if f2b == 0:  # C.SUBW
                return r_type(0x20, rdp, rs1p, 0, rs1p, OP_REG_32)
            if f2b == 1:  # C.ADDW
                return r_type(0, rdp, rs1p, 0, rs1p, OP_REG_32)
            return 0  # reserved
        if f3 == 5:  # C.J
            offset = sext(
                (field(h, 12, 12) << 11)
                | (field(h, 11, 11) << 4)
                | (field(h, 10, 9) << 8)
                | (field(h, 8, 8) << 10)
                | (field(h, 7, 7) << 6)
                | (field(h, 6, 6) << 7)
                | (field(h, 5, 3) << 1)
                | (field(h, 2, 2) << 5),
                12,
            )
            return j_type(offset, 0)
        offset = sext(
            (field(h, 12, 12) << 8)
            | (field(h, 11, 10) << 3)
            | (field(h, 6, 5) << 6)
            | (field(h, 4, 3) << 1)
            | (field(h, 2, 2) << 5),
            9,
        )
        return b_type(offset, 0, rs1p, f3 - 6)  # C.BEQZ (f3=6) / C.BNEZ (f3=7)

    if quadrant == 2:
        if f3 == 0:  # C.SLLI
            shamt = (field(h, 12, 12) << 5) | rs2
            return i_type(shamt, rd, 1, rd, OP_IMM)
        sp_uimm_d = (field(h, 12, 12) << 5) | (field(h, 6, 5) << 3) | (field(h, 4, 2) << 6)
        if f3 == 1:  # C.FLDSP
            return i_type(sp_uimm_d, 2, 3, rd, OP_LOAD_FP)
        if f3 == 2:  # C.LWSP
            if rd == 0:
                return 0
            uimm = (field(h, 12, 12) << 5) | (field(h, 6, 4) << 2) | (field(h, 3, 2) << 6)
            return i_type(uimm, 2, 2, rd, OP_LOAD)
        if f3 == 3:  # C.LDSP
            if rd == 0:
                return 0
            return i_type(sp_uimm_d, 2, 3, rd, OP_LOAD)
        if f3 == 4:
            if field(h, 12, 12) == 0:
                if rs2 == 0:  # C.JR
                    if rd == 0:
                        return 0
                    return i_type(0, rd, 0, 0, OP_JALR)
                return r_type(0, rs2, 0, 0, rd, OP_REG)  # C.MV
            if rs2 == 0:
                if rd == 0:  # C.EBREAK
                    return 0x00100073
                return i_type(0, rd, 0, 1, OP_JALR)  # C.JALR
            return r_type(0, rs2, rd, 0, rd, OP_REG)  # C.ADD
        sp_suimm_d = (field(h, 12, 10) << 3) | (field(h, 9, 7) << 6)
        if f3 == 5:  # C.FSDSP
            return s_type(sp_suimm_d, rs2, 2, 3, OP_STORE_FP)
        if f3 == 6:  # C.SWSP
            uimm = (field(h, 12, 9) << 2) | (field(h, 8, 7) << 6)
            return s_type(uimm, rs2, 2, 2, OP_STORE)
        return s_type(sp_suimm_d, rs2, 2, 3, OP_STORE)  # C.SDSP

    return 0  # quadrant 3 is not compressed
