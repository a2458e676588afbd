"""The instruction set: one record per instruction, in the style of QEMU's insn32.decode.

Each line: mnemonic; the 32 instruction bits from bit 31 down to bit 0 ('0'/'1' fixed,
'.' operand; spaces only for reading); the immediate's format; the extension; and the
semantics, once, for both the interpreter (`execute_gen.py` generates its dispatch) and the
second tier (`rvemu.tier2` translates the same text to LLVM IR). Semantics forms:

  RD = expr            integer result to x[rd] (RS1, RS2, IMM, PC and the words of ops.py)
  FD = fn(...)         F/D operation (fpu.py): (result, fflags) to f[rd]; RD = fn(...) to x[rd]
                       (operands FS1 FS2 FS3 name f registers, RS1 an x register, RM the
                       resolved rounding mode)
  branch cond          to PC + IMM when cond holds
  jump target          x[rd] = the next pc; go to target
  load N [signed]      N-byte load to x[rd];  fload N: to f[rd] (4: NaN-boxed)
  store N              N-byte store of x[rs2]; fstore N: of f[rs2]
  system               atomics, CSRs, fences, privileged: `system.py`

The first matching line wins, so more specific patterns come first within an opcode.
Compressed (RVC) instructions are expanded to these 32-bit forms by `compressed.py`.
Nothing depends on the order of lines beyond that: an op id is only a name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

# Operand formats: which immediate to extract (registers are always extracted).
FMT_R, FMT_I, FMT_S, FMT_B, FMT_U, FMT_J, FMT_SHAMT, FMT_CSR, FMT_R4, FMT_NONE = range(10)

_FORMATS = {
    "R": FMT_R,
    "I": FMT_I,
    "S": FMT_S,
    "B": FMT_B,
    "U": FMT_U,
    "J": FMT_J,
    "SH": FMT_SHAMT,
    "CSR": FMT_CSR,
    "R4": FMT_R4,
    "N": FMT_NONE,
}

# What a record's semantics is (its first word or its destination).
ALU, BRANCH, JUMP, LOAD, STORE, FP, SYSTEM = (
    "alu",
    "branch",
    "jump",
    "load",
    "store",
    "fp",
    "system",
)

TABLE = """
# --- rvemu boot-latency mark: `slti x0, x0, 1`, a custom-use HINT (a no-op elsewhere)
mark_main   000000000001 00000 010 00000 0010011    N   i        system

