"""Hostile input never crashes rvemu: property-based fuzzing (hypothesis) of every input
surface, each from a seed corpus in the tree.

- ELF images: the built images (build/unikernel/*.elf) with header fields set to edge
  values, bytes changed and the file truncated, loaded and run;
- the command line: `rvemu boot` / `rvemu dtb` with --disk, --initrd, --bios, --append,
  --memory, --cpu, --net, --clock and size options drawn from good files (an image, the
  `files` app's disk), bad files and text: a non-zero exit always comes with one
  `rvemu: ...` line, never a traceback, and no file changes that was not asked to;
- device registers: random offsets, sizes and values on every device of the bus, straight
  and from guest loads and stores;
- virtqueue chains: random descriptor tables, rings and requests for virtio-blk, -rng and
  -net: the device completes or needs a reset, and writes nothing outside the buffers;
- network frames from the host: random frames into random receive buffers.

`make test` runs a bounded campaign (derandomized: the same inputs every run);
`make fuzz` runs RVEMU_FUZZ_SCALE times as many random ones, and tests/fuzz_atheris.py
runs each harness under atheris (coverage-guided). Every crasher found is kept below as an
explicit @example.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import enc
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from test_dev_net import Wire

from rvemu import Machine
from rvemu.cli import main as cli_main
from rvemu.cpu import state as S
from rvemu.devices import virtio_mmio as V
from rvemu.devices.virtio_blk import SECTOR, VirtioBlk
from rvemu.devices.virtio_net import MAX_PENDING, VirtioNet
from rvemu.devices.virtio_rng import VirtioRng
from rvemu.loader import LoadError

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "build" / "unikernel"
SCALE = int(os.environ.get("RVEMU_FUZZ_SCALE", "1"))  # make fuzz: many times the examples
RAM = 0x8000_0000


def campaign(examples: int):  # noqa: ANN201 (a hypothesis settings decorator)
    """`examples` inputs in make test (the same ones every run); SCALE times as many
    random ones under make fuzz, failures kept in hypothesis' database (.hypothesis/)."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        database=None if SCALE == 1 else settings.default.database,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def seed_images() -> list[Path]:
    images = sorted(p for p in IMAGES.glob("*.elf") if not p.name.endswith(".sym.elf"))
    if not images:
        pytest.skip(
            f"*** no images in {IMAGES} (make apps): the ELF and CLI fuzzers did NOT run ***"
        )
    return images


# ------------------------------------------------------------------------ ELF images

EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32]
EDGES += [RAM, RAM + (16 << 20), (1 << 63), (1 << 64) - 1, (1 << 64) - 4096]
# ELF64 fields: the header's, a program header's and a section header's (offset, size)
EHDR_FIELDS = [(16, 2), (18, 2), (20, 4), (24, 8), (32, 8), (40, 8), (48, 4)]
EHDR_FIELDS += [(52, 2), (54, 2), (56, 2), (58, 2), (60, 2), (62, 2)]
PHDR_FIELDS = [(0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (48, 8)]
SHDR_FIELDS = [(0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8)]
SHDR_FIELDS += [(56, 8)]


@st.composite
def mutated_images(draw) -> bytes:  # noqa: ANN001
    """A seed image with header fields set to edge values, bytes changed, or cut short."""
    data = bytearray(draw(st.sampled_from(seed_images())).read_bytes())
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phnum, shnum = struct.unpack_from("<H", data, 56)[0], struct.unpack_from("<H", data, 60)[0]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["ehdr", "phdr", "shdr", "byte", "cut"]))
        if kind == "cut":
            del data[draw(st.integers(0, len(data))) :]
            continue
        if kind == "byte":
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            continue
        table, count, size, fields = {
            "ehdr": (0, 1, 64, EHDR_FIELDS),
            "phdr": (phoff, phnum, 56, PHDR_FIELDS),
            "shdr": (shoff, shnum, 64, SHDR_FIELDS),
        }[kind]
        where, width = draw(st.sampled_from(fields))
        where += table + size * draw(st.integers(0, max(count - 1, 0)))
        value = draw(st.sampled_from(EDGES + [len(data), len(data) - 1]) | st.integers(0))
        if where + width <= len(data):
            data[where : where + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return bytes(data)


FOLDERS: dict[str, Path] = {}


def scratch(name: str) -> Path:
    """A temporary folder for one harness, made on first use (removed after the module)."""
    if name not in FOLDERS:
        FOLDERS[name] = Path(tempfile.mkdtemp(prefix=f"rvemu-fuzz-{name}-"))
    return FOLDERS[name]


ELF_MACHINE: list[Machine] = []  # one machine for every example (loading resets it)


@campaign(600)
@given(mutated_images())
def test_mutated_images_load_or_are_refused_in_one_line(image: bytes) -> None:
    if not ELF_MACHINE:
        ELF_MACHINE.append(Machine(memory="16M"))
    machine = ELF_MACHINE[0]
    path = scratch("elf") / "image.elf"
    path.write_bytes(image)
    try:
        machine.load(str(path))
    except LoadError as e:
        assert "\n" not in str(e) and str(e).startswith(str(path)), str(e)
        event("refused")
        return
    event("loaded")
    result = machine.run(max_instructions=3000)  # whatever the image does, as a guest
    event(f"loaded, then {result.reason}")


# ------------------------------------------------------------------------ the command line


class Files:
    """A folder of good and bad inputs for options that name files; `state()` is every
    file's (size, mtime, bytes) to see that nothing changed that was not asked to."""

    def __init__(self) -> None:
        self.folder = scratch("cli")
        images = seed_images()
        hello = next((p for p in images if p.name == "hello.elf"), images[0])
        good = {"hello.elf": hello.read_bytes()}
        if (IMAGES / "files.img").exists():
            good["disk.img"] = (IMAGES / "files.img").read_bytes()
        bad = {
            "empty": b"",
            "garbage": bytes(range(256)) * 5,
            "cut.elf": good["hello.elf"][:100],
            "one-sector.img": bytes(SECTOR),
            "odd.img": bytes(SECTOR + 7),
            "with,comma.img": bytes(2 * SECTOR),
        }
        for name, data in {**good, **bad}.items():
            (self.folder / name).write_bytes(data)
        (self.folder / "folder").mkdir()
        names = sorted(good) + sorted(bad) + ["folder", "missing"]
        self.paths = [str(self.folder / n) for n in names] + ["/dev/null", "/dev/zero", ""]

    def state(self) -> dict[str, tuple[int, int, bytes]]:
        out = {}
        for path in sorted(self.folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                out[str(path)] = (stat.st_size, stat.st_mtime_ns, path.read_bytes())
        return out


FILES: list[Files] = []


def files() -> Files:
    if not FILES:
        FILES.append(Files())
    return FILES[0]


texts = st.text(max_size=12) | st.text(alphabet="0123456789KMGkmgiB.-x, ", max_size=10)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Good values four times in five, so most commands get past their first check."""
    return st.integers(0, 4).flatmap(lambda k: bad if k == 0 else good)


@st.composite
def cli_arguments(draw) -> tuple[list[str], set[str]]:  # noqa: ANN001
    """(argv, the files that command may write)."""
    f = files()
    name = lambda *names: st.sampled_from([str(f.folder / n) for n in names])  # noqa: E731
    anything = st.sampled_from(f.paths) | texts
    command = draw(st.sampled_from(["boot", "boot", "boot", "dtb"]))
    argv = [command]
    writes: set[str] = set()
    if command == "boot" or draw(st.booleans()):
        argv.append(draw(mostly(name("hello.elf"), anything)))
    small_files = name("empty", "garbage", "hello.elf", "one-sector.img") | st.just("/dev/null")
    options = {
        "--memory": mostly(
            st.sampled_from(["1M", "16M", "128M", "64K", "2G"]),
            st.sampled_from(["4K", "4097", "0", "-1M", "1.5G", " 8M ", "8MiB", "4096G"]) | texts,
        ),
        "--disk": st.tuples(
            mostly(name("disk.img", "one-sector.img", "odd.img", "empty"), anything),
            mostly(st.sampled_from(["", ",ro", ",serial=abc", ",ro,serial="]), texts),
        ).map("".join),
        "--initrd": mostly(small_files, anything),
        "--bios": mostly(small_files | name("cut.elf"), anything),
        "--append": st.text(max_size=40) | st.just("a\0b"),
        "--cpu": mostly(
            st.sampled_from(["rv64", "rv64,zba=off", "rv64,sstc=true,zfh=off,zfhmin=off"]),
            st.sampled_from(["rv32", "rv64,", "rv64,zba", "rv64,zba=maybe"]) | texts,
        ),
        "--net": mostly(
            st.sampled_from(["udp:0:127.0.0.1:9", "udp:0:localhost:9,mac=52:54:00:00:00:01"]),
            st.tuples(
                st.sampled_from(["udp:", "tap:", "udp:0:", "udp:0:127.0.0.1:"]),
                st.sampled_from(["", "0", "9", "65536", "-1", "99999999999999999999", "x"]),
                st.sampled_from(["", ":1", ":127.0.0.1:9", ",mac=52:54:00:00:00:01", ",mac=zz"]),
            ).map("".join),
        ),
        "--clock": mostly(st.sampled_from(["instructions", "host"]), texts),
        "--rng": st.just(None),
    }
    if command == "boot":
        options["--max-instructions"] = st.sampled_from(["-5", "0", "x", "1e3", "100"])
        options["--trace-limit"] = mostly(st.sampled_from(["1", "99"]), st.sampled_from(["0", "x"]))
        options["--trace-range"] = mostly(
            st.just("0x80000000:0x80000100"), st.sampled_from(["5", "a:b", "9:1", ":"])
        )
    for option in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)):
        value = draw(options[option])
        if option == "--net" and value.startswith("tap:") and value != "tap:":
            value = "tap:"  # (a real TAP interface would be created: not from a fuzzer)
        argv += [option] if value is None else [option, value]
    if command == "boot":
        if draw(st.booleans()):
            trace = str(f.folder / "out.trace")
            argv += ["--trace", trace]
            writes.add(trace)
        argv += ["--max-instructions", "3000"]
    elif draw(st.booleans()):
        out = str(f.folder / "out.dtb")
        argv += ["-o", out]
        writes.add(out)
    for k, arg in enumerate(argv[:-1]):
        if arg == "--disk" and ",ro" not in argv[k + 1]:
            writes.add(argv[k + 1].split(",")[0])  # the guest may write its disk
    return argv, writes


def run_cli(argv: list[str]) -> tuple[int, str]:
    """rvemu.cli.main in this process: (exit status, what it printed on stderr)."""
    err, out = io.StringIO(), io.TextIOWrapper(io.BytesIO())
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        _no_stdin(),
    ):
        try:
            code = cli_main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


@contextlib.contextmanager
def _no_stdin():
    """No terminal to put in raw mode, nothing typed; and the files' folder as the working
    directory, so relative paths land among the files watched."""
    saved, cwd = sys.stdin, os.getcwd()
    sys.stdin = io.StringIO()
    os.chdir(files().folder)
    try:
        yield
    finally:
        sys.stdin = saved
        os.chdir(cwd)


@campaign(300)
@given(cli_arguments())
@example((["boot", "HELLO", "--memory", "99999999999G"], set()))  # ValueError from numpy
@example((["boot", "HELLO", "--memory", "4096G"], set()))  # MemoryError
@example((["boot", "HELLO", "--initrd", "/dev/zero"], set()))  # read without end
@example((["boot", "HELLO", "--bios", "/dev/zero"], set()))
@example((["boot", "/dev/zero"], set()))
@example((["boot", "HELLO", "--net", "udp:99999999999999999999:127.0.0.1:9"], set()))
@example((["boot", "HELLO", "--net", "udp:0:127.0.0.1:65536"], set()))  # OverflowError
@example((["boot", "\r"], set()))  # a file name that is two lines
@example((["dtb", "--memory", "1M", "--bogus\nline"], set()))
def test_cli_options_exit_with_one_line_and_change_no_other_file(args) -> None:  # noqa: ANN001
    argv, writes = args
    argv = [str(files().folder / "hello.elf") if a == "HELLO" else a for a in argv]
    before = files().state()
    code, err = run_cli(argv)
    event(f"exit status {code}")
    assert "Traceback" not in err, err
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rvemu: "), (code, err)
    after = files().state()
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert changed <= writes, f"{argv} changed {sorted(changed - writes)}"
    for path in writes & after.keys():
        if "out." in path:
            os.unlink(path)


# ------------------------------------------------------------------------ device registers


def fuzz_machine(folder: Path) -> Machine:
    """A machine with every device: the disk a copy of the `files` app's (or a blank one),
    the network on a UDP port of the loopback nobody listens to, and the rng."""
    disk = folder / "disk.img"
    if not disk.exists():
        source = IMAGES / "files.img"
        disk.write_bytes(source.read_bytes() if source.exists() else bytes(8 * SECTOR))
    return Machine(memory="1M", disk=str(disk), net="udp:0:127.0.0.1:9", rng=True)


DEVICE_MACHINE: list[Machine] = []


def device_machine() -> Machine:
    if not DEVICE_MACHINE:
        DEVICE_MACHINE.append(fuzz_machine(scratch("dev")))
    m = DEVICE_MACHINE[0]
    m.board.reset()
    return m


@st.composite
def register_accesses(draw) -> list[tuple[int, int, int, bool]]:  # noqa: ANN001
    """(address, size, value, write): on a device, mostly at its registers' offsets."""
    ranges = [(b, e) for b, e, _ in device_machine().bus.ranges()]
    out = []
    for _ in range(draw(st.integers(1, 40))):
        base, end = draw(st.sampled_from(ranges))
        offset = draw(
            st.sampled_from([0, 4, 8, 0x10, 0x14, 0x20, 0x30, 0x34, 0x38, 0x44, 0x50, 0x60])
            | st.sampled_from([0x64, 0x70, 0x80, 0x84, 0x90, 0xA0, 0x100, 0x104, 0x108, 0xFFC])
            | st.sampled_from([0x1000, 0x2000, 0x2080, 0x20_0000, 0x20_0004, 0x20_1004])
            | st.integers(0, end - base + 8)
        )
        size = draw(st.sampled_from([1, 2, 4, 8]))
        value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF_FFFF, (1 << 64) - 1]) | st.integers(0))
        out.append((base + offset, size, value % (1 << (8 * size)), draw(st.booleans())))
    return out


