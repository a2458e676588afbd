"""A small client of `rvemu serve`'s API, and `rvemu boot --api-sock PATH`.

Standard library only, and nothing of rvemu's machine (no numpy, no Numba): a client
process starts in a few tens of milliseconds and the server does the rest.
"""

from __future__ import annotations

import json
import os
import socket
import sys

EXIT_LIMIT = 124  # as rvemu boot: the run hit --max-instructions


class ApiError(Exception):
    """An answer other than 2xx: its status and the server's fault_message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """One keep-alive HTTP/1.1 connection to a server's Unix socket."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise OSError(f"{path}: cannot reach an rvemu server ({e.strerror or e})") from None
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, method: str, path: str, body: object = None) -> None:
        """Write a request (the answer is read by `answer`: requests may be pipelined)."""
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
        if data:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + data)

    def answer(self, sink=None) -> tuple[int, object]:  # noqa: ANN001
        """(status, JSON body or bytes or None) of the next answer. A chunked body is
        given to `sink(bytes)` chunk by chunk as it comes, if there is a sink."""
        line = self.file.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        status = int(line.split()[1])
        headers = {}
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.file.readline().split(b";")[0], 16)
                chunk = self.file.read(size) if size else b""
                self.file.readline()
                if not size:
                    break
                if sink is not None:
                    sink(chunk)
                else:
                    parts.append(chunk)
            data = b"".join(parts)
        else:
            data = self.file.read(int(headers.get("content-length", "0")))
        if headers.get("content-type") == "application/json":
            body = json.loads(data)
        else:
            body = data if data else None
        return status, body

    def request(self, method: str, path: str, body: object = None, sink=None) -> object:  # noqa: ANN001
        """Send a request and read its answer; ApiError for a status other than 2xx."""
        self.send(method, path, body)
        return check(*self.answer(sink))


def check(status: int, body: object) -> object:
    if status >= 300:
        message = body.get("fault_message") if isinstance(body, dict) else None
        raise ApiError(status, message or f"HTTP status {status}")
    return body


def boot(args) -> int:  # noqa: ANN001 (rvemu boot's arguments)
    """`rvemu boot --api-sock PATH KERNEL [options]`: create a machine with those options
    on the server, start it, copy its console to stdout, and exit with the guest's status
    as `rvemu boot` would."""
    for name in ("gdb", "trace", "save_at", "wait"):
        if getattr(args, name, None):
            option = "--" + name.replace("_", "-")
            print(f"rvemu: {option} cannot be used with --api-sock", file=sys.stderr)
            return 2
    config = {
        "kernel": os.path.abspath(args.elf),
        "memory": args.memory,
        "disk": absolute_disk(args.disk),
        "net": args.net,
        "bios": args.bios if args.bios in (None, "none", "default") else os.path.abspath(args.bios),
        "append": args.append,
        "initrd": args.initrd and os.path.abspath(args.initrd),
        "cpu": args.cpu,
        "clock": args.clock,
        "rng": args.rng,
        "max_instructions": args.max_instructions,
    }
    config = {k: v for k, v in config.items() if v not in (None, False)}
    mid = f"boot-{os.getpid()}-{os.urandom(4).hex()}"
    out = sys.stdout.buffer

    def write(data: bytes) -> None:
        out.write(data)
        out.flush()

    try:
        api = Api(args.api_sock)
    except OSError as e:
        print(f"rvemu: {e}", file=sys.stderr)
        return 1
    with api:
        try:
            # Three requests at once (HTTP pipelining): the server answers them in order.
            api.send("PUT", f"/machines/{mid}", config)
            api.send("PUT", f"/machines/{mid}/actions", {"action_type": "InstanceStart"})
            api.send("GET", f"/machines/{mid}/console")
            created = api.answer()
            started = api.answer()
            console = api.answer(write)
            for answer in (created, started, console):
                check(*answer)
            info = api.request("GET", f"/machines/{mid}")
            api.request("DELETE", f"/machines/{mid}")
        except ApiError as e:
            print(f"rvemu: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            try:
                with Api(args.api_sock, timeout=5) as other:
                    other.request("DELETE", f"/machines/{mid}")
            except (OSError, ApiError):
                pass
            return 130
        except (OSError, ValueError) as e:
            print(f"rvemu: {args.api_sock}: {e}", file=sys.stderr)
            return 1
    if args.stats:
        print(f"rvemu: instructions retired  {info['instructions']}", file=sys.stderr)
    return exit_status(info, args.max_instructions)


def exit_status(info: dict, limit: int | None) -> int:
    """The status `rvemu boot` exits with for a machine that ended this way."""
    reason, code = info.get("reason"), info.get("exit_code")
    if reason == "poweroff":
        return code
    if reason == "tohost":
        if code:
            print(f"rvemu: tohost reports failure {code}", file=sys.stderr)
        return code
    if reason == "limit":
        print(f"rvemu: stopped at the instruction limit ({limit})", file=sys.stderr)
        return EXIT_LIMIT
    if reason == "halt":
        print("rvemu: the guest waits for an interrupt that nothing can raise", file=sys.stderr)
        return 1
    if reason == "reset":
        print("rvemu: the guest asked for a reset, which rvemu does not do yet", file=sys.stderr)
        return 1
    print(f"rvemu: the machine {info.get('state')}: {reason}", file=sys.stderr)
    return 1


def absolute_disk(spec: str | None) -> str | None:
    """--disk FILE[,options]: the file made absolute (the server may run elsewhere)."""
    if spec is None:
        return None
    path, sep, rest = spec.partition(",")
    return os.path.abspath(path) + sep + rest
