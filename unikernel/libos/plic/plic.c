#include <arch.h>
#include <kernel.h>
#include <plic.h>

#define PLIC 0x0c000000UL
#define PRIORITY(irq) (PLIC + 4 * (irq))
#define ENABLE(irq) (PLIC + 0x2000 + 4 * ((irq) / 32)) /* context 0 = hart 0, M-mode */
#define THRESHOLD (PLIC + 0x200000)
#define CLAIM (PLIC + 0x200004)
#define MAX_IRQS 64

static struct {
    plic_handler fn;
    void *arg;
} handlers[MAX_IRQS];

static void on_external_irq(unsigned cause)
{
    (void)cause;
    unsigned irq;
    while ((irq = mmio_read32(CLAIM)) != 0) {
        if (irq < MAX_IRQS && handlers[irq].fn)
            handlers[irq].fn(irq, handlers[irq].arg);
        mmio_write32(CLAIM, irq); /* complete */
    }
}

void plic_enable(unsigned irq, plic_handler handler, void *arg)
{
    if (irq == 0 || irq >= MAX_IRQS)
        panic("plic: bad irq");
    handlers[irq].fn = handler;
    handlers[irq].arg = arg;
    irq_set_handler(11, on_external_irq);
    mmio_write32(THRESHOLD, 0);
    mmio_write32(PRIORITY(irq), 1);
    mmio_write32(ENABLE(irq), mmio_read32(ENABLE(irq)) | 1u << (irq % 32));
    csr_set(mie, MIE_MEIE);
}

void plic_disable(unsigned irq)
{
    mmio_write32(ENABLE(irq), mmio_read32(ENABLE(irq)) & ~(1u << (irq % 32)));
}
