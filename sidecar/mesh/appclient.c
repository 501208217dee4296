/* The inbound side's HTTP/1.1 client to the app, reading the app only as fast as the client takes the response. */
#include "sidecar/mesh/appclient.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/picohttpparser.h"
#include "sidecar/http/decimal.h"
#include "sidecar/http/forward.h"
#include "sidecar/http/wqueue.h"
#include "common/log.h"
#include "sidecar/http/exchange.h"
#include "sidecar/http/h1parse.h"
#include "sidecar/mesh/inbound.h"

typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE } body_kind_t;

typedef struct st_sc_appreq_t {
    sc_exchange_t *req;    /* NULL once the client went away */
    const sc_app_target_t *target;
    struct st_sc_app_conn_t *conn; /* the app connection (connecting or connected), NULL when let go */
    h2o_linklist_t waiting;        /* in pool->waiting while every connection is busy */
    h2o_socket_t *sock;    /* conn's socket once connected */
    h2o_timeout_entry_t timeout;
    int started;           /* the response head went to the client */
    int paused;            /* the app's socket is not being read (backpressure) */
    int done;              /* the app's response is complete (or cut) */
    int failed;            /* ... cut: the client gets an incomplete response */
    int keepalive;         /* the connection may serve the next request */
    int inflight;          /* bytes handed to the front end wait for on_proceed */
    body_kind_t body;
    uint64_t remaining;    /* BODY_LENGTH: bytes still to come */
    struct phr_chunked_decoder chunked;
    int in_trailers;       /* BODY_CHUNKED: the last chunk came, the trailer section is being read */
    h2o_buffer_t *ready;   /* response body bytes not yet handed to the front end */
    h2o_buffer_t *sending; /* the bytes the front end is sending now */
    /* the request body, passed on as the client sends it */
    sc_wqueue_t upload;    /* bytes for the app: the head, then the body framed */
    int body_chunked;      /* the app gets it chunked (its length is unknown) */
    int body_queued;       /* the last of the body (or the head, without one) went into a write */
    int body_sent;         /* ... and that write finished: the connection may be reused */
    int reading;           /* the app's answer is being read */
} sc_appreq_t;

static void on_app_read(h2o_socket_t *sock, const char *err);

static int slice_is(sc_slice_t s, const char *lit)
{
    return s.len == strlen(lit) && strncasecmp(s.base, lit, s.len) == 0;
}

static void arm_timeout(sc_appreq_t *ar)
{
    if (h2o_timeout_is_linked(&ar->timeout))
        h2o_timeout_unlink(&ar->timeout);
    h2o_timeout_link(ar->target->pool->loop, ar->target->timeout, &ar->timeout);
}

static void disarm_timeout(sc_appreq_t *ar)
{
    if (h2o_timeout_is_linked(&ar->timeout))
        h2o_timeout_unlink(&ar->timeout);
}

/* ---- the pool of app connections ---- */

/* One connection to the app; sock->data points here for its whole life. */
typedef struct st_sc_app_conn_t {
    h2o_linklist_t link; /* in pool->idle while idle */
    sc_app_pool_t *pool;
    h2o_socket_t *sock;
    sc_appreq_t *user;   /* the request using it; NULL while idle */
    uint64_t idle_since;
} sc_app_conn_t;

void sc_app_pool_init(sc_app_pool_t *pool, h2o_loop_t *loop, const struct sockaddr *addr, socklen_t addr_len,
                      uint64_t keepalive_ms)
{
    memset(pool, 0, sizeof(*pool));
    pool->loop = loop;
    memcpy(&pool->addr, addr, addr_len);
    pool->addr_len = addr_len;
    pool->keepalive_ms = keepalive_ms;
    h2o_linklist_init_anchor(&pool->idle);
    h2o_linklist_init_anchor(&pool->waiting);
}

static void connect_for(sc_appreq_t *ar);
static void start_exchange(sc_appreq_t *ar);

/* The oldest request waiting for a connection, taken off the queue; NULL when none waits. */
static sc_appreq_t *next_waiter(sc_app_pool_t *pool)
{
    if (h2o_linklist_is_empty(&pool->waiting))
        return NULL;
    sc_appreq_t *ar = H2O_STRUCT_FROM_MEMBER(sc_appreq_t, waiting, pool->waiting.next);
    h2o_linklist_unlink(&ar->waiting);
    return ar;
}

