/* virtio-blk: find the disk, get its id, read sector 0, write sector 1 and read it back,
   flush, and check the error statuses for a read past the end and an unknown request. */
#include "virtio.h"

static struct vq q;
static struct {
    u32 type, reserved;
    u64 sector;
} hdr;
static u8 data[1024] __attribute__((aligned(16)));
static volatile u8 status;
static volatile int irq_seen;
static u64 blk_base;

void trap(u64 cause)
{
    if (cause != ((1UL << 63) | 11)) {
        puts("blk: unexpected trap\r\n");
        poweroff_code(2);
    }
    u32 irq = plic_claim_m();
    if (irq == (u32)virtio_irq(blk_base)) {
        u32 st = rd32(blk_base + 0x60);
        wr32(blk_base + 0x64, st);
        if (st & 1)
            irq_seen = 1;
    }
    plic_complete_m(irq);
}

/* one request: header, optional data (len bytes, device-writable if `in`), status */
static int request(u32 type, u64 sector, u32 len, int in, u32 *used_len)
{
    hdr.type = type;
    hdr.sector = sector;
    status = 0xff;
    q.desc[0] = (struct vq_desc){(u64)&hdr, 16, DESC_NEXT, 1};
    int n = 1;
    if (len) {
        q.desc[1] = (struct vq_desc){(u64)data, len, DESC_NEXT | (in ? DESC_WRITE : 0), 2};
        n = 2;
    } else {
        q.desc[0].next = 2;
    }
    q.desc[2] = (struct vq_desc){(u64)&status, 1, DESC_WRITE, 0};
    (void)n;
    vq_submit(&q, 0);
    vq_wait(&q, used_len);
    return status;
}

static void line(const char *label, u64 v)
{
    puts(label);
    putdec(v);
    puts("\r\n");
}

int main(void)
{
    blk_base = virtio_find(2);
    if (!blk_base) {
        puts("blk: no disk\r\n");
        return 1;
    }
    puts("blk: disk at ");
    puthex(blk_base);
    line(" irq ", virtio_irq(blk_base));
    if (virtio_init(blk_base, &q, (1 << 5) | (1 << 9), 1) < 0) {
        puts("blk: init failed\r\n");
        return 1;
    }
    u32 features = (wr32(blk_base + 0x14, 0), rd32(blk_base + 0x10));
    int ro = (features >> 5) & 1;
    line("blk: read-only ", ro);
    u64 capacity = rd32(blk_base + 0x100) | (u64)rd32(blk_base + 0x104) << 32;
    line("blk: capacity in sectors ", capacity);

    u32 used;
    for (int i = 0; i < 20; i++)
        data[i] = 0;
    int s = request(8, 0, 20, 1, &used);
    puts("blk: id '");
    for (int i = 0; i < 20 && data[i]; i++)
        putc(data[i]);
    puts("'\r\n");
    line("blk: get-id status ", s);

    s = request(0, 0, 512, 1, &used);
    line("blk: read sector 0 status ", s);
    line("blk: used length ", used);
    puts("blk: sector 0 says: ");
    for (int i = 0; i < 64 && data[i] && data[i] != '\n'; i++)
        putc(data[i]);
    puts("\r\n");

    /* the write goes through the PLIC: wait for the used-buffer interrupt */
    plic_enable_m(virtio_irq(blk_base), 1);
    enable_external_interrupts();
    const char *msg = "written by the guest to sector 1";
    for (int i = 0; i < 512; i++)
        data[i] = 0;
    for (int i = 0; msg[i]; i++)
        data[i] = msg[i];
    data[511] = '\n';
    s = request(1, 1, 512, 0, &used);
    line("blk: write sector 1 status ", s);
    __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    while (!irq_seen) {
        wfi();
        __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
        __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    }
    __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
    puts("blk: used-buffer interrupt seen\r\n");
    line("blk: flush status ", request(4, 0, 0, 0, &used));

    for (int i = 0; i < 512; i++)
        data[i] = 0;
    s = request(0, 1, 512, 1, &used);
    int same = 1;
    for (int i = 0; msg[i]; i++)
        if (data[i] != msg[i])
            same = 0;
    line("blk: read back sector 1 status ", s);
    puts(ro ? "blk: sector 1 unchanged: " : "blk: sector 1 holds the write: ");
    puts(same != ro ? "yes\r\n" : "no\r\n");

    line("blk: read past the end status ", request(0, capacity, 512, 1, &used));
    line("blk: read of half a sector status ", request(0, 0, 100, 1, &used));
    line("blk: unknown request status ", request(99, 0, 0, 0, &used));
    puts("blk: done\r\n");
    return 0;
}
