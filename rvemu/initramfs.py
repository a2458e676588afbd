"""Initramfs images for Linux guests: a cpio "newc" archive, gzipped, which the kernel
unpacks into its first root file system and whose /init it runs
(Documentation/driver-api/early-userspace/buffer-format.rst).

>>> fs = Initramfs()
>>> fs.add_file("init", b"#!/bin/sh\\necho hello\\n", mode=0o755)
>>> fs.add_device("dev/console", "c", 5, 1)
>>> fs.write("initramfs.cpio.gz")

`busybox_initramfs` lays out the usual small system: busybox, an /init that mounts /proc,
/sys and /dev, loads kernel modules and then either switches to `root=DEVICE` from the
kernel command line or runs a shell on the console. `rvemu initramfs` is its command.
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import os
import posixpath
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

EM_RISCV = 243
TRAILER = "TRAILER!!!"


@dataclass
class Entry:
    mode: int  # file type and permission bits, as in st_mode
    data: bytes = b""  # a file's contents, a symbolic link's target
    rdev: tuple[int, int] = (0, 0)  # a device node's (major, minor)


class Initramfs:
    """The files of an initramfs, kept in the order Linux creates them: every folder
    before what is in it. Adding a path again replaces what was there."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        self._add(path, Entry(stat.S_IFDIR | mode & 0o7777))

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._add(path, Entry(stat.S_IFREG | mode & 0o7777, bytes(data)))

    def add_symlink(self, path: str, target: str) -> None:
        self._add(path, Entry(stat.S_IFLNK | 0o777, target.encode()))

    def add_device(self, path: str, kind: str, major: int, minor: int, mode: int = 0o600) -> None:
        """A character ("c") or block ("b") device node."""
        if kind not in ("c", "b"):
            raise ValueError(f"device kind {kind!r}: use 'c' (character) or 'b' (block)")
        file_type = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        self._add(path, Entry(file_type | mode & 0o7777, rdev=(major, minor)))

    def add_tree(self, src: str, dest: str) -> None:
        """A host file, or a folder and everything in it, at `dest`; permission bits are
        kept, symbolic links stay links."""
        st = os.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            self.add_symlink(dest, os.readlink(src))
        elif stat.S_ISREG(st.st_mode):
            with open(src, "rb") as f:
                self.add_file(dest, f.read(), st.st_mode)
        elif stat.S_ISDIR(st.st_mode):
            self.add_dir(dest, st.st_mode)
            for name in sorted(os.listdir(src)):
                self.add_tree(os.path.join(src, name), posixpath.join(dest, name))
        else:
            raise ValueError(f"{src}: not a file, folder or symbolic link")

    def _add(self, path: str, entry: Entry) -> None:
        name = posixpath.normpath("/" + path).lstrip("/")
        if not name:
            raise ValueError(f"{path!r} is the root folder, not a path in it")
        parent = posixpath.dirname(name)
        if parent:
            if parent not in self.entries:
                self.add_dir(parent)
            elif not stat.S_ISDIR(self.entries[parent].mode):
                raise ValueError(f"{parent} is not a folder, so {name} cannot go in it")
        old = self.entries.get(name)
        if old is not None and stat.S_ISDIR(old.mode) != stat.S_ISDIR(entry.mode):
            raise ValueError(f"{name} is already in the image as something else")
        self.entries[name] = entry

    def cpio(self) -> bytes:
        """The uncompressed "newc" archive."""
        out = bytearray()
        for ino, (name, e) in enumerate(self.entries.items(), 1):
            nlink = 2 if stat.S_ISDIR(e.mode) else 1
            out += newc_record(name, e.mode, e.data, ino, nlink, e.rdev)
        out += newc_record(TRAILER, 0, b"", 0, 1, (0, 0))
        return bytes(out)

    def write(self, path: str) -> None:
        """The gzipped archive to `path` (replaced whole, never left half written). The
        bytes depend only on what was added: times and owners are all 0."""
        data = gzip.compress(self.cpio(), compresslevel=9, mtime=0)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".initramfs-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def newc_record(
    name: str, mode: int, data: bytes, ino: int, nlink: int, rdev: tuple[int, int]
) -> bytes:
    """One header, name and body, each of name and body padded to 4 bytes. Fields: inode,
    mode, uid, gid, nlink, mtime, file size, device major/minor, rdev major/minor, name
    size (with its NUL), checksum."""
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    head = b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
    return pad4(head) + pad4(data)


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


