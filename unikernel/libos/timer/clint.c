#include <arch.h>
#include <timer.h>

#define CLINT 0x02000000UL
#define MTIMECMP (CLINT + 0x4000)
#define MTIME (CLINT + 0xbff8)

uint64_t time_ticks(void) { return mmio_read64(MTIME); }

uint64_t time_us(void) { return time_ticks() / (TIMER_HZ / 1000000); }

/* Setting the compare register also clears a pending timer interrupt. */
void clint_set_compare(uint64_t when) { mmio_write64(MTIMECMP, when); }
