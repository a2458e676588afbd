#include <kernel.h>

#define NUM_CAUSES 16

static irq_handler handlers[NUM_CAUSES];

void irq_set_handler(unsigned cause, irq_handler handler)
{
    if (cause < NUM_CAUSES)
        handlers[cause] = handler;
}

void trap_dispatch(struct trap_frame *frame)
{
    unsigned long cause = frame->mcause;
    if (!(cause & MCAUSE_INTERRUPT))
        panic_frame("unexpected exception", frame);
    cause &= ~MCAUSE_INTERRUPT;
    if (cause >= NUM_CAUSES || !handlers[cause])
        panic_frame("unexpected interrupt", frame);
    handlers[cause](cause);
}
