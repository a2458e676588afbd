"""Where the hart keeps its state: slots of the `st` array, CSR numbers and bit fields.

All hart state lives in a few numpy arrays (x, f, csr, st, plus the TLB and the decoded
instruction cache) so the compiled core can run on them and Python can read them freely.
"""

# --- slots of the int64 `st` array
PC = 0
PRIV = 1  # 0 = U, 1 = S, 3 = M
INSTRET = 2  # instructions retired since reset (drives cycle, instret and, by default, time)
RESERVATION = 3  # RAM offset reserved by LR, or -1
MTIMECMP = 4
MSIP = 5
MTIME_BASE = 6  # mtime = MTIME_BASE + INSTRET // INSNS_PER_TICK
EXT_IRQ = 7  # external interrupt lines from the PLIC: bit 11 MEIP, bit 9 SEIP
RAM_BASE = 8
RAM_SIZE = 9
TOHOST = 10  # physical address of the HTIF tohost word, or -1
CYCLE_DELTA = 11  # mcycle - INSTRET (mcycle is writable)
INSTRET_DELTA = 12  # minstret - INSTRET
# A memory access the hart could not serve itself, handed to Python (an "exit").
MMIO_ADDR = 13
MMIO_SIZE = 14
MMIO_VALUE = 15  # value to store, or (set by Python) the value loaded
MMIO_OP = 16  # the op that made the access
MMIO_RD = 17
MMIO_VADDR = 18
MMIO_FAULT = 19  # set by Python when no device answered: the hart raises an access fault
MMIO_PENDING = 20
MARK_MAIN = 21  # INSTRET when the boot-latency mark `slti x0, x0, 1` ran, or -1
EXIT_CODE = 22
TOHOST_HIT = 23  # set by a store to the tohost word
MMIO_LEN = 24  # length of the instruction waiting for the device access
RESERVED_VALUE = 25  # the value LR read at st[RESERVATION]
SECOND_PAGE_FAULT = 26  # a misaligned access faulted on its second page: that page, else -1
# The second tier (rvemu.tier2)
HOT_THRESHOLD = 27  # taken jumps to a pc before it is compiled; 0: never compile
HOT_PC = 28  # the pc that got hot (EXIT_HOT)
REGION_RETIRED = 29  # instructions the last compiled region retired
REGION_JUMPED = 30  # why it left (region_abi.LEFT_*): 1 by a jump (its pc is a jump target)
HOT_OFF = 31  # the RAM offset of st[HOT_PC]
PMP_DENIES = 32  # bit p: PMP denies some access to RAM at privilege p (mmu/pmp.py)
EXTENSIONS = 33  # the optional extensions the hart has, as bits (isa.OPTIONAL_EXTENSIONS)
# A debugger's hold on the hart (Hart.breakpoints, .watchpoints, .stepping)
DEBUG = 34  # DEBUG_* bits: what the loop must check for; 0 when no debugger is attached
DEBUG_HIT = 35  # 1 + the index of the watchpoint a store was about to hit
BREAK_SKIP = 36  # a breakpoint's pc the hart resumes at: passed once without stopping, or -1
TRAPS = 37  # traps and interrupts taken since reset (how a single step sees one)
MAX_BREAKPOINTS = 32
BREAKPOINTS = 38  # MAX_BREAKPOINTS slots: pcs to stop before, then -1 after the last
MAX_WATCHPOINTS = 8
# MAX_WATCHPOINTS slots each: the RAM range [WATCH_OFF, WATCH_OFF + WATCH_LEN) a store to
# which stops the hart before it (EXIT_DEBUG, pc at the store); WATCH_LEN 0 for a free slot
WATCH_OFF = BREAKPOINTS + MAX_BREAKPOINTS
WATCH_LEN = WATCH_OFF + MAX_WATCHPOINTS
# Counters of where a run's time may go, for `rvemu boot --profile` (rvemu/profile.py).
# Each is counted on a slow path (a trap, a page walk, a CSR access, a TLB flush) or once
# per call of a compiled region, never per interpreted instruction.
PROFILE = WATCH_LEN + MAX_WATCHPOINTS  # 1: also time compiled regions (host cycle counter)
PROF_INTERRUPTS = PROFILE + 1  # interrupts taken (st[TRAPS] counts them with exceptions)
PROF_TLB_FLUSHES = PROFILE + 2  # whole-TLB flushes by the hart (trap, xRET, CSR, sfence.vma)
PROF_WALKS = PROFILE + 3  # page-table walks, by access kind: + ACCESS_LOAD/_STORE/_FETCH
PROF_CSR_READS = PROFILE + 6  # CSR instructions that only read
PROF_CSR_WRITES = PROFILE + 7  # CSR instructions that write (each ends the stretch)
PROF_SFENCE = PROFILE + 8  # sfence.vma
PROF_REGION_CALLS = PROFILE + 9  # entries into compiled regions
PROF_REGION_INSNS = PROFILE + 10  # instructions those retired
PROF_REGION_CYCLES = PROFILE + 11  # host cycles spent in them (with st[PROFILE] only)
# log2 of the size of the page the last translation found (12, 16 for a Svnapot 64 KiB
# range, 21, 30, 39 for superpages): the TLB keeps it so that sfence.vma of one address
# forgets every 4 KiB piece of that page and nothing else
WALK_SPAN = PROFILE + 12
PROF_FENCE_I = PROFILE + 13  # fence.i
ST_SIZE = PROFILE + 14

