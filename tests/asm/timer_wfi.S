# Three CLINT timer interrupts, each 100 ticks after the last, taken while the hart sleeps
# in WFI. The handler rearms mtimecmp; after the third, main checks that mtime moved at
# least 300 ticks and powers off (0x5555 = pass, (code << 16) | 0x3333 = fail).
        .equ TEST, 0x100000
        .equ MTIMECMP, 0x2004000
        .equ MTIME, 0x200bff8
        .text
        .globl _start
_start:
        la      t0, handler
        csrw    mtvec, t0
        li      s0, 0                   # interrupts taken
        li      s2, MTIME
        ld      s1, 0(s2)               # start time
        li      s3, MTIMECMP
        addi    t0, s1, 100
        sd      t0, 0(s3)
        li      t0, 0x80
        csrw    mie, t0                 # MTIE
        csrsi   mstatus, 8              # MIE
wait:   wfi
        li      t0, 3
        blt     s0, t0, wait
        csrci   mstatus, 8
        ld      t1, 0(s2)
        sub     t1, t1, s1
        li      t0, 300
        blt     t1, t0, fail
        li      t0, TEST
        li      t1, 0x5555
        sw      t1, 0(t0)
        j       .

        .align  2                       # mtvec needs a 4-byte aligned address
handler:
        csrr    t0, mcause
        li      t1, -9223372036854775801    # interrupt bit | 7 (machine timer)
        bne     t0, t1, fail
        addi    s0, s0, 1
        ld      t0, 0(s3)
        addi    t0, t0, 100
        sd      t0, 0(s3)               # next interrupt 100 ticks later
        mret

fail:   li      t0, TEST
        li      t1, 0x23333             # code 2
        sw      t1, 0(t0)
        j       .
