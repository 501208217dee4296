/* The front end's requests and connections, and its HTTP/1.1 server (picohttpparser over h2o sockets). */
#include "sidecar/http/front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "sidecar/http/decimal.h"
#include "sidecar/http/front_conn.h"
#include "sidecar/http/h1parse.h"

enum { H1_BODY_NONE = 0, H1_BODY_LENGTH, H1_BODY_CHUNKED };

static void h1_handle_input(sc_fconn_t *conn);
static void h1_on_read(h2o_socket_t *sock, const char *err);
static void h1_linger(sc_fconn_t *conn);
static void h1_refuse(sc_fconn_t *conn, int status, const char *reason, const char *body);

/* ---- requests ---- */

sc_freq_t *sc_freq_new(sc_fconn_t *conn, int version)
{
    sc_freq_t *r = h2o_mem_alloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    sc_exchange_t *ex = &r->ex;
    h2o_mem_init_pool(&ex->pool);
    r->front = conn->front;
    r->conn = conn;
    ex->version = version;
    ex->sock = conn->sock;
    ex->conn_data = conn->sock->on_close.data;
    ex->res_content_length = UINT64_MAX;
    ex->log.grpc_status = -1;
    gettimeofday(&ex->begin_at, NULL);
    ex->body.length = UINT64_MAX;
    h2o_buffer_init(&ex->body.buf, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&r->out, &h2o_socket_buffer_prototype);
    return r;
}

/* Ends the request: stops the handler if it is still at work, writes the access log, frees it. */
void sc_freq_free(sc_freq_t *r)
{
    sc_exchange_t *ex = &r->ex;
    if (h2o_linklist_is_linked(&r->proceed_link))
        h2o_linklist_unlink(&r->proceed_link);
    ex->body.on_change = NULL;
    if (h2o_timeout_is_linked(&r->body_timeout))
        h2o_timeout_unlink(&r->body_timeout);
    sc_front_t *front = r->front;
    ex->sock = NULL;
    if (r->dispatched) {
        if (!r->final && ex->ops != NULL && ex->ops->on_stop != NULL) {
            r->final = r->failed = 1; /* no send from here on */
            ex->ops->on_stop(ex);
        }
        front->handler->on_log(front, ex);
    }
    h2o_mem_clear_pool(&ex->pool); /* runs the handler's dispose callbacks */
    h2o_buffer_dispose(&ex->body.buf);
    h2o_buffer_dispose(&r->out);
    free(r);
}

void sc_freq_body_changed(sc_freq_t *r)
{
    if (r->dispatched && r->ex.body.on_change != NULL)
        r->ex.body.on_change(r->ex.body.data);
}

void sc_freq_body_fail(sc_freq_t *r)
{
    if (r->ex.body.complete || r->ex.body.failed)
        return;
    r->ex.body.failed = 1;
    sc_freq_body_changed(r);
}

/* Hands a complete request head to the listener's handler. */
void sc_freq_dispatch(sc_freq_t *r)
{
    r->dispatched = 1;
    r->front->handler->on_request(r->front, &r->ex);
}

/* Runs on the loop's next turn: more body may be read now that the handler made room. */
static void on_resume(h2o_timeout_entry_t *entry);

void sc_exchange_consume(sc_exchange_t *ex, size_t n)
{
    if (ex->server != NULL) {
        ex->server->consume(ex, n);
        return;
    }
    sc_freq_t *r = (sc_freq_t *)ex;
    sc_fconn_t *conn = r->conn;
    if (n == 0)
        return;
    h2o_buffer_consume(&ex->body.buf, n);
    if (conn == NULL || conn->sock == NULL)
        return;
    if (conn->protocol == SC_FRONT_HTTP2) {
        sc_front_h2_body_consumed(r, n);
    } else if (conn->cur == r && !ex->body.complete && !conn->reading && ex->body.buf->size < SC_FRONT_BODY_WINDOW / 2) {
        sc_fconn_resume_soon(conn); /* read on, but never from inside the handler's own call */
    }
}

void sc_fconn_resume_soon(sc_fconn_t *conn)
{
    if (!conn->dead && !h2o_timeout_is_linked(&conn->resume_entry))
        h2o_timeout_link(conn->front->loop, &conn->front->zero, &conn->resume_entry);
}

/* ---- connections ---- */

static void on_written(h2o_socket_t *sock, const char *err);

/* Hands the queued bytes to the socket unless a write is under way. */
void sc_fconn_flush_socket(sc_fconn_t *conn)
{
    sc_wqueue_flush(&conn->out, conn->sock, on_written);
}

static void on_flush_due(sc_flushq_entry_t *entry)
{
    sc_fconn_flush_socket(H2O_STRUCT_FROM_MEMBER(sc_fconn_t, flush_entry, entry));
}

