/* virtio: the virtio 1.x MMIO transport (version 2) and split virtqueues. */
#ifndef LIBOS_VIRTIO_H
#define LIBOS_VIRTIO_H

#include <stdint.h>

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2 /* the device writes this buffer */

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq {
    struct virtio_dev *dev;
    unsigned index, size;
    struct virtq_desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[size] */
    volatile struct {
        uint16_t flags, idx;
        struct virtq_used_elem ring[];
    } *used;
    uint16_t last_used;
};

struct virtio_dev {
    uintptr_t base;
    unsigned irq;
    uint32_t device_id;
    uint32_t features; /* the device-specific feature bits (0-31) negotiated */
    void (*on_interrupt)(void *arg); /* see virtio_on_interrupt */
    void *interrupt_arg;
};

struct virtio_buf {
    void *addr;
    uint32_t len;
    int device_writes;
};

/* Finds the n-th (0-based) device of type `device_id` by probing the 8 MMIO slots, and
 * initialises it with only VIRTIO_F_VERSION_1 negotiated. Returns 0 on success. */
int virtio_open(struct virtio_dev *dev, uint32_t device_id, unsigned n);
/* The same, also negotiating those of the device-specific feature bits 0-31 in `features`
 * that the device offers (see dev->features). */
int virtio_open_features(struct virtio_dev *dev, uint32_t device_id, unsigned n,
                         uint32_t features);
/* Sets up queue `index` (at most `size` entries) and, once all are set up, call
 * virtio_ready. */
int virtq_init(struct virtq *q, struct virtio_dev *dev, unsigned index, unsigned size);
void virtio_ready(struct virtio_dev *dev);
/* Device configuration space, byte offset `off`. */
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off);
/* Submits one chain of buffers, waits (sleeping in WFI) for the device to use it, and
 * returns the number of bytes the device wrote. */
uint32_t virtq_transfer(struct virtq *q, const struct virtio_buf *bufs, unsigned n);

/* For drivers that keep many buffers in flight (net): fill q->desc themselves, then */
/* make the chain starting at descriptor `head` available (the device is not told yet), */
void virtq_post(struct virtq *q, uint16_t head);
/* tell the device about everything posted, */
void virtq_kick(struct virtq *q);
/* and take back used chains: the head of the next one (bytes written in *len), or -1. */
int virtq_next_used(struct virtq *q, uint32_t *len);
/* Asks the device not to interrupt when it uses this queue's buffers (a hint). */
void virtq_quiet(struct virtq *q);
/* Calls fn(arg) from the device's interrupt handler (interrupt context: only post work). */
void virtio_on_interrupt(struct virtio_dev *dev, void (*fn)(void *arg), void *arg);

#endif