static void conn_close(sc_app_conn_t *conn)
{
    sc_app_pool_t *pool = conn->pool;
    if (h2o_linklist_is_linked(&conn->link)) {
        h2o_linklist_unlink(&conn->link);
        --pool->num_idle;
    }
    --pool->num_conns;
    conn->sock->data = NULL;
    h2o_socket_close(conn->sock);
    free(conn);
    sc_appreq_t *waiter = next_waiter(pool); /* a slot opened: the oldest waiting request may connect */
    if (waiter != NULL)
        connect_for(waiter);
}

void sc_app_pool_dispose(sc_app_pool_t *pool)
{
    while (!h2o_linklist_is_empty(&pool->idle))
        conn_close(H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, link, pool->idle.next));
}

/* Anything an idle connection reads (the app closing it, or bytes nobody asked for) ends it. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    if (sock->data != NULL)
        conn_close(sock->data);
}

/* Takes a fresh idle connection, or NULL. */
static sc_app_conn_t *pool_take(sc_app_pool_t *pool)
{
    uint64_t now = h2o_now(pool->loop);
    while (!h2o_linklist_is_empty(&pool->idle)) {
        sc_app_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, link, pool->idle.next);
        h2o_linklist_unlink(&conn->link);
        --pool->num_idle;
        if (now - conn->idle_since <= pool->keepalive_ms)
            return conn;
        conn_close(conn);
    }
    return NULL;
}

/* Parks a connection whose last response was complete; reading stays on to notice a close. */
static void pool_put(sc_app_conn_t *conn)
{
    sc_app_pool_t *pool = conn->pool;
    conn->user = NULL;
    if (conn->sock->input->size != 0) {
        conn_close(conn);
        return;
    }
    sc_appreq_t *waiter = next_waiter(pool);
    if (waiter != NULL) { /* straight to the oldest waiting request */
        conn->user = waiter;
        waiter->conn = conn;
        start_exchange(waiter);
        return;
    }
    conn->idle_since = h2o_now(pool->loop);
    h2o_linklist_insert(pool->idle.next, &conn->link); /* most recent first */
    ++pool->num_idle;
    h2o_socket_read_start(conn->sock, on_idle_read);
}

/* Lets go of the app connection: back to the pool after a complete keep-alive response, closed otherwise. */
static void release_app(sc_appreq_t *ar, int reuse)
{
    disarm_timeout(ar);
    if (h2o_linklist_is_linked(&ar->waiting))
        h2o_linklist_unlink(&ar->waiting);
    sc_app_conn_t *conn = ar->conn;
    if (conn == NULL)
        return;
    ar->conn = NULL;
    ar->sock = NULL;
    if (reuse && ar->paused == 0 && ar->body_sent && !ar->upload.writing)
        pool_put(conn);
    else
        conn_close(conn);
}

/* The client sees an error status before any response head went out. */
static void fail_early(sc_appreq_t *ar, int status, const char *category, const char *fmt, const char *detail)
{
    char body[512];
    sc_exchange_t *req = ar->req;
    release_app(ar, 0);
    ar->done = 1;
    if (req == NULL)
        return;
    snprintf(body, sizeof(body), fmt, ar->target->name, detail);
    req->log.error = category;
    sc_exchange_reply(req, status, body);
}

/* Hands the buffered body to h2o when nothing is in flight; the final piece ends the response. */
static void send_ready(sc_appreq_t *ar)
{
    if (ar->req == NULL || !ar->started || ar->inflight)
        return;
    if (ar->ready->size == 0 && !ar->done)
        return;
    h2o_buffer_t *swap = ar->sending;
    ar->sending = ar->ready;
    ar->ready = swap;
    h2o_iovec_t vec = h2o_iovec_init(ar->sending->bytes, ar->sending->size);
    sc_send_state_t state = SC_SEND_MORE;
    if (ar->done) {
        state = ar->failed ? SC_SEND_ERROR : SC_SEND_FINAL;
        release_app(ar, ar->keepalive && !ar->failed);
    } else {
        ar->inflight = 1;
    }
    if (ar->paused && !ar->done && ar->sock != NULL && ar->ready->size < SC_APP_BUFFER_LOW) {
        ar->paused = 0;
        arm_timeout(ar);
        h2o_socket_read_start(ar->sock, on_app_read);
    }
    sc_exchange_send(ar->req, &vec, vec.len != 0 ? 1 : 0, state);
}