/* Hands the queued bytes to the socket right before the loop polls, with whatever else this turn queues. */
void sc_fconn_flush_later(sc_fconn_t *conn)
{
    if (!conn->dead && sc_wqueue_size(&conn->out) != 0)
        sc_flushq_add(&conn->front->flushq, &conn->flush_entry);
}

void sc_fconn_enter(sc_fconn_t *conn)
{
    ++conn->busy;
}

static void conn_free(sc_fconn_t *conn)
{
    sc_wqueue_dispose(&conn->out);
    free(conn);
}

/* Leaves a callback; a connection closed meanwhile is freed by the outermost one. Returns 1 if it is gone. */
int sc_fconn_leave(sc_fconn_t *conn)
{
    if (--conn->busy == 0 && conn->dead) {
        conn_free(conn);
        return 1;
    }
    return conn->dead;
}

/*
 * Closes the connection now: every request on it ends (handlers are stopped,
 * access logs written) and the socket closes. The memory goes once no
 * callback of this connection is on the stack.
 */
void sc_fconn_close(sc_fconn_t *conn)
{
    sc_front_t *front = conn->front;
    if (conn->dead)
        return;
    conn->dead = 1;
    conn->closing = 1;
    sc_fconn_enter(conn);
    if (h2o_timeout_is_linked(&conn->timeout))
        h2o_timeout_unlink(&conn->timeout);
    if (h2o_timeout_is_linked(&conn->resume_entry))
        h2o_timeout_unlink(&conn->resume_entry);
    if (h2o_timeout_is_linked(&conn->grace_entry))
        h2o_timeout_unlink(&conn->grace_entry);
    if (h2o_timeout_is_linked(&conn->block_entry))
        h2o_timeout_unlink(&conn->block_entry);
    if (h2o_timeout_is_linked(&conn->release_entry))
        h2o_timeout_unlink(&conn->release_entry);
    sc_flushq_remove(&conn->flush_entry);
    h2o_linklist_unlink(&conn->link);
    --front->num_conns;
    if (conn->protocol == SC_FRONT_HTTP2) {
        sc_front_h2_dispose(conn);
    } else if (conn->cur != NULL) {
        sc_freq_t *r = conn->cur;
        conn->cur = NULL;
        r->conn = NULL;
        sc_freq_free(r);
    }
    if (conn->sock != NULL) {
        h2o_socket_t *sock = conn->sock;
        conn->sock = NULL;
        sock->data = NULL;
        sc_sockio_close(sock);
    }
    sc_fconn_leave(conn);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    sc_fconn_t *conn = sock->data;
    if (conn == NULL)
        return;
    sc_fconn_enter(conn);
    sc_wqueue_written(&conn->out);
    if (err != NULL) {
        sc_fconn_close(conn);
    } else {
        if (conn->protocol == SC_FRONT_HTTP2) {
            sc_front_h2_on_written(conn);
        } else {
            sc_fconn_flush_socket(conn);
            sc_freq_t *r = conn->cur;
            if (r != NULL && r->want_proceed && sc_wqueue_size(&conn->out) < SC_FRONT_OUT_LOW) {
                r->want_proceed = 0;
                r->ex.ops->on_proceed(&r->ex);
            }
            if (!conn->dead && conn->cur != NULL && conn->cur->final && sc_wqueue_empty(&conn->out))
                h1_handle_input(conn); /* the response is out: finish the request */
            else if (!conn->dead && conn->closing && sc_wqueue_empty(&conn->out))
                h1_linger(conn); /* a refused request: its body may still be on its way */
        }
    }
    sc_fconn_leave(conn);
}

static void on_conn_timeout(h2o_timeout_entry_t *entry)
{
    sc_fconn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_fconn_t, timeout, entry);
    sc_fconn_enter(conn);
    if (conn->protocol == SC_FRONT_HTTP2) {
        sc_front_h2_shutdown(conn); /* idle: GOAWAY, then close */
    } else if (conn->head_started && conn->cur == NULL && !conn->lingering) {
        /* the head's time is up: the client hears why (RFC 9110 15.5.9), then the connection closes */
        conn->head_started = 0;
        h1_refuse(conn, 408, "Request Timeout", "request head not complete in time\n");
    } else {
        sc_fconn_close(conn);
    }
    sc_fconn_leave(conn);
}

