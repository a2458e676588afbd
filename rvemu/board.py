"""The virt board's devices: what sits on the bus, and how their interrupts reach the hart.

Addresses and IRQ numbers follow QEMU's hw/riscv/virt.c (virt_memmap[], enum VIRT_*_IRQ),
and so does the device tree `dtb()` generates (create_fdt and its helpers).
"""

from __future__ import annotations

import select
import sys
import time

from . import fdt
from .cpu import state as S
from .cpu.isa import CACHE_BLOCK, extension_bit, isa_extensions, isa_string
from .cpu.native import core
from .devices.bus import Bus
from .devices.console import StdinConsole
from .devices.dma import GuestMemory
from .devices.goldfish_rtc import GoldfishRtc
from .devices.plic import NUM_SOURCES, PLIC_SIZE, Plic
from .devices.sifive_test import SifiveTest
from .devices.uart import IER_RDI, Uart16550
from .devices.virtio_blk import VirtioBlk, parse_disk
from .devices.virtio_mmio import VirtioDevice, VirtioMmio
from .devices.virtio_rng import VirtioRng
from .firmware import VIRT_MROM, BootRom

VIRT_TEST = 0x0010_0000
VIRT_RTC = 0x0010_1000
VIRT_CLINT = S.CLINT_BASE  # served inside the hart
VIRT_PLIC = 0x0C00_0000
VIRT_UART0 = 0x1000_0000
VIRT_VIRTIO = 0x1000_1000
VIRTIO_SLOT_SIZE = 0x1000
VIRTIO_COUNT = 8
VIRT_DRAM = 0x8000_0000

UART0_IRQ = 10
RTC_IRQ = 11
VIRTIO_IRQ = 1  # slot n uses VIRTIO_IRQ + n
UART_CLOCK = 0x384000  # hw/riscv/virt.c: 3686400 Hz

CTX_M, CTX_S = 0, 1  # hart 0's PLIC contexts

HOST_CLOCK_BUDGET = 100_000  # instructions between looks at the host clock (--clock host)
HOST_CLOCK_SLACK = 20_000  # ticks (2 ms) guest time may run ahead of the host's


