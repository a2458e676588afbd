#!/usr/bin/env python3
"""Builds a UKFS disk image from a folder (format: unikernel/libos/fs/include/fs.h).

Usage: mkukfs.py FOLDER IMAGE
Every regular file under FOLDER becomes an entry named by its '/'-separated relative path.
"""

import os
import struct
import sys

SECTOR = 512
ENTRY = struct.Struct("<QQ48s")
HEADER = struct.Struct("<4sIIIQ")
PATH_MAX = 47


def collect(folder: str) -> list[tuple[str, bytes]]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            full = os.path.join(root, name)
            if os.path.isfile(full):
                path = os.path.relpath(full, folder).replace(os.sep, "/")
                if len(path.encode()) > PATH_MAX:
                    raise SystemExit(f"mkukfs: path longer than {PATH_MAX} bytes: {path}")
                with open(full, "rb") as f:
                    files.append((path, f.read()))
    return sorted(files)


def build(files: list[tuple[str, bytes]]) -> bytes:
    def align(n: int) -> int:
        return (n + SECTOR - 1) // SECTOR * SECTOR

    dir_offset = SECTOR
    offset = align(dir_offset + ENTRY.size * len(files))
    entries, data = [], []
    for path, content in files:
        entries.append(ENTRY.pack(offset, len(content), path.encode()))
        data.append(content + bytes(align(len(content)) - len(content)))
        offset += align(len(content))
    size = max(offset, SECTOR)
    header = HEADER.pack(b"UKFS", 1, len(files), dir_offset, size)
    image = header.ljust(SECTOR, b"\0") + b"".join(entries)
    image = image.ljust(align(len(image)), b"\0") + b"".join(data)
    return image.ljust(size, b"\0")


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: mkukfs.py FOLDER IMAGE")
    image = build(collect(sys.argv[1]))
    with open(sys.argv[2], "wb") as f:
        f.write(image)


if __name__ == "__main__":
    main()
