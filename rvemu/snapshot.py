"""Snapshots: a machine's whole state as data, to go on later exactly where it was
(Machine.snapshot / restore, Machine.save / from_snapshot, `rvemu boot --save-at`,
`rvemu resume`).

Saved: RAM (the pages that are not all zero), the hart's registers and state, every
device's state, and the options the machine was made with. Not saved: the decoded
instructions, the TLB and compiled regions (rebuilt as the guest runs), and host-side
back ends (disk files, network sockets, the console), which a restored machine opens again
from its options, as Firecracker re-attaches them.

Device state is found, not listed: `capture` takes every attribute of a device object
that holds plain data (numbers, strings, bytes, containers of them, numpy arrays) and
recurses into the rvemu objects it holds; the machine's wiring (the hart, RAM, the bus,
the console, callbacks, files) is left alone, and so are the attributes a class names in
`HOST_SIDE` (a disk's file descriptor, a network back end). A snapshot file holds only that data, as
JSON beside the compressed RAM: loading one runs no code.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .cpu import state as S

if TYPE_CHECKING:
    from .machine import Machine

MAGIC = b"RVEMU-SNAPSHOT\n"
VERSION = 1
PAGE = 4096


class SnapshotError(ValueError):
    """A snapshot that cannot be restored (malformed, truncated, another version)."""


# --- device state as data
def capture(obj: object, wiring: set[int]) -> dict:
    """The state of an rvemu object: its attributes that hold plain data, and the state
    of the rvemu objects it holds, skipping anything in `wiring` (ids). Values are kept
    as copies; `save` encodes them for a file."""
    state = {}
    host_side = getattr(type(obj), "HOST_SIDE", ())  # (a device's back end: its fd...)
    for name, value in vars(obj).items():
        if id(value) in wiring or callable(value) or name in host_side:
            continue
        try:
            state[name] = _copy(value, wiring)
        except TypeError:
            continue  # a file, a socket, a thread: host-side, not the machine's state
    return {"$object": type(obj).__qualname__, "state": state}


def _copy(value: object, wiring: set[int]) -> object:
    """A copy of plain data (TypeError for anything else), rvemu objects as their state."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if id(value) in wiring:
        raise TypeError("wiring")
    if isinstance(value, (bytearray, np.ndarray)):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [_copy(v, wiring) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy(v, wiring) for v in value)
    if isinstance(value, deque):
        return deque((_copy(v, wiring) for v in value), value.maxlen)
    if isinstance(value, (set, frozenset)):
        return {_copy(v, wiring) for v in value}
    if isinstance(value, dict):
        return {_copy(k, wiring): _copy(v, wiring) for k, v in value.items()}
    if _is_rvemu_object(value):
        return capture(value, wiring)
    raise TypeError(f"not machine state: {type(value).__name__}")


def _is_rvemu_object(value: object) -> bool:
    return type(value).__module__.startswith("rvemu.") and hasattr(value, "__dict__")


