/* TCP (RFC 9293): passive and active open, many connections, retransmission on a timer
 * with the RTO of RFC 6298 (go-back-N), the peer's window respected (with zero-window
 * probes), FIN and RST, TIME_WAIT.
 *
 * Kept simple on purpose: segments that arrive out of order are dropped (the peer sends
 * them again), received data goes straight to the app's callback (the window we offer is
 * fixed), no window scaling, SACK or congestion control (the networks here are virtual). */
#include <stdlib.h>
#include <string.h>
#include <timer.h>

#include "stack.h"

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

#define HLEN 20
#define OPT_MSS 2
#define MSS 1460 /* ours: NET_MTU - 40 */
#define DEFAULT_MSS 536
#define RCV_WND 16384 /* the window we offer */
#define SND_BUF 16384 /* bytes queued for sending per connection */
#define MAX_CONNS 128 /* beyond this, the oldest TIME_WAIT is reused, or a SYN dropped */
#define MAX_LISTENERS 8
#define RTO_INITIAL_MS 1000
#define RTO_MIN_MS 200
#define RTO_MAX_MS 60000
#define MAX_RETRIES 8
#define TIME_WAIT_MS 2000 /* 2 MSL, with a short MSL: the peer is one hop away */
#define FIN_WAIT_2_MS 60000 /* for a peer that never closes its side (Linux: tcp_fin_timeout) */
#define EPHEMERAL 49152

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LE(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) SEQ_LT(b, a)
#define SEQ_GE(a, b) SEQ_LE(b, a)

enum {
    CLOSED,
    SYN_SENT,
    SYN_RCVD,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    CLOSE_WAIT,
    CLOSING,
    LAST_ACK,
    TIME_WAIT
};

struct listener {
    uint16_t port;
    net_tcp_fn on_accept;
    void *arg;
};

struct net_tcp {
    struct net_tcp *next;
    uint8_t state;
    uint8_t attached;    /* the app has it: on_close is owed */
    uint8_t app_closed;  /* net_tcp_close was called: FIN after the queued data */
    uint8_t fin_sent;    /* snd_max covers our FIN */
    uint8_t need_ack;    /* data or FIN arrived and no segment has acknowledged it */
    uint8_t want_sent;   /* net_tcp_send took less than it was given */
    uint8_t retries;
    uint8_t timing;      /* a round-trip time is being measured (rtt_seq, rtt_start) */
    net_ip raddr;
    uint16_t lport, rport;
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd;
    uint32_t rcv_nxt;
    uint16_t mss;
    uint32_t rto_ms, srtt_ms, rttvar_ms, rtt_seq;
    uint64_t rtt_start;
    uint8_t *buf; /* send ring: `len` bytes from `head`, the first at sequence snd_una */
    uint32_t head, len;
    struct timer timer;
    struct listener *listener;
    net_tcp_fn on_connect;
    void *user;
    void (*on_data)(struct net_tcp *c, const void *data, size_t len);
    void (*on_sent)(struct net_tcp *c);
    void (*on_close)(struct net_tcp *c);
};

static struct net_tcp *conns;
static unsigned nconns;
static struct listener listeners[MAX_LISTENERS];
static struct net_tcp *in_input; /* the connection a segment is being handled for */
static uint32_t iss_counter;
static uint16_t next_port;

static void output(struct net_tcp *c, int force);

/* --- sending segments */

static uint32_t new_iss(void) { return (uint32_t)time_ticks() * 4 + (iss_counter += 64013); }

static void send_raw(net_ip to, uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack,
                     uint8_t flags, uint16_t mss_option, const struct net_tcp *c, uint32_t off,
                     uint32_t n)
{
    uint8_t *t = net_out + NET_L4;
    size_t hlen = HLEN + (mss_option ? 4 : 0);
    net_put16(t, lport);
    net_put16(t + 2, rport);
    net_put32(t + 4, seq);
    net_put32(t + 8, ack);
    t[12] = (uint8_t)(hlen / 4) << 4;
    t[13] = flags;
    net_put16(t + 14, flags & RST ? 0 : RCV_WND);
    net_put32(t + 16, 0); /* checksum, urgent pointer */
    if (mss_option) {
        t[20] = OPT_MSS;
        t[21] = 4;
        net_put16(t + 22, mss_option);
    }
    if (n) { /* from the send ring, which may wrap */
        uint32_t at = (c->head + off) % SND_BUF, first = SND_BUF - at < n ? SND_BUF - at : n;
        memcpy(t + hlen, c->buf + at, first);
        memcpy(t + hlen + first, c->buf, n - first);
    }
    size_t len = hlen + n;
    net_put16(t + 16, net_fold(net_sum(t, len, net_pseudo_sum(net_cfg.addr, to, NET_PROTO_TCP, len))));
    net_ip_send(to, NET_PROTO_TCP, len);
}

static void send_segment(struct net_tcp *c, uint32_t seq, uint8_t flags, uint32_t off,
                         uint32_t n)
{
    send_raw(c->raddr, c->lport, c->rport, seq, c->rcv_nxt, flags, flags & SYN ? MSS : 0, c,
             off, n);
    if (flags & ACK)
        c->need_ack = 0;
}

/* RFC 9293 3.10.7.1: the answer to a segment for no connection (it must not be a RST). */
static void send_reset_for(net_ip src, const uint8_t *t, uint32_t seg_len)
{
    uint32_t seq = net_get32(t + 4), ack = net_get32(t + 8);
    if (t[13] & ACK)
        send_raw(src, net_get16(t + 2), net_get16(t), ack, 0, RST, 0, 0, 0, 0);
    else
        send_raw(src, net_get16(t + 2), net_get16(t), 0, seq + seg_len, RST | ACK, 0, 0, 0, 0);
}

/* --- connection lifetime */

static struct net_tcp *find(net_ip raddr, uint16_t rport, uint16_t lport)
{
    for (struct net_tcp *c = conns; c; c = c->next)
        if (c->state != CLOSED && c->raddr == raddr && c->rport == rport && c->lport == lport)
            return c;
    return 0;
}

/* Frees connections that were closed earlier. Only tcp_input calls it, before it
 * looks at a segment: then no caller up the stack, and not the app (which was told with
 * on_close), still holds a closed one. */
static void reap(void)
{
    for (struct net_tcp **p = &conns; *p;) {
        struct net_tcp *c = *p;
        if (c->state == CLOSED) {
            *p = c->next;
            free(c->buf);
            free(c);
            nconns--;
        } else {
            p = &c->next;
        }
    }
}

static void on_timer(void *arg);

static void set_closed(struct net_tcp *c)
{
    c->state = CLOSED;
    timer_stop(&c->timer);
    if (c->attached) {
        c->attached = 0;
        if (c->on_close)
            c->on_close(c);
    }
}

static void enter_time_wait(struct net_tcp *c)
{
    c->state = TIME_WAIT;
    free(c->buf); /* (everything in it was acknowledged) */
    c->buf = 0;
    c->len = 0;
    timer_oneshot(&c->timer, TIME_WAIT_MS * 1000ULL, on_timer, c);
    if (c->attached) {
        c->attached = 0;
        if (c->on_close)
            c->on_close(c);
    }
}

/* A new connection, counted in nconns; when there are MAX_CONNS, the one that has been
 * in TIME_WAIT longest makes room (it is no one's: its timer is the only reference). */
static struct net_tcp *new_conn(void)
{
    if (nconns >= MAX_CONNS) {
        struct net_tcp **oldest = 0;
        for (struct net_tcp **p = &conns; *p; p = &(*p)->next)
            if ((*p)->state == TIME_WAIT &&
                (!oldest || (*p)->timer.deadline < (*oldest)->timer.deadline))
                oldest = p;
        if (!oldest)
            return 0;
        struct net_tcp *old = *oldest;
        timer_stop(&old->timer);
        *oldest = old->next;
        free(old->buf);
        free(old);
        nconns--;
    }
    struct net_tcp *c = calloc(1, sizeof(*c));
    if (!c)
        return 0;
    c->next = conns;
    conns = c;
    nconns++;
    c->rto_ms = RTO_INITIAL_MS;
    c->mss = DEFAULT_MSS;
    c->iss = new_iss();
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->iss + 1; /* the SYN */
    return c;
}

static void arm(struct net_tcp *c)
{
    if (c->state == TIME_WAIT || c->state == FIN_WAIT_2 || c->state == CLOSED)
        return; /* (their timers are not about retransmission) */
    int unacked = c->snd_max != c->snd_una;
    int blocked = c->len > c->snd_nxt - c->snd_una && c->snd_wnd == 0; /* needs a probe */
    if (unacked || blocked) {
        if (!c->timer.armed)
            timer_oneshot(&c->timer, c->rto_ms * 1000ULL, on_timer, c);
    } else {
        timer_stop(&c->timer);
    }
}