# --- RV64I
lui         .................... ..... 0110111      U   i        RD = IMM
auipc       .................... ..... 0010111      U   i        RD = PC + IMM
jal         .................... ..... 1101111      J   i        jump PC + IMM
jalr        ............ ..... 000 ..... 1100111    I   i        jump (RS1 + IMM) & ~1
beq         ....... ..... ..... 000 ..... 1100011   B   i        branch RS1 == RS2
bne         ....... ..... ..... 001 ..... 1100011   B   i        branch RS1 != RS2
blt         ....... ..... ..... 100 ..... 1100011   B   i        branch RS1 < RS2
bge         ....... ..... ..... 101 ..... 1100011   B   i        branch RS1 >= RS2
bltu        ....... ..... ..... 110 ..... 1100011   B   i        branch ltu(RS1, RS2)
bgeu        ....... ..... ..... 111 ..... 1100011   B   i        branch not ltu(RS1, RS2)
lb          ............ ..... 000 ..... 0000011    I   i        load 1 signed
lh          ............ ..... 001 ..... 0000011    I   i        load 2 signed
lw          ............ ..... 010 ..... 0000011    I   i        load 4 signed
ld          ............ ..... 011 ..... 0000011    I   i        load 8
lbu         ............ ..... 100 ..... 0000011    I   i        load 1
lhu         ............ ..... 101 ..... 0000011    I   i        load 2
lwu         ............ ..... 110 ..... 0000011    I   i        load 4
sb          ....... ..... ..... 000 ..... 0100011   S   i        store 1
sh          ....... ..... ..... 001 ..... 0100011   S   i        store 2
sw          ....... ..... ..... 010 ..... 0100011   S   i        store 4
sd          ....... ..... ..... 011 ..... 0100011   S   i        store 8
addi        ............ ..... 000 ..... 0010011    I   i        RD = RS1 + IMM
slti        ............ ..... 010 ..... 0010011    I   i        RD = RS1 < IMM
sltiu       ............ ..... 011 ..... 0010011    I   i        RD = ltu(RS1, IMM)
xori        ............ ..... 100 ..... 0010011    I   i        RD = RS1 ^ IMM
ori         ............ ..... 110 ..... 0010011    I   i        RD = RS1 | IMM
andi        ............ ..... 111 ..... 0010011    I   i        RD = RS1 & IMM
slli        000000 ...... ..... 001 ..... 0010011   SH  i        RD = RS1 << IMM
srli        000000 ...... ..... 101 ..... 0010011   SH  i        RD = srl(RS1, IMM)
srai        010000 ...... ..... 101 ..... 0010011   SH  i        RD = RS1 >> IMM
add         0000000 ..... ..... 000 ..... 0110011   R   i        RD = RS1 + RS2
sub         0100000 ..... ..... 000 ..... 0110011   R   i        RD = RS1 - RS2
sll         0000000 ..... ..... 001 ..... 0110011   R   i        RD = RS1 << (RS2 & 63)
slt         0000000 ..... ..... 010 ..... 0110011   R   i        RD = RS1 < RS2
sltu        0000000 ..... ..... 011 ..... 0110011   R   i        RD = ltu(RS1, RS2)
xor         0000000 ..... ..... 100 ..... 0110011   R   i        RD = RS1 ^ RS2
srl         0000000 ..... ..... 101 ..... 0110011   R   i        RD = srl(RS1, RS2 & 63)
sra         0100000 ..... ..... 101 ..... 0110011   R   i        RD = RS1 >> (RS2 & 63)
or          0000000 ..... ..... 110 ..... 0110011   R   i        RD = RS1 | RS2
and         0000000 ..... ..... 111 ..... 0110011   R   i        RD = RS1 & RS2
addiw       ............ ..... 000 ..... 0011011    I   i        RD = sext(RS1 + IMM, 32)
slliw       0000000 ..... ..... 001 ..... 0011011   SH  i        RD = sext(RS1 << IMM, 32)
srliw       0000000 ..... ..... 101 ..... 0011011   SH  i        RD = sext(srl(RS1 & M32, IMM), 32)
sraiw       0100000 ..... ..... 101 ..... 0011011   SH  i        RD = sext(RS1, 32) >> IMM
addw        0000000 ..... ..... 000 ..... 0111011   R   i        RD = sext(RS1 + RS2, 32)
subw        0100000 ..... ..... 000 ..... 0111011   R   i        RD = sext(RS1 - RS2, 32)
sllw        0000000 ..... ..... 001 ..... 0111011   R   i        RD = sext(RS1 << (RS2 & 31), 32)
srlw        0000000 ..... ..... 101 ..... 0111011   R   i        RD = sext(srl(RS1 & M32, RS2 & 31), 32)
sraw        0100000 ..... ..... 101 ..... 0111011   R   i        RD = sext(RS1, 32) >> (RS2 & 31)
fence       ............ ..... 000 ..... 0001111    N   i        system
ecall       000000000000 00000 000 00000 1110011    N   i        system
ebreak      000000000001 00000 000 00000 1110011    N   i        system

# --- Zifencei
fence_i     ............ ..... 001 ..... 0001111    N   zifencei system

# --- privileged
sret        0001000 00010 00000 000 00000 1110011   N   priv     system
mret        0011000 00010 00000 000 00000 1110011   N   priv     system
wfi         0001000 00101 00000 000 00000 1110011   N   priv     system
sfence_vma  0001001 ..... ..... 000 00000 1110011   R   priv     system

# --- Zicsr
csrrw       ............ ..... 001 ..... 1110011    CSR zicsr    system
csrrs       ............ ..... 010 ..... 1110011    CSR zicsr    system
csrrc       ............ ..... 011 ..... 1110011    CSR zicsr    system
csrrwi      ............ ..... 101 ..... 1110011    CSR zicsr    system
csrrsi      ............ ..... 110 ..... 1110011    CSR zicsr    system
csrrci      ............ ..... 111 ..... 1110011    CSR zicsr    system

# --- M
mul         0000001 ..... ..... 000 ..... 0110011   R   m        RD = RS1 * RS2
mulh        0000001 ..... ..... 001 ..... 0110011   R   m        RD = mulh(RS1, RS2)
mulhsu      0000001 ..... ..... 010 ..... 0110011   R   m        RD = mulhsu(RS1, RS2)
mulhu       0000001 ..... ..... 011 ..... 0110011   R   m        RD = mulhu(RS1, RS2)
div         0000001 ..... ..... 100 ..... 0110011   R   m        RD = div(RS1, RS2)
divu        0000001 ..... ..... 101 ..... 0110011   R   m        RD = divu(RS1, RS2)
rem         0000001 ..... ..... 110 ..... 0110011   R   m        RD = rem(RS1, RS2)
remu        0000001 ..... ..... 111 ..... 0110011   R   m        RD = remu(RS1, RS2)
mulw        0000001 ..... ..... 000 ..... 0111011   R   m        RD = sext(RS1 * RS2, 32)
divw        0000001 ..... ..... 100 ..... 0111011   R   m        RD = sext(div(sext(RS1, 32), sext(RS2, 32)), 32)
divuw       0000001 ..... ..... 101 ..... 0111011   R   m        RD = sext(divu(RS1 & M32, RS2 & M32), 32)
remw        0000001 ..... ..... 110 ..... 0111011   R   m        RD = sext(rem(sext(RS1, 32), sext(RS2, 32)), 32)
remuw       0000001 ..... ..... 111 ..... 0111011   R   m        RD = sext(remu(RS1 & M32, RS2 & M32), 32)

