/* An HTTP/1.1 server on port 80: files from the UKFS disk it is given (`/` is index.html),
 * a page of counters at /stats, 404 for the rest; keep-alive (and pipelined requests) as
 * HTTP/1.1 and the Connection header say. Files are read from the disk once, on their
 * first request, and kept in memory. */
#include <fs.h>
#include <net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <timer.h>

#define PORT 80
#define REQUEST_MAX 2048
#define MAX_FILES 64

struct client {
    char req[REQUEST_MAX];
    size_t len;          /* bytes in req */
    char head[192];      /* the response's status line and headers */
    const char *out[2];  /* what net_tcp_send has not taken yet: of head, of the body */
    size_t out_len[2];
    int close_when_sent; /* the request asked for (or forced) Connection: close */
    char page[512];      /* a body built for this request */
};

static int have_disk;
static char *cache[MAX_FILES];
static unsigned long requests, connections, open_connections;

static const char default_index[] =
    "<!doctype html>\n<title>rvemu unikernel</title>\n"
    "<h1>Hello from a unikernel</h1>\n<p>No disk was given: only /stats is here.</p>\n";

static const char not_found[] =
    "<!doctype html>\n<title>404 Not Found</title>\n<h1>404 Not Found</h1>\n";

static const char *content_type(const char *path)
{
    static const char *const types[][2] = {
        {".html", "text/html"}, {".txt", "text/plain"}, {".css", "text/css"},
        {".js", "text/javascript"}, {".json", "application/json"}, {".png", "image/png"},
        {".svg", "image/svg+xml"}, {".md", "text/markdown"},
    };
    const char *dot = strrchr(path, '.');
    for (unsigned i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i][0]) == 0)
            return types[i][1];
    return "application/octet-stream";
}

/* The file's bytes, read on first use; NULL if there is no such file. */
static const char *file(const char *path, size_t *size)
{
    const struct fs_file *f = have_disk ? fs_open(path) : 0;
    if (!f)
        return 0;
    unsigned i = (unsigned)(f - fs_entry(0));
    if (i >= MAX_FILES)
        return 0;
    if (!cache[i]) {
        char *data = malloc(f->size ? f->size : 1);
        if (!data || fs_read(f, 0, data, f->size) != (long)f->size) {
            free(data);
            return 0;
        }
        cache[i] = data;
    }
    *size = f->size;
    return cache[i];
}

/* Sends what remains of the response; once all is taken, closes if asked to. */
static void push(struct net_tcp *c, struct client *cl)
{
    for (int i = 0; i < 2; i++) {
        size_t n = net_tcp_send(c, cl->out[i], cl->out_len[i]);
        cl->out[i] += n;
        cl->out_len[i] -= n;
        if (cl->out_len[i])
            return;
    }
    if (cl->close_when_sent)
        net_tcp_close(c);
}

static int sending(const struct client *cl) { return cl->out_len[0] || cl->out_len[1]; }

static void respond(struct net_tcp *c, struct client *cl, const char *status, const char *type,
                    const char *body, size_t len, int head_only)
{
    int n = snprintf(cl->head, sizeof(cl->head),
                     "HTTP/1.1 %s\r\nServer: rvemu-libos\r\nContent-Type: %s\r\n"
                     "Content-Length: %u\r\nConnection: %s\r\n\r\n",
                     status, type, (unsigned)len, cl->close_when_sent ? "close" : "keep-alive");
    cl->out[0] = cl->head;
    cl->out_len[0] = (size_t)n;
    cl->out[1] = body;
    cl->out_len[1] = head_only ? 0 : len;
    push(c, cl);
}

static int stats_page(struct client *cl)
{
    const struct net_stats *s = net_stats();
    return snprintf(cl->page, sizeof(cl->page),
                    "<!doctype html>\n<title>stats</title>\n<pre>\n"
                    "requests         %lu\nconnections      %lu (%lu open)\n"
                    "uptime           %lu ms\nframes in/out    %lu/%lu\n"
                    "tcp retransmits  %lu\n</pre>\n",
                    requests, connections, open_connections,
                    (unsigned long)(time_us() / 1000), (unsigned long)s->rx_frames,
                    (unsigned long)s->tx_frames, (unsigned long)s->tcp_retransmits);
}

