"""Instruction traces (`rvemu boot --trace FILE`): every executed instruction with its
privilege, pc, bits, disassembly (as objdump reads it) and the registers and memory it
wrote; every trap and interrupt with its cause and tval.

The default format, one line per instruction:

    M 0000000080000000: 00000297  auipc	t0,0x0  ; t0=0x0000000080000000
    M exception 2 (illegal instruction) tval=0x0000000000000000 epc=0x... -> M 0x...

`spike` writes Spike's commit log (`spike -l --log-commits`) instead, so a trace can be
diffed against Spike's: `core   0: 3 0x0000000080000000 (0x00000297) x5  0x...`.
"""

from __future__ import annotations

from typing import TextIO

from .cpu import state as S
from .cpu.decode import decode
from .cpu.isa import BY_OP, LOAD, STORE
from .cpu.names import F_NAMES, X_NAMES
from .disasm import Disassembler, csr_name, elf_symbols, global_pointer
from .machine import Machine, RunResult

FORMATS = ("rvemu", "spike")
PRIV_LETTER = {S.PRIV_U: "U", S.PRIV_S: "S", S.PRIV_M: "M"}

EXCEPTIONS = {
    0: "instruction address misaligned",
    1: "instruction access fault",
    2: "illegal instruction",
    3: "breakpoint",
    4: "load address misaligned",
    5: "load access fault",
    6: "store/AMO address misaligned",
    7: "store/AMO access fault",
    8: "environment call from U-mode",
    9: "environment call from S-mode",
    11: "environment call from M-mode",
    12: "instruction page fault",
    13: "load page fault",
    15: "store/AMO page fault",
}
INTERRUPTS = {
    1: "supervisor software",
    3: "machine software",
    5: "supervisor timer",
    7: "machine timer",
    9: "supervisor external",
    11: "machine external",
}
CSR_OPS = {"csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci"}


