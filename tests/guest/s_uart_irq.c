/* Under OpenSBI, in S-mode: UART receive interrupts through the PLIC's S-mode context
   (context 1 of hart 0) arrive as supervisor external interrupts. */
#include "guest.h"

#define PLIC_S_ENABLE (PLIC + 0x2080)
#define PLIC_S_THRESHOLD (PLIC + 0x201000)
#define PLIC_S_CLAIM (PLIC + 0x201004)

static volatile int line_done, count, claims;
static char buf[64];

void trap(u64 cause)
{
    if (cause != ((1UL << 63) | 9)) {
        puts("s-mode: unexpected trap ");
        puthex(cause);
        puts("\r\n");
        poweroff_code(3);
    }
    u32 irq = rd32(PLIC_S_CLAIM);
    if (irq == 10) {
        claims++;
        while (rd8(UART0 + 5) & 1) {
            char c = rd8(UART0);
            if (count < (int)sizeof buf)
                buf[count++] = c;
            if (c == '\n')
                line_done = 1;
        }
    }
    if (irq)
        wr32(PLIC_S_CLAIM, irq);
}

int main(void)
{
    puts("s-mode: external interrupts through PLIC context 1\r\n");
    wr32(PLIC + 4 * 10, 1);
    wr32(PLIC_S_ENABLE, 1u << 10);
    wr32(PLIC_S_THRESHOLD, 0);
    wr8(UART0 + 1, 0x01);
    __asm__ volatile("csrs sie, %0" ::"r"(1UL << 9));
    puts("s-mode: waiting for a line\r\n");
    while (!line_done) {
        __asm__ volatile("csrc sstatus, %0" ::"r"(1UL << 1));
        if (!line_done)
            wfi();
        __asm__ volatile("csrs sstatus, %0" ::"r"(1UL << 1));
    }
    __asm__ volatile("csrc sstatus, %0" ::"r"(1UL << 1));
    puts("s-mode: received: ");
    for (int i = 0; i < count; i++)
        if (buf[i] >= ' ')
            putc(buf[i]);
    puts("\r\n");
    puts(claims > 0 ? "s-mode: claimed from context 1\r\n" : "s-mode: no claims\r\n");
    return 0;
}
