"""`rvemu serve --api-sock PATH`: many machines behind one API, in Firecracker's style.

HTTP/1.1 with JSON bodies over a Unix socket (`curl --unix-socket PATH`). Firecracker
serves one microVM per process (PUT /boot-source, PUT /machine-config, PUT /actions); this
server holds many, so each has a path of its own:

    PUT    /machines/{id}           create: {"kernel": FILE} or {"snapshot": FILE}, and
                                    rvemu boot's options: memory, disk, net, bios, append,
                                    initrd, cpu, clock, rng, max_instructions
    PUT    /machines/{id}/actions   {"action_type": "InstanceStart" | "Pause" | "Resume"
                                    | "Stop"}
    GET    /machines/{id}/console   the console output, streamed (chunked) until the
                                    machine ends; ?follow=false: what there is now
    GET    /machines/{id}           {"id", "state", "exit_code", "reason", ...}
    PUT    /machines/{id}/snapshot  {"path": FILE}: a snapshot file (`rvemu resume FILE`)
    DELETE /machines/{id}           stop it if it runs, and forget it
    GET    /machines                every machine's status
    GET    /stats                   resident memory: the server's, and each worker's with
                                    its machines' guest RAM

A machine's state is "created", "running", "paused", "exited" (the guest ended the run:
power-off, tohost, the instruction limit, a halt; `reason` and `exit_code` say how),
"stopped" (by Stop) or "failed" (the host failed it: `reason` says why). PUTs answer 204;
errors a 4xx (5xx for the server's own) with {"fault_message": ...}, as Firecracker does.
Relative paths are taken from the server's working directory.

Machines run in a few worker processes (rvemu/serveworker.py), forked once the compiled
core is loaded; a machine stays in the worker it was created in. This process only
speaks HTTP and passes messages: it never runs a guest.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pickle
import re
import signal
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

from .serveworker import FRAME, MACHINE_OPTIONS

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_BODY = 1 << 20
CONSOLE_KEEP = 4 << 20  # console bytes kept per machine (the oldest are dropped past this)
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENDED = ("exited", "stopped", "failed")

# The create request's fields: name -> accepted JSON types
FIELDS: dict[str, tuple[type, ...]] = {
    "kernel": (str,),
    "snapshot": (str,),
    "memory": (str, int),
    "disk": (str,),
    "net": (str,),
    "bios": (str,),
    "append": (str,),
    "initrd": (str,),
    "cpu": (str,),
    "clock": (str,),
    "rng": (bool,),
    "max_instructions": (int,),
}
PATH_FIELDS = ("kernel", "snapshot", "initrd")
ACTIONS = {"InstanceStart": "start", "Pause": "pause", "Resume": "resume", "Stop": "stop"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# --- workers
class WorkerProcess:
    """The server's end of a worker: commands out, replies and events in."""

    def __init__(self, server: Server, pid: int, sock: socket.socket) -> None:
        self.server = server
        self.pid = pid
        self.sock = sock
        self.pending: dict[int, asyncio.Future] = {}
        self.machines: set[str] = set()
        self.alive = True
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(sock=self.sock)
        asyncio.get_running_loop().create_task(self._read())

    async def call(self, op: str, mid: str | None, args: object = None) -> object:
        """Send a command; its answer, or HttpError with the worker's status."""
        if not self.alive:
            raise HttpError(503, "the machine's worker process has exited")
        req = next(self.server.requests)
        future = asyncio.get_running_loop().create_future()
        self.pending[req] = future
        data = pickle.dumps((op, req, mid, args), pickle.HIGHEST_PROTOCOL)
        self.writer.write(FRAME.pack(len(data)) + data)
        status, result = await future
        if status != 200:
            raise HttpError(status, result)
        return result

    async def _read(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(FRAME.size)
                body = await self.reader.readexactly(FRAME.unpack(head)[0])
                kind, *rest = pickle.loads(body)
                if kind == "reply":
                    req, status, result = rest
                    future = self.pending.pop(req, None)
                    if future is not None and not future.done():
                        future.set_result((status, result))
                elif kind == "console":
                    record = self.server.machines.get(rest[0])
                    if record is not None:
                        record.output(rest[1])
                elif kind == "state":
                    record = self.server.machines.get(rest[0])
                    if record is not None:
                        record.update(rest[1])
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        self.server.worker_died(self)


class Record:
    """What the server knows of a machine: where it lives, its state, its console."""

    def __init__(self, mid: str, worker: WorkerProcess, config: dict) -> None:
        self.mid = mid
        self.worker = worker
        self.config = config
        self.state = "created"
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.instructions = 0
        self.console = bytearray()
        self.dropped = 0  # console bytes no longer kept (before console[0])
        self.created = time.time()
        self._waiters: list[asyncio.Future] = []

    def info(self) -> dict:
        return {
            "id": self.mid,
            "state": self.state,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "instructions": self.instructions,
            "console_bytes": self.dropped + len(self.console),
            "worker": self.worker.pid,
            "kernel": self.config.get("kernel"),
            "snapshot": self.config.get("snapshot"),
            "memory": self.config.get("memory"),
            **{k: v for k, v in self.config["options"].items() if v is not None},
        }

    def output(self, data: bytes) -> None:
        self.console += data
        if len(self.console) > CONSOLE_KEEP:
            cut = len(self.console) - CONSOLE_KEEP
            del self.console[:cut]
            self.dropped += cut
        self._wake()

    def update(self, info: dict) -> None:
        self.state = info["state"]
        self.instructions = info["instructions"]
        if info["state"] in ENDED:
            self.exit_code, self.reason = info["exit_code"], info["reason"]
        self._wake()

    def _wake(self) -> None:
        for future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()

    async def changed(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        await future


# --- the server
class Server:
    def __init__(self, path: str, workers: int, listener: socket.socket) -> None:
        self.path = path
        self.listener = listener  # (bound before the workers are forked: they close it)
        self.count = workers
        self.workers: list[WorkerProcess] = []
        self.machines: dict[str, Record] = {}
        self.requests = itertools.count(1)
        self.closing = False

    def start_workers(self) -> None:
        """Fork the workers (before the event loop starts: no thread, no connection yet)."""
        for _ in range(self.count):
            self.workers.append(self._fork())

    def _fork(self) -> WorkerProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                ours.close()
                if self.workers:  # (forked from the running server: leave its event loop's)
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                keep = theirs.fileno()
                os.closerange(3, keep)  # (the API socket, clients, other workers' ends)
                os.closerange(keep + 1, 1 << 16)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the server stops workers)
                from .serveworker import main

                main(theirs)
            finally:
                os._exit(1)
        theirs.close()
        return WorkerProcess(self, pid, ours)

    def worker_died(self, worker: WorkerProcess) -> None:
        if not worker.alive:
            return
        worker.alive = False
        try:
            os.waitpid(worker.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        for future in worker.pending.values():
            if not future.done():
                future.set_result((503, "the machine's worker process exited"))
        for mid in worker.machines:
            record = self.machines.get(mid)
            if record is not None and record.state not in ENDED:
                record.update(
                    {
                        "state": "failed",
                        "exit_code": None,
                        "reason": "failed: its worker process exited",
                        "instructions": record.instructions,
                    }
                )
        if self.closing:
            return
        print(f"rvemu serve: worker {worker.pid} exited; starting another", file=sys.stderr)
        index = self.workers.index(worker)
        replacement = self._fork()
        self.workers[index] = replacement
        asyncio.get_running_loop().create_task(replacement.connect())

    def pick_worker(self) -> WorkerProcess:
        """The worker with the fewest running machines, then the fewest machines."""
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise HttpError(503, "no worker process is running")

        def load(w: WorkerProcess) -> tuple[int, int]:
            running = sum(
                1 for mid in w.machines if self.machines[mid].state in ("running", "created")
            )
            return running, len(w.machines)

        return min(alive, key=load)

    # --- requests
    async def handle(self, method: str, target: str, body: bytes, writer) -> tuple:  # noqa: ANN001
        """(status, JSON-able body or None); or None when the answer was streamed."""
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        if parts == ["machines"]:
            allow(method, "GET")
            return 200, [r.info() for r in self.machines.values()]
        if parts == ["stats"]:
            allow(method, "GET")
            return 200, await self.stats()
        if parts == []:
            allow(method, "GET")
            return 200, {"app": "rvemu", "workers": [w.pid for w in self.workers]}
        if len(parts) < 2 or parts[0] != "machines" or len(parts) > 3:
            raise HttpError(404, f"no such resource: {url.path}")
        mid = parts[1]
        if not ID.fullmatch(mid):
            raise HttpError(400, f"machine ids are 1-64 of A-Z a-z 0-9 _ . - , not {mid!r}")
        if len(parts) == 2:
            if method == "PUT":
                await self.create(mid, json_body(body))
                return 204, None
            if method == "GET":
                return 200, self.record(mid).info()
            if method == "DELETE":
                await self.delete(mid)
                return 204, None
            raise HttpError(405, f"{method} /machines/{{id}}: use PUT, GET or DELETE")
        what = parts[2]
        if what == "actions":
            allow(method, "PUT")
            await self.action(mid, json_body(body))
            return 204, None
        if what == "snapshot":
            allow(method, "PUT")
            await self.snapshot(mid, json_body(body))
            return 204, None
        if what == "console":
            allow(method, "GET")
            record = self.record(mid)
            follow = query.get("follow", ["true"])[-1].lower() not in ("0", "false", "no")
            if not follow:
                return 200, bytes(record.console)
            await stream_console(record, writer)
            return None
        raise HttpError(404, f"no such resource: {url.path}")

    def record(self, mid: str) -> Record:
        record = self.machines.get(mid)
        if record is None:
            raise HttpError(404, f"no machine {mid!r}")
        return record

    async def create(self, mid: str, body: object) -> None:
        config = create_config(body)
        if mid in self.machines:
            raise HttpError(409, f"machine {mid!r} exists (DELETE it first)")
        worker = self.pick_worker()
        record = Record(mid, worker, config)
        self.machines[mid] = record  # (reserved while the worker prepares it)
        worker.machines.add(mid)
        try:
            await worker.call("create", mid, config)
        except BaseException:
            self.machines.pop(mid, None)
            worker.machines.discard(mid)
            raise

    async def action(self, mid: str, body: object) -> None:
        if not isinstance(body, dict) or set(body) != {"action_type"}:
            raise HttpError(400, 'the body must be {"action_type": ...}')
        op = ACTIONS.get(body["action_type"])
        if op is None:
            raise HttpError(400, f"action_type must be one of {', '.join(ACTIONS)}")
        record = self.record(mid)
        await record.worker.call(op, mid)
        if op == "start" and record.state == "created":
            record.state = "running"
        elif op == "resume" and record.state == "paused":
            record.state = "running"

    async def snapshot(self, mid: str, body: object) -> None:
        if not isinstance(body, dict) or set(body) != {"path"} or not isinstance(body["path"], str):
            raise HttpError(400, 'the body must be {"path": FILE}')
        record = self.record(mid)
        await record.worker.call("snapshot", mid, {"path": os.path.abspath(body["path"])})

    async def delete(self, mid: str) -> None:
        record = self.record(mid)
        del self.machines[mid]
        record.worker.machines.discard(mid)
        if record.state not in ENDED:
            record.update(
                {"state": "stopped", "exit_code": None, "reason": "deleted",
                 "instructions": record.instructions}
            )  # fmt: skip
        if record.worker.alive:
            await record.worker.call("delete", mid)

    async def stats(self) -> dict:
        from .serveworker import pss_bytes, rss_bytes

        workers = [await w.call("stats", None) for w in self.workers if w.alive]
        return {
            "rss": rss_bytes(),
            "pss": pss_bytes(),
            "machines": len(self.machines),
            "workers": workers,
        }

    # --- HTTP
    async def connection(self, reader: asyncio.StreamReader, writer) -> None:  # noqa: ANN001
        try:
            while not self.closing:
                try:
                    request = await read_request(reader, writer)
                except HttpError as e:
                    write_response(writer, e.status, {"fault_message": str(e)}, close=True)
                    break
                if request is None:
                    break
                method, target, body, close = request
                try:
                    answer = await self.handle(method, target, body, writer)
                except HttpError as e:
                    answer = e.status, {"fault_message": str(e)}
                except Exception as e:  # a bug: answer, and go on serving
                    import traceback

                    traceback.print_exc()
                    answer = 500, {"fault_message": f"internal error: {e}"}
                if answer is not None:
                    write_response(writer, *answer, close=close)
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            await worker.connect()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        server = await asyncio.start_unix_server(
            self.connection, sock=self.listener, limit=MAX_LINE
        )
        print(
            f"rvemu serve: listening on {self.path} ({len(self.workers)} workers: "
            f"{' '.join(str(w.pid) for w in self.workers)})",
            file=sys.stderr,
            flush=True,
        )
        try:
            await stop
        finally:
            self.closing = True
            server.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass
            for worker in self.workers:  # (a worker exits when its socket closes)
                try:
                    worker.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            for worker in self.workers:
                await reap(worker.pid, deadline)


async def reap(pid: int, deadline: float) -> None:
    """Wait for a worker to exit; kill it past the deadline."""
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            await asyncio.sleep(0.01)
    except ChildProcessError:
        pass


def allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HttpError(405, f"method {method} is not allowed here (use {' or '.join(allowed)})")


def json_body(body: bytes) -> object:
    if not body:
        raise HttpError(400, "this request needs a JSON body")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise HttpError(400, f"the body is not JSON: {e}") from None


def create_config(body: object) -> dict:
    """The worker's configuration from a create request, checked."""
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    for name, value in body.items():
        kinds = FIELDS.get(name)
        if kinds is None:
            raise HttpError(400, f"unknown field {name!r} (known: {', '.join(FIELDS)})")
        wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if value is not None and wrong:
            raise HttpError(400, f"{name} must be {' or '.join(k.__name__ for k in kinds)}")
    body = {k: v for k, v in body.items() if v is not None}
    if ("kernel" in body) == ("snapshot" in body):
        raise HttpError(400, "give a kernel or a snapshot (one of them)")
    if "snapshot" in body and set(body) - {"snapshot", "max_instructions"}:
        raise HttpError(400, "a machine made from a snapshot takes the snapshot's options")
    for name in PATH_FIELDS:
        if name in body:
            path = body[name] = os.path.abspath(body[name])
            if not os.path.isfile(path):
                problem = "is not a file" if os.path.exists(path) else "no such file"
                raise HttpError(400, f"{name} {path}: {problem}")
    limit = body.get("max_instructions")
    if limit is not None and limit <= 0:
        raise HttpError(400, "max_instructions must be positive")
    options = {name: body.get(name) for name in MACHINE_OPTIONS}
    options["clock"] = options["clock"] or "instructions"
    options["rng"] = bool(options["rng"])
    options["cpu"] = options["cpu"] or "rv64"
    return {
        "kernel": body.get("kernel"),
        "snapshot": body.get("snapshot"),
        "memory": body.get("memory", "128M"),
        "options": options,
        "max_instructions": limit,
    }


async def read_request(reader: asyncio.StreamReader, writer) -> tuple | None:  # noqa: ANN001
    """(method, target, body, close after) or None at the end of the connection."""
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError):
        raise HttpError(400, "request line too long") from None
    if not line:
        return None
    if line in (b"\r\n", b"\n"):  # (a stray blank line between requests)
        return await read_request(reader, writer)
    try:
        method, target, version = line.decode("latin-1").split()
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(400, f"unsupported protocol {version}")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        try:
            line = await reader.readline()
        except (asyncio.LimitOverrunError, ValueError):
            raise HttpError(400, "header line too long") from None
        if line in (b"\r\n", b"\n", b""):
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise HttpError(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HttpError(400, "too many header lines")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError(411, "send the body with a Content-Length")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise HttpError(400, "malformed Content-Length") from None
    if length < 0 or length > MAX_BODY:
        raise HttpError(413, f"bodies are at most {MAX_BODY} bytes")
    if length and headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    return method.upper(), target, body, close


def write_response(writer, status: int, body: object, close: bool = False) -> None:  # noqa: ANN001
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        head += "Content-Type: application/octet-stream\r\n"
        data = body
    else:
        head += "Content-Type: application/json\r\n"
        data = json.dumps(body).encode() + b"\n"
    if status != 204:
        head += f"Content-Length: {len(data)}\r\n"
    if close:
        head += "Connection: close\r\n"
    writer.write(head.encode() + b"\r\n" + data)


async def stream_console(record: Record, writer) -> None:  # noqa: ANN001
    """The console from its start (what is still kept) as it comes, until the machine
    ends: one chunk per piece of output."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    sent = record.dropped
    while True:
        end = record.dropped + len(record.console)
        if end > sent:
            start = max(sent, record.dropped) - record.dropped
            data = record.console[start:]
            writer.write(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")
            sent = end
            await writer.drain()
        elif record.state in ENDED:
            break
        else:
            await record.changed()
    writer.write(b"0\r\n\r\n")


def prepare_socket(path: str) -> None:
    """Refuse a path in use; remove a socket file left by a server that is gone."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # (nobody listens: a stale socket)
        return
    except OSError as e:
        raise OSError(f"{path}: {e.strerror or e}") from None
    finally:
        probe.close()
    raise OSError(f"{path}: a server is already listening there")


def serve(path: str, workers: int) -> int:
    """Load the compiled core, fork the workers, then serve until SIGINT or SIGTERM."""
    prepare_socket(path)
    from . import Machine

    Machine(memory="1M").hart.warm_up()  # (both copies of the core: every worker has them)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(128)
    except OSError as e:
        listener.close()
        raise OSError(f"{path}: {e.strerror or e}") from None
    server = Server(path, workers, listener)
    server.start_workers()
    try:
        asyncio.run(server.run())
    except KeyboardInterrupt:
        pass
    return 0