# --- A (aq/rl bits accepted and ignored: one hart, sequentially consistent)
lr_w        00010 .. 00000 ..... 010 ..... 0101111  R   a        system
sc_w        00011 .. ..... ..... 010 ..... 0101111  R   a        system
amoswap_w   00001 .. ..... ..... 010 ..... 0101111  R   a        system
amoadd_w    00000 .. ..... ..... 010 ..... 0101111  R   a        system
amoxor_w    00100 .. ..... ..... 010 ..... 0101111  R   a        system
amoand_w    01100 .. ..... ..... 010 ..... 0101111  R   a        system
amoor_w     01000 .. ..... ..... 010 ..... 0101111  R   a        system
amomin_w    10000 .. ..... ..... 010 ..... 0101111  R   a        system
amomax_w    10100 .. ..... ..... 010 ..... 0101111  R   a        system
amominu_w   11000 .. ..... ..... 010 ..... 0101111  R   a        system
amomaxu_w   11100 .. ..... ..... 010 ..... 0101111  R   a        system
lr_d        00010 .. 00000 ..... 011 ..... 0101111  R   a        system
sc_d        00011 .. ..... ..... 011 ..... 0101111  R   a        system
amoswap_d   00001 .. ..... ..... 011 ..... 0101111  R   a        system
amoadd_d    00000 .. ..... ..... 011 ..... 0101111  R   a        system
amoxor_d    00100 .. ..... ..... 011 ..... 0101111  R   a        system
amoand_d    01100 .. ..... ..... 011 ..... 0101111  R   a        system
amoor_d     01000 .. ..... ..... 011 ..... 0101111  R   a        system
amomin_d    10000 .. ..... ..... 011 ..... 0101111  R   a        system
amomax_d    10100 .. ..... ..... 011 ..... 0101111  R   a        system
amominu_d   11000 .. ..... ..... 011 ..... 0101111  R   a        system
amomaxu_d   11100 .. ..... ..... 011 ..... 0101111  R   a        system

# --- F and D loads and stores
flw         ............ ..... 010 ..... 0000111    I   f        fload 4
fld         ............ ..... 011 ..... 0000111    I   d        fload 8
fsw         ....... ..... ..... 010 ..... 0100111   S   f        fstore 4
fsd         ....... ..... ..... 011 ..... 0100111   S   d        fstore 8

# --- F (funct3 '...' is the rounding mode)
fmadd_s     ..... 00 ..... ..... ... ..... 1000011  R4  f        FD = fmadd_s(FS1, FS2, FS3, RM)
fmsub_s     ..... 00 ..... ..... ... ..... 1000111  R4  f        FD = fmsub_s(FS1, FS2, FS3, RM)
fnmsub_s    ..... 00 ..... ..... ... ..... 1001011  R4  f        FD = fnmsub_s(FS1, FS2, FS3, RM)
fnmadd_s    ..... 00 ..... ..... ... ..... 1001111  R4  f        FD = fnmadd_s(FS1, FS2, FS3, RM)
fadd_s      0000000 ..... ..... ... ..... 1010011   R   f        FD = fadd_s(FS1, FS2, RM)
fsub_s      0000100 ..... ..... ... ..... 1010011   R   f        FD = fsub_s(FS1, FS2, RM)
fmul_s      0001000 ..... ..... ... ..... 1010011   R   f        FD = fmul_s(FS1, FS2, RM)
fdiv_s      0001100 ..... ..... ... ..... 1010011   R   f        FD = fdiv_s(FS1, FS2, RM)
fsqrt_s     0101100 00000 ..... ... ..... 1010011   R   f        FD = fsqrt_s(FS1, RM)
fsgnj_s     0010000 ..... ..... 000 ..... 1010011   R   f        FD = fsgnj_s(FS1, FS2)
fsgnjn_s    0010000 ..... ..... 001 ..... 1010011   R   f        FD = fsgnjn_s(FS1, FS2)
fsgnjx_s    0010000 ..... ..... 010 ..... 1010011   R   f        FD = fsgnjx_s(FS1, FS2)
fmin_s      0010100 ..... ..... 000 ..... 1010011   R   f        FD = fmin_s(FS1, FS2)
fmax_s      0010100 ..... ..... 001 ..... 1010011   R   f        FD = fmax_s(FS1, FS2)
fcvt_w_s    1100000 00000 ..... ... ..... 1010011   R   f        RD = fcvt_w_s(FS1, RM)
fcvt_wu_s   1100000 00001 ..... ... ..... 1010011   R   f        RD = fcvt_wu_s(FS1, RM)
fcvt_l_s    1100000 00010 ..... ... ..... 1010011   R   f        RD = fcvt_l_s(FS1, RM)
fcvt_lu_s   1100000 00011 ..... ... ..... 1010011   R   f        RD = fcvt_lu_s(FS1, RM)
fmv_x_w     1110000 00000 ..... 000 ..... 1010011   R   f        RD = fmv_x_w(FS1)
fclass_s    1110000 00000 ..... 001 ..... 1010011   R   f        RD = fclass_s(FS1)
feq_s       1010000 ..... ..... 010 ..... 1010011   R   f        RD = feq_s(FS1, FS2)
flt_s       1010000 ..... ..... 001 ..... 1010011   R   f        RD = flt_s(FS1, FS2)
fle_s       1010000 ..... ..... 000 ..... 1010011   R   f        RD = fle_s(FS1, FS2)
fcvt_s_w    1101000 00000 ..... ... ..... 1010011   R   f        FD = fcvt_s_w(RS1, RM)
fcvt_s_wu   1101000 00001 ..... ... ..... 1010011   R   f        FD = fcvt_s_wu(RS1, RM)
fcvt_s_l    1101000 00010 ..... ... ..... 1010011   R   f        FD = fcvt_s_l(RS1, RM)
fcvt_s_lu   1101000 00011 ..... ... ..... 1010011   R   f        FD = fcvt_s_lu(RS1, RM)
fmv_w_x     1111000 00000 ..... 000 ..... 1010011   R   f        FD = fmv_w_x(RS1)

