# M -> U -> traps back to M: ecall, an illegal CSR access, ecall again; the handler checks
# mcause, mepc, mtval and mstatus.MPP each time, returns to U past the trapping instruction,
# and finally powers off through sifive_test (0x5555 = pass, (step << 16) | 0x3333 = fail).
        .equ TEST, 0x100000
        .text
        .globl _start
_start:
        la      t0, handler
        csrw    mtvec, t0
        li      s0, 0                   # which trap we expect next
        li      s1, 0
        la      t0, user
        csrw    mepc, t0
        li      t0, -1
        csrw    pmpaddr0, t0
        li      t0, 0x1f                # PMP entry 0: all memory RWX (U needs a rule)
        csrw    pmpcfg0, t0
        li      t0, 0x1800
        csrc    mstatus, t0             # MPP = U
        mret

user:
        li      a0, 7
ecall1: ecall
        li      s1, 1                   # proves we came back to U after the first trap
illegal1:
        csrr    t1, mstatus             # M-mode CSR from U: illegal instruction
        li      a0, 9
ecall2: ecall
        j       .                       # never reached

        .align  2                       # mtvec needs a 4-byte aligned address
handler:
        csrr    t0, mcause
        csrr    t1, mepc
        csrr    t2, mtval
        csrr    t3, mstatus
        li      t4, 0x1800
        and     t3, t3, t4
        bnez    t3, fail                # the trap came from U: MPP = 0
        beqz    s0, step0
        li      t4, 1
        beq     s0, t4, step1
        li      t4, 2
        beq     s0, t4, step2
        j       fail
step0:  li      t4, 8                   # ecall from U
        bne     t0, t4, fail
        la      t4, ecall1
        bne     t1, t4, fail
        bnez    t2, fail                # mtval = 0 for ecall
        li      t4, 7
        bne     a0, t4, fail
        j       next
step1:  li      t4, 2                   # illegal instruction, mtval = its bits
        bne     t0, t4, fail
        la      t4, illegal1
        bne     t1, t4, fail
        li      t4, 0x30002373          # csrrs t1, mstatus, zero
        bne     t2, t4, fail
        li      t4, 1
        bne     s1, t4, fail
        j       next
step2:  li      t4, 8
        bne     t0, t4, fail
        la      t4, ecall2
        bne     t1, t4, fail
        li      t4, 9
        bne     a0, t4, fail
        li      t0, TEST
        li      t1, 0x5555
        sw      t1, 0(t0)
        j       .
next:   addi    s0, s0, 1
        addi    t1, t1, 4
        csrw    mepc, t1
        mret
fail:   addi    t1, s0, 1
        slli    t1, t1, 16
        li      t2, 0x3333
        or      t1, t1, t2
        li      t0, TEST
        sw      t1, 0(t0)
        j       .