static void on_proceed(sc_exchange_t *ex)
{
    sc_appreq_t *ar = ex->data;
    ar->inflight = 0;
    h2o_buffer_consume(&ar->sending, ar->sending->size);
    send_ready(ar);
}

/* The client went away: the app connection cannot be reused mid-response. */
static void on_stop(sc_exchange_t *ex)
{
    sc_appreq_t *ar = ex->data;
    ar->req = NULL;
    release_app(ar, 0);
}

static const sc_exchange_ops_t appreq_ops = {.on_proceed = on_proceed, .on_stop = on_stop};

static void on_dispose(void *p)
{
    sc_appreq_t *ar = p;
    ar->req = NULL;
    release_app(ar, 0);
    h2o_buffer_dispose(&ar->ready);
    h2o_buffer_dispose(&ar->sending);
    sc_wqueue_dispose(&ar->upload);
}

/* Moves body bytes from the socket's input into ready, decoding the framing. Returns 0, or -1 on bad framing. */
static int take_body(sc_appreq_t *ar)
{
    h2o_buffer_t **input = &ar->sock->input;
    size_t n = (*input)->size;

    switch (ar->body) {
    case BODY_NONE:
        ar->done = 1;
        return 0;
    case BODY_LENGTH:
        if (n > ar->remaining)
            n = (size_t)ar->remaining; /* anything after the body is a stray: the connection is not reused */
        ar->remaining -= n;
        ar->done = ar->remaining == 0;
        break;
    case BODY_CHUNKED: {
        if (!ar->in_trailers) {
            size_t size = n, decoded;
            int rc = sc_h1parse_chunked(&ar->chunked, (*input)->bytes, &size, n, &decoded);
            if (rc < 0)
                return -1;
            if (decoded != 0) {
                h2o_iovec_t room = h2o_buffer_reserve(&ar->ready, decoded);
                memcpy(room.base, (*input)->bytes, decoded);
                ar->ready->size += decoded;
            }
            (*input)->size = size;
            h2o_buffer_consume(input, decoded);
            if (rc == 0)
                return 0;
            ar->in_trailers = 1; /* the last chunk: its trailer section follows */
        }
        struct phr_header fields[SC_HTTP_FIELDS_MAX];
        size_t num_fields = SC_HTTP_FIELDS_MAX;
        int rc = sc_h1parse_trailers((*input)->bytes, (*input)->size, SC_APP_HEAD_MAX, fields, &num_fields);
        if (rc <= 0)
            return rc;
        for (size_t i = 0; i != num_fields; ++i)
            sc_http_fields_add(&ar->req->pool, &ar->req->res_trailers, fields[i].name, fields[i].name_len,
                               fields[i].value, fields[i].value_len);
        h2o_buffer_consume(input, (size_t)rc);
        ar->done = 1;
        ar->keepalive &= (*input)->size == 0;
        return 0;
    }
    case BODY_UNTIL_CLOSE:
        break;
    }
    if (n != 0) {
        h2o_iovec_t room = h2o_buffer_reserve(&ar->ready, n);
        memcpy(room.base, (*input)->bytes, n);
        ar->ready->size += n;
        h2o_buffer_consume(input, n);
    }
    return 0;
}

