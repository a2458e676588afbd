"""The network unikernel: the libos `net` stack in the http, udp-echo and fetch images.

Three ways in: rvemu's `--net user` (libslirp, as QEMU's -netdev user) reached from the
host with curl, Python sockets and ab; QEMU with the same image, the oracle for the bytes
curl gets; and an in-process Machine whose network is a peer played by Python
(tests/netpeer.py), for what a host socket cannot show: ARP, ICMP, fragments, lost
segments, a closed window, and 10,000 malformed frames.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from netpeer import (
    ACK,
    FIN,
    GUEST_IP,
    GUEST_MAC,
    PEER_IP,
    PEER_MAC,
    RST,
    STATIC_IP,
    SYN,
    Peer,
    arp,
    checksum,
    eth,
    icmp_echo,
    ipv4,
    tcp,
    tcp_frame,
    udp,
)
from test_apps import BUILD, QEMU, ROOT, build

from rvemu import Machine

DISK = ROOT / "apps" / "http" / "disk"
STARTUP_TIMEOUT = 120  # a cold compile cache makes rvemu's first boot slow
GUEST_LIMIT = 400_000_000  # instructions any single in-process exchange may take


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def images() -> Path:
    """build/unikernel/{http,udp-echo}.elf, and the test app build/tests/netapps/fetch.elf."""
    build("http")
    build("udp-echo")
    out = ROOT / "build" / "tests" / "netapps"
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["make", "-s", "-C", str(ROOT / "unikernel"), "APP=fetch",
           f"APPS_DIR={ROOT / 'tests' / 'netapps'}", f"OUT={out}"]  # fmt: skip
    with open(out / ".test-build.lock", "w") as lock:  # (pytest-xdist workers share it)
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return BUILD


class Server:
    """An emulator process serving a network image, reached through a forwarded port."""

    def __init__(self, cmd: list[str], port: int, ready: bytes) -> None:
        self.port = port
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        self.console = b""
        while ready not in self.console:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{cmd[0]} never said {ready!r}: {self.console!r} {self.stderr!r}")
            self.console += line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.stderr = self.proc.stderr.read()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def rvemu_cmd(elf: Path, net: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rvemu", "boot", str(elf), "--net", net, *extra]


def qemu_cmd(elf: Path, netdev: str, disk: Path) -> list[str]:
    return [
        QEMU,
        "-machine",
        "virt",
        "-bios",
        "none",
        "-m",
        "128M",
        "-nographic",
        "-monitor",
        "none",
        "-global",
        "virtio-mmio.force-legacy=false",
        "-netdev",
        f"user,id=n0,{netdev}",
        "-device",
        "virtio-net-device,netdev=n0",
        "-drive",
        f"file={disk},if=none,format=raw,id=d0,readonly=on",
        "-device",
        "virtio-blk-device,drive=d0",
        "-kernel",
        str(elf),
    ]


@pytest.fixture(scope="module")
def rvemu_http(images: Path):
    port = free_port()
    fwd = f"user,hostfwd=tcp:127.0.0.1:{port}-:80"
    server = Server(
        rvemu_cmd(images / "http.elf", fwd, "--disk", str(images / "http.img")), port, b"serving"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def qemu_http(images: Path):
    if shutil.which(QEMU) is None:
        pytest.skip(f"*** {QEMU} not installed: http NOT compared with QEMU ***")
    port = free_port()
    server = Server(
        qemu_cmd(images / "http.elf", f"hostfwd=tcp:127.0.0.1:{port}-:80", images / "http.img"),
        port,
        b"serving",
    )
    yield server
    server.stop()


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> tuple:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, body


def curl(port: int, path: str, *args: str) -> bytes:
    r = subprocess.run(
        ["curl", "-s", "-S", "-i", "--max-time", "30", *args, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---------------------------------------------------------------- through --net user


def test_curl_gets_the_same_bytes_from_rvemu_and_qemu(rvemu_http: Server, qemu_http: Server):
    if shutil.which("curl") is None:
        pytest.skip("*** curl not installed (apt install curl): pages NOT compared ***")
    for path, args in [
        ("/", ()),
        ("/style.css", ()),
        ("/docs/design.md", ()),
        ("/no/such/file", ()),
        ("/index.html", ("-I",)),
    ]:
        ours, theirs = curl(rvemu_http.port, path, *args), curl(qemu_http.port, path, *args)
        assert ours == theirs, path
    page = curl(rvemu_http.port, "/")
    head, body = page.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Type: text/html" in head
    assert body == (DISK / "index.html").read_bytes()
    assert curl(rvemu_http.port, "/docs/design.md").endswith((DISK / "docs/design.md").read_bytes())
    assert curl(rvemu_http.port, "/no/such/file").startswith(b"HTTP/1.1 404 Not Found")


def test_many_sequential_and_concurrent_connections(rvemu_http: Server):
    port = rvemu_http.port
    index = (DISK / "index.html").read_bytes()
    for _ in range(60):  # a new connection each time
        assert get(port, "/") == (200, index)

    def session(n: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(10):  # keep-alive: one connection, many requests
            path = ["/", "/style.css", "/docs/unikernel.md"][(n + i) % 3]
            status, body = get(port, path, conn)
            assert status == 200 and body == (
                index if path == "/" else (DISK / path[1:]).read_bytes()
            )
        conn.close()
        return n

    with ThreadPoolExecutor(24) as pool:
        assert sorted(pool.map(session, range(24))) == list(range(24))
        assert all(s == (200, index) for s in pool.map(lambda _: get(port, "/"), range(48)))
    status, stats = get(port, "/stats")
    counters = dict(re.findall(rb"(\w[\w ]*\w) +(\d+)", stats))
    assert status == 200 and int(counters[b"requests"]) >= 60 + 240 + 48
    assert rvemu_http.alive


def test_ab_load_on_loopback(rvemu_http: Server):
    if shutil.which("ab") is None:
        pytest.skip("*** ab not installed (apt install apache2-utils): NO load test ***")
    for keepalive in ([], ["-k"]):
        r = subprocess.run(
            [
                "ab",
                "-q",
                "-n",
                "1500",
                "-c",
                "12",
                "-s",
                "30",
                *keepalive,
                f"http://127.0.0.1:{rvemu_http.port}/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"Complete requests:\s+1500", r.stdout), r.stdout
        assert re.search(r"Failed requests:\s+0", r.stdout), r.stdout
        assert "Non-2xx" not in r.stdout
        print(re.search(r"Requests per second:.*", r.stdout).group(0), keepalive)
    assert rvemu_http.alive


def test_udp_echo_through_a_forwarded_port(images: Path):
    port = free_port(socket.SOCK_DGRAM)
    server = Server(
        rvemu_cmd(images / "udp-echo.elf", f"user,hostfwd=udp:127.0.0.1:{port}-:7"),
        port,
        b"listening",
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for size in (1, 100, 1000, 1472):
                data = bytes(random.Random(size).randrange(256) for _ in range(size))
                s.sendto(data, ("127.0.0.1", port))
                assert s.recvfrom(2048)[0] == data
    finally:
        server.stop()


@pytest.mark.parametrize("clock", ["instructions", "host"])
def test_active_open_to_a_host_server_both_ways_through_the_window(images: Path, clock: str):
    """fetch connects out through slirp to a host socket (10.0.2.2 is the host's loopback),
    sends 300 kB that the host reads only after a pause (the guest meets a full window and
    probes it), and reads 100 kB back; with TCP's timers on instructions and on host time."""
    reply = bytes(i * 7 % 251 for i in range(100_000))
    got = {}
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()

        def serve() -> None:
            conn, _ = srv.accept()
            with conn, conn.makefile("rb") as f:
                n = int(f.readline())
                time.sleep(0.5)
                got["data"] = f.read(n)
                conn.sendall(reply)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        port = srv.getsockname()[1]
        cmd = [
            sys.executable,
            "-m",
            "rvemu",
            "boot",
            str(ROOT / "build/tests/netapps/fetch.elf"),
            "--net",
            "user",
            "--append",
            f"fetch=10.0.2.2:{port} send=300000",
            "--clock",
            clock,
        ]
        r = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        thread.join(10)
    assert r.returncode == 0, r.stdout + r.stderr
    assert got["data"] == bytes(ord("a") + i % 26 for i in range(300_000))
    assert f"received 100000 bytes, crc32 {zlib.crc32(reply):08x}" in r.stdout


@pytest.mark.parametrize(
    "spec,message",
    [
        ("user,hostfwd=tcp::80x-:80", "hostfwd=tcp::80x-:80"),
        ("user,hostfwd=tcp::1-:0", "ports"),
        ("user,hostfwd=tcp:1.2.3.999:1-:2", "hostfwd="),
        ("user,restrict=on", "unknown option"),
        ("pigeon", "use user"),
    ],
)
def test_bad_net_user_options_are_refused_with_one_line(spec: str, message: str):
    from rvemu.devices.virtio_net import NetError, VirtioNet

    with pytest.raises(NetError) as e:
        VirtioNet.from_spec(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_forwarded_port_in_use_is_a_one_line_error(images: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        spec = f"user,hostfwd=tcp:127.0.0.1:{s.getsockname()[1]}-:80"
        r = subprocess.run(
            rvemu_cmd(images / "http.elf", spec),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("rvemu: --net user: cannot forward tcp 127.0.0.1:")


def test_slirp_answers_dhcp(images: Path):
    """The backend alone: a DHCPDISCOVER in, an offer of 10.0.2.15 from 10.0.2.2 out."""
    from rvemu.devices.slirp import SlirpBackend

    bootp = struct.pack("!BBBBIHH16s16s", 1, 1, 6, 0, 0x1234, 0, 0x8000, b"", b"")
    bootp = (bootp + GUEST_MAC).ljust(236, b"\0") + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 255])
    frame = eth(
        ipv4(udp(68, 67, bootp, "0.0.0.0", "255.255.255.255"), 17, "0.0.0.0", "255.255.255.255"),
        dst=b"\xff" * 6,
        src=GUEST_MAC,
    )
    backend = SlirpBackend()
    try:
        backend.send(frame)
        backend.pump()
        offer = backend.recv()
    finally:
        backend.close()
    assert offer is not None and offer[:6] == b"\xff" * 6
    ip_packet = offer[14:]
    assert ip_packet[12:16] == bytes([10, 0, 2, 2]) and ip_packet[9] == 17
    assert ip_packet[28 + 16 : 28 + 20] == bytes([10, 0, 2, 15])  # yiaddr


# ---------------------------------------------------------------- a peer played by Python


def boot_with_peer(images: Path, app: str = "http", append: str = STATIC_IP):
    peer = Peer()
    disk = str(images / "http.img") if app == "http" else None
    m = Machine(net=peer, disk=disk, append=append)
    m.load(str(images / f"{app}.sym.elf"))
    settle(m)
    return m, peer


def settle(m: Machine) -> None:
    """Runs until the guest waits for the network with no timer left."""
    result = m.run(max_instructions=GUEST_LIMIT)
    assert result.reason == "halt", (result, m.console[-300:])


def counters(m: Machine) -> dict[str, int]:
    names = [
        "rx_frames",
        "tx_frames",
        "rx_dropped",
        "tx_dropped",
        "tcp_accepted",
        "tcp_connected",
        "tcp_resets",
        "tcp_retransmits",
    ]
    raw = m.read_phys(m.symbols["net_counters"], 4 * len(names))
    return dict(zip(names, struct.unpack(f"<{len(names)}I", raw), strict=True))


def http_get(m: Machine, peer: Peer, port: int, path: str = "/", **client) -> bytes:
    c = peer.connect(port, f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n".encode(), **client)
    settle(m)
    assert c.state == "closed", c
    return bytes(c.received)


def test_static_address_from_the_command_line(images: Path):
    m, peer = boot_with_peer(images)
    assert b"serving http://10.0.2.15:80/" in m.console
    # it announced itself: a gratuitous ARP request for its own address
    assert ("arp", (1, GUEST_IP, GUEST_IP)) in peer.sent
    reply = http_get(m, peer, 40000)
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(
        (DISK / "index.html").read_bytes()
    )
    assert b"Connection: close" in reply


def test_arp_and_ping_are_answered_and_fragments_dropped(images: Path):
    m, peer = boot_with_peer(images, "udp-echo")
    peer.sent.clear()
    peer.inbox.append(arp(1, PEER_MAC, PEER_IP, b"\0" * 6, GUEST_IP))
    payload = bytes(range(200))
    peer.inbox.append(eth(ipv4(icmp_echo(7, 1, payload), 1)))
    peer.inbox.append(eth(ipv4(icmp_echo(7, 2, payload), 1, frag=0x2000)))  # more fragments
    peer.inbox.append(eth(ipv4(icmp_echo(7, 3, payload), 1, frag=0x0010)))  # a later fragment
    settle(m)
    assert ("arp", (2, GUEST_IP, PEER_IP)) in peer.sent
    replies = [body for kind, body in peer.sent if kind == "icmp"]
    assert len(replies) == 1
    assert replies[0][0] == 0 and replies[0][4:8] == struct.pack("!HH", 7, 1)
    assert replies[0][8:] == payload
    assert counters(m)["rx_dropped"] == 2


def test_udp_datagrams_are_echoed_and_bad_checksums_dropped(images: Path):
    m, peer = boot_with_peer(images, "udp-echo")
    good = udp(5000, 7, b"hello")
    bad = good[:6] + struct.pack("!H", struct.unpack("!H", good[6:8])[0] ^ 1) + good[8:]
    peer.inbox.extend([eth(ipv4(good, 17)), eth(ipv4(bad, 17))])
    settle(m)
    assert [w for k, w in peer.sent if k == "udp"] == [(7, 5000, b"hello")]


def test_a_closed_port_answers_with_rst(images: Path):
    m, peer = boot_with_peer(images)
    peer.inbox.append(tcp_frame(41000, 81, 5000, 0, SYN))
    peer.inbox.append(tcp_frame(41001, 80, 6000, 1234, ACK))  # no such connection
    settle(m)
    resets = [s for k, s in peer.sent if k == "tcp" and s.flags & RST]
    assert [(r.dport, r.flags, r.ack) for r in resets if r.dport == 41000] == [
        (41000, RST | ACK, 5001)
    ]
    assert [(r.dport, r.seq) for r in resets if r.dport == 41001] == [(41001, 1234)]


def test_a_lost_segment_is_sent_again(images: Path):
    m, peer = boot_with_peer(images)
    c = peer.connect(40001, b"GET /docs/design.md HTTP/1.1\r\nConnection: close\r\n\r\n", drop={2})
    settle(m)
    assert c.state == "closed"
    assert bytes(c.received).endswith((DISK / "docs/design.md").read_bytes())
    assert counters(m)["tcp_retransmits"] >= 1
    lost = [s for s in c.segments if s.data][1]
    assert [s.seq for s in c.segments if s.data].count(lost.seq) >= 2  # sent again


def test_a_closed_window_is_probed_until_it_opens(images: Path):
    m, peer = boot_with_peer(images)
    c = peer.connect(40002, b"GET /docs/design.md HTTP/1.1\r\nConnection: close\r\n\r\n", window=0)
    result = m.run(max_instructions=3_000_000)  # the guest probes the window, backing off
    assert result.reason == "limit"
    probes = [s for s in c.segments if s.data]
    assert len(probes) >= 3 and all(len(s.data) == 1 for s in probes)
    assert not c.received
    c.window = 65535
    peer._to_guest(c, ACK)  # a window update
    settle(m)
    assert c.state == "closed"
    assert bytes(c.received).endswith((DISK / "docs/design.md").read_bytes())
    assert max(len(s.data) for s in c.segments) <= 1460  # the MSS we offered


def test_the_window_the_peer_offers_is_respected(images: Path):
    m, peer = boot_with_peer(images)
    c = peer.connect(
        40003, b"GET /docs/design.md HTTP/1.1\r\nConnection: close\r\n\r\n", window=3000
    )
    settle(m)
    assert c.state == "closed"
    assert bytes(c.received).endswith((DISK / "docs/design.md").read_bytes())
    for s, end in zip(c.segments[1:], c.allowed[1:], strict=True):
        assert s.seq + len(s.data) <= end  # within the window the last ACK offered


def test_keep_alive_and_pipelined_requests_on_one_connection(images: Path):
    m, peer = boot_with_peer(images)
    req = b"GET /style.css HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n"
    c = peer.connect(40004, req)
    settle(m)
    text = bytes(c.received)
    assert c.state == "established"  # keep-alive: the server waits for more
    assert text.count(b"HTTP/1.1 ") == 3
    assert text.index(b"200 OK") < text.index(b"404 Not Found") < text.rindex(b"200 OK")
    assert text.endswith(b"\r\n\r\n")  # HEAD: headers only
    peer._to_guest(c, ACK | FIN)  # the client closes; the server follows
    settle(m)
    assert any(s.flags & FIN for s in c.segments)


def test_time_wait_answers_a_repeated_fin(images: Path):
    """The server closes first, so it waits in TIME_WAIT: the peer's FIN sent again (its
    ACK lost) is acknowledged again, not reset; after TIME_WAIT the pair is forgotten."""
    m, peer = boot_with_peer(images)
    c = peer.connect(40006, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", repeat_fin=True)
    settle(m)
    last_two = c.segments[-2:]
    assert [s.flags for s in last_two] == [ACK, ACK] and not c.repeat_fin
    assert last_two[0].ack == last_two[1].ack == c.snd_nxt  # our FIN, acknowledged twice
    assert not any(s.flags & RST for s in c.segments)
    peer.inbox.append(tcp_frame(40006, 80, c.snd_nxt - 1, c.rcv_nxt, ACK | FIN))
    settle(m)  # TIME_WAIT is over: no connection, so a reset
    assert c.segments[-1].flags & RST


def test_a_peer_that_never_closes_its_side_is_let_go(images: Path):
    m, peer = boot_with_peer(images)
    c = peer.connect(40005, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", closes=False)
    settle(m)  # FIN_WAIT_2 for a minute (of guest time), then the connection is dropped
    assert bytes(c.received).endswith((DISK / "index.html").read_bytes())
    assert len([s for s in c.segments if s.flags & FIN]) == 1  # sent once, acknowledged
    peer._to_guest(c, ACK)
    settle(m)
    assert c.segments[-1].flags & RST  # it is gone


def malformed_frames(n: int, seed: int = 14):
    """Truncated headers, wrong lengths and checksums, nonsense TCP flags and options,
    random bytes: frames that must not hurt the guest. Half have their checksums
    recomputed, so they get past the first check and into the deeper code."""
    rng = random.Random(seed)

    def src() -> str:
        return rng.choice(
            [
                PEER_IP,
                PEER_IP,
                f"10.0.2.{rng.randrange(256)}",
                ".".join(str(rng.randrange(256)) for _ in range(4)),
            ]
        )

    def tcp_nonsense() -> bytes:
        s = src()
        opts = bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 8, 20, 40])))
        seg = tcp(
            rng.randrange(65536),
            rng.choice([80, 80, 7, rng.randrange(65536)]),
            rng.getrandbits(32),
            rng.getrandbits(32),
            rng.randrange(256),
            bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 100, 1400]))),
            rng.randrange(65536),
            options=opts[:40],
            src=s,
        )
        if rng.random() < 0.3:  # a data offset that lies
            seg = seg[:12] + bytes([rng.randrange(256)]) + seg[13:]
        return eth(ipv4(seg, 6, src=s))

    def ip_nonsense() -> bytes:
        packet = bytearray(
            ipv4(
                bytes(rng.randrange(256) for _ in range(rng.randrange(60))),
                rng.choice([1, 6, 17, rng.randrange(256)]),
                src=src(),
                frag=rng.choice([0, 0x4000, 0x2000, rng.randrange(65536)]),
            )
        )
        field = rng.choice(["len", "ihl", "version", "none"])
        if field == "len":
            packet[2:4] = struct.pack("!H", rng.randrange(65536))
        elif field == "ihl":
            packet[0] = 0x40 | rng.randrange(16)
        elif field == "version":
            packet[0] = rng.randrange(256)
        if rng.random() < 0.5:
            packet[10:12] = b"\0\0"
            packet[10:12] = struct.pack(
                "!H", checksum(bytes(packet[: max(20, (packet[0] & 15) * 4)]))
            )
        return eth(bytes(packet))

    def udp_nonsense() -> bytes:
        s = src()
        seg = bytearray(
            udp(
                rng.randrange(65536),
                rng.choice([7, 68, rng.randrange(65536)]),
                bytes(rng.randrange(256) for _ in range(rng.randrange(600))),
                src=s,
            )
        )
        seg[4:6] = struct.pack("!H", rng.choice([0, 7, 8, len(seg) + 1, rng.randrange(65536)]))
        return eth(ipv4(bytes(seg), 17, src=s))

    def dhcp_nonsense() -> bytes:  # looks like a server's answer, options garbled
        body = bytearray(rng.randrange(256) for _ in range(rng.randrange(200, 400)))
        body[0], body[236:240] = 2, b"\x63\x82\x53\x63"
        return eth(ipv4(udp(67, 68, bytes(body)), 17))

    def arp_nonsense() -> bytes:
        frame = bytearray(arp(rng.choice([1, 2, 3]), PEER_MAC, src(), GUEST_MAC, GUEST_IP))
        for _ in range(rng.randrange(3)):
            frame[14 + rng.randrange(28)] = rng.randrange(256)
        return bytes(frame)

    def garbage() -> bytes:
        kind = rng.choice([0x0800, 0x0806, 0x86DD, rng.randrange(65536)])
        dst = rng.choice([GUEST_MAC, b"\xff" * 6, bytes(6)])
        return eth(bytes(rng.randrange(256) for _ in range(rng.randrange(1600))), kind, dst=dst)

    makers = [tcp_nonsense] * 4 + [ip_nonsense, udp_nonsense, dhcp_nonsense, arp_nonsense, garbage]
    for _ in range(n):
        frame = rng.choice(makers)()
        cut = rng.random()
        if cut < 0.15:  # truncated anywhere, headers included
            frame = frame[: rng.randrange(len(frame) + 1)]
        elif cut < 0.3 and len(frame) > 14:  # a few bytes flipped, checksums now wrong
            frame = bytearray(frame)
            for _ in range(rng.randrange(1, 5)):
                frame[rng.randrange(14, len(frame))] ^= 1 << rng.randrange(8)
            frame = bytes(frame)
        yield frame


