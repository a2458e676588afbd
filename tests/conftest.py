"""Shared helpers for the hart tests: an instruction encoder, a rig that runs single
instructions on a fresh hart, and a reader for the official riscv-opcodes tables.

The encoder and the tables are written from the ISA manual / read from the official data,
never from rvemu's own decoder, so a test that compares the two can fail.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

# Regions compiled at once, the guest waiting, so that tests see exactly when code becomes
# compiled (tests/test_code_cache.py covers the background worker).
os.environ.setdefault("RVEMU_BACKGROUND_COMPILE", "0")

import pytest

from rvemu import Machine
from rvemu.cpu import isa
from rvemu.cpu import state as S
from rvemu.mmu.pmp import pmp_changed

ROOT = Path(__file__).resolve().parent.parent
OPCODES = (ROOT / ".." / "shared" / "riscv-opcodes").resolve()

MASK64 = (1 << 64) - 1
RAM = 0x8000_0000
MTRAP = 0x8000_0100  # mtvec: a nop, so hart.run(1) after a trap stops right after it
STRAP = 0x8000_0200  # stvec: a nop as well
CODE = 0x8000_1000  # where instructions under test are placed
DATA = 0x8000_8000  # scratch data (several pages)
PT = 0x8004_0000  # page tables built by the tests
NOP = 0x00000013

# ----------------------------------------------------------------- integer helpers


def sext(value: int, bits: int) -> int:
    """Sign-extend the low `bits` of value to a Python int."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def s64(value: int) -> int:
    return sext(value, 64)


def u64(value: int) -> int:
    return value & MASK64


# ----------------------------------------------------------------- encoder (ISA manual ch. 2)


def enc_r(f7: int, rs2: int, rs1: int, f3: int, rd: int, opcode: int) -> int:
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode


def enc_i(imm: int, rs1: int, f3: int, rd: int, opcode: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode


def enc_s(imm: int, rs2: int, rs1: int, f3: int, opcode: int) -> int:
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | opcode


def enc_b(imm: int, rs2: int, rs1: int, f3: int, opcode: int = 0x63) -> int:
    imm &= 0x1FFF
    return (
        ((imm >> 12) & 1) << 31
        | ((imm >> 5) & 0x3F) << 25
        | rs2 << 20
        | rs1 << 15
        | f3 << 12
        | ((imm >> 1) & 0xF) << 8
        | ((imm >> 11) & 1) << 7
        | opcode
    )


def enc_u(imm: int, rd: int, opcode: int) -> int:
    return (imm & 0xFFFFF000) | (rd << 7) | opcode


def enc_j(imm: int, rd: int, opcode: int = 0x6F) -> int:
    imm &= 0x1FFFFF
    return (
        ((imm >> 20) & 1) << 31
        | ((imm >> 1) & 0x3FF) << 21
        | ((imm >> 11) & 1) << 20
        | ((imm >> 12) & 0xFF) << 12
        | rd << 7
        | opcode
    )


# name: (format, opcode, funct3, funct7 or imm-high bits)
R_OPS = {
    "add": (0x33, 0, 0x00),
    "sub": (0x33, 0, 0x20),
    "sll": (0x33, 1, 0x00),
    "slt": (0x33, 2, 0x00),
    "sltu": (0x33, 3, 0x00),
    "xor": (0x33, 4, 0x00),
    "srl": (0x33, 5, 0x00),
    "sra": (0x33, 5, 0x20),
    "or": (0x33, 6, 0x00),
    "and": (0x33, 7, 0x00),
    "addw": (0x3B, 0, 0x00),
    "subw": (0x3B, 0, 0x20),
    "sllw": (0x3B, 1, 0x00),
    "srlw": (0x3B, 5, 0x00),
    "sraw": (0x3B, 5, 0x20),
    "mul": (0x33, 0, 0x01),
    "mulh": (0x33, 1, 0x01),
    "mulhsu": (0x33, 2, 0x01),
    "mulhu": (0x33, 3, 0x01),
    "div": (0x33, 4, 0x01),
    "divu": (0x33, 5, 0x01),
    "rem": (0x33, 6, 0x01),
    "remu": (0x33, 7, 0x01),
    "mulw": (0x3B, 0, 0x01),
    "divw": (0x3B, 4, 0x01),
    "divuw": (0x3B, 5, 0x01),
    "remw": (0x3B, 6, 0x01),
    "remuw": (0x3B, 7, 0x01),
}
I_OPS = {
    "addi": (0x13, 0),
    "slti": (0x13, 2),
    "sltiu": (0x13, 3),
    "xori": (0x13, 4),
    "ori": (0x13, 6),
    "andi": (0x13, 7),
    "addiw": (0x1B, 0),
    "jalr": (0x67, 0),
    "lb": (0x03, 0),
    "lh": (0x03, 1),
    "lw": (0x03, 2),
    "ld": (0x03, 3),
    "lbu": (0x03, 4),
    "lhu": (0x03, 5),
    "lwu": (0x03, 6),
    "flw": (0x07, 2),
    "fld": (0x07, 3),
}
SHIFT_OPS = {  # name: (opcode, funct3, high bits of imm12, shamt width)
    "slli": (0x13, 1, 0x000, 6),
    "srli": (0x13, 5, 0x000, 6),
    "srai": (0x13, 5, 0x400, 6),
    "slliw": (0x1B, 1, 0x000, 5),
    "srliw": (0x1B, 5, 0x000, 5),
    "sraiw": (0x1B, 5, 0x400, 5),
}
S_OPS = {"sb": (0x23, 0), "sh": (0x23, 1), "sw": (0x23, 2), "sd": (0x23, 3)}
S_OPS |= {"fsw": (0x27, 2), "fsd": (0x27, 3)}
B_OPS = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
AMO_FUNCT5 = {
    "lr": 0x02,
    "sc": 0x03,
    "amoswap": 0x01,
    "amoadd": 0x00,
    "amoxor": 0x04,
    "amoand": 0x0C,
    "amoor": 0x08,
    "amomin": 0x10,
    "amomax": 0x14,
    "amominu": 0x18,
    "amomaxu": 0x1C,
}
CSR_F3 = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}
SYSTEM = {
    "ecall": 0x00000073,
    "ebreak": 0x00100073,
    "mret": 0x30200073,
    "sret": 0x10200073,
    "wfi": 0x10500073,
    "fence": 0x0FF0000F,
    "fence.i": 0x0000100F,
}


def enc(name: str, rd: int = 0, rs1: int = 0, rs2: int = 0, imm: int = 0) -> int:
    """Encode one instruction by mnemonic. AMOs are written `amoadd.w`, `lr.d`, ...;
    CSR instructions take the CSR number in `imm` (and the uimm in `rs1`)."""
    if name in R_OPS:
        opcode, f3, f7 = R_OPS[name]
        return enc_r(f7, rs2, rs1, f3, rd, opcode)
    if name in I_OPS:
        opcode, f3 = I_OPS[name]
        return enc_i(imm, rs1, f3, rd, opcode)
    if name in SHIFT_OPS:
        opcode, f3, high, width = SHIFT_OPS[name]
        return enc_i(high | (imm & ((1 << width) - 1)), rs1, f3, rd, opcode)
    if name in S_OPS:
        opcode, f3 = S_OPS[name]
        return enc_s(imm, rs2, rs1, f3, opcode)
    if name in B_OPS:
        return enc_b(imm, rs2, rs1, B_OPS[name])
    if name == "lui":
        return enc_u(imm, rd, 0x37)
    if name == "auipc":
        return enc_u(imm, rd, 0x17)
    if name == "jal":
        return enc_j(imm, rd)
    if name in CSR_F3:
        return enc_i(imm, rs1, CSR_F3[name], rd, 0x73)
    if name == "sfence.vma":
        return enc_r(0x09, rs2, rs1, 0, 0, 0x73)
    if name in SYSTEM:
        return SYSTEM[name]
    base, _, width = name.partition(".")
    if base in AMO_FUNCT5 and width in ("w", "d"):
        f3 = 2 if width == "w" else 3
        return enc_r(AMO_FUNCT5[base] << 2, rs2, rs1, f3, rd, 0x2F)
    raise ValueError(f"no encoder for {name}")


