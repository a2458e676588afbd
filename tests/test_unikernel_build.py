"""The unikernel build: image sizes, what gets linked, page layout, boot-to-main latency."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.constants import P_FLAGS
from elftools.elf.elffile import ELFFile
from test_apps import (
    BUILD,
    MKUKFS,
    QEMU,
    ROOT,
    boot,
    build,
    image,
    rvemu_can_boot,
    symbols_image,
)

LIBOS = ROOT / "unikernel" / "libos"
APPS_DIR = ROOT / "apps"
HELLO_MAX_BYTES = 16 * 1024
HELLO_MAX_INSTRUCTIONS_TO_MAIN = 10_000
MARK_MAIN = 0x00102013  # slti x0, x0, 1: the boot-latency HINT rvemu records
DISK_LIBRARIES = {"blk", "fs"}
APPS = sorted(p.parent.name for p in APPS_DIR.glob("*/libs"))


def library_closure(app: str) -> set[str]:
    """The libraries an app gets: kernel, what its `libs` names, and their `deps`, recursively."""
    todo = ["kernel", *(APPS_DIR / app / "libs").read_text().split()]
    seen: set[str] = set()
    while todo:
        lib = todo.pop()
        if lib not in seen:
            seen.add(lib)
            todo += (LIBOS / lib / "deps").read_text().split()
    return seen


def symbol_names(elf_path: Path) -> set[str]:
    with open(elf_path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name for s in symtab.iter_symbols() if s.name}


def load_segments(elf_path: Path) -> list[tuple[int, int, int, int]]:
    """(vaddr, memsz, filesz, flags) of each PT_LOAD segment."""
    with open(elf_path, "rb") as f:
        return [
            (s["p_vaddr"], s["p_memsz"], s["p_filesz"], s["p_flags"])
            for s in ELFFile(f).iter_segments()
            if s["p_type"] == "PT_LOAD"
        ]


def pages(vaddr: int, size: int) -> set[int]:
    return set(range(vaddr // 4096, (vaddr + max(size, 1) - 1) // 4096 + 1))


def test_libraries_and_apps_declare_what_they_need() -> None:
    libs = {p.parent.name for p in LIBOS.glob("*/deps")}
    assert {
        "arch",
        "kernel",
        "console",
        "plic",
        "timer",
        "alloc",
        "virtio",
        "blk",
        "fs",
        "rng",
    } <= libs
    for lib in libs:
        assert (LIBOS / lib / "include").is_dir(), f"{lib} has no public headers"
        assert set((LIBOS / lib / "deps").read_text().split()) <= libs
    for app in APPS:
        lines = (APPS_DIR / app / "libs").read_text().splitlines()
        assert len(lines) == 1, f"apps/{app}/libs must be one line"
        assert set(lines[0].split()) <= libs


def test_hello_image_is_at_most_16_kib() -> None:
    build("hello")
    file_size = image("hello").stat().st_size
    loadable = sum(filesz for _, _, filesz, _ in load_segments(image("hello")))
    print(f"hello.elf (stripped): file {file_size} B, loadable {loadable} B")
    assert file_size <= HELLO_MAX_BYTES
    assert loadable <= HELLO_MAX_BYTES


def test_build_prints_a_size_table_matching_the_image() -> None:
    out = build("hello")
    m = re.search(r"hello\.elf: file (\d+) B, loadable (\d+) B, text (\d+)\s+data (\d+)", out)
    assert m, out
    assert int(m.group(1)) == image("hello").stat().st_size
    assert int(m.group(2)) == sum(fs for _, _, fs, _ in load_segments(image("hello")))
    per_lib = dict(
        (name, int(n)) for name, n in re.findall(r"^\s+(\w[\w-]*)\s+(\d+) B$", out, re.M)
    )
    assert {"app", "kernel", "console", "arch"} <= per_lib.keys()
    # Only alignment padding separates the sum of the parts from the loaded bytes.
    assert 0.9 * int(m.group(2)) <= sum(per_lib.values()) <= int(m.group(2))


def test_build_writes_a_linker_map() -> None:
    build("hello")
    text = (BUILD / "hello.map").read_text()
    assert "Linker script and memory map" in text
    assert "libconsole.a(uart.c.o)" in text


@pytest.mark.parametrize("app", APPS)
def test_only_the_named_libraries_and_their_dependencies_are_linked(app: str) -> None:
    build()
    text = (BUILD / f"{app}.map").read_text()
    linked = set(re.findall(r"/lib([\w]+)\.a\(", text)) - {"c", "gcc"}
    assert {"arch", "kernel"} <= linked
    assert linked <= library_closure(app)


@pytest.mark.parametrize("app", [a for a in APPS if not DISK_LIBRARIES & library_closure(a)])
def test_image_without_disk_libraries_has_no_blk_or_fs_code(app: str) -> None:
    build()
    names = symbol_names(symbols_image(app))
    disk_code = {n for n in names if n.startswith(("blk_", "fs_", "virtio_blk", "ukfs"))}
    assert not disk_code
    if "virtio" not in library_closure(app):
        assert not {n for n in names if n.startswith(("virtio", "virtq"))}


def test_disk_app_does_contain_the_disk_code() -> None:
    """The control for the test above: the symbol check does see the drivers when linked."""
    build()
    names = symbol_names(symbols_image("files"))
    assert {"blk_open", "blk_read", "fs_mount", "fs_read", "virtio_open", "virtq_transfer"} <= names


@pytest.mark.parametrize("app", APPS)
def test_code_and_data_sit_on_separate_pages(app: str) -> None:
    build()
    segments = load_segments(image(app))
    code = set().union(*(pages(v, m) for v, m, _, fl in segments if fl & P_FLAGS.PF_X))
    data = set().union(*(pages(v, m) for v, m, _, fl in segments if fl & P_FLAGS.PF_W))
    assert code and data
    assert not code & data


def test_boot_mark_sits_right_before_main() -> None:
    build("hello")
    with open(symbols_image("hello"), "rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        base, code = text["sh_addr"], text.data()
        syms = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    words = [
        i for i in range(0, len(code) - 3, 2) if struct.unpack_from("<I", code, i)[0] == MARK_MAIN
    ]
    assert len(words) == 1, "exactly one boot mark"
    start = syms["libos_start"]
    assert start <= base + words[0] < start + 64


def test_hello_reaches_main_within_10000_instructions() -> None:
    """Counted independently of rvemu: QEMU single-steps and logs every executed instruction."""
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} not installed: boot-to-main latency NOT checked")
    build("hello")
    with open(symbols_image("hello"), "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        main = next(s["st_value"] for s in symtab.iter_symbols() if s.name == "main")
    cmd = [QEMU, "-machine", "virt", "-bios", "none", "-m", "128M", "-display", "none"]
    cmd += ["-monitor", "none", "-serial", "none", "-singlestep", "-d", "nochain,exec"]
    cmd += ["-D", "/dev/stdout", "-kernel", str(image("hello"))]
    trace = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.splitlines()
    pcs = [line.split("/")[1] for line in trace if line.startswith("Trace")]
    assert pcs, "QEMU printed no execution trace"
    executed_before_main = pcs.index(f"{main:016x}")
    print(f"hello: {executed_before_main} instructions from reset to main")
    assert executed_before_main <= HELLO_MAX_INSTRUCTIONS_TO_MAIN


def test_mkukfs_writes_the_documented_format(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.txt").write_bytes(b"x" * 700)
    (folder / "b.bin").write_bytes(b"")
    img = tmp_path / "fs.img"
    subprocess.run([sys.executable, str(MKUKFS), str(folder), str(img)], check=True)
    raw = img.read_bytes()
    magic, version, count, dir_offset, size = struct.unpack_from("<4sIIIQ", raw, 0)
    assert (magic, version, count, size) == (b"UKFS", 1, 2, len(raw))
    assert len(raw) % 512 == 0
    entries = [struct.unpack_from("<QQ48s", raw, dir_offset + 64 * i) for i in range(count)]
    assert [e[2].rstrip(b"\0") for e in entries] == [b"a/x.txt", b"b.bin"]
    for offset, length, name in entries:
        assert offset % 512 == 0
        assert raw[offset : offset + length] == (folder / name.rstrip(b"\0").decode()).read_bytes()


def test_rvemu_stats_report_hello_reaching_main_within_10000_instructions() -> None:
    """`rvemu boot --stats` shows the boot mark: reset -> main, in guest instructions."""
    if not rvemu_can_boot():
        pytest.xfail("`python -m rvemu boot` does not exist yet")
    build("hello")
    result = subprocess.run(
        [sys.executable, "-m", "rvemu", "boot", "--stats", str(image("hello"))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    m = re.search(r"reset -> main\s+(\d+) instructions", result.stderr)
    assert m, result.stderr
    assert 0 < int(m.group(1)) <= HELLO_MAX_INSTRUCTIONS_TO_MAIN
    assert re.search(r"reset -> first output\s+\d+ instructions", result.stderr)


def test_write_your_own_app_section_of_the_guide_works(tmp_path: Path) -> None:
    """Follows docs/unikernel.md's example app as written, in a scratch apps folder."""
    doc = (ROOT / "docs" / "unikernel.md").read_text()
    section = doc[doc.index("## Write your own app") :]
    libs = re.search(r'echo "([^"]*)" > apps/(\w+)/libs', section)
    code = re.search(r"```c\n(.*?)```", section, re.S)
    assert libs and code
    app = libs.group(2)
    (tmp_path / "apps" / app).mkdir(parents=True)
    (tmp_path / "apps" / app / "libs").write_text(libs.group(1) + "\n")
    source = "\n".join(line.removeprefix("   ") for line in code.group(1).splitlines())
    (tmp_path / "apps" / app / "main.c").write_text(source + "\n")
    out_dir = tmp_path / "build"
    subprocess.run(
        ["make", "-C", str(ROOT / "unikernel"), f"APP={app}"]
        + [f"APPS_DIR={tmp_path / 'apps'}", f"OUT={out_dir}"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    elf = out_dir / f"{app}.elf"
    runs = []
    if shutil.which(QEMU):
        runs.append(boot("qemu", elf))
    if rvemu_can_boot():
        runs.append(boot("rvemu", elf))
    if not runs:
        pytest.skip("neither QEMU nor rvemu can boot images here: the example was only built")
    for status, out, err in runs:
        assert (status, out) == (0, "blink 1\nblink 2\nblink 3\n"), err
