/* plic: the platform-level interrupt controller, routing device IRQs to hart 0 M-mode. */
#ifndef LIBOS_PLIC_H
#define LIBOS_PLIC_H

typedef void (*plic_handler)(unsigned irq, void *arg);

/* Enables device interrupt `irq` (1..1023) and calls handler(irq, arg) for each one. */
void plic_enable(unsigned irq, plic_handler handler, void *arg);
void plic_disable(unsigned irq);

#endif
