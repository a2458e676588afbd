"""virtio-net (virtio spec 1.2, 5.1) with three host backends:

- `user[,hostfwd=tcp::HOSTPORT-:GUESTPORT]...`: QEMU's user-mode networking (a NAT with a
  DHCP server, no root needed), from libslirp: see slirp.py;
- `udp:LOCALPORT:REMOTEHOST:REMOTEPORT`: every Ethernet frame is one UDP datagram, the
  format of QEMU's `-netdev socket,udp=...,localaddr=...` (net/socket.c), so two rvemu
  instances, or rvemu and QEMU, or rvemu and any host program, share a link without root;
- `tap:NAME`: a Linux TAP interface (needs CAP_NET_ADMIN or a TAP device owned by the user).

Without VIRTIO_NET_F_MRG_RXBUF every received frame goes into one descriptor chain; a
frame larger than the chain is truncated to fit (the guest offered too small a buffer).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from collections import deque
from typing import Protocol

from .virtio_mmio import VirtioDevice, VirtioMmio

DEVICE_ID = 1
QUEUE_SIZE = 256
RX, TX = 0, 1
F_MAC, F_STATUS = 1 << 5, 1 << 16
S_LINK_UP = 1
HDR_SIZE = 12  # struct virtio_net_hdr with num_buffers (always so with VERSION_1)
MAX_FRAME = 65536
MAX_PENDING = 256  # received frames waiting for guest buffers; more are dropped
DEFAULT_MAC = "52:54:00:12:34:56"  # QEMU's first NIC

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


class NetError(ValueError):
    """The --net option cannot be used (message is one line for the user)."""


class Backend(Protocol):
    """Where frames go: `send` takes one the guest sent, `recv` returns one for the guest
    (None when there is none), `pump` lets the backend make progress before the device
    calls `recv`, `fileno` is a descriptor to wait on for more (None: nothing to wait on)."""

    def send(self, frame: bytes) -> None: ...
    def recv(self) -> bytes | None: ...
    def pump(self) -> None: ...
    def fileno(self) -> int | None: ...
    def close(self) -> None: ...


class UdpBackend:
    def __init__(self, local_port: int, remote_host: str, remote_port: int) -> None:
        try:
            self.remote = (socket.gethostbyname(remote_host), remote_port)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            bind_host = "127.0.0.1" if self.remote[0].startswith("127.") else ""
            self.sock.bind((bind_host, local_port))
        except (OSError, OverflowError) as e:  # (OverflowError: a port beyond 65535)
            raise NetError(f"--net udp:{local_port}:{remote_host}:{remote_port}: {e}") from None
        self.sock.setblocking(False)

    def send(self, frame: bytes) -> None:
        try:
            self.sock.sendto(frame, self.remote)
        except OSError:
            pass  # like a cable: a frame nobody receives is lost

    def recv(self) -> bytes | None:
        try:
            return self.sock.recv(MAX_FRAME)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return None  # e.g. ICMP port unreachable reported on the socket

    def pump(self) -> None:
        """(Frames wait in the socket: nothing to do before recv.)"""

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class TapBackend:
    def __init__(self, name: str) -> None:
        self.fd = -1
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        except OSError as e:
            raise NetError(f"--net tap:{name}: cannot open /dev/net/tun: {e.strerror}") from None
        try:
            ifr = struct.pack("16sH22x", name.encode()[:15], IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(self.fd, TUNSETIFF, ifr)
        except OSError as e:
            self.close()
            raise NetError(
                f"--net tap:{name}: cannot attach: {e.strerror} "
                "(create it with `ip tuntap add dev NAME mode tap user $USER`)"
            ) from None

    def send(self, frame: bytes) -> None:
        try:
            os.write(self.fd, frame)
        except OSError:
            pass

    def recv(self) -> bytes | None:
        try:
            return os.read(self.fd, MAX_FRAME)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return None

    def pump(self) -> None:
        """(Frames wait in the device: nothing to do before recv.)"""

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise NetError(f"bad MAC address {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise NetError(f"bad MAC address {text!r}") from None


class VirtioNet(VirtioDevice):
    device_id = DEVICE_ID
    queue_sizes = (QUEUE_SIZE, QUEUE_SIZE)
    features = F_MAC | F_STATUS
    HOST_SIDE = ("backend",)  # not in a snapshot: a restored machine attaches its own

    def __init__(self, backend: Backend, mac: str = DEFAULT_MAC) -> None:
        self.backend = backend
        self.mac = parse_mac(mac)
        self.pending: deque[bytes] = deque()
        self.sent = 0
        self.received = 0
        self.dropped = 0

    @classmethod
    def from_spec(cls, spec: str | Backend) -> VirtioNet:
        """'user[,hostfwd=...]...', 'udp:LPORT:HOST:RPORT' or 'tap:NAME', then [,mac=..];
        or a backend object, for scripts and tests that play the network themselves."""
        if not isinstance(spec, str):
            return cls(spec)
        main, *opts = spec.split(",")
        mac = DEFAULT_MAC
        backend_opts = []
        for opt in opts:
            if opt.startswith("mac="):
                mac = opt[4:]
            elif main == "user":
                backend_opts.append(opt)
            else:
                raise NetError(f"--net {spec}: unknown option {opt!r}")
        parse_mac(mac)  # a bad MAC is reported before a backend opens anything
        kind, _, rest = main.partition(":")
        if main == "user":
            from .slirp import SlirpBackend

            backend = SlirpBackend.from_options(backend_opts)
        elif kind == "udp":
            try:
                lport, host, rport = rest.split(":")
                if not 0 <= int(lport) <= 0xFFFF or not 0 <= int(rport) <= 0xFFFF:
                    raise ValueError
                backend = UdpBackend(int(lport), host, int(rport))
            except ValueError:
                raise NetError(f"--net {spec}: use udp:LOCALPORT:REMOTEHOST:REMOTEPORT") from None
        elif kind == "tap" and rest:
            backend = TapBackend(rest)
        else:
            raise NetError(
                f"--net {spec}: use user[,hostfwd=tcp::HOSTPORT-:GUESTPORT], tap:NAME "
                "or udp:LOCALPORT:REMOTEHOST:REMOTEPORT"
            )
        return cls(backend, mac)

    def config(self) -> bytes:
        # struct virtio_net_config: mac, status, max_virtqueue_pairs
        return self.mac + struct.pack("<HH", S_LINK_UP, 1)

    def reset(self) -> None:
        self.pending.clear()

    def queue_notify(self, transport: VirtioMmio, index: int) -> None:
        if index == TX:
            q, mem = transport.queues[TX], transport.mem
            sent = False
            while True:
                chain = q.pop(mem)
                if chain is None:
                    break
                data = chain.read(mem, skip=HDR_SIZE, limit=MAX_FRAME)
                if data:
                    self.backend.send(data)
                    self.sent += 1
                q.push(mem, chain, 0)
                sent = True
            if sent:
                transport.used(TX)
        else:
            self._deliver(transport)

    def poll(self, transport: VirtioMmio) -> None:
        self.backend.pump()
        while True:
            frame = self.backend.recv()
            if frame is None:
                break
            if len(self.pending) >= MAX_PENDING:
                self.dropped += 1
            else:
                self.pending.append(frame)
        self._deliver(transport)

    def _deliver(self, transport: VirtioMmio) -> None:
        q, mem = transport.queues[RX], transport.mem
        delivered = False
        while self.pending and q.ready and q.has_available(mem):
            chain = q.pop(mem)
            if chain is None:
                break
            frame = self.pending.popleft()
            hdr = struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 1)  # num_buffers = 1
            written = chain.write(mem, hdr + frame)
            q.push(mem, chain, written)
            self.received += 1
            delivered = True
        if delivered:
            transport.used(RX)

    def fileno(self) -> int | None:
        return self.backend.fileno()

    def close(self) -> None:
        self.backend.close()
