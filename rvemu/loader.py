"""Reading kernels for guest RAM: RISC-V ELF images (pyelftools) and Linux Images, flat or
gzipped.

The file is checked before anything is read from it: every table and segment must lie
inside the file, so a corrupt header is a one-line error, never a huge read.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

EM_RISCV = 243
EHDR_SIZE, PHDR_SIZE, SHDR_SIZE = 64, 56, 64  # ELF64's header and table entry sizes
SHT_NOBITS = 8
MAX_IMAGE = 1 << 32  # bytes: larger files are not images rvemu could place in RAM


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
    with reading(path):
        size = os.path.getsize(path)
        if size > MAX_IMAGE:
            raise LoadError(f"{path}: {size} bytes is too large for an image")
        with open(path, "rb") as f:
            data = f.read(4)  # a device or FIFO has no size: read no more than an image
            if data == b"\x7fELF":
                data += f.read(MAX_IMAGE)
        if len(data) > MAX_IMAGE:
            raise LoadError(f"{path}: too large for an image")
    if data[:4] != b"\x7fELF":
        raise LoadError(f"{path}: not an ELF file")
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64:
            raise LoadError(f"{path}: a {elf.elfclass}-bit ELF; rvemu runs RV64 images")
        if elf["e_machine"] not in ("EM_RISCV", EM_RISCV):
            raise LoadError(f"{path}: not a RISC-V ELF (machine {elf['e_machine']})")
        check_tables(elf, len(data))
        segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] > 0:
                check_range("segment", seg["p_offset"], seg["p_filesz"], len(data))
                if seg["p_filesz"] > seg["p_memsz"]:
                    raise LoadError("a segment has more file bytes than memory bytes")
                segments.append((seg["p_paddr"], seg.data(), seg["p_memsz"]))
        return Image(path, elf["e_entry"], segments, symbols_of(elf, len(data)))
    except LoadError as e:
        if str(e).startswith(path):
            raise
        raise LoadError(f"{path}: malformed ELF: {e}") from None
    # pyelftools' own complaints, and what its parsing raises on values no check above
    # foresaw (a string table entry that is not UTF-8, a struct past the end)
    except (ELFError, struct.error, ValueError, OverflowError, UnicodeDecodeError) as e:
        raise LoadError(f"{path}: malformed ELF: {e}") from None


def check_range(what: str, offset: int, length: int, file_size: int) -> None:
    if offset > file_size or length > file_size - offset:
        raise LoadError(f"a {what} reaches past the end of the file")


def check_tables(elf: ELFFile, file_size: int) -> None:
    """The program and section header tables, and every section's bytes, in the file."""
    if elf["e_ehsize"] < EHDR_SIZE or file_size < EHDR_SIZE:
        raise LoadError("truncated ELF header")
    if elf["e_phnum"]:
        if elf["e_phentsize"] != PHDR_SIZE:
            raise LoadError(f"program header size {elf['e_phentsize']}, not {PHDR_SIZE}")
        check_range("program header table", elf["e_phoff"], elf["e_phnum"] * PHDR_SIZE, file_size)
    if elf["e_shnum"]:
        if elf["e_shentsize"] != SHDR_SIZE:
            raise LoadError(f"section header size {elf['e_shentsize']}, not {SHDR_SIZE}")
        check_range("section header table", elf["e_shoff"], elf["e_shnum"] * SHDR_SIZE, file_size)
        if elf["e_shstrndx"] >= elf["e_shnum"]:
            raise LoadError("the section name table is not a section")
        for k in range(elf["e_shnum"]):
            header = elf._get_section_header(k)
            if header["sh_type"] != "SHT_NOBITS" and header["sh_type"] != SHT_NOBITS:
                check_range("section", header["sh_offset"], header["sh_size"], file_size)


KINDS = ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC")  # symbols that name code or data


