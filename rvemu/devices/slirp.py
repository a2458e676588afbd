"""`--net user`: QEMU's user-mode networking, from libslirp (the library QEMU itself uses,
Debian's libslirp0) through ctypes.

The guest sees QEMU's network: it is 10.0.2.15 (handed out by DHCP), the gateway and host
are 10.0.2.2, DNS is 10.0.2.3. Guest connections out become host sockets; `hostfwd` rules
forward a host port into the guest, as QEMU's
`-netdev user,hostfwd=tcp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT` does.

Structures and callbacks follow libslirp.h of libslirp 4.7 (SlirpConfig version 4). Slirp
wants to be polled: `pump()` runs one round of slirp_pollfds_fill / poll / slirp_pollfds_poll
and fires due timers. Between rounds the board waits on one file descriptor, an epoll set
holding every socket slirp polls plus a timerfd armed for slirp's next timeout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import socket
import time
from collections import deque
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_bool,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_ssize_t,
    c_uint8,
    c_uint32,
    c_void_p,
)
from dataclasses import dataclass

from .virtio_net import NetError

NETWORK, NETMASK = "10.0.2.0", "255.255.255.0"
HOST, DHCP_START, DNS = "10.0.2.2", "10.0.2.15", "10.0.2.3"
MAX_INBOX = 1024  # frames slirp produced that the device has not taken yet; more are dropped

SLIRP_POLL_IN, SLIRP_POLL_OUT, SLIRP_POLL_PRI, SLIRP_POLL_ERR, SLIRP_POLL_HUP = 1, 2, 4, 8, 16
# slirp's poll flags and epoll's, pairwise
POLL_FLAGS = (
    (SLIRP_POLL_IN, select.EPOLLIN),
    (SLIRP_POLL_OUT, select.EPOLLOUT),
    (SLIRP_POLL_PRI, select.EPOLLPRI),
    (SLIRP_POLL_ERR, select.EPOLLERR),
    (SLIRP_POLL_HUP, select.EPOLLHUP),
)
CLOCK_MONOTONIC, TFD_NONBLOCK, TFD_CLOEXEC = 1, 0o4000, 0o2000000


class in_addr(Structure):  # noqa: N801 (the C name)
    _fields_ = [("s_addr", c_uint32)]  # network byte order


in6_addr = c_uint32 * 4  # (a union with uint32_t members: 4-byte aligned)

SlirpWriteCb = CFUNCTYPE(c_ssize_t, c_void_p, c_size_t, c_void_p)
SlirpTimerCb = CFUNCTYPE(None, c_void_p)
SlirpAddPollCb = CFUNCTYPE(c_int, c_int, c_int, c_void_p)
SlirpGetREventsCb = CFUNCTYPE(c_int, c_int, c_void_p)
# the other SlirpCb members (the last argument is always the opaque pointer)
GuestErrorCb = CFUNCTYPE(None, c_char_p, c_void_p)
ClockCb = CFUNCTYPE(c_int64, c_void_p)
TimerNewCb = CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p)  # (SlirpTimerCb, cb_opaque)
TimerFreeCb = CFUNCTYPE(None, c_void_p, c_void_p)
TimerModCb = CFUNCTYPE(None, c_void_p, c_int64, c_void_p)  # (timer, expire time in ms)
PollFdCb = CFUNCTYPE(None, c_int, c_void_p)
NotifyCb = CFUNCTYPE(None, c_void_p)
InitCompletedCb = CFUNCTYPE(None, c_void_p, c_void_p)
TimerNewOpaqueCb = CFUNCTYPE(c_void_p, c_int, c_void_p, c_void_p)  # (SlirpTimerId, cb_opaque)


class SlirpCb(Structure):
    _fields_ = [
        ("send_packet", SlirpWriteCb),
        ("guest_error", GuestErrorCb),
        ("clock_get_ns", ClockCb),
        ("timer_new", TimerNewCb),
        ("timer_free", TimerFreeCb),
        ("timer_mod", TimerModCb),
        ("register_poll_fd", PollFdCb),
        ("unregister_poll_fd", PollFdCb),
        ("notify", NotifyCb),
        # SlirpConfig version 4
        ("init_completed", InitCompletedCb),
        ("timer_new_opaque", TimerNewOpaqueCb),
    ]


class SlirpConfig(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("restricted", c_int),
        ("in_enabled", c_bool),
        ("vnetwork", in_addr),
        ("vnetmask", in_addr),
        ("vhost", in_addr),
        ("in6_enabled", c_bool),
        ("vprefix_addr6", in6_addr),
        ("vprefix_len", c_uint8),
        ("vhost6", in6_addr),
        ("vhostname", c_char_p),
        ("tftp_server_name", c_char_p),
        ("tftp_path", c_char_p),
        ("bootfile", c_char_p),
        ("vdhcp_start", in_addr),
        ("vnameserver", in_addr),
        ("vnameserver6", in6_addr),
        ("vdnssearch", POINTER(c_char_p)),
        ("vdomainname", c_char_p),
        ("if_mtu", c_size_t),
        ("if_mru", c_size_t),
        ("disable_host_loopback", c_bool),
        ("enable_emu", c_bool),
        # version 2
        ("outbound_addr", c_void_p),
        ("outbound_addr6", c_void_p),
        # version 3
        ("disable_dns", c_bool),
        # version 4
        ("disable_dhcp", c_bool),
    ]


class itimerspec(Structure):  # noqa: N801 (the C name)
    _fields_ = [("interval", c_int64 * 2), ("value", c_int64 * 2)]  # two struct timespec


_lib = None


def libslirp() -> ctypes.CDLL:
    """The loaded library, with argument types declared (once per process)."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("slirp") or "libslirp.so.0")
        except OSError:
            raise NetError(
                "--net user needs libslirp (Debian: apt-get install libslirp0)"
            ) from None
        lib.slirp_new.restype = c_void_p
        lib.slirp_new.argtypes = [POINTER(SlirpConfig), POINTER(SlirpCb), c_void_p]
        lib.slirp_cleanup.argtypes = [c_void_p]
        lib.slirp_input.argtypes = [c_void_p, c_char_p, c_int]
        lib.slirp_pollfds_fill.argtypes = [c_void_p, POINTER(c_uint32), SlirpAddPollCb, c_void_p]
        lib.slirp_pollfds_poll.argtypes = [c_void_p, c_int, SlirpGetREventsCb, c_void_p]
        lib.slirp_add_hostfwd.argtypes = [c_void_p, c_int, in_addr, c_int, in_addr, c_int]
        lib.slirp_handle_timer.argtypes = [c_void_p, c_int, c_void_p]
        _lib = lib
    return _lib