static void on_resume(h2o_timeout_entry_t *entry)
{
    sc_fconn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_fconn_t, resume_entry, entry);
    sc_fconn_enter(conn);
    if (conn->protocol == SC_FRONT_HTTP2) {
        sc_front_h2_on_resume(conn);
    } else {
        /* the handler goes first: what it sends joins a response head held back for its body, in one write */
        sc_freq_t *r = conn->cur;
        if (r != NULL && r->want_proceed && sc_wqueue_size(&conn->out) < SC_FRONT_OUT_LOW) {
            r->want_proceed = 0;
            r->ex.ops->on_proceed(&r->ex);
        }
        if (!conn->dead) {
            sc_fconn_flush_socket(conn);
            h1_handle_input(conn);
        }
    }
    sc_fconn_leave(conn);
}

static void on_release(h2o_timeout_entry_t *entry)
{
    sc_fconn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_fconn_t, release_entry, entry);
    sc_fconn_enter(conn);
    sc_front_h2_release(conn);
    sc_fconn_leave(conn);
}

static void on_grace(h2o_timeout_entry_t *entry)
{
    sc_fconn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_fconn_t, grace_entry, entry);
    sc_fconn_enter(conn);
    sc_front_h2_shutdown(conn);
    sc_fconn_leave(conn);
}

h2o_iovec_t sc_front_date(sc_front_t *front)
{
    struct timeval tv;
    gettimeofday(&tv, NULL); /* the loop's clock is monotonic: the wall clock says which day it is */
    time_t now = tv.tv_sec;
    if (now != front->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(front->date_text, sizeof(front->date_text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        front->date_sec = now;
    }
    return h2o_iovec_init(front->date_text, strlen(front->date_text));
}

void sc_front_init(sc_front_t *front, h2o_loop_t *loop, const sc_front_handler_t *handler, void *data, int https,
                   int allow_h2c, uint32_t h2_max_streams, uint64_t max_body, uint64_t h2_idle_ms,
                   const char *server_name)
{
    memset(front, 0, sizeof(*front));
    front->loop = loop;
    front->handler = handler;
    front->data = data;
    front->https = https;
    front->allow_h2c = allow_h2c;
    front->h2_max_streams = h2_max_streams;
    front->max_body = max_body;
    front->limits = (sc_front_limits_t){SC_FRONT_HEADER_BYTES_DEFAULT, SC_FRONT_HEADER_FIELDS_DEFAULT};
    front->server_name = server_name;
    h2o_timeout_init(loop, &front->zero, 0);
    h2o_timeout_init(loop, &front->h1_idle, SC_FRONT_H1_IDLE_MS);
    h2o_timeout_init(loop, &front->head_timeout, SC_FRONT_HEAD_TIMEOUT_MS);
    h2o_timeout_init(loop, &front->h2_idle, h2_idle_ms);
    h2o_timeout_init(loop, &front->grace, SC_FRONT_SHUTDOWN_GRACE_MS);
    h2o_timeout_init(loop, &front->linger, SC_FRONT_LINGER_MS);
    h2o_timeout_init(loop, &front->body_idle, SC_FRONT_BODY_IDLE_MS);
    h2o_timeout_init(loop, &front->release, SC_FRONT_RELEASE_MS);
    sc_flushq_init(&front->flushq, loop);
    h2o_linklist_init_anchor(&front->conns);
}

void sc_front_set_h1_idle(sc_front_t *front, uint64_t ms)
{
    front->h1_idle.timeout = ms; /* h2o reads it at each link: with no entry linked yet, nothing is armed for the old value */
    if (front->head_timeout.timeout > ms)
        front->head_timeout.timeout = ms; /* a stalled head must not outlive an idle connection */
}

void sc_front_set_limits(sc_front_t *front, const sc_front_limits_t *limits)
{
    front->limits = *limits;
    if (front->limits.header_fields_max > SC_FRONT_HEADER_FIELDS_LIMIT)
        front->limits.header_fields_max = SC_FRONT_HEADER_FIELDS_LIMIT;
}

void sc_front_dispose(sc_front_t *front)
{
    h2o_timeout_dispose(front->loop, &front->zero);
    h2o_timeout_dispose(front->loop, &front->h1_idle);
    h2o_timeout_dispose(front->loop, &front->head_timeout);
    h2o_timeout_dispose(front->loop, &front->h2_idle);
    h2o_timeout_dispose(front->loop, &front->grace);
    h2o_timeout_dispose(front->loop, &front->linger);
    h2o_timeout_dispose(front->loop, &front->body_idle);
    h2o_timeout_dispose(front->loop, &front->release);
    sc_flushq_close(&front->flushq);
}

void sc_front_serve(sc_front_t *front, h2o_socket_t *sock, sc_front_protocol_t protocol)
{
    sc_fconn_t *conn = h2o_mem_alloc(sizeof(*conn));
    memset(conn, 0, sizeof(*conn));
    conn->front = front;
    conn->sock = sock;
    conn->protocol = protocol;
    conn->timeout.cb = on_conn_timeout;
    conn->resume_entry.cb = on_resume;
    conn->grace_entry.cb = on_grace;
    conn->release_entry.cb = on_release;
    h2o_linklist_init_anchor(&conn->proceed);
    h2o_linklist_init_anchor(&conn->streams);
    sc_wqueue_init(&conn->out);
    sc_flushq_entry_init(&conn->flush_entry, on_flush_due);
    h2o_linklist_insert(&front->conns, &conn->link);
    ++front->num_conns;
    sock->data = conn;

    sc_fconn_enter(conn);
    if (protocol == SC_FRONT_HTTP2) {
        if (sc_front_h2_start(conn) != 0)
            sc_fconn_close(conn);
    } else {
        h1_handle_input(conn);
    }
    sc_fconn_leave(conn);
}

void sc_front_shutdown(sc_front_t *front)
{
    front->shutting_down = 1;
    h2o_linklist_t *n = front->conns.next;
    while (n != &front->conns) {
        sc_fconn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_fconn_t, link, n);
        n = n->next; /* the connection may leave the list now */
        sc_fconn_enter(conn);
        if (conn->protocol == SC_FRONT_HTTP2)
            sc_front_h2_shutdown(conn);
        else if (conn->cur == NULL)
            sc_fconn_close(conn);
        sc_fconn_leave(conn);
    }
}

/* ---- HTTP/1.1: responses ---- */

static void queue_str(sc_fconn_t *conn, const char *s)
{
    sc_wqueue_append(&conn->out, s, strlen(s));
}

/* A response the front end answers by itself (the request never reached a handler); the connection then closes. */
static void h1_refuse(sc_fconn_t *conn, int status, const char *reason, const char *body)
{
    char head[256];
    snprintf(head, sizeof(head),
             "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: %zu\r\n\r\n",
             status, reason, strlen(body));
    queue_str(conn, head);
    queue_str(conn, body);
    conn->closing = 1;
    if (conn->reading) {
        conn->reading = 0;
        h2o_socket_read_stop(conn->sock);
    }
    if (h2o_timeout_is_linked(&conn->timeout))
        h2o_timeout_unlink(&conn->timeout);
    sc_fconn_flush_socket(conn);
}

/* Response headers the front end states itself (framing, connection handling) or that stop at this hop. */
int sc_front_skip_response_header(const h2o_iovec_t *name)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                        "upgrade",    "content-length", "date", "server"};
    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        if (h2o_memis(name->base, name->len, names[i], strlen(names[i])))
            return 1;
    return 0;
}

