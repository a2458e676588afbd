/* The virtio-mmio transport, version 2 ("modern") only. */
#include <arch.h>
#include <plic.h>
#include <virtio.h>

#define SLOT_BASE 0x10001000UL
#define SLOT_SIZE 0x1000UL
#define SLOTS 8

#define MAGIC 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define DEVICE_FEATURES 0x010
#define DEVICE_FEATURES_SEL 0x014
#define DRIVER_FEATURES 0x020
#define DRIVER_FEATURES_SEL 0x024
#define INTERRUPT_STATUS 0x060
#define INTERRUPT_ACK 0x064
#define STATUS 0x070
#define CONFIG 0x100

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define VIRTIO_F_VERSION_1_HIGH 1 /* bit 32, in the high word */

static void on_irq(unsigned irq, void *arg)
{
    (void)irq;
    struct virtio_dev *dev = arg;
    mmio_write32(dev->base + INTERRUPT_ACK, mmio_read32(dev->base + INTERRUPT_STATUS));
    if (dev->on_interrupt)
        dev->on_interrupt(dev->interrupt_arg);
}

void virtio_on_interrupt(struct virtio_dev *dev, void (*fn)(void *arg), void *arg)
{
    unsigned long s = irq_save();
    dev->on_interrupt = fn;
    dev->interrupt_arg = arg;
    irq_restore(s);
}

int virtio_open(struct virtio_dev *dev, uint32_t device_id, unsigned n)
{
    return virtio_open_features(dev, device_id, n, 0);
}

int virtio_open_features(struct virtio_dev *dev, uint32_t device_id, unsigned n,
                         uint32_t features)
{
    for (unsigned slot = 0; slot < SLOTS; slot++) {
        uintptr_t base = SLOT_BASE + slot * SLOT_SIZE;
        if (mmio_read32(base + MAGIC) != 0x74726976 || mmio_read32(base + VERSION) != 2 ||
            mmio_read32(base + DEVICE_ID) != device_id || n-- != 0)
            continue;
        dev->base = base;
        dev->irq = 1 + slot;
        dev->device_id = device_id;
        dev->on_interrupt = 0;
        mmio_write32(base + STATUS, 0);
        mmio_write32(base + STATUS, STATUS_ACKNOWLEDGE);
        mmio_write32(base + STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        mmio_write32(base + DEVICE_FEATURES_SEL, 1);
        if (!(mmio_read32(base + DEVICE_FEATURES) & VIRTIO_F_VERSION_1_HIGH))
            return -1;
        mmio_write32(base + DEVICE_FEATURES_SEL, 0);
        dev->features = features & mmio_read32(base + DEVICE_FEATURES);
        mmio_write32(base + DRIVER_FEATURES_SEL, 0);
        mmio_write32(base + DRIVER_FEATURES, dev->features);
        mmio_write32(base + DRIVER_FEATURES_SEL, 1);
        mmio_write32(base + DRIVER_FEATURES, VIRTIO_F_VERSION_1_HIGH);
        uint32_t status = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;
        mmio_write32(base + STATUS, status);
        if (!(mmio_read32(base + STATUS) & STATUS_FEATURES_OK))
            return -1;
        plic_enable(dev->irq, on_irq, dev);
        return 0;
    }
    return -1;
}

void virtio_ready(struct virtio_dev *dev)
{
    mmio_write32(dev->base + STATUS, mmio_read32(dev->base + STATUS) | STATUS_DRIVER_OK);
}

uint32_t virtio_config32(struct virtio_dev *dev, unsigned off)
{
    return mmio_read32(dev->base + CONFIG + off);
}