# ----------------------------------------------------------------- the rig


def open_pmp(hart) -> None:  # noqa: ANN001
    """PMP entry 0 over all of memory, RWX, as firmware sets it up: S and U-mode may use
    memory only through a matching PMP entry (as on QEMU)."""
    hart.csr[S.PMPADDR0] = (1 << 54) - 1
    hart.csr[S.PMPCFG0] = 0x1F  # NAPOT, R W X
    pmp_changed(hart.csr, hart.st, hart.tlb)


# The registers encode_record names in an isa.py record's instruction.
RD, RS1, RS2, RS3 = 5, 6, 7, 8


def encode_record(record, imm: int = 0, rm: int = 0) -> int:  # noqa: ANN001 (an isa.Record)
    """The record's instruction with rd, rs1, rs2, rs3 as RD, RS1, RS2, RS3, the rm field and the
    immediate in its format's layout (only in bits the record leaves to operands)."""
    u = imm & 0xFFFFFFFF
    rd, rs1, rs2, rs3 = RD << 7, RS1 << 15, RS2 << 20, RS3 << 27
    if record.fmt == isa.FMT_I:
        fields = rd | rs1 | (rm << 12) | (u & 0xFFF) << 20
    elif record.fmt == isa.FMT_S:
        fields = rs1 | rs2 | ((u >> 5) & 0x7F) << 25 | (u & 0x1F) << 7
    elif record.fmt == isa.FMT_B:
        fields = rs1 | rs2 | ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3F) << 25
        fields |= ((u >> 1) & 0xF) << 8 | ((u >> 11) & 1) << 7
    elif record.fmt == isa.FMT_U:
        fields = rd | u & 0xFFFFF000
    elif record.fmt == isa.FMT_J:
        fields = rd | ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3FF) << 21
        fields |= ((u >> 11) & 1) << 20 | ((u >> 12) & 0xFF) << 12
    elif record.fmt == isa.FMT_SHAMT:
        fields = rd | rs1 | (imm & 0x3F) << 20
    else:  # R, R4 and the formats without an immediate
        fields = rd | rs1 | rs2 | rs3 | (rm << 12)
    return record.match | (fields & ~record.mask)