class VirtBoard:
    """Builds the bus for the given options and connects device interrupts to the hart.

    Options are those of `rvemu boot`: `disk` "FILE[,ro][,serial=ID][,slot=N]", `net`
    "udp:LPORT:HOST:RPORT" or "tap:NAME", `rng` adds virtio-rng, `append` the kernel
    command line, `clock` "instructions" (deterministic) or "host"."""

    HOST_SIDE = ("_clock_t0",)  # not in a snapshot: the host clock of this process

    def __init__(
        self,
        hart,
        ram,
        ram_base: int,
        echo: bool = False,
        stdin: bool = False,
        disk: str | None = None,
        net: str | None = None,
        rng: bool = False,
        append: str | None = None,
        clock: str = "instructions",
        **_ignored,
    ) -> None:
        if clock not in ("instructions", "host"):
            raise ValueError(f"--clock {clock!r}: use 'instructions' or 'host'")
        self.hart = hart
        self.ram = ram
        self.ram_base = ram_base
        self.ram_size = len(ram)
        self.append = append
        self.clock = clock
        self.initrd: tuple[int, int] | None = None
        self.memory = GuestMemory(hart, ram, ram_base)
        self.bus = Bus()
        self.rom = BootRom()
        self.finisher = SifiveTest()
        self.plic = Plic()
        self.uart = Uart16550(sink=_stdout_write if echo else None)
        self.boot_ns = time.time_ns()
        self.rtc = GoldfishRtc(self._rtc_now)
        self.bus.attach(VIRT_MROM, self.rom, "mrom")
        self.bus.attach(VIRT_TEST, self.finisher, "sifive_test")
        self.bus.attach(VIRT_RTC, self.rtc, "rtc")
        self.bus.attach(VIRT_PLIC, self.plic, "plic")
        self.bus.attach(VIRT_UART0, self.uart, "uart0")
        # (irq, device) pairs whose `interrupt_pending()` drives a PLIC source
        self.irq_sources: list[tuple[int, object]] = [(UART0_IRQ, self.uart), (RTC_IRQ, self.rtc)]

        # A device given a slot (--disk FILE,slot=N, QEMU's bus=virtio-mmio-bus.N) goes
        # there; the others fill the free slots from the last one down, in command-line
        # order: where QEMU's virt puts -device virtio-*-device without bus= (qdev takes
        # the first free virtio-mmio bus, and the newest transport is listed first).
        placed: list[VirtioDevice | None] = [None] * VIRTIO_COUNT
        devices: list[VirtioDevice] = []
        self.disk: VirtioBlk | None = None
        self.net = None
        if disk is not None:
            path, read_only, serial, disk_slot = parse_disk(disk, VIRTIO_COUNT)
            self.disk = VirtioBlk(path, read_only, serial)
            if disk_slot is None:
                devices.append(self.disk)
            else:
                placed[disk_slot] = self.disk
        if net is not None:
            from .devices.virtio_net import VirtioNet

            self.net = VirtioNet.from_spec(net)
            devices.append(self.net)
        if rng:
            devices.append(VirtioRng())
        free = [slot for slot in reversed(range(VIRTIO_COUNT)) if placed[slot] is None]
        for slot, device in zip(free, devices, strict=False):
            placed[slot] = device
        self.virtio: list[VirtioMmio] = []
        for slot, device in enumerate(placed):
            transport = VirtioMmio(self.memory, device)
            self.virtio.append(transport)
            self.bus.attach(VIRT_VIRTIO + slot * VIRTIO_SLOT_SIZE, transport, f"virtio{slot}")
            if device is not None:  # an empty slot never interrupts
                self.irq_sources.append((VIRTIO_IRQ + slot, transport))
        self._active_virtio = [t for t in self.virtio if t.device is not None]
        self._irq_seen = [(False, 0)] * len(self.irq_sources)  # (level, updates) sent
        self._clock_t0: float | None = None
        self._last_poll = 0
        self._clock_base_set: int | None = None
        self.console = StdinConsole() if stdin else None
        if self.console is not None:
            self.console.start()  # raw before the guest runs, so early keys are not echoed

    def reset(self) -> None:
        """Devices to their power-on state (what QEMU's system reset does); the console
        output so far, host-side input and the disk and network backends are kept."""
        self.finisher.__init__()
        self.plic.__init__(self.plic.num_contexts)
        self.uart.reset()
        self.rtc.alarm_running = False
        self.rtc.irq_enabled = 0
        self.rtc.irq_pending = False
        for transport in self.virtio:
            transport.reset()
        self._irq_seen = [(False, -1)] * len(self.irq_sources)  # send every line again
        self.hart.st[S.EXT_IRQ] = 0

    # --- interrupts
    @property
    def quit_requested(self) -> bool:
        """The user asked to leave (Ctrl-A x on the console)."""
        return self.console is not None and self.console.quit_requested

    def sync_interrupts(self) -> None:
        """Copy device interrupt lines through the PLIC into the hart's MEIP/SEIP.

        A line reaches the PLIC when its level changed, or when the device signalled it
        again at the same level (its `irq_updates` count moved: QEMU's devices call
        qemu_set_irq at every update, and sifive_plic pends the source each time)."""
        plic, seen = self.plic, self._irq_seen
        for i, (irq, device) in enumerate(self.irq_sources):
            line = (device.interrupt_pending(), getattr(device, "irq_updates", 0))
            if line != seen[i]:
                seen[i] = line
                plic.set_level(irq, line[0])
        lines = 0
        if plic.output(CTX_M):
            lines |= S.MIP_MEIP
        if plic.output(CTX_S):
            lines |= S.MIP_SEIP
        self.hart.st[S.EXT_IRQ] = lines

    # --- host input
    def poll(self) -> None:
        """Let devices with host-side input (console, network) make progress."""
        if self.console is not None:
            data = self.console.read_available()
            if data:
                self.uart.feed(data)
        for transport in self._active_virtio:
            transport.poll()

    def poll_every(self, instructions: int) -> None:
        """Poll if `instructions` have retired since the last poll: guests that exit for
        MMIO often never use up a budget, and must still hear the network and console."""
        instret = int(self.hart.st[S.INSTRET])
        if instret - self._last_poll >= instructions:
            self._last_poll = instret
            self.poll()

    def _can_interrupt(self, irq: int, mie: int | None) -> bool:
        """Could source `irq` reach the hart with interrupt enables `mie` (None: assume so)?"""
        if mie is None:
            return True
        plic, bit = self.plic, 1 << irq
        for ctx, line in ((CTX_M, S.MIP_MEIP), (CTX_S, S.MIP_SEIP)):
            if mie & line and plic.enable[ctx] & bit and plic.priority[irq] > plic.threshold[ctx]:
                return True
        return False

    def _input_fds(self, mie: int | None = None) -> list[int]:
        """Host inputs worth waiting on: those whose device could interrupt the hart."""
        fds = []
        console = self.console
        if (
            console is not None
            and not console.eof
            and (mie is None or self.uart.ier & IER_RDI)
            and self._can_interrupt(UART0_IRQ, mie)
        ):
            fds.append(console.fileno())
        for slot, transport in enumerate(self.virtio):
            if transport.device is None:
                continue
            fd = transport.device.fileno()
            if fd is not None and self._can_interrupt(VIRTIO_IRQ + slot, mie):
                fds.append(fd)
        return fds

    def wait(self, timeout: float | None, mie: int | None = None) -> bool:
        """Block up to `timeout` seconds for host input. With `mie` (the hart's interrupt
        enables), only inputs whose device could interrupt it count. False when nothing
        could ever come (no such input and no timeout): the hart is halted for good."""
        self.poll()
        if self.quit_requested:
            return True
        # Input that arrived since the caller last looked may already have raised an
        # interrupt: blocking for more would lose it (a line typed just as the guest
        # reached WFI stayed unanswered).
        self.sync_interrupts()
        if self.hart.st[S.EXT_IRQ] & (-1 if mie is None else mie):
            return True
        fds = self._input_fds(mie)
        if not fds and timeout is None:
            return False
        try:
            if fds:
                select.select(fds, [], [], timeout)
            else:
                time.sleep(timeout)
        except (OSError, ValueError):
            pass
        self.poll()
        return True

    def close(self) -> None:
        for transport in self._active_virtio:
            transport.device.close()
        if self.console is not None:
            self.console.close()

    # --- time
    def mtime(self) -> int:
        st = self.hart.st
        return int(st[S.MTIME_BASE]) + int(st[S.INSTRET]) // S.INSNS_PER_TICK

    def _rtc_now(self) -> int:
        if self.clock == "host":
            return time.time_ns()
        return self.boot_ns + self.mtime() * (1_000_000_000 // S.TIMEBASE_FREQ)

    def before_run(self, budget: int) -> int:
        """With --clock host, move mtime up to host time and keep the stretch short so the
        timer is not late; deterministic mode changes nothing."""
        if self.clock != "host":
            return budget
        st = self.hart.st
        now = time.perf_counter()
        if self._clock_t0 is None:
            self._clock_t0 = now - self.mtime() / S.TIMEBASE_FREQ
        host = int((now - self._clock_t0) * S.TIMEBASE_FREQ)
        if self._clock_base_set is not None and int(st[S.MTIME_BASE]) != self._clock_base_set:
            # the guest wrote mtime: follow host time from its new value on
            self._clock_t0 = now - self.mtime() / S.TIMEBASE_FREQ
            host = self.mtime()
        guest = self.mtime()
        if host > guest:
            st[S.MTIME_BASE] += host - guest
        elif guest - host > HOST_CLOCK_SLACK:
            # mtime also advances with instructions inside the hart; a hart running faster
            # than the timebase would pull guest time ahead of the host: let the host catch up
            time.sleep((guest - host) / S.TIMEBASE_FREQ)
        self._clock_base_set = int(st[S.MTIME_BASE])
        return min(budget, HOST_CLOCK_BUDGET)

    def next_deadline(self) -> int | None:
        """The mtime at which the next timed interrupt comes: an enabled timer's (mtimecmp,
        or Sstc's stimecmp) or the RTC alarm, whichever is first; None if neither."""
        deadlines = []
        timer = int(core.next_timer_deadline(self.hart.csr, self.hart.st))
        if timer >= 0:
            deadlines.append(timer)
        rtc = self.rtc
        if rtc.alarm_running and rtc.irq_enabled:
            ns = rtc.alarm_next - rtc.time()
            deadlines.append(self.mtime() + max(0, -(-ns // (1_000_000_000 // S.TIMEBASE_FREQ))))
        return min(deadlines) if deadlines else None

    def seconds_until(self, deadline: int | None) -> float | None:
        """Host seconds until mtime reaches `deadline` (--clock host), None for never."""
        if deadline is None:
            return None
        return max(0.0, (deadline - self.mtime()) / S.TIMEBASE_FREQ)

    # --- device tree
    def dtb(self) -> bytes:
        """The device tree blob for this machine as configured (QEMU virt's create_fdt,
        without the PCI, flash, fw-cfg and platform-bus nodes rvemu does not have)."""
        root = fdt.Node("")
        root.set("#address-cells", 2).set("#size-cells", 2)
        root.set("compatible", "riscv-virtio").set("model", "riscv-virtio,qemu")

        chosen = root.child("chosen")
        if self.append:
            chosen.set("bootargs", self.append)
        if self.initrd is not None:
            # hw/riscv/boot.c riscv_load_initrd: one cell (two above 4 GiB)
            for name, value in zip(
                ("linux,initrd-start", "linux,initrd-end"), self.initrd, strict=True
            ):
                if value >> 32:
                    chosen.set_u64(name, value)
                else:
                    chosen.set(name, value)
        chosen.set("stdout-path", f"/soc/serial@{VIRT_UART0:x}")

        for name, value in (("poweroff", 0x5555), ("reboot", 0x7777)):
            node = root.child(name)
            node.set("value", value).set("offset", 0).set("regmap", PHANDLE_TEST)
            node.set("compatible", f"syscon-{name}")

        mem = root.child(f"memory@{self.ram_base:x}")
        mem.set("device_type", "memory").set("reg", fdt.cells64(self.ram_base, self.ram_size))

        cpus = root.child("cpus")
        cpus.set("#address-cells", 1).set("#size-cells", 0)
        cpus.set("timebase-frequency", S.TIMEBASE_FREQ)
        cpu = cpus.child("cpu@0")
        cpu.set("phandle", PHANDLE_CPU).set("device_type", "cpu").set("reg", 0)
        cpu.set("status", "okay").set("compatible", "riscv")
        extensions = self.hart.extensions
        cpu.set("riscv,isa", isa_string(extensions)).set("riscv,isa-base", "rv64i")
        cpu.set("riscv,isa-extensions", isa_extensions(extensions))
        for name in ("zicbom", "zicbop", "zicboz"):  # QEMU names each one's block size
            if extensions & extension_bit(name):
                cpu.set(f"riscv,{name[2:]}-block-size", CACHE_BLOCK)
        cpu.set("mmu-type", "riscv,sv48")
        intc = cpu.child("interrupt-controller")
        intc.set("#interrupt-cells", 1).set("interrupt-controller")
        intc.set("compatible", "riscv,cpu-intc").set("phandle", PHANDLE_INTC)
        core = cpus.child("cpu-map").child("cluster0").child("core0")
        core.set("cpu", PHANDLE_CPU)

        soc = root.child("soc")
        soc.set("#address-cells", 2).set("#size-cells", 2)
        soc.set("compatible", "simple-bus").set("ranges")

        rtc = soc.child(f"rtc@{VIRT_RTC:x}")
        rtc.set("interrupts", RTC_IRQ).set("interrupt-parent", PHANDLE_PLIC)
        rtc.set("reg", fdt.cells64(VIRT_RTC, self.rtc.size))
        rtc.set("compatible", "google,goldfish-rtc")

        serial = soc.child(f"serial@{VIRT_UART0:x}")
        serial.set("interrupts", UART0_IRQ).set("interrupt-parent", PHANDLE_PLIC)
        serial.set("clock-frequency", UART_CLOCK)
        serial.set("reg", fdt.cells64(VIRT_UART0, self.uart.size))
        serial.set("compatible", "ns16550a")

        test = soc.child(f"test@{VIRT_TEST:x}")
        test.set("phandle", PHANDLE_TEST)
        test.set("reg", fdt.cells64(VIRT_TEST, self.finisher.size))
        test.set("compatible", ["sifive,test1", "sifive,test0", "syscon"])

        for slot in reversed(range(VIRTIO_COUNT)):
            base = VIRT_VIRTIO + slot * VIRTIO_SLOT_SIZE
            node = soc.child(f"virtio_mmio@{base:x}")
            node.set("interrupts", VIRTIO_IRQ + slot).set("interrupt-parent", PHANDLE_PLIC)
            node.set("reg", fdt.cells64(base, VIRTIO_SLOT_SIZE))
            node.set("compatible", "virtio,mmio")

        plic = soc.child(f"plic@{VIRT_PLIC:x}")
        plic.set("phandle", PHANDLE_PLIC).set("riscv,ndev", NUM_SOURCES)
        plic.set("reg", fdt.cells64(VIRT_PLIC, PLIC_SIZE))
        plic.set("interrupts-extended", [PHANDLE_INTC, S.IRQ_M_EXT, PHANDLE_INTC, S.IRQ_S_EXT])
        plic.set("interrupt-controller")
        plic.set("compatible", ["sifive,plic-1.0.0", "riscv,plic0"])
        plic.set("#address-cells", 0).set("#interrupt-cells", 1)

        clint = soc.child(f"clint@{VIRT_CLINT:x}")
        clint.set("interrupts-extended", [PHANDLE_INTC, S.IRQ_M_SOFT, PHANDLE_INTC, S.IRQ_M_TIMER])
        clint.set("reg", fdt.cells64(VIRT_CLINT, S.CLINT_SIZE))
        clint.set("compatible", ["sifive,clint0", "riscv,clint0"])
        return fdt.dtb(root)


# hw/riscv/virt.c hands out phandles in this order for one hart
PHANDLE_CPU, PHANDLE_INTC, PHANDLE_PLIC, PHANDLE_TEST = 1, 2, 3, 4


def _stdout_write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