# --- D
fmadd_d     ..... 01 ..... ..... ... ..... 1000011  R4  d        FD = fmadd_d(FS1, FS2, FS3, RM)
fmsub_d     ..... 01 ..... ..... ... ..... 1000111  R4  d        FD = fmsub_d(FS1, FS2, FS3, RM)
fnmsub_d    ..... 01 ..... ..... ... ..... 1001011  R4  d        FD = fnmsub_d(FS1, FS2, FS3, RM)
fnmadd_d    ..... 01 ..... ..... ... ..... 1001111  R4  d        FD = fnmadd_d(FS1, FS2, FS3, RM)
fadd_d      0000001 ..... ..... ... ..... 1010011   R   d        FD = fadd_d(FS1, FS2, RM)
fsub_d      0000101 ..... ..... ... ..... 1010011   R   d        FD = fsub_d(FS1, FS2, RM)
fmul_d      0001001 ..... ..... ... ..... 1010011   R   d        FD = fmul_d(FS1, FS2, RM)
fdiv_d      0001101 ..... ..... ... ..... 1010011   R   d        FD = fdiv_d(FS1, FS2, RM)
fsqrt_d     0101101 00000 ..... ... ..... 1010011   R   d        FD = fsqrt_d(FS1, RM)
fsgnj_d     0010001 ..... ..... 000 ..... 1010011   R   d        FD = fsgnj_d(FS1, FS2)
fsgnjn_d    0010001 ..... ..... 001 ..... 1010011   R   d        FD = fsgnjn_d(FS1, FS2)
fsgnjx_d    0010001 ..... ..... 010 ..... 1010011   R   d        FD = fsgnjx_d(FS1, FS2)
fmin_d      0010101 ..... ..... 000 ..... 1010011   R   d        FD = fmin_d(FS1, FS2)
fmax_d      0010101 ..... ..... 001 ..... 1010011   R   d        FD = fmax_d(FS1, FS2)
fcvt_s_d    0100000 00001 ..... ... ..... 1010011   R   d        FD = fcvt_s_d(FS1, RM)
fcvt_d_s    0100001 00000 ..... ... ..... 1010011   R   d        FD = fcvt_d_s(FS1, RM)
feq_d       1010001 ..... ..... 010 ..... 1010011   R   d        RD = feq_d(FS1, FS2)
flt_d       1010001 ..... ..... 001 ..... 1010011   R   d        RD = flt_d(FS1, FS2)
fle_d       1010001 ..... ..... 000 ..... 1010011   R   d        RD = fle_d(FS1, FS2)
fclass_d    1110001 00000 ..... 001 ..... 1010011   R   d        RD = fclass_d(FS1)
fcvt_w_d    1100001 00000 ..... ... ..... 1010011   R   d        RD = fcvt_w_d(FS1, RM)
fcvt_wu_d   1100001 00001 ..... ... ..... 1010011   R   d        RD = fcvt_wu_d(FS1, RM)
fcvt_l_d    1100001 00010 ..... ... ..... 1010011   R   d        RD = fcvt_l_d(FS1, RM)
fcvt_lu_d   1100001 00011 ..... ... ..... 1010011   R   d        RD = fcvt_lu_d(FS1, RM)
fmv_x_d     1110001 00000 ..... 000 ..... 1010011   R   d        RD = fmv_x_d(FS1)
fcvt_d_w    1101001 00000 ..... ... ..... 1010011   R   d        FD = fcvt_d_w(RS1, RM)
fcvt_d_wu   1101001 00001 ..... ... ..... 1010011   R   d        FD = fcvt_d_wu(RS1, RM)
fcvt_d_l    1101001 00010 ..... ... ..... 1010011   R   d        FD = fcvt_d_l(RS1, RM)
fcvt_d_lu   1101001 00011 ..... ... ..... 1010011   R   d        FD = fcvt_d_lu(RS1, RM)
fmv_d_x     1111001 00000 ..... 000 ..... 1010011   R   d        FD = fmv_d_x(RS1)
# --- Zba (address generation)
sh1add      0010000 ..... ..... 010 ..... 0110011   R   zba      RD = (RS1 << 1) + RS2
sh2add      0010000 ..... ..... 100 ..... 0110011   R   zba      RD = (RS1 << 2) + RS2
sh3add      0010000 ..... ..... 110 ..... 0110011   R   zba      RD = (RS1 << 3) + RS2
add_uw      0000100 ..... ..... 000 ..... 0111011   R   zba      RD = (RS1 & M32) + RS2
sh1add_uw   0010000 ..... ..... 010 ..... 0111011   R   zba      RD = ((RS1 & M32) << 1) + RS2
sh2add_uw   0010000 ..... ..... 100 ..... 0111011   R   zba      RD = ((RS1 & M32) << 2) + RS2
sh3add_uw   0010000 ..... ..... 110 ..... 0111011   R   zba      RD = ((RS1 & M32) << 3) + RS2
slli_uw     000010 ...... ..... 001 ..... 0011011   SH  zba      RD = (RS1 & M32) << IMM

