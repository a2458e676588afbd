"""virtio-net at register level with an in-memory backend, and the UDP and TAP backends."""

from __future__ import annotations

import os
import socket
import struct
import sys
from collections import deque
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "guest"))

from devguest import free_udp_ports  # noqa: E402

from rvemu import Machine
from rvemu.devices import virtio_mmio as V
from rvemu.devices.virtio_net import HDR_SIZE, MAX_PENDING, NetError, UdpBackend, VirtioNet

RAM = 0x8000_0000
RXQ = (RAM + 0x10000, RAM + 0x11000, RAM + 0x12000)
TXQ = (RAM + 0x13000, RAM + 0x14000, RAM + 0x15000)
QSIZE = 8


class Wire:
    """A backend that records sent frames and hands out queued ones."""

    def __init__(self, frames: tuple[bytes, ...] = ()) -> None:
        self.sent: list[bytes] = []
        self.inbox: deque[bytes] = deque(frames)

    def send(self, frame: bytes) -> None:
        self.sent.append(frame)

    def recv(self) -> bytes | None:
        return self.inbox.popleft() if self.inbox else None

    def pump(self) -> None:
        pass

    def fileno(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def setup():
    m = Machine(memory="1M")
    mem = m.board.memory
    wire = Wire()
    t = V.VirtioMmio(mem, VirtioNet(wire, mac="52:54:00:ab:cd:ef"))
    w = lambda off, v: t.write(off, 4, v)  # noqa: E731
    w(V.R_STATUS, 3)
    w(V.R_DRIVER_FEATURES_SEL, 1)
    w(V.R_DRIVER_FEATURES, 1)
    w(V.R_STATUS, 11)
    for q, (desc, avail, used) in enumerate((RXQ, TXQ)):
        w(V.R_QUEUE_SEL, q)
        w(V.R_QUEUE_NUM, QSIZE)
        w(V.R_QUEUE_DESC_LOW, desc)
        w(V.R_QUEUE_DRIVER_LOW, avail)
        w(V.R_QUEUE_DEVICE_LOW, used)
        w(V.R_QUEUE_READY, 1)
    w(V.R_STATUS, 15)
    return m, mem, t, wire


def add_buffer(mem, queue, slot: int, addr: int, length: int, write: bool) -> None:
    desc, avail, _ = queue
    mem.write(desc + 16 * slot, struct.pack("<QIHH", addr, length, 2 if write else 0, 0))
    idx = mem.read_int(avail + 2, 2)
    mem.write_int(avail + 4 + 2 * (idx % QSIZE), 2, slot)
    mem.write_int(avail + 2, 2, idx + 1)


def used(mem, queue) -> list[tuple[int, int]]:
    _, _, ring = queue
    n = mem.read_int(ring + 2, 2)
    return [
        (mem.read_int(ring + 4 + 8 * i, 4), mem.read_int(ring + 8 + 8 * i, 4)) for i in range(n)
    ]


def test_config_space_holds_mac_and_link_up():
    _, _, t, _ = setup()
    assert bytes(t.read(0x100 + i, 1) for i in range(6)) == bytes.fromhex("525400abcdef")
    assert t.read(0x106, 2) == 1  # VIRTIO_NET_S_LINK_UP
    t.write(V.R_DEVICE_FEATURES_SEL, 4, 0)
    assert t.read(V.R_DEVICE_FEATURES, 4) & (1 << 5)


def test_transmit_strips_the_header():
    _, mem, t, wire = setup()
    frame = bytes(range(60))
    mem.write(RAM + 0x20000, bytes(HDR_SIZE) + frame)
    add_buffer(mem, TXQ, 0, RAM + 0x20000, HDR_SIZE + len(frame), write=False)
    t.write(V.R_QUEUE_NOTIFY, 4, 1)
    assert wire.sent == [frame]
    assert used(mem, TXQ) == [(0, 0)] and t.interrupt_pending()


def test_receive_waits_for_buffers_and_truncates_to_fit():
    _, mem, t, wire = setup()
    wire.inbox.extend([b"A" * 100, b"B" * 2000])
    t.poll()
    assert used(mem, RXQ) == []  # no buffers yet: frames wait
    add_buffer(mem, RXQ, 0, RAM + 0x20000, 1526, write=True)
    add_buffer(mem, RXQ, 1, RAM + 0x21000, 200, write=True)
    t.write(V.R_QUEUE_NOTIFY, 4, 0)
    assert used(mem, RXQ) == [(0, HDR_SIZE + 100), (1, 200)]
    hdr = mem.read(RAM + 0x20000, HDR_SIZE)
    assert struct.unpack("<BBHHHHH", hdr)[-1] == 1  # num_buffers
    assert mem.read(RAM + 0x20000 + HDR_SIZE, 100) == b"A" * 100
    assert mem.read(RAM + 0x21000 + HDR_SIZE, 200 - HDR_SIZE) == b"B" * (200 - HDR_SIZE)
    assert t.interrupt_pending()


def test_a_flood_of_frames_is_bounded():
    _, mem, t, wire = setup()
    wire.inbox.extend([b"x" * 60] * (MAX_PENDING + 50))
    t.poll()
    assert len(t.device.pending) == MAX_PENDING and t.device.dropped == 50


def test_bad_net_options_are_reported():
    for spec in ("udp:1", "udp:a:b:c", "pigeon:1", "tap:", "udp:1:127.0.0.1:2,mac=zz"):
        with pytest.raises(NetError):
            VirtioNet.from_spec(spec)


def test_udp_backend_carries_frames_both_ways():
    pa, pb = free_udp_ports(2)
    a = UdpBackend(pa, "127.0.0.1", pb)
    b = UdpBackend(pb, "127.0.0.1", pa)
    try:
        a.send(b"frame-1")
        b.send(b"frame-2")
        import select

        assert select.select([b.fileno()], [], [], 2)[0] and b.recv() == b"frame-1"
        assert select.select([a.fileno()], [], [], 2)[0] and a.recv() == b"frame-2"
        assert a.recv() is None
    finally:
        a.close()
        b.close()


def test_udp_port_in_use_is_a_clean_error():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        with pytest.raises(NetError):
            Machine(net=f"udp:{port}:127.0.0.1:9")
    finally:
        s.close()


def test_tap_name_the_kernel_refuses_is_a_clean_error():
    with pytest.raises(NetError):
        VirtioNet.from_spec("tap:bad/name")


def test_tap_backend_carries_frames_both_ways():
    """Creates a transient TAP interface (root or CAP_NET_ADMIN), so it only runs when asked:
    RVEMU_TAP_TEST=1."""
    if os.environ.get("RVEMU_TAP_TEST") != "1":
        pytest.skip(
            "*** RVEMU_TAP_TEST=1 not set: TAP backend NOT tested with a real interface ***"
        )
    import select
    import subprocess
    import time

    from rvemu.devices.virtio_net import TapBackend

    tap = TapBackend("rvemutest0")
    host = None
    try:
        subprocess.run(["ip", "link", "set", "rvemutest0", "up"], check=True)
        host = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
        host.bind(("rvemutest0", 0))
        frame = b"\xff" * 6 + bytes.fromhex("525400000001") + b"\x88\xb5" + b"to host".ljust(46)
        tap.send(frame)
        assert select.select([host], [], [], 2)[0] and host.recv(2048) == frame
        reply = bytes.fromhex("525400000001") * 2 + b"\x88\xb5" + b"to guest".ljust(46)
        host.send(reply)
        got = None
        for _ in range(40):
            f = tap.recv()
            if f and f[12:14] == b"\x88\xb5":
                got = f
                break
            time.sleep(0.05)
        assert got == reply
    finally:
        tap.close()
        if host is not None:
            host.close()


def test_header_and_frame_in_separate_buffers_both_ways():
    """Drivers often give the 12-byte header a descriptor of its own: transmit skips exactly
    it, receive fills it (all zero but num_buffers = 1) and puts the frame in the next."""
    _, mem, t, wire = setup()
    hdr_tx, frame_tx = RAM + 0x20000, RAM + 0x21000
    mem.write(hdr_tx, b"\xaa" * HDR_SIZE)
    mem.write(frame_tx, b"frame")
    desc, avail, _ = TXQ
    mem.write(desc, struct.pack("<QIHH", hdr_tx, HDR_SIZE, V.DESC_F_NEXT, 1))
    mem.write(desc + 16, struct.pack("<QIHH", frame_tx, 5, 0, 0))
    mem.write_int(avail + 4, 2, 0)
    mem.write_int(avail + 2, 2, 1)
    t.write(V.R_QUEUE_NOTIFY, 4, 1)
    assert wire.sent == [b"frame"] and t.device.sent == 1

    hdr_rx, frame_rx = RAM + 0x22000, RAM + 0x23000
    mem.write(hdr_rx, b"\xee" * HDR_SIZE)
    desc, avail, _ = RXQ
    flags = V.DESC_F_WRITE | V.DESC_F_NEXT
    mem.write(desc, struct.pack("<QIHH", hdr_rx, HDR_SIZE, flags, 1))
    mem.write(desc + 16, struct.pack("<QIHH", frame_rx, 100, V.DESC_F_WRITE, 0))
    mem.write_int(avail + 4, 2, 0)
    mem.write_int(avail + 2, 2, 1)
    wire.inbox.append(b"reply")
    t.poll()
    assert mem.read(hdr_rx, HDR_SIZE) == struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 1)
    assert mem.read(frame_rx, 5) == b"reply" and used(mem, RXQ) == [(0, HDR_SIZE + 5)]
    assert t.device.received == 1


def test_a_frame_longer_than_64k_is_sent_cut_to_64k():
    from rvemu.devices.virtio_net import MAX_FRAME

    _, mem, t, wire = setup()
    add_buffer(mem, TXQ, 0, RAM + 0x30000, HDR_SIZE + MAX_FRAME + 100, write=False)
    t.write(V.R_QUEUE_NOTIFY, 4, 1)
    assert [len(f) for f in wire.sent] == [MAX_FRAME]


def test_net_options_at_their_edges():
    net = VirtioNet.from_spec("udp:0:127.0.0.1:65535,mac=52:54:00:aa:bb:cc")
    try:
        assert net.mac == bytes.fromhex("525400aabbcc") and net.backend.remote[1] == 65535
    finally:
        net.close()
    bad = ["udp:0:127.0.0.1:65536", "udp:65536:127.0.0.1:9", "udp:0:127.0.0.1:-1"]
    bad += ["udp:0 127.0.0.1 9", "TAP:x", "udp:0:127.0.0.1:9,MAC=52:54:00:aa:bb:cc"]
    for spec in bad:
        with pytest.raises(NetError):
            VirtioNet.from_spec(spec)