static int is_no_body_status(int status)
{
    return status == 204 || status == 304 || (status >= 100 && status < 200);
}

static void queue_fields(sc_fconn_t *conn, const sc_http_fields_t *fields)
{
    for (size_t i = 0; i != fields->size; ++i) {
        const sc_http_field_t *f = &fields->entries[i];
        if (sc_front_skip_response_header(&f->name))
            continue;
        sc_wqueue_append(&conn->out, f->name.base, f->name.len);
        sc_wqueue_append(&conn->out, ": ", 2);
        sc_wqueue_append(&conn->out, f->value.base, f->value.len);
        sc_wqueue_append(&conn->out, "\r\n", 2);
    }
}

/* True when the HTTP/1.1 client said it takes trailers (TE: trailers). */
static int h1_takes_trailers(sc_exchange_t *ex)
{
    ssize_t i = sc_http_fields_find(&ex->headers, H2O_STRLIT("te"), -1);
    return ex->version >= 0x101 && i != -1 &&
           sc_h1parse_has_token(ex->headers.entries[i].value.base, ex->headers.entries[i].value.len, "trailers");
}

static void h1_queue_head(sc_fconn_t *conn, sc_freq_t *r, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state)
{
    sc_exchange_t *ex = &r->ex;
    char line[128];

    r->head_sent = 1;
    gettimeofday(&ex->response_start_at, NULL);
    r->no_body = is_no_body_status(ex->status) || h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("HEAD"));
    if (conn->front->shutting_down || conn->closing)
        r->keepalive = 0;
    memcpy(line, "HTTP/1.1 ", 9);
    sc_decimal_status(line + 9, ex->status);
    line[12] = ' ';
    sc_wqueue_append(&conn->out, line, 13);
    if (ex->reason.base != NULL)
        sc_wqueue_append(&conn->out, ex->reason.base, ex->reason.len); /* the app's, of any length */
    else
        queue_str(conn, sc_http_reason_phrase(ex->status));
    sc_wqueue_append(&conn->out, "\r\n", 2);
    h2o_iovec_t date = sc_front_date(conn->front);
    queue_str(conn, "date: ");
    sc_wqueue_append(&conn->out, date.base, date.len);
    queue_str(conn, "\r\nserver: ");
    queue_str(conn, conn->front->server_name);
    sc_wqueue_append(&conn->out, "\r\n", 2);
    queue_fields(conn, &ex->res_headers);
    uint64_t length = ex->res_content_length;
    if (state == SC_SEND_FINAL ? ex->res_trailers.size != 0 : h1_takes_trailers(ex))
        length = UINT64_MAX; /* only a chunked body carries trailers: a client that takes them gets one */
    if (length == UINT64_MAX && state == SC_SEND_FINAL && !r->no_body && ex->res_trailers.size == 0)
        length = sc_exchange_bytes(bufs, bufcnt); /* the whole body is here: say how long it is */
    if (length != UINT64_MAX && ex->status != 204 && ex->status != 304) {
        size_t n = sizeof("content-length: ") - 1;
        memcpy(line, "content-length: ", n);
        n += sc_decimal(line + n, length);
        memcpy(line + n, "\r\n", 2);
        sc_wqueue_append(&conn->out, line, n + 2);
    } else if (!r->no_body) {
        if (ex->version >= 0x101)
            r->chunked = 1, queue_str(conn, "transfer-encoding: chunked\r\n");
        else
            r->keepalive = 0; /* HTTP/1.0: the close ends the body */
    }
    if (!r->keepalive)
        queue_str(conn, "connection: close\r\n");
    else if (ex->version < 0x101)
        queue_str(conn, "connection: keep-alive\r\n");
    sc_wqueue_append(&conn->out, "\r\n", 2);
}

