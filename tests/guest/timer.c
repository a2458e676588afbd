/* The CLINT timer 100 ms ahead wakes a wfi, not early. */
#include "guest.h"

#define MTIME 0x200bff8UL
#define MTIMECMP 0x2004000UL

static volatile int fired;

void trap(u64 cause)
{
    if (cause != ((1UL << 63) | 7)) {
        puts("timer: unexpected trap\r\n");
        poweroff_code(2);
    }
    *(volatile u64 *)MTIMECMP = ~0UL;
    fired = 1;
}

int main(void)
{
    u64 start = *(volatile u64 *)MTIME;
    *(volatile u64 *)MTIMECMP = start + 1000000;
    __asm__ volatile("csrs mie, %0" ::"r"(1UL << 7));
    __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
    while (!fired)
        wfi();
    u64 waited = *(volatile u64 *)MTIME - start;
    puts(waited >= 1000000 ? "timer: fired after at least 100 ms\r\n" : "timer: fired EARLY\r\n");
    return 0;
}
