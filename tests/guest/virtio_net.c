/* virtio-net over a link to a peer: the guest whose MAC ends in 01 sends "ping" frames until
   it hears a "pong" (polling); any other guest sleeps until a receive interrupt and answers
   the first ping it hears with a pong. */
#include "virtio.h"

#define HDR 12
#define FRAME_MAX 1514
#define ETHERTYPE 0x88b5 /* IEEE local experimental */

static struct vq q[2];
static u8 rxbuf[4][HDR + FRAME_MAX] __attribute__((aligned(16)));
static u8 txbuf[HDR + FRAME_MAX] __attribute__((aligned(16)));
static u8 mac[6];

static u64 net_base;

void trap(u64 cause)
{
    if (cause != ((1UL << 63) | 11)) {
        puts("net: unexpected trap\r\n");
        poweroff_code(2);
    }
    u32 irq = plic_claim_m();
    if (irq == (u32)virtio_irq(net_base))
        wr32(net_base + 0x64, rd32(net_base + 0x60)); /* acknowledge */
    if (irq)
        plic_complete_m(irq);
}

static void post_rx(int i)
{
    q[0].desc[i] = (struct vq_desc){(u64)rxbuf[i], sizeof rxbuf[i], DESC_WRITE, 0};
    vq_submit(&q[0], i);
}

static void send(const char *text)
{
    u8 *f = txbuf + HDR;
    for (int i = 0; i < HDR; i++)
        txbuf[i] = 0;
    for (int i = 0; i < 6; i++) {
        f[i] = 0xff;
        f[6 + i] = mac[i];
    }
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    int n = 0;
    for (; text[n]; n++)
        f[14 + n] = text[n];
    for (int i = 0; i < 6; i++) { /* and our MAC's last byte, as two hex digits */
        f[14 + n++] = "0123456789abcdef"[mac[5] >> 4];
        f[14 + n++] = "0123456789abcdef"[mac[5] & 15];
        break;
    }
    while (n < 46)
        f[14 + n++] = 0;
    q[1].desc[0] = (struct vq_desc){(u64)txbuf, HDR + 14 + n, 0, 0};
    vq_submit(&q[1], 0);
    vq_wait(&q[1], 0);
}

/* a received frame of ours (ethertype), its text in `out`; -1 if none arrived */
static int receive(char *out, int max)
{
    u32 len;
    int id = vq_poll(&q[0], &len);
    if (id < 0)
        return -1;
    u8 *f = rxbuf[id] + HDR;
    int ok = len >= HDR + 14 && ((f[12] << 8) | f[13]) == ETHERTYPE;
    int n = 0;
    if (ok)
        for (; n < max - 1 && 14 + n < (int)len - HDR && f[14 + n]; n++)
            out[n] = f[14 + n];
    out[n] = 0;
    post_rx(id);
    return ok ? n : -1;
}

static int starts(const char *s, const char *p)
{
    while (*p)
        if (*s++ != *p++)
            return 0;
    return 1;
}

int main(void)
{
    u64 base = virtio_find(1);
    if (!base || virtio_init(base, q, 1 << 5, 2) < 0) {
        puts("net: no device\r\n");
        return 1;
    }
    for (int i = 0; i < 6; i++)
        mac[i] = rd8(base + 0x100 + i);
    puts("net: device at ");
    puthex(base);
    puts(", mac ends in ");
    puthex(mac[5]);
    puts("\r\n");
    for (int i = 0; i < 4; i++)
        post_rx(i);
    char text[64];
    if (mac[5] == 1) {
        for (;;) {
            send("ping from ");
            for (int spin = 0; spin < 20000; spin++)
                if (receive(text, sizeof text) > 0 && starts(text, "pong")) {
                    puts("net: heard '");
                    puts(text);
                    puts("'\r\n");
                    return 0;
                }
        }
    }
    /* the answering side sleeps in wfi until the receive interrupt (IRQ 1 + slot) */
    net_base = base;
    plic_enable_m(virtio_irq(base), 1);
    __asm__ volatile("csrs mie, %0" ::"r"(1UL << 11));
    for (;;) {
        __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
        if (*(volatile u16 *)&q[0].used.idx == q[0].last_used)
            wfi();
        __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
        if (receive(text, sizeof text) > 0 && starts(text, "ping")) {
            puts("net: heard '");
            puts(text);
            puts("'\r\n");
            send("pong from ");
            return 0;
        }
    }
}
