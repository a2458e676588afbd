"""Register and CSR names, as the ABI, the privileged spec, GDB and objdump spell them."""

from __future__ import annotations

X_NAMES = (
    "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 "
    "a6 a7 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6"
).split()
F_NAMES = (
    "ft0 ft1 ft2 ft3 ft4 ft5 ft6 ft7 fs0 fs1 fa0 fa1 fa2 fa3 fa4 fa5 "
    "fa6 fa7 fs2 fs3 fs4 fs5 fs6 fs7 fs8 fs9 fs10 fs11 ft8 ft9 ft10 ft11"
).split()

# Every CSR name binutils 2.40 knows (the newest privileged spec), number then name, and
# the numbered families.
_CSR_TABLE = """
001 fflags  002 frm  003 fcsr  008 vstart  009 vxsat  00a vxrm  00f vcsr  015 seed
100 sstatus  104 sie  105 stvec  106 scounteren  10a senvcfg  10c sstateen0  10d sstateen1
10e sstateen2  10f sstateen3  114 sieh  140 sscratch  141 sepc  142 scause  143 stval
144 sip  14d stimecmp  150 siselect  151 sireg  154 siph  15c stopei  15d stimecmph
180 satp  200 vsstatus  204 vsie  205 vstvec  214 vsieh  240 vsscratch  241 vsepc
242 vscause  243 vstval  244 vsip  24d vstimecmp  250 vsiselect  251 vsireg  254 vsiph
25c vstopei  25d vstimecmph  280 vsatp  300 mstatus  301 misa  302 medeleg  303 mideleg
304 mie  305 mtvec  306 mcounteren  308 mvien  309 mvip  30a menvcfg  30c mstateen0
30d mstateen1  30e mstateen2  30f mstateen3  310 mstatush  313 midelegh  314 mieh
318 mvienh  319 mviph  31a menvcfgh  31c mstateen0h  31d mstateen1h  31e mstateen2h
31f mstateen3h  320 mcountinhibit  340 mscratch  341 mepc  342 mcause  343 mtval  344 mip
34a mtinst  34b mtval2  350 miselect  351 mireg  354 miph  35c mtopei  5a8 scontext
600 hstatus  602 hedeleg  603 hideleg  604 hie  605 htimedelta  606 hcounteren  607 hgeie
608 hvien  609 hvictl  60a henvcfg  60c hstateen0  60d hstateen1  60e hstateen2
60f hstateen3  613 hidelegh  615 htimedeltah  618 hvienh  61a henvcfgh  61c hstateen0h
61d hstateen1h  61e hstateen2h  61f hstateen3h  643 htval  644 hip  645 hvip  646 hviprio1
647 hviprio2  64a htinst  655 hviph  656 hviprio1h  657 hviprio2h  680 hgatp  6a8 hcontext
747 mseccfg  757 mseccfgh  7a0 tselect  7a1 tdata1  7a2 tdata2  7a3 tdata3  7a4 tinfo
7a5 tcontrol  7a8 mcontext  7aa mscontext  7b0 dcsr  7b1 dpc  7b2 dscratch0  7b3 dscratch1
b00 mcycle  b02 minstret  b80 mcycleh  b82 minstreth  c00 cycle  c01 time  c02 instret
c20 vl  c21 vtype  c22 vlenb  c80 cycleh  c81 timeh  c82 instreth  da0 scountovf
db0 stopi  e12 hgeip  eb0 vstopi  f11 mvendorid  f12 marchid  f13 mimpid  f14 mhartid
f15 mconfigptr  fb0 mtopi
"""
_CSR_FAMILIES = (  # name pattern, number of the first, first and last index
    ("pmpcfg{}", 0x3A0, 0, 15),
    ("pmpaddr{}", 0x3B0, 0, 63),
    ("mhpmevent{}", 0x323, 3, 31),
    ("mhpmevent{}h", 0x723, 3, 31),
    ("mhpmcounter{}", 0xB03, 3, 31),
    ("mhpmcounter{}h", 0xB83, 3, 31),
    ("hpmcounter{}", 0xC03, 3, 31),
    ("hpmcounter{}h", 0xC83, 3, 31),
)


def _csr_names() -> dict[int, str]:
    words = _CSR_TABLE.split()
    names = {int(words[k], 16): words[k + 1] for k in range(0, len(words), 2)}
    for pattern, first, low, high in _CSR_FAMILIES:
        for k in range(low, high + 1):
            names[first + k - low] = pattern.format(k)
    return names


CSR_NAMES = _csr_names()
CSR_NUMBERS = {name: number for number, name in CSR_NAMES.items()}
