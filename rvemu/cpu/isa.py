"""The instruction set as one declarative table, in the style of QEMU's insn32.decode.

Each line: mnemonic, the 32 instruction bits from bit 31 down to bit 0 ('0'/'1' fixed,
'.' operand), and the operand format. Spaces inside the pattern are only for reading.
The first matching line wins, so more specific patterns come first within an opcode.
Compressed (RVC) instructions are expanded to these 32-bit forms by `compressed.py`.
"""

from __future__ import annotations

from enum import IntEnum

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

TABLE = """
# --- rvemu boot-latency mark: `slti x0, x0, 1`, a custom-use HINT (a no-op elsewhere)
mark_main   000000000001 00000 010 00000 0010011   N

# --- RV64I
lui         ....................  ..... 0110111   U
auipc       ....................  ..... 0010111   U
jal         ....................  ..... 1101111   J
jalr        ............ ..... 000 ..... 1100111   I
beq         ....... ..... ..... 000 ..... 1100011  B
bne         ....... ..... ..... 001 ..... 1100011  B
blt         ....... ..... ..... 100 ..... 1100011  B
bge         ....... ..... ..... 101 ..... 1100011  B
bltu        ....... ..... ..... 110 ..... 1100011  B
bgeu        ....... ..... ..... 111 ..... 1100011  B
lb          ............ ..... 000 ..... 0000011   I
lh          ............ ..... 001 ..... 0000011   I
lw          ............ ..... 010 ..... 0000011   I
ld          ............ ..... 011 ..... 0000011   I
lbu         ............ ..... 100 ..... 0000011   I
lhu         ............ ..... 101 ..... 0000011   I
lwu         ............ ..... 110 ..... 0000011   I
sb          ....... ..... ..... 000 ..... 0100011  S
sh          ....... ..... ..... 001 ..... 0100011  S
sw          ....... ..... ..... 010 ..... 0100011  S
sd          ....... ..... ..... 011 ..... 0100011  S
addi        ............ ..... 000 ..... 0010011   I
slti        ............ ..... 010 ..... 0010011   I
sltiu       ............ ..... 011 ..... 0010011   I
xori        ............ ..... 100 ..... 0010011   I
ori         ............ ..... 110 ..... 0010011   I
andi        ............ ..... 111 ..... 0010011   I
slli        000000 ...... ..... 001 ..... 0010011  SH
srli        000000 ...... ..... 101 ..... 0010011  SH
srai        010000 ...... ..... 101 ..... 0010011  SH
add         0000000 ..... ..... 000 ..... 0110011  R
sub         0100000 ..... ..... 000 ..... 0110011  R
sll         0000000 ..... ..... 001 ..... 0110011  R
slt         0000000 ..... ..... 010 ..... 0110011  R
sltu        0000000 ..... ..... 011 ..... 0110011  R
xor         0000000 ..... ..... 100 ..... 0110011  R
srl         0000000 ..... ..... 101 ..... 0110011  R
sra         0100000 ..... ..... 101 ..... 0110011  R
or          0000000 ..... ..... 110 ..... 0110011  R
and         0000000 ..... ..... 111 ..... 0110011  R
addiw       ............ ..... 000 ..... 0011011   I
slliw       0000000 ..... ..... 001 ..... 0011011  SH
srliw       0000000 ..... ..... 101 ..... 0011011  SH
sraiw       0100000 ..... ..... 101 ..... 0011011  SH
addw        0000000 ..... ..... 000 ..... 0111011  R
subw        0100000 ..... ..... 000 ..... 0111011  R
sllw        0000000 ..... ..... 001 ..... 0111011  R
srlw        0000000 ..... ..... 101 ..... 0111011  R
sraw        0100000 ..... ..... 101 ..... 0111011  R
fence       ............ ..... 000 ..... 0001111   N
ecall       000000000000 00000 000 00000 1110011   N
ebreak      000000000001 00000 000 00000 1110011   N

# --- Zifencei
fence_i     ............ ..... 001 ..... 0001111   N

# --- privileged
sret        0001000 00010 00000 000 00000 1110011  N
mret        0011000 00010 00000 000 00000 1110011  N
wfi         0001000 00101 00000 000 00000 1110011  N
sfence_vma  0001001 ..... ..... 000 00000 1110011  R

# --- Zicsr
csrrw       ............ ..... 001 ..... 1110011   CSR
csrrs       ............ ..... 010 ..... 1110011   CSR
csrrc       ............ ..... 011 ..... 1110011   CSR
csrrwi      ............ ..... 101 ..... 1110011   CSR
csrrsi      ............ ..... 110 ..... 1110011   CSR
csrrci      ............ ..... 111 ..... 1110011   CSR

# --- M
mul         0000001 ..... ..... 000 ..... 0110011  R
mulh        0000001 ..... ..... 001 ..... 0110011  R
mulhsu      0000001 ..... ..... 010 ..... 0110011  R
mulhu       0000001 ..... ..... 011 ..... 0110011  R
div         0000001 ..... ..... 100 ..... 0110011  R
divu        0000001 ..... ..... 101 ..... 0110011  R
rem         0000001 ..... ..... 110 ..... 0110011  R
remu        0000001 ..... ..... 111 ..... 0110011  R
mulw        0000001 ..... ..... 000 ..... 0111011  R
divw        0000001 ..... ..... 100 ..... 0111011  R
divuw       0000001 ..... ..... 101 ..... 0111011  R
remw        0000001 ..... ..... 110 ..... 0111011  R
remuw       0000001 ..... ..... 111 ..... 0111011  R

# --- A (aq/rl bits accepted and ignored: one hart, sequentially consistent)
lr_w        00010 .. 00000 ..... 010 ..... 0101111  R
sc_w        00011 .. ..... ..... 010 ..... 0101111  R
amoswap_w   00001 .. ..... ..... 010 ..... 0101111  R
amoadd_w    00000 .. ..... ..... 010 ..... 0101111  R
amoxor_w    00100 .. ..... ..... 010 ..... 0101111  R
amoand_w    01100 .. ..... ..... 010 ..... 0101111  R
amoor_w     01000 .. ..... ..... 010 ..... 0101111  R
amomin_w    10000 .. ..... ..... 010 ..... 0101111  R
amomax_w    10100 .. ..... ..... 010 ..... 0101111  R
amominu_w   11000 .. ..... ..... 010 ..... 0101111  R
amomaxu_w   11100 .. ..... ..... 010 ..... 0101111  R
lr_d        00010 .. 00000 ..... 011 ..... 0101111  R
sc_d        00011 .. ..... ..... 011 ..... 0101111  R
amoswap_d   00001 .. ..... ..... 011 ..... 0101111  R
amoadd_d    00000 .. ..... ..... 011 ..... 0101111  R
amoxor_d    00100 .. ..... ..... 011 ..... 0101111  R
amoand_d    01100 .. ..... ..... 011 ..... 0101111  R
amoor_d     01000 .. ..... ..... 011 ..... 0101111  R
amomin_d    10000 .. ..... ..... 011 ..... 0101111  R
amomax_d    10100 .. ..... ..... 011 ..... 0101111  R
amominu_d   11000 .. ..... ..... 011 ..... 0101111  R
amomaxu_d   11100 .. ..... ..... 011 ..... 0101111  R

# --- F and D loads and stores
flw         ............ ..... 010 ..... 0000111   I
fld         ............ ..... 011 ..... 0000111   I
fsw         ....... ..... ..... 010 ..... 0100111  S
fsd         ....... ..... ..... 011 ..... 0100111  S

# --- F (funct3 '...' is the rounding mode)
fmadd_s     ..... 00 ..... ..... ... ..... 1000011  R4
fmsub_s     ..... 00 ..... ..... ... ..... 1000111  R4
fnmsub_s    ..... 00 ..... ..... ... ..... 1001011  R4
fnmadd_s    ..... 00 ..... ..... ... ..... 1001111  R4
fadd_s      0000000 ..... ..... ... ..... 1010011  R
fsub_s      0000100 ..... ..... ... ..... 1010011  R
fmul_s      0001000 ..... ..... ... ..... 1010011  R
fdiv_s      0001100 ..... ..... ... ..... 1010011  R
fsqrt_s     0101100 00000 ..... ... ..... 1010011  R
fsgnj_s     0010000 ..... ..... 000 ..... 1010011  R
fsgnjn_s    0010000 ..... ..... 001 ..... 1010011  R
fsgnjx_s    0010000 ..... ..... 010 ..... 1010011  R
fmin_s      0010100 ..... ..... 000 ..... 1010011  R
fmax_s      0010100 ..... ..... 001 ..... 1010011  R
fcvt_w_s    1100000 00000 ..... ... ..... 1010011  R
fcvt_wu_s   1100000 00001 ..... ... ..... 1010011  R
fcvt_l_s    1100000 00010 ..... ... ..... 1010011  R
fcvt_lu_s   1100000 00011 ..... ... ..... 1010011  R
fmv_x_w     1110000 00000 ..... 000 ..... 1010011  R
fclass_s    1110000 00000 ..... 001 ..... 1010011  R
feq_s       1010000 ..... ..... 010 ..... 1010011  R
flt_s       1010000 ..... ..... 001 ..... 1010011  R
fle_s       1010000 ..... ..... 000 ..... 1010011  R
fcvt_s_w    1101000 00000 ..... ... ..... 1010011  R
fcvt_s_wu   1101000 00001 ..... ... ..... 1010011  R
fcvt_s_l    1101000 00010 ..... ... ..... 1010011  R
fcvt_s_lu   1101000 00011 ..... ... ..... 1010011  R
fmv_w_x     1111000 00000 ..... 000 ..... 1010011  R

# --- D
fmadd_d     ..... 01 ..... ..... ... ..... 1000011  R4
fmsub_d     ..... 01 ..... ..... ... ..... 1000111  R4
fnmsub_d    ..... 01 ..... ..... ... ..... 1001011  R4
fnmadd_d    ..... 01 ..... ..... ... ..... 1001111  R4
fadd_d      0000001 ..... ..... ... ..... 1010011  R
fsub_d      0000101 ..... ..... ... ..... 1010011  R
fmul_d      0001001 ..... ..... ... ..... 1010011  R
fdiv_d      0001101 ..... ..... ... ..... 1010011  R
fsqrt_d     0101101 00000 ..... ... ..... 1010011  R
fsgnj_d     0010001 ..... ..... 000 ..... 1010011  R
fsgnjn_d    0010001 ..... ..... 001 ..... 1010011  R
fsgnjx_d    0010001 ..... ..... 010 ..... 1010011  R
fmin_d      0010101 ..... ..... 000 ..... 1010011  R
fmax_d      0010101 ..... ..... 001 ..... 1010011  R
fcvt_s_d    0100000 00001 ..... ... ..... 1010011  R
fcvt_d_s    0100001 00000 ..... ... ..... 1010011  R
feq_d       1010001 ..... ..... 010 ..... 1010011  R
flt_d       1010001 ..... ..... 001 ..... 1010011  R
fle_d       1010001 ..... ..... 000 ..... 1010011  R
fclass_d    1110001 00000 ..... 001 ..... 1010011  R
fcvt_w_d    1100001 00000 ..... ... ..... 1010011  R
fcvt_wu_d   1100001 00001 ..... ... ..... 1010011  R
fcvt_l_d    1100001 00010 ..... ... ..... 1010011  R
fcvt_lu_d   1100001 00011 ..... ... ..... 1010011  R
fmv_x_d     1110001 00000 ..... 000 ..... 1010011  R
fcvt_d_w    1101001 00000 ..... ... ..... 1010011  R
fcvt_d_wu   1101001 00001 ..... ... ..... 1010011  R
fcvt_d_l    1101001 00010 ..... ... ..... 1010011  R
fcvt_d_lu   1101001 00011 ..... ... ..... 1010011  R
fmv_d_x     1111001 00000 ..... 000 ..... 1010011  R
"""