def symbols_of(elf: ELFFile, file_size: int) -> dict[str, int]:
    symbols: dict[str, int] = {}
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None or not hasattr(symtab, "iter_symbols"):
        return symbols
    if symtab["sh_entsize"] and symtab["sh_entsize"] != 24:
        raise LoadError(f"symbol size {symtab['sh_entsize']}, not 24")
    if symtab["sh_link"] >= elf["e_shnum"]:
        raise LoadError("the symbol table's string table is not a section")
    for sym in symtab.iter_symbols():
        # ($x and $d... are the assembler's mapping symbols; absolute ones are constants)
        if not sym.name or sym.name.startswith("$") or sym["st_shndx"] == "SHN_ABS":
            continue
        if sym["st_info"]["type"] in KINDS:
            symbols.setdefault(sym.name, sym["st_value"])
    return symbols


# --- Linux kernel Images (Documentation/arch/riscv/boot-image-header.rst)

IMAGE_HEADER_SIZE = 64
IMAGE_MAGIC2 = b"RSC\x05"  # at 0x38, headers of version 0.2 and later
IMAGE_MAGIC = b"RISCV\0\0\0"  # at 0x30, deprecated since 0.2 but still written
GZIP_MAGIC = b"\x1f\x8b"


def kernel_format(path: str) -> str:
    """'elf', 'image' (a flat RISC-V Linux Image) or 'gzip' (a gzipped Image), from the
    first bytes of the file; anything else is refused in one line. Only a gzip file's
    first 64 bytes are inflated here."""
    head = read_head(path, 1 << 16)  # enough for a gzip header with a long file name
    if head[:4] == b"\x7fELF":
        return "elf"
    if head[:2] == GZIP_MAGIC:
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            head = d.decompress(head, IMAGE_HEADER_SIZE)
        except zlib.error as e:
            raise LoadError(f"{path}: corrupt gzip data: {e}") from None
        if not is_linux_image(head):
            raise LoadError(f"{path}: gzip data that is not a RISC-V Linux Image")
        return "gzip"
    if is_linux_image(head):
        return "image"
    raise LoadError(f"{path}: not an ELF file or a RISC-V Linux Image")


def is_linux_image(head: bytes) -> bool:
    return len(head) >= IMAGE_HEADER_SIZE and (
        head[0x38:0x3C] == IMAGE_MAGIC2 or head[0x30:0x38] == IMAGE_MAGIC
    )


def read_linux_image(path: str, limit: int) -> tuple[bytes, int]:
    """A Linux Image's bytes (inflated if gzipped) if they fit in `limit` bytes, and the
    memory it occupies from its load address: the header's image_size, bss included."""
    kind = kernel_format(path)
    if kind == "gzip":
        data = gunzip(path, limit)
    elif os.path.getsize(path) > limit:
        raise LoadError(f"{path}: the Image does not fit in RAM (give the machine more memory)")
    else:
        data = read_head(path, limit)
    image_size = int.from_bytes(data[16:24], "little")
    return data, max(len(data), image_size)


def gunzip(path: str, limit: int) -> bytes:
    """The inflated contents of a gzip file, read and inflated a piece at a time so that
    no more than `limit` bytes are ever produced."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    with open(path, "rb") as f:
        try:
            while not d.eof:
                piece = d.unconsumed_tail or f.read(1 << 20)
                if not piece:
                    raise LoadError(f"{path}: truncated gzip data")
                out += d.decompress(piece, limit + 1 - len(out))
                if len(out) > limit:
                    raise LoadError(
                        f"{path}: the Image inflates to more than fits in RAM "
                        "(give the machine more memory)"
                    )
        except zlib.error as e:
            raise LoadError(f"{path}: corrupt gzip data: {e}") from None
    return bytes(out)


def read_head(path: str, size: int) -> bytes:
    """Up to `size` bytes from the start of the file, or a one-line error."""
    with reading(path), open(path, "rb") as f:
        return f.read(size)


@contextmanager
def reading(path: str) -> Iterator[None]:
    """Turn a failure to read `path` into a one-line LoadError."""
    try:
        yield
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LoadError(f"{path}: is a directory") from None
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror}") from None