@campaign(400)
@given(register_accesses())
def test_random_register_accesses_on_every_device(accesses) -> None:  # noqa: ANN001
    m = device_machine()
    disk = scratch("dev") / "disk.img"
    size = disk.stat().st_size
    for addr, width, value, write in accesses:
        if write:
            m.bus.write(addr, width, value)
        else:
            got = m.bus.read(addr, width)
            assert got is None or 0 <= got < 1 << (8 * width), (hex(addr), width, got)
    if any(t.broken for t in m.board.virtio):
        event("a virtio device needs a reset")
        m.board.poll()
        m.board.sync_interrupts()
    assert disk.stat().st_size == size  # never grown or truncated


LOAD_STORE = ["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu", "sb", "sh", "sw", "sd"]


@st.composite
def guest_accesses(draw) -> tuple[list[int], list[int]]:  # noqa: ANN001
    """(x5..x15 pointing into devices and nearby, loads and stores through them)."""
    ranges = [(b, e) for b, e, _ in device_machine().bus.ranges()]
    regs = []
    for _ in range(11):
        base, end = draw(st.sampled_from(ranges + [(RAM - 64, RAM + 64), (0, 0x1000)]))
        regs.append(base + draw(st.integers(0, max(end - base - 1, 0))))
    words = []
    for _ in range(draw(st.integers(1, 30))):
        name = draw(st.sampled_from(LOAD_STORE))
        rs1, reg = draw(st.integers(5, 15)), draw(st.integers(1, 31))
        imm = draw(st.integers(-64, 64))
        if name.startswith("s"):
            words.append(enc(name, rs1=rs1, rs2=reg, imm=imm))
        else:
            words.append(enc(name, rd=reg, rs1=rs1, imm=imm))
    return regs, words


