/* goldfish RTC: the time is after 2020 and does not go back; an alarm 1 ms ahead
   interrupts through the PLIC as IRQ 11. */
#include "guest.h"

static volatile int alarm_irq;

void trap(u64 cause)
{
    if (cause != ((1UL << 63) | 11)) {
        puts("rtc: unexpected trap\r\n");
        poweroff_code(2);
    }
    u32 irq = plic_claim_m();
    if (irq == 11) {
        alarm_irq = 1;
        wr32(RTC + 0x1c, 1); /* clear interrupt */
    }
    plic_complete_m(irq);
}

static u64 now(void)
{
    u64 lo = rd32(RTC + 0x00);
    return lo | (u64)rd32(RTC + 0x04) << 32;
}

int main(void)
{
    u64 t0 = now();
    puts(t0 > 1577836800000000000UL ? "rtc: the time is after 2020\r\n" : "rtc: time is wrong\r\n");
    u64 t1 = now();
    puts(t1 >= t0 ? "rtc: time does not go back\r\n" : "rtc: time went back\r\n");
    plic_enable_m(11, 1);
    enable_external_interrupts();
    u64 at = now() + 1000000;
    wr32(RTC + 0x10, 1);        /* IRQ enabled */
    wr32(RTC + 0x0c, at >> 32); /* alarm high, then low arms it */
    wr32(RTC + 0x08, (u32)at);
    __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    while (!alarm_irq) {
        wfi();
        __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
        __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    }
    __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
    puts("rtc: alarm interrupt from irq 11\r\n");
    puts(now() >= at ? "rtc: the alarm was not early\r\n" : "rtc: the alarm was early\r\n");
    return 0;
}