DEBUG_STEP = 1  # stop after one instruction, trap or interrupt
DEBUG_BREAK = 2  # stop before a pc in st[BREAKPOINTS] (leaving compiled code to the interpreter)
DEBUG_WATCH = 4  # watchpoints are set (compiled code is not entered either)
DEBUG_NOIRQ = 8  # interrupts are held pending (as QEMU's gdbstub single-steps: SSTEP_NOIRQ)

# --- why `run` returned
EXIT_BUDGET = 0  # ran the instructions it was given
EXIT_MMIO = 1  # st[MMIO_*] describes a device access for Python to perform
EXIT_WFI = 2  # wfi with no interrupt pending: Python waits for a device or the timer
EXIT_TOHOST = 3  # the guest wrote the HTIF tohost word
EXIT_MARK = 4  # the guest ran a boot-latency mark
EXIT_MODE = 5  # (inside Hart.run) fetch started or stopped translating: switch cores
EXIT_HOT = 6  # (inside Hart.run) st[HOT_PC] got hot: compile the code there
EXIT_DEBUG = 7  # at a breakpoint, or at a store a watchpoint stopped (st[DEBUG_HIT])
EXIT_LIBRARY = 8  # (inside Hart.run) the instruction at pc needs a library not built yet

# --- privilege levels
PRIV_U, PRIV_S, PRIV_M = 0, 1, 3

# --- time: the CLINT's 10 MHz timebase advances one tick every INSNS_PER_TICK instructions
INSNS_PER_TICK = 10
TIMEBASE_FREQ = 10_000_000  # hw/riscv/virt.c: RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ

# --- CSR numbers (the privileged spec's tables)
FFLAGS, FRM, FCSR = 0x001, 0x002, 0x003
CYCLE, TIME, INSTRET_CSR = 0xC00, 0xC01, 0xC02
SSTATUS, SIE, STVEC, SCOUNTEREN, SENVCFG = 0x100, 0x104, 0x105, 0x106, 0x10A
SSCRATCH, SEPC, SCAUSE, STVAL, SIP, SATP = 0x140, 0x141, 0x142, 0x143, 0x144, 0x180
STIMECMP = 0x14D  # Sstc
MSTATUS, MISA, MEDELEG, MIDELEG, MIE, MTVEC, MCOUNTEREN = (
    0x300,
    0x301,
    0x302,
    0x303,
    0x304,
    0x305,
    0x306,
)
MENVCFG, MCOUNTINHIBIT = 0x30A, 0x320
MSCRATCH, MEPC, MCAUSE, MTVAL, MIP = 0x340, 0x341, 0x342, 0x343, 0x344
PMPCFG0, PMPADDR0 = 0x3A0, 0x3B0
TSELECT, TDATA1, TDATA2, TDATA3 = 0x7A0, 0x7A1, 0x7A2, 0x7A3
MCYCLE, MINSTRET = 0xB00, 0xB02
MVENDORID, MARCHID, MIMPID, MHARTID, MCONFIGPTR = 0xF11, 0xF12, 0xF13, 0xF14, 0xF15

