"""Loading RISC-V ELF images into guest RAM (pyelftools)."""

from __future__ import annotations

from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

EM_RISCV = 243


class LoadError(Exception):
    """The image cannot be loaded; the message is one line for the user."""


@dataclass
class Image:
    path: str
    entry: int
    segments: list[tuple[int, bytes, int]]  # (physical address, file bytes, memory size)
    symbols: dict[str, int] = field(default_factory=dict)


def read_elf(path: str) -> Image:
    """Parse a 64-bit RISC-V ELF executable: its PT_LOAD segments, entry and symbols."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror}") from None
    with f:
        if f.read(4) != b"\x7fELF":
            raise LoadError(f"{path}: not an ELF file")
        f.seek(0)
        try:
            elf = ELFFile(f)
            if elf.elfclass != 64:
                raise LoadError(f"{path}: a {elf.elfclass}-bit ELF; rvemu runs RV64 images")
            if elf["e_machine"] not in ("EM_RISCV", EM_RISCV):
                raise LoadError(f"{path}: not a RISC-V ELF (machine {elf['e_machine']})")
            segments = []
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] > 0:
                    segments.append((seg["p_paddr"], seg.data(), seg["p_memsz"]))
            symbols = {}
            symtab = elf.get_section_by_name(".symtab")
            if symtab is not None:
                for sym in symtab.iter_symbols():
                    if sym.name and sym["st_info"]["type"] in (
                        "STT_NOTYPE",
                        "STT_OBJECT",
                        "STT_FUNC",
                    ):
                        symbols.setdefault(sym.name, sym["st_value"])
            return Image(path, elf["e_entry"], segments, symbols)
        except ELFError as e:
            raise LoadError(f"{path}: malformed ELF: {e}") from None