static void on_timer(void *arg)
{
    struct net_tcp *c = arg;
    if (c->state == TIME_WAIT || c->state == FIN_WAIT_2) {
        set_closed(c);
        return;
    }
    if (c->state == CLOSED)
        return;
    if (++c->retries > MAX_RETRIES) {
        send_segment(c, c->snd_nxt, RST, 0, 0);
        net_counters.tcp_resets++;
        set_closed(c);
        return;
    }
    c->rto_ms = c->rto_ms * 2 > RTO_MAX_MS ? RTO_MAX_MS : c->rto_ms * 2;
    c->timing = 0; /* Karn: no sample from a retransmitted segment */
    net_counters.tcp_retransmits++;
    if (c->state == SYN_SENT) {
        send_segment(c, c->iss, SYN, 0, 0);
    } else if (c->state == SYN_RCVD) {
        send_segment(c, c->iss, SYN | ACK, 0, 0);
    } else { /* go back to the first unacknowledged byte */
        c->snd_nxt = c->snd_una;
        output(c, 1);
    }
    timer_oneshot(&c->timer, c->rto_ms * 1000ULL, on_timer, c);
}

/* Sends what the window allows of the queued data (with `force`, at least one segment:
 * a retransmission, or a probe into a zero window), then FIN if the app has closed. */
static void output(struct net_tcp *c, int force)
{
    if (c->state < ESTABLISHED || c->state == TIME_WAIT)
        return;
    for (;;) {
        uint32_t off = c->snd_nxt - c->snd_una; /* data already sent */
        if (off > c->len || (c->fin_sent && c->snd_una == c->snd_max))
            break; /* the FIN is out too, or even acknowledged */
        uint32_t wnd_end = c->snd_una + c->snd_wnd;
        uint32_t room = SEQ_GT(wnd_end, c->snd_nxt) ? wnd_end - c->snd_nxt : 0;
        if (force && room == 0)
            room = 1;
        uint32_t n = c->len - off;
        if (n > room)
            n = room;
        if (n > c->mss)
            n = c->mss;
        int fin = c->app_closed && off + n == c->len;
        if (n == 0 && !fin)
            break;
        if (!c->timing && c->snd_nxt == c->snd_max && n) {
            c->timing = 1;
            c->rtt_seq = c->snd_nxt + n;
            c->rtt_start = time_us();
        }
        send_segment(c, c->snd_nxt, ACK | (n ? PSH : 0) | (fin ? FIN : 0), off, n);
        c->snd_nxt += n + (uint32_t)fin;
        if (SEQ_GT(c->snd_nxt, c->snd_max))
            c->snd_max = c->snd_nxt;
        c->fin_sent |= (uint8_t)fin;
        force = 0;
        if (fin)
            break;
    }
    arm(c);
}

/* --- receiving */

static void rtt_sample(struct net_tcp *c)
{
    uint32_t r = (uint32_t)((time_us() - c->rtt_start) / 1000);
    c->timing = 0;
    if (!c->srtt_ms) {
        c->srtt_ms = r ? r : 1;
        c->rttvar_ms = r / 2;
    } else {
        uint32_t d = c->srtt_ms > r ? c->srtt_ms - r : r - c->srtt_ms;
        c->rttvar_ms = (3 * c->rttvar_ms + d) / 4;
        c->srtt_ms = (7 * c->srtt_ms + r) / 8;
    }
    uint32_t rto = c->srtt_ms + 4 * c->rttvar_ms;
    c->rto_ms = rto < RTO_MIN_MS ? RTO_MIN_MS : rto > RTO_MAX_MS ? RTO_MAX_MS : rto;
}

/* An acceptable ACK: drop acknowledged data from the ring and follow our FIN's fate. */
static void acknowledged(struct net_tcp *c, uint32_t ack, uint16_t wnd)
{
    c->retries = 0;
    c->snd_wnd = wnd;
    if (!SEQ_GT(ack, c->snd_una))
        return;
    uint32_t acked = ack - c->snd_una, data = acked < c->len ? acked : c->len;
    c->head = (c->head + data) % SND_BUF;
    c->len -= data;
    c->snd_una = ack;
    if (SEQ_LT(c->snd_nxt, ack))
        c->snd_nxt = ack;
    if (c->timing && SEQ_GE(ack, c->rtt_seq))
        rtt_sample(c);
    timer_stop(&c->timer); /* arm() starts it again for what is still out */
    if (c->fin_sent && ack == c->snd_max) {
        if (c->state == FIN_WAIT_1) {
            c->state = FIN_WAIT_2;
            timer_oneshot(&c->timer, FIN_WAIT_2_MS * 1000ULL, on_timer, c);
        }
        else if (c->state == CLOSING)
            enter_time_wait(c);
        else if (c->state == LAST_ACK)
            set_closed(c);
    }
    if (c->want_sent && data && c->on_sent && c->attached) {
        c->want_sent = 0;
        c->on_sent(c);
    }
}

