"""The layouts of the hart's tables, and their constructors.

Plain numpy, no Numba: Python code (the hart's owner, device DMA, the second tier) builds
and inspects these tables without loading the compiler; the compiled code in memory.py
and mmu/tlb.py indexes them by the same constants.
"""

import numpy as np

# --- page flags (one byte per 4 KiB page of RAM)
PAGE_CODE = 1  # holds decoded instructions: stores must invalidate them
PAGE_WATCH = 2  # holds the tohost word or a watchpoint: stores must be seen
PAGE_REGION = 4  # holds compiled regions (rvemu.tier2): a store forgets all of them

# --- the decoded-instruction cache: DC_ENTRIES direct-mapped slots of 8 words, flat; the
# slot for the instruction at RAM offset `off` starts at dc_slot(off).
DC_TAG, DC_OP, DC_RD, DC_RS1, DC_RS2, DC_RS3RM, DC_IMM, DC_RAW = range(8)
DC_ENTRIES = 1 << 16
DC_MASK = DC_ENTRIES - 1


def dc_slot(off: int) -> int:
    return ((off >> 1) & DC_MASK) << 3


# After the slots, the same array holds the *code map*: one word per RAM page, whose bit k
# is set when bytes [64k, 64k + 64) of the page hold (part of) an instruction that was
# decoded or compiled into a region since the page's flags were last cleared. A store to
# a page flagged PAGE_CODE or PAGE_REGION that touches no such granule has nothing to
# invalidate (data beside code: small programs keep both on one page, kernels patch a few
# instructions of a page), so it neither forgets the page's regions nor leaves one.
CODE_MAP = DC_ENTRIES * 8
GRANULE = 6  # log2 of the code map's granule in bytes


def granules(off: int, length: int) -> int:
    """The code-map bits of RAM [off, off + length), within one page."""
    first, last = (off & 0xFFF) >> GRANULE, ((off + length - 1) & 0xFFF) >> GRANULE
    return ((1 << (last - first + 1)) - 1) << first


def new_decoded_cache(pages: int) -> np.ndarray:
    """The decoded cache, with the code map of `pages` pages of RAM after it."""
    dc = np.zeros(CODE_MAP + pages, dtype=np.int64)
    dc[DC_TAG:CODE_MAP:8] = -1
    return dc


# --- the software TLB (mmu/tlb.py): TLB_ENTRIES direct-mapped entries of two words for
# each kind of access. Flat layout (one multiply-free index in the hot loop): entry i of
# table `kind` starts at tlb[((kind << 8) | i) << 1].
TLB_ENTRIES = 256
TAG, DELTA = 0, 1  # the two words of an entry
# No virtual page number (vaddr >> 12, at most 2^51 in magnitude) equals this; -1 would be
# the page number of the top page of the address space.
INVALID = 1 << 62


# After the three tables, one word per entry: log2 of the size of the page it is a 4 KiB
# piece of (12, or more for a superpage or a Svnapot range), for mmu/tlb.tlb_forget_page.
SPANS = 3 * TLB_ENTRIES * 2


def new_tlb() -> np.ndarray:
    tlb = np.zeros(SPANS + 3 * TLB_ENTRIES, dtype=np.int64)
    tlb[TAG:SPANS:2] = INVALID
    return tlb