# --- kernel modules


def read_module(path: str) -> bytes:
    """A module file's ELF bytes: .ko as it is, .ko.xz and .ko.gz inflated."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        if path.endswith(".xz"):
            data = lzma.decompress(data)
        elif path.endswith(".gz"):
            data = gzip.decompress(data)
    except (lzma.LZMAError, OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot decompress: {e}") from None
    return data


def module_info(path: str, data: bytes) -> tuple[set[str], set[str]]:
    """What a module provides (its name and aliases) and what must be loaded before it (its
    `depends` and `softdep=pre:` entries), from its .modinfo section. Module names are
    compared with '-' as '_', as the kernel does."""
    from elftools.common.exceptions import ELFError  # (here: `rvemu` starts without it)
    from elftools.elf.elffile import ELFFile

    try:
        section = ELFFile(BytesIO(data)).get_section_by_name(".modinfo")
        if section is None:
            raise ValueError("no .modinfo section")
        fields = [item.decode(errors="replace") for item in section.data().split(b"\0")]
    except (ELFError, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a kernel module ({e})") from None
    provides: set[str] = set()
    needs: set[str] = set()
    for key, _, value in (item.partition("=") for item in fields):
        if key in ("name", "alias"):
            provides.add(value)
        elif key == "depends":
            needs.update(v for v in value.split(",") if v)
        elif key == "softdep":
            # "pre: a b post: c": a and b go first
            words = value.split() + ["post:"]
            if "pre:" in words:
                pre = words[words.index("pre:") + 1 :]
                needs.update(pre[: pre.index("post:")])
    return {n.replace("-", "_") for n in provides}, {n.replace("-", "_") for n in needs}


def load_order(modules: dict[str, bytes]) -> list[str]:
    """Module file names in an order that loads each after what it needs (Debian ships no
    modules.dep for them here). What no given module provides is taken to be built into the
    kernel; otherwise names keep their sorted order."""
    info = {name: module_info(name, data) for name, data in modules.items()}
    provider = {}
    for name in sorted(info):
        for what in info[name][0]:
            provider.setdefault(what, name)
    order: list[str] = []

    def visit(name: str, seen: set[str]) -> None:
        if name in order or name in seen:
            return
        seen.add(name)
        for need in sorted(info[name][1]):
            if need in provider:
                visit(provider[need], seen)
        order.append(name)

    for name in sorted(info):
        visit(name, set())
    return order


# --- a busybox system

DEFAULT_INIT = r"""#!/bin/sh
# The /init of rvemu's busybox initramfs (rvemu/initramfs.py): mount the kernel's file
# systems, load the modules listed in /lib/modules/load-order, then switch to the root
# file system named by root=DEVICE on the kernel command line, or run a shell.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load-order 2>/dev/null); do
    insmod /lib/modules/$m
done
root=
opts=rw
for arg in $(cat /proc/cmdline); do
    case $arg in
        root=*) root=${arg#root=} ;;
        ro|rw) opts=$arg ;;
    esac
