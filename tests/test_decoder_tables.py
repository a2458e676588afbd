"""rvemu's decoder against the official riscv-opcodes tables (../shared/riscv-opcodes).

Every line of every extension rvemu implements is encoded with random operand fields and
must decode to that instruction (c.* lines to the op of their 32-bit expansion), with the
operand fields and immediate the table's field layout gives; encodings no table claims
must decode to ILLEGAL. The one intended exception: `slti x0, x0, 1` (0x00102013) is the
MARK_MAIN boot-latency HINT. Skips loudly when the tables are absent.
"""

from __future__ import annotations

import random

import pytest
from conftest import (
    IMPLEMENTED,
    OPCODES,
    RESERVED,
    OpcodeLine,
    arg_fields,
    classify,
    field_value,
    op_name,
    opcode_tables,
    parse_extension,
    sext,
)

from rvemu.cpu.decode import X_SCRATCH, decode
from rvemu.cpu.isa import Op

if not (OPCODES / "extensions").is_dir():
    pytest.skip(
        f"*** riscv-opcodes tables not found at {OPCODES} (../shared/riscv-opcodes from the "
        "repo root): the table-driven decoder checks did NOT run ***",
        allow_module_level=True,
    )

MARK_MAIN_WORD = 0x00102013
SAMPLES_PER_LINE = 40


@pytest.fixture(scope="module")
def tables() -> tuple[list[OpcodeLine], dict[str, tuple[int, int]]]:
    return opcode_tables(), arg_fields()


def expected_op(word: int, lines, fields) -> int:
    if word & 0xFFFFFFFF == MARK_MAIN_WORD:
        return Op.MARK_MAIN
    line = classify(word, lines, fields)
    if line is None or line == RESERVED:
        return Op.ILLEGAL
    return Op[op_name(line)]


def random_encoding(line: OpcodeLine, rng: random.Random, lines, fields) -> int:
    """A word with the line's fixed bits and random operand bits, redrawn until the
    operands keep it on this line (RVC: c.mv with rs2 = 0 is c.jr, c.lwsp with rd = 0 is
    reserved, ...)."""
    while True:
        word = (rng.getrandbits(8 * line.length) & ~line.mask) | line.match
        if line.length == 4 or classify(word, lines, fields) == line:
            return word


def reference_immediate(line: OpcodeLine, word: int) -> int | None:
    """The immediate a 32-bit instruction carries, from the table's operand fields."""
    args = set(line.args)
    f = lambda hi, lo: (word >> lo) & ((1 << (hi - lo + 1)) - 1)  # noqa: E731
    if "imm12" in args:
        return sext(f(31, 20), 12)
    if "imm12hi" in args:
        return sext((f(31, 25) << 5) | f(11, 7), 12)
    if "bimm12hi" in args:
        return sext((f(31, 31) << 12) | (f(7, 7) << 11) | (f(30, 25) << 5) | (f(11, 8) << 1), 13)
    if "imm20" in args:
        return sext(word & 0xFFFFF000, 32)
    if "jimm20" in args:
        return sext(
            (f(31, 31) << 20) | (f(19, 12) << 12) | (f(20, 20) << 11) | (f(30, 21) << 1), 21
        )
    if "shamtd" in args:
        return f(25, 20)
    if "shamtw" in args:
        return f(24, 20)
    if "csr" in args:
        return f(31, 20)
    return None


FP_RD = ("fcvt.w", "fcvt.l", "fmv.x", "fclass", "feq", "flt", "fle")


def test_tables_do_not_overlap(tables) -> None:
    """Sanity check of the oracle: no two implemented 32-bit lines claim one word."""
    lines, _ = tables
    full = [line for line in lines if line.length == 4]
    for i, a in enumerate(full):
        for b in full[i + 1 :]:
            common = a.mask & b.mask
            assert a.match & common != b.match & common, f"{a.name} overlaps {b.name}"


@pytest.mark.parametrize("ext", IMPLEMENTED)
def test_every_line_decodes_to_its_instruction(tables, ext: str) -> None:
    lines, fields = tables
    rng = random.Random(f"lines-{ext}")
    own = parse_extension(ext)
    assert own, f"no instructions read from {ext}"
    for line in own:
        for _ in range(SAMPLES_PER_LINE):
            word = random_encoding(line, rng, lines, fields)
            op, rd, rs1, rs2, rs3_rm, imm, length = decode(word)
            want = expected_op(word, lines, fields)
            if word != MARK_MAIN_WORD:
                assert classify(word, lines, fields) == line, f"{line.name} {word:#x}"
            assert op == want, f"{line.name} {word:#x}: decoded {Op(op).name}, want {Op(want).name}"
            assert length == line.length
            if line.length == 2 or op == Op.MARK_MAIN:
                continue
            # operand fields, where the table gives the instruction that operand
            args = set(line.args)
            rd_is_x = not line.name.startswith("f") or line.name.startswith(FP_RD)
            rd_is_x = rd_is_x or line.name.startswith(("fence",))
            if "rd" in args:
                want_rd = field_value(word, fields["rd"])
                if want_rd == 0 and rd_is_x:
                    want_rd = X_SCRATCH
                assert rd == want_rd, f"{line.name} {word:#x}: rd"
            if "rs1" in args:
                assert rs1 == field_value(word, fields["rs1"]), f"{line.name}: rs1"
            if "rs2" in args:
                assert rs2 == field_value(word, fields["rs2"]), f"{line.name}: rs2"
            if "rs3" in args:
                assert rs3_rm >> 3 == field_value(word, fields["rs3"]), f"{line.name}: rs3"
            if "rm" in args:
                assert rs3_rm & 7 == field_value(word, fields["rm"]), f"{line.name}: rm"
            want_imm = reference_immediate(line, word)
            if want_imm is not None and not line.name.startswith("fence"):
                assert imm == want_imm, f"{line.name} {word:#x}: imm {imm}, want {want_imm}"