_libc = ctypes.CDLL(None, use_errno=True)


def ipv4(text: str) -> in_addr:
    return in_addr(int.from_bytes(socket.inet_aton(text), "little"))


@dataclass
class Forward:
    """One hostfwd rule: host address and port to the guest's."""

    udp: bool
    host_addr: str
    host_port: int
    guest_addr: str
    guest_port: int


HOSTFWD = re.compile(r"(tcp|udp)?:([0-9.]*):(\d+)-([0-9.]*):(\d+)")


def parse_hostfwd(text: str) -> Forward:
    """QEMU's syntax: [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT."""
    m = HOSTFWD.fullmatch(text)
    bad = f"--net user: hostfwd={text}: use hostfwd=tcp::HOSTPORT-:GUESTPORT (or udp:...)"
    if not m:
        raise NetError(bad)
    proto, haddr, hport, gaddr, gport = m.groups()
    try:
        for addr in (haddr, gaddr):
            if addr:
                socket.inet_aton(addr)
    except OSError:
        raise NetError(bad) from None
    hport_n, gport_n = int(hport), int(gport)
    if not (0 <= hport_n < 65536 and 0 < gport_n < 65536):
        raise NetError(
            f"--net user: hostfwd={text}: ports are 0-65535 on the host, 1-65535 in the guest"
        )
    return Forward(proto == "udp", haddr or "0.0.0.0", hport_n, gaddr or DHCP_START, gport_n)