MTVEC = RAM + 0x100  # a handler that skips the faulting instruction


@campaign(200)
@given(guest_accesses())
def test_guest_loads_and_stores_on_every_device(program) -> None:  # noqa: ANN001
    regs, words = program
    m = device_machine()
    handler = [enc("csrrs", rd=30, imm=0x341), enc("addi", rd=30, rs1=30, imm=4)]
    handler += [enc("csrrw", rs1=30, imm=0x341), 0x30200073]  # mepc += 4; mret
    code = b"".join(w.to_bytes(4, "little") for w in words + [0x0000006F])  # then j .
    m.write_phys(MTVEC, b"".join(w.to_bytes(4, "little") for w in handler))
    m.write_phys(RAM + 0x1000, code)
    m.hart.reset(pc=RAM + 0x1000)
    m.hart.csr[S.MTVEC] = MTVEC
    m.hart.x[5:16] = [r - (1 << 64) if r >= 1 << 63 else r for r in regs]
    result = m.run(max_instructions=10 * len(words) + 50)
    assert result.reason in ("limit", "poweroff", "reset", "halt"), result
    event(f"guest: {result.reason}")


# ------------------------------------------------------------------------ virtqueues

QSIZE = 8
DESC, AVAIL, USED = RAM + 0x10000, RAM + 0x11000, RAM + 0x12000
BUF = RAM + 0x20000  # the buffers: [BUF, BUF + 64 KiB) and the last page of RAM
BUF_END = BUF + 0x10000
RAM_SIZE = 1 << 20
LAST_PAGE = RAM + RAM_SIZE - 0x1000


