#!/usr/bin/env python3
"""Prints an image's size table: file size, text/data/bss, and bytes per library.

Usage: sizes.py IMAGE.elf IMAGE.map
Standard library only, so the build needs nothing beyond python3.
"""

import os
import re
import struct
import sys
from collections import defaultdict

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_NOBITS = 8
PT_LOAD = 1
LOADED_SECTIONS = {".text", ".rodata", ".data", ".tdata"}  # bytes in the image, not bss


def elf_sizes(path: str) -> dict[str, int]:
    """text (code + read-only data), data, bss and loadable bytes, like `size` but by hand."""
    raw = open(path, "rb").read()
    phoff, shoff = struct.unpack_from("<QQ", raw, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", raw, 0x36)
    sizes = {"text": 0, "data": 0, "bss": 0, "loadable": 0, "file": len(raw)}
    for i in range(phnum):
        p_type, _, _, _, _, filesz = struct.unpack_from("<IIQQQQ", raw, phoff + i * phentsize)
        if p_type == PT_LOAD:
            sizes["loadable"] += filesz
    for i in range(shnum):
        _, sh_type, flags, _, _, size = struct.unpack_from("<IIQQQQ", raw, shoff + i * shentsize)
        if not flags & SHF_ALLOC:
            continue
        if sh_type == SHT_NOBITS:
            sizes["bss"] += size
        elif flags & SHF_WRITE:
            sizes["data"] += size
        else:
            sizes["text"] += size
    return sizes


def owner(path: str) -> str:
    """The library an input file came from: app, libos library name, picolibc, libgcc."""
    m = re.match(r"(.*?)\((.*)\)$", path)
    if not m:
        return "app"
    archive = os.path.basename(m.group(1))
    if archive == "libc.a":
        return "picolibc"
    if archive == "libgcc.a":
        return "libgcc"
    return re.sub(r"^lib(.*)\.a$", r"\1", archive)


def bytes_per_library(map_path: str) -> dict[str, int]:
    per_lib: dict[str, int] = defaultdict(int)
    in_map = False
    current = None
    pending = None  # an input section whose name was too long to share its line
    for line in open(map_path):
        if line.startswith("Linker script and memory map"):
            in_map = True
            continue
        if not in_map:
            continue
        if line[:1] not in (" ", ""):
            current = line.split()[0] if line.strip() else None
            continue
        fields = line.split()
        if len(fields) == 1 and fields[0].startswith("."):
            pending = fields[0]
            continue
        if pending is not None:
            fields = [pending] + fields
            pending = None
        if current not in LOADED_SECTIONS or len(fields) != 4 or not fields[0].startswith("."):
            continue
        if not fields[1].startswith("0x") or not fields[2].startswith("0x"):
            continue
        per_lib[owner(fields[3])] += int(fields[2], 16)
    return dict(per_lib)


def main() -> None:
    image, map_path = sys.argv[1], sys.argv[2]
    s = elf_sizes(image)
    name = os.path.basename(image)
    print(
        f"{name}: file {s['file']} B, loadable {s['loadable']} B, "
        f"text {s['text']}  data {s['data']}  bss {s['bss']}"
    )
    print("    bytes loaded per library (code, read-only and initialised data):")
    for lib, n in sorted(bytes_per_library(map_path).items(), key=lambda kv: -kv[1]):
        print(f"      {lib:<12} {n:>7} B")


if __name__ == "__main__":
    main()
