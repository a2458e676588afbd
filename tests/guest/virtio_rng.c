/* virtio-rng: two 32-byte reads must be filled, not all zero, and differ. */
#include "virtio.h"

static struct vq q;
static u8 a[32], b[32];

void trap(u64 cause)
{
    (void)cause;
    puts("rng: unexpected trap\r\n");
    poweroff_code(2);
}

static u32 fill(u8 *buf)
{
    u32 len = 0;
    q.desc[0] = (struct vq_desc){(u64)buf, 32, DESC_WRITE, 0};
    vq_submit(&q, 0);
    vq_wait(&q, &len);
    return len;
}

int main(void)
{
    u64 base = virtio_find(4);
    if (!base || virtio_init(base, &q, 0, 1) < 0) {
        puts("rng: no device\r\n");
        return 1;
    }
    puts("rng: device at ");
    puthex(base);
    puts("\r\n");
    u32 la = fill(a), lb = fill(b);
    puts("rng: got ");
    putdec(la);
    puts(" and ");
    putdec(lb);
    puts(" bytes\r\n");
    int zero = 1, same = 1;
    for (int i = 0; i < 32; i++) {
        if (a[i])
            zero = 0;
        if (a[i] != b[i])
            same = 0;
    }
    puts(!zero && !same ? "rng: the bytes look random\r\n" : "rng: the bytes are NOT random\r\n");
    return 0;
}