/* Parses the response head; 1 when it is complete and the response started, 0 when more is needed, -1 when bad. */
static int take_head(sc_appreq_t *ar)
{
    sc_exchange_t *req = ar->req;
    struct phr_header headers[SC_APP_HEADERS_MAX];
    size_t num_headers = SC_APP_HEADERS_MAX, msg_len;
    const char *msg;
    int minor, status;
    int rlen;

    for (;;) {
        num_headers = SC_APP_HEADERS_MAX;
        rlen = phr_parse_response(ar->sock->input->bytes, ar->sock->input->size, &minor, &status, &msg, &msg_len, headers,
                                  &num_headers, 0);
        if (rlen == -2)
            return ar->sock->input->size > SC_APP_HEAD_MAX ? -1 : 0;
        if (rlen < 0 || status < 100 || status > 999 || status == 101)
            return -1;
        if (status >= 200)
            break;
        h2o_buffer_consume(&ar->sock->input, (size_t)rlen); /* 100 Continue and friends stop here */
    }

    sc_h1parse_framing_t framing;
    if (sc_h1parse_response_framing(minor, status, h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")),
                                    headers, num_headers, &framing) != 0)
        return -1;
    sc_slice_t connection = {framing.connection, framing.connection_len};

    req->status = status;
    req->reason = h2o_strdup(&req->pool, msg, msg_len);
    req->res_headers.size = 0;
    for (size_t i = 0; i != num_headers; ++i) {
        sc_slice_t lname = {headers[i].name, headers[i].name_len};
        if (sc_forward_drop_header(lname, connection) || slice_is(lname, "date") || slice_is(lname, "server"))
            continue; /* hop-by-hop, or stated by the sidecar itself (date, server) */
        sc_http_fields_add(&req->pool, &req->res_headers, headers[i].name, headers[i].name_len, headers[i].value,
                           headers[i].value_len);
    }
    h2o_buffer_consume(&ar->sock->input, (size_t)rlen);

    ar->keepalive = framing.keepalive;
    if (framing.has_length && framing.body != SC_H1PARSE_BODY_CHUNKED)
        req->res_content_length = framing.length;
    switch (framing.body) {
    case SC_H1PARSE_BODY_NONE:
        ar->body = BODY_NONE;
        break;
    case SC_H1PARSE_BODY_LENGTH:
        ar->body = BODY_LENGTH;
        ar->remaining = framing.length;
        break;
    case SC_H1PARSE_BODY_CHUNKED:
        ar->body = BODY_CHUNKED;
        ar->chunked.consume_trailer = 0; /* the trailer section is passed on */
        break;
    case SC_H1PARSE_BODY_UNTIL_CLOSE:
        ar->body = BODY_UNTIL_CLOSE;
        break;
    }
    ar->started = 1;
    return 1;
}

static void on_app_read(h2o_socket_t *sock, const char *err)
{
    sc_app_conn_t *conn = sock->data;
    sc_appreq_t *ar = conn != NULL ? conn->user : NULL;

    if (ar == NULL || ar->req == NULL) {
        if (conn != NULL)
            conn_close(conn);
        return;
    }
    arm_timeout(ar);
    if (!ar->started) {
        int rc = err == NULL ? take_head(ar) : -1;
        if (rc == 0)
            return;
        if (rc < 0) {
            fail_early(ar, 502, "app-protocol-error",
                       err != NULL ? "bad gateway: the app at %s closed the connection before answering (%s)\n"
                                   : "bad gateway: the app at %s did not answer with HTTP/1.x (%s)\n",
                       err != NULL ? err : "unparseable response head");
            return;
        }
    }
    if (!ar->done && take_body(ar) != 0) {
        ar->done = ar->failed = 1;
        cmn_log_warn("app %s: bad chunked encoding from the app", ar->target->name);
    }
    if (err != NULL && !ar->done) {
        ar->done = 1;
        if (ar->body == BODY_UNTIL_CLOSE) {
            ar->keepalive = 0; /* the close is the end of this body */
        } else {
            ar->failed = 1;
            cmn_log_warn("app %s: the app closed the connection mid-response (%s)", ar->target->name, err);
        }
    }
    if (!ar->done && ar->ready->size >= SC_APP_BUFFER_HIGH && ar->inflight) {
        ar->paused = 1; /* the client is slower than the app: stop reading until it catches up */
        disarm_timeout(ar);
        h2o_socket_read_stop(sock);
    }
    send_ready(ar);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    sc_appreq_t *ar = H2O_STRUCT_FROM_MEMBER(sc_appreq_t, timeout, entry);
    if (ar->req == NULL)
        return;
    if (!ar->started) {
        fail_early(ar, 504, "timeout", "gateway timeout: the app at %s did not answer in time%s\n", "");
        return;
    }
    cmn_log_warn("app %s: the app stalled mid-response", ar->target->name);
    release_app(ar, 0);
    ar->done = ar->failed = 1;
    send_ready(ar);
}

static void send_body(sc_appreq_t *ar);

