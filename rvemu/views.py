"""Registers and memory by name and address, for scripts and the GDB stub (Machine.regs,
Machine.phys, Machine.virt)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cpu import state as S
from .cpu.hart import int64
from .cpu.names import CSR_NAMES, CSR_NUMBERS, F_NAMES, X_NAMES
from .cpu.native import core

if TYPE_CHECKING:
    from .machine import Machine

MASK64 = (1 << 64) - 1


def implemented_csrs() -> list[int]:
    """The CSR numbers the hart has, in order."""
    return [num for num in range(4096) if core.is_implemented(num)]


class Registers:
    """The hart's registers by name, as unsigned 64-bit values: "a0" or "x10", "pc",
    "fa0" or "f10" (the raw bits), "priv" (0 U, 1 S, 3 M) and CSRs ("mstatus"), read and
    written as an M-mode csrrw would (WARL fields legalised)."""

    def __init__(self, machine: Machine) -> None:
        self.hart = machine.hart

    def __getitem__(self, name: str) -> int:
        hart = self.hart
        kind, index = self._find(name)
        if kind == "x":
            return int(hart.x[index]) & MASK64
        if kind == "f":
            return int(hart.f[index]) & MASK64
        if kind == "pc":
            return hart.pc & MASK64
        if kind == "priv":
            return hart.priv
        return int(core.csr_read(index, hart.csr, hart.st, hart.instret)) & MASK64

    def __setitem__(self, name: str, value: int) -> None:
        hart = self.hart
        kind, index = self._find(name)
        value = int64(value & MASK64)
        if kind == "x":
            if index:
                hart.x[index] = value
        elif kind == "f":
            hart.f[index] = value
        elif kind == "pc":
            hart.pc = value
        elif kind == "priv":
            if value not in (S.PRIV_U, S.PRIV_S, S.PRIV_M):
                raise ValueError(f"no privilege level {value}")
            hart.st[S.PRIV] = value
            hart.flush_decoded()  # translation and PMP depend on the privilege
        else:
            priv = int(hart.st[S.PRIV])
            hart.st[S.PRIV] = S.PRIV_M  # as M-mode writes it (read-only ones stay so)
            try:
                if not core.accessible(index, hart.csr, hart.st, True):
                    raise ValueError(f"{name} is read-only")
                core.csr_write(index, value, hart.csr, hart.st, hart.tlb, hart.instret)
            finally:
                hart.st[S.PRIV] = priv
            hart.flush_decoded()

    def _find(self, name: str) -> tuple[str, int]:
        if name in X_NAMES:
            return "x", X_NAMES.index(name)
        if name == "fp":
            return "x", 8
        if name in F_NAMES:
            return "f", F_NAMES.index(name)
        if name[:1] in "xf" and name[1:].isdigit() and int(name[1:]) < 32:
            return name[0], int(name[1:])
        if name in ("pc", "priv"):
            return name, 0
        num = CSR_NUMBERS.get(name)
        if num is not None and core.is_implemented(num):
            return "csr", num
        raise KeyError(f"no register {name!r}")

    def names(self) -> list[str]:
        """Every name this view answers to (ABI names for x and f)."""
        csrs = [CSR_NAMES[n] for n in implemented_csrs() if n in CSR_NAMES]
        return [*X_NAMES, "pc", *F_NAMES, "priv", *csrs]


class Memory:
    """Guest memory as bytes: `view[addr:addr + n]` reads, `view[addr] = data` writes.
    Physical views reach RAM; virtual views go through the hart's translation now
    (an address that would fault raises IndexError)."""

    def __init__(self, machine: Machine, virtual: bool) -> None:
        self.machine = machine
        self.virtual = virtual

    def read(self, address: int, size: int) -> bytes:
        return b"".join(self.machine.read_phys(p, n) for p, n in self._pieces(address, size))

    def write(self, address: int, data: bytes) -> None:
        done = 0
        for paddr, n in self._pieces(address, len(data)):
            self.machine.write_phys(paddr, data[done : done + n])
            done += n

    def u64(self, address: int) -> int:
        return int.from_bytes(self.read(address, 8), "little")

    def __getitem__(self, key: slice) -> bytes:
        if not isinstance(key, slice) or key.step is not None or key.stop is None:
            raise TypeError("read memory with view[start:stop]")
        return self.read(key.start, key.stop - key.start)

    def __setitem__(self, address: int, data: bytes) -> None:
        self.write(address, bytes(data))

    def _pieces(self, address: int, size: int) -> list[tuple[int, int]]:
        """(physical address, length) pieces of [address, address + size), page by page."""
        if not self.virtual:
            return [(address, size)]
        pieces = []
        while size > 0:
            n = min(size, 4096 - (address & 0xFFF))
            paddr = self.machine.translate(address)
            if paddr is None:
                raise IndexError(f"{address:#x} is not mapped")
            pieces.append((paddr, n))
            address, size = address + n, size - n
        return pieces


def symbol_at(symbols: dict[str, int], address: int) -> str | None:
    """ "name" or "name+0x10" for the symbol at or below address (its nearest), or None."""
    best = None
    for name, value in symbols.items():
        if value <= address and (best is None or value > best[1]):
            best = (name, value)
    if best is None:
        return None
    name, value = best
    return name if value == address else f"{name}+{address - value:#x}"
