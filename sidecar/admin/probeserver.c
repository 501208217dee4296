/* The probe listener: kubelet's rewritten probes, answered by probing the app over loopback. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/admin/probeserver.h"

#include "common/log.h"

#define ANSWER_MAX 256 /* bytes in a one-line answer */

typedef struct st_sc_probe_handler_t {
    h2o_handler_t super;
    sc_probe_server_t *server;
} sc_probe_handler_t;

/*
 * One check of the app for one request. Its two handles are freed in their
 * close callbacks; req is NULL once answered or once h2o disposed of the
 * request (the client left), and link, which lives in the request's pool,
 * is how the pool's dispose callback finds the check.
 */
typedef struct st_sc_probe_check_t {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    int open_handles;
    int done;
    const sc_app_probe_t *probe;
    h2o_req_t *req;
    struct st_sc_probe_check_t **link;
    size_t len;
    char buf[SC_APP_PROBE_RESPONSE_MAX];
} sc_probe_check_t;


static void on_check_handle_close(uv_handle_t *handle)
{
    sc_probe_check_t *check = handle->data;
    if (--check->open_handles == 0)
        free(check);
}

/* Ends the check: answers the request if it is still there (ok: 200, else 503 with the reason), closes the handles. */
static void finish(sc_probe_check_t *check, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(sc_probe_check_t *check, int ok, const char *fmt, ...)
{
    if (check->done)
        return;
    check->done = 1;
    if (check->req != NULL) {
        char *text = h2o_mem_alloc_pool(&check->req->pool, ANSWER_MAX);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, ANSWER_MAX, fmt, ap);
        va_end(ap);
        *check->link = NULL;
        sc_localhttp_send_text(check->req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", text);
        check->req = NULL;
    }
    uv_close((uv_handle_t *)&check->tcp, on_check_handle_close);
    uv_close((uv_handle_t *)&check->timer, on_check_handle_close);
}

/* The request's pool is going away (the client closed): nobody waits for the answer. */
static void on_req_dispose(void *p)
{
    sc_probe_check_t **link = p;
    if (*link == NULL)
        return;
    (*link)->req = NULL;
    finish(*link, 0, "gone");
}

static void on_timeout(uv_timer_t *timer)
{
    sc_probe_check_t *check = timer->data;
    finish(check, 0, "fail: no answer from 127.0.0.1:%u within %llu ms\n", check->probe->port,
           (unsigned long long)check->probe->timeout_ms);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sc_probe_check_t *check = handle->data;
    (void)suggested;
    *buf = uv_buf_init(check->buf + check->len, (unsigned)(sizeof(check->buf) - check->len));
}

/* Judges what the app sent so far; at_end: nothing more will come. */
static void judge(sc_probe_check_t *check, int at_end)
{
    int status, rc = sc_app_probe_judge(check->buf, check->len, &status);
    unsigned port = check->probe->port;

    if (rc > 0 && sc_app_probe_status_ok(status))
        finish(check, 1, "ok: 127.0.0.1:%u answered %d\n", port, status);
    else if (rc > 0)
        finish(check, 0, "fail: 127.0.0.1:%u answered %d\n", port, status);
    else if (rc < 0)
        finish(check, 0, "fail: 127.0.0.1:%u did not answer with HTTP/1.x\n", port);
    else if (check->len == sizeof(check->buf))
        finish(check, 0, "fail: 127.0.0.1:%u sent a response head over %zu bytes\n", port, sizeof(check->buf));
    else if (at_end)
        finish(check, 0, "fail: 127.0.0.1:%u closed the connection before a response\n", port);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sc_probe_check_t *check = stream->data;
    (void)buf;
    if (check->done)
        return;
    if (nread == UV_EOF) {
        judge(check, 1);
    } else if (nread < 0) {
        finish(check, 0, "fail: reading from 127.0.0.1:%u: %s\n", check->probe->port, uv_strerror((int)nread));
    } else if (nread > 0) {
        check->len += (size_t)nread;
        judge(check, 0);
    }
}

static void on_write(uv_write_t *write, int status)
{
    sc_probe_check_t *check = write->data;
    if (status != 0 && !check->done)
        finish(check, 0, "fail: sending the probe to 127.0.0.1:%u: %s\n", check->probe->port, uv_strerror(status));
}

static void on_connect(uv_connect_t *connect, int status)
{
    sc_probe_check_t *check = connect->data;
    const sc_app_probe_t *probe = check->probe;
    uv_buf_t request;

    if (check->done)
        return; /* timed out or the client left: the close cancelled the connect */
    if (status != 0) {
        finish(check, 0, "fail: cannot connect to 127.0.0.1:%u: %s\n", probe->port, uv_strerror(status));
        return;
    }
    if (probe->kind == SC_APP_PROBE_TCP_SOCKET) {
        finish(check, 1, "ok: 127.0.0.1:%u accepted a TCP connection\n", probe->port);
        return;
    }
    request = uv_buf_init(probe->request, (unsigned)probe->request_len);
    check->write.data = check;
    uv_write(&check->write, (uv_stream_t *)&check->tcp, &request, 1, on_write);
    uv_read_start((uv_stream_t *)&check->tcp, on_alloc, on_read);
}

/* Starts checking the app for req; the answer comes from a callback, never before this returns. */
static void start_check(sc_probe_server_t *p, h2o_req_t *req, const sc_app_probe_t *probe)
{
    sc_probe_check_t *check = calloc(1, sizeof(*check));
    struct sockaddr_in sa;
    int rc;

    if (check == NULL) {
        sc_localhttp_send_text(req, 503, "Service Unavailable", "fail: out of memory\n");
        return;
    }
    check->probe = probe;
    check->req = req;
    check->link = h2o_mem_alloc_shared(&req->pool, sizeof(*check->link), on_req_dispose);
    *check->link = check;
    uv_tcp_init(p->loop, &check->tcp);
    uv_timer_init(p->loop, &check->timer);
    check->tcp.data = check->timer.data = check->connect.data = check;
    check->open_handles = 2;
    uv_timer_start(&check->timer, on_timeout, probe->timeout_ms, 0);
    uv_ip4_addr("127.0.0.1", probe->port, &sa);
    if ((rc = uv_tcp_connect(&check->connect, &check->tcp, (struct sockaddr *)&sa, on_connect)) != 0)
        finish(check, 0, "fail: cannot connect to 127.0.0.1:%u: %s\n", probe->port, uv_strerror(rc));
}

static int on_probe_req(h2o_handler_t *_self, h2o_req_t *req)
{
    sc_probe_handler_t *self = (void *)_self;
    /* the raw path: kubelet asks for the exact path it was given, and a query or dot segment is not it */
    const sc_app_probe_t *probe = sc_app_probes_find(&self->server->probes, req->path.base, req->path.len);

    if (probe == NULL) {
        sc_localhttp_send_text(req, 404, "Not Found", "not found\n");
    } else if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
               !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        sc_localhttp_send_text(req, 405, "Method Not Allowed", "use GET\n");
    } else {
        start_check(self->server, req, probe);
    }
    return 0;
}

