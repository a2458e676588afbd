/* IPv4 (RFC 791) without options on output and without reassembly: fragments are
 * dropped. ICMP (RFC 792): echo requests are answered. */
#include <string.h>

#include "stack.h"

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define FLAG_DF 0x4000
#define FRAGMENT_BITS 0x3fff /* more-fragments flag and fragment offset */

static uint16_t next_id;

void (*net_tcp_receive)(net_ip src, const uint8_t *segment, size_t len);

uint32_t net_sum(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *p = data;
    for (; len > 1; p += 2, len -= 2)
        sum += net_get16(p);
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

uint16_t net_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t net_pseudo_sum(net_ip src, net_ip dst, uint8_t proto, size_t len)
{
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
}

static void icmp_input(net_ip src, const uint8_t *p, size_t len)
{
    if (len < 8 || p[0] != ICMP_ECHO_REQUEST || p[1] != 0 || net_fold(net_sum(p, len, 0)))
        return;
    if (len > NET_MTU - NET_IP_HLEN)
        return;
    uint8_t *out = net_out + NET_L4;
    memcpy(out, p, len);
    out[0] = ICMP_ECHO_REPLY;
    net_put16(out + 2, 0);
    net_put16(out + 2, net_fold(net_sum(out, len, 0)));
    net_ip_send(src, NET_PROTO_ICMP, len);
}

void net_ip_input(const uint8_t *p, size_t len)
{
    if (len < NET_IP_HLEN || p[0] >> 4 != 4)
        return;
    size_t hlen = (size_t)(p[0] & 15) * 4, total = net_get16(p + 2);
    if (hlen < NET_IP_HLEN || total < hlen || total > len || net_fold(net_sum(p, hlen, 0)))
        return;
    if (net_get16(p + 6) & FRAGMENT_BITS) {
        net_counters.rx_dropped++;
        return;
    }
    net_ip src = net_get32(p + 12), dst = net_get32(p + 16);
    if (src >= NET_IP(224, 0, 0, 0))
        return; /* no packet comes from a multicast or broadcast address */
    const uint8_t *payload = p + hlen;
    size_t n = total - hlen;
    int ours = net_cfg.addr && dst == net_cfg.addr;
    int broadcast = dst == NET_BROADCAST ||
                    (net_cfg.netmask && (dst | net_cfg.netmask) == NET_BROADCAST);
    if (p[9] == NET_PROTO_UDP && (ours || broadcast || !net_cfg.addr))
        net_udp_input(src, payload, n); /* (DHCP answers come before we have an address) */
    else if (p[9] == NET_PROTO_TCP && ours && net_tcp_receive)
        net_tcp_receive(src, payload, n);
    else if (p[9] == NET_PROTO_ICMP && ours)
        icmp_input(src, payload, n);
}

int net_ip_send(net_ip dst, uint8_t proto, size_t len)
{
    if (len > NET_MTU - NET_IP_HLEN)
        return -1;
    uint8_t *h = net_out + NET_ETH_HLEN;
    h[0] = 0x45; /* version 4, 5 words of header */
    h[1] = 0;
    net_put16(h + 2, (uint16_t)(NET_IP_HLEN + len));
    net_put16(h + 4, next_id++);
    net_put16(h + 6, FLAG_DF);
    h[8] = 64; /* time to live */
    h[9] = proto;
    net_put16(h + 10, 0);
    net_put32(h + 12, net_cfg.addr);
    net_put32(h + 16, dst);
    net_put16(h + 10, net_fold(net_sum(h, NET_IP_HLEN, 0)));
    net_eth_send_ip(dst, NET_IP_HLEN + len);
    return 0;
}