def _encode(value: object) -> object:
    """Copied state as JSON data (bytes and arrays in base64, containers tagged)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and "$object" in value:
        return {"$object": value["$object"], "state": _encode_dict(value["state"])}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, bytearray):
        return {"$bytearray": base64.b64encode(value).decode()}
    if isinstance(value, np.ndarray):
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return {"$array": data, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, deque):
        return {"$deque": [_encode(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, (set, frozenset)):
        return {"$set": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise TypeError(f"not machine state: {type(value).__name__}")


def _encode_dict(state: dict) -> dict:
    return {name: _encode(v) for name, v in state.items()}


def _decode(tree: object) -> object:
    if not isinstance(tree, (dict, list)):
        return tree
    if isinstance(tree, list):
        return [_decode(v) for v in tree]
    if "$bytes" in tree:
        return base64.b64decode(tree["$bytes"], validate=True)
    if "$bytearray" in tree:
        return bytearray(base64.b64decode(tree["$bytearray"], validate=True))
    if "$array" in tree:
        raw = base64.b64decode(tree["$array"], validate=True)
        return np.frombuffer(raw, dtype=np.dtype(tree["dtype"])).reshape(tree["shape"]).copy()
    if "$tuple" in tree:
        return tuple(_decode(v) for v in tree["$tuple"])
    if "$deque" in tree:
        return deque((_decode(v) for v in tree["$deque"]), tree["maxlen"])
    if "$set" in tree:
        return {_decode(v) for v in tree["$set"]}
    if "$dict" in tree:
        return {_decode(k): _decode(v) for k, v in tree["$dict"]}
    if "$object" in tree:
        return {
            "$object": tree["$object"],
            "state": {k: _decode(v) for k, v in tree["state"].items()},
        }
    raise SnapshotError("an unknown kind of value")


def apply(obj: object, tree: dict) -> None:
    """Put captured state back into an object of the same class (and the rvemu objects
    it holds), leaving its wiring as it is."""
    if not isinstance(tree, dict) or tree.get("$object") != type(obj).__qualname__:
        raise SnapshotError(
            f"state for {tree.get('$object')!r} does not fit a {type(obj).__name__}"
        )
    for name, value in tree["state"].items():
        setattr(obj, name, _apply_value(getattr(obj, name, None), value))


def _apply_value(current: object, saved: object) -> object:
    """The value an attribute gets: the current object updated in place where the saved
    value is an object's state, else a copy of the saved data (a snapshot can be
    restored again)."""
    if isinstance(saved, dict) and "$object" in saved:
        if not _is_rvemu_object(current):
            raise SnapshotError(f"no {saved['$object']} to restore")
        apply(current, saved)
        return current
    if isinstance(saved, list) and isinstance(current, list) and len(current) == len(saved):
        current[:] = [_apply_value(c, v) for c, v in zip(current, saved, strict=True)]
        return current
    if isinstance(saved, tuple) and isinstance(current, tuple) and len(current) == len(saved):
        return tuple(_apply_value(c, v) for c, v in zip(current, saved, strict=True))
    return _copy(saved, set())


# --- the machine
def snapshot(machine: Machine) -> dict:
    """Everything needed to go on from here, as data (RAM pages as bytes)."""
    hart, board = machine.hart, machine.board
    wiring = {id(o) for o in (machine, hart, machine.ram, board.bus, board.memory)}
    if board.console is not None:
        wiring.add(id(board.console))
    ram = machine.ram.reshape(-1, PAGE)
    used = np.flatnonzero(ram.any(axis=1))
    return {
        "version": VERSION,
        "memory": len(machine.ram),
        "options": dict(machine.options),
        "image": machine.image.path if machine.image else None,
        "hart": {
            "x": hart.x.copy(),
            "f": hart.f.copy(),
            "csr": hart.csr.copy(),
            "st": hart.st.copy(),
            "extensions": hart.extensions,
        },
        "machine": {
            "tohost": machine.tohost,
            "fromhost": machine.fromhost,
            "fdt_address": getattr(machine, "fdt_address", 0),
            "marks": {name: list(mark) for name, mark in machine.marks.items()},
        },
        "board": capture(board, wiring),
        "ram": {int(page): ram[page].tobytes() for page in used},
    }


def restore(machine: Machine, snap: dict) -> None:
    """Make `machine` (made with the snapshot's options) what the snapshot was."""
    if snap.get("version") != VERSION:
        raise SnapshotError(f"snapshot version {snap.get('version')}, this rvemu reads {VERSION}")
    if snap["memory"] != len(machine.ram):
        raise SnapshotError(
            f"snapshot of {snap['memory']} bytes of RAM, machine has {len(machine.ram)}"
        )
    hart = machine.hart
    machine.clear_ram()
    pages = machine.ram.reshape(-1, PAGE)
    for page, data in snap["ram"].items():
        if not 0 <= page < len(pages) or len(data) != PAGE:
            raise SnapshotError(f"RAM page {page} does not fit")
        pages[page] = np.frombuffer(data, dtype=np.uint8)
    if hart.extensions != snap["hart"]["extensions"]:
        hart.extensions = snap["hart"]["extensions"]
    for name in ("x", "f", "csr", "st"):
        array = getattr(hart, name)
        value = snap["hart"][name]
        if value.shape != array.shape:
            raise SnapshotError(f"hart.{name} has {value.shape} slots, not {array.shape}")
        array[:] = value
    hart.st[S.RAM_BASE], hart.st[S.RAM_SIZE] = machine.ram_base, len(machine.ram)
    apply(machine.board, snap["board"])
    m = snap["machine"]
    machine.tohost, machine.fromhost = m["tohost"], m["fromhost"]
    machine.fdt_address = m["fdt_address"]
    machine.marks = {name: tuple(mark) for name, mark in m["marks"].items()}
    # (clear_ram dropped the decoded code and regions; _sync_debug below flushes the TLB)
    if hart.tier2.hot.any():  # (reading leaves a new machine's untouched pages unmapped)
        hart.tier2.hot[:] = 0
    hart.breakpoints = hart.breakpoints  # a debugger's settings are this machine's
    if machine.tohost is not None:
        hart.watch_tohost(machine.tohost)


# --- files
def save(snap: dict, path: str) -> None:
    """Write a snapshot: MAGIC, the header's length, the header (JSON), then the non-zero
    RAM pages; header and pages compressed."""
    for name, value in snap["options"].items():
        if not (value is None or isinstance(value, (str, int, bool))):
            raise SnapshotError(
                f"cannot save a machine whose {name} is a Python object ({type(value).__name__}):"
                " only options given as text can be opened again"
            )
    pages = sorted(snap["ram"])
    header = {k: v for k, v in snap.items() if k != "ram"}
    header["ram_pages"] = pages
    text = zlib.compress(json.dumps(_jsonable(header)).encode(), 6)
    body = zlib.compress(b"".join(snap["ram"][p] for p in pages), 1)
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(text)) + text + body)


