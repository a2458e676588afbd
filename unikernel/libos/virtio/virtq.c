/* Split virtqueues. virtq_transfer has one request in flight at a time, so its descriptors
 * are simply taken from the start of the table; drivers with many in flight (net) manage
 * the table themselves and use virtq_post / virtq_kick / virtq_next_used. */
#include <arch.h>
#include <kernel.h>
#include <stdlib.h>
#include <string.h>
#include <virtio.h>

#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_READY 0x044
#define QUEUE_NOTIFY 0x050
#define QUEUE_DESC 0x080
#define QUEUE_DRIVER 0x090
#define QUEUE_DEVICE 0x0a0

static void write_addr(uintptr_t reg, const volatile void *p)
{
    uint64_t a = (uintptr_t)p;
    mmio_write32(reg, (uint32_t)a);
    mmio_write32(reg + 4, (uint32_t)(a >> 32));
}

int virtq_init(struct virtq *q, struct virtio_dev *dev, unsigned index, unsigned size)
{
    uintptr_t base = dev->base;
    mmio_write32(base + QUEUE_SEL, index);
    unsigned max = mmio_read32(base + QUEUE_NUM_MAX);
    if (max == 0 || mmio_read32(base + QUEUE_READY))
        return -1;
    if (size > max)
        size = max;
    q->dev = dev;
    q->index = index;
    q->size = size;
    q->last_used = 0;
    size_t desc_bytes = 16 * size, avail_bytes = 6 + 2 * size, used_bytes = 6 + 8 * size;
    q->desc = aligned_alloc(4096, desc_bytes);
    q->avail = aligned_alloc(4096, avail_bytes);
    q->used = aligned_alloc(4096, used_bytes);
    if (!q->desc || !q->avail || !q->used)
        return -1;
    memset(q->desc, 0, desc_bytes);
    memset((void *)q->avail, 0, avail_bytes);
    memset((void *)q->used, 0, used_bytes);
    mmio_write32(base + QUEUE_NUM, size);
    write_addr(base + QUEUE_DESC, q->desc);
    write_addr(base + QUEUE_DRIVER, q->avail);
    write_addr(base + QUEUE_DEVICE, q->used);
    mmio_write32(base + QUEUE_READY, 1);
    return 0;
}

void virtq_post(struct virtq *q, uint16_t head)
{
    uint16_t idx = q->avail[1];
    q->avail[2 + idx % q->size] = head;
    fence(); /* the device must see the descriptors and ring entry before the index */
    q->avail[1] = idx + 1;
}

void virtq_kick(struct virtq *q)
{
    fence();
    mmio_write32(q->dev->base + QUEUE_NOTIFY, q->index);
}

int virtq_next_used(struct virtq *q, uint32_t *len)
{
    if (q->used->idx == q->last_used)
        return -1;
    fence(); /* read the entry only after seeing the index */
    volatile struct virtq_used_elem *e = &q->used->ring[q->last_used % q->size];
    *len = e->len;
    int head = (int)e->id;
    q->last_used++;
    return head;
}

void virtq_quiet(struct virtq *q) { q->avail[0] = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT */ }

static int used_advanced(void *arg)
{
    struct virtq *q = arg;
    return q->used->idx != q->last_used;
}

uint32_t virtq_transfer(struct virtq *q, const struct virtio_buf *bufs, unsigned n)
{
    if (n == 0 || n > q->size)
        panic("virtq: bad chain length");
    for (unsigned i = 0; i < n; i++) {
        q->desc[i].addr = (uintptr_t)bufs[i].addr;
        q->desc[i].len = bufs[i].len;
        q->desc[i].flags = (bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
                           (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
        q->desc[i].next = i + 1 < n ? i + 1 : 0;
    }
    virtq_post(q, 0); /* the chain starts at descriptor 0 */
    virtq_kick(q);
    os_wait(used_advanced, q);
    uint32_t written = 0;
    virtq_next_used(q, &written);
    return written;
}
