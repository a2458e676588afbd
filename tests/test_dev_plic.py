"""PLIC at register level: priorities, pending, enables, thresholds, claim/complete."""

from rvemu.devices.plic import (
    CONTEXT_BASE,
    CONTEXT_STRIDE,
    ENABLE_BASE,
    ENABLE_STRIDE,
    PENDING_BASE,
    Plic,
)


def claim_addr(ctx: int) -> int:
    return CONTEXT_BASE + ctx * CONTEXT_STRIDE + 4


def threshold_addr(ctx: int) -> int:
    return CONTEXT_BASE + ctx * CONTEXT_STRIDE


def enable(p: Plic, ctx: int, *irqs: int) -> None:
    words = {}
    for irq in irqs:
        words[irq >> 5] = words.get(irq >> 5, 0) | 1 << (irq & 31)
    for w, v in words.items():
        p.write(ENABLE_BASE + ctx * ENABLE_STRIDE + 4 * w, 4, v)


def test_priority_registers_hold_three_bits_and_source0_is_hardwired():
    p = Plic()
    p.write(4 * 10, 4, 5)
    assert p.read(4 * 10, 4) == 5
    p.write(4 * 10, 4, 9)  # out of range: ignored, as QEMU 7.2 does
    assert p.read(4 * 10, 4) == 5
    p.write(0, 4, 3)
    assert p.read(0, 4) == 0


def test_pending_follows_level_and_needs_priority_enable_and_threshold():
    p = Plic()
    p.set_level(10, True)
    assert p.read(PENDING_BASE, 4) == 1 << 10
    assert not p.output(0)  # priority 0 never interrupts
    p.write(4 * 10, 4, 1)
    assert not p.output(0)  # not enabled
    enable(p, 0, 10)
    assert p.output(0) and not p.output(1)
    p.write(threshold_addr(0), 4, 1)
    assert not p.output(0)  # priority must exceed the threshold
    p.write(threshold_addr(0), 4, 0)
    assert p.output(0)
    p.set_level(10, False)
    assert p.read(PENDING_BASE, 4) == 0 and not p.output(0)


def test_claim_picks_highest_priority_then_lowest_id():
    p = Plic()
    for irq, prio in ((3, 2), (5, 6), (40, 6)):
        p.write(4 * irq, 4, prio)
        p.set_level(irq, True)
    enable(p, 1, 3, 5, 40)
    assert p.read(PENDING_BASE + 4, 4) == 1 << 8
    assert p.read(claim_addr(1), 4) == 5
    assert p.read(claim_addr(1), 4) == 40
    assert p.read(claim_addr(1), 4) == 3
    assert p.read(claim_addr(1), 4) == 0  # all in flight
    assert not p.output(1)


def test_completion_ends_the_claim_but_a_line_left_high_is_not_pending_again():
    """QEMU 7.2's sifive_plic: only a new signal from the device pends a source again
    (xv6 leaves the UART's THR-empty line high and must not be interrupted forever)."""
    p = Plic()
    p.write(4 * 10, 4, 1)
    enable(p, 1, 10)
    p.set_level(10, True)
    assert p.read(claim_addr(1), 4) == 10
    p.write(claim_addr(1), 4, 10)  # completed with the line still high
    assert not p.output(1) and p.read(claim_addr(1), 4) == 0
    p.set_level(10, True)  # the device signals again, at the same level
    assert p.output(1) and p.read(claim_addr(1), 4) == 10


def test_a_signal_while_claimed_is_pending_and_fires_after_the_completion():
    p = Plic()
    p.write(4 * 10, 4, 1)
    enable(p, 1, 10)
    p.set_level(10, True)
    assert p.read(claim_addr(1), 4) == 10
    p.set_level(10, True)  # e.g. another byte arrives while the handler runs
    assert p.read(PENDING_BASE, 4) == 1 << 10 and not p.output(1)  # claimed: masked
    p.write(claim_addr(1), 4, 10)
    assert p.output(1) and p.read(claim_addr(1), 4) == 10
    p.set_level(10, True)
    p.set_level(10, False)  # the line dropped before the completion: nothing left
    p.write(claim_addr(1), 4, 10)
    assert not p.output(1) and p.read(PENDING_BASE, 4) == 0


def test_complete_of_a_source_not_enabled_for_the_context_is_ignored():
    p = Plic()
    p.write(4 * 7, 4, 1)
    p.set_level(7, True)
    enable(p, 0, 7)
    assert p.read(claim_addr(0), 4) == 7
    p.set_level(7, True)
    p.write(claim_addr(1), 4, 7)  # context 1 has it disabled: still claimed
    assert p.read(claim_addr(0), 4) == 0
    p.write(claim_addr(0), 4, 7)
    assert p.read(claim_addr(0), 4) == 7


def test_enable_words_mask_source0_and_nonexistent_sources():
    p = Plic()
    p.write(ENABLE_BASE, 4, 0xFFFF_FFFF)
    assert p.read(ENABLE_BASE, 4) == 0xFFFF_FFFE
    p.write(ENABLE_BASE + 8, 4, 0xFFFF_FFFF)
    assert p.read(ENABLE_BASE + 8, 4) == 0xFFFF_FFFF  # sources 64..95 exist
    p.write(ENABLE_BASE + 12, 4, 0xFFFF_FFFF)
    assert p.read(ENABLE_BASE + 12, 4) == 0


def test_hostile_accesses_are_ignored():
    p = Plic()
    for off in (1, 2, 0x1FFF_FFF, 0x5F_FFFC, CONTEXT_BASE + 5 * CONTEXT_STRIDE + 4):
        for size in (1, 2, 4, 8):
            p.write(off, size, 0xFFFF_FFFF_FFFF_FFFF & ((1 << (8 * size)) - 1))
            assert p.read(off, size) in (0,)
    p.set_level(0, True)
    p.set_level(1000, True)
    p.set_level(-3, True)
    assert not p.output(0) and not p.output(1) and not p.output(7)


