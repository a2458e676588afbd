/* Ethernet II framing and ARP (RFC 826): a small cache of neighbours' MAC addresses.
 * Packets to a neighbour not yet resolved wait (the last WAITING of them, for any
 * neighbours) while an ARP request goes out; the reply sends them, in order. Entries are
 * refreshed by any ARP packet from their owner and asked again after ARP_TTL_US. */
#include <string.h>
#include <timer.h>

#include "stack.h"

#define ARP_ENTRIES 8
#define WAITING 8
#define ARP_TTL_US (10 * 60 * 1000000ULL)
#define ARP_RETRY_US 1000000ULL
#define ARP_LEN 28
#define ARP_REQUEST 1
#define ARP_REPLY 2

struct arp_entry {
    net_ip ip; /* 0: free */
    uint8_t mac[6];
    uint8_t resolved;
    uint64_t stamp_us; /* when resolved, or when last asked */
};

static struct arp_entry arp[ARP_ENTRIES];
static struct {
    net_ip hop; /* 0: free */
    uint16_t len;
    uint8_t frame[NET_ETH_HLEN + NET_MTU];
} waiting[WAITING];
static unsigned next_waiting; /* the slot to fill next (the oldest when all are full) */
static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

uint8_t net_out[NET_ETH_HLEN + NET_MTU];

static void eth_header(uint8_t *frame, const uint8_t *to, uint16_t type)
{
    memcpy(frame, to, 6);
    memcpy(frame + 6, net_mac, 6);
    net_put16(frame + 12, type);
}

static void arp_send(uint16_t op, const uint8_t *to_mac, net_ip to_ip)
{
    uint8_t f[NET_ETH_HLEN + ARP_LEN];
    uint8_t *a = f + NET_ETH_HLEN;
    eth_header(f, op == ARP_REQUEST ? broadcast_mac : to_mac, NET_ETH_ARP);
    net_put16(a, 1); /* Ethernet */
    net_put16(a + 2, NET_ETH_IP);
    a[4] = 6;
    a[5] = 4;
    net_put16(a + 6, op);
    memcpy(a + 8, net_mac, 6);
    net_put32(a + 14, net_cfg.addr);
    memcpy(a + 18, op == ARP_REQUEST ? (const uint8_t *)"\0\0\0\0\0\0" : to_mac, 6);
    net_put32(a + 24, to_ip);
    net_dev_send(f, sizeof(f));
}

void net_arp_announce(void) { arp_send(ARP_REQUEST, broadcast_mac, net_cfg.addr); }

static struct arp_entry *arp_find(net_ip ip)
{
    for (int i = 0; i < ARP_ENTRIES; i++)
        if (arp[i].ip == ip)
            return &arp[i];
    return 0;
}

/* A free entry, else the one used longest ago. */
static struct arp_entry *arp_new(net_ip ip)
{
    struct arp_entry *e = &arp[0];
    for (int i = 0; i < ARP_ENTRIES; i++) {
        if (!arp[i].ip) {
            e = &arp[i];
            break;
        }
        if (arp[i].stamp_us < e->stamp_us)
            e = &arp[i];
    }
    memset(e, 0, sizeof(*e));
    e->ip = ip;
    return e;
}

static void arp_learn(struct arp_entry *e, const uint8_t *mac)
{
    memcpy(e->mac, mac, 6);
    e->resolved = 1;
    e->stamp_us = time_us();
    for (unsigned i = 0; i < WAITING; i++) { /* oldest first */
        unsigned k = (next_waiting + i) % WAITING;
        if (waiting[k].hop == e->ip) {
            memcpy(waiting[k].frame, mac, 6);
            net_dev_send(waiting[k].frame, waiting[k].len);
            waiting[k].hop = 0;
        }
    }
}

static void arp_input(const uint8_t *a, size_t len)
{
    if (len < ARP_LEN || net_get16(a) != 1 || net_get16(a + 2) != NET_ETH_IP || a[4] != 6 ||
        a[5] != 4)
        return;
    uint16_t op = net_get16(a + 6);
    const uint8_t *sender_mac = a + 8;
    net_ip sender = net_get32(a + 14), target = net_get32(a + 24);
    if (sender == 0 || sender == NET_BROADCAST || sender_mac[0] & 1 ||
        memcmp(sender_mac, net_mac, 6) == 0)
        return; /* probes, nonsense, and our own */
    int for_us = net_cfg.addr && target == net_cfg.addr;
    struct arp_entry *e = arp_find(sender);
    if (e || for_us)
        arp_learn(e ? e : arp_new(sender), sender_mac);
    if (op == ARP_REQUEST && for_us)
        arp_send(ARP_REPLY, sender_mac, sender);
}

void net_eth_input(const uint8_t *frame, size_t len)
{
    if (len < NET_ETH_HLEN)
        return;
    if (memcmp(frame, net_mac, 6) != 0 && memcmp(frame, broadcast_mac, 6) != 0)
        return;
    uint16_t type = net_get16(frame + 12);
    if (type == NET_ETH_ARP)
        arp_input(frame + NET_ETH_HLEN, len - NET_ETH_HLEN);
    else if (type == NET_ETH_IP)
        net_ip_input(frame + NET_ETH_HLEN, len - NET_ETH_HLEN);
}

void net_eth_send_ip(net_ip dst, size_t ip_len)
{
    size_t len = NET_ETH_HLEN + ip_len;
    net_ip mask = net_cfg.netmask;
    if (dst == NET_BROADCAST || (mask && (dst | mask) == NET_BROADCAST)) {
        eth_header(net_out, broadcast_mac, NET_ETH_IP);
        net_dev_send(net_out, len);
        return;
    }
    net_ip hop = (dst & mask) == (net_cfg.addr & mask) || !net_cfg.gateway ? dst : net_cfg.gateway;
    struct arp_entry *e = arp_find(hop);
    uint64_t now = time_us();
    if (e && e->resolved && now - e->stamp_us < ARP_TTL_US) {
        eth_header(net_out, e->mac, NET_ETH_IP);
        net_dev_send(net_out, len);
        return;
    }
    if (!e)
        e = arp_new(hop);
    eth_header(net_out, broadcast_mac, NET_ETH_IP);
    memcpy(waiting[next_waiting].frame, net_out, len);
    waiting[next_waiting].len = (uint16_t)len;
    waiting[next_waiting].hop = hop;
    next_waiting = (next_waiting + 1) % WAITING;
    if (e->resolved || !e->stamp_us || now - e->stamp_us >= ARP_RETRY_US) {
        e->resolved = 0;
        e->stamp_us = now;
        arp_send(ARP_REQUEST, broadcast_mac, hop);
    }
}
