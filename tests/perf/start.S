# Entry and trap vector of the perf guests (see kernels.c). Runs from reset in M-mode.
    .section .text.init
    .globl _start
_start:
    la sp, stack_top
    la t0, trap_entry
    csrw mtvec, t0
    li t0, 1 << 13              # mstatus.FS = initial: the FPU is on
    csrs mstatus, t0
    li t0, -1                   # PMP: one NAPOT region over everything, RWX, so S-mode may
    csrw pmpaddr0, t0           # access memory on QEMU too
    li t0, 0x1f
    csrw pmpcfg0, t0
    call boot
1:  j 1b

# Any trap into M-mode ends the run: the S-mode kernel's closing ecall, or a fault (then
# mcause is left in the `trap_cause` word for the host to see).
    .align 4
trap_entry:
    csrr t0, mcause
    la t1, trap_cause
    sd t0, 0(t1)
    li t0, 0x100000             # sifive_test: power off, pass
    li t1, 0x5555
    sw t1, 0(t0)
2:  j 2b

    .bss
    .align 4
stack:
    .space 16384
stack_top:
