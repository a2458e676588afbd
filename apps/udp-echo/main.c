/* Echoes every UDP datagram sent to port 7 (the echo service, RFC 862) back to its
 * sender, and counts them. */
#include <net.h>
#include <stdio.h>

#define PORT 7

static unsigned long echoed;

static void on_datagram(void *arg, net_ip from, uint16_t port, const void *data, size_t len)
{
    (void)arg;
    if (net_udp_send(PORT, from, port, data, len) == 0)
        echoed++;
}

static void on_up(void *arg)
{
    (void)arg;
    char ip[16];
    printf("udp-echo: listening on %s:%d\n", net_ip_text(net_config()->addr, ip), PORT);
}

int main(void)
{
    if (net_start(on_up, 0) != 0) {
        printf("udp-echo: no network device\n");
        return 1;
    }
    net_udp_bind(PORT, on_datagram, 0);
    os_run();
    return 0;
}
