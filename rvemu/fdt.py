"""A small flattened-device-tree (DTB) writer (Devicetree Specification v0.4, chapter 5)."""

from __future__ import annotations

import struct

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_END = 1, 2, 3, 9
VERSION, LAST_COMP_VERSION = 17, 16
HEADER_SIZE = 40

PropValue = bytes | str | int | list[int] | list[str] | None


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.props: list[tuple[str, bytes]] = []
        self.children: list[Node] = []

    def child(self, name: str) -> Node:
        node = Node(name)
        self.children.append(node)
        return node

    def set(self, name: str, value: PropValue = None) -> Node:
        """Add a property: str -> string, list[str] -> string list, int -> one u32 cell,
        list[int] -> u32 cells, bytes as given, None -> empty (a flag)."""
        self.props.append((name, encode(value)))
        return self

    def set_u64(self, name: str, value: int) -> Node:
        self.props.append((name, struct.pack(">Q", value)))
        return self


def encode(value: PropValue) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode() + b"\0"
    if isinstance(value, int):
        return struct.pack(">I", value)
    if all(isinstance(v, str) for v in value):
        return b"".join(v.encode() + b"\0" for v in value)
    return b"".join(struct.pack(">I", v) for v in value)


def cells64(*values: int) -> list[int]:
    """64-bit numbers as pairs of u32 cells (#address-cells = #size-cells = 2)."""
    out = []
    for v in values:
        out += [v >> 32, v & 0xFFFF_FFFF]
    return out


def dtb(root: Node, boot_cpuid: int = 0) -> bytes:
    """The blob for a tree whose root is `root`."""
    strings = bytearray()
    offsets: dict[str, int] = {}
    struct_block = bytearray()

    def name_offset(name: str) -> int:
        if name not in offsets:
            offsets[name] = len(strings)
            strings.extend(name.encode() + b"\0")
        return offsets[name]

    def pad() -> None:
        struct_block.extend(b"\0" * (-len(struct_block) % 4))

    def emit(node: Node) -> None:
        struct_block.extend(struct.pack(">I", FDT_BEGIN_NODE) + node.name.encode() + b"\0")
        pad()
        for name, value in node.props:
            struct_block.extend(struct.pack(">III", FDT_PROP, len(value), name_offset(name)))
            struct_block.extend(value)
            pad()
        for child in node.children:
            emit(child)
        struct_block.extend(struct.pack(">I", FDT_END_NODE))

    emit(root)
    struct_block.extend(struct.pack(">I", FDT_END))
    rsvmap = b"\0" * 16  # no reserved regions: just the terminating entry
    off_rsvmap = HEADER_SIZE
    off_struct = off_rsvmap + len(rsvmap)
    off_strings = off_struct + len(struct_block)
    total = off_strings + len(strings)
    total += -total % 8
    header = struct.pack(
        ">10I",
        FDT_MAGIC,
        total,
        off_struct,
        off_strings,
        off_rsvmap,
        VERSION,
        LAST_COMP_VERSION,
        boot_cpuid,
        len(strings),
        len(struct_block),
    )
    blob = header + rsvmap + bytes(struct_block) + bytes(strings)
    return blob + b"\0" * (total - len(blob))