def test_a_completed_source_is_pending_again_when_its_line_rises_again():
    """Complete clears the claim: a line that fell while claimed and rises after the
    completion is a new request (a PLIC that kept the source claimed would never again
    forward it)."""
    p = Plic()
    p.write(4 * 9, 4, 1)
    enable(p, 0, 9)
    for _ in range(3):  # again and again, as a driver's interrupt handler sees it
        p.set_level(9, True)
        assert p.output(0) and p.read(claim_addr(0), 4) == 9
        assert not p.output(0)  # claimed: in flight
        p.set_level(9, False)
        p.write(claim_addr(0), 4, 9)
        assert not p.output(0) and p.read(PENDING_BASE, 4) == 0
        p.set_level(9, True)
        assert p.read(PENDING_BASE, 4) == 1 << 9 and p.output(0)
        p.set_level(9, False)


def test_claim_honours_priority_threshold_and_context_at_the_edges():
    p = Plic()
    p.write(4 * 95, 4, 7)  # the last source, the highest priority
    p.write(4 * 1, 4, 1)  # the first source, the lowest
    for irq in (1, 95):
        p.set_level(irq, True)
    enable(p, 0, 1, 95)
    p.write(threshold_addr(0), 4, 7)
    assert not p.output(0) and p.read(claim_addr(0), 4) == 0  # nothing above 7
    p.write(threshold_addr(0), 4, 6)
    assert p.read(claim_addr(0), 4) == 95
    p.write(threshold_addr(0), 4, 1)
    assert not p.output(0)  # source 1's priority 1 does not exceed threshold 1
    p.write(threshold_addr(0), 4, 0)
    assert p.read(claim_addr(0), 4) == 1
    assert p.read(threshold_addr(0), 4) == 0
    p.write(threshold_addr(0), 4, 8)  # beyond the priority range: ignored
    assert p.read(threshold_addr(0), 4) == 0
    assert not p.output(1)  # context 1 enabled nothing
    p.write(claim_addr(0), 4, 96)  # no such source: ignored
    p.write(claim_addr(0), 4, 95)
    assert p.read(claim_addr(0), 4) == 0  # completed, and not signalled again (QEMU 7.2)
    p.set_level(95, True)
    assert p.read(claim_addr(0), 4) == 95


def test_registers_at_the_edges_of_their_ranges():
    """The last source's priority and pending bit, the words and contexts past the end,
    and the threshold at the very start of the context area."""
    p = Plic()
    p.write(4 * 95, 4, 3)
    assert p.read(4 * 95, 4) == 3
    p.write(4 * 96, 4, 3)  # no source 96
    assert p.read(4 * 96, 4) == 0 and p.read(PENDING_BASE - 4, 4) == 0
    p.set_level(95, True)
    assert p.read(PENDING_BASE + 8, 4) == 1 << 31 and p.read(PENDING_BASE + 12, 4) == 0
    p.set_level(0, True)  # source 0 does not exist: never pending
    p.set_level(96, True)
    assert p.pending == 1 << 95 and p.read(PENDING_BASE, 4) == 0
    enable(p, 1, 95)
    assert p.read(ENABLE_BASE + ENABLE_STRIDE + 8, 4) == 1 << 31
    p.write(ENABLE_BASE + 2 * ENABLE_STRIDE, 4, 0xFFFF_FFFF)  # no context 2
    assert p.read(ENABLE_BASE + 2 * ENABLE_STRIDE, 4) == 0 and p.enable == [0, 1 << 95]
    p.write(CONTEXT_BASE, 4, 5)  # context 0's threshold: the first context register
    assert p.read(CONTEXT_BASE, 4) == 5 and p.threshold == [5, 0]
    p.write(threshold_addr(2), 4, 3)  # no context 2
    assert p.read(threshold_addr(2), 4) == 0 and p.read(claim_addr(2), 4) == 0
    assert p.threshold == [5, 0] and p.pending == 1 << 95
    assert p.read(CONTEXT_BASE + 8, 4) == 0  # no register there
    assert p.read(claim_addr(1), 4) == 95


def test_only_aligned_word_accesses_act():
    p = Plic()
    p.write(4 * 10, 1, 5)
    p.write(4 * 10, 2, 5)
    p.write(4 * 10 + 1, 4, 5)
    assert p.read(4 * 10, 4) == 0
    p.write(4 * 10, 4, 5)
    assert p.read(4 * 10, 1) == 0 and p.read(4 * 10, 2) == 0 and p.read(4 * 10, 4) == 5
    p.set_level(10, True)
    enable(p, 0, 10)
    assert p.read(claim_addr(0), 2) == 0 and p.pending == 1 << 10  # no claim by a halfword


def test_completing_one_source_leaves_the_others_as_they_are():
    p = Plic()
    for irq in (3, 4, 5):
        p.write(4 * irq, 4, 1)
        p.set_level(irq, True)
    enable(p, 0, 3, 4, 5)
    assert p.read(claim_addr(0), 4) == 3 and p.read(claim_addr(0), 4) == 4
    p.write(claim_addr(0), 4, 3)  # 3 completed (not pending until signalled); 4 claimed
    assert p.claimed == 1 << 4 and p.pending == 1 << 5
    p.set_level(4, False)
    p.set_level(4, True)  # 4 is in flight: pending again, claimable after its completion
    assert p.pending == (1 << 4) | (1 << 5)
    assert p.read(claim_addr(0), 4) == 5 and p.claimed == (1 << 4) | (1 << 5)
