/* Shared helpers for the device test guests: MMIO, console output, power-off, PLIC. */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define UART0 0x10000000UL
#define TEST 0x100000UL
#define PLIC 0x0c000000UL
#define RTC 0x101000UL
#define VIRTIO0 0x10001000UL

static inline u8 rd8(u64 a) { return *(volatile u8 *)a; }
static inline u32 rd32(u64 a) { return *(volatile u32 *)a; }
static inline void wr8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void wr32(u64 a, u32 v) { *(volatile u32 *)a = v; }
#define barrier() __asm__ volatile("fence rw, rw" ::: "memory")

static inline void putc(char c)
{
    while (!(rd8(UART0 + 5) & 0x20))
        ;
    wr8(UART0, c);
}

static inline void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static inline void putdec(u64 v)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = '0' + v % 10;
        v /= 10;
    } while (v);
    while (n)
        putc(buf[--n]);
}

static inline void puthex(u64 v)
{
    puts("0x");
    int started = 0;
    for (int i = 60; i >= 0; i -= 4) {
        int d = (v >> i) & 15;
        if (d || started || i == 0) {
            putc("0123456789abcdef"[d]);
            started = 1;
        }
    }
}

static inline void poweroff_code(u32 code)
{
    wr32(TEST, code ? (code << 16) | 0x3333 : 0x5555);
    for (;;)
        ;
}

void poweroff(void) { poweroff_code(0); }

static inline void plic_enable_m(u32 irq, u32 prio)
{
    wr32(PLIC + 4 * irq, prio);
    u64 en = PLIC + 0x2000 + 4 * (irq / 32);
    wr32(en, rd32(en) | (1u << (irq % 32)));
    wr32(PLIC + 0x200000, 0); /* threshold */
}

static inline u32 plic_claim_m(void) { return rd32(PLIC + 0x200004); }
static inline void plic_complete_m(u32 irq) { wr32(PLIC + 0x200004, irq); }

static inline void enable_external_interrupts(void)
{
    __asm__ volatile("csrs mie, %0" ::"r"(1UL << 11));
    __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
}

static inline void wfi(void) { __asm__ volatile("wfi"); }

#endif
