/* Reset entry: the first instruction at 0x80000000, in M-mode, a0 = hart id, a1 = DTB. */
    .section .text.entry, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    /* Only hart 0 runs the library OS; the others sleep forever. */
    bnez a0, park
    la sp, __stack_top
    la tp, __tls_base
    la t0, trap_vector
    csrw mtvec, t0
    csrw mie, zero
    /* Turn the FPU on (mstatus.FS = Initial): apps and picolibc may use F/D. */
    li t0, 1 << 13
    csrs mstatus, t0
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  tail libos_start
park:
    wfi
    j park
