"""The machines of one `rvemu serve` worker process (rvemu/serve.py is the API side).

A worker is forked from the server once the compiled core is loaded, so it starts warm.
It talks to the server over one socket: the server sends commands, the worker answers
each one and reports console output and state changes as they happen (`Link` below).

Each running machine runs in a thread of its own (the compiled core releases the
interpreter lock, and a guest that waits for the host blocks only its thread). A machine
is a `Slot`: its configuration, and while it runs or is paused a `Machine`. Created and
finished machines hold no `Machine`: they cost the server a record, not a hart.

Boots are fast because nothing is built or loaded per boot:
- `StartStates` keeps, per kernel image (path, size, mtime) and options, a snapshot of
  the machine ready to boot: taken at the image's `main` mark when it reaches it with no
  console output yet (hello: 99 instructions), else right after loading;
- `Pool` keeps machines that have finished, their RAM handed back to the kernel
  (`Machine.clear_ram`), per set of options; a start takes one and restores the start
  state into it (a few hundred microseconds) instead of building a `Machine` (several
  milliseconds, most of it the hart's arrays).
Machines with a disk or a network own host resources (files, sockets, a forwarded port):
they are built for each start, from the kernel file or snapshot, and closed at the end.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import sys
import threading
import time
import traceback
from collections import OrderedDict

from . import Machine
from . import snapshot as snapshots
from .firmware import check as check_image
from .loader import LoadError
from .machine import parse_size

FRAME = struct.Struct("!I")  # every message: its length, then the pickled tuple
PREBOOT_LIMIT = 1_000_000  # instructions a start state may run looking for `main`
POOL_MAX = 4  # idle machines kept per set of options
START_STATES_MAX = 32  # start states kept (LRU)
FLUSH_SECONDS = 0.002  # console output after the first byte is sent at most this late

# Options a `Machine` is made with (the API's names, which are rvemu boot's)
MACHINE_OPTIONS = ("disk", "net", "bios", "append", "initrd", "clock", "rng", "cpu")


class Link:
    """The worker's end of its socket to the server: length-prefixed pickles, one
    writer at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, *message: object) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.sock.sendall(FRAME.pack(len(data)) + data)

    def receive(self) -> tuple | None:
        head = self._exactly(FRAME.size)
        if head is None:
            return None
        body = self._exactly(FRAME.unpack(head)[0])
        return None if body is None else pickle.loads(body)

    def _exactly(self, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)


class Fault(Exception):
    """A request the worker refuses: (HTTP status, message) for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Control:
    """Stands in for the board's stdin console, which a served machine does not have:
    the run loop leaves (reason "quit") at the guest's next exit once `quit_requested`
    is set, which is how a running machine is paused, snapshotted or stopped."""

    eof = True  # (no input to wait for)

    def __init__(self) -> None:
        self.quit_requested = False

    def start(self) -> None:
        pass

    def read_available(self) -> bytes:
        return b""

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


def options_key(memory: object, options: dict) -> tuple:
    return (str(memory),) + tuple(options.get(name) for name in MACHINE_OPTIONS)


def plain(options: dict) -> bool:
    """No host resources of its own: such a machine can be pooled and reused."""
    return options.get("disk") is None and options.get("net") is None


class Pool:
    """Idle machines, per set of options, ready for a start state to be restored."""

    def __init__(self, tier2_lock: threading.Lock) -> None:
        self.idle: dict[tuple, list[Machine]] = {}
        self.tier2_lock = tier2_lock
        self.built = 0  # machines made (the rest of the starts reused one)

    def take(self, memory: object, options: dict) -> Machine:
        """An idle machine with these options, or a new one."""
        machines = self.idle.get(options_key(memory, options))
        if machines:
            return machines.pop()
        return self.build(memory, options)

    def build(self, memory: object, options: dict) -> Machine:
        machine = Machine(memory=memory, **options)
        machine.pool_key = options_key(memory, options)
        self.built += 1
        tier2 = machine.hart.tier2
        # Regions are compiled here, the guest waiting: a background compiler would be
        # one more process per worker, and it hands its results to whichever machine
        # asks first. LLVM's engine is the process's: one thread compiles at a time.
        tier2.background = False
        enter = tier2.enter

        def locked_enter(pc: int, off: int, paged: bool) -> None:
            with self.tier2_lock:
                enter(pc, off, paged)

        tier2.enter = locked_enter
        machine.output_to = _nowhere  # (console output goes where the slot says)
        machine.on_console(lambda data: machine.output_to(data))
        return machine

    def give_back(self, machine: Machine) -> None:
        options = machine.options
        machines = self.idle.setdefault(machine.pool_key, [])
        if plain(options) and len(machines) < POOL_MAX:
            machine.clear_ram()  # its touched pages go back to the kernel now
            machine.uart.output.clear()
            machine.output_to = _nowhere
            machines.append(machine)
        else:
            machine.board.close()


def _nowhere(data: bytes) -> None:
    pass


class StartStates:
    """Per kernel image and options: the snapshot a machine boots from."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.states: OrderedDict[tuple, dict] = OrderedDict()

    def get(self, kernel: str, memory: object, options: dict, limit: int | None) -> dict:
        """The start state for this image and options: at `main` if the image reaches it
        with no output and within `limit` instructions, else at reset."""
        key = (image_key(kernel), image_key(options.get("initrd")), image_key(options.get("bios")))
        key += options_key(memory, options)
        states = self.states.get(key)
        if states is not None:
            self.states.move_to_end(key)
        else:
            states = self.states[key] = self._prepare(kernel, memory, options)
            while len(self.states) > START_STATES_MAX:
                self.states.popitem(last=False)
        at_reset, at_main, main_instret = states
        if at_main is not None and (limit is None or main_instret <= limit):
            return at_main
        return at_reset

    def _prepare(self, kernel: str, memory: object, options: dict) -> tuple:
        check_image(kernel, options.get("bios"))  # (one line on a malformed image)
        machine = self.pool.take(memory, options)
        at_main, instret = None, 0
        try:
            machine.load(kernel)
            at_reset = machine.snapshot()
            machine.stop_at.add("main")
            result = machine.run(max_instructions=PREBOOT_LIMIT)
            machine.stop_at.discard("main")
            if result.reason == "mark" and not machine.uart.output:
                at_main, instret = machine.snapshot(), machine.hart.instret
        finally:
            machine.marks = {}
            self.pool.give_back(machine)
        return at_reset, at_main, instret