# --- Zbb (basic bit manipulation), some shared with Zbkb
andn        0100000 ..... ..... 111 ..... 0110011   R   zbb,zbkb RD = RS1 & ~RS2
orn         0100000 ..... ..... 110 ..... 0110011   R   zbb,zbkb RD = RS1 | ~RS2
xnor        0100000 ..... ..... 100 ..... 0110011   R   zbb,zbkb RD = ~(RS1 ^ RS2)
clz         011000000000 ..... 001 ..... 0010011    N   zbb      RD = clz(RS1)
ctz         011000000001 ..... 001 ..... 0010011    N   zbb      RD = ctz(RS1)
cpop        011000000010 ..... 001 ..... 0010011    N   zbb      RD = cpop(RS1)
clzw        011000000000 ..... 001 ..... 0011011    N   zbb      RD = clz(RS1 & M32) - 32
ctzw        011000000001 ..... 001 ..... 0011011    N   zbb      RD = ctz(RS1 | (1 << 32))
cpopw       011000000010 ..... 001 ..... 0011011    N   zbb      RD = cpop(RS1 & M32)
max         0000101 ..... ..... 110 ..... 0110011   R   zbb      RD = RS1 if RS1 > RS2 else RS2
maxu        0000101 ..... ..... 111 ..... 0110011   R   zbb      RD = RS2 if ltu(RS1, RS2) else RS1
min         0000101 ..... ..... 100 ..... 0110011   R   zbb      RD = RS1 if RS1 < RS2 else RS2
minu        0000101 ..... ..... 101 ..... 0110011   R   zbb      RD = RS1 if ltu(RS1, RS2) else RS2
sext_b      011000000100 ..... 001 ..... 0010011    N   zbb      RD = sext(RS1, 8)
sext_h      011000000101 ..... 001 ..... 0010011    N   zbb      RD = sext(RS1, 16)
rol         0110000 ..... ..... 001 ..... 0110011   R   zbb,zbkb RD = rol(RS1, RS2 & 63)
ror         0110000 ..... ..... 101 ..... 0110011   R   zbb,zbkb RD = ror(RS1, RS2 & 63)
rori        011000 ...... ..... 101 ..... 0010011   SH  zbb,zbkb RD = ror(RS1, IMM)
rolw        0110000 ..... ..... 001 ..... 0111011   R   zbb,zbkb RD = rolw(RS1, RS2 & 31)
rorw        0110000 ..... ..... 101 ..... 0111011   R   zbb,zbkb RD = rorw(RS1, RS2 & 31)
roriw       0110000 ..... ..... 101 ..... 0011011   SH  zbb,zbkb RD = rorw(RS1, IMM)
orc_b       001010000111 ..... 101 ..... 0010011    N   zbb      RD = orc_b(RS1)
rev8        011010111000 ..... 101 ..... 0010011    N   zbb,zbkb RD = rev8(RS1)

# --- Zbc (carry-less multiplication)
clmul       0000101 ..... ..... 001 ..... 0110011   R   zbc      RD = clmul(RS1, RS2)
clmulr      0000101 ..... ..... 010 ..... 0110011   R   zbc      RD = clmulr(RS1, RS2)
clmulh      0000101 ..... ..... 011 ..... 0110011   R   zbc      RD = srl(clmulr(RS1, RS2), 1)