int sc_probe_start(sc_probe_server_t *p, uv_loop_t *loop, const sc_config_t *cfg, const int *draining, char *err,
                   size_t err_cap)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    int rc;

    if (cfg->probe_listen[0] == '\0')
        return 0;
    if (cfg->app_probes[0] != '\0' && (rc = sc_app_probes_load(cfg->app_probes, &p->probes, err, err_cap)) != 0)
        return rc;
    if (sc_resolve_addr(cfg->probe_listen, &sa, &salen) != 0) {
        snprintf(err, err_cap, "--probe-listen %s: not a numeric IPv4/IPv6 address and port", cfg->probe_listen);
        return SC_E_ADDRESS;
    }
    /* its own server with one handler: nothing of the admin API is reachable from here; reachable from the pod
       network, it keeps to a budget so a flood cannot take descriptors the admin endpoint needs */
    p->loop = loop;
    sc_probe_handler_t *handler = (void *)sc_localhttp_init(&p->http, loop, "seam-sidecar-probe", sizeof(*handler),
                                                            on_probe_req, SC_PROBE_CONNS_MAX, draining);
    handler->server = p;
    if ((rc = sc_localhttp_listen(&p->http, (struct sockaddr *)&sa)) != 0) {
        snprintf(err, err_cap, "--probe-listen %s: cannot listen: %s", cfg->probe_listen, uv_strerror(rc));
        return SC_E_LISTEN;
    }
    cmn_log_info("probe listener %s: %zu app probe(s)", cfg->probe_listen, p->probes.num);
    return 0;
}

void sc_probe_stop(sc_probe_server_t *p)
{
    sc_localhttp_stop(&p->http);
}
