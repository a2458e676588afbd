/* net: a virtio-net driver and a small TCP/IP stack (Ethernet, ARP, IPv4, ICMP echo, UDP,
 * TCP, a DHCP client), driven by interrupts and the event loop.
 *
 * Everything runs from os_run(): the driver's interrupt only posts work, and callbacks
 * (on_up, on_accept, on_data, ...) run one at a time in thread context. Between events
 * the hart sleeps in WFI; timers run only while something needs them (a retransmission,
 * TIME_WAIT, a DHCP request waiting for its answer).
 *
 *     static void on_data(struct net_tcp *c, const void *data, size_t len)
 *     {
 *         if (len == 0)                 // the peer has finished sending
 *             net_tcp_close(c);
 *         else
 *             net_tcp_send(c, data, len); // echo
 *     }
 *     static void on_accept(struct net_tcp *c, void *arg) { net_tcp_on_data(c, on_data); }
 *     int main(void) { net_start(0, 0); net_tcp_listen(7, on_accept, 0); os_run(); }
 */
#ifndef LIBOS_NET_H
#define LIBOS_NET_H

#include <kernel.h> /* os_run */
#include <stddef.h>
#include <stdint.h>

/* IPv4 addresses are host-order integers: NET_IP(10, 0, 2, 15). */
typedef uint32_t net_ip;
#define NET_IP(a, b, c, d) \
    ((net_ip)(a) << 24 | (net_ip)(b) << 16 | (net_ip)(c) << 8 | (net_ip)(d))

struct net_config {
    net_ip addr, netmask, gateway, dns;
};

/* Opens the first virtio-net device and configures the interface: statically from the
 * kernel command line's `ip=ADDR::GATEWAY:NETMASK` (Linux's nfsroot syntax; "ip=dhcp" or
 * no ip= at all means DHCP). on_up(arg) runs from the event loop once the interface has
 * an address. Returns 0, or -1 if there is no virtio-net device. */
int net_start(void (*on_up)(void *arg), void *arg);
/* The interface's addresses (all zero until it is up). */
const struct net_config *net_config(void);
/* "10.0.2.15": formats into buf (at least 16 bytes) and returns it. */
char *net_ip_text(net_ip ip, char *buf);

/* Counters, for apps that show them and for tests. */
struct net_stats {
    uint32_t rx_frames, tx_frames, rx_dropped, tx_dropped;
    uint32_t tcp_accepted, tcp_connected, tcp_resets, tcp_retransmits;
};
const struct net_stats *net_stats(void);

/* --- UDP */
typedef void (*net_udp_fn)(void *arg, net_ip from, uint16_t from_port, const void *data,
                           size_t len);
/* Calls fn for every datagram to local `port`. Returns 0, or -1 if the port is taken. */
int net_udp_bind(uint16_t port, net_udp_fn fn, void *arg);
/* Sends one datagram from local port `from_port` (at most 1472 bytes). Returns 0 or -1. */
int net_udp_send(uint16_t from_port, net_ip to, uint16_t to_port, const void *data, size_t len);

/* --- TCP. A connection is owned by the stack; the app sees it from its on_accept or
 * on_connect call until its on_close call, and must not use it after that. */
struct net_tcp;
typedef void (*net_tcp_fn)(struct net_tcp *c, void *arg);

/* Calls on_accept(c, arg) for each connection made to local `port`. Returns 0 or -1. */
int net_tcp_listen(uint16_t port, net_tcp_fn on_accept, void *arg);
/* Opens a connection; on_connect(c, arg) runs when it is established, on_close if it
 * fails. Returns the connection (not usable for sending before on_connect), or NULL. */
struct net_tcp *net_tcp_connect(net_ip to, uint16_t port, net_tcp_fn on_connect, void *arg);

/* Data received, in order; len 0 (data NULL) once: the peer has finished sending. */
void net_tcp_on_data(struct net_tcp *c, void (*fn)(struct net_tcp *c, const void *data,
                                                   size_t len));
/* The send buffer has room again after net_tcp_send took less than it was given. */
void net_tcp_on_sent(struct net_tcp *c, void (*fn)(struct net_tcp *c));
/* The connection is over (closed both ways, reset, or timed out). */
void net_tcp_on_close(struct net_tcp *c, void (*fn)(struct net_tcp *c));
/* A pointer for the app, kept with the connection (the arg of listen/connect at first). */
void net_tcp_set_user(struct net_tcp *c, void *user);
void *net_tcp_user(struct net_tcp *c);

/* Queues data for sending; returns how much was taken (less than len when the send
 * buffer is full: send the rest from on_sent). */
size_t net_tcp_send(struct net_tcp *c, const void *data, size_t len);
/* Bytes net_tcp_send would take now. */
size_t net_tcp_space(struct net_tcp *c);
/* Sends FIN once queued data is out; received data is dropped from now on. */
void net_tcp_close(struct net_tcp *c);
/* Resets the connection at once (no on_close call follows). */
void net_tcp_abort(struct net_tcp *c);
/* The peer's address and port. */
net_ip net_tcp_peer(struct net_tcp *c, uint16_t *port);

#endif