static uint16_t peer_mss(const uint8_t *t, size_t hlen)
{
    for (size_t i = HLEN; i < hlen;) {
        uint8_t kind = t[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hlen || t[i + 1] < 2 || i + t[i + 1] > hlen)
            break; /* malformed */
        if (kind == OPT_MSS && t[i + 1] == 4) {
            uint16_t mss = net_get16(t + i + 2);
            return mss < 64 ? 64 : mss > MSS ? MSS : mss;
        }
        i += t[i + 1];
    }
    return DEFAULT_MSS;
}

static void accept_syn(net_ip src, const uint8_t *t, size_t hlen, struct listener *l)
{
    struct net_tcp *c = new_conn();
    if (!c)
        return; /* full: the peer will try again */
    c->raddr = src;
    c->rport = net_get16(t);
    c->lport = l->port;
    c->listener = l;
    c->user = l->arg;
    c->state = SYN_RCVD;
    c->rcv_nxt = net_get32(t + 4) + 1;
    c->snd_wnd = net_get16(t + 14);
    c->mss = peer_mss(t, hlen);
    send_segment(c, c->iss, SYN | ACK, 0, 0);
    arm(c);
}

static void established(struct net_tcp *c)
{
    c->state = ESTABLISHED;
    c->attached = 1;
    if (c->listener) {
        net_counters.tcp_accepted++;
        c->listener->on_accept(c, c->listener->arg);
    } else {
        net_counters.tcp_connected++;
        if (c->on_connect)
            c->on_connect(c, c->user);
    }
}

static void syn_sent_input(struct net_tcp *c, const uint8_t *t, size_t hlen)
{
    uint8_t flags = t[13];
    uint32_t seq = net_get32(t + 4), ack = net_get32(t + 8);
    if (flags & ACK && ack != c->iss + 1) {
        if (!(flags & RST))
            send_raw(c->raddr, c->lport, c->rport, ack, 0, RST, 0, 0, 0, 0);
        return;
    }
    if (flags & RST) {
        if (flags & ACK) { /* refused */
            net_counters.tcp_resets++;
            set_closed(c);
        }
        return;
    }
    if (!(flags & SYN) || !(flags & ACK))
        return; /* (no simultaneous open) */
    c->rcv_nxt = seq + 1;
    c->snd_una = ack;
    c->snd_wnd = net_get16(t + 14);
    c->mss = peer_mss(t, hlen);
    c->retries = 0;
    timer_stop(&c->timer);
    send_segment(c, c->snd_nxt, ACK, 0, 0);
    established(c);
}

