"""PLIC: the platform-level interrupt controller, laid out as QEMU's hw/intc/sifive_plic.c
maps it on the virt machine (hw/riscv/virt.c: one M-mode and one S-mode context per hart)."""

from __future__ import annotations

# hw/riscv/virt.h: VIRT_IRQCHIP_NUM_SOURCES, VIRT_IRQCHIP_NUM_PRIO_BITS, VIRT_PLIC_* offsets
NUM_SOURCES = 96  # sources 1..95 usable, 0 means "none"
MAX_PRIORITY = 7
PRIORITY_BASE = 0x0
PENDING_BASE = 0x1000
ENABLE_BASE = 0x2000
ENABLE_STRIDE = 0x80
CONTEXT_BASE = 0x20_0000
CONTEXT_STRIDE = 0x1000
PLIC_SIZE = CONTEXT_BASE + 1024 * CONTEXT_STRIDE  # VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2)

WORDS = (NUM_SOURCES + 31) // 32
SOURCES_MASK = ((1 << NUM_SOURCES) - 1) & ~1  # sources 1..NUM_SOURCES-1 exist


class Plic:
    """The gateway of QEMU 7.2's sifive_plic, not the PLIC spec's: a source's pending bit
    is set to whatever level the device last signalled (sifive_plic_irq_request, called
    at every qemu_set_irq, whether the level changed or not, and whether or not the
    source is claimed); a claim clears it; a completion only ends the claim. A line that
    stays high is therefore not pending again after its completion until the device
    signals it again: xv6 never reads the UART's IIR, so its THR-empty interrupt stays
    high, and a PLIC that re-pended it on completion would interrupt it forever.

    Pending, claimed and each context's enables are bit masks (bit n = source n)."""

    access_sizes = (4,)  # QEMU sifive_plic_ops .valid: 4 bytes only
    size = PLIC_SIZE

    def __init__(self, num_contexts: int = 2) -> None:
        self.num_contexts = num_contexts
        self.priority = [0] * NUM_SOURCES
        self.pending = 0
        self.claimed = 0
        self.enable = [0] * num_contexts
        self.threshold = [0] * num_contexts

    # --- the device side
    def set_level(self, irq: int, level: bool) -> None:
        """A device signals its line (QEMU's qemu_set_irq): pending follows it."""
        if not 0 < irq < NUM_SOURCES:
            return
        if level:
            self.pending |= 1 << irq
        else:
            self.pending &= ~(1 << irq)

    def best(self, ctx: int) -> int:
        """The source a claim by `ctx` would return (highest priority, then lowest id)."""
        candidates = self.pending & ~self.claimed & self.enable[ctx]
        best, best_prio = 0, self.threshold[ctx]
        while candidates:
            low = candidates & -candidates
            irq = low.bit_length() - 1
            if self.priority[irq] > best_prio:
                best, best_prio = irq, self.priority[irq]
            candidates ^= low
        return best

    def output(self, ctx: int) -> bool:
        """The interrupt line from the PLIC to context `ctx` (0 = hart 0 M, 1 = hart 0 S)."""
        if not 0 <= ctx < self.num_contexts or not self.pending & ~self.claimed & self.enable[ctx]:
            return False
        return self.best(ctx) != 0

    # --- the bus side
    def read(self, offset: int, size: int) -> int:
        if size != 4 or offset & 3:
            return 0  # QEMU's sifive_plic only implements aligned 32-bit accesses
        if offset < PENDING_BASE:
            irq = offset >> 2
            return self.priority[irq] if irq < NUM_SOURCES else 0
        if offset < ENABLE_BASE:
            word = (offset - PENDING_BASE) >> 2
            return (self.pending >> (32 * word)) & 0xFFFF_FFFF if word < WORDS else 0
        if offset < CONTEXT_BASE:
            ctx, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            word >>= 2
            if ctx < self.num_contexts and word < WORDS:
                return (self.enable[ctx] >> (32 * word)) & 0xFFFF_FFFF
            return 0
        ctx, reg = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if ctx >= self.num_contexts:
            return 0
        if reg == 0:
            return self.threshold[ctx]
        if reg == 4:
            irq = self.best(ctx)
            if irq:
                self.pending &= ~(1 << irq)
                self.claimed |= 1 << irq
            return irq
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 4 or offset & 3:
            return
        value &= 0xFFFF_FFFF
        if offset < PENDING_BASE:
            irq = offset >> 2
            # QEMU 7.2 sifive_plic_write: values above the priority range are ignored
            if 0 < irq < NUM_SOURCES and value <= MAX_PRIORITY:
                self.priority[irq] = value
            return
        if offset < ENABLE_BASE:
            return  # pending bits are read-only
        if offset < CONTEXT_BASE:
            ctx, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            word >>= 2
            if ctx < self.num_contexts and word < WORDS:
                shift = 32 * word
                mask = SOURCES_MASK & (0xFFFF_FFFF << shift)
                self.enable[ctx] = (self.enable[ctx] & ~mask) | ((value << shift) & mask)
            return
        ctx, reg = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if ctx >= self.num_contexts:
            return
        if reg == 0:
            if value <= MAX_PRIORITY:
                self.threshold[ctx] = value
        elif reg == 4:
            bit = 1 << value if value < NUM_SOURCES else 0
            # the PLIC spec: a completion for a source not enabled for the context is ignored
            if bit & self.enable[ctx] & self.claimed:
                self.claimed &= ~bit  # sifive_plic_write: nothing is pended here