@st.composite
def hostile_descriptors(draw) -> tuple[int, int, int, int]:  # noqa: ANN001
    addr = draw(
        st.integers(BUF, BUF_END - 1)
        | st.integers(LAST_PAGE, RAM + RAM_SIZE + 16)
        | st.sampled_from([0, RAM - 1, RAM - 16, (1 << 64) - 8, (1 << 64) - 1])
        | st.integers(0, (1 << 64) - 1)
    )
    length = draw(
        st.sampled_from([0, 1, 15, 16, 17, 512, 1024, 4096, 1 << 20, (1 << 32) - 1])
        | st.integers(0, 0x2000)
    )
    flags = draw(st.integers(0, 7) | st.integers(0, 0xFFFF))
    nxt = draw(st.integers(0, QSIZE + 2) | st.integers(0, 0xFFFF))
    return addr, length, flags, nxt


def descriptors(i: int) -> st.SearchStrategy:
    """Descriptor i: mostly a plausible one (a buffer in the buffers, chained to i + 1,
    with the blk requests' headers at BUF + 0x1000 * k), else a hostile one."""
    plausible = st.tuples(
        st.integers(1, 15).map(lambda k: BUF + 0x1000 * k) | st.just(LAST_PAGE + 0xF00),
        st.sampled_from([1, 16, 512, 1024, 0x100]),
        st.sampled_from([V.DESC_F_NEXT, V.DESC_F_NEXT | V.DESC_F_WRITE, V.DESC_F_WRITE, 0])
        | st.just(V.DESC_F_INDIRECT),
        st.just(i + 1),
    ).map(lambda d: (BUF, 16 * 4, *d[2:]) if d[2] == V.DESC_F_INDIRECT else d)
    return mostly(plausible, hostile_descriptors())


@st.composite
def virtqueue_work(draw) -> dict:  # noqa: ANN001
    """A device, a descriptor table (maybe an indirect one too), buffer contents (blk
    request headers), and the heads made available."""
    device = draw(st.sampled_from(["blk", "blk-ro", "rng", "net-tx", "net-rx"]))
    table = [draw(descriptors(i)) for i in range(QSIZE)]
    indirect = [draw(descriptors(i)) for i in range(draw(st.integers(0, 6)))]
    heads = draw(
        mostly(
            st.lists(st.integers(0, QSIZE - 1), min_size=1, max_size=3),
            st.lists(st.integers(0, QSIZE + 1) | st.integers(0, 0xFFFF), max_size=10),
        )
    )
    avail_idx = draw(mostly(st.none(), st.integers(0, 0xFFFF)))  # None: as many as heads
    kinds = st.sampled_from([0, 1, 4, 8, 11]) | st.integers(0, (1 << 32) - 1)
    sectors = st.sampled_from([0, 1, 9, 10, 11, (1 << 64) - 1, (1 << 55)]) | st.integers(0)
    headers = draw(st.lists(st.tuples(kinds, sectors.map(lambda s: s % (1 << 64))), max_size=4))
    frames = draw(st.lists(st.binary(max_size=2000), max_size=4))
    if device.startswith("blk") and draw(st.integers(0, 3)):  # mostly a well-formed request
        data = draw(st.sampled_from([V.DESC_F_NEXT | V.DESC_F_WRITE, V.DESC_F_NEXT]))
        length = draw(st.sampled_from([0, 1, 20, 511, 512, 1024, 4096, 0x3000]))
        status = BUF + 0x3000 + draw(st.integers(0, 0xFFF))
        table[0] = (BUF + 0x1000, 16, V.DESC_F_NEXT, 1)
        table[1] = (BUF + 0x2000, length, data, 2)
        table[2] = (status, 1, V.DESC_F_WRITE, 0)
        heads = draw(mostly(st.just([0]), st.just([0, *heads])))
        headers = headers or [(0, 0)]
    return dict(device=device, table=table, indirect=indirect, heads=heads,
                avail_idx=avail_idx, headers=headers, frames=frames)  # fmt: skip


