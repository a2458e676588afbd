"""virtio-rng: fills the driver's buffers with host entropy (virtio spec 1.2, 5.4)."""

from __future__ import annotations

import os

from .virtio_mmio import VirtioDevice, VirtioMmio

DEVICE_ID = 4
QUEUE_SIZE = 8  # QEMU hw/virtio/virtio-rng.c
MAX_CHUNK = 1 << 16  # bytes per buffer; a driver asking for more gets this much


class VirtioRng(VirtioDevice):
    device_id = DEVICE_ID
    queue_sizes = (QUEUE_SIZE,)

    def __init__(self, source=os.urandom) -> None:
        self.source = source

    def queue_notify(self, transport: VirtioMmio, index: int) -> None:
        q, mem = transport.queues[index], transport.mem
        while True:
            chain = q.pop(mem)
            if chain is None:
                break
            written = chain.write(mem, self.source(min(chain.writable_len, MAX_CHUNK)))
            q.push(mem, chain, written)
        transport.used(index)
