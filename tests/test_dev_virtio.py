"""virtio-mmio transport, virtio-blk and virtio-rng at register level, with the split
virtqueue built by hand in guest RAM, including what hostile drivers do."""

from __future__ import annotations

import struct

import pytest

from rvemu import Machine
from rvemu.devices import virtio_mmio as V
from rvemu.devices.virtio_blk import DiskError, VirtioBlk
from rvemu.devices.virtio_rng import MAX_CHUNK, VirtioRng

RAM = 0x8000_0000
DESC, AVAIL, USED = RAM + 0x10000, RAM + 0x11000, RAM + 0x12000
BUF = RAM + 0x20000
QSIZE = 8


class Driver:
    """Drives one transport the way a virtio 1.x driver does."""

    def __init__(self, device, memory: str = "1M") -> None:
        self.m = Machine(memory=memory)
        self.mem = self.m.board.memory
        self.t = V.VirtioMmio(self.mem, device)
        self.avail_idx = 0
        self.used_seen = 0

    def r(self, off: int) -> int:
        return self.t.read(off, 4)

    def w(self, off: int, value: int) -> None:
        self.t.write(off, 4, value)

    def init(self, features: int = V.F_VERSION_1, queues: int = 1) -> None:
        self.w(V.R_STATUS, 0)
        self.w(V.R_STATUS, V.S_ACKNOWLEDGE | V.S_DRIVER)
        for sel in (0, 1):
            self.w(V.R_DRIVER_FEATURES_SEL, sel)
            self.w(V.R_DRIVER_FEATURES, (features >> (32 * sel)) & 0xFFFF_FFFF)
        self.w(V.R_STATUS, V.S_ACKNOWLEDGE | V.S_DRIVER | V.S_FEATURES_OK)
        assert self.r(V.R_STATUS) & V.S_FEATURES_OK
        for q in range(queues):
            self.w(V.R_QUEUE_SEL, q)
            self.w(V.R_QUEUE_NUM, QSIZE)
            for reg, addr in ((V.R_QUEUE_DESC_LOW, DESC), (V.R_QUEUE_DRIVER_LOW, AVAIL),
                              (V.R_QUEUE_DEVICE_LOW, USED)):  # fmt: skip
                self.w(reg, addr & 0xFFFF_FFFF)
                self.w(reg + 4, addr >> 32)
            self.w(V.R_QUEUE_READY, 1)
        self.w(V.R_STATUS, V.S_ACKNOWLEDGE | V.S_DRIVER | V.S_FEATURES_OK | V.S_DRIVER_OK)

    def desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0,
             table: int = DESC) -> None:  # fmt: skip
        self.mem.write(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def submit(self, head: int, notify: bool = True) -> None:
        self.mem.write_int(AVAIL + 4 + 2 * (self.avail_idx % QSIZE), 2, head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.write_int(AVAIL + 2, 2, self.avail_idx)
        if notify:
            self.w(V.R_QUEUE_NOTIFY, 0)

    def used(self) -> list[tuple[int, int]]:
        idx = self.mem.read_int(USED + 2, 2)
        out = []
        while self.used_seen != idx:
            slot = USED + 4 + 8 * (self.used_seen % QSIZE)
            out.append((self.mem.read_int(slot, 4), self.mem.read_int(slot + 4, 4)))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out

    @property
    def broken(self) -> bool:
        return bool(self.r(V.R_STATUS) & V.S_NEEDS_RESET)


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(b"".join(bytes([k]) * 512 for k in range(16)))
    return path


def blk_request(d: Driver, kind: int, sector: int, data_len: int = 0, data_in: bool = True,
                payload: bytes = b"") -> tuple[int, int]:  # fmt: skip
    """(status byte, used length) of one request made of header, data, status."""
    d.mem.write(BUF, struct.pack("<IIQ", kind, 0, sector))
    if payload:
        d.mem.write(BUF + 0x100, payload)
    d.mem.write(BUF + 0x3000, b"\xff")
    d.desc(0, BUF, 16, V.DESC_F_NEXT, 1)
    if data_len:
        d.desc(1, BUF + 0x100, data_len, V.DESC_F_NEXT | (V.DESC_F_WRITE if data_in else 0), 2)
    else:
        d.desc(0, BUF, 16, V.DESC_F_NEXT, 2)
    d.desc(2, BUF + 0x3000, 1, V.DESC_F_WRITE)
    d.submit(0)
    used = d.used()
    assert [h for h, _ in used] == [0]
    return d.mem.read(BUF + 0x3000, 1)[0], used[0][1]


# ------------------------------------------------------------------- transport registers


def test_identification_registers_and_empty_slot():
    d = Driver(VirtioRng())
    assert (d.r(V.R_MAGIC), d.r(V.R_VERSION), d.r(V.R_DEVICE_ID)) == (0x74726976, 2, 4)
    assert d.r(V.R_VENDOR_ID) == 0x554D4551
    empty = V.VirtioMmio(d.mem, None)
    assert (empty.read(V.R_MAGIC, 4), empty.read(V.R_VERSION, 4)) == (0x74726976, 2)
    assert empty.read(V.R_DEVICE_ID, 4) == 0
    empty.write(V.R_STATUS, 4, 0xFF)
    assert empty.read(V.R_STATUS, 4) == 0


def test_feature_negotiation_accepts_what_qemu_accepts_and_keeps_only_offered_bits(disk):
    """QEMU 7.2's virtio-mmio (force-legacy=false) sets FEATURES_OK for a driver that never
    writes VERSION_1 (xv6 writes bits 0-31 only) and drops bits it did not offer."""
    d = Driver(VirtioBlk(str(disk)))
    d.w(V.R_DEVICE_FEATURES_SEL, 1)
    assert d.r(V.R_DEVICE_FEATURES) & 1  # VERSION_1 is offered
    d.w(V.R_DEVICE_FEATURES_SEL, 0)
    offered = d.r(V.R_DEVICE_FEATURES)
    for features in (0, 1 << 9, V.F_VERSION_1 | 1 << 40 | 1 << 5 | 1 << 9):
        d.w(V.R_STATUS, 0)
        d.w(V.R_STATUS, 3)
        for sel in (0, 1):
            d.w(V.R_DRIVER_FEATURES_SEL, sel)
            d.w(V.R_DRIVER_FEATURES, (features >> (32 * sel)) & 0xFFFF_FFFF)
        d.w(V.R_STATUS, 3 | V.S_FEATURES_OK)
        assert d.r(V.R_STATUS) == 3 | V.S_FEATURES_OK
        assert d.t.driver_features == features & (offered | V.F_VERSION_1)
        d.w(V.R_DRIVER_FEATURES, 0xFFFF_FFFF)  # too late: negotiation is over
        assert d.t.driver_features == features & (offered | V.F_VERSION_1)


def test_a_driver_that_writes_only_the_low_feature_word_reads_and_writes_the_disk(disk):
    """xv6's virtio_disk_init: features from word 0 only, FEATURES_OK, then requests."""
    d = Driver(VirtioBlk(str(disk)))
    d.init(features=0)  # no feature bits at all, VERSION_1 included
    assert d.r(V.R_STATUS) == 15
    assert blk_request(d, 0, 3, 512) == (0, 513)
    assert d.mem.read(BUF + 0x100, 512) == bytes([3]) * 512


def test_queue_registers_and_reset():
    d = Driver(VirtioRng())
    d.init()
    d.w(V.R_QUEUE_SEL, 0)
    assert d.r(V.R_QUEUE_NUM_MAX) == 8 and d.r(V.R_QUEUE_READY) == 1
    assert (d.r(V.R_QUEUE_DESC_LOW), d.r(V.R_QUEUE_DEVICE_LOW)) == (DESC, USED)
    d.w(V.R_QUEUE_SEL, 5)  # no such queue
    assert d.r(V.R_QUEUE_NUM_MAX) == 0
    d.w(V.R_QUEUE_READY, 1)
    d.w(V.R_STATUS, 0)
    d.w(V.R_QUEUE_SEL, 0)
    assert d.r(V.R_STATUS) == 0 and d.r(V.R_QUEUE_READY) == 0 and d.r(V.R_QUEUE_DESC_LOW) == 0


def test_used_buffer_interrupt_ack_and_no_interrupt_flag():
    d = Driver(VirtioRng())
    d.init()
    d.desc(0, BUF, 16, V.DESC_F_WRITE)
    d.submit(0)
    assert d.used() == [(0, 16)]
    assert d.r(V.R_INTERRUPT_STATUS) == 1 and d.t.interrupt_pending()
    d.w(V.R_INTERRUPT_ACK, 1)
    assert d.r(V.R_INTERRUPT_STATUS) == 0 and not d.t.interrupt_pending()
    d.mem.write_int(AVAIL, 2, V.AVAIL_F_NO_INTERRUPT)
    d.submit(0)
    assert d.used() == [(0, 16)] and d.r(V.R_INTERRUPT_STATUS) == 0


def test_notify_before_driver_ok_is_ignored():
    d = Driver(VirtioRng())
    d.init()
    d.w(V.R_STATUS, 0)
    d.desc(0, BUF, 16, V.DESC_F_WRITE)
    d.submit(0)
    assert d.mem.read_int(USED + 2, 2) == 0


def test_non_word_accesses_and_unknown_offsets_are_harmless():
    d = Driver(VirtioRng())
    for off in range(0, 0x100, 1):
        for size in (1, 2, 8):
            d.t.write(off, size, (1 << (8 * size)) - 1)
            d.t.read(off, size)
    assert d.r(V.R_STATUS) == 0
    assert d.t.read(0x100, 4) == 0 and d.t.read(0xFFC, 4) == 0  # rng has no config


# ------------------------------------------------------------------- hostile drivers


def hostile(setup) -> Driver:
    d = Driver(VirtioRng())
    d.init()
    setup(d)
    return d


@pytest.mark.parametrize(
    "name,setup",
    [
        ("descriptor loop", lambda d: (d.desc(0, BUF, 8, V.DESC_F_WRITE | V.DESC_F_NEXT, 1),
                                        d.desc(1, BUF, 8, V.DESC_F_WRITE | V.DESC_F_NEXT, 0),
                                        d.submit(0))),
        ("buffer outside RAM", lambda d: (d.desc(0, 0x1000, 64, V.DESC_F_WRITE), d.submit(0))),
        ("buffer running past RAM", lambda d: (d.desc(0, RAM + (1 << 20) - 8, 64,
                                                      V.DESC_F_WRITE), d.submit(0))),
        ("buffer wrapping 2^64", lambda d: (d.desc(0, (1 << 64) - 8, 64, V.DESC_F_WRITE),
                                            d.submit(0))),
        ("head beyond the table", lambda d: d.submit(9)),
        ("next beyond the table", lambda d: (d.desc(0, BUF, 8, V.DESC_F_WRITE | V.DESC_F_NEXT,
                                                    200), d.submit(0))),
        ("available index leaps", lambda d: (d.mem.write_int(AVAIL + 2, 2, 100),
                                             d.w(V.R_QUEUE_NOTIFY, 0))),
        ("rings outside RAM", lambda d: (d.w(V.R_QUEUE_DRIVER_LOW, 0x10),
                                         d.w(V.R_QUEUE_NOTIFY, 0))),
        ("descriptor table outside RAM", lambda d: (d.w(V.R_QUEUE_DESC_LOW, 0xFFFF_F000),
                                                    d.w(V.R_QUEUE_DESC_HIGH, 0xFFFF_FFFF),
                                                    d.submit(0))),
        ("queue size not a power of two", lambda d: (d.w(V.R_QUEUE_NUM, 6), d.submit(0))),
        ("queue size above the maximum", lambda d: (d.w(V.R_QUEUE_NUM, 1 << 20), d.submit(0))),
        ("nested indirect", lambda d: (d.desc(0, BUF, 32, V.DESC_F_INDIRECT),
                                       d.desc(0, BUF + 0x40, 16, V.DESC_F_INDIRECT, table=BUF),
                                       d.submit(0))),
        ("indirect table of odd size", lambda d: (d.desc(0, BUF, 20, V.DESC_F_INDIRECT),
                                                  d.submit(0))),
        ("huge indirect table", lambda d: (d.desc(0, RAM, 1 << 20, V.DESC_F_INDIRECT),
                                           d.submit(0))),
        ("indirect loop", lambda d: (d.desc(0, BUF, 32, V.DESC_F_INDIRECT),
                                     d.desc(0, BUF + 0x100, 8, V.DESC_F_WRITE | V.DESC_F_NEXT,
                                            1, table=BUF),
                                     d.desc(1, BUF + 0x100, 8, V.DESC_F_WRITE | V.DESC_F_NEXT,
                                            0, table=BUF),
                                     d.submit(0))),
    ],
)  # fmt: skip
def test_malformed_queues_make_the_device_need_a_reset(name, setup):
    d = hostile(setup)
    assert d.broken, name
    assert d.r(V.R_INTERRUPT_STATUS) & V.INT_CONFIG_CHANGE
    # it stays quiet until reset, then works again
    d.desc(0, BUF, 16, V.DESC_F_WRITE)
    d.w(V.R_QUEUE_NOTIFY, 0)
    d.init()
    d.used_seen = d.avail_idx = 0
    d.mem.write_int(AVAIL, 4, 0)
    d.mem.write_int(USED, 4, 0)
    d.desc(0, BUF, 16, V.DESC_F_WRITE)
    d.submit(0)
    assert not d.broken and d.used() == [(0, 16)]


def test_indirect_descriptors_work():
    d = Driver(VirtioRng())
    d.init(V.F_VERSION_1 | V.F_INDIRECT_DESC)
    d.desc(0, BUF + 0x100, 4, V.DESC_F_WRITE | V.DESC_F_NEXT, 1, table=BUF)
    d.desc(1, BUF + 0x200, 6, V.DESC_F_WRITE, table=BUF)
    d.desc(3, BUF, 32, V.DESC_F_INDIRECT)
    d.submit(3)
    assert d.used() == [(3, 10)]


def test_rng_caps_a_huge_request_and_fills_the_buffer():
    d = Driver(VirtioRng(), memory="1M")
    d.init()
    d.desc(0, RAM + 0x40000, 0x80000, V.DESC_F_WRITE)
    d.submit(0)
    assert d.used() == [(0, MAX_CHUNK)]
    assert any(d.mem.read(RAM + 0x40000, MAX_CHUNK))


# ------------------------------------------------------------------- virtio-blk


def test_blk_config_space(disk):
    d = Driver(VirtioBlk(str(disk)))
    assert d.t.read(0x100, 4) == 16 and d.t.read(0x104, 4) == 0  # capacity in sectors
    assert d.t.read(0x100 + 20, 4) == 512  # blk_size
    assert d.t.read(0x100, 1) == 16 and d.t.read(0x100, 8) == 16


def test_blk_read_write_flush_get_id(disk):
    d = Driver(VirtioBlk(str(disk), serial="abc"))
    d.init()
    assert blk_request(d, 0, 3, 1024) == (0, 1025)
    assert d.mem.read(BUF + 0x100, 1024) == b"\x03" * 512 + b"\x04" * 512
    assert blk_request(d, 1, 5, 512, data_in=False, payload=b"W" * 512) == (0, 1)
    assert disk.read_bytes()[5 * 512 : 6 * 512] == b"W" * 512
    assert blk_request(d, 4, 0) == (0, 1)
    assert blk_request(d, 8, 0, 20)[0] == 0
    assert d.mem.read(BUF + 0x100, 20) == b"abc" + bytes(17)


@pytest.mark.parametrize(
    "kind,sector,length",
    [(0, 16, 512), (0, 15, 1024), (0, (1 << 64) - 1, 512), (0, 0, 100), (1, 16, 512),
     (1, 0, 300)],
)  # fmt: skip
def test_blk_bad_ranges_are_ioerr_and_leave_the_file_alone(disk, kind, sector, length):
    before = disk.read_bytes()
    d = Driver(VirtioBlk(str(disk)))
    d.init()
    status, _ = blk_request(d, kind, sector, length, data_in=kind == 0, payload=b"Z" * length)
    assert status == 1 and not d.broken
    assert disk.read_bytes() == before


def test_blk_read_only_refuses_writes_and_unknown_requests_are_unsupp(disk):
    before = disk.read_bytes()
    d = Driver(VirtioBlk(str(disk), read_only=True))
    d.init()
    assert blk_request(d, 1, 0, 512, data_in=False, payload=b"Q" * 512)[0] == 1
    assert blk_request(d, 77, 0)[0] == 2
    assert disk.read_bytes() == before


def test_blk_request_without_status_byte_breaks_the_device(disk):
    d = Driver(VirtioBlk(str(disk)))
    d.init()
    d.mem.write(BUF, struct.pack("<IIQ", 0, 0, 0))
    d.desc(0, BUF, 16)
    d.submit(0)
    assert d.broken
    d2 = Driver(VirtioBlk(str(disk)))
    d2.init()
    d2.desc(0, BUF, 8, V.DESC_F_NEXT, 1)  # header too short
    d2.desc(1, BUF + 0x3000, 1, V.DESC_F_WRITE)
    d2.submit(0)
    assert d2.broken


def test_blk_never_creates_or_opens_files_it_was_not_given(tmp_path):
    with pytest.raises(DiskError):
        VirtioBlk(str(tmp_path / "missing.img"))
    assert not (tmp_path / "missing.img").exists()


# ------------------------------------------------------------------- DMA and decoded code


def test_dma_into_code_invalidates_decoded_instructions():
    m = Machine(memory="1M")
    li_a0_1, li_a0_2, loop = 0x00100513, 0x00200513, 0x0000006F
    m.write_phys(RAM, struct.pack("<II", li_a0_1, loop))
    m.hart.pc = RAM
    m.hart.run(10)
    assert m.hart.reg("a0") == 1
    m.board.memory.write(RAM, struct.pack("<I", li_a0_2))  # as a virtio device would
    m.hart.pc = RAM
    m.hart.run(10)
    assert m.hart.reg("a0") == 2


def test_blk_the_last_sector_and_a_request_ending_at_the_end_are_served(disk):
    """The disk's edges are the guest's: sector 15 of 16 is read and written, and so is
    a request of several sectors that ends exactly at the end."""
    d = Driver(VirtioBlk(str(disk)))
    d.init()
    assert blk_request(d, 0, 15, 512) == (0, 513)
    assert d.mem.read(BUF + 0x100, 512) == b"\x0f" * 512
    assert blk_request(d, 0, 13, 1536) == (0, 1537)
    assert d.mem.read(BUF + 0x100, 1536) == b"\x0d" * 512 + b"\x0e" * 512 + b"\x0f" * 512
    assert blk_request(d, 1, 15, 512, data_in=False, payload=b"E" * 512) == (0, 1)
    assert disk.read_bytes()[-512:] == b"E" * 512
    assert blk_request(d, 1, 14, 1024, data_in=False, payload=b"F" * 1024) == (0, 1)
    assert disk.read_bytes()[-1024:] == b"F" * 1024
    assert blk_request(d, 0, 16, 0)[0] == 0  # no data at the end: nothing to refuse


def test_blk_capacity_rounds_a_partial_last_sector_down(tmp_path):
    path = tmp_path / "odd.img"
    path.write_bytes(bytes(3 * 512 + 100))
    d = Driver(VirtioBlk(str(path)))
    d.init()
    assert d.t.read(0x100, 8) == 3
    assert blk_request(d, 0, 2, 512)[0] == 0
    assert blk_request(d, 0, 3, 512)[0] == 1  # the partial sector is not the guest's
    assert path.stat().st_size == 3 * 512 + 100


# ------------------------------------------------------------------- edges (mutation testing)


def test_guest_memory_edges_are_the_first_and_last_ram_bytes():
    m = Machine(memory="1M")
    mem, end = m.board.memory, RAM + (1 << 20)
    assert mem.offset(RAM, 1) == 0 and mem.offset(end - 1, 1) == (1 << 20) - 1
    assert mem.offset(end, 0) == 1 << 20  # empty, at the end: nothing outside
    for addr, length in ((RAM - 1, 1), (end - 1, 2), (end, 1), (RAM, -1), ((1 << 64) - 1, 2)):
        assert mem.offset(addr, length) == -1, (hex(addr), length)
        assert mem.read(addr, length) is None
    assert mem.write(end - 1, b"z") and m.ram[-1] == ord("z")
    assert not mem.write(end - 1, b"zz") and m.ram[-1] == ord("z")
    assert mem.write_int(RAM, 2, 0x1_2345) and mem.read_int(RAM, 2) == 0x2345  # truncated


def test_a_full_ring_at_once_is_served_and_one_more_breaks():
    d = Driver(VirtioRng())
    d.init()
    for i in range(QSIZE):
        d.desc(i, BUF + 0x100 * i, 8, V.DESC_F_WRITE)
        d.submit(i, notify=False)
    d.w(V.R_QUEUE_NOTIFY, 0)
    assert not d.broken and len(d.used()) == QSIZE
    d.mem.write_int(AVAIL + 2, 2, (d.avail_idx + QSIZE + 1) & 0xFFFF)  # one past a full ring
    d.w(V.R_QUEUE_NOTIFY, 0)
    assert d.broken


def test_a_chain_of_the_whole_table_is_not_a_loop_and_next_must_be_inside_it():
    d = Driver(VirtioRng())
    d.init()
    for i in range(QSIZE):  # 0 -> 1 -> ... -> 7: every descriptor once
        d.desc(i, BUF + 0x100 * i, 4, V.DESC_F_WRITE | (V.DESC_F_NEXT if i < QSIZE - 1 else 0),
               i + 1)  # fmt: skip
    d.submit(0)
    assert not d.broken and d.used() == [(0, 4 * QSIZE)]
    d.desc(0, BUF, 4, V.DESC_F_WRITE | V.DESC_F_NEXT, QSIZE)  # next == the table's size
    d.submit(0)
    assert d.broken


def test_descriptors_at_the_edges_of_ram():
    """A buffer at RAM's first byte, and a descriptor table ending at its last byte."""
    d = Driver(VirtioRng())
    d.init()
    d.desc(0, RAM, 8, V.DESC_F_WRITE)
    d.submit(0)
    assert not d.broken and d.used() == [(0, 8)]
    last = RAM + (1 << 20) - 16 * QSIZE  # the table fills the last 128 bytes of RAM
    d.w(V.R_STATUS, 0)
    d.w(V.R_QUEUE_SEL, 0)
    d.init()
    d.t.queues[0].desc = last
    d.avail_idx = d.used_seen = 0
    d.mem.write_int(AVAIL + 2, 2, 0)
    d.mem.write_int(USED + 2, 2, 0)
    d.desc(QSIZE - 1, BUF, 8, V.DESC_F_WRITE, table=last)
    d.submit(QSIZE - 1)
    assert not d.broken and d.used() == [(QSIZE - 1, 8)]


def test_indirect_tables_edges():
    """1024 entries (QEMU's limit) are accepted, 1025 or 0 bytes are not; an indirect
    descriptor may not be chained, nor point to another indirect table."""

    def run(setup) -> Driver:  # noqa: ANN001
        d = Driver(VirtioRng(), memory="1M")
        d.init(V.F_VERSION_1 | V.F_INDIRECT_DESC)
        setup(d)
        d.submit(0)
        return d

    table = RAM + 0x40000
    d = run(lambda d: (d.desc(1023, BUF, 8, V.DESC_F_WRITE, table=table),
                       d.desc(0, BUF, 8, V.DESC_F_WRITE | V.DESC_F_NEXT, 1023, table=table),
                       d.desc(0, table, 16 * 1024, V.DESC_F_INDIRECT)))  # fmt: skip
    assert not d.broken and d.used() == [(0, 16)]
    for length in (16 * 1025, 0, 8):
        assert run(lambda d, n=length: d.desc(0, table, n, V.DESC_F_INDIRECT)).broken, length
    chained = run(lambda d: (d.desc(0, BUF + 0x100, 8, V.DESC_F_WRITE, table=table),
                             d.desc(0, table, 16, V.DESC_F_INDIRECT | V.DESC_F_NEXT, 1),
                             d.desc(1, BUF, 8, V.DESC_F_WRITE)))  # fmt: skip
    assert chained.broken
    nested = run(lambda d: (d.desc(0, BUF + 0x100, 8, V.DESC_F_WRITE, table=table + 0x100),
                            d.desc(0, table + 0x100, 16, V.DESC_F_INDIRECT, table=table),
                            d.desc(0, table, 16, V.DESC_F_INDIRECT)))  # fmt: skip
    assert nested.broken  # (the inner table is a good one: only the nesting is wrong)


def test_blk_requests_up_to_the_largest_are_served(tmp_path):
    from rvemu.devices.virtio_blk import MAX_REQUEST

    path = tmp_path / "big.img"
    with open(path, "wb") as f:
        f.truncate(MAX_REQUEST + 2 * 512)
    d = Driver(VirtioBlk(str(path)), memory="32M")
    d.init()
    assert blk_request(d, 0, 1, MAX_REQUEST) == (0, MAX_REQUEST + 1)
    assert blk_request(d, 0, 0, MAX_REQUEST + 512)[0] == 1
