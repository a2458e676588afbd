/* Bringing the interface up: the device, then an address from the kernel command line or
 * from DHCP. */
#include <fdt.h>
#include <kernel.h>
#include <string.h>

#include "stack.h"

struct net_config net_cfg;
struct net_stats net_counters;

static void (*up_fn)(void *arg);
static void *up_arg;
static int started;

const struct net_config *net_config(void) { return &net_cfg; }

const struct net_stats *net_stats(void) { return &net_counters; }

char *net_ip_text(net_ip ip, char *buf)
{
    char *p = buf;
    for (int shift = 24; shift >= 0; shift -= 8) {
        unsigned v = (ip >> shift) & 255;
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = shift ? '.' : 0;
    }
    return buf;
}

/* "10.0.2.15" at s (ending at any non-digit, non-dot): 0 on success. */
static int parse_ip(const char *s, net_ip *ip)
{
    net_ip v = 0;
    for (int part = 0; part < 4; part++) {
        unsigned n = 0, digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
            n = n * 10 + (unsigned)(*s - '0');
        if (!digits || n > 255 || (part < 3 && *s++ != '.'))
            return -1;
        v = v << 8 | n;
    }
    *ip = v;
    return 0;
}

/* The i-th ':'-separated field of an ip= value (up to a space), or NULL if empty. */
static const char *field(const char *s, int i)
{
    for (; i > 0; i--) {
        while (*s && *s != ':' && *s != ' ')
            s++;
        if (*s != ':')
            return 0;
        s++;
    }
    return *s && *s != ':' && *s != ' ' ? s : 0;
}

/* ip=CLIENT:SERVER:GATEWAY:NETMASK (Linux's Documentation/admin-guide/nfs/nfsroot.rst; the
 * rest of its fields are ignored). 0 when it configured the interface. */
static int configure_from_command_line(void)
{
    const char *args = fdt_bootargs(os_device_tree()), *ip = 0;
    for (const char *p = args; p && *p; p++)
        if ((p == args || p[-1] == ' ') && strncmp(p, "ip=", 3) == 0)
            ip = p + 3;
    const char *f;
    if (!ip || !(f = field(ip, 0)) || parse_ip(f, &net_cfg.addr) != 0)
        return -1;
    net_cfg.netmask = NET_IP(255, 255, 255, 0);
    if ((f = field(ip, 3)))
        parse_ip(f, &net_cfg.netmask);
    if ((f = field(ip, 2)))
        parse_ip(f, &net_cfg.gateway);
    return 0;
}

static void tell_app(void *unused)
{
    (void)unused;
    if (up_fn)
        up_fn(up_arg);
}

void net_configured(void)
{
    net_arp_announce();
    os_post(tell_app, 0);
}

int net_start(void (*on_up)(void *arg), void *arg)
{
    if (started)
        return -1;
    if (net_dev_open() != 0)
        return -1;
    started = 1;
    up_fn = on_up;
    up_arg = arg;
    os_hold(); /* the interface keeps os_run() going */
    if (configure_from_command_line() == 0)
        net_configured();
    else
        net_dhcp_start();
    return 0;
}