static void h1_send(sc_fconn_t *conn, sc_freq_t *r, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state)
{
    int head_alone = 0;
    if (!r->head_sent) {
        h1_queue_head(conn, r, bufs, bufcnt, state);
        head_alone = state == SC_SEND_MORE && sc_exchange_bytes(bufs, bufcnt) == 0;
    }
    if (!r->no_body) {
        for (size_t i = 0; i != bufcnt; ++i) {
            if (bufs[i].len == 0)
                continue;
            if (r->chunked) {
                char size[24];
                snprintf(size, sizeof(size), "%zx\r\n", bufs[i].len);
                queue_str(conn, size);
            }
            sc_wqueue_append(&conn->out, bufs[i].base, bufs[i].len);
            if (r->chunked)
                sc_wqueue_append(&conn->out, "\r\n", 2);
        }
    }
    if (state == SC_SEND_FINAL) {
        r->final = 1;
        if (r->chunked) {
            /* the trailers ride in the last chunk's trailer section; a body with a length has none to carry them */
            queue_str(conn, "0\r\n");
            queue_fields(conn, &r->ex.res_trailers);
            sc_wqueue_append(&conn->out, "\r\n", 2);
        }
        gettimeofday(&r->ex.response_end_at, NULL);
    } else if (state == SC_SEND_ERROR) {
        r->final = r->failed = 1; /* no last chunk: the client sees the response cut, and the connection closes */
        r->keepalive = 0;
    } else {
        r->want_proceed = 1;
    }
    if (head_alone) {
        /* the first body bytes usually follow within this turn of the loop: they leave in the head's write */
        sc_fconn_resume_soon(conn);
        return;
    }
    sc_fconn_flush_socket(conn);
    if (r->want_proceed && !conn->out.writing)
        sc_fconn_resume_soon(conn); /* nothing to write: the handler still gets its proceed */
}

void sc_exchange_send(sc_exchange_t *ex, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state)
{
    if (ex->server != NULL) {
        ex->server->send(ex, bufs, bufcnt, state);
        return;
    }
    sc_freq_t *r = (sc_freq_t *)ex;
    sc_fconn_t *conn = r->conn;
    if (r->final && !(r->tunnel && state == SC_SEND_ERROR && !r->failed))
        return; /* the exchange stopped (or already ended); a tunnel whose response ended may still be reset */
    if (conn == NULL || conn->dead) {
        if (state != SC_SEND_MORE)
            r->final = 1;
        return; /* the connection is gone; the request is being disposed of */
    }
    sc_fconn_enter(conn);
    if (conn->protocol == SC_FRONT_HTTP2)
        sc_front_h2_send(r, bufs, bufcnt, state);
    else
        h1_send(conn, r, bufs, bufcnt, state);
    sc_fconn_leave(conn);
}

socklen_t sc_exchange_peername(sc_exchange_t *ex, struct sockaddr *sa, socklen_t cap)
{
    struct sockaddr_storage ss;
    if (ex->sock == NULL || cap < sizeof(ss))
        return 0;
    socklen_t len = h2o_socket_getpeername(ex->sock, (struct sockaddr *)&ss);
    memcpy(sa, &ss, len);
    return len;
}

/* ---- HTTP/1.1: requests ---- */

