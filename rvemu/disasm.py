"""Disassembly that reads as GNU objdump's (`riscv64-unknown-elf-objdump -d`, binutils 2.40).

`disassemble(raw, pc)` is the text objdump prints after an instruction's bytes: the
mnemonic, a tab, the operands (`add\tsp,sp,-16`, `ld\tra,8(sp)`, `ret`, `csrr\ta5,mstatus`,
`jal\t80000010 <main>`). A `Disassembler` also keeps what objdump remembers from one
instruction to the next and adds the same notes (`add\ta0,a0,990 # 80000430 <put+0x16>`);
`elf_symbols` and `global_pointer` read an ELF file's symbols as objdump uses them.

What an instruction is comes from rvemu's own decoder (`cpu/decode.py`, `cpu/compressed.py`)
and its record (`cpu/isa.py`): the mnemonic is the record's name, the operands follow from
its format and semantics. This module adds only what objdump shows beyond that: register,
CSR, rounding-mode and fence names, and the aliases objdump prefers (`ALIASES`). Compressed
instructions read as the instructions they expand to, as objdump shows them, except the
HINTs objdump names `c.*`.

Where rvemu and binutils 2.40 disagree on what an encoding is, this shows what rvemu
executes: Zicond (newer than binutils 2.40); fence and fence.i with nonzero fields objdump
wants zero; a rounding mode other than rne on an exact conversion (fcvt.d.s, fcvt.d.w ...);
and C.ADDI16SP with a zero immediate, reserved, which objdump reads as `add sp,sp,0` and
rvemu traps on. Unlike objdump, it ignores the ISA an ELF file declares: rvemu always has
C and all of its extensions.
"""

from __future__ import annotations

import bisect
import functools
import struct
from dataclasses import dataclass

from .cpu.compressed import expand
from .cpu.decode import immediate, lookup
from .cpu.isa import (
    BRANCH,
    BY_OP,
    FMT_CSR,
    FMT_J,
    FMT_SHAMT,
    FMT_U,
    JUMP,
    LOAD,
    STORE,
    SYSTEM,
    Op,
    Record,
)
from .cpu.names import CSR_NAMES, F_NAMES, X_NAMES

MASK64 = (1 << 64) - 1

ROUNDING = ("rne", "rtz", "rdn", "rup", "rmm", "unknown", "unknown", "dyn")
FENCE_SETS = ["unknown"] + [
    "".join(c for k, c in enumerate("iorw") if n & 8 >> k) for n in range(1, 16)
]
X_GP, X_TP = 3, 4


def csr_name(number: int) -> str:
    """A CSR's name as objdump prints it, or its number in hex."""
    return CSR_NAMES.get(number, f"0x{number:x}")


