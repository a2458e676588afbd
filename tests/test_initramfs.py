"""The initramfs builder (rvemu/initramfs.py): archives read back by a reader written here
from the kernel's description of the format (Documentation/driver-api/early-userspace/
buffer-format.rst), the busybox layout, module load order, and the command's errors.
Booting what it builds is tests/test_linux.py's job."""

from __future__ import annotations

import gzip
import os
import stat
import sys
from pathlib import Path

import pytest
from test_cli import rvemu

from rvemu.initramfs import DEFAULT_INIT, Initramfs, busybox_initramfs, load_order, read_module

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(os.environ.get("RVEMU_GUESTS", ROOT / ".." / "shared" / "guests")).resolve()
MODULES = GUESTS / "linux" / "modules"
# a stand-in for busybox: the start of a 64-bit RISC-V ELF (e_machine 243)
FAKE_BUSYBOX = b"\x7fELF\x02\x01\x01" + bytes(11) + (243).to_bytes(2, "little") + bytes(100)


def read_newc(archive: bytes) -> list[dict]:
    """Every record up to the trailer: "070701", 13 fields of 8 hex digits, the name with
    its NUL, padding to 4, the body, padding to 4."""
    names = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize")
    names += ("devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check")
    records, at = [], 0
    while True:
        assert archive[at : at + 6] == b"070701", f"bad magic at {at}"
        fields = dict(
            zip(
                names,
                (int(archive[at + 6 + 8 * k : at + 14 + 8 * k], 16) for k in range(13)),
                strict=True,
            )
        )
        name_end = at + 110 + fields["namesize"]
        assert archive[name_end - 1] == 0, "name not NUL-terminated"
        fields["name"] = archive[at + 110 : name_end - 1].decode()
        body = name_end + (-name_end % 4)
        fields["data"] = archive[body : body + fields["filesize"]]
        at = body + fields["filesize"] + (-(body + fields["filesize"]) % 4)
        if fields["name"] == "TRAILER!!!":
            assert at == len(archive), "bytes after the trailer"
            return records
        records.append(fields)


def test_records_read_back_as_written() -> None:
    fs = Initramfs()
    fs.add_file("etc/motd", b"hello", mode=0o640)
    fs.add_symlink("bin/sh", "busybox")
    fs.add_device("dev/vda", "b", 254, 0, mode=0o660)
    fs.add_file("/../../init", b"#!/bin/sh\n", mode=0o755)  # stays inside: "init"
    records = {r["name"]: r for r in read_newc(fs.cpio())}
    assert list(records) == ["etc", "etc/motd", "bin", "bin/sh", "dev", "dev/vda", "init"]
    assert records["etc"]["mode"] == stat.S_IFDIR | 0o755 and records["etc"]["nlink"] == 2
    assert records["etc/motd"]["mode"] == stat.S_IFREG | 0o640
    assert records["etc/motd"]["data"] == b"hello" and records["etc/motd"]["nlink"] == 1
    assert records["bin/sh"]["mode"] == stat.S_IFLNK | 0o777
    assert records["bin/sh"]["data"] == b"busybox"
    vda = records["dev/vda"]
    assert (vda["mode"], vda["rdevmajor"], vda["rdevminor"]) == (stat.S_IFBLK | 0o660, 254, 0)
    assert records["init"]["data"] == b"#!/bin/sh\n"
    assert len({r["ino"] for r in records.values()}) == len(records)  # no false hard links
    assert all(r["uid"] == r["gid"] == r["mtime"] == 0 for r in records.values())


def test_adding_a_path_again_replaces_it_but_a_file_cannot_hold_files() -> None:
    fs = Initramfs()
    fs.add_file("init", b"one")
    fs.add_file("init", b"two")
    assert [r["data"] for r in read_newc(fs.cpio())] == [b"two"]
    with pytest.raises(ValueError, match="not a folder"):
        fs.add_file("init/x", b"")
    with pytest.raises(ValueError, match="something else"):
        fs.add_dir("init")


def test_write_is_gzip_and_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a.cpio.gz", tmp_path / "b.cpio.gz"
    for out in (a, b):
        fs = Initramfs()
        fs.add_file("init", b"x", 0o755)
        fs.write(str(out))
    assert a.read_bytes() == b.read_bytes()
    assert read_newc(gzip.decompress(a.read_bytes()))[0]["name"] == "init"
    assert sorted(os.listdir(tmp_path)) == ["a.cpio.gz", "b.cpio.gz"]  # no temporary left


