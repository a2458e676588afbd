#include <kernel.h>

#define QUEUE_SIZE 64 /* power of two */

struct event {
    os_callback fn;
    void *arg;
};

static struct event queue[QUEUE_SIZE];
static unsigned head, tail; /* free-running: entries live in [tail, head) */
static unsigned sources;

void os_post(os_callback fn, void *arg)
{
    unsigned long s = irq_save();
    if (head - tail == QUEUE_SIZE)
        panic("event queue full");
    queue[head++ % QUEUE_SIZE] = (struct event){fn, arg};
    irq_restore(s);
}

void os_hold(void) { sources++; }
void os_release(void) { sources--; }

void os_wait(int (*done)(void *arg), void *arg)
{
    /* WFI wakes on a pending interrupt even while mstatus.MIE is clear. */
    for (;;) {
        unsigned long s = irq_save();
        if (done(arg)) {
            irq_restore(s);
            return;
        }
        wfi();
        irq_enable();
    }
}

void os_run(void)
{
    irq_enable();
    for (;;) {
        irq_save();
        if (head != tail) {
            struct event ev = queue[tail++ % QUEUE_SIZE];
            irq_enable();
            ev.fn(ev.arg);
            continue;
        }
        if (sources == 0) {
            irq_enable();
            return;
        }
        wfi();
        irq_enable();
    }
}