# --- Zbs (single-bit instructions)
bclr        0100100 ..... ..... 001 ..... 0110011   R   zbs      RD = RS1 & ~(1 << (RS2 & 63))
bext        0100100 ..... ..... 101 ..... 0110011   R   zbs      RD = srl(RS1, RS2 & 63) & 1
binv        0110100 ..... ..... 001 ..... 0110011   R   zbs      RD = RS1 ^ (1 << (RS2 & 63))
bset        0010100 ..... ..... 001 ..... 0110011   R   zbs      RD = RS1 | (1 << (RS2 & 63))
bclri       010010 ...... ..... 001 ..... 0010011   SH  zbs      RD = RS1 & ~(1 << IMM)
bexti       010010 ...... ..... 101 ..... 0010011   SH  zbs      RD = srl(RS1, IMM) & 1
binvi       011010 ...... ..... 001 ..... 0010011   SH  zbs      RD = RS1 ^ (1 << IMM)
bseti       001010 ...... ..... 001 ..... 0010011   SH  zbs      RD = RS1 | (1 << IMM)

# --- Zbkb (bit manipulation for cryptography; zext.h is packw with rs2 = x0)
pack        0000100 ..... ..... 100 ..... 0110011   R   zbkb     RD = (RS1 & M32) | (RS2 << 32)
packh       0000100 ..... ..... 111 ..... 0110011   R   zbkb     RD = (RS1 & 0xFF) | ((RS2 & 0xFF) << 8)
packw       0000100 ..... ..... 100 ..... 0111011   R   zbkb     RD = sext((RS1 & 0xFFFF) | ((RS2 & 0xFFFF) << 16), 32)
brev8       011010000111 ..... 101 ..... 0010011    N   zbkb     RD = brev8(RS1)

# --- Zbkx (crossbar permutations)
xperm4      0010100 ..... ..... 010 ..... 0110011   R   zbkx     RD = xperm4(RS1, RS2)
xperm8      0010100 ..... ..... 100 ..... 0110011   R   zbkx     RD = xperm8(RS1, RS2)

# --- Zicond (conditional zero)
czero_eqz   0000111 ..... ..... 101 ..... 0110011   R   zicond   RD = 0 if RS2 == 0 else RS1
czero_nez   0000111 ..... ..... 111 ..... 0110011   R   zicond   RD = RS1 if RS2 == 0 else 0

# --- Zicbom and Zicboz (cache-block operations; prefetches are ORI hints)
cbo_inval   000000000000 ..... 010 00000 0001111    N   zicbom   system
cbo_clean   000000000001 ..... 010 00000 0001111    N   zicbom   system
cbo_flush   000000000010 ..... 010 00000 0001111    N   zicbom   system
cbo_zero    000000000100 ..... 010 00000 0001111    N   zicboz   system