def test_rvc_operands_match_the_expansion_fields(tables) -> None:
    """Spot-check RVC operand mapping: rd'/rs1'/rs2' are x8..x15, CR/CI use full fields."""
    cases = {
        0x4108: ("LW", 10, 10, None, 0),  # c.lw a0, 0(a0)
        0x852E: ("ADD", 10, 0, 11, 0),  # c.mv a0, a1
        0x952E: ("ADD", 10, 10, 11, 0),  # c.add a0, a1
        0x1579: ("ADDI", 10, 10, None, -2),  # c.addi a0, -2
        0x8082: ("JALR", X_SCRATCH, 1, None, 0),  # c.jr ra (ret)
        0x9082: ("JALR", 1, 1, None, 0),  # c.jalr ra
    }
    for word, (name, rd, rs1, rs2, imm) in cases.items():
        op, d_rd, d_rs1, d_rs2, _, d_imm, length = decode(word)
        assert Op(op).name == name and length == 2, f"{word:#06x}"
        assert (d_rd, d_rs1) == (rd, rs1), f"{word:#06x}: rd/rs1 {d_rd}, {d_rs1}"
        if rs2 is not None:
            assert d_rs2 == rs2, f"{word:#06x}: rs2"
        assert d_imm == imm, f"{word:#06x}: imm {d_imm}"


def unimplemented_extensions() -> list[str]:
    return sorted({p.name for p in (OPCODES / "extensions").iterdir()} - set(IMPLEMENTED))


@pytest.mark.parametrize("ext", unimplemented_extensions())
def test_unimplemented_extensions_are_illegal(tables, ext: str) -> None:
    """Lines of extensions rvemu does not implement (Zb*, Zfh, Zicbo, Zcb, ...) decode as
    ILLEGAL, except where they reuse an implemented encoding (e.g. prefetch.* are ORI
    HINTs, c.mop.* are reserved c.lui encodings)."""
    lines, fields = tables
    rng = random.Random(f"unimpl-{ext}")
    for line in parse_extension(ext):
        for _ in range(10):
            word = (rng.getrandbits(8 * line.length) & ~line.mask) | line.match
            op = decode(word)[0]
            want = expected_op(word, lines, fields)
            assert op == want, f"{ext} {line.name} {word:#x}: {Op(op).name}, want {Op(want).name}"


def test_random_words_decode_as_the_tables_say(tables) -> None:
    """Random 32-bit and 16-bit words: claimed ones decode to their line, the rest (and
    reserved RVC encodings) to ILLEGAL."""
    lines, fields = tables
    rng = random.Random("random-words")
    counts = {"legal": 0, "illegal": 0}
    for k in range(40_000):
        if k % 2:
            word = rng.getrandbits(32) | 3
        else:
            word = rng.getrandbits(16)
            if word & 3 == 3:
                continue
        op = decode(word)[0]
        want = expected_op(word, lines, fields)
        counts["legal" if want else "illegal"] += 1
        assert op == want, f"{word:#x}: decoded {Op(op).name}, want {Op(want).name}"
    assert counts["legal"] > 1000 and counts["illegal"] > 1000


def test_mark_main_is_the_only_exception(tables) -> None:
    lines, fields = tables
    line = classify(MARK_MAIN_WORD, lines, fields)
    assert line.name == "slti"
    assert decode(MARK_MAIN_WORD)[0] == Op.MARK_MAIN
    for other in (0x00202013, 0x00102093, 0x00112013):  # slti x0,x0,2 / x1,x0,1 / x0,x2,1
        assert decode(other)[0] == Op.SLTI


def test_own_lines_agree_with_the_tables(tables) -> None:
    """tests/instructions.py, which the random instruction tests (test_fuzz, test_isa) draw
    from so that they run without ../shared, names every 16-bit word and random 32-bit
    words as the official tables do."""
    import instructions

    lines, fields = tables
    rng = random.Random("own-lines")
    words = [h for h in range(1 << 16) if h & 3 != 3]
    words += [rng.getrandbits(32) | 3 for _ in range(20_000)]
    words += [
        instructions.random_word(line, rng) for line in instructions.own_lines() for _ in range(20)
    ]

    def name(line) -> str:  # noqa: ANN001 (unclaimed and reserved words are both illegal)
        return "illegal" if line in (None, RESERVED) else line.name

    for word in words:
        theirs = name(classify(word, lines, fields))
        ours = name(instructions.classify(word))
        assert ours == theirs, f"{word:#x}: tests/instructions.py says {ours}, the tables {theirs}"
