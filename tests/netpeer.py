"""A network for an in-process Machine, played by Python: the guest's peer at 10.0.2.2.

`Peer` is a virtio-net backend (rvemu.devices.virtio_net.Backend). It answers the frames
the guest sends the moment the device hands them over, as libslirp does, so in
deterministic time the guest never waits for it and its timers never fire early; it has
no file descriptor, so `Machine.run()` returns ("halt") once the guest is idle with no
timer left. Frames are built and parsed here from the RFCs, not from the guest's code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from test_dev_net import Wire

GUEST_IP, PEER_IP = "10.0.2.15", "10.0.2.2"
GUEST_MAC = bytes.fromhex("525400123456")
PEER_MAC = bytes.fromhex("525400abcdef")
STATIC_IP = f"ip={GUEST_IP}::{PEER_IP}:255.255.255.0"  # the guest's --append
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(payload: bytes, kind: int = 0x0800, dst: bytes = GUEST_MAC, src: bytes = PEER_MAC):
    return dst + src + struct.pack("!H", kind) + payload


def ipv4(
    payload: bytes,
    proto: int,
    src: str = PEER_IP,
    dst: str = GUEST_IP,
    ident: int = 1,
    frag: int = 0x4000,
) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, ip(src), ip(dst)
    )
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return ip(src) + ip(dst) + struct.pack("!BBH", 0, proto, length)


def tcp(
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    data: bytes = b"",
    window: int = 65535,
    options: bytes = b"",
    src: str = PEER_IP,
    dst: str = GUEST_IP,
) -> bytes:
    """A TCP segment with a correct checksum (options padded to whole words)."""
    options += b"\0" * (-len(options) % 4)
    head = (
        struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            (5 + len(options) // 4) << 4,
            flags,
            window,
            0,
            0,
        )
        + options
    )
    seg = head + data
    s = checksum(pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", s) + seg[18:]


def udp(sport: int, dport: int, data: bytes, src: str = PEER_IP, dst: str = GUEST_IP) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    s = checksum(pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", s) + seg[8:]


def icmp_echo(ident: int, seq: int, data: bytes) -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    s = checksum(head + data)
    return head[:2] + struct.pack("!H", s) + head[4:] + data


def arp(op: int, sender_mac: bytes, sender: str, target_mac: bytes, target: str) -> bytes:
    body = struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sender_mac, ip(sender), target_mac, ip(target)
    )
    dst = b"\xff" * 6 if op == 1 else target_mac
    return eth(body, 0x0806, dst=dst)


def tcp_frame(sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"", **kw):
    return eth(ipv4(tcp(sport, dport, seq, ack, flags, data, **kw), 6))


@dataclass
class Segment:
    """A TCP segment the guest sent, decoded."""

    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    data: bytes
    options: bytes
    checksum_ok: bool


def parse(frame: bytes) -> tuple[str, object]:
    """('arp', (op, sender ip, target ip)), ('tcp', Segment), ('udp', (sport, dport,
    data)), ('icmp', bytes) or ('other', frame); checksums are checked."""
    kind = struct.unpack("!H", frame[12:14])[0]
    if kind == 0x0806:
        op = struct.unpack("!H", frame[20:22])[0]
        return "arp", (op, ".".join(map(str, frame[28:32])), ".".join(map(str, frame[38:42])))
    if kind != 0x0800:
        return "other", frame
    p = frame[14:]
    hl = (p[0] & 15) * 4
    total = struct.unpack("!H", p[2:4])[0]
    assert checksum(p[:hl]) == 0, "guest sent a bad IPv4 header checksum"
    src, dst = ".".join(map(str, p[12:16])), ".".join(map(str, p[16:20]))
    body = p[hl:total]
    if p[9] == 6:
        sport, dport, seq, ack, off, flags, window = struct.unpack("!HHIIBBH", body[:16])
        hlen = (off >> 4) * 4
        ok = checksum(pseudo(src, dst, 6, len(body)) + body) == 0
        return "tcp", Segment(sport, dport, seq, ack, flags, window, body[hlen:], body[20:hlen], ok)
    if p[9] == 17:
        sport, dport, length, s = struct.unpack("!HHHH", body[:8])
        assert s == 0 or checksum(pseudo(src, dst, 17, length) + body[:length]) == 0
        return "udp", (sport, dport, body[8:length])
    if p[9] == 1:
        assert checksum(body) == 0, "guest sent a bad ICMP checksum"
        return "icmp", body
    return "other", frame


@dataclass
class Client:
    """One TCP connection the peer opens to the guest: sends `request` once established,
    acknowledges everything, answers the guest's FIN with its own (unless not `closes`).
    `drop` names data
    segments (by count, from 1) to lose the first time; `window` can be changed."""

    port: int
    dport: int
    request: bytes
    iss: int = 1000
    window: int = 65535
    closes: bool = True  # answer the guest's FIN with ours (else only ACK it, twice)
    repeat_fin: bool = False  # send our FIN again once the guest has acknowledged it
    drop: set[int] = field(default_factory=set)
    received: bytearray = field(default_factory=bytearray)
    state: str = "syn-sent"
    rcv_nxt: int = 0
    snd_nxt: int = 0
    data_segments: int = 0
    segments: list[Segment] = field(default_factory=list)
    allowed: list[int] = field(default_factory=list)  # per segment: the window's end then


class Peer(Wire):
    """The backend: frames for the guest wait in `inbox`; what the guest sends is answered
    (ARP for 10.0.2.2, the Clients' TCP) and kept in `sent`, parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, object]] = []
        self.clients: dict[int, Client] = {}
        self.frames_from_guest = 0

    # --- the Backend interface
    def send(self, frame: bytes) -> None:
        self.frames_from_guest += 1
        kind, what = parse(frame)
        self.sent.append((kind, what))
        if kind == "arp" and what[0] == 1 and what[2] == PEER_IP:
            self.inbox.append(arp(2, PEER_MAC, PEER_IP, GUEST_MAC, what[1]))
        elif kind == "tcp" and what.dport in self.clients:
            self._client_segment(self.clients[what.dport], what)

    # --- TCP clients
    def connect(self, port: int, request: bytes, dport: int = 80, **kw) -> Client:
        c = Client(port, dport, request, **kw)
        c.snd_nxt = c.iss + 1
        self.clients[port] = c
        mss = struct.pack("!BBH", 2, 4, 1460)
        self.inbox.append(tcp_frame(port, dport, c.iss, 0, SYN, window=c.window, options=mss))
        return c

    def _to_guest(self, c: Client, flags: int, data: bytes = b"") -> None:
        frame = tcp_frame(c.port, c.dport, c.snd_nxt, c.rcv_nxt, flags, data, window=c.window)
        self.inbox.append(frame)
        c.snd_nxt += len(data) + (1 if flags & (SYN | FIN) else 0)

    def _client_segment(self, c: Client, s: Segment) -> None:
        c.segments.append(s)
        c.allowed.append(c.rcv_nxt + c.window)
        assert s.checksum_ok, "guest sent a bad TCP checksum"
        if s.flags & RST:
            c.state = "reset"
            return
        if c.state == "closed" and c.repeat_fin and s.ack == c.snd_nxt:
            c.repeat_fin = False  # as if the guest's ACK had been lost
            self.inbox.append(tcp_frame(c.port, c.dport, c.snd_nxt - 1, c.rcv_nxt, ACK | FIN))
            return
        if c.state == "syn-sent":
            if s.flags & (SYN | ACK) == SYN | ACK and s.ack == c.iss + 1:
                c.rcv_nxt = s.seq + 1
                c.state = "established"
                self._to_guest(c, ACK | PSH if c.request else ACK, c.request)
            return
        if s.data:
            c.data_segments += 1
            if c.data_segments in c.drop:
                c.drop.discard(c.data_segments)
                return  # lost: the guest must send it again
            if s.seq == c.rcv_nxt and c.window:
                take = s.data[: c.window]
                c.received += take
                c.rcv_nxt += len(take)
        fin_now = s.flags & FIN and s.seq + len(s.data) == c.rcv_nxt
        if fin_now:
            c.rcv_nxt += 1
        if s.data or fin_now:
            if fin_now and c.state == "established" and c.closes:
                self._to_guest(c, ACK | FIN)  # our FIN goes with the ACK
                c.state = "closed"
            else:
                self._to_guest(c, ACK)
                if fin_now:
                    self._to_guest(c, ACK)  # and a window update, in FIN_WAIT_2
