/* A DHCP client (RFC 2131): DISCOVER, OFFER, REQUEST, ACK, with the request repeated on
 * a timer until answered. The lease is kept for the life of the image (QEMU's and rvemu's
 * user networking lease for a day and never take an address back). */
#include <string.h>
#include <timer.h>

#include "stack.h"

#define CLIENT_PORT 68
#define SERVER_PORT 67
#define FIXED_LEN 240 /* the BOOTP fields and the magic cookie */
#define MAGIC 0x63825363
#define RETRY_US 1000000ULL
#define RETRY_MAX_US 16000000ULL

#define OPT_PAD 0
#define OPT_NETMASK 1
#define OPT_ROUTER 3
#define OPT_DNS 6
#define OPT_REQUESTED_IP 50
#define OPT_MSG_TYPE 53
#define OPT_SERVER_ID 54
#define OPT_PARAMS 55
#define OPT_END 255

enum { DISCOVER = 1, OFFER = 2, REQUEST = 3, ACK = 5, NAK = 6 };
enum { IDLE, SELECTING, REQUESTING, BOUND };

static int state;
static uint32_t xid;
static net_ip offered, server;
static uint64_t retry_us;
static struct timer retry;

static void send_message(int type)
{
    uint8_t *m = net_out + NET_L4 + 8; /* built where net_udp_send will put it */
    memset(m, 0, FIXED_LEN);
    m[0] = 1; /* BOOTREQUEST */
    m[1] = 1; /* Ethernet */
    m[2] = 6;
    net_put32(m + 4, xid);
    net_put16(m + 10, 0x8000); /* answer by broadcast: we have no address yet */
    memcpy(m + 28, net_mac, 6);
    net_put32(m + 236, MAGIC);
    uint8_t *o = m + FIXED_LEN;
    *o++ = OPT_MSG_TYPE;
    *o++ = 1;
    *o++ = (uint8_t)type;
    if (type == REQUEST) {
        *o++ = OPT_REQUESTED_IP;
        *o++ = 4;
        net_put32(o, offered);
        o += 4;
        *o++ = OPT_SERVER_ID;
        *o++ = 4;
        net_put32(o, server);
        o += 4;
    }
    const uint8_t params[] = {OPT_PARAMS, 3, OPT_NETMASK, OPT_ROUTER, OPT_DNS, OPT_END};
    memcpy(o, params, sizeof(params));
    o += sizeof(params);
    net_udp_send(CLIENT_PORT, NET_BROADCAST, SERVER_PORT, m, (size_t)(o - m));
}

static void on_retry(void *unused)
{
    (void)unused;
    if (state == BOUND)
        return;
    if (retry_us < RETRY_MAX_US)
        retry_us *= 2;
    if (state == REQUESTING)
        send_message(REQUEST);
    else
        send_message(DISCOVER);
    timer_oneshot(&retry, retry_us, on_retry, 0);
}

static void discover(void)
{
    state = SELECTING;
    xid = (uint32_t)time_ticks() ^ net_get32(net_mac + 2);
    retry_us = RETRY_US;
    send_message(DISCOVER);
    timer_oneshot(&retry, retry_us, on_retry, 0);
}

/* The value of option `code` (at least `len` bytes of it), or NULL. */
static const uint8_t *option(const uint8_t *o, size_t n, uint8_t code, size_t len)
{
    size_t i = 0;
    while (i < n && o[i] != OPT_END) {
        if (o[i] == OPT_PAD) {
            i++;
            continue;
        }
        if (i + 2 > n || i + 2 + o[i + 1] > n)
            return 0;
        if (o[i] == code)
            return o[i + 1] >= len ? o + i + 2 : 0;
        i += 2 + o[i + 1];
    }
    return 0;
}

static void on_reply(void *arg, net_ip from, uint16_t port, const void *data, size_t len)
{
    (void)arg;
    (void)from;
    const uint8_t *m = data;
    if (port != SERVER_PORT || len < FIXED_LEN || m[0] != 2 || net_get32(m + 4) != xid ||
        memcmp(m + 28, net_mac, 6) != 0 || net_get32(m + 236) != MAGIC)
        return;
    const uint8_t *o = m + FIXED_LEN, *v;
    size_t n = len - FIXED_LEN;
    if (!(v = option(o, n, OPT_MSG_TYPE, 1)))
        return;
    int type = v[0];
    const uint8_t *id = option(o, n, OPT_SERVER_ID, 4);
    if (state == SELECTING && type == OFFER && id) {
        offered = net_get32(m + 16);
        server = net_get32(id);
        state = REQUESTING;
        retry_us = RETRY_US;
        send_message(REQUEST);
        timer_oneshot(&retry, retry_us, on_retry, 0);
    } else if (state == REQUESTING && type == ACK && (!id || net_get32(id) == server)) {
        timer_stop(&retry);
        state = BOUND;
        net_cfg.addr = net_get32(m + 16);
        net_cfg.netmask = (v = option(o, n, OPT_NETMASK, 4)) ? net_get32(v) : NET_IP(255, 255, 255, 0);
        net_cfg.gateway = (v = option(o, n, OPT_ROUTER, 4)) ? net_get32(v) : 0;
        net_cfg.dns = (v = option(o, n, OPT_DNS, 4)) ? net_get32(v) : 0;
        net_configured();
    } else if (state == REQUESTING && type == NAK) {
        discover();
    }
}

void net_dhcp_start(void)
{
    if (state != IDLE)
        return;
    net_udp_bind(CLIENT_PORT, on_reply, 0);
    discover();
}
