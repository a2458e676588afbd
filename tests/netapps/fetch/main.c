/* A test app for TCP's active open: connects to the address in the kernel command line
 * (fetch=IP:PORT), sends `send=N` bytes (a pattern, after a line "N\n"), reads until the
 * peer closes, prints what it got and powers off. */
#include <fdt.h>
#include <net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static net_ip server;
static unsigned port;
static size_t to_send, sent, received;
static uint32_t crc = 0xffffffffu;
static char chunk[1024];

static const char *arg(const char *name)
{
    const char *args = fdt_bootargs(os_device_tree());
    const char *p = args ? strstr(args, name) : 0;
    return p ? p + strlen(name) : 0;
}

static void fill(struct net_tcp *c)
{
    while (sent < to_send) {
        size_t n = to_send - sent < sizeof(chunk) ? to_send - sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)('a' + (sent + i) % 26);
        size_t took = net_tcp_send(c, chunk, n);
        sent += took;
        if (took < n)
            return; /* on_sent calls again */
    }
}

static void on_data(struct net_tcp *c, const void *data, size_t len)
{
    if (len == 0) {
        net_tcp_close(c);
        return;
    }
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    received += len;
}

static void on_close(struct net_tcp *c)
{
    (void)c;
    printf("fetch: sent %lu, received %lu bytes, crc32 %08lx\n", (unsigned long)sent,
           (unsigned long)received, (unsigned long)(crc ^ 0xffffffffu));
    os_shutdown(sent == to_send && received ? 0 : 1);
}

static void on_connect(struct net_tcp *c, void *unused)
{
    (void)unused;
    net_tcp_on_data(c, on_data);
    net_tcp_on_sent(c, fill);
    int n = snprintf(chunk, sizeof(chunk), "%lu\n", (unsigned long)to_send);
    net_tcp_send(c, chunk, (size_t)n);
    fill(c);
}

static void on_up(void *unused)
{
    (void)unused;
    struct net_tcp *c = net_tcp_connect(server, (uint16_t)port, on_connect, 0);
    if (!c)
        os_shutdown(2);
    net_tcp_on_close(c, on_close);
}

int main(void)
{
    const char *to = arg("fetch="), *n = arg("send=");
    unsigned a, b, c, d;
    if (!to || sscanf(to, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5) {
        printf("fetch: give fetch=IP:PORT on the command line\n");
        return 2;
    }
    server = NET_IP(a, b, c, d);
    to_send = n ? strtoul(n, 0, 10) : 0;
    if (net_start(on_up, 0) != 0)
        return 3;
    os_run();
    return 0;
}
