/* timer: CLINT time source, sleeping, and one-shot / periodic timers run by the event loop. */
#ifndef LIBOS_TIMER_H
#define LIBOS_TIMER_H

#include <kernel.h>
#include <stdint.h>

#define TIMER_HZ 10000000UL /* QEMU virt's CLINT timebase */

struct timer {
    uint64_t deadline; /* in CLINT ticks */
    uint64_t period;   /* 0 for one-shot */
    os_callback fn;
    void *arg;
    struct timer *next;
    int armed;
};

uint64_t time_ticks(void);
uint64_t time_us(void);
/* Blocks (in WFI) for `us` microseconds; other timers still fire into the event queue. */
void sleep_us(uint64_t us);
/* Caller-owned timers: fn(arg) runs from the event loop (os_run) once / every period. */
void timer_oneshot(struct timer *t, uint64_t delay_us, os_callback fn, void *arg);
void timer_periodic(struct timer *t, uint64_t period_us, os_callback fn, void *arg);
void timer_stop(struct timer *t);

#endif
