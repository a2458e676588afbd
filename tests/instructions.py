"""rvemu's own instruction lines, for the random instruction streams of test_fuzz and
test_isa: the 32-bit records of rvemu/cpu/isa.py, and the RVC chapter's opcode map written
out below. They need nothing outside the repository, so those tests run on any clone;
tests/test_decoder_tables.py checks the records against the official riscv-opcodes tables
where ../shared is present.

A line is a conftest.OpcodeLine (the shape the official tables are read into), named as
the official tables name instructions ("fcvt.w.s", "c.lwsp"), with `ext` the record's
extension ("i", "a", "d", ...; "c" for RVC) and `args` the operand fields it has.
"""

from __future__ import annotations

from functools import cache

from conftest import RESERVED, OpcodeLine

from rvemu.cpu import isa

# Where each operand field lies in a 32-bit instruction (the ISA manual's base formats).
FIELDS = {"rd": (11, 7), "rs1": (19, 15), "rs2": (24, 20), "rs3": (31, 27), "rm": (14, 12)}
FORMAT_REGISTERS = {
    isa.FMT_I: ("rd", "rs1"),
    isa.FMT_SHAMT: ("rd", "rs1"),
    isa.FMT_CSR: ("rd", "rs1"),
    isa.FMT_S: ("rs1", "rs2"),
    isa.FMT_B: ("rs1", "rs2"),
    isa.FMT_U: ("rd",),
    isa.FMT_J: ("rd",),
}  # R, R4 and N: every register field the record's pattern leaves free


def field_bits(word: int, name: str) -> int:
    hi, lo = FIELDS[name]
    return (word >> lo) & ((1 << (hi - lo + 1)) - 1)


def record_args(record: isa.Record) -> tuple[str, ...]:
    if record.fmt in FORMAT_REGISTERS:
        args = list(FORMAT_REGISTERS[record.fmt])
    else:
        args = [
            name
            for name in ("rd", "rs1", "rs2", "rs3")
            if field_bits(~record.mask, name) == field_bits(-1, name)
        ]
    if record.uses_rm:
        args.append("rm")
    return tuple(args)


# The RVC opcode map (RV64), quadrant by quadrant: (quadrant, funct3) -> the line's name,
# or a function of the halfword where bits beyond funct3 choose among several.
def _q1_f0(h: int) -> str:
    return "c.nop" if (h >> 7) & 31 == 0 else "c.addi"


def _q1_f3(h: int) -> str:
    return "c.addi16sp" if (h >> 7) & 31 == 2 else "c.lui"


def _q1_f4(h: int) -> str | None:
    f2 = (h >> 10) & 3
    if f2 < 3:
        return ("c.srli", "c.srai", "c.andi")[f2]
    f2b = (h >> 5) & 3
    if not h >> 12 & 1:
        return ("c.sub", "c.xor", "c.or", "c.and")[f2b]
    return ("c.subw", "c.addw", RESERVED, RESERVED)[f2b]


def _q2_f4(h: int) -> str:
    rs1, rs2 = (h >> 7) & 31, (h >> 2) & 31
    if not h >> 12 & 1:
        return "c.jr" if rs2 == 0 else "c.mv"
    if rs2 == 0:
        return "c.ebreak" if rs1 == 0 else "c.jalr"
    return "c.add"


RVC_MAP = {
    (0, 0): "c.addi4spn", (0, 1): "c.fld", (0, 2): "c.lw", (0, 3): "c.ld", (0, 4): RESERVED,
    (0, 5): "c.fsd", (0, 6): "c.sw", (0, 7): "c.sd",
    (1, 0): _q1_f0, (1, 1): "c.addiw", (1, 2): "c.li", (1, 3): _q1_f3, (1, 4): _q1_f4,
    (1, 5): "c.j", (1, 6): "c.beqz", (1, 7): "c.bnez",
    (2, 0): "c.slli", (2, 1): "c.fldsp", (2, 2): "c.lwsp", (2, 3): "c.ldsp", (2, 4): _q2_f4,
    (2, 5): "c.fsdsp", (2, 6): "c.swsp", (2, 7): "c.sdsp",
}  # fmt: skip


def rvc_reserved(name: str, h: int) -> bool:
    """The encodings the RVC chapter reserves (a zero immediate or register where the
    instruction needs one); QEMU treats c.lui with a zero immediate as reserved for rd = 0
    too."""
    rd = (h >> 7) & 31
    imm6 = ((h >> 12) & 1) << 5 | (h >> 2) & 31
    if name == "c.addi4spn":
        return (h >> 5) & 0xFF == 0
    if name in ("c.addiw", "c.lwsp", "c.ldsp", "c.jr"):
        return rd == 0
    if name in ("c.addi16sp", "c.lui"):
        return imm6 == 0
    return False


def rvc_line_name(h: int) -> str | None:
    """The RVC line a 16-bit word is, RESERVED for a reserved encoding."""
    entry = RVC_MAP[(h & 3, (h >> 13) & 7)]
    name = entry(h) if callable(entry) else entry
    if name == RESERVED or rvc_reserved(name, h):
        return RESERVED
    return name


@cache
def own_lines() -> tuple[OpcodeLine, ...]:
    """Every instruction rvemu decodes: the records (but its own mark_main HINT), then the
    RVC lines (mask and match are the quadrant and funct3: `classify` tells apart lines that
    share them)."""
    lines = [
        OpcodeLine(r.name.replace("_", "."), r.ext, r.mask, r.match, record_args(r), 4)
        for r in isa.RECORDS
        if r.name != "mark_main"
    ]
    slots: dict[str, int] = {}
    for h in range(1 << 16):
        if h & 3 != 3 and (name := rvc_line_name(h)) != RESERVED:
            slots.setdefault(name, h & 0xE003)
    lines += [OpcodeLine(name, "c", 0xE003, match, (), 2) for name, match in slots.items()]
    return tuple(lines)


@cache
def _by_name() -> dict[str, OpcodeLine]:
    return {line.name: line for line in own_lines()}


def classify(word: int) -> OpcodeLine | str | None:
    """The line a 16- or 32-bit word is (the first record that matches, as rvemu's decoder
    takes it), RESERVED for a reserved RVC encoding, None when no line claims it."""
    if word & 3 != 3:
        name = rvc_line_name(word & 0xFFFF)
        return RESERVED if name == RESERVED else _by_name()[name]
    word &= 0xFFFFFFFF
    for line in own_lines():
        if line.length == 4 and word & line.mask == line.match:
            return line
    return None


def random_word(line: OpcodeLine, rng) -> int:  # noqa: ANN001 (a random.Random)
    """The line's fixed bits with random operand bits (which may make it another line)."""
    return (rng.getrandbits(8 * line.length) & ~line.mask) | line.match