VQ_MACHINE: list[Machine] = []


def driven_transport(device) -> tuple[Machine, V.VirtioMmio]:  # noqa: ANN001
    """A transport for `device` on a fresh 1 MiB of RAM, set up as a driver does."""
    if not VQ_MACHINE:
        VQ_MACHINE.append(Machine(memory="1M"))
    m = VQ_MACHINE[0]
    m.ram[:] = 0
    t = V.VirtioMmio(m.board.memory, device)
    w = lambda off, v: t.write(off, 4, v)  # noqa: E731
    w(V.R_STATUS, 3)
    w(V.R_DRIVER_FEATURES_SEL, 1)
    w(V.R_DRIVER_FEATURES, 1)
    w(V.R_STATUS, 11)
    for q in range(len(t.queues)):
        w(V.R_QUEUE_SEL, q)
        w(V.R_QUEUE_NUM, QSIZE)
        for reg, addr in ((V.R_QUEUE_DESC_LOW, DESC), (V.R_QUEUE_DRIVER_LOW, AVAIL),
                          (V.R_QUEUE_DEVICE_LOW, USED)):  # fmt: skip
            w(reg, addr + 0x4000 * q)
        w(V.R_QUEUE_READY, 1)
    w(V.R_STATUS, 15)
    return m, t


