/* An S-mode payload for OpenSBI's fw_jump (linked at 0x80200000): prints a line through
   the SBI legacy console, its hart id and the device tree address it was given, then
   shuts down through the SBI system reset extension. */
    .section .text.entry
    .globl _start
_start:
    mv s0, a0               /* hart id */
    mv s1, a1               /* device tree */
    la a0, msg
    call puts
    /* SBI base extension: get_spec_version (EID 0x10, FID 0), must succeed */
    li a7, 0x10
    li a6, 0
    ecall
    bnez a0, fail
    la a0, ok
    call puts
    /* the device tree must start with the FDT magic (big-endian d00dfeed) */
    lwu t0, 0(s1)
    li t1, 0xedfe0dd0
    bne t0, t1, fail
    la a0, dtok
    call puts
    /* SRST: system reset, type shutdown, reason none */
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
fail:
    la a0, bad
    call puts
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 1                /* reason: system failure */
    ecall
1:  j 1b

puts:                       /* a0: NUL-terminated string, via legacy console_putchar */
    mv t2, a0
2:  lbu a0, 0(t2)
    beqz a0, 3f
    li a7, 1
    ecall
    addi t2, t2, 1
    j 2b
3:  ret

    .section .rodata
msg:  .asciz "payload: hello from S-mode through SBI\n"
ok:   .asciz "payload: SBI spec version call works\n"
dtok: .asciz "payload: a1 points at a device tree\n"
bad:  .asciz "payload: FAILED\n"
