/* A minimal virtio-mmio (version 2) driver for the device test guests: one split queue per
   device, chains submitted one at a time, completion by polling or by interrupt. */
#ifndef VIRTIO_H
#define VIRTIO_H
#include "guest.h"

#define VQ_SIZE 8

struct vq_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

struct vq {
    struct vq_desc desc[VQ_SIZE];
    struct {
        u16 flags, idx, ring[VQ_SIZE], used_event;
    } avail;
    u8 pad[4096 - sizeof(struct vq_desc) * VQ_SIZE - 2 * (3 + VQ_SIZE)];
    struct {
        u16 flags, idx;
        struct {
            u32 id, len;
        } ring[VQ_SIZE];
        u16 avail_event;
    } used;
    u16 last_used;
    u64 base;
    u32 index;
} __attribute__((aligned(4096)));

#define DESC_NEXT 1
#define DESC_WRITE 2

/* the base address of the first slot holding device `id`, or 0 */
static u64 virtio_find(u32 id)
{
    for (int slot = 0; slot < 8; slot++) {
        u64 base = VIRTIO0 + 0x1000UL * slot;
        if (rd32(base) == 0x74726976 && rd32(base + 4) == 2 && rd32(base + 8) == id)
            return base;
    }
    return 0;
}

static inline int virtio_irq(u64 base) { return 1 + (int)((base - VIRTIO0) >> 12); }

/* reset, negotiate VERSION_1 plus `want` (low 32 feature bits), set up queue `index` */
static int virtio_init(u64 base, struct vq *q, u32 want, int nqueues)
{
    wr32(base + 0x70, 0);
    wr32(base + 0x70, 1);
    wr32(base + 0x70, 1 | 2);
    wr32(base + 0x14, 1);
    if (!(rd32(base + 0x10) & 1))
        return -1;
    wr32(base + 0x14, 0);
    u32 offered = rd32(base + 0x10);
    wr32(base + 0x24, 0);
    wr32(base + 0x20, offered & want);
    wr32(base + 0x24, 1);
    wr32(base + 0x20, 1);
    wr32(base + 0x70, 1 | 2 | 8);
    if (!(rd32(base + 0x70) & 8))
        return -2;
    for (int i = 0; i < nqueues; i++) {
        struct vq *v = &q[i];
        wr32(base + 0x30, i);
        if (rd32(base + 0x34) < VQ_SIZE)
            return -3;
        wr32(base + 0x38, VQ_SIZE);
        u64 d = (u64)v->desc, a = (u64)&v->avail, u = (u64)&v->used;
        wr32(base + 0x80, d);
        wr32(base + 0x84, d >> 32);
        wr32(base + 0x90, a);
        wr32(base + 0x94, a >> 32);
        wr32(base + 0xa0, u);
        wr32(base + 0xa4, u >> 32);
        wr32(base + 0x44, 1);
        v->base = base;
        v->index = i;
    }
    wr32(base + 0x70, 1 | 2 | 8 | 4);
    return 0;
}

/* make the chain starting at descriptor `head` available and notify the device */
static void vq_submit(struct vq *q, u16 head)
{
    q->avail.ring[q->avail.idx % VQ_SIZE] = head;
    barrier();
    q->avail.idx++;
    barrier();
    wr32(q->base + 0x50, q->index);
}

static int vq_poll(struct vq *q, u32 *len)
{
    barrier();
    if (*(volatile u16 *)&q->used.idx == q->last_used)
        return -1;
    u32 id = q->used.ring[q->last_used % VQ_SIZE].id;
    if (len)
        *len = q->used.ring[q->last_used % VQ_SIZE].len;
    q->last_used++;
    return (int)id;
}

static int vq_wait(struct vq *q, u32 *len)
{
    int id;
    while ((id = vq_poll(q, len)) < 0)
        ;
    return id;
}

#endif