def disk_file(read_only: bool) -> Path:
    path = scratch("vq") / ("ro.img" if read_only else "rw.img")
    path.write_bytes(bytes(range(256)) * (10 * SECTOR // 256))  # 10 sectors
    if read_only:
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    return path


@campaign(600)
@given(virtqueue_work())
def test_hostile_virtqueues_complete_or_break_and_stay_in_their_buffers(work) -> None:  # noqa: ANN001
    kind = work["device"]
    disk = None
    if kind.startswith("blk"):
        disk = disk_file(read_only=kind == "blk-ro")
        before = disk.read_bytes(), disk.stat().st_mtime_ns
        device = VirtioBlk(str(disk), read_only=kind == "blk-ro")
    elif kind == "rng":
        device = VirtioRng()
    else:
        device = VirtioNet(Wire(work["frames"]))
    m, t = driven_transport(device)
    mem = m.board.memory
    queue = 0 if kind != "net-tx" else 1
    desc, avail = DESC + 0x4000 * queue, AVAIL + 0x4000 * queue
    for i, (addr, length, flags, nxt) in enumerate(work["table"]):
        mem.write(desc + 16 * i, struct.pack("<QIHH", addr, length & 0xFFFF_FFFF, flags, nxt))
    for i, (addr, length, flags, nxt) in enumerate(work["indirect"]):
        mem.write(BUF + 16 * i, struct.pack("<QIHH", addr, length & 0xFFFF_FFFF, flags, nxt))
    for i, (request, sector) in enumerate(work["headers"]):  # where requests may point
        mem.write(BUF + 0x1000 * (i + 1), struct.pack("<IIQ", request, 0, sector))
    for i, head in enumerate(work["heads"]):
        mem.write_int(avail + 4 + 2 * (i % QSIZE), 2, head)
    count = len(work["heads"]) if work["avail_idx"] is None else work["avail_idx"]
    mem.write_int(avail + 2, 2, count)
    outside = outside_buffers(m)
    t.write(V.R_QUEUE_NOTIFY, 4, queue)
    t.poll()
    t.write(V.R_QUEUE_NOTIFY, 4, queue)
    assert bool(t.read(V.R_STATUS, 4) & V.S_NEEDS_RESET) == t.broken
    if t.broken:
        assert t.interrupt_pending()
    used = mem.read_int(USED + 0x4000 * queue + 2, 2)
    if t.broken:  # why, with the numbers left out
        event(f"{kind}: needs a reset: " + re.sub(r"\S*[0-9]\S*", "N", t.broken_reason))
    else:
        event(f"{kind}: {min(used, 2)}+ chains used")
    # only the used rings, the buffers, and nothing else in RAM
    assert np.array_equal(outside_buffers(m), outside), "a device wrote outside the buffers"
    if kind == "blk-ro":
        assert (disk.read_bytes(), disk.stat().st_mtime_ns) == before
    if disk is not None:
        assert disk.stat().st_size == len(before[0])
        device.close()


def outside_buffers(m: Machine) -> np.ndarray:
    """RAM but the used rings (USED + 0x4000 * queue) and the buffers."""
    ram = m.ram.copy()
    for q in range(2):
        off = USED + 0x4000 * q - RAM
        ram[off : off + 0x1000] = 0
    ram[BUF - RAM : BUF_END - RAM] = 0
    ram[LAST_PAGE - RAM :] = 0
    return ram


# ------------------------------------------------------------------------ frames from the host


@st.composite
def frames_and_buffers(draw) -> tuple[list[bytes], list[tuple[int, int, int]]]:  # noqa: ANN001
    frames = draw(
        st.lists(
            st.binary(max_size=1600)
            | st.sampled_from([b"", bytes(65536), bytes(70000), b"\xff" * 14]),
            max_size=MAX_PENDING + 20,
        )
    )
    buffers = draw(
        st.lists(
            st.tuples(
                st.integers(0, 15).map(lambda k: BUF + 0x1000 * k),
                st.sampled_from([0, 1, 11, 12, 13, 60, 1514, 4096]),
                st.sampled_from([V.DESC_F_WRITE, 0, V.DESC_F_WRITE | V.DESC_F_NEXT]),
            ),
            max_size=QSIZE,
        )
    )
    return frames, buffers


@campaign(300)
@given(frames_and_buffers())
def test_frames_from_the_host_fit_the_buffers_or_wait(work) -> None:  # noqa: ANN001
    frames, buffers = work
    wire = Wire(frames)
    net = VirtioNet(wire)
    m, t = driven_transport(net)
    mem = m.board.memory
    for i, (addr, length, flags) in enumerate(buffers):
        mem.write(DESC + 16 * i, struct.pack("<QIHH", addr, length, flags, (i + 1) % QSIZE))
        mem.write_int(AVAIL + 4 + 2 * i, 2, i)
    mem.write_int(AVAIL + 2, 2, len(buffers))
    outside = outside_buffers(m)
    for _ in range(3):
        t.poll()
    event(f"{min(net.received, 3)}+ frames delivered" + (", broken" if t.broken else ""))
    assert len(net.pending) <= MAX_PENDING
    assert net.received + len(net.pending) + net.dropped == len(frames) - len(wire.inbox)
    assert np.array_equal(outside_buffers(m), outside), "a frame was written outside the buffers"
    for k in range(net.received):  # each used entry within its chain's writable bytes
        length = mem.read_int(USED + 4 + 8 * k + 4, 4)
        assert length <= sum(n for _, n, f in buffers if f & V.DESC_F_WRITE) or t.broken


def test_the_harnesses_can_fail() -> None:
    """The checks above catch what they are for: a write outside the buffers changes
    outside_buffers(), a multi-line error is not one line."""
    m, _ = driven_transport(VirtioRng())
    before = outside_buffers(m)
    m.board.memory.write(BUF_END, b"x")
    assert not np.array_equal(outside_buffers(m), before)
    code, err = run_cli(["boot", "/nonexistent/image.elf"])
    assert code != 0 and err.count("\n") == 1 and err.startswith("rvemu: ")


def teardown_module() -> None:
    for folder in FOLDERS.values():
        shutil.rmtree(folder, ignore_errors=True)