static void on_app_written(h2o_socket_t *sock, const char *err)
{
    sc_app_conn_t *conn = sock->data;
    sc_appreq_t *ar = conn != NULL ? conn->user : NULL;
    if (ar == NULL || ar->req == NULL)
        return;
    sc_wqueue_written(&ar->upload);
    if (err != NULL) {
        if (!ar->started) {
            fail_early(ar, 502, "app-closed", "bad gateway: the app at %s closed the connection (%s)\n", err);
        } else if (!ar->done) { /* it answered, then went away before taking the whole body */
            cmn_log_warn("app %s: the app closed the connection while the request body was sent (%s)", ar->target->name, err);
            release_app(ar, 0);
            ar->done = ar->failed = 1;
            send_ready(ar);
        }
        return;
    }
    ar->body_sent = ar->body_queued;
    arm_timeout(ar);
    if (!ar->reading && !ar->paused) {
        /* the answer is read while the body still goes out: an app may answer (413, say) before it read it all */
        ar->reading = 1;
        h2o_socket_read_start(sock, on_app_read);
    }
    send_body(ar);
    if (ar->done && ar->body_sent && ar->conn != NULL)
        release_app(ar, ar->keepalive && !ar->failed); /* the answer finished first: now the connection is free */
}

/* Writes the next piece of the request body (what the client has sent so far), framed for the app. */
static void send_body(sc_appreq_t *ar)
{
    if (ar->upload.writing || ar->body_queued || ar->sock == NULL || ar->req == NULL)
        return;
    sc_http_body_t *body = &ar->req->body;
    size_t n = body->buf->size < SC_APP_UPLOAD_CHUNK ? body->buf->size : SC_APP_UPLOAD_CHUNK;
    if (n != 0) {
        char size[24];
        int size_len = ar->body_chunked ? snprintf(size, sizeof(size), "%zx\r\n", n) : 0;
        h2o_iovec_t room = sc_wqueue_reserve(&ar->upload, n + (size_t)size_len + 2);
        memcpy(room.base, size, (size_t)size_len);
        memcpy(room.base + size_len, body->buf->bytes, n);
        if (ar->body_chunked)
            memcpy(room.base + size_len + n, "\r\n", 2);
        sc_wqueue_commit(&ar->upload, (size_t)size_len + n + (ar->body_chunked ? 2 : 0));
        sc_exchange_consume(ar->req, n);
    }
    if (body->buf->size == 0 && body->complete) {
        if (ar->body_chunked) {
            /* the last chunk, and the client's trailers in its trailer section */
            sc_wqueue_append(&ar->upload, "0\r\n", 3);
            for (size_t i = 0; i != body->trailers.size; ++i) {
                const sc_http_field_t *f = &body->trailers.entries[i];
                if (sc_forward_drop_header((sc_slice_t){f->name.base, f->name.len}, (sc_slice_t){NULL, 0}))
                    continue;
                sc_wqueue_append(&ar->upload, f->name.base, f->name.len);
                sc_wqueue_append(&ar->upload, ": ", 2);
                sc_wqueue_append(&ar->upload, f->value.base, f->value.len);
                sc_wqueue_append(&ar->upload, "\r\n", 2);
            }
            sc_wqueue_append(&ar->upload, "\r\n", 2);
        }
        ar->body_queued = 1;
    } else if (body->buf->size == 0 && body->failed && n == 0) {
        release_app(ar, 0); /* the client went away mid-body: the app must not take a part for the whole */
        return;
    } else if (n == 0) {
        disarm_timeout(ar); /* waiting for the client, not the app: --app-timeout does not run */
    }
    if (sc_wqueue_size(&ar->upload) == 0) {
        ar->body_sent = ar->body_queued;
        return;
    }
    sc_wqueue_flush(&ar->upload, ar->sock, on_app_written);
}

static void on_body_change(void *data)
{
    send_body(data);
}

/* The request head as the app gets it: the client's headers minus hop-by-hop ones, plus Host and the body length. */
static h2o_iovec_t request_head(sc_exchange_t *req)
{
    sc_slice_t connection = {NULL, 0};
    ssize_t ci = sc_http_fields_find(&req->headers, H2O_STRLIT("connection"), -1);
    if (ci != -1)
        connection = (sc_slice_t){req->headers.entries[ci].value.base, req->headers.entries[ci].value.len};
    size_t cap = req->method.len + req->path.len + req->authority.len + 256;
    for (size_t i = 0; i != req->headers.size; ++i)
        cap += req->headers.entries[i].name.len + req->headers.entries[i].value.len + 4;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap), *p = buf;