# The aliases objdump prints, by the record they stand for, in the order it tries them: the
# first whose conditions hold wins; an instruction none fits reads as its record. Conditions
# compare a field of the 32-bit instruction with a number, or `rs1=rs2`; the operands are the
# tokens `Disassembler._operand` prints. (binutils 2.40 shows most immediate forms under the
# name of the register form: `add sp,sp,-16` for addi, `csrw mie,8` for csrwi.)
ALIASES = """
# mnemonic   instruction  when                      operands
j            jal          rd=0                      target
jal          jal          rd=1                      target
ret          jalr         rd=0 rs1=1 imm=0          -
jr           jalr         rd=0 imm=0                rs1
jr           jalr         rd=0                      imm(rs1)
jalr         jalr         rd=1 imm=0                rs1
jalr         jalr         rd=1                      imm(rs1)
jalr         jalr         imm=0                     rd,rs1
beqz         beq          rs2=0                     rs1,target
bnez         bne          rs2=0                     rs1,target
blez         bge          rs1=0                     rs2,target
bgez         bge          rs2=0                     rs1,target
bltz         blt          rs2=0                     rs1,target
bgtz         blt          rs1=0                     rs2,target
nop          addi         rd=0 rs1=0 imm=0          -
li           addi         rs1=0                     rd,imm
mv           addi         imm=0                     rd,rs1
add          addi         -                         rd,rs1,imm
sext.w       addiw        imm=0                     rd,rs1
addw         addiw        -                         rd,rs1,imm
zext.b       andi         imm=255                   rd,rs1
and          andi         -                         rd,rs1,imm
prefetch.i   ori          rd=0 rs2=0                offset(rs1)
prefetch.r   ori          rd=0 rs2=1                offset(rs1)
prefetch.w   ori          rd=0 rs2=3                offset(rs1)
or           ori          -                         rd,rs1,imm
not          xori         imm=-1                    rd,rs1
xor          xori         -                         rd,rs1,imm
seqz         sltiu        imm=1                     rd,rs1
sll          slli         -                         rd,rs1,imm
srl          srli         -                         rd,rs1,imm
sra          srai         -                         rd,rs1,imm
sllw         slliw        -                         rd,rs1,imm
srlw         srliw        -                         rd,rs1,imm
sraw         sraiw        -                         rd,rs1,imm
ror          rori         -                         rd,rs1,imm
rorw         roriw        -                         rd,rs1,imm
bclr         bclri        -                         rd,rs1,imm
bext         bexti        -                         rd,rs1,imm
binv         binvi        -                         rd,rs1,imm
bset         bseti        -                         rd,rs1,imm
neg          sub          rs1=0                     rd,rs2
negw         subw         rs1=0                     rd,rs2
snez         sltu         rs1=0                     rd,rs2
sltz         slt          rs2=0                     rd,rs1
sgtz         slt          rs1=0                     rd,rs2
zext.w       add_uw       rs2=0                     rd,rs1
zext.h       packw        rs2=0                     rd,rs1
fence.tso    fence        fm=8 pred=3 succ=3        -
pause        fence        fm=0 pred=1 succ=0 rd=0 rs1=0  -
fence        fence        fm=0 pred=15 succ=15      -
sfence.vma   sfence_vma   rs1=0 rs2=0               -
sfence.vma   sfence_vma   rs2=0                     rs1
unimp        csrrw        rd=0 rs1=0 csr=0xc00      -
rdcycle      csrrs        rs1=0 csr=0xc00           rd
rdtime       csrrs        rs1=0 csr=0xc01           rd
rdinstret    csrrs        rs1=0 csr=0xc02           rd
frflags      csrrs        rs1=0 csr=1               rd
frrm         csrrs        rs1=0 csr=2               rd
frcsr        csrrs        rs1=0 csr=3               rd
csrr         csrrs        rs1=0                     rd,csr
csrs         csrrs        rd=0                      csr,rs1
fsflags      csrrw        rd=0 csr=1                rs1
fsflags      csrrw        csr=1                     rd,rs1
fsrm         csrrw        rd=0 csr=2                rs1
fsrm         csrrw        csr=2                     rd,rs1
fscsr        csrrw        rd=0 csr=3                rs1
fscsr        csrrw        csr=3                     rd,rs1
csrw         csrrw        rd=0                      csr,rs1
csrc         csrrc        rd=0                      csr,rs1
fsflagsi     csrrwi       rd=0 csr=1                zimm
fsflagsi     csrrwi       csr=1                     rd,zimm
fsrmi        csrrwi       rd=0 csr=2                zimm
fsrmi        csrrwi       csr=2                     rd,zimm
csrw         csrrwi       rd=0                      csr,zimm
csrrw        csrrwi       -                         rd,csr,zimm
csrs         csrrsi       rd=0                      csr,zimm
csrrs        csrrsi       -                         rd,csr,zimm
csrc         csrrci       rd=0                      csr,zimm
csrrc        csrrci       -                         rd,csr,zimm
fcvt.s.h     fcvt_s_h     rm=0                      rd,rs1
fcvt.d.s     fcvt_d_s     rm=0                      rd,rs1
fcvt.d.h     fcvt_d_h     rm=0                      rd,rs1
fcvt.d.w     fcvt_d_w     rm=0                      rd,rs1
fcvt.d.wu    fcvt_d_wu    rm=0                      rd,rs1
fmv.s        fsgnj_s      rs1=rs2                   rd,rs1
fneg.s       fsgnjn_s     rs1=rs2                   rd,rs1
fabs.s       fsgnjx_s     rs1=rs2                   rd,rs1
fmv.d        fsgnj_d      rs1=rs2                   rd,rs1
fneg.d       fsgnjn_d     rs1=rs2                   rd,rs1
fabs.d       fsgnjx_d     rs1=rs2                   rd,rs1
fmv.h        fsgnj_h      rs1=rs2                   rd,rs1
fneg.h       fsgnjn_h     rs1=rs2                   rd,rs1
fabs.h       fsgnjx_h     rs1=rs2                   rd,rs1
"""