def parse_table(text: str = TABLE) -> list[tuple[str, int, int, int]]:
    """(name, mask, match, format) for every line of the table, in order."""
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        name, fmt, bits = words[0], words[-1], "".join(words[1:-1])
        if len(bits) != 32 or set(bits) - set("01."):
            raise ValueError(f"bad pattern for {name}: {bits!r}")
        mask = int("".join("0" if b == "." else "1" for b in bits), 2)
        match = int(bits.replace(".", "0"), 2)
        entries.append((name, mask, match, _FORMATS[fmt]))
    return entries


ENTRIES = parse_table()

# Op ids: ILLEGAL is 0, then one per table line. Numba folds IntEnum members to constants,
# so `op == Op.ADD` in the executor compiles to a jump table on the op id.
# REGION is no instruction: it marks a decoded slot where a compiled region starts (the
# slot keeps the instruction's own op in its rs3/rm field; see rvemu.tier2).
Op = IntEnum("Op", ["ILLEGAL"] + [name.upper() for name, _, _, _ in ENTRIES] + ["REGION"], start=0)

# Instructions whose rd names an f register (every other rd is an x register, and an x
# register rd of 0 is redirected to a scratch slot so x0 stays zero without a check).
FP_RD_OPS = frozenset(
    name
    for name, _, _, _ in ENTRIES
    if name.startswith("f")
    and not name.startswith(("fcvt_w", "fcvt_l", "fmv_x", "fclass", "feq", "flt", "fle"))
    and name not in ("fence", "fence_i", "fsw", "fsd")
)