static void h1_set_reading(sc_fconn_t *conn, int on)
{
    if (on && !conn->reading && !conn->read_eof) {
        conn->reading = 1;
        h2o_socket_read_start(conn->sock, h1_on_read);
    } else if (!on && conn->reading) {
        conn->reading = 0;
        h2o_socket_read_stop(conn->sock);
    }
}

/* Arms (or stops) the idle timer: the wait for a request to begin, or for more of a body. */
static void h1_arm_timeout(sc_fconn_t *conn, int on)
{
    conn->head_started = 0;
    if (h2o_timeout_is_linked(&conn->timeout))
        h2o_timeout_unlink(&conn->timeout);
    if (on)
        h2o_timeout_link(conn->front->loop, &conn->front->h1_idle, &conn->timeout);
}

/*
 * A request head began: it must be whole within the head timeout of now.
 * Later reads leave the timer alone, so a client that trickles its head
 * holds the connection (and its buffer) no longer than that (nginx's
 * client_header_timeout); on expiry it gets 408.
 */
static void h1_start_head_timer(sc_fconn_t *conn)
{
    if (conn->head_started)
        return;
    if (h2o_timeout_is_linked(&conn->timeout))
        h2o_timeout_unlink(&conn->timeout);
    h2o_timeout_link(conn->front->loop, &conn->front->head_timeout, &conn->timeout);
    conn->head_started = 1;
}

/* A complete request head: build the exchange and hand it to the handler. Returns 0, or -1 if refused. */
static int h1_start_request(sc_fconn_t *conn, const char *method, size_t method_len, const char *path, size_t path_len,
                            int minor, struct phr_header *headers, size_t num_headers, size_t head_len)
{
    sc_freq_t *r = sc_freq_new(conn, 0x100 | (minor != 0 ? 1 : 0));
    sc_exchange_t *ex = &r->ex;
    sc_h1parse_framing_t framing;
    int bad = sc_h1parse_request_framing(minor, headers, num_headers, &framing) != 0;

    ex->method = h2o_strdup(&ex->pool, method, method_len);
    ex->path = h2o_strdup(&ex->pool, path, path_len);
    if (framing.host != NULL)
        ex->authority = h2o_strdup(&ex->pool, framing.host->value, framing.host->value_len);
    for (size_t i = 0; i != num_headers; ++i) {
        /* h2c upgrade and websockets are not offered: the request is answered over HTTP/1.1 */
        if (sc_h1parse_request_header_kept(&headers[i]))
            sc_http_fields_add(&ex->pool, &ex->headers, headers[i].name, headers[i].name_len, headers[i].value,
                               headers[i].value_len);
    }
    r->keepalive = framing.keepalive;
    /* judged before the consume, while the head's bytes are still there */
    int expect_continue = framing.expect == SC_H1PARSE_EXPECT_CONTINUE;
    int expect_unknown = framing.expect == SC_H1PARSE_EXPECT_UNKNOWN;
    h2o_buffer_consume(&conn->sock->input, head_len);
    conn->cur = r;
    conn->prev_head_len = 0;

    if (bad) {
        h1_refuse(conn, 400, "Bad Request", "bad request: malformed header framing\n");
        return -1;
    }
    if (minor != 0 && framing.host == NULL) { /* RFC 9112 3.2: 400, whatever the request target names */
        h1_refuse(conn, 400, "Bad Request", "bad request: an HTTP/1.1 request needs a Host header\n");
        return -1;
    }
    if (expect_unknown) {
        h1_refuse(conn, 417, "Expectation Failed", "expectation failed: only 100-continue is understood\n");
        return -1;
    }
    if (framing.has_length && framing.length > conn->front->max_body) {
        h1_refuse(conn, 413, "Payload Too Large", "payload too large\n");
        return -1;
    }
    if (framing.body == SC_H1PARSE_BODY_CHUNKED) {
        ex->body.expected = 1;
        conn->body_kind = H1_BODY_CHUNKED;
        memset(&conn->chunked, 0, sizeof(conn->chunked));
        conn->chunked.consume_trailer = 0; /* the trailer section is parsed here, and passed on */
    } else if (framing.body == SC_H1PARSE_BODY_LENGTH) {
        ex->body.expected = 1;
        ex->body.length = framing.length;
        conn->body_kind = H1_BODY_LENGTH;
        conn->body_left = framing.length;
        ex->body.complete = framing.length == 0;
    } else {
        conn->body_kind = H1_BODY_NONE;
        ex->body.complete = 1;
    }
    if (expect_continue && !ex->body.complete && minor != 0) { /* never to HTTP/1.0 (RFC 9110 15.2) */
        queue_str(conn, "HTTP/1.1 100 Continue\r\n\r\n");
        sc_fconn_flush_socket(conn);
    }
    sc_freq_dispatch(r);
    return 0;
}