@dataclass(frozen=True)
class Alias:
    mnemonic: str
    when: tuple[tuple[str, int | str], ...]  # (field, a number or another field)
    operands: tuple[str, ...]


def _parse_aliases(text: str) -> dict[str, list[Alias]]:
    """ALIASES as lists by the record name they apply to, in order."""
    aliases: dict[str, list[Alias]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        mnemonic, name, *when, operands = line.split()
        conditions = []
        for condition in when:
            if condition != "-":
                field, _, value = condition.partition("=")
                conditions.append((field, value if value[0].isalpha() else int(value, 0)))
        tokens = () if operands == "-" else tuple(operands.split(","))
        aliases.setdefault(name, []).append(Alias(mnemonic, tuple(conditions), tokens))
    return aliases


ALIASES_BY_NAME = _parse_aliases(ALIASES)


def mnemonic(record: Record) -> str:
    """The record's name as an assembler mnemonic: fcvt_d_w as fcvt.d.w."""
    return record.name.replace("_", ".")


def operands(record: Record) -> tuple[str, ...]:
    """The operands of the record's instruction, in objdump's order, from its format and
    semantics: register fields in field order, then the immediate, then the rounding mode."""
    if record.kind == LOAD:
        return ("rd", "imm(rs1)")
    if record.kind == STORE:
        return ("rs2", "imm(rs1)")
    if record.kind == BRANCH:
        return ("rs1", "rs2", "target")
    if record.kind == JUMP:
        return ("rd", "target") if record.fmt == FMT_J else ("rd", "imm(rs1)")
    if record.kind == SYSTEM:
        if record.fmt == FMT_CSR:
            return ("rd", "csr", "zimm" if record.name.endswith("i") else "rs1")
        if record.ext == "a":
            return ("rd", "(rs1)") if record.name.startswith("lr") else ("rd", "rs2", "(rs1)")
        if record.name == "fence":
            return ("pred", "succ")
        if record.name == "sfence_vma":
            return ("rs1", "rs2")
        if record.name.startswith("cbo"):
            return ("(rs1)",)
        return ()
    names = record.names
    found = ["rd"]
    found += ["rs1"] if names & {"RS1", "FS1"} else []
    found += ["rs2"] if names & {"RS2", "FS2"} else []
    found += ["rs3"] if "FS3" in names else []
    found += ["imm"] if "IMM" in names else []
    found += ["rm"] if "RM" in names else []
    return tuple(found)


def f_registers(record: Record) -> frozenset[str]:
    """Which of the record's register fields (rd, rs1, rs2, rs3) name f registers."""
    names = record.names
    found = set()
    if record.fp_rd or (record.kind == LOAD and record.fp_data):
        found.add("rd")
    if "FS1" in names:
        found.add("rs1")
    if "FS2" in names or (record.kind == STORE and record.fp_data):
        found.add("rs2")
    if "FS3" in names:
        found.add("rs3")
    return frozenset(found)


def _compressed_form(raw: int, fields: dict[str, int]) -> tuple[str, tuple[str, ...]] | None:
    """How objdump prints a compressed instruction otherwise than the one it expands to: the
    HINTs (destination x0, shift by 0) by their `c.` names, C.MV as mv and C.ADDI as add."""
    quadrant, funct3, rd, imm = raw & 3, raw >> 13, fields["rd"], fields["imm"]
    if quadrant == 1 and funct3 == 0:  # C.ADDI, C.NOP
        if rd == 0:
            return ("c.nop", ("imm",)) if imm else ("nop", ())
        return "add", ("rd", "rs1", "imm")
    if quadrant == 1 and funct3 in (2, 3) and rd == 0:  # C.LI, C.LUI
        return ("c.li" if funct3 == 2 else "c.lui"), ("rd", "imm")
    if quadrant == 1 and funct3 == 4 and (raw >> 10) & 3 < 2 and imm == 0:  # C.SRLI, C.SRAI
        return ("c.srai64" if (raw >> 10) & 1 else "c.srli64"), ("rd",)
    if quadrant == 2 and funct3 == 0 and (imm == 0 or rd == 0):  # C.SLLI
        return ("c.slli", ("rd", "imm")) if imm else ("c.slli64", ("rd",))
    if quadrant == 2 and funct3 == 4 and (raw >> 2) & 31:  # C.MV, C.ADD (rs2 != 0)
        if (raw >> 12) & 1 == 0:
            return ("c.mv" if rd == 0 else "mv"), ("rd", "rs2")
        if rd == 0:
            return "c.add", ("rd", "rs2")
    return None


@dataclass(frozen=True)
class Decoded:
    """What an instruction word is, before its pc and the listing's state are known."""

    record: Record
    fields: dict[str, int]  # rd, rs1, rs2, rs3, rm, fm, pred, succ, imm, csr
    mnemonic: str
    operands: tuple[str, ...]
    f_registers: frozenset[str]
    notes: bool  # whether objdump notes addresses for it (compressed: only C.ADDI, C.ADDIW)


@functools.lru_cache(maxsize=1 << 16)
def decoded(raw: int) -> Decoded | None:
    """The instruction `raw` (16 or 32 bits, as its two low bits say, and no more) as rvemu
    decodes it and objdump names it; None if rvemu finds it illegal."""
    length = 4 if raw & 3 == 3 else 2
    insn = raw if length == 4 else expand(raw)
    op = lookup(insn)[0] if insn else Op.ILLEGAL
    if op == Op.MARK_MAIN:  # rvemu's name for the HINT `slti zero,zero,1`
        op = Op.SLTI
    record = BY_OP.get(op)
    if record is None:
        return None
    imm = immediate(record.fmt, insn)
    fields = {
        "rd": (insn >> 7) & 31,
        "rs1": (insn >> 15) & 31,
        "rs2": (insn >> 20) & 31,
        "rs3": insn >> 27,
        "rm": (insn >> 12) & 7,
        "fm": insn >> 28,
        "pred": (insn >> 24) & 15,
        "succ": (insn >> 20) & 15,
        "imm": imm,
        "csr": imm if record.fmt == FMT_CSR else -1,
    }
    name, tokens = mnemonic(record), operands(record)
    for alias in ALIASES_BY_NAME.get(record.name, ()):
        if all(fields[f] == (fields[v] if isinstance(v, str) else v) for f, v in alias.when):
            name, tokens = alias.mnemonic, alias.operands
            break
    if length == 2:
        name, tokens = _compressed_form(raw, fields) or (name, tokens)
    if record.ext == "a":
        name += ("", ".rl", ".aq", ".aqrl")[(insn >> 25) & 3]
    notes = length == 4 or (raw & 3 == 1 and raw >> 13 <= 1)
    return Decoded(record, fields, name, tokens, f_registers(record), notes)


def raw_text(raw: int, length: int) -> str:
    """objdump's column of instruction bytes: `00000297` or `1141`."""
    return f"{raw & ((1 << (8 * length)) - 1):0{2 * length}x}"


class Disassembler:
    """objdump's disassembler over a sequence of instructions.

    `symbols` (address: name, e.g. from `elf_symbols`) turn addresses into
    `80000010 <main+0x4>` as objdump prints them for a file with symbols; without, they
    read `0x80000010`. Like objdump, it remembers the value an auipc or lui leaves in a
    register until an instruction uses that register as a base, and notes the address this
    makes (`add a0,a0,990 # 80000430 <put+0x16>`); so are addresses off gp (when `gp` is
    given, e.g. from `global_pointer`), tp and zero.
    """

    def __init__(self, symbols: dict[int, str] | None = None, gp: int | None = None) -> None:
        self.symbols = symbols or {}
        self.gp = gp
        self._upper: dict[int, int] = {}  # register: the value an auipc or lui left there
        self._note: int | None = None

    @property
    def symbols(self) -> dict[int, str]:
        return self._symbols

    @symbols.setter
    def symbols(self, symbols: dict[int, str]) -> None:
        self._symbols = symbols
        self._addresses = sorted(symbols)

    def address(self, value: int) -> str:
        """An address as objdump prints a jump target or a note."""
        value &= MASK64
        if not self._addresses:
            return f"0x{value:x}"
        base = self._addresses[max(bisect.bisect_right(self._addresses, value) - 1, 0)]
        name = self._symbols[base]
        if base == value:
            return f"{value:x} <{name}>"
        sign = "+" if value > base else "-"
        return f"{value:x} <{name}{sign}0x{abs(value - base):x}>"

    def __call__(self, raw: int, pc: int) -> str:
        """The text objdump prints for the instruction whose low bits are `raw`, at `pc`."""
        length = 4 if raw & 3 == 3 else 2
        raw &= (1 << (8 * length)) - 1
        insn = decoded(raw)
        if insn is None:
            return "unimp" if raw == 0 else f".{length}byte\t0x{raw:x}"
        self._note = None
        text = ",".join(filter(None, (self._operand(t, insn, pc) for t in insn.operands)))
        text = f"{insn.mnemonic}\t{text}" if text else insn.mnemonic
        if self._note is not None:
            text += " # " + self.address(self._note)
        return text

    def _operand(self, token: str, insn: Decoded, pc: int) -> str:
        record, fields = insn.record, insn.fields
        imm, rs1 = fields["imm"], fields["rs1"]
        if token in ("rd", "rs1", "rs2", "rs3"):
            number = fields[token]
            if token == "rd" and record.name in ("lui", "auipc"):
                self._upper[number] = (pc if record.name == "auipc" else 0) + imm
            if token == "rs1" and record.name == "jalr":
                self._note_address(insn, rs1, imm)
            return (F_NAMES if token in insn.f_registers else X_NAMES)[number]
        if token == "imm":
            if record.fmt == FMT_SHAMT:
                return f"0x{imm:x}"
            if record.fmt == FMT_U:
                return f"0x{(imm >> 12) & 0xFFFFF:x}"
            if record.name in ("addi", "addiw") and rs1 != 0:
                self._note_address(insn, rs1, imm, wide=record.name == "addiw")
            return str(imm)
        if token == "imm(rs1)":
            self._note_address(insn, rs1, imm)
            if record.name == "jalr":  # objdump looks at jalr's base twice
                self._note_address(insn, rs1, imm)
            return f"{imm}({X_NAMES[rs1]})"
        if token == "offset(rs1)":  # a prefetch: the offset's low five bits are its kind
            return f"{imm & ~31}({X_NAMES[rs1]})"
        if token == "(rs1)":
            return f"({X_NAMES[rs1]})"
        if token == "target":
            return self.address(pc + imm)
        if token == "csr":
            return csr_name(imm)
        if token == "zimm":
            return str(rs1)
        if token == "rm":  # not shown when dynamic
            return "" if fields["rm"] == 7 else ROUNDING[fields["rm"]]
        if token in ("pred", "succ"):
            return FENCE_SETS[fields[token]]
        raise ValueError(f"unknown operand {token!r}")

    def _note_address(self, insn: Decoded, base: int, offset: int, wide: bool = False) -> None:
        """objdump's maybe_print_address: note base + offset where the base is known."""
        if not insn.notes:
            return
        if base in self._upper:
            upper = self._upper.pop(base)
            value = (upper if base else 0) + offset  # what `lui zero` left is still zero
        elif base == X_GP and self.gp is not None:
            value = self.gp + offset
        elif base in (X_TP, 0):
            value = offset
        else:
            return
        if wide:
            value = ((value & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        self._note = value & MASK64


def disassemble(raw: int, pc: int, symbols: dict[int, str] | None = None) -> str:
    """objdump's text for one instruction, without the notes earlier instructions would
    allow (a `Disassembler` keeps them, and sorts `symbols` once for many instructions)."""
    return Disassembler(symbols)(raw, pc)


# --- ELF symbols, chosen as objdump chooses among those at one address

STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_GNU_IFUNC = 1, 2, 3, 4, 10
STB_LOCAL, STB_GLOBAL = 0, 1
SHN_UNDEF, SHN_LORESERVE, SHN_COMMON = 0, 0xFF00, 0xFFF2


def _symbol_table(path: str) -> list[tuple[str, int, int, int, int, str, int]]:
    """(name, value, type, bind, size, section name, section index) of each symbol of an
    ELF64 file."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".symtab")
        if table is None:
            return []
        sections = [s.name for s in elf.iter_sections()]
        strings = elf.get_section(table["sh_link"]).data()
        data = table.data()
    symbols = []
    for at, info, _, shndx, value, size in struct.iter_unpack("<IBBHQQ", data):
        name = strings[at : strings.index(b"\0", at)].decode(errors="replace")
        section = sections[shndx] if shndx < SHN_LORESERVE else ""
        symbols.append((name, value, info & 15, info >> 4, size, section, shndx))
    return symbols


def elf_symbols(path: str, section: str = ".text") -> dict[int, str]:
    """The name objdump gives each address that has symbols, disassembling `section` of the
    ELF file at `path`; empty for a stripped file.

    Of the symbols at one address objdump prefers (in this order) one in the section it
    disassembles, a function, an object, a global over a weak over a local one, the larger,
    one not starting with '.', then the first by name. Section and file symbols, undefined
    ones and the assembler's mapping symbols ($x, $d) are never shown.
    """
    best: dict[int, tuple] = {}
    for name, value, kind, bind, size, where, shndx in _symbol_table(path):
        if (
            not name
            or kind in (STT_SECTION, STT_FILE)
            or shndx in (SHN_UNDEF, SHN_COMMON)
            or name.startswith(("$x", "$d"))
            or name == ".L0 "  # the assembler's fake label
        ):
            continue
        rank = (
            where != section,
            "gnu_compiled" in name or "gcc2_compiled" in name,
            len(name) > 2 and name.endswith((".o", ".a")),
            kind not in (STT_FUNC, STT_GNU_IFUNC),
            kind != STT_OBJECT,
            bind == STB_LOCAL,
            bind != STB_GLOBAL,
            -size,
            name.startswith("."),
            name.encode(),
        )
        if value not in best or rank < best[value][0]:
            best[value] = (rank, name)
    return {value: name for value, (_, name) in best.items()}


def global_pointer(path: str) -> int | None:
    """The value of `__global_pointer$` in the ELF file at `path`, which objdump takes as gp."""
    values = [s[1] for s in _symbol_table(path) if s[0] == "__global_pointer$"]
    return values[0] if values else None