def test_add_tree_keeps_modes_and_links(tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sbin").mkdir(parents=True)
    (src / "sbin" / "init").write_text("#!/bin/sh\n")
    (src / "sbin" / "init").chmod(0o750)
    (src / "link").symlink_to("sbin/init")
    fs = Initramfs()
    fs.add_tree(str(src), "root")
    records = {r["name"]: r for r in read_newc(fs.cpio())}
    assert records["root/sbin/init"]["mode"] == stat.S_IFREG | 0o750
    assert records["root/link"]["data"] == b"sbin/init"


def test_busybox_layout() -> None:
    fs = busybox_initramfs_from(FAKE_BUSYBOX)
    records = {r["name"]: r for r in read_newc(fs.cpio())}
    console = records["dev/console"]
    assert (console["mode"], console["rdevmajor"], console["rdevminor"]) == (
        stat.S_IFCHR | 0o600,
        5,
        1,
    )
    assert records["bin/busybox"]["data"] == FAKE_BUSYBOX
    assert records["bin/busybox"]["mode"] == stat.S_IFREG | 0o755
    assert records["init"]["data"] == DEFAULT_INIT.encode()
    assert records["init"]["mode"] == stat.S_IFREG | 0o755
    for folder in ("proc", "sys", "dev", "newroot", "usr/sbin"):
        assert stat.S_ISDIR(records[folder]["mode"])


def busybox_initramfs_from(data: bytes, **kwargs) -> Initramfs:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "busybox"
        path.write_bytes(data)
        return busybox_initramfs(str(path), **kwargs)


def modules_folder() -> Path:
    if not MODULES.is_dir():
        pytest.skip(f"*** {MODULES} not found: module load order NOT tested ***")
    return MODULES


def test_modules_are_inflated_and_ordered_by_their_dependencies() -> None:
    found = {p.name.removesuffix(".xz"): read_module(str(p)) for p in modules_folder().iterdir()}
    assert all(data[:4] == b"\x7fELF" for data in found.values())
    order = load_order(found)
    assert sorted(order) == sorted(found)
    before = lambda a, b: order.index(a) < order.index(b)  # noqa: E731
    # ext4: depends=jbd2,mbcache,crc16 and softdep=pre: crypto-crc32c (crc32c_generic's alias)
    for need in ("jbd2.ko", "mbcache.ko", "crc16.ko", "crc32c_generic.ko"):
        assert before(need, "ext4.ko"), order
    assert before("crc32c_generic.ko", "jbd2.ko"), order
    assert before("failover.ko", "net_failover.ko") and before("net_failover.ko", "virtio_net.ko")


def test_command_builds_an_image_with_modules_and_added_files(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(FAKE_BUSYBOX)
    extra = tmp_path / "hello.txt"
    extra.write_text("hi\n")
    out = tmp_path / "initramfs.cpio.gz"
    args = ["initramfs", out, "--busybox", busybox, "--add", f"{extra}:/etc/hello.txt"]
    r = rvemu(*args, "--modules", modules_folder())
    assert r.returncode == 0 and r.stderr == "", r.stderr
    records = {r["name"]: r for r in read_newc(gzip.decompress(out.read_bytes()))}
    assert records["etc/hello.txt"]["data"] == b"hi\n"
    order = records["lib/modules/load-order"]["data"].decode().split()
    assert "ext4.ko" in order and records["lib/modules/ext4.ko"]["data"][:4] == b"\x7fELF"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--busybox", sys.executable], "not a 64-bit RISC-V executable"),
        (["--busybox", "/no/such/busybox"], "No such file"),
        ([], "give --busybox"),
        (["--init", "/no/such/init"], "No such file"),
        (["--busybox", "BUSYBOX", "--add", "nocolon"], "SOURCE:DESTINATION"),
        (["--busybox", "BUSYBOX", "--modules", "/etc/hostname"], "not a kernel module"),
        (["--busybox", "BUSYBOX", "--modules", "/etc"], "no kernel modules"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args, message) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(FAKE_BUSYBOX)
    args = [str(busybox) if a == "BUSYBOX" else a for a in args]
    before = sorted(os.listdir(tmp_path))
    r = rvemu("initramfs", tmp_path / "out.cpio.gz", *args)
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("rvemu: ") and message in r.stderr, r.stderr
    assert sorted(os.listdir(tmp_path)) == before