# --- mstatus fields
MSTATUS_SIE = 1 << 1
MSTATUS_MIE = 1 << 3
MSTATUS_SPIE = 1 << 5
MSTATUS_MPIE = 1 << 7
MSTATUS_SPP = 1 << 8
MSTATUS_MPP_SHIFT = 11
MSTATUS_MPP = 3 << 11
MSTATUS_FS = 3 << 13
MSTATUS_MPRV = 1 << 17
MSTATUS_SUM = 1 << 18
MSTATUS_MXR = 1 << 19
MSTATUS_TVM = 1 << 20
MSTATUS_TW = 1 << 21
MSTATUS_TSR = 1 << 22
MSTATUS_UXL = 2 << 32  # XLEN 64 in U-mode, read-only
MSTATUS_SXL = 2 << 34  # XLEN 64 in S-mode, read-only
MSTATUS_SD = -(1 << 63)

MSTATUS_WRITABLE = (
    MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPP
    | MSTATUS_FS
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR
)
# What translations depend on in mstatus (with the privilege, satp and PMP): the TLB is
# flushed when one of these changes, and not for the others (SIE, MIE, FS...).
MSTATUS_TRANSLATION = MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM | MSTATUS_MXR
SSTATUS_VISIBLE = (
    MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_SPP
    | MSTATUS_FS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_UXL
    | MSTATUS_SD
)

# --- menvcfg fields (the only one implemented; QEMU resets it to 0)
MENVCFG_STCE = -(1 << 63)  # Sstc: stimecmp drives mip.STIP and S-mode may access it
# menvcfg and senvcfg: which cache-block operations a lower privilege may run (Zicbom/Zicboz)
ENVCFG_CBIE, ENVCFG_CBCFE, ENVCFG_CBZE = 0x30, 0x40, 0x80

# --- mcounteren/scounteren: bit n enables counter CSR 0xC00 + n below M-mode
COUNTEREN_TM = 1 << (TIME - CYCLE)

# --- interrupt numbers and mip/mie bits
IRQ_S_SOFT, IRQ_M_SOFT, IRQ_S_TIMER, IRQ_M_TIMER, IRQ_S_EXT, IRQ_M_EXT = 1, 3, 5, 7, 9, 11
MIP_SSIP, MIP_MSIP = 1 << 1, 1 << 3
MIP_STIP, MIP_MTIP = 1 << 5, 1 << 7
MIP_SEIP, MIP_MEIP = 1 << 9, 1 << 11
S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP
# Which mip bits software may write (QEMU: M-mode writes SSIP, STIP, SEIP).
MIP_WRITABLE = S_INTERRUPTS
ALL_INTERRUPTS = S_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP

# --- exception causes
CAUSE_FETCH_MISALIGNED = 0
CAUSE_FETCH_ACCESS = 1
CAUSE_ILLEGAL = 2
CAUSE_BREAKPOINT = 3
CAUSE_LOAD_MISALIGNED = 4
CAUSE_LOAD_ACCESS = 5
CAUSE_STORE_MISALIGNED = 6
CAUSE_STORE_ACCESS = 7
CAUSE_ECALL_U = 8
CAUSE_ECALL_S = 9
CAUSE_ECALL_M = 11
CAUSE_FETCH_PAGE = 12
CAUSE_LOAD_PAGE = 13
CAUSE_STORE_PAGE = 15
# medeleg: every exception above may be delegated except ecall from M (read-only zero).
MEDELEG_WRITABLE = 0xB3FF

# misa: MXL = 2 (RV64) with I M A F D C S U; kept as a signed int64.
MISA_VALUE = -(1 << 63) | sum(1 << (ord(c) - ord("A")) for c in "IMAFDCSU")

# --- memory access kinds, and the status an access returns besides a trap cause
ACCESS_LOAD, ACCESS_STORE, ACCESS_FETCH = 0, 1, 2
OK = -1  # the access was done
MMIO = -2  # the access needs a device: exit to Python

# --- the CLINT, served inside the hart (hot: guests poll mtime and rearm mtimecmp)
CLINT_BASE = 0x0200_0000  # hw/riscv/virt.c: VIRT_CLINT
CLINT_SIZE = 0x10000
