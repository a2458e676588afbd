/* The virtio-net driver (virtio 1.2, 5.1): queue 0 receives, queue 1 transmits.
 *
 * Every receive buffer is one descriptor (descriptor i is buffer i), always posted; the
 * device's interrupt posts `poll` to the event loop, which hands each used buffer to the
 * stack and posts it again. Transmit buffers are taken from a free list, and taken back
 * from the used ring before each send (the device need not interrupt for them). */
#include <kernel.h>
#include <stdlib.h>
#include <string.h>
#include <virtio.h>

#include "stack.h"

#define F_MAC (1u << 5)
#define HDR 12 /* struct virtio_net_hdr, num_buffers included (VIRTIO_F_VERSION_1) */
#define BUF_SIZE 1536
#define RX_COUNT 64
#define TX_COUNT 64

static struct virtio_dev dev;
static struct virtq rx, tx;
static uint8_t (*rx_buf)[BUF_SIZE], (*tx_buf)[BUF_SIZE];
static uint16_t tx_free[TX_COUNT];
static uint8_t tx_busy[TX_COUNT];
static unsigned tx_nfree;
static volatile int poll_posted;

uint8_t net_mac[6];

static void reclaim_tx(void)
{
    uint32_t len;
    int id;
    while ((id = virtq_next_used(&tx, &len)) >= 0)
        if ((unsigned)id < tx.size && tx_busy[id]) {
            tx_busy[id] = 0;
            tx_free[tx_nfree++] = (uint16_t)id;
        }
}

static void poll(void *unused)
{
    (void)unused;
    poll_posted = 0;
    uint32_t len;
    int id, n = 0;
    while ((id = virtq_next_used(&rx, &len)) >= 0) {
        if ((unsigned)id >= rx.size)
            continue; /* not ours: a broken device */
        if (len > HDR && len <= BUF_SIZE) {
            net_counters.rx_frames++;
            net_eth_input(rx_buf[id] + HDR, len - HDR);
        } else {
            net_counters.rx_dropped++;
        }
        virtq_post(&rx, (uint16_t)id);
        n++;
    }
    if (n)
        virtq_kick(&rx);
    reclaim_tx();
}

static void on_interrupt(void *unused)
{
    (void)unused;
    if (!poll_posted) {
        poll_posted = 1;
        os_post(poll, 0);
    }
}

int net_dev_open(void)
{
    if (virtio_open_features(&dev, VIRTIO_ID_NET, 0, F_MAC) != 0 ||
        virtq_init(&rx, &dev, 0, RX_COUNT) != 0 || virtq_init(&tx, &dev, 1, TX_COUNT) != 0)
        return -1;
    rx_buf = aligned_alloc(16, rx.size * BUF_SIZE);
    tx_buf = aligned_alloc(16, tx.size * BUF_SIZE);
    if (!rx_buf || !tx_buf)
        return -1;
    if (dev.features & F_MAC) {
        for (int i = 0; i < 6; i++)
            net_mac[i] = (uint8_t)mmio_read8(dev.base + 0x100 + i);
    } else { /* 5.1.5: make one up (locally administered) */
        const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        memcpy(net_mac, mac, 6);
    }
    for (unsigned i = 0; i < rx.size; i++) {
        rx.desc[i] = (struct virtq_desc){(uintptr_t)rx_buf[i], BUF_SIZE, VIRTQ_DESC_F_WRITE, 0};
        virtq_post(&rx, (uint16_t)i);
    }
    for (unsigned i = 0; i < tx.size; i++)
        tx_free[tx_nfree++] = (uint16_t)i;
    virtq_quiet(&tx);
    virtio_on_interrupt(&dev, on_interrupt, 0);
    virtio_ready(&dev);
    virtq_kick(&rx);
    return 0;
}

void net_dev_send(const uint8_t *frame, size_t len)
{
    reclaim_tx();
    if (tx_nfree == 0 || len > BUF_SIZE - HDR) {
        net_counters.tx_dropped++;
        return;
    }
    uint16_t id = tx_free[--tx_nfree];
    tx_busy[id] = 1;
    memset(tx_buf[id], 0, HDR);
    memcpy(tx_buf[id] + HDR, frame, len);
    tx.desc[id] = (struct virtq_desc){(uintptr_t)tx_buf[id], (uint32_t)(HDR + len), 0, 0};
    virtq_post(&tx, id);
    virtq_kick(&tx);
    net_counters.tx_frames++;
}