class SlirpBackend:
    """A virtio-net backend: frames from the guest go to slirp_input; frames slirp sends
    (send_packet) wait in `inbox` for the device."""

    def __init__(self, forwards: list[Forward] = ()) -> None:
        lib = libslirp()
        self.lib = lib
        self.inbox: deque[bytes] = deque()
        self.dropped = 0
        self.timers: dict[int, list] = {}  # id -> [call, expire ms or None]
        self._next_timer = 1
        self._polled: list[tuple[int, int]] = []  # this round's (fd, slirp flags)
        self._revents: dict[int, int] = {}
        self._registered: dict[int, int] = {}  # fd -> epoll mask
        self.epoll = select.epoll()
        self.timerfd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.timerfd < 0:
            raise NetError(f"--net user: timerfd_create: {os.strerror(ctypes.get_errno())}")
        self.epoll.register(self.timerfd, select.EPOLLIN)
        # ctypes callbacks must outlive the slirp instance: they are kept on self
        self._cb = SlirpCb(
            send_packet=SlirpWriteCb(self._send_packet),
            guest_error=GuestErrorCb(lambda msg, _: None),
            clock_get_ns=ClockCb(lambda _: time.monotonic_ns()),
            timer_new=TimerNewCb(self._timer_new),
            timer_free=TimerFreeCb(self._timer_free),
            timer_mod=TimerModCb(self._timer_mod),
            register_poll_fd=PollFdCb(lambda fd, _: None),
            unregister_poll_fd=PollFdCb(self._unregister),
            notify=NotifyCb(lambda _: None),
            timer_new_opaque=TimerNewOpaqueCb(self._timer_new_opaque),
        )
        self._add_poll = SlirpAddPollCb(self._add_poll_fd)
        self._get_revents = SlirpGetREventsCb(self._get_revents_of)
        cfg = SlirpConfig(
            version=4,
            in_enabled=True,
            vnetwork=ipv4(NETWORK),
            vnetmask=ipv4(NETMASK),
            vhost=ipv4(HOST),
            vdhcp_start=ipv4(DHCP_START),
            vnameserver=ipv4(DNS),
        )
        self.slirp = lib.slirp_new(byref(cfg), byref(self._cb), None)
        if not self.slirp:
            self.close()
            raise NetError("--net user: libslirp could not start")
        for f in forwards:
            err = lib.slirp_add_hostfwd(
                self.slirp, int(f.udp), ipv4(f.host_addr), f.host_port,
                ipv4(f.guest_addr), f.guest_port,
            )  # fmt: skip
            if err < 0:
                proto = "udp" if f.udp else "tcp"
                self.close()
                raise NetError(
                    f"--net user: cannot forward {proto} {f.host_addr}:{f.host_port} "
                    f"(in use, or not allowed)"
                )
        self._deepen_listen_backlogs()

    @classmethod
    def from_options(cls, options: list[str]) -> SlirpBackend:
        """The options after `user`: hostfwd=... (any number)."""
        forwards = []
        for opt in options:
            name, _, value = opt.partition("=")
            if name != "hostfwd":
                raise NetError(f"--net user: unknown option {opt!r} (have: hostfwd=)")
            forwards.append(parse_hostfwd(value))
        return cls(forwards)

    def _deepen_listen_backlogs(self) -> None:
        """slirp listens on forwarded TCP ports with a backlog of 1 (as QEMU does): while
        the guest runs, the host kernel drops further clients' SYNs and they wait a second
        or more to try again. A deeper queue on the host's side changes nothing the guest
        sees."""
        self._polled = []
        timeout = c_uint32(0)
        self.lib.slirp_pollfds_fill(self.slirp, byref(timeout), self._add_poll, None)
        for fd, _ in self._polled:
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as s:  # (a dup)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    s.listen(socket.SOMAXCONN)
        self._polled = []

    # --- callbacks from slirp (kept trivial: an exception here cannot reach the caller)
    def _send_packet(self, buf: int, length: int, _opaque) -> int:
        if len(self.inbox) < MAX_INBOX:
            self.inbox.append(ctypes.string_at(buf, length))
        else:
            self.dropped += 1
        return length

    def _new_timer(self, call) -> int:
        handle = self._next_timer
        self._next_timer += 1
        self.timers[handle] = [call, None]
        return handle

    def _timer_new(self, cb: int, cb_opaque: int, _opaque) -> int:
        fn = SlirpTimerCb(cb)
        return self._new_timer(lambda: fn(cb_opaque))

    def _timer_new_opaque(self, timer_id: int, cb_opaque: int, _opaque) -> int:
        return self._new_timer(lambda: self.lib.slirp_handle_timer(self.slirp, timer_id, cb_opaque))

    def _timer_free(self, handle: int, _opaque) -> None:
        self.timers.pop(handle, None)

    def _timer_mod(self, handle: int, expire_ms: int, _opaque) -> None:
        if handle in self.timers:
            self.timers[handle][1] = expire_ms

    def _unregister(self, fd: int, _opaque) -> None:
        if self._registered.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass

    def _add_poll_fd(self, fd: int, events: int, _opaque) -> int:
        self._polled.append((fd, events))
        return len(self._polled) - 1

    def _get_revents_of(self, index: int, _opaque) -> int:
        if not 0 <= index < len(self._polled):
            return 0
        return self._revents.get(self._polled[index][0], 0)

    # --- the backend interface
    def send(self, frame: bytes) -> None:
        if self.slirp:
            self.lib.slirp_input(self.slirp, frame, len(frame))

    def recv(self) -> bytes | None:
        return self.inbox.popleft() if self.inbox else None

    def pump(self) -> None:
        """One polling round: sockets that are ready and timers that are due make progress
        (and may send frames to the guest); then the wake-up for the next round is set."""
        if not self.slirp:
            return
        self._polled = []
        timeout = c_uint32(0xFFFF_FFFF)
        self.lib.slirp_pollfds_fill(self.slirp, byref(timeout), self._add_poll, None)
        wanted: dict[int, int] = {}
        for fd, events in self._polled:
            mask = 0
            for slirp_flag, epoll_flag in POLL_FLAGS:
                if events & slirp_flag:
                    mask |= epoll_flag
            wanted[fd] = wanted.get(fd, 0) | mask
        for fd, mask in wanted.items():
            if self._registered.get(fd) != mask:
                try:
                    self.epoll.modify(fd, mask)
                except FileNotFoundError:
                    self.epoll.register(fd, mask)
                self._registered[fd] = mask
        for fd in [fd for fd in self._registered if fd not in wanted]:
            self._unregister(fd, None)
        self._revents = {}
        for fd, mask in self.epoll.poll(0):
            flags = 0
            for slirp_flag, epoll_flag in POLL_FLAGS:
                if mask & epoll_flag:
                    flags |= slirp_flag
            self._revents[fd] = flags
        try:
            os.read(self.timerfd, 8)
        except BlockingIOError:
            pass
        self.lib.slirp_pollfds_poll(self.slirp, 0, self._get_revents, None)
        now_ms = time.monotonic_ns() // 1_000_000
        for handle, (call, expire) in list(self.timers.items()):
            if expire is not None and expire <= now_ms:
                self.timers[handle][1] = None
                call()
        wake_ms = timeout.value
        for _, expire in self.timers.values():
            if expire is not None:
                wake_ms = min(wake_ms, max(1, expire - now_ms))
        self._arm(wake_ms)

    def _arm(self, ms: int) -> None:
        """Make fileno() readable after `ms` milliseconds (never, for 0xFFFFFFFF)."""
        spec = itimerspec()
        if ms != 0xFFFF_FFFF:
            ms = max(ms, 1)
            spec.value[0], spec.value[1] = ms // 1000, (ms % 1000) * 1_000_000
        _libc.timerfd_settime(self.timerfd, 0, byref(spec), None)

    def fileno(self) -> int:
        return self.epoll.fileno()

    def close(self) -> None:
        """Closes slirp's sockets (forwarded ports included); safe to call twice, and on a
        backend whose __init__ failed part way."""
        if getattr(self, "slirp", None):
            self.lib.slirp_cleanup(self.slirp)
            self.slirp = None
        if getattr(self, "timerfd", -1) >= 0:
            os.close(self.timerfd)
            self.timerfd = -1
        if getattr(self, "epoll", None) is not None:
            self.epoll.close()

    def __del__(self) -> None:
        self.close()