/*
 * The trailer section after the last chunk (RFC 9112 7.1.2): its fields
 * become the body's trailers. Returns 1 when it is complete, 0 when more
 * input is needed, -1 when it is malformed or too large.
 */
static int h1_read_trailers(sc_fconn_t *conn, sc_freq_t *r)
{
    h2o_buffer_t **input = &conn->sock->input;
    struct phr_header fields[SC_HTTP_FIELDS_MAX];
    size_t num_fields = SC_HTTP_FIELDS_MAX;
    int rc = sc_h1parse_trailers((*input)->bytes, (*input)->size, conn->front->limits.header_bytes_max, fields,
                                 &num_fields);
    if (rc <= 0)
        return rc;
    for (size_t i = 0; i != num_fields; ++i)
        sc_http_fields_add(&r->ex.pool, &r->ex.body.trailers, fields[i].name, fields[i].name_len, fields[i].value,
                           fields[i].value_len);
    h2o_buffer_consume(input, (size_t)rc);
    return 1;
}

/* Moves body bytes from the socket into the request, as far as its window allows. */
static void h1_read_body(sc_fconn_t *conn)
{
    sc_freq_t *r = conn->cur;
    sc_http_body_t *body = &r->ex.body;
    h2o_buffer_t **input = &conn->sock->input;
    size_t before = body->received;
    int was_complete = body->complete;

    while (!body->complete && (*input)->size != 0 && (conn->in_trailers || body->buf->size < SC_FRONT_BODY_WINDOW)) {
        if (conn->in_trailers) {
            int rc = h1_read_trailers(conn, r);
            if (rc < 0) {
                sc_fconn_close(conn);
                return;
            }
            if (rc == 0)
                break;
            conn->in_trailers = 0;
            body->complete = 1;
            break;
        }
        size_t n = (*input)->size;
        if (n > SC_FRONT_BODY_WINDOW - body->buf->size)
            n = SC_FRONT_BODY_WINDOW - body->buf->size;
        if (conn->body_kind == H1_BODY_LENGTH) {
            if (n > conn->body_left)
                n = (size_t)conn->body_left;
            h2o_iovec_t room = h2o_buffer_reserve(&body->buf, n);
            memcpy(room.base, (*input)->bytes, n);
            body->buf->size += n;
            h2o_buffer_consume(input, n);
            conn->body_left -= n;
            body->received += n;
            body->complete = conn->body_left == 0;
        } else {
            /* decode in place; a trailing part of the input beyond n waits for the next round */
            size_t size = (*input)->size, decoded;
            int rc = sc_h1parse_chunked(&conn->chunked, (*input)->bytes, &size, n, &decoded);
            if (rc < 0) {
                sc_fconn_close(conn); /* a broken chunk: nothing after it can be trusted */
                return;
            }
            h2o_iovec_t room = h2o_buffer_reserve(&body->buf, decoded == 0 ? 1 : decoded);
            memcpy(room.base, (*input)->bytes, decoded);
            body->buf->size += decoded;
            body->received += decoded;
            (*input)->size = size;
            h2o_buffer_consume(input, decoded);
            if (rc == 1)
                conn->in_trailers = 1; /* the last chunk: the trailer section follows */
        }
        if (body->received > conn->front->max_body) {
            sc_fconn_close(conn);
            return;
        }
    }
    if (body->received != before || body->complete != was_complete)
        sc_freq_body_changed(r);
}

