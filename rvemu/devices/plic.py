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


class Plic:
    """Level-triggered sources with a gateway per source: a source whose line is high
    becomes pending unless a request from it is already claimed and not yet completed;
    completing a source whose line is still high makes it pending again."""

    size = PLIC_SIZE

    def __init__(self, num_contexts: int = 2) -> None:
        self.num_contexts = num_contexts
        self.priority = [0] * NUM_SOURCES
        self.level = [False] * NUM_SOURCES
        self.pending = [False] * NUM_SOURCES
        self.claimed = [False] * NUM_SOURCES
        self.enable = [[0] * WORDS for _ in range(num_contexts)]
        self.threshold = [0] * num_contexts

    # --- the device side
    def set_level(self, irq: int, level: bool) -> None:
        if not 0 < irq < NUM_SOURCES:
            return
        self.level[irq] = level
        if not self.claimed[irq]:
            # QEMU's sifive_plic_irq_request: pending follows the line until claimed
            self.pending[irq] = level

    def _enabled(self, ctx: int, irq: int) -> bool:
        return bool((self.enable[ctx][irq >> 5] >> (irq & 31)) & 1)

    def best(self, ctx: int) -> int:
        """The source a claim by `ctx` would return (highest priority, then lowest id)."""
        best, best_prio = 0, self.threshold[ctx]
        for irq in range(1, NUM_SOURCES):
            if self.pending[irq] and self.priority[irq] > best_prio and self._enabled(ctx, irq):
                best, best_prio = irq, self.priority[irq]
        return best

    def output(self, ctx: int) -> bool:
        """The interrupt line from the PLIC to context `ctx` (0 = hart 0 M, 1 = hart 0 S)."""
        return 0 <= ctx < self.num_contexts and self.best(ctx) != 0

    # --- the bus side
    def read(self, offset: int, size: int) -> int:
        if size != 4 or offset & 3:
            return 0  # QEMU's sifive_plic only implements aligned 32-bit accesses
        if offset < PENDING_BASE:
            irq = offset >> 2
            return self.priority[irq] if irq < NUM_SOURCES else 0
        if offset < ENABLE_BASE:
            word = (offset - PENDING_BASE) >> 2
            if word >= WORDS:
                return 0
            return sum(
                1 << i
                for i in range(32)
                if 32 * word + i < NUM_SOURCES and self.pending[32 * word + i]
            )
        if offset < CONTEXT_BASE:
            ctx, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            word >>= 2
            if ctx < self.num_contexts and word < WORDS:
                return self.enable[ctx][word]
            return 0
        ctx, reg = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if ctx >= self.num_contexts:
            return 0
        if reg == 0:
            return self.threshold[ctx]
        if reg == 4:
            irq = self.best(ctx)
            if irq:
                self.pending[irq] = False
                self.claimed[irq] = True
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
                if word == 0:
                    value &= ~1  # source 0 does not exist
                if word == WORDS - 1 and NUM_SOURCES % 32:
                    value &= (1 << (NUM_SOURCES % 32)) - 1
                self.enable[ctx][word] = value
            return
        ctx, reg = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if ctx >= self.num_contexts:
            return
        if reg == 0:
            if value <= MAX_PRIORITY:
                self.threshold[ctx] = value
        elif reg == 4:
            irq = value
            # the PLIC spec: a completion for a source not enabled for the context is ignored
            if 0 < irq < NUM_SOURCES and self._enabled(ctx, irq) and self.claimed[irq]:
                self.claimed[irq] = False
                if self.level[irq]:
                    self.pending[irq] = True