static void segment(struct net_tcp *c, const uint8_t *t, const uint8_t *data, size_t dlen)
{
    uint8_t flags = t[13];
    uint32_t seq = net_get32(t + 4), ack = net_get32(t + 8);
    uint16_t wnd = net_get16(t + 14);
    uint32_t seg_len = (uint32_t)dlen + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    uint32_t rcv_end = c->rcv_nxt + RCV_WND;

    /* 1. Is it in the window at all? */
    int ok = seg_len == 0
                 ? SEQ_GE(seq, c->rcv_nxt) && SEQ_LT(seq, rcv_end)
                 : (SEQ_GE(seq, c->rcv_nxt) && SEQ_LT(seq, rcv_end)) ||
                       (SEQ_GE(seq + seg_len - 1, c->rcv_nxt) && SEQ_LT(seq + seg_len - 1, rcv_end));
    if (!ok) {
        if (!(flags & RST))
            send_segment(c, c->snd_nxt, ACK, 0, 0);
        return;
    }
    /* 2-3. RST and SYN: only exactly at rcv_nxt is a RST believed (RFC 5961); a SYN in
     * the window gets a "challenge" ACK. */
    if (flags & RST) {
        if (seq == c->rcv_nxt) {
            net_counters.tcp_resets++;
            if (c->state == SYN_RCVD)
                c->attached = 0;
            set_closed(c);
        } else {
            send_segment(c, c->snd_nxt, ACK, 0, 0);
        }
        return;
    }
    if (flags & SYN) {
        send_segment(c, c->snd_nxt, ACK, 0, 0);
        return;
    }
    /* 4. The acknowledgment. */
    if (!(flags & ACK))
        return;
    if (c->state == SYN_RCVD) {
        if (ack != c->iss + 1) {
            send_raw(c->raddr, c->lport, c->rport, ack, 0, RST, 0, 0, 0, 0);
            return;
        }
        c->snd_una = ack;
        c->snd_wnd = wnd;
        c->retries = 0;
        timer_stop(&c->timer);
        established(c);
        if (c->state == CLOSED)
            return;
    } else if (SEQ_GT(ack, c->snd_max)) {
        send_segment(c, c->snd_nxt, ACK, 0, 0);
        return;
    } else if (SEQ_GE(ack, c->snd_una)) {
        acknowledged(c, ack, wnd);
        if (c->state == CLOSED)
            return;
    }
    /* 5. The data, if it is the next we expect: older bytes are trimmed, a later segment
     * is dropped with a duplicate ACK (the peer sends it again). */
    int fin = flags & FIN;
    if (SEQ_LT(seq, c->rcv_nxt)) {
        uint32_t skip = c->rcv_nxt - seq;
        if (skip > dlen) {
            fin = 0; /* (and the FIN too was seen) */
            skip = (uint32_t)dlen;
        }
        data += skip;
        dlen -= skip;
        seq += skip;
    }
    if (seq != c->rcv_nxt) {
        send_segment(c, c->snd_nxt, ACK, 0, 0);
        return;
    }
    if (dlen > RCV_WND) {
        dlen = RCV_WND;
        fin = 0;
    }
    if (dlen && (c->state == ESTABLISHED || c->state == FIN_WAIT_1 || c->state == FIN_WAIT_2)) {
        c->rcv_nxt += (uint32_t)dlen;
        c->need_ack = 1;
        if (!c->app_closed && c->on_data && c->attached) {
            c->on_data(c, data, dlen);
            if (c->state == CLOSED)
                return;
        }
    } else if (dlen) {
        fin = 0; /* data after the peer's FIN: nonsense */
    }
    /* 6. The peer's FIN. */
    if (fin) {
        c->need_ack = 1;
        if (c->state == ESTABLISHED) {
            c->rcv_nxt++;
            c->state = CLOSE_WAIT;
            if (!c->app_closed && c->on_data && c->attached) {
                c->on_data(c, 0, 0);
                if (c->state == CLOSED)
                    return;
            }
        } else if (c->state == FIN_WAIT_1) {
            c->rcv_nxt++;
            c->state = CLOSING;
        } else if (c->state == FIN_WAIT_2) {
            c->rcv_nxt++;
            enter_time_wait(c);
        } else if (c->state == TIME_WAIT) {
            timer_oneshot(&c->timer, TIME_WAIT_MS * 1000ULL, on_timer, c);
        }
    }
}

static void tcp_input(net_ip src, const uint8_t *t, size_t len)
{
    if (len < HLEN)
        return;
    size_t hlen = (size_t)(t[12] >> 4) * 4;
    if (hlen < HLEN || hlen > len ||
        net_fold(net_sum(t, len, net_pseudo_sum(src, net_cfg.addr, NET_PROTO_TCP, len))))
        return;
    uint8_t flags = t[13];
    if ((flags & (SYN | FIN)) == (SYN | FIN) || (flags & (SYN | RST)) == (SYN | RST))
        return; /* nonsense */
    uint16_t rport = net_get16(t), lport = net_get16(t + 2);
    const uint8_t *data = t + hlen;
    size_t dlen = len - hlen;
    reap();
    struct net_tcp *c = find(src, rport, lport);
    if (c && c->state == TIME_WAIT && (flags & (SYN | ACK)) == SYN &&
        SEQ_GT(net_get32(t + 4), c->rcv_nxt)) {
        set_closed(c); /* a new connection reusing the pair (RFC 9293 3.6.1) */
        c = 0;
    }
    if (!c) {
        if (flags & RST)
            return;
        for (int i = 0; i < MAX_LISTENERS; i++)
            if (listeners[i].on_accept && listeners[i].port == lport) {
                if ((flags & (SYN | ACK)) == SYN)
                    accept_syn(src, t, hlen, &listeners[i]);
                else
                    send_reset_for(src, t, (uint32_t)dlen + (flags & FIN ? 1 : 0));
                return;
            }
        send_reset_for(src, t, (uint32_t)dlen + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0));
        return;
    }
    in_input = c;
    if (c->state == SYN_SENT)
        syn_sent_input(c, t, hlen);
    else
        segment(c, t, data, dlen);
    in_input = 0;
    if (c->state != CLOSED) {
        output(c, 0); /* what the app queued meanwhile, with the ACK */
        if (c->need_ack)
            send_segment(c, c->snd_nxt, ACK, 0, 0);
    }
}

