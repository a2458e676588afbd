/* What the net library's layers share (not part of its interface: see include/net.h).
 *
 * A frame to send is built in place in net_out: Ethernet header at 0, IPv4 at 14, then
 * the UDP/TCP/ICMP header and payload at NET_L4. Received frames are handled straight
 * from the driver's receive buffers. Multi-byte fields are read and written bytewise
 * (big-endian on the wire, any alignment). */
#ifndef LIBOS_NET_STACK_H
#define LIBOS_NET_STACK_H

#include <net.h>
#include <stddef.h>
#include <stdint.h>

#define NET_ETH_HLEN 14
#define NET_MTU 1500
#define NET_IP_HLEN 20
#define NET_L4 (NET_ETH_HLEN + NET_IP_HLEN)
#define NET_ETH_IP 0x0800
#define NET_ETH_ARP 0x0806
#define NET_PROTO_ICMP 1
#define NET_PROTO_TCP 6
#define NET_PROTO_UDP 17
#define NET_BROADCAST 0xffffffffu

extern uint8_t net_out[NET_ETH_HLEN + NET_MTU];
extern struct net_config net_cfg;
extern struct net_stats net_counters;
extern uint8_t net_mac[6];

static inline uint16_t net_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t net_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void net_put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = (uint8_t)v;
}
static inline void net_put32(uint8_t *p, uint32_t v)
{
    net_put16(p, v >> 16);
    net_put16(p + 2, (uint16_t)v);
}

/* The Internet checksum: add data to a running sum, then fold and complement it. */
uint32_t net_sum(const void *data, size_t len, uint32_t sum);
uint16_t net_fold(uint32_t sum);
/* The sum of the TCP/UDP pseudo-header. */
uint32_t net_pseudo_sum(net_ip src, net_ip dst, uint8_t proto, size_t len);

/* driver (dev.c) */
int net_dev_open(void);
void net_dev_send(const uint8_t *frame, size_t len);

/* Ethernet and ARP (eth.c) */
void net_eth_input(const uint8_t *frame, size_t len);
/* Sends the IPv4 packet of ip_len bytes at net_out + NET_ETH_HLEN towards dst. */
void net_eth_send_ip(net_ip dst, size_t ip_len);
void net_arp_announce(void);

/* IPv4 and ICMP (ip.c) */
void net_ip_input(const uint8_t *packet, size_t len);
/* Sends len bytes at net_out + NET_L4 to dst. Returns 0, or -1 if too long. */
int net_ip_send(net_ip dst, uint8_t proto, size_t len);

/* UDP, TCP, DHCP. TCP registers its input function on first use (net_tcp_listen or
 * net_tcp_connect), so an image that never uses TCP does not hold it. */
void net_udp_input(net_ip src, const uint8_t *segment, size_t len);
extern void (*net_tcp_receive)(net_ip src, const uint8_t *segment, size_t len);
void net_dhcp_start(void);
/* The interface has its address: announce it and tell the app. */
void net_configured(void);

#endif