#define APPEND(b, l) (memcpy(p, (b), (l)), p += (l))
    APPEND(req->method.base, req->method.len);
    APPEND(" ", 1);
    APPEND(req->path.base, req->path.len);
    APPEND(" HTTP/1.1\r\nhost: ", 17);
    if (req->authority.base != NULL)
        APPEND(req->authority.base, req->authority.len);
    APPEND("\r\n", 2);
    for (size_t i = 0; i != req->headers.size; ++i) {
        const sc_http_field_t *h = &req->headers.entries[i];
        sc_slice_t name = {h->name.base, h->name.len};
        if ((!slice_is(name, SC_XFCC_HEADER) && sc_forward_drop_header(name, connection)) || slice_is(name, "expect"))
            continue; /* the x-forwarded-client-cert left in req is the one this sidecar wrote */
        APPEND(h->name.base, h->name.len);
        APPEND(": ", 2);
        APPEND(h->value.base, h->value.len);
        APPEND("\r\n", 2);
    }
    sc_http_body_t *body = &req->body;
    if (body->expected && body->length != UINT64_MAX) {
        APPEND("content-length: ", 16);
        p += sc_decimal(p, body->length);
        APPEND("\r\n", 2);
    } else if (body->expected)
        APPEND("transfer-encoding: chunked\r\n", 28);
    APPEND("\r\n", 2);
#undef APPEND
    return h2o_iovec_init(buf, (size_t)(p - buf));
}

/* The connection is ready: send the request. */
static void start_exchange(sc_appreq_t *ar)
{
    sc_http_body_t *body = &ar->req->body;
    h2o_iovec_t head = request_head(ar->req);
    ar->sock = ar->conn->sock;
    ar->body_chunked = body->expected && body->length == UINT64_MAX;
    ar->body_queued = !body->expected;
    /* read from the start (a pooled connection already is: this only swaps the callback, no system call);
       the answer may come before the whole body went out */
    ar->reading = 1;
    h2o_socket_read_start(ar->sock, on_app_read);
    sc_wqueue_append(&ar->upload, head.base, head.len);
    arm_timeout(ar);
    sc_wqueue_flush(&ar->upload, ar->sock, on_app_written);
}

static void on_app_connect(h2o_socket_t *sock, const char *err)
{
    sc_app_conn_t *conn = sock->data;
    if (conn == NULL)
        return; /* closed while connecting */
    sc_appreq_t *ar = conn->user;

    if (err != NULL) {
        conn_close(conn);
        if (ar != NULL) {
            ar->conn = NULL;
            fail_early(ar, 503, "app-unreachable", "service unavailable: the app at %s is unreachable (%s)\n", err);
        }
        return;
    }
    if (ar == NULL) { /* the client went away while we connected */
        pool_put(conn);
        return;
    }
    start_exchange(ar);
}

/* Opens a new connection for ar (the pool has room). */
static void connect_for(sc_appreq_t *ar)
{
    sc_app_pool_t *pool = ar->target->pool;
    h2o_socket_t *sock = h2o_socket_connect(pool->loop, (struct sockaddr *)&pool->addr, pool->addr_len, on_app_connect);
    if (sock == NULL) {
        fail_early(ar, 503, "app-unreachable", "service unavailable: the app at %s is unreachable (%s)\n",
                   "connection failed");
        return;
    }
    sc_app_conn_t *conn = h2o_mem_alloc(sizeof(*conn));
    memset(conn, 0, sizeof(*conn));
    conn->pool = pool;
    conn->sock = sock;
    conn->user = ar;
    sock->data = conn;
    ar->conn = conn;
    ++pool->num_conns;
    arm_timeout(ar);
}

void sc_app_forward(sc_exchange_t *req, const sc_app_target_t *target)
{
    sc_appreq_t *ar = h2o_mem_alloc_shared(&req->pool, sizeof(*ar), on_dispose);
    memset(ar, 0, sizeof(*ar));
    req->ops = &appreq_ops;
    req->data = ar;
    req->log.app_protocol = "http/1.1";
    ar->req = req;
    ar->target = target;
    ar->timeout.cb = on_timeout;
    h2o_buffer_init(&ar->ready, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&ar->sending, &h2o_socket_buffer_prototype);
    sc_wqueue_init(&ar->upload);
    req->body.on_change = on_body_change;
    req->body.data = ar;

    sc_app_pool_t *pool = target->pool;
    if ((ar->conn = pool_take(pool)) != NULL) {
        ar->conn->user = ar;
        start_exchange(ar);
    } else if (pool->num_conns < SC_APP_CONNS_MAX) {
        connect_for(ar);
    } else {
        arm_timeout(ar); /* every connection is busy: wait for one, within --app-timeout */
        h2o_linklist_insert(&pool->waiting, &ar->waiting);
    }
}
