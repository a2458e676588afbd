"""Device tests through guest programs (tests/guest/*.c) booted on rvemu, each compared with
the same image on QEMU's virt machine where qemu-system-riscv64 is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import (  # noqa: E402
    build,
    free_udp_ports,
    qemu,
    qemu_interactive,
    require_qemu,
    start_qemu,
)

from rvemu import Machine  # noqa: E402

LIMIT = 50_000_000


def boot(elf: Path, feed: bytes = b"", feed_after: bytes = b"", **options) -> tuple:
    m = Machine(**options)
    m.load(str(elf))
    if feed:
        # type the input once the guest says it is listening, as a person (or the QEMU
        # run below) would: the FIFO reset when the guest sets up the UART drops earlier bytes
        result = m.run(LIMIT)
        while result.reason == "limit" and feed_after not in m.console:
            result = m.run(LIMIT)
        m.uart.feed(feed)
    result = m.run(LIMIT)
    m.board.close()
    return result, m.console


# ------------------------------------------------------------------------- UART + PLIC


def test_uart_interrupts_through_the_plic():
    elf = build("uart_irq")
    result, out = boot(elf, feed=b"hello uart\n", feed_after=b"waiting for a line")
    assert result.reason == "poweroff" and result.exit_code == 0, out
    assert b"uart: this line was sent by THR-empty interrupts\r\n" in out
    assert b"uart: received 11 bytes: hello uart\r\n" in out
    assert b"uart: interrupts came from irq 10 only: yes\r\n" in out
    assert b"claim with nothing pending returns 0\r\n" in out


def test_uart_guest_same_output_on_qemu():
    require_qemu()
    elf = build("uart_irq")
    _, ours = boot(elf, feed=b"hello uart\n", feed_after=b"waiting for a line")
    theirs = qemu_interactive(elf, b"hello uart\n", b"waiting for a line")
    assert ours == theirs


# ------------------------------------------------------------------------- virtio-blk

SECTOR0 = b"sector zero says hello\n".ljust(512, b"\0")


def make_disk(path: Path) -> Path:
    path.write_bytes(SECTOR0 + bytes(512 * 7))
    return path


@pytest.mark.parametrize("ro", [False, True])
def test_virtio_blk_guest_reads_and_writes_the_image(tmp_path, ro):
    disk = make_disk(tmp_path / "disk.img")
    spec = f"{disk}{',ro' if ro else ''},serial=rvemu-disk-7"
    result, out = boot(build("virtio_blk"), disk=spec)
    assert result.reason == "poweroff" and result.exit_code == 0, out
    text = out.decode()
    assert "blk: disk at 0x10008000 irq 8" in text
    assert "blk: capacity in sectors 8" in text
    assert "blk: id 'rvemu-disk-7'" in text
    assert "blk: sector 0 says: sector zero says hello" in text
    assert "blk: used-buffer interrupt seen" in text
    assert f"blk: write sector 1 status {1 if ro else 0}" in text
    assert "blk: read past the end status 1" in text
    assert "blk: read of half a sector status 1" in text
    assert "blk: unknown request status 2" in text
    image = disk.read_bytes()
    assert image[:512] == SECTOR0
    written = b"written by the guest to sector 1".ljust(511, b"\0") + b"\n"
    assert image[512:1024] == (bytes(512) if ro else written)
    assert len(image) == 8 * 512


@pytest.mark.parametrize("ro", [False, True])
def test_virtio_blk_guest_same_output_and_image_on_qemu(tmp_path, ro):
    require_qemu()
    elf = build("virtio_blk")
    ours_disk, qemu_disk = make_disk(tmp_path / "a.img"), make_disk(tmp_path / "b.img")
    _, ours = boot(elf, disk=f"{ours_disk}{',ro' if ro else ''},serial=rvemu-disk-7")
    drive = f"file={qemu_disk},if=none,format=raw,id=d0" + (",readonly=on" if ro else "")
    _, theirs = qemu(
        elf, ["-drive", drive, "-device", "virtio-blk-device,drive=d0,serial=rvemu-disk-7"]
    )
    assert ours == theirs
    assert ours_disk.read_bytes() == qemu_disk.read_bytes()


# ------------------------------------------------------------------------- virtio-rng


def test_virtio_rng_guest_reads_entropy():
    result, out = boot(build("virtio_rng"), rng=True)
    assert result.exit_code == 0
    assert b"rng: got 32 and 32 bytes\r\nrng: the bytes look random\r\n" in out


def test_virtio_rng_guest_same_output_on_qemu():
    require_qemu()
    elf = build("virtio_rng")
    _, ours = boot(elf, rng=True)
    assert ours == qemu(elf, ["-device", "virtio-rng-device"])[1]


# ------------------------------------------------------------------------- goldfish RTC


@pytest.mark.parametrize("clock", ["instructions", "host"])
def test_rtc_guest_time_and_alarm_interrupt(clock):
    result, out = boot(build("rtc"), clock=clock)
    assert result.exit_code == 0, out
    assert out == (
        b"rtc: the time is after 2020\r\nrtc: time does not go back\r\n"
        b"rtc: alarm interrupt from irq 11\r\nrtc: the alarm was not early\r\n"
    )


def test_rtc_guest_same_output_on_qemu():
    require_qemu()
    elf = build("rtc")
    assert boot(elf)[1] == qemu(elf)[1]


# ------------------------------------------------------------------------- virtio-net


def net(port: int, peer: int, mac_end: int) -> str:
    return f"udp:{port}:127.0.0.1:{peer},mac=52:54:00:00:00:{mac_end:02x}"


PING = b"net: heard 'ping from 01'\r\n"
PONG = b"net: heard 'pong from 02'\r\n"


def test_two_rvemu_instances_exchange_frames_over_udp():
    elf = str(build("virtio_net"))
    pa, pb = free_udp_ports(2)
    a = Machine(net=net(pa, pb, 1))
    b = Machine(net=net(pb, pa, 2))
    a.load(elf)
    b.load(elf)
    ra = rb = None
    for _ in range(200):  # one process: run the two machines in turns
        if ra is None or ra.reason == "limit":
            ra = a.run(200_000)
        if rb is None or rb.reason == "limit":
            rb = b.run(200_000)
        if ra.reason != "limit" and rb.reason != "limit":
            break
    a.board.close()
    b.board.close()
    assert (ra.exit_code, rb.exit_code) == (0, 0), (a.console, b.console)
    assert a.console.endswith(PONG) and b.console.endswith(PING)
    assert a.board.net.sent >= 1 and b.board.net.received >= 1


@pytest.mark.parametrize("ours", [1, 2], ids=["rvemu-pings", "rvemu-answers"])
def test_rvemu_talks_to_qemu_over_udp(ours):
    """rvemu on one end, QEMU on the other: rvemu either pings (polling) or answers
    (asleep in wfi, woken by the frame arriving on the UDP socket)."""
    require_qemu()
    elf = build("virtio_net")
    pa, pb = free_udp_ports(2)
    theirs_mac = 3 - ours
    peer = start_qemu(
        elf,
        [
            "-netdev", f"socket,id=n0,udp=127.0.0.1:{pa},localaddr=127.0.0.1:{pb}",
            "-device", f"virtio-net-device,netdev=n0,mac=52:54:00:00:00:{theirs_mac:02x}",
        ],
    )  # fmt: skip
    try:
        m = Machine(net=net(pa, pb, ours))
        m.load(str(elf))
        result = m.run(2_000_000_000)
        m.board.close()
        theirs, _ = peer.communicate(timeout=60)
    finally:
        peer.kill()
    mine, other = (PONG, PING) if ours == 1 else (PING, PONG)
    assert result.exit_code == 0 and m.console.endswith(mine)
    assert theirs.endswith(other)
    first = f"net: device at 0x10008000, mac ends in 0x{ours}".encode()
    assert m.console.split(b"\r\n")[0] == first


def test_net_guest_host_program_peer():
    """A host program on the other end of the UDP link answers the guest's ping."""
    import socket

    elf = build("virtio_net")
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    (port,) = free_udp_ports(1)
    host.setblocking(False)
    m = Machine(net=net(port, host.getsockname()[1], 1))
    m.load(str(elf))
    frames = []
    result = None
    for _ in range(400):
        result = m.run(100_000)
        if result.reason != "limit":
            break
        try:
            frame, addr = host.recvfrom(2048)
        except BlockingIOError:
            continue
        frames.append(frame)
        pong = bytes(6) + bytes.fromhex("525400000002") + b"\x88\xb5" + b"pong from 99"
        host.sendto(pong.ljust(60, b"\0"), addr)
    m.board.close()
    host.close()
    assert result.exit_code == 0
    assert m.console.endswith(b"net: heard 'pong from 99'\r\n")
    frame = frames[0]
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("525400000001")
    assert frame[12:14] == b"\x88\xb5" and frame[14:26] == b"ping from 01"


# ------------------------------------------------------------------------- through the CLI

ROOT = Path(__file__).resolve().parent.parent


def rvemu_boot(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rvemu", "boot", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_cli_disk_writes_reach_the_file(tmp_path):
    disk = make_disk(tmp_path / "disk.img")
    proc = rvemu_boot(str(build("virtio_blk")), "--disk", f"{disk},serial=rvemu-disk-7")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert b"blk: done" in out
    assert disk.read_bytes()[512:544] == b"written by the guest to sector 1"


def test_cli_two_instances_exchange_frames_over_udp():
    elf = str(build("virtio_net"))
    pa, pb = free_udp_ports(2)
    a = rvemu_boot(elf, "--net", net(pa, pb, 1))
    b = rvemu_boot(elf, "--net", net(pb, pa, 2))
    try:
        out_a, err_a = a.communicate(timeout=300)
        out_b, err_b = b.communicate(timeout=300)
    finally:
        a.kill()
        b.kill()
    assert (a.returncode, b.returncode) == (0, 0), (err_a, err_b)
    assert out_a.endswith(PONG) and out_b.endswith(PING)