/* --- the app's side */

int net_tcp_listen(uint16_t port, net_tcp_fn on_accept, void *arg)
{
    net_tcp_receive = tcp_input;
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (!listeners[i].on_accept) {
            listeners[i] = (struct listener){port, on_accept, arg};
            return 0;
        }
    return -1;
}

struct net_tcp *net_tcp_connect(net_ip to, uint16_t port, net_tcp_fn on_connect, void *arg)
{
    if (!net_cfg.addr)
        return 0;
    net_tcp_receive = tcp_input;
    struct net_tcp *c = new_conn();
    if (!c)
        return 0;
    uint16_t lport;
    do
        lport = EPHEMERAL + next_port++ % (65536 - EPHEMERAL);
    while (find(to, port, lport));
    c->raddr = to;
    c->rport = port;
    c->lport = lport;
    c->state = SYN_SENT;
    c->attached = 1;
    c->on_connect = on_connect;
    c->user = arg;
    send_segment(c, c->iss, SYN, 0, 0);
    arm(c);
    return c;
}

void net_tcp_on_data(struct net_tcp *c, void (*fn)(struct net_tcp *, const void *, size_t))
{
    c->on_data = fn;
}

void net_tcp_on_sent(struct net_tcp *c, void (*fn)(struct net_tcp *c)) { c->on_sent = fn; }

void net_tcp_on_close(struct net_tcp *c, void (*fn)(struct net_tcp *c)) { c->on_close = fn; }

void net_tcp_set_user(struct net_tcp *c, void *user) { c->user = user; }

void *net_tcp_user(struct net_tcp *c) { return c->user; }

net_ip net_tcp_peer(struct net_tcp *c, uint16_t *port)
{
    if (port)
        *port = c->rport;
    return c->raddr;
}

static int can_send(struct net_tcp *c)
{
    return !c->app_closed && (c->state == ESTABLISHED || c->state == CLOSE_WAIT ||
                              c->state == SYN_SENT || c->state == SYN_RCVD);
}

size_t net_tcp_space(struct net_tcp *c) { return can_send(c) ? SND_BUF - c->len : 0; }

size_t net_tcp_send(struct net_tcp *c, const void *data, size_t len)
{
    if (!can_send(c))
        return 0;
    if (!c->buf && !(c->buf = malloc(SND_BUF)))
        return 0;
    size_t n = SND_BUF - c->len < len ? SND_BUF - c->len : len;
    if (n < len)
        c->want_sent = 1;
    uint32_t at = (c->head + c->len) % SND_BUF, first = SND_BUF - at < n ? SND_BUF - at : (uint32_t)n;
    memcpy(c->buf + at, data, first);
    memcpy(c->buf, (const uint8_t *)data + first, n - first);
    c->len += (uint32_t)n;
    if (c != in_input) /* (during input, the data goes out with the ACK at the end) */
        output(c, 0);
    return n;
}

void net_tcp_close(struct net_tcp *c)
{
    if (c->app_closed)
        return;
    if (c->state == SYN_SENT || c->state == SYN_RCVD) {
        net_tcp_abort(c);
        return;
    }
    c->app_closed = 1;
    if (c->state == ESTABLISHED)
        c->state = FIN_WAIT_1;
    else if (c->state == CLOSE_WAIT)
        c->state = LAST_ACK;
    if (c != in_input)
        output(c, 0);
}

void net_tcp_abort(struct net_tcp *c)
{
    if (c->state == CLOSED || c->state == TIME_WAIT)
        return;
    send_segment(c, c->snd_nxt, RST | ACK, 0, 0);
    c->attached = 0; /* no on_close: the app asked for this */
    set_closed(c);
}
