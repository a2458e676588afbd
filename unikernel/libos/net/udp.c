/* UDP (RFC 768): datagrams to bound local ports go to their callbacks. */
#include <string.h>

#include "stack.h"

#define UDP_HLEN 8
#define MAX_BINDINGS 8

static struct {
    uint16_t port; /* 0: free */
    net_udp_fn fn;
    void *arg;
} bindings[MAX_BINDINGS];

int net_udp_bind(uint16_t port, net_udp_fn fn, void *arg)
{
    int free_slot = -1;
    for (int i = 0; i < MAX_BINDINGS; i++) {
        if (bindings[i].port == port)
            return -1;
        if (!bindings[i].port && free_slot < 0)
            free_slot = i;
    }
    if (port == 0 || free_slot < 0)
        return -1;
    bindings[free_slot].port = port;
    bindings[free_slot].fn = fn;
    bindings[free_slot].arg = arg;
    return 0;
}

void net_udp_input(net_ip src, const uint8_t *p, size_t len)
{
    if (len < UDP_HLEN)
        return;
    size_t ulen = net_get16(p + 4);
    if (ulen < UDP_HLEN || ulen > len)
        return;
    /* A zero checksum means none was computed. The destination in the pseudo-header is
     * ours, or the broadcast address while we have none: try ours first. */
    if (net_get16(p + 6)) {
        uint32_t sum = net_sum(p, ulen, 0);
        if (net_fold(sum + net_pseudo_sum(src, net_cfg.addr, NET_PROTO_UDP, ulen)) &&
            net_fold(sum + net_pseudo_sum(src, NET_BROADCAST, NET_PROTO_UDP, ulen)))
            return;
    }
    uint16_t port = net_get16(p + 2);
    for (int i = 0; i < MAX_BINDINGS; i++)
        if (bindings[i].port == port) {
            bindings[i].fn(bindings[i].arg, src, net_get16(p), p + UDP_HLEN, ulen - UDP_HLEN);
            return;
        }
}

int net_udp_send(uint16_t from_port, net_ip to, uint16_t to_port, const void *data, size_t len)
{
    if (len > NET_MTU - NET_IP_HLEN - UDP_HLEN)
        return -1;
    uint8_t *u = net_out + NET_L4;
    size_t ulen = UDP_HLEN + len;
    net_put16(u, from_port);
    net_put16(u + 2, to_port);
    net_put16(u + 4, (uint16_t)ulen);
    net_put16(u + 6, 0);
    memmove(u + UDP_HLEN, data, len); /* (data may already be in net_out) */
    uint16_t sum = net_fold(net_sum(u, ulen, net_pseudo_sum(net_cfg.addr, to, NET_PROTO_UDP, ulen)));
    net_put16(u + 6, sum ? sum : 0xffff);
    return net_ip_send(to, NET_PROTO_UDP, ulen);
}