class Rig:
    """A small machine with trap handlers in place, for running single instructions.

    The trap vectors hold nops, so `step()` after a trapping instruction stops with pc at
    the handler + 4 (the trap itself retires nothing; the handler's nop retires one)."""

    def __init__(self, memory: str = "1M") -> None:
        self.m = Machine(memory=memory)
        self.hart = self.m.hart
        self.reset()

    def reset(self, priv: int = S.PRIV_M) -> None:
        self.hart.reset(pc=CODE)
        for addr in (MTRAP, STRAP):
            self.put(addr, NOP, 4)
        self.hart.csr[S.MTVEC] = MTRAP
        self.hart.csr[S.STVEC] = STRAP
        self.hart.csr[S.MSTATUS] |= 1 << 13  # FS = Initial: F/D usable
        open_pmp(self.hart)
        self.hart.st[S.PRIV] = priv

    # memory
    def put(self, addr: int, value: int, size: int) -> None:
        self.m.write_phys(addr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    def get(self, addr: int, size: int) -> int:
        return int.from_bytes(self.m.read_phys(addr, size), "little")

    def place(self, words: list[int], addr: int = CODE) -> int:
        """Write instructions (32-bit words, or 16-bit ones when the low bits are not 11)
        from addr on; returns the address after them."""
        for word in words:
            size = 4 if word & 3 == 3 else 2
            self.put(addr, word, size)
            addr += size
        return addr

    # registers
    def set_x(self, **regs: int) -> None:
        for name, value in regs.items():
            self.hart.x[int(name[1:])] = s64(value)

    def x(self, n: int) -> int:
        """x[n] as an unsigned 64-bit value."""
        return u64(int(self.hart.x[n]))

    # running
    def step(self, n: int = 1) -> int:
        return self.hart.run(n)

    def exec(self, word: int, priv: int | None = None, pc: int = CODE, **regs: int) -> int:
        """Place one instruction at pc, set registers, run it; returns the exit reason."""
        self.place([word], pc)
        self.hart.pc = pc
        if priv is not None:
            self.hart.st[S.PRIV] = priv
        self.set_x(**regs)
        return self.step(1)

    def trapped_to_m(self) -> bool:
        return self.hart.pc == MTRAP + 4 and self.hart.priv == S.PRIV_M

    def trapped_to_s(self) -> bool:
        return self.hart.pc == STRAP + 4 and self.hart.priv == S.PRIV_S

    @property
    def mcause(self) -> int:
        return int(self.hart.csr[S.MCAUSE])

    @property
    def mtval(self) -> int:
        return u64(int(self.hart.csr[S.MTVAL]))

    @property
    def mepc(self) -> int:
        return u64(int(self.hart.csr[S.MEPC]))


@pytest.fixture
def rig() -> Rig:
    return Rig()


# ----------------------------------------------------------------- Sv39 page tables

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_G, PTE_A, PTE_D = 1, 2, 4, 8, 16, 32, 64, 128


class Sv39:
    """Builds Sv39 page tables in the rig's RAM from PT upwards (privileged spec 4.4)."""

    def __init__(self, rig: Rig, base: int = PT) -> None:
        self.rig = rig
        self.root = base
        self.next_free = base + 4096
        for off in range(0, 4096, 8):
            rig.put(base + off, 0, 8)

    @property
    def satp(self) -> int:
        return (8 << 60) | (self.root >> 12)

    def _table(self) -> int:
        page = self.next_free
        self.next_free += 4096
        self.rig.m.write_phys(page, bytes(4096))
        return page

    def map(self, va: int, pa: int, flags: int, level: int = 0) -> None:
        """Map the page (level 0: 4 KiB, 1: 2 MiB, 2: 1 GiB) holding va to pa."""
        table = self.root
        for lvl in (2, 1, 0):
            index = (va >> (12 + 9 * lvl)) & 0x1FF
            slot = table + 8 * index
            if lvl == level:
                self.rig.put(slot, ((pa >> 12) << 10) | flags | PTE_V, 8)
                return
            pte = self.rig.get(slot, 8)
            if not pte & PTE_V:
                child = self._table()
                pte = ((child >> 12) << 10) | PTE_V
                self.rig.put(slot, pte, 8)
            table = ((pte >> 10) & ((1 << 44) - 1)) << 12

    def enable(self) -> None:
        self.rig.hart.csr[S.SATP] = s64(self.satp)
        self.rig.hart.flush_decoded()


# ----------------------------------------------------------------- riscv-opcodes tables

# The extensions rvemu implements (RV64GC, privileged, and the rest of the official
# suite's), as riscv-opcodes names its files.
IMPLEMENTED = (
    "rv_i rv64_i rv_m rv64_m rv_a rv64_a rv_f rv64_f rv_d rv64_d "
    "rv_c rv64_c rv_c_d rv_zicsr rv_zifencei rv_system rv_s "
    "rv_zba rv64_zba rv_zbb rv64_zbb rv_zbc rv_zbs rv64_zbs rv_zbkb rv64_zbkb rv_zbkx "
    "rv_zicond rv_zicbo rv_zfh rv64_zfh rv_zfhmin rv_d_zfhmin"
).split()


@dataclasses.dataclass(frozen=True)
class OpcodeLine:
    name: str  # as the table spells it: "c.addi", "fcvt.w.s", "amoadd.w"
    ext: str
    mask: int
    match: int
    args: tuple[str, ...]  # operand fields (names from arg_lut.csv)
    length: int  # 2 or 4 bytes


def arg_fields() -> dict[str, tuple[int, int]]:
    """arg_lut.csv: operand name -> (hi, lo) bit range."""
    fields = {}
    for line in (OPCODES / "arg_lut.csv").read_text().splitlines():
        if not line.strip():
            continue
        name, hi, lo = (part.strip().strip('"') for part in line.split(","))
        fields[name] = (int(hi), int(lo))
    return fields


def parse_extension(ext: str) -> list[OpcodeLine]:
    """The real instructions of one extension file (pseudo-ops and imports skipped)."""
    lines = []
    for raw in (OPCODES / "extensions" / ext).read_text().splitlines():
        raw = raw.split("#", 1)[0].strip()
        if not raw or raw.startswith("$"):
            continue
        name, *tokens = raw.split()
        mask = match = 0
        args = []
        for token in tokens:
            if "=" not in token:
                args.append(token)
                continue
            bits, value = token.split("=")
            hi, _, lo = bits.partition("..")
            hi_i, lo_i = int(hi), int(lo or hi)
            width = hi_i - lo_i + 1
            field_mask = ((1 << width) - 1) << lo_i
            mask |= field_mask
            match |= (int(value, 0) << lo_i) & field_mask
        length = 2 if name.startswith("c.") else 4
        lines.append(OpcodeLine(name, ext, mask, match, tuple(args), length))
    return lines


def opcode_tables(exts: tuple[str, ...] | list[str] = IMPLEMENTED) -> list[OpcodeLine]:
    """Every instruction line of the given extensions; skips the test (loudly) when the
    riscv-opcodes folder is not next to the repository."""
    if not (OPCODES / "extensions").is_dir():
        pytest.skip(
            f"*** riscv-opcodes tables not found at {OPCODES} (../shared/riscv-opcodes "
            "relative to the repo): the table-driven decoder checks did NOT run ***"
        )
    return [line for ext in exts for line in parse_extension(ext)]


# How the RVC chapter constrains operand fields beyond the fixed bits. An `_n0`/`_n2`
# register field that is 0/2 makes the encoding another line's (c.mv with rs2 = 0 is c.jr),
# a HINT (c.li with rd = 0: still this instruction) or reserved (c.lwsp with rd = 0).
RVC_OTHER_LINE = {"c_rs2_n0": 0, "c_rs1_n0": 0, "rd_n2": 2}
RVC_RESERVED_IF_ZERO = {
    "c.addi4spn": ("c_nzuimm10",),
    "c.addiw": ("rd_rs1_n0",),
    "c.lwsp": ("rd_n0",),
    "c.ldsp": ("rd_n0",),
    "c.jr": ("rs1_n0",),
    "c.addi16sp": ("c_nzimm10hi", "c_nzimm10lo"),
    "c.lui": ("c_nzimm18hi", "c_nzimm18lo"),  # QEMU: reserved even when rd = 0
}
RESERVED = "reserved"


def field_value(word: int, bits: tuple[int, int]) -> int:
    hi, lo = bits
    return (word >> lo) & ((1 << (hi - lo + 1)) - 1)


def classify(word: int, lines: list[OpcodeLine], fields: dict[str, tuple[int, int]]):
    """The table line a 16- or 32-bit instruction is (by the bits that matter for its
    length), RESERVED for a reserved RVC encoding, or None when no line claims it."""
    length = 4 if word & 3 == 3 else 2
    word &= 0xFFFFFFFF if length == 4 else 0xFFFF
    for line in lines:
        if line.length != length or word & line.mask != line.match:
            continue
        if length == 2:
            if any(
                a in RVC_OTHER_LINE and field_value(word, fields[a]) == RVC_OTHER_LINE[a]
                for a in line.args
            ):
                continue
            zero_args = RVC_RESERVED_IF_ZERO.get(line.name, ())
            if zero_args and all(field_value(word, fields[a]) == 0 for a in zero_args):
                return RESERVED
        return line
    return None


def op_name(line: OpcodeLine) -> str:
    """The rvemu Op member a table line's instruction decodes to (c.* -> its expansion)."""
    if line.length == 2:
        return RVC_EXPANSION[line.name]
    return line.name.replace(".", "_").upper()


RVC_EXPANSION = {
    "c.addi4spn": "ADDI",
    "c.lw": "LW",
    "c.ld": "LD",
    "c.sw": "SW",
    "c.sd": "SD",
    "c.fld": "FLD",
    "c.fsd": "FSD",
    "c.nop": "ADDI",
    "c.addi": "ADDI",
    "c.addiw": "ADDIW",
    "c.li": "ADDI",
    "c.addi16sp": "ADDI",
    "c.lui": "LUI",
    "c.srli": "SRLI",
    "c.srai": "SRAI",
    "c.andi": "ANDI",
    "c.sub": "SUB",
    "c.xor": "XOR",
    "c.or": "OR",
    "c.and": "AND",
    "c.subw": "SUBW",
    "c.addw": "ADDW",
    "c.j": "JAL",
    "c.beqz": "BEQ",
    "c.bnez": "BNE",
    "c.slli": "SLLI",
    "c.fldsp": "FLD",
    "c.lwsp": "LW",
    "c.ldsp": "LD",
    "c.jr": "JALR",
    "c.mv": "ADD",
    "c.ebreak": "EBREAK",
    "c.jalr": "JALR",
    "c.add": "ADD",
    "c.fsdsp": "FSD",
    "c.swsp": "SW",
    "c.sdsp": "SD",
}


QEMU = "qemu-system-riscv64"
# QEMU 7.2's default hart has extensions rvemu does not: turn them off for comparisons.
# The same hart on both sides: QEMU 7.2 with the extensions rvemu has that it has too
# (Zb*, Zfh, Svnapot, Sstc), and rvemu without those QEMU 7.2 lacks (Zicond, Zicbom/boz).
QEMU_CPU = "rv64,h=false,zbkb=true,zbkx=true,Zfh=true,Zfhmin=true,svnapot=true"
RVEMU_CPU_LIKE_QEMU = "rv64,zicond=off,zicbom=off,zicboz=off"


def console_on_rvemu_and_qemu(elf, max_instructions: int) -> tuple[list[str], list[str], str]:
    """Boot `elf` (which powers off) on rvemu and on QEMU's virt machine with 16 MiB:
    (rvemu's console lines, QEMU's console lines, QEMU's stderr)."""
    import subprocess

    from rvemu import Machine

    m = Machine(memory="16M", cpu=RVEMU_CPU_LIKE_QEMU)
    m.load(str(elf))
    result = m.run(max_instructions=max_instructions)
    assert result.reason == "poweroff", result
    qemu = subprocess.run(
        [QEMU, "-machine", "virt", "-cpu", QEMU_CPU, "-bios", "none", "-m", "16M"]
        + ["-display", "none", "-monitor", "none", "-serial", "stdio", "-kernel", str(elf)],
        capture_output=True,
        timeout=120,
    )
    ours = m.console.decode().splitlines()
    theirs = qemu.stdout.decode().replace("\r", "").splitlines()
    return ours, theirs, qemu.stderr.decode(errors="replace")


# Whether each conditional branch is taken for register values a, b (unsigned 64-bit).
BRANCH_TAKEN = {
    "beq": lambda a, b: a == b,
    "bne": lambda a, b: a != b,
    "blt": lambda a, b: s64(a) < s64(b),
    "bge": lambda a, b: s64(a) >= s64(b),
    "bltu": lambda a, b: a < b,
    "bgeu": lambda a, b: a >= b,
}
