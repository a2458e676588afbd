"""The board: RAM, the hart, the bus of devices, and the run loop that serves the hart's
exits (the VMM side of the KVM-style split). Addresses follow QEMU's hw/riscv/virt.c."""

from __future__ import annotations

import mmap
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import firmware
from .board import VIRT_DRAM, VIRT_UART0, VirtBoard
from .cpu import state as S
from .cpu.hart import Hart, int64
from .cpu.isa import BY_OP, LOAD, parse_cpu
from .loader import LoadError
from .tier2.compiler import Tier2
from .views import Memory, Registers, symbol_at

if TYPE_CHECKING:
    from .devices.virtio_net import Backend

CHUNK = 1 << 22  # instructions per entry into the core when nothing else limits it
HTIF_SYS_WRITE = 64  # the proxy kernel's write(2), as riscv-tests' benchmarks call it


def parse_size(text: str | int) -> int:
    """'128M', '1G', '65536' -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"bad memory size {text!r} (use e.g. 128M or 1G)")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


@dataclass
class DeviceAccess:
    """A guest access to a device, as Machine.on_device hooks see it (after it happened:
    `value` is what was read or written, None when no device answered)."""

    address: int
    size: int
    write: bool
    value: int | None


@dataclass
class RunResult:
    """Why `Machine.run` returned."""

    # "poweroff", "tohost", "limit", "reset", "halt", "quit" (Ctrl-A x); and for a
    # debugger: "step" (Machine.step ran its steps), "breakpoint", "watchpoint" (see
    # Machine.stop_address), "hook" (a pc hook asked to stop), "mark" (see Machine.stop_at)
    reason: str
    exit_code: int | None  # the guest's exit code (0 = pass) for poweroff/tohost
    instructions: int  # retired in this run
    seconds: float  # host wall time of this run

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


class Machine:
    """A QEMU-virt-compatible RISC-V machine.

    >>> m = Machine(memory="128M"); m.load("app.elf"); result = m.run(10_000_000)
    """

    def __init__(
        self,
        memory: str | int = "128M",
        echo: bool = False,
        disk: str | None = None,
        net: str | Backend | None = None,
        bios: str | None = None,
        append: str | None = None,
        initrd: str | None = None,
        clock: str = "instructions",
        rng: bool = False,
        cpu: str = "rv64",
    ) -> None:
        """`echo` copies console output to stdout as it happens. `disk` is
        "FILE[,ro][,slot=N]", `net` "user[,hostfwd=tcp::8080-:80]", "tap:NAME" or
        "udp:LOCALPORT:HOST:PORT" (or a devices.virtio_net.Backend object), `bios` firmware
        loaded at the start of RAM, `append` the kernel command line, `initrd` a file for the
        device tree's initrd, `clock` "instructions" (deterministic) or "host", `rng` adds a
        virtio-rng device, `cpu` turns extensions off as QEMU's -cpu does
        ("rv64,zba=false")."""
        size = parse_size(memory)
        if size < 4096 or size % 4096:
            raise ValueError(f"memory must be a positive multiple of 4 KiB, not {memory!r}")
        self.ram_base = VIRT_DRAM
        # An anonymous mapping, so that clear_ram can hand every page back at once.
        try:
            self._ram_map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except (OSError, OverflowError, ValueError):  # more than the host can give
            raise ValueError(f"cannot allocate {memory!r} of memory on this host") from None
        self.ram = np.frombuffer(self._ram_map, dtype=np.uint8)
        self.hart = Hart(self.ram, self.ram_base, second_tier=Tier2)
        self.hart.extensions = parse_cpu(cpu)
        self.options = dict(
            disk=disk, net=net, bios=bios, append=append, initrd=initrd, clock=clock, rng=rng
        )
        self.board = VirtBoard(
            self.hart, self.ram, self.ram_base, echo=echo, stdin=echo, **self.options
        )
        self.bus = self.board.bus
        self.finisher = self.board.finisher
        self.uart = self.board.uart
        self.tohost: int | None = None
        self.fromhost: int | None = None
        self.image = None
        # boot-latency marks: (instructions, host seconds since run start)
        self.marks: dict[str, tuple[int, float]] = {}
        self._run_start = 0.0
        # A debugger's and a script's hold: see add_breakpoint, watch, on_pc, on_device,
        # on_console.
        self.breakpoints: set[int] = set()
        self.watchpoints: dict[int, int] = {}  # address -> length
        self.stop_address: int | None = None  # the breakpoint or watchpoint last stopped at
        self.stop_at: set[str] = set()  # boot marks ("main") that end a run (RunResult "mark")
        self._watch_stop: int | None = None  # the pc of the store a watchpoint stopped
        self._pc_hooks: dict[int, list[Callable[[Machine], object]]] = {}
        self._device_hooks: list[Callable[[DeviceAccess], object]] = []
        self._console_hooks: list[Callable[[bytes], object]] = []
        self._echo = self.uart.sink
        self.uart.sink = self._console_output
        self.regs = Registers(self)
        self.phys = Memory(self, virtual=False)
        self.virt = Memory(self, virtual=True)

    # --- loading
    def load(self, path: str | None) -> None:
        """Load a kernel ELF (and the --bios firmware, --initrd) into RAM as QEMU virt
        does, put the device tree high in RAM, and start the hart where QEMU's reset
        stub would leave it: a0 = hart id, a1 = device tree, a2 = fw_dynamic info."""
        opts = self.options
        try:
            layout = firmware.place(
                path, self.ram_base, len(self.ram), opts["bios"], opts["initrd"]
            )
        except LoadError as e:
            if path and not str(e).startswith(path):
                raise LoadError(f"{path}: {e}") from None
            raise
        self.board.reset()
        for paddr, data, memsz in layout.segments:
            off = paddr - self.ram_base
            self.ram[off : off + memsz] = 0
            self.ram[off : off + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.board.initrd = layout.initrd
        blob = self.board.dtb()
        fdt_addr = firmware.fdt_address(self.ram_base, len(self.ram), len(blob), layout.segments)
        if fdt_addr:
            off = fdt_addr - self.ram_base
            self.ram[off : off + len(blob)] = np.frombuffer(blob, dtype=np.uint8)
        self.board.rom.load(firmware.reset_vector(layout.start, fdt_addr, layout.kernel_entry))
        image = layout.image
        self.image = image
        self.hart.reset(pc=layout.start)
        self.hart.x[10] = self.hart.hart_id
        self.hart.x[11] = fdt_addr
        self.hart.x[12] = firmware.FW_DYNAMIC_INFO_ADDR
        self.hart.x[5] = int64(layout.start)  # t0, as the stub leaves it
        self.fdt_address = fdt_addr
        self.tohost = image.symbols.get("tohost") if image else None
        self.fromhost = image.symbols.get("fromhost") if image else None
        if self.tohost is not None:
            self.hart.watch_tohost(self.tohost)

    @property
    def symbols(self) -> dict[str, int]:
        """The loaded ELF's symbols: name -> address."""
        return self.image.symbols if self.image else {}

    def symbol_at(self, address: int) -> str | None:
        """ "main" or "main+0x10": the loaded ELF's nearest symbol at or below address."""
        return symbol_at(self.symbols, address)

    def clear_ram(self) -> None:
        """All of RAM to zero, at the cost of the pages the guest touched (the kernel
        drops them; they read as zero again)."""
        if hasattr(mmap, "MADV_DONTNEED"):
            self._ram_map.madvise(mmap.MADV_DONTNEED)
        else:
            self.ram[:] = 0
        self.hart.flush_decoded()

    # --- snapshots (rvemu/snapshot.py)
    def snapshot(self) -> dict:
        """The machine's whole state as data; `restore` goes back to it."""
        from . import snapshot

        return snapshot.snapshot(self)

    def restore(self, snap: dict) -> None:
        """Go back to a snapshot of this machine (or of one made with the same options)."""
        from . import snapshot

        snapshot.restore(self, snap)

    def save(self, path: str) -> None:
        """Write a snapshot file, for Machine.from_snapshot or `rvemu resume`."""
        from . import snapshot

        snapshot.save(self.snapshot(), path)

    @classmethod
    def from_snapshot(cls, path: str, echo: bool = False) -> Machine:
        """A machine made with the saved options, in the saved state: disk and network
        back ends are opened again from their options."""
        from . import snapshot
        from .loader import read_elf

        snap = snapshot.load(path)
        try:
            machine = cls(memory=snap["memory"], echo=echo, **snap["options"])
        except (TypeError, KeyError) as e:
            raise snapshot.SnapshotError(f"{path}: malformed snapshot ({e})") from None
        machine.restore(snap)
        image = snap.get("image")
        if image:
            try:
                machine.image = read_elf(image)  # (its symbols, for the debugger)
            except (LoadError, OSError):
                pass
        return machine

    # --- memory access from Python
    def read_phys(self, paddr: int, size: int) -> bytes:
        off = paddr - self.ram_base
        if off < 0 or off + size > len(self.ram):
            raise IndexError(f"{paddr:#x}+{size} is outside RAM")
        return self.ram[off : off + size].tobytes()

    def write_phys(self, paddr: int, data: bytes) -> None:
        off = paddr - self.ram_base
        if off < 0 or off + len(data) > len(self.ram):
            raise IndexError(f"{paddr:#x}+{len(data)} is outside RAM")
        self.ram[off : off + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.hart.flush_decoded()

    @property
    def console(self) -> bytes:
        return bytes(self.uart.output)

    # --- running
    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run until the guest powers off, writes tohost, or retires max_instructions, or
        until a breakpoint, watchpoint or pc hook stops it. A breakpoint at the pc the
        hart stands at is passed (as GDB's continue does)."""
        hart = self.hart
        start_instret = hart.instret
        limit = None if max_instructions is None else start_instret + max_instructions
        hart.run(0)  # load (or compile) the core first, so timings are the guest's alone
        self._run_start = time.perf_counter()
        hart.st[S.BREAK_SKIP] = int64(hart.pc)
        if self._watch_stop == hart.pc:  # do the store the watchpoint stopped first
            result = self.step()
            if result.reason != "step":
                return result
        stalled = 0  # budget used up by traps that retired nothing (a trap storm)
        while True:
            budget = CHUNK if limit is None else min(CHUNK, limit - hart.instret - stalled)
            if budget <= 0:
                return self._result("limit", None, start_instret)
            before = hart.instret
            why = hart.run(self.board.before_run(budget))
            if why == S.EXIT_BUDGET and hart.instret == before:
                stalled += budget
            if hart.profile is None:
                stop = self._serve_exit(why)
            else:
                stop = hart.profile.serve(self._serve_exit, why)
            if stop is not None:
                return self._result(*stop, start_instret)

    def step(self, count: int = 1, interrupts: bool = True) -> RunResult:
        """Run `count` steps, each one instruction retired or one trap or interrupt taken
        (a trap's handler is not entered further); reason "step" when all ran. With
        `interrupts` False, pending interrupts wait (as GDB's stepping on QEMU)."""
        hart = self.hart
        start_instret = hart.instret
        hart.run(0)
        self._run_start = time.perf_counter()
        was_stepping = hart.stepping  # (a tracer keeps the hart stepping between calls)
        hart.stepping = True
        hart.interrupts_held = not interrupts
        try:
            for _ in range(count):
                hart.st[S.BREAK_SKIP] = int64(hart.pc)  # the step asked for runs
                watchpoints = hart.watchpoints
                if self._watch_stop == hart.pc:  # the store a watchpoint stopped: do it
                    hart.watchpoints = ()
                self._watch_stop = None
                before = (hart.instret, hart.traps)
                try:
                    while (hart.instret, hart.traps) == before:
                        stop = self._serve_exit(hart.run(self.board.before_run(1)))
                        if stop is not None:
                            return self._result(*stop, start_instret)
                finally:
                    if hart.watchpoints != watchpoints:
                        hart.watchpoints = watchpoints
        finally:
            hart.stepping = was_stepping
            hart.interrupts_held = False
        return self._result("step", None, start_instret)

    def _serve_exit(self, why: int) -> tuple[str, int | None] | None:
        """Do what the hart left the core for; (reason, exit code) if the run must end."""
        if why == S.EXIT_MMIO:
            self._serve_mmio()
            self.board.poll_every(CHUNK)
            self.board.sync_interrupts()
            if self.finisher.exit_code is not None:
                return "poweroff", self.finisher.exit_code
            if self.finisher.reset_requested:
                return "reset", None
        elif why == S.EXIT_TOHOST:
            code = self._serve_tohost()
            if code is not None:
                return "tohost", code
        elif why == S.EXIT_MARK:
            self._mark("main")
            if "main" in self.stop_at:
                return "mark", None
        elif why == S.EXIT_WFI:
            if not self._wait_for_interrupt():
                return "halt", None
        elif why == S.EXIT_BUDGET:
            self.board.poll()
            self.board.sync_interrupts()
        elif why == S.EXIT_DEBUG:
            stop = self._debug_stop()
            if stop is not None:
                return stop, None
        if self.board.quit_requested:
            return "quit", None
        return None

    def _debug_stop(self) -> str | None:
        """A breakpoint or watchpoint stopped the hart: call the pc hooks there; the reason
        to stop the run, or None to go on."""
        st, pc = self.hart.st, self.hart.pc
        hit = int(st[S.DEBUG_HIT])
        if hit:
            st[S.DEBUG_HIT] = 0
            self.stop_address = list(self.watchpoints)[hit - 1]
            self._watch_stop = pc
            return "watchpoint"
        stop = None
        for hook in self._pc_hooks.get(pc, ()):
            if hook(self):
                stop = "hook"
        if pc in self.breakpoints:
            stop = "breakpoint"
        if stop is not None:
            self.stop_address = pc
            return stop
        st[S.BREAK_SKIP] = int64(pc)  # only hooks here: run the instruction and go on
        return None

    # --- a debugger's and a script's hold on the machine
    def add_breakpoint(self, pc: int) -> None:
        """Stop runs before the instruction at virtual address pc (RunResult "breakpoint")."""
        self.breakpoints.add(pc)
        self._sync_breakpoints()

    def remove_breakpoint(self, pc: int) -> None:
        self.breakpoints.discard(pc)
        self._sync_breakpoints()

    def on_pc(self, pc: int, hook: Callable[[Machine], object]) -> None:
        """Call hook(machine) each time the hart is about to run the instruction at pc; a
        hook that returns true stops the run there (RunResult "hook")."""
        self._pc_hooks.setdefault(pc, []).append(hook)
        self._sync_breakpoints()

    def on_device(self, hook: Callable[[DeviceAccess], object]) -> None:
        """Call hook(access) after each guest access to a device on the bus (the CLINT,
        served inside the hart, is not seen)."""
        self._device_hooks.append(hook)

    def on_console(self, hook: Callable[[bytes], object]) -> None:
        """Call hook(data) with each piece of console (UART) output."""
        self._console_hooks.append(hook)

    def watch(self, address: int, length: int = 8) -> None:
        """Stop runs before a store to [address, address + length) (RunResult
        "watchpoint", stop_address = address, pc at the store; the next step or run does
        the store). The virtual address is translated now, as a store at the hart's
        privilege would be; it must be RAM."""
        self.watchpoints[address] = length
        try:
            self._sync_watchpoints()
        except ValueError:
            del self.watchpoints[address]
            raise

    def unwatch(self, address: int) -> None:
        self.watchpoints.pop(address, None)
        self._sync_watchpoints()

    def _sync_breakpoints(self) -> None:
        self.hart.breakpoints = tuple(sorted(self.breakpoints | set(self._pc_hooks)))

    def _sync_watchpoints(self) -> None:
        ranges = []
        for address, length in self.watchpoints.items():
            paddr = self.translate(address, S.ACCESS_STORE)
            off = -1 if paddr is None else paddr - self.ram_base
            if not (0 <= off and off + length <= len(self.ram)):
                raise ValueError(f"cannot watch {address:#x}: not RAM")
            ranges.append((off, length))
        self.hart.watchpoints = tuple(ranges)

    def translate(self, vaddr: int, access: int = S.ACCESS_LOAD) -> int | None:
        """The physical address an access (state.ACCESS_LOAD, _STORE or _FETCH) at vaddr
        would reach now, through the hart's translation and privilege; None if it would
        fault. (Sets the page's A bit, and D for a store, as the access itself would.)"""
        from .mmu.sv import translate

        if not 0 <= vaddr < 1 << 64:
            return None
        paddr, status = translate(
            int64(vaddr), access, self.hart.csr, self.hart.st, self.ram.view(np.int64)
        )
        return int(paddr) & ((1 << 64) - 1) if status == S.OK else None

    def _console_output(self, data: bytes) -> None:
        if self._echo is not None:
            self._echo(data)
        for hook in self._console_hooks:
            hook(data)

    def _result(self, reason: str, code: int | None, start_instret: int) -> RunResult:
        seconds = time.perf_counter() - self._run_start
        return RunResult(reason, code, self.hart.instret - start_instret, seconds)

    def _mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name] = (self.hart.instret, time.perf_counter() - self._run_start)

    def _serve_mmio(self) -> None:
        st = self.hart.st
        addr, size, op = int(st[S.MMIO_ADDR]), int(st[S.MMIO_SIZE]), int(st[S.MMIO_OP])
        is_load = BY_OP[op].kind == LOAD
        if is_load:
            value = self.bus.read(addr, size)
            if value is None:
                st[S.MMIO_FAULT] = 1
            else:
                st[S.MMIO_VALUE] = value - (1 << 64) if value >= 1 << 63 else value
        else:
            if addr == VIRT_UART0 and "first_output" not in self.marks:
                self._mark("first_output")
            value = int(st[S.MMIO_VALUE]) & ((1 << (8 * size)) - 1)
            if not self.bus.write(addr, size, value):
                st[S.MMIO_FAULT] = 1
                value = None
            else:  # the store is done: retire it here, so a power-off store counts
                st[S.MMIO_PENDING] = 0
                st[S.PC] += st[S.MMIO_LEN]
                st[S.INSTRET] += 1
        if self._device_hooks:
            access = DeviceAccess(addr, size, not is_load, value)
            for hook in self._device_hooks:
                hook(access)

    def _serve_tohost(self) -> int | None:
        """HTIF: an odd value ends the run with code value >> 1; device 1 command 1
        prints a character (the -v- tests' console); device 0 command 0 with an even
        address is a proxied system call (the riscv-tests benchmarks' printf)."""
        value = int.from_bytes(self.read_phys(self.tohost, 8), "little")
        if value & 1:
            return value >> 1
        device, command = value >> 56, (value >> 48) & 0xFF
        if device == 1 and command == 1:
            self._htif_output(bytes([value & 0xFF]))
        elif device == 0 and command == 0 and value:
            self._htif_syscall(value)
        if value:
            self.ram[self.tohost - self.ram_base : self.tohost - self.ram_base + 8] = 0
            if self.fromhost is not None:
                off = self.fromhost - self.ram_base
                self.ram[off : off + 8] = np.frombuffer((1).to_bytes(8, "little"), np.uint8)
        return None

    def _htif_syscall(self, paddr: int) -> None:
        """A proxy-kernel system call (riscv-tests' syscalls.c, Spike's fesvr): paddr holds
        [number, a0, a1, a2]; the result replaces the number. Only write(fd 1 or 2) is
        served; anything else, or an address outside RAM, gets -ENOSYS or is ignored."""
        memory = self.board.memory
        words = memory.read(paddr, 32)
        if words is None:
            return
        number, fd, buf, length = (
            int.from_bytes(words[i : i + 8], "little") for i in range(0, 32, 8)
        )
        result = -38  # ENOSYS
        if number == HTIF_SYS_WRITE and fd in (1, 2):
            data = memory.read(buf, min(length, 1 << 20))
            if data is not None:
                self._htif_output(data)
                result = len(data)
        memory.write_int(paddr, 8, result)

    def _htif_output(self, data: bytes) -> None:
        if "first_output" not in self.marks:
            self._mark("first_output")
        self.uart.output += data
        self._console_output(data)

    def _wait_for_interrupt(self) -> bool:
        """WFI with nothing pending. Deterministic time: skip ahead to the next timer or
        RTC alarm; host time: sleep until it, or until host input arrives. With neither a
        deadline nor an input source, nothing can ever wake the hart."""
        st, csr, board = self.hart.st, self.hart.csr, self.board
        board.poll()
        board.sync_interrupts()
        if st[S.EXT_IRQ] & csr[S.MIE]:
            return True
        deadline = board.next_deadline()
        if board.clock == "host":
            if board.wait(board.seconds_until(deadline), int(csr[S.MIE])):
                board.sync_interrupts()
                return True
            return False
        if deadline is not None:
            now = board.mtime()
            if deadline > now:
                st[S.MTIME_BASE] += deadline - now
            board.sync_interrupts()
            return True
        if board.wait(None, int(csr[S.MIE])):
            board.sync_interrupts()
            return True
        return False
