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
};

struct virtio_buf {
    void *addr;
    uint32_t len;
    int device_writes;
};

/* Finds the n-th (0-based) device of type `device_id` by probing the 8 MMIO slots, and
 * initialises it with only VIRTIO_F_VERSION_1 negotiated. Returns 0 on success. */
int virtio_open(struct virtio_dev *dev, uint32_t device_id, unsigned n);
/* Sets up queue `index` (at most `size` entries) and, once all are set up, call
 * virtio_ready. */
int virtq_init(struct virtq *q, struct virtio_dev *dev, unsigned index, unsigned size);
void virtio_ready(struct virtio_dev *dev);
/* Device configuration space, byte offset `off`. */
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off);
/* Submits one chain of buffers, waits (sleeping in WFI) for the device to use it, and
 * returns the number of bytes the device wrote. */
uint32_t virtq_transfer(struct virtq *q, const struct virtio_buf *bufs, unsigned n);

#endif