def test_ten_thousand_malformed_frames_and_the_server_still_answers(images: Path):
    m, peer = boot_with_peer(images)
    index = (DISK / "index.html").read_bytes()
    assert http_get(m, peer, 40010).endswith(index)
    before = counters(m)
    frames = list(malformed_frames(10_000))
    for i in range(0, len(frames), 200):  # (the device holds at most 256 waiting frames)
        peer.inbox.extend(frames[i : i + 200])
        settle(m)  # (a panic would power the machine off instead)
    assert b"panic" not in m.console and m.board.net.dropped == 0
    stats = counters(m)
    seen = stats["rx_frames"] + stats["rx_dropped"] - before["rx_frames"] - before["rx_dropped"]
    assert seen >= 10_000  # (and the ARP replies the peer sent meanwhile)
    for port in range(40011, 40016):
        assert http_get(m, peer, port).endswith(index)


def test_only_apps_that_name_net_link_it(images: Path):
    build()
    apps = sorted(p.parent.name for p in (ROOT / "apps").glob("*/libs"))
    for app in apps:
        with open(BUILD / f"{app}.sym.elf", "rb") as f:
            names = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
        uses_net = "net" in (ROOT / "apps" / app / "libs").read_text().split()
        assert uses_net == ("net_start" in names), app
    with open(BUILD / "udp-echo.sym.elf", "rb") as f:
        names = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    assert "net_udp_send" in names and not {"net_tcp_listen", "net_tcp_send"} & names


def test_http_image_is_at_most_32_kib(images: Path):
    size = (images / "http.elf").stat().st_size
    print(f"http.elf: {size} bytes")
    assert size <= 32 * 1024
    out = build("http")
    assert re.search(r"^\s+net\s+\d+ B$", out, re.M), out  # the size table shows net's bytes


def test_bench_prints_size_first_response_and_requests_per_second(images: Path, tmp_path: Path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, "-m", "rvemu", "bench", "--only", "http", "--runs", "1",
         "--images", str(images), "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    net = json.loads(out.read_text())["network"]
    assert net["http_image_bytes"] == (images / "http.elf").stat().st_size
    assert net["first_response_ms"]["rvemu_process"] > net["first_response_ms"]["rvemu_api"] > 0
    assert "http.elf:" in r.stdout and "first HTTP response after" in r.stdout
    if shutil.which("ab"):
        assert net["requests_per_second"]["rvemu"]["keepalive"] > 0
        assert "requests/s" in r.stdout
    if shutil.which(QEMU):
        assert net["first_response_ms"]["qemu_process"] > 0
        assert net["requests_per_second"]["qemu"]["close"] > 0