/* Reads, parses and finishes requests, one at a time, as far as the input and the handlers allow. */
static void h1_handle_input(sc_fconn_t *conn)
{
    for (;;) {
        if (conn->dead || conn->closing)
            return;
        sc_freq_t *r = conn->cur;
        if (r != NULL && r->final && sc_wqueue_empty(&conn->out)) {
            /* the response is out: the request is done; the connection carries the next one if it may */
            int keep = r->keepalive && !r->failed && r->ex.body.complete && !conn->front->shutting_down &&
                       !conn->read_eof;
            int body_left_unread = !r->ex.body.complete && !r->ex.body.failed;
            conn->cur = NULL;
            r->conn = NULL;
            sc_freq_free(r);
            if (conn->dead)
                return;
            if (!keep) {
                if (body_left_unread && !conn->read_eof)
                    h1_linger(conn);
                else
                    sc_fconn_close(conn);
                return;
            }
            continue;
        }
        if (r != NULL) {
            if (!r->ex.body.complete && !r->ex.body.failed) {
                h1_read_body(conn);
                if (conn->dead)
                    return;
            }
            /* the socket stays read while the request is served (stopping and restarting it would cost two
               system calls per request); the next request's bytes wait in the input, one head's worth at most */
            int want_body = !r->ex.body.complete && (conn->in_trailers || r->ex.body.buf->size < SC_FRONT_BODY_WINDOW);
            h1_set_reading(conn, want_body ||
                                     (r->ex.body.complete && conn->sock->input->size < conn->front->limits.header_bytes_max));
            h1_arm_timeout(conn, want_body);
            return;
        }

        /* between requests */
        h2o_buffer_t *input = conn->sock->input;
        if (input->size == 0) {
            if (conn->front->shutting_down) {
                sc_fconn_close(conn);
                return;
            }
            h1_set_reading(conn, 1);
            h1_arm_timeout(conn, 1);
            return;
        }
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        if (conn->front->allow_h2c && input->bytes[0] == 'P' &&
            memcmp(input->bytes, preface, input->size < sizeof(preface) - 1 ? input->size : sizeof(preface) - 1) == 0) {
            if (input->size < sizeof(preface) - 1) {
                h1_set_reading(conn, 1);
                h1_start_head_timer(conn);
                return;
            }
            /* h2c with prior knowledge: the same connection continues as HTTP/2 */
            h1_set_reading(conn, 0);
            h1_arm_timeout(conn, 0);
            conn->protocol = SC_FRONT_HTTP2;
            if (sc_front_h2_start(conn) != 0)
                sc_fconn_close(conn);
            return;
        }
        const char *method, *path;
        const sc_front_limits_t *limits = &conn->front->limits;
        size_t method_len, path_len, num_headers = limits->header_fields_max;
        struct phr_header headers[SC_FRONT_HEADER_FIELDS_LIMIT];
        int minor;
        size_t avail = input->size < limits->header_bytes_max ? input->size : limits->header_bytes_max;
        int rc = phr_parse_request(input->bytes, avail, &method, &method_len, &path, &path_len, &minor, headers,
                                   &num_headers, conn->prev_head_len);
        if (rc == -2) {
            if (avail == limits->header_bytes_max) {
                h1_refuse(conn, 431, "Request Header Fields Too Large", "request headers too large\n");
                return;
            }
            conn->prev_head_len = avail;
            h1_set_reading(conn, 1);
            h1_start_head_timer(conn);
            return;
        }
        if (rc < 0) {
            if (num_headers == limits->header_fields_max)
                h1_refuse(conn, 431, "Request Header Fields Too Large", "too many request headers\n");
            else
                h1_refuse(conn, 400, "Bad Request", "bad request: not HTTP/1.x\n");
            return;
        }
        h1_arm_timeout(conn, 0);
        if (h1_start_request(conn, method, method_len, path, path_len, minor, headers, num_headers, (size_t)rc) != 0)
            return;
    }
}

/*
 * Closes after a response while the client may still be sending (a body
 * nobody read, or a refused request's). Closing at once would leave the
 * client's bytes unread, and the kernel would answer them with a reset that
 * can destroy the response on its way; so the connection first stops
 * writing and reads (and drops) what comes for up to SC_FRONT_LINGER_MS.
 */
static void h1_linger(sc_fconn_t *conn)
{
    if (conn->dead)
        return;
    conn->lingering = 1;
    conn->closing = 1;
    if (conn->sock->ssl == NULL)
        shutdown(h2o_socket_get_fd(conn->sock), SHUT_WR); /* the client sees the end of our side now */
    h2o_buffer_consume(&conn->sock->input, conn->sock->input->size);
    if (h2o_timeout_is_linked(&conn->timeout))
        h2o_timeout_unlink(&conn->timeout);
    h2o_timeout_link(conn->front->loop, &conn->front->linger, &conn->timeout);
    h1_set_reading(conn, 1);
}

static void h1_on_read(h2o_socket_t *sock, const char *err)
{
    sc_fconn_t *conn = sock->data;
    if (conn == NULL || sc_sockio_read_spurious(sock, err))
        return;
    sc_fconn_enter(conn);
    if (conn->lingering && err == NULL) {
        h2o_buffer_consume(&sock->input, sock->input->size);
    } else if (err != NULL && !conn->lingering && conn->cur != NULL && conn->cur->dispatched &&
               conn->cur->ex.body.complete && sc_sockio_peer_half_closed(sock)) {
        /* the client half-closed after its request (nc -N, some HTTP/1.0 clients): answer it, then close */
        conn->read_eof = 1;
        conn->cur->keepalive = 0;
        h1_set_reading(conn, 0);
    } else if (err != NULL) {
        /* the client went away (or half-closed: HTTP/1.1 clients do not, so the same) */
        sc_fconn_close(conn);
    } else {
        h1_handle_input(conn);
    }
    sc_fconn_leave(conn);
}