def _jsonable(header: dict) -> dict:
    """The snapshot's header as JSON data."""
    out = dict(header)
    out["hart"] = _encode_dict(header["hart"])
    out["board"] = _encode(header["board"])
    return out


def load(path: str) -> dict:
    """Read a snapshot file; SnapshotError with the reason if it is not a whole one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SnapshotError(f"{path}: {e.strerror}") from None
    try:
        if not data.startswith(MAGIC):
            raise SnapshotError("not an rvemu snapshot")
        (length,) = struct.unpack_from("<Q", data, len(MAGIC))
        start = len(MAGIC) + 8
        if start + length > len(data):
            raise SnapshotError("truncated")
        header = json.loads(zlib.decompress(data[start : start + length]))
        if not isinstance(header, dict) or header.get("version") != VERSION:
            version = header.get("version") if isinstance(header, dict) else None
            raise SnapshotError(f"snapshot version {version}, this rvemu reads {VERSION}")
        ram = zlib.decompress(data[start + length :])
        pages = header.pop("ram_pages")
        if len(ram) != PAGE * len(pages):
            raise SnapshotError("truncated RAM")
        snap = dict(header)
        snap["ram"] = {int(p): ram[i * PAGE : (i + 1) * PAGE] for i, p in enumerate(pages)}
        snap["hart"] = {k: _decode(v) for k, v in header["hart"].items()}
        snap["board"] = _decode(header["board"])
        return snap
    except SnapshotError as e:
        raise SnapshotError(f"{path}: {e}") from None
    except (ValueError, KeyError, TypeError, AttributeError, struct.error, zlib.error) as e:
        raise SnapshotError(f"{path}: malformed snapshot ({type(e).__name__})") from None