/* Does the header block (after the request line) say "Connection: <value>"? */
static int connection_is(const char *headers, const char *value)
{
    for (const char *p = headers; (p = strstr(p, "\r\n")); p += 2) {
        if (strncasecmp(p + 2, "connection:", 11) == 0) {
            const char *v = p + 13;
            while (*v == ' ')
                v++;
            return strncasecmp(v, value, strlen(value)) == 0;
        }
    }
    return 0;
}

/* Handles one request (NUL-terminated after its blank line; it may be changed). */
static void handle(struct net_tcp *c, struct client *cl, char *request)
{
    requests++;
    char *method = request, *path = strchr(method, ' '), *version;
    if (!path || !(version = strchr(++path, ' ')) || strncmp(version + 1, "HTTP/1.", 7) != 0) {
        cl->close_when_sent = 1;
        respond(c, cl, "400 Bad Request", "text/plain", "bad request\n", 12, 0);
        return;
    }
    path[-1] = 0;
    *version++ = 0;
    int http10 = version[7] == '0';
    cl->close_when_sent =
        http10 ? !connection_is(version, "keep-alive") : connection_is(version, "close");
    int head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond(c, cl, "405 Method Not Allowed", "text/plain", "GET or HEAD\n", 12, 0);
        return;
    }
    if (strcmp(path, "/stats") == 0) {
        int n = stats_page(cl);
        respond(c, cl, "200 OK", "text/html", cl->page, (size_t)n, head);
        return;
    }
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    size_t size;
    const char *body = file(name, &size);
    if (body)
        respond(c, cl, "200 OK", content_type(name), body, size, head);
    else if (!have_disk && strcmp(path, "/") == 0)
        respond(c, cl, "200 OK", "text/html", default_index, sizeof(default_index) - 1, head);
    else
        respond(c, cl, "404 Not Found", "text/html", not_found, sizeof(not_found) - 1, head);
}

/* Serves every complete request waiting, one response at a time. */
static void serve(struct net_tcp *c, struct client *cl)
{
    while (!sending(cl) && !cl->close_when_sent) {
        cl->req[cl->len] = 0;
        char *end = strstr(cl->req, "\r\n\r\n");
        if (!end) {
            if (cl->len == REQUEST_MAX - 1) {
                cl->close_when_sent = 1;
                respond(c, cl, "431 Request Header Fields Too Large", "text/plain",
                        "too large\n", 10, 0);
            }
            return;
        }
        end += 4;
        char next = *end;
        *end = 0;
        handle(c, cl, cl->req);
        *end = next;
        size_t n = (size_t)(end - cl->req);
        memmove(cl->req, end, cl->len - n);
        cl->len -= n;
    }
}

static void on_data(struct net_tcp *c, const void *data, size_t len)
{
    struct client *cl = net_tcp_user(c);
    if (len == 0) { /* the client is done sending */
        if (!sending(cl))
            net_tcp_close(c);
        cl->close_when_sent = 1;
        return;
    }
    size_t room = REQUEST_MAX - 1 - cl->len;
    if (len > room)
        len = room;
    memcpy(cl->req + cl->len, data, len);
    cl->len += len;
    serve(c, cl);
}

static void on_sent(struct net_tcp *c)
{
    struct client *cl = net_tcp_user(c);
    push(c, cl);
    serve(c, cl);
}

static void on_close(struct net_tcp *c)
{
    open_connections--;
    free(net_tcp_user(c));
}

static void on_accept(struct net_tcp *c, void *arg)
{
    (void)arg;
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        net_tcp_abort(c);
        return;
    }
    connections++;
    open_connections++;
    net_tcp_set_user(c, cl);
    net_tcp_on_data(c, on_data);
    net_tcp_on_sent(c, on_sent);
    net_tcp_on_close(c, on_close);
}

static void on_up(void *arg)
{
    (void)arg;
    char ip[16];
    printf("http: serving http://%s:%d/ (%u files on disk)\n", net_ip_text(net_config()->addr, ip),
           PORT, have_disk ? fs_count() : 0);
}

int main(void)
{
    have_disk = fs_mount(0) == 0;
    if (net_start(on_up, 0) != 0) {
        printf("http: no network device\n");
        return 1;
    }
    net_tcp_listen(PORT, on_accept, 0);
    os_run();
    return 0;
}
