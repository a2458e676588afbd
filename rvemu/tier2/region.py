"""Which guest code a region holds: the blocks reachable from its entry inside one page.

Keeping a region inside its entry's 4 KiB page makes invalidation simple: a store to the
page forgets every region there (see memory.note_store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import CodeType

from ..cpu.isa import BRANCH, BY_OP, JUMP, LOAD, STORE, Record

PAGE = 4096


@dataclass(frozen=True)
class Insn:
    off: int  # RAM offset
    op: int
    rd: int
    rs1: int
    rs2: int
    imm: int
    length: int
    rm: int = 0  # rounding mode field (FP arithmetic)
    rs3: int = 0

    def fp_regs(self) -> set[int]:
        """The f registers the instruction names, as its record says."""
        record = BY_OP[self.op]
        regs = {self.rd} if record.fp_rd else set()
        fields = {"FS1": self.rs1, "FS2": self.rs2, "FS3": self.rs3}
        regs |= {r for name, r in fields.items() if name in record.names}
        if record.kind in (LOAD, STORE) and record.fp_data:
            regs.add(self.rd if record.kind == LOAD else self.rs2)
        return regs


def static_target(record: Record, ins: Insn) -> int | None:
    """The RAM offset a jump goes to, if its target does not depend on a register: its
    semantics evaluated with PC at the jump's offset (targets are PC plus a constant)."""
    if "RS1" in record.names:
        return None
    return eval(_compiled(record.semantics), {"PC": ins.off, "IMM": ins.imm})  # noqa: S307


@cache  # (compiled once: the hart finds regions too, see compiler.Tier2._covering)
def _compiled(semantics: str) -> CodeType:
    return compile(semantics, "<semantics>", "eval")


@dataclass
class Block:
    start: int
    insns: list[Insn]
    # Where control goes when the last instruction is not a jump or branch: the next
    # offset (another block's start, or where the region hands back to the interpreter).
    fall_through: int


@dataclass
class Region:
    entry: int
    blocks: dict[int, Block] = field(default_factory=dict)
    # Entries of other regions on the page, where this one ends and continues in theirs
    # (emit.py chains there) rather than compiling their code again.
    stops: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return sum(len(b.insns) for b in self.blocks.values())


def find_region(
    entry: int,
    insn_at: Callable[[int], Insn | None],
    max_insns: int = 1024,
    stops: frozenset[int] = frozenset(),
) -> Region:
    """The blocks reachable from `entry` by direct jumps and branches inside its page,
    up to the entries of other regions (`stops`). `insn_at(off)` is the decoded
    instruction at `off`, or None where the region must stop (an instruction the emitter
    does not translate, or one that leaves the page)."""
    first, end = entry & ~(PAGE - 1), (entry & ~(PAGE - 1)) + PAGE
    decoded: dict[int, Insn | None] = {}
    stops = frozenset(s for s in stops if s != entry)

    def at(off: int) -> Insn | None:
        if off not in decoded:
            ins = insn_at(off) if first <= off < end and off not in stops else None
            decoded[off] = ins if ins is None or off + ins.length <= end else None
        return decoded[off]

    starts, work = {entry}, [entry]
    while work:
        off = work.pop()
        while (ins := at(off)) is not None:
            kind = BY_OP[ins.op].kind
            if kind == BRANCH:
                targets = (off + ins.imm, off + ins.length)
            elif kind == JUMP:
                target = static_target(BY_OP[ins.op], ins)
                targets = () if target is None else (target,)
            else:
                off += ins.length
                if off in starts:
                    break
                continue
            for t in targets:
                if first <= t < end and t not in starts and len(decoded) < max_insns:
                    starts.add(t)
                    work.append(t)
            break

    region = Region(entry, stops=stops)
    for start in sorted(starts):
        insns, off = [], start
        while (ins := at(off)) is not None:
            insns.append(ins)
            off += ins.length
            if BY_OP[ins.op].kind in (BRANCH, JUMP) or off in starts:
                break
        if insns:  # (a jump to where the region cannot go leaves the region instead)
            region.blocks[start] = Block(start, insns, off)
    return region