def image_key(path: str | None) -> tuple | None:
    if path is None or path in ("none", "default"):
        return (path,)
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)


class Slot:
    """One machine of this worker."""

    def __init__(self, mid: str, config: dict) -> None:
        self.mid = mid
        self.config = config
        self.state = "created"  # running, paused, exited, stopped, failed
        self.machine: Machine | None = None
        self.start_state: dict | None = None  # (plain machines, from StartStates)
        self.snapshot: dict | None = None  # (a machine created from a snapshot file)
        self.lock = threading.Condition()
        self.requests: list[tuple[str, int, dict]] = []  # for the runner thread
        self.instructions = 0  # retired since reset (a kernel) or since the snapshot
        self.base = 0  # the hart's instret where that count starts
        self.forget = False  # deleted: drop the slot when it ends
        self.out = bytearray()  # console output not yet sent
        self.sent_at = 0.0  # when output was last sent (0: never)


class Worker:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.slots: dict[str, Slot] = {}
        self.tier2_lock = threading.Lock()
        self.pool = Pool(self.tier2_lock)
        self.starts = StartStates(self.pool)
        self.pool_lock = threading.Lock()  # (runner threads give machines back)
        self.dirty: set[Slot] = set()
        self.flush_wanted = threading.Condition()
        threading.Thread(target=self._flusher, daemon=True).start()

    # --- the command loop (the worker's main thread)
    def serve(self) -> None:
        while True:
            message = self.link.receive()
            if message is None:  # the server is gone
                return
            op, req, mid, args = message
            try:
                result = getattr(self, "op_" + op)(mid, args, req)
            except Fault as e:
                self.link.send("reply", req, e.status, str(e))
            except (LoadError, snapshots.SnapshotError, ValueError, OSError) as e:
                self.link.send("reply", req, 400, one_line(e))
            except Exception as e:  # a bug: say so, and go on serving
                traceback.print_exc(file=sys.stderr)
                self.link.send("reply", req, 500, f"internal error: {one_line(e)}")
            else:
                if result is not DEFERRED:
                    self.link.send("reply", req, 200, result)

    def _slot(self, mid: str) -> Slot:
        slot = self.slots.get(mid)
        if slot is None:
            raise Fault(404, f"no machine {mid!r}")
        return slot

    def op_create(self, mid: str, config: dict, req: int) -> dict:
        slot = Slot(mid, config)
        if config.get("snapshot"):
            slot.snapshot = snapshots.load(config["snapshot"])
            try:
                config["memory"] = slot.snapshot["memory"]
                saved = slot.snapshot["options"]
                config["options"] = {k: saved[k] for k in MACHINE_OPTIONS if k in saved}
            except (KeyError, TypeError, AttributeError) as e:
                raise Fault(400, f"{config['snapshot']}: malformed snapshot ({e})") from None
        else:
            kernel, options = config["kernel"], config["options"]
            parse_size(config["memory"])
            if plain(options):
                with self.pool_lock:
                    slot.start_state = self.starts.get(
                        kernel, config["memory"], options, config.get("max_instructions")
                    )
            else:
                check_image(kernel, options.get("bios"))
        self.slots[mid] = slot
        return {"start": "snapshot" if slot.start_state or slot.snapshot else "load"}

    def op_start(self, mid: str, args: dict, req: int) -> dict:
        slot = self._slot(mid)
        with slot.lock:
            if slot.state != "created":
                raise Fault(409, f"machine {mid!r} is {slot.state}, not created")
            slot.machine = self._boot(slot)
            slot.state = "running"
        threading.Thread(target=self._run, args=(slot,), daemon=True).start()
        return {}

    def _boot(self, slot: Slot) -> Machine:
        """A machine in the slot's start state."""
        config = slot.config
        memory, options = config["memory"], config["options"]
        state = slot.start_state or slot.snapshot
        with self.pool_lock:
            if plain(options):
                machine = self.pool.take(memory, options)
            else:
                machine = self.pool.build(memory, options)
        try:
            if state is not None:
                machine.restore(state)
            else:
                machine.load(config["kernel"])
            machine.uart.output.clear()  # (the server has what the guest printed)
            slot.base = machine.hart.instret if slot.snapshot is not None else 0
            slot.instructions = machine.hart.instret - slot.base
        except BaseException:
            machine.board.close()
            raise
        machine.board.console = Control()
        machine.output_to = lambda data: self._output(slot, data)
        return machine

    def op_pause(self, mid: str, args: dict, req: int) -> object:
        return self._ask(self._slot(mid), "pause", req, args)

    def op_resume(self, mid: str, args: dict, req: int) -> dict:
        slot = self._slot(mid)
        with slot.lock:
            if slot.state != "paused":
                raise Fault(409, f"machine {mid!r} is {slot.state}, not paused")
            slot.state = "running"
            slot.lock.notify_all()
        return {}

    def op_stop(self, mid: str, args: dict, req: int) -> object:
        slot = self._slot(mid)
        with slot.lock:
            if slot.state == "created":
                slot.state = "stopped"
                self._report(slot, "stopped", None, "stopped")
                return {}
            if slot.state in ("exited", "stopped", "failed"):
                return {}
        return self._ask(slot, "stop", req, args)

    def op_snapshot(self, mid: str, args: dict, req: int) -> object:
        slot = self._slot(mid)
        with slot.lock:
            if slot.state == "created":  # (the state it would start from)
                machine = self._boot(slot)
                try:
                    machine.save(args["path"])
                finally:
                    self._drop(machine)
                return {}
        return self._ask(slot, "snapshot", req, args)

    def op_delete(self, mid: str, args: dict, req: int) -> dict:
        slot = self.slots.get(mid)
        if slot is None:
            return {}
        with slot.lock:
            if slot.state in ("running", "paused"):
                slot.forget = True
                slot.requests.append(("stop", None, {}))
                slot.machine.board.console.quit_requested = True
                slot.lock.notify_all()
                return {}
        del self.slots[mid]
        return {}

    def op_stats(self, mid: str, args: dict, req: int) -> dict:
        """This process's resident memory, and each live machine's resident guest RAM."""
        live = [s.machine for s in self.slots.values() if s.machine is not None]
        ram = resident_ram([m for m in live])
        return {
            "pid": os.getpid(),
            "rss": rss_bytes(),
            "pss": pss_bytes(),
            "machines": len(self.slots),
            "live": len(live),
            "guest_ram_resident": ram,
            "pooled": sum(len(v) for v in self.pool.idle.values()),
            "built": self.pool.built,
            "start_states": len(self.starts.states),
        }

    def _ask(self, slot: Slot, what: str, req: int, args: dict) -> object:
        """Hand a request to the slot's runner thread, which answers it."""
        with slot.lock:
            if slot.state not in ("running", "paused"):
                raise Fault(409, f"machine {slot.mid!r} is {slot.state}")
            if what == "pause" and slot.state == "paused":
                return {}
            slot.requests.append((what, req, args))
            slot.machine.board.console.quit_requested = True
            slot.lock.notify_all()
        return DEFERRED

    # --- a running machine (its own thread)
    def _run(self, slot: Slot) -> None:
        machine = slot.machine
        limit = slot.config.get("max_instructions")
        reason, code = "failed", None
        try:
            while True:
                left = None if limit is None else limit - slot.instructions
                if left is not None and left <= 0:
                    reason = "limit"
                    break
                result = machine.run(max_instructions=left)
                slot.instructions = machine.hart.instret - slot.base
                if result.reason != "quit":
                    reason, code = result.reason, result.exit_code
                    break
                if self._requests(slot):
                    reason = "stopped"
                    break
        except Exception as e:  # the guest must not take the worker down with it
            traceback.print_exc(file=sys.stderr)
            self._end(slot, "failed", None, f"failed: {one_line(e)}")
            return
        self._end(slot, "stopped" if reason == "stopped" else "exited", code, reason)

    def _requests(self, slot: Slot) -> bool:
        """Serve what was asked while the machine ran; True to stop it (the stop request
        stays in the list: `_end` answers it once the machine has ended)."""
        with slot.lock:
            slot.machine.board.console.quit_requested = False
            paused = False
            while True:
                requests, slot.requests = slot.requests, []
                for i, (what, req, args) in enumerate(requests):
                    if what == "stop":
                        slot.requests = requests[i:]
                        return True
                    if what == "snapshot":
                        try:
                            slot.machine.save(args["path"])
                        except (OSError, ValueError) as e:
                            self.link.send("reply", req, 400, one_line(e))
                        else:
                            self.link.send("reply", req, 200, {})
                    elif what == "pause":
                        if slot.state == "running":
                            slot.state = "paused"
                            paused = True
                            self._flush(slot)
                            self._report(slot, "paused", None, "paused")
                        self.link.send("reply", req, 200, {})
                if slot.state == "running":
                    if paused:
                        self._report(slot, "running", None, None)
                    return False
                slot.lock.wait()  # paused: until resumed, stopped or asked something

    def _end(self, slot: Slot, state: str, code: int | None, reason: str) -> None:
        with slot.lock:
            self._flush(slot)
            slot.state = state
            machine, slot.machine = slot.machine, None
            self._report(slot, state, code, reason)
            for what, req, _ in slot.requests:  # the stop, or asked just as the guest ended
                if req is not None:
                    if what == "stop":
                        self.link.send("reply", req, 200, {})
                    else:
                        self.link.send("reply", req, 409, f"machine {slot.mid!r} is {state}")
            slot.requests = []
        if slot.forget:
            self.slots.pop(slot.mid, None)
        if machine is not None:
            if state == "failed":
                machine.board.close()  # (its state is suspect: not reused)
            else:
                self._drop(machine)

    def _drop(self, machine: Machine) -> None:
        with self.pool_lock:
            if plain(machine.options):
                self.pool.give_back(machine)
            else:
                machine.board.close()

    def _report(self, slot: Slot, state: str, code: int | None, reason: str | None) -> None:
        self.link.send(
            "state", slot.mid, {
                "state": state, "exit_code": code, "reason": reason,
                "instructions": slot.instructions,
            },
        )  # fmt: skip

    # --- console output: the first byte at once, then at most FLUSH_SECONDS late
    def _output(self, slot: Slot, data: bytes) -> None:
        slot.out.extend(data)  # (one call: the flusher thread may take it meanwhile)
        now = time.monotonic()
        if now - slot.sent_at >= FLUSH_SECONDS:
            self._flush(slot, now)
        elif slot not in self.dirty:
            with self.flush_wanted:
                self.dirty.add(slot)
                self.flush_wanted.notify()

    def _flush(self, slot: Slot, now: float | None = None) -> None:
        with self.link.lock:  # (taken first, so that output is sent in order)
            data = bytes(slot.out)
            del slot.out[: len(data)]
            slot.sent_at = now or time.monotonic()
            if data:
                message = pickle.dumps(("console", slot.mid, data), pickle.HIGHEST_PROTOCOL)
                self.link.sock.sendall(FRAME.pack(len(message)) + message)
        machine = slot.machine
        if machine is not None:
            machine.uart.output.clear()  # (kept by the server, not twice)

    def _flusher(self) -> None:
        while True:
            with self.flush_wanted:
                while not self.dirty:
                    self.flush_wanted.wait()
            time.sleep(FLUSH_SECONDS)
            with self.flush_wanted:
                dirty, self.dirty = self.dirty, set()
            for slot in dirty:
                if slot.out:
                    self._flush(slot)


DEFERRED = object()  # a reply the runner thread sends later


def one_line(message: object) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


def rss_bytes() -> int:
    """This process's resident set, from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pss_bytes() -> int:
    """This process's proportional set (pages shared with n processes count 1/n), from
    /proc; 0 where the kernel does not say."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def resident_ram(machines: list[Machine]) -> int:
    """Bytes of these machines' guest RAM that are resident (the pages their guests
    touched), from /proc/self/smaps."""
    starts = {m.ram.ctypes.data for m in machines}
    total, counting = 0, False
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                if "-" in line.split(" ", 1)[0] and not line.startswith(("Rss", "Size")):
                    counting = int(line.split("-", 1)[0], 16) in starts
                elif counting and line.startswith("Rss:"):
                    total += int(line.split()[1]) * 1024
    except OSError:
        return 0
    return total


def main(sock: socket.socket) -> None:
    """A worker's life: serve the server's commands until it goes away."""
    try:
        Worker(Link(sock)).serve()
    finally:
        os._exit(0)