class Tracer:
    """Runs `machine` one step at a time, writing each step to `out`. `count` stops
    tracing (not the guest) after that many instructions are written; `start`/`end`
    write only instructions with start <= pc < end."""

    def __init__(
        self,
        machine: Machine,
        out: TextIO,
        fmt: str = "rvemu",
        count: int | None = None,
        start: int = 0,
        end: int = 1 << 64,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"trace format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.machine = machine
        self.out = out
        self.fmt = fmt
        self.left = count
        self.start, self.end = start, end
        image = machine.image.path if machine.image else None
        self.disassembler = (
            Disassembler(elf_symbols(image), global_pointer(image)) if image else Disassembler()
        )
        self.written = 0

    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run as Machine.run does, tracing until `count` lines are written."""
        m, hart = self.machine, self.machine.hart
        first = hart.instret
        hart.stepping = True
        try:
            while self.left is None or self.left > 0:
                if max_instructions is not None and hart.instret - first >= max_instructions:
                    return RunResult("limit", None, hart.instret - first, 0.0)
                result = self._step()
                if result.reason != "step":
                    result.instructions = hart.instret - first
                    return result
        finally:
            hart.stepping = False
        left = None if max_instructions is None else max_instructions - (hart.instret - first)
        result = m.run(left)
        result.instructions = hart.instret - first
        return result

    def _step(self) -> RunResult:
        m, hart = self.machine, self.machine.hart
        pc, priv, instret, traps = hart.pc & ((1 << 64) - 1), hart.priv, hart.instret, hart.traps
        insn = self._fetch(pc)
        x_before, f_before = hart.x.copy(), hart.f.copy()
        fields = decode(insn[0]) if insn else None  # (op, rd, rs1, rs2, rs3_rm, imm, length)
        memory = self._memory_access(fields) if insn else None
        result = m.step(1)
        retired = hart.instret > instret
        trap = self._trap() if hart.traps > traps else None
        interrupted = trap is not None and trap[0] < 0
        if insn and not interrupted and (retired or trap or result.reason != "step"):
            if self.start <= pc < self.end:
                writes = self._writes(fields, x_before, f_before) if retired else []
                self._write_insn(priv, pc, insn, writes, memory if retired else None)
        if trap is not None:
            self._write_trap(*trap)
        return result

    # --- what the step did
    def _fetch(self, pc: int) -> tuple[int, int] | None:
        """(raw bits, length) of the instruction at pc, or None if fetching it faults."""
        m = self.machine
        paddr = m.translate(pc, access=S.ACCESS_FETCH)
        if paddr is None:
            return None
        try:
            low = int.from_bytes(m.phys.read(paddr, 2), "little")
            if low & 3 != 3:
                return low, 2
            high_paddr = paddr + 2 if (pc + 2) & 0xFFF else m.translate(pc + 2, S.ACCESS_FETCH)
            if high_paddr is None:
                return None
            return low | int.from_bytes(m.phys.read(high_paddr, 2), "little") << 16, 4
        except IndexError:
            return None

    def _memory_access(self, fields: tuple) -> tuple[int, int, int | None] | None:
        """(address, size, value stored or None for a load) the instruction will make."""
        hart = self.machine.hart
        op, _, rs1, rs2, _, imm, _ = fields
        record = BY_OP.get(int(op))
        if record is None or record.kind not in (LOAD, STORE):
            return None
        address = (int(hart.x[rs1]) + int(imm)) & ((1 << 64) - 1)
        if record.kind == LOAD:
            return address, record.size, None
        data = hart.f[rs2] if record.fp_data else hart.x[rs2]
        return address, record.size, int(data) & ((1 << (8 * record.size)) - 1)

    def _writes(self, fields: tuple, x_before, f_before) -> list[tuple[str, int, int]]:
        """(kind, number, value) for each register the instruction changed: kind "x",
        "f" or "c" (a CSR a CSR instruction wrote)."""
        hart = self.machine.hart
        writes = [("x", n, int(hart.x[n])) for n in range(1, 32) if hart.x[n] != x_before[n]]
        writes += [("f", n, int(hart.f[n])) for n in range(32) if hart.f[n] != f_before[n]]
        op, _, rs1, _, _, imm, _ = fields
        record = BY_OP.get(int(op))
        if record is not None and record.name.replace("_", "") in CSR_OPS:
            if record.name in ("csrrw", "csrrwi") or rs1 != 0:
                num = int(imm) & 0xFFF
                try:
                    writes.append(("c", num, self.machine.regs[csr_name(num)]))
                except KeyError:
                    pass
        return writes

    def _trap(self) -> tuple[int, int, int, int, int]:
        """(cause as mcause reads, tval, epc, new privilege, handler pc) of the last trap."""
        hart = self.machine.hart
        to_s = hart.priv == S.PRIV_S
        cause, tval, epc = (S.SCAUSE, S.STVAL, S.SEPC) if to_s else (S.MCAUSE, S.MTVAL, S.MEPC)
        return (
            int(hart.csr[cause]),
            int(hart.csr[tval]),
            int(hart.csr[epc]),
            hart.priv,
            hart.pc,
        )

    # --- writing it
    def _write_insn(self, priv, pc, insn, writes, memory) -> None:
        raw, length = insn
        if self.fmt == "spike":
            bits = f"0x{raw:08x}" if length == 4 else f"0x{raw & 0xFFFF:04x}"
            line = f"core   0: {priv} 0x{pc:016x} ({bits})"
            for kind, n, value in writes:
                name = f"c{n}_{csr_name(n)}" if kind == "c" else f"{kind}{n:<2}"
                line += f" {name} 0x{value & ((1 << 64) - 1):016x}"
            if memory is not None:
                address, size, value = memory
                line += f" mem 0x{address:016x}"
                if value is not None:
                    line += f" 0x{value:0{2 * size}x}"
        else:
            bits = f"{raw:08x}" if length == 4 else f"{raw & 0xFFFF:04x}    "
            text = self.disassembler(raw, pc)
            line = f"{PRIV_LETTER[priv]} {pc:016x}: {bits}  {text}"
            notes = [
                f"{(X_NAMES if kind == 'x' else F_NAMES)[n] if kind != 'c' else csr_name(n)}"
                f"=0x{value & ((1 << 64) - 1):016x}"
                for kind, n, value in writes
            ]
            if memory is not None:
                address, size, value = memory
                where = f"mem[0x{address:x}]"
                notes.append(where if value is None else f"{where}=0x{value:0{2 * size}x}")
            if notes:
                line += "  ; " + " ".join(notes)
        self.out.write(line + "\n")
        self.written += 1
        if self.left is not None:
            self.left -= 1

    def _write_trap(self, cause: int, tval: int, epc: int, priv: int, handler: int) -> None:
        interrupt = cause < 0
        code = cause & ((1 << 63) - 1)
        name = (INTERRUPTS if interrupt else EXCEPTIONS).get(code, "reserved")
        mask = (1 << 64) - 1
        if self.fmt == "spike":
            kind = "interrupt" if interrupt else "exception"
            self.out.write(f"core   0: {kind} {code} ({name}), epc 0x{epc & mask:016x}\n")
            self.out.write(f"core   0:           tval 0x{tval & mask:016x}\n")
            return
        kind = "interrupt" if interrupt else "exception"
        self.out.write(
            f"{PRIV_LETTER[priv]} {kind} {code} ({name}) tval=0x{tval & mask:016x} "
            f"epc=0x{epc & mask:016x} -> 0x{handler & mask:016x}\n"
        )