done
if [ -n "$root" ]; then
    n=0
    while [ ! -b "$root" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    if mount -o $opts "$root" /newroot; then
        echo "rvemu initramfs: switching to root=$root"
        umount /sys /proc
        mount --move /dev /newroot/dev 2>/dev/null || umount /dev
        exec switch_root /newroot /sbin/init
    fi
    echo "rvemu initramfs: cannot mount root=$root"
fi
echo "rvemu initramfs: busybox shell ('poweroff -f' powers off)"
exec setsid cttyhack sh
"""

KO = (".ko", ".ko.xz", ".ko.gz")
FOLDERS = ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "newroot")


def busybox_initramfs(
    busybox: str | None,
    init: bytes | None = None,
    modules: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
) -> Initramfs:
    """The usual small system: /bin/busybox (a static RISC-V build) with /bin/sh, the
    folders init needs, /dev/console, `init` as /init (DEFAULT_INIT if None), the modules
    (files .ko, .ko.xz, .ko.gz, or folders of them) in /lib/modules with the order to load
    them in /lib/modules/load-order, and host files or folders `add`ed as (source, path)."""
    if busybox is None and init is None:
        raise ValueError("the default /init needs busybox: give --busybox, or your own --init")
    fs = Initramfs()
    for folder in FOLDERS:
        fs.add_dir(folder, 0o700 if folder == "root" else 0o1777 if folder == "tmp" else 0o755)
    fs.add_device("dev/console", "c", 5, 1)
    if busybox is not None:
        with open(busybox, "rb") as f:
            data = f.read()
        if not is_riscv64_executable(data):
            raise ValueError(f"{busybox}: not a 64-bit RISC-V executable")
        fs.add_file("bin/busybox", data, 0o755)
        fs.add_symlink("bin/sh", "busybox")
    fs.add_file("init", DEFAULT_INIT.encode() if init is None else init, 0o755)
    found = {}
    for path in modules:
        files = [path]
        if os.path.isdir(path):
            files = [os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(KO)]
            if not files:
                raise ValueError(f"{path}: no kernel modules (.ko, .ko.xz, .ko.gz) in it")
        for file in files:
            name = os.path.basename(file).removesuffix(".xz").removesuffix(".gz")
            found[name] = read_module(file)
    if found:
        for name, data in found.items():
            fs.add_file(f"lib/modules/{name}", data)
        fs.add_file("lib/modules/load-order", "".join(f"{n}\n" for n in load_order(found)).encode())
    for src, dest in add:
        fs.add_tree(src, dest)
    return fs


def is_riscv64_executable(data: bytes) -> bool:
    return data[:5] == b"\x7fELF\x02" and int.from_bytes(data[18:20], "little") == EM_RISCV


# --- the command


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "initramfs",
        help="build a gzipped cpio initramfs with busybox for Linux guests",
        description="Build a busybox initramfs (cpio newc, gzipped) for --initrd. Its default "
        "/init mounts /proc, /sys and /dev, loads the modules given, then switches to "
        "root=DEVICE from the kernel command line, or runs a shell on the console.",
    )
    p.add_argument("output", metavar="OUT.cpio.gz")
    p.add_argument("--busybox", metavar="FILE", help="a static riscv64 busybox")
    p.add_argument("--init", metavar="FILE", help="your own /init instead of the default")
    p.add_argument(
        "--modules",
        action="append",
        default=[],
        metavar="PATH",
        help="kernel modules (.ko, .ko.xz, .ko.gz) or a folder of them, loaded by the "
        "default /init in dependency order (repeatable)",
    )
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="SRC:DEST",
        help="put a host file or folder at DEST in the image (repeatable)",
    )
    p.set_defaults(func=cmd_initramfs)


def cmd_initramfs(args: argparse.Namespace) -> int:
    add = []
    for item in args.add:
        src, sep, dest = item.rpartition(":")
        if not sep or not src or not dest:
            raise ValueError(f"--add {item!r}: use SOURCE:DESTINATION")
        add.append((src, dest))
    if os.path.isdir(args.output):
        raise ValueError(f"{args.output}: is a folder")
    init = None
    if args.init is not None:
        with open(args.init, "rb") as f:
            init = f.read()
    fs = busybox_initramfs(args.busybox, init, args.modules, add)
    fs.write(args.output)
    return 0