# --- Zfh (half precision) and Zfhmin (its loads, stores, moves and conversions)
flh         ............ ..... 001 ..... 0000111    I   zfhmin   fload 2
fsh         ....... ..... ..... 001 ..... 0100111   S   zfhmin   fstore 2
fcvt_s_h    0100000 00010 ..... ... ..... 1010011   R   zfhmin   FD = fcvt_s_h(FS1, RM)
fcvt_h_s    0100010 00000 ..... ... ..... 1010011   R   zfhmin   FD = fcvt_h_s(FS1, RM)
fcvt_d_h    0100001 00010 ..... ... ..... 1010011   R   zfhmin   FD = fcvt_d_h(FS1, RM)
fcvt_h_d    0100010 00001 ..... ... ..... 1010011   R   zfhmin   FD = fcvt_h_d(FS1, RM)
fmv_x_h     1110010 00000 ..... 000 ..... 1010011   R   zfhmin   RD = fmv_x_h(FS1)
fmv_h_x     1111010 00000 ..... 000 ..... 1010011   R   zfhmin   FD = fmv_h_x(RS1)
fmadd_h     ..... 10 ..... ..... ... ..... 1000011  R4  zfh      FD = fmadd_h(FS1, FS2, FS3, RM)
fmsub_h     ..... 10 ..... ..... ... ..... 1000111  R4  zfh      FD = fmsub_h(FS1, FS2, FS3, RM)
fnmsub_h    ..... 10 ..... ..... ... ..... 1001011  R4  zfh      FD = fnmsub_h(FS1, FS2, FS3, RM)
fnmadd_h    ..... 10 ..... ..... ... ..... 1001111  R4  zfh      FD = fnmadd_h(FS1, FS2, FS3, RM)
fadd_h      0000010 ..... ..... ... ..... 1010011   R   zfh      FD = fadd_h(FS1, FS2, RM)
fsub_h      0000110 ..... ..... ... ..... 1010011   R   zfh      FD = fsub_h(FS1, FS2, RM)
fmul_h      0001010 ..... ..... ... ..... 1010011   R   zfh      FD = fmul_h(FS1, FS2, RM)
fdiv_h      0001110 ..... ..... ... ..... 1010011   R   zfh      FD = fdiv_h(FS1, FS2, RM)
fsqrt_h     0101110 00000 ..... ... ..... 1010011   R   zfh      FD = fsqrt_h(FS1, RM)
fsgnj_h     0010010 ..... ..... 000 ..... 1010011   R   zfh      FD = fsgnj_h(FS1, FS2)
fsgnjn_h    0010010 ..... ..... 001 ..... 1010011   R   zfh      FD = fsgnjn_h(FS1, FS2)
fsgnjx_h    0010010 ..... ..... 010 ..... 1010011   R   zfh      FD = fsgnjx_h(FS1, FS2)
fmin_h      0010110 ..... ..... 000 ..... 1010011   R   zfh      FD = fmin_h(FS1, FS2)
fmax_h      0010110 ..... ..... 001 ..... 1010011   R   zfh      FD = fmax_h(FS1, FS2)
feq_h       1010010 ..... ..... 010 ..... 1010011   R   zfh      RD = feq_h(FS1, FS2)
flt_h       1010010 ..... ..... 001 ..... 1010011   R   zfh      RD = flt_h(FS1, FS2)
fle_h       1010010 ..... ..... 000 ..... 1010011   R   zfh      RD = fle_h(FS1, FS2)
fclass_h    1110010 00000 ..... 001 ..... 1010011   R   zfh      RD = fclass_h(FS1)
fcvt_w_h    1100010 00000 ..... ... ..... 1010011   R   zfh      RD = fcvt_w_h(FS1, RM)
fcvt_wu_h   1100010 00001 ..... ... ..... 1010011   R   zfh      RD = fcvt_wu_h(FS1, RM)
fcvt_l_h    1100010 00010 ..... ... ..... 1010011   R   zfh      RD = fcvt_l_h(FS1, RM)
fcvt_lu_h   1100010 00011 ..... ... ..... 1010011   R   zfh      RD = fcvt_lu_h(FS1, RM)
fcvt_h_w    1101010 00000 ..... ... ..... 1010011   R   zfh      FD = fcvt_h_w(RS1, RM)
fcvt_h_wu   1101010 00001 ..... ... ..... 1010011   R   zfh      FD = fcvt_h_wu(RS1, RM)
fcvt_h_l    1101010 00010 ..... ... ..... 1010011   R   zfh      FD = fcvt_h_l(RS1, RM)
fcvt_h_lu   1101010 00011 ..... ... ..... 1010011   R   zfh      FD = fcvt_h_lu(RS1, RM)
"""


@dataclass(frozen=True)
class Record:
    """One instruction, as its table line says."""

    name: str
    mask: int
    match: int
    fmt: int
    ext: str
    kind: str  # ALU, BRANCH, JUMP, LOAD, STORE, FP or SYSTEM
    semantics: str  # the expression (ALU, FP: the right-hand side; BRANCH, JUMP: the condition
    # or target), or "" for LOAD, STORE and SYSTEM
    size: int = 0  # LOAD and STORE: bytes accessed
    signed: bool = False  # LOAD: sign-extended
    fp_data: bool = False  # LOAD, STORE: the data register is an f register
    fp_rd: bool = False  # the destination is an f register

    @cached_property  # asked for each instruction tier 2 emits: parsed once
    def names(self) -> frozenset[str]:
        """The operand names the semantics reads (RS1, RS2, FS1, RM, IMM, PC ...)."""
        if not self.semantics:
            return frozenset()
        tree = ast.parse(self.semantics, mode="eval")
        return frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.isupper())

    @property
    def extensions(self) -> tuple[str, ...]:
        """The extensions that have this instruction (it is there if any of them is)."""
        return tuple(self.ext.split(","))

    @property
    def uses_rm(self) -> bool:
        """Its funct3 is a rounding mode (an invalid one makes the instruction illegal)."""
        return "RM" in self.names


def _record(name: str, mask: int, match: int, fmt: int, ext: str, text: str) -> Record:
    word, _, rest = text.partition(" ")
    if word in ("load", "fload"):
        size, *sign = rest.split()
        return Record(
            name,
            mask,
            match,
            fmt,
            ext,
            LOAD,
            "",
            int(size),
            sign == ["signed"],
            word == "fload",
            word == "fload",
        )
    if word in ("store", "fstore"):
        return Record(name, mask, match, fmt, ext, STORE, "", int(rest), False, word == "fstore")
    if word == "branch":
        return Record(name, mask, match, fmt, ext, BRANCH, rest)
    if word == "jump":
        return Record(name, mask, match, fmt, ext, JUMP, rest)
    if word == "system":
        return Record(name, mask, match, fmt, ext, SYSTEM, "")
    dest, _, expr = text.partition(" = ")
    if dest not in ("RD", "FD") or not expr:
        raise ValueError(f"{name}: cannot read semantics {text!r}")
    fp = "FS1" in expr or dest == "FD"
    return Record(name, mask, match, fmt, ext, FP if fp else ALU, expr, fp_rd=dest == "FD")


def parse_table(text: str = TABLE) -> list[Record]:
    """Every line of the table, in order."""
    records = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        k = 1
        while k < len(words) and set(words[k]) <= set("01."):
            k += 1
        name, bits = words[0], "".join(words[1:k])
        if len(bits) != 32:
            raise ValueError(f"bad pattern for {name}: {bits!r}")
        fmt, ext, semantics = words[k], words[k + 1], " ".join(words[k + 2 :])
        mask = int("".join("0" if b == "." else "1" for b in bits), 2)
        match = int(bits.replace(".", "0"), 2)
        records.append(_record(name, mask, match, _FORMATS[fmt], ext, semantics))
    return records


RECORDS = parse_table()

# Op ids: ILLEGAL is 0, then one per record. Numba folds IntEnum members to constants, so
# `op == Op.ADD` in the executor compiles to a jump table on the op id. REGION is no
# instruction: it marks a decoded slot where a compiled region starts (the slot keeps the
# instruction's own op in its rs3/rm field; see rvemu.tier2).
Op = IntEnum("Op", ["ILLEGAL"] + [r.name.upper() for r in RECORDS] + ["REGION"], start=0)
BY_OP: dict[int, Record] = {Op[r.name.upper()]: r for r in RECORDS}


# The extensions beyond RV64GC, in an ISA string's canonical order (Z by category, then
# alphabetically; then S), each a bit of the hart's st[EXTENSIONS]. `--cpu` turns them off.
ALWAYS = ("zicsr", "zifencei")  # part of RV64GC here, named in the ISA string
OPTIONAL_EXTENSIONS = (
    "zicbom", "zicbop", "zicboz", "ziccid", "zicond", "zihintpause", "zfh", "zfhmin",
    "zba", "zbb", "zbc", "zbkb", "zbkx", "zbs", "sstc", "svnapot",
)  # fmt: skip
IMPLIES = {"zfh": ("zfhmin",)}
CACHE_BLOCK = 64  # Zicbom/Zicbop/Zicboz block size in bytes (QEMU's virt harts: 64)  # as QEMU: Zfh turns Zfhmin on
ALL_EXTENSIONS = (1 << len(OPTIONAL_EXTENSIONS)) - 1


def extension_bit(name: str) -> int:
    return 1 << OPTIONAL_EXTENSIONS.index(name)


def extension_mask(record: Record) -> int:
    """The bits of the optional extensions that have the record (0: always there)."""
    names = [e for e in record.extensions if e in OPTIONAL_EXTENSIONS]
    return sum(extension_bit(e) for e in names)


def parse_cpu(spec: str) -> int:
    """The enabled optional extensions for a QEMU-style `-cpu` string, e.g.
    "rv64,zba=false,sstc=off". Raises ValueError with a one-line reason."""
    model, *options = [p.strip() for p in spec.split(",")]
    if model != "rv64":
        raise ValueError(f"cpu model {model!r}: only rv64 is emulated")
    enabled = ALL_EXTENSIONS
    for option in options:
        name, _, value = option.partition("=")
        if name not in OPTIONAL_EXTENSIONS:
            raise ValueError(
                f"unknown cpu property {name!r} (known: {', '.join(OPTIONAL_EXTENSIONS)})"
            )
        if value in ("true", "on"):
            enabled |= extension_bit(name)
        elif value in ("false", "off"):
            enabled &= ~extension_bit(name)
        else:
            raise ValueError(f"cpu property {name}: {value!r} is not true/false/on/off")
    for name, implied in IMPLIES.items():
        if enabled & extension_bit(name):
            for other in implied:
                enabled |= extension_bit(other)
    return enabled


def isa_extensions(enabled: int) -> list[str]:
    """The device tree's riscv,isa-extensions: single letters, then the named ones."""
    names = [*ALWAYS, *(e for e in OPTIONAL_EXTENSIONS if enabled & extension_bit(e))]
    order = {
        e: k for k, e in enumerate(("zicbom", "zicbop", "zicboz", "ziccid", "zicond", "zicsr"))
    }
    zi = sorted((e for e in names if e.startswith("zi")), key=lambda e: (order.get(e, 99), e))
    return list("imafdc") + zi + [e for e in names if not e.startswith("zi")]


def isa_string(enabled: int) -> str:
    """The device tree's riscv,isa, e.g. rv64imafdc_zicsr_zifencei_zba_sstc."""
    return (
        "rv64"
        + "".join(isa_extensions(enabled)[:6])
        + "".join("_" + e for e in isa_extensions(enabled)[6:])
    )


def ops_where(test) -> frozenset[int]:  # noqa: ANN001 (a predicate on Record)
    """The op ids of the records for which test(record) holds."""
    return frozenset(op for op, r in BY_OP.items() if test(r))
