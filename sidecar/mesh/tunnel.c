/*
 * TCP tunnels between mesh peers. The calling side serves an app's TCP
 * connection as a CONNECT exchange of its own (sc_exchange_server_t) that the
 * mesh client (upstream.h) sends like any request: the app's bytes are the
 * request body, the peer's the response body. The answering side is a handler
 * of the front end's CONNECT exchange that relays it to a TCP connection to
 * the app. Flow control is the exchange's: bytes leave a buffer only once the
 * next hop took them.
 *
 * Each record outlives what points at it: it is freed once its handles are
 * closed, every write, shutdown and connect it started has called back, and
 * its exchange is gone.
 */
#include "sidecar/mesh/tunnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Appends bytes to *buf. */
static void append(h2o_buffer_t **buf, const char *bytes, size_t len)
{
    if (len == 0)
        return;
    h2o_iovec_t room = h2o_buffer_reserve(buf, len);
    memcpy(room.base, bytes, len);
    (*buf)->size += len;
}

/*
 * What one end of a tunnel writes to its TCP socket: bytes queued while a
 * write is under way, one write at a time, and after the last byte a
 * shutdown of the socket's writing half. The owner hears of each through its
 * callbacks, which run from libuv's (never inside a send or a consume).
 */
typedef struct st_tunnel_sink_t {
    uv_stream_t *stream;
    h2o_buffer_t *pending, *inflight; /* queued, being written */
    uv_write_t write_req;
    uv_shutdown_t shut_req;
    int writing, shut_started;
    unsigned *pending_cbs; /* the owner's count of requests that have not called back */
    /* a write (n bytes; shut 0) or the shutdown (shut 1) called back, with libuv's status */
    void (*on_done)(void *owner, int shut, size_t n, int status);
    void *owner;
} tunnel_sink_t;

static void sink_init(tunnel_sink_t *s, uv_stream_t *stream, unsigned *pending_cbs,
                      void (*on_done)(void *, int, size_t, int), void *owner)
{
    s->stream = stream;
    h2o_buffer_init(&s->pending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&s->inflight, &h2o_socket_buffer_prototype);
    s->pending_cbs = pending_cbs;
    s->on_done = on_done;
    s->owner = owner;
    s->write_req.data = s->shut_req.data = s;
}

static void sink_dispose(tunnel_sink_t *s)
{
    h2o_buffer_dispose(&s->pending);
    h2o_buffer_dispose(&s->inflight);
}

static void on_sink_written(uv_write_t *req, int status)
{
    tunnel_sink_t *s = req->data;
    size_t n = s->inflight->size;
    --*s->pending_cbs;
    s->writing = 0;
    h2o_buffer_consume(&s->inflight, n);
    s->on_done(s->owner, 0, n, status);
}

static void on_sink_shut(uv_shutdown_t *req, int status)
{
    tunnel_sink_t *s = req->data;
    --*s->pending_cbs;
    s->on_done(s->owner, 1, 0, status);
}

/* Starts the next write, or, when nothing is queued and last is set, the shutdown. Returns -1 when libuv refuses. */
static int sink_flush(tunnel_sink_t *s, int last)
{
    if (s->writing)
        return 0;
    if (s->pending->size != 0) {
        h2o_buffer_t *tmp = s->inflight;
        s->inflight = s->pending;
        s->pending = tmp;
        uv_buf_t buf = uv_buf_init(s->inflight->bytes, (unsigned)s->inflight->size);
        if (uv_write(&s->write_req, s->stream, &buf, 1, on_sink_written) != 0)
            return -1;
        s->writing = 1;
        ++*s->pending_cbs;
        return 0;
    }
    if (last && !s->shut_started) {
        s->shut_started = 1;
        if (uv_shutdown(&s->shut_req, s->stream, on_sink_shut) != 0)
            return -1;
        ++*s->pending_cbs;
    }
    return 0;
}

/* ---- the calling side: an app connection served as a CONNECT exchange ---- */

typedef struct st_sc_tunnel_out_t {
    sc_exchange_t ex; /* first: the server callbacks cast back */
    uv_stream_t *client;
    h2o_timeout_t *zero;
    h2o_timeout_entry_t later; /* a proceed or the end, on the loop's next turn (never inside the mesh client) */
    sc_tunnel_done_cb done;
    void *data;
    tunnel_sink_t sink;    /* the peer's bytes for the app */
    unsigned pending_cbs;  /* the write and shutdown that have not called back */
    int head_seen;         /* the peer answered */
    int upstream_done;     /* the mesh stream's response ended (or failed): no more sends come */
    int want_proceed, reading, shut_done;
    int failing;           /* end at the next turn, with error */
    int ended;             /* done ran */
    const char *error;
    int reset;
    uint64_t bytes_down;
} sc_tunnel_out_t;

static void out_start_reading(sc_tunnel_out_t *t);
static void out_flush(sc_tunnel_out_t *t);

static void out_later(sc_tunnel_out_t *t)
{
    if (!t->ended && !h2o_timeout_is_linked(&t->later))
        h2o_timeout_link(t->client->loop, t->zero, &t->later);
}

static void out_maybe_free(sc_tunnel_out_t *t)
{
    if (!t->ended || t->pending_cbs != 0)
        return;
    sink_dispose(&t->sink);
    free(t);
}

/* Something failed: the mesh stream is reset (unless it ended), and the tunnel ends on the next turn. */
static void out_fail(sc_tunnel_out_t *t, const char *error, int reset)
{
    if (t->failing || t->ended)
        return;
    t->failing = 1;
    t->error = error;
    t->reset = reset;
    if (t->ex.ops != NULL && t->ex.ops->on_stop != NULL)
        t->ex.ops->on_stop(&t->ex); /* the mesh client lets go; a stream still open is reset */
    t->upstream_done = 1;
    out_later(t);
}

static void out_end(sc_tunnel_out_t *t)
{
    sc_tunnel_result_t res = {0};
    if (t->reading)
        uv_read_stop(t->client);
    t->reading = 0;
    t->ended = 1;
    res.bytes_up = t->ex.body.received;
    res.bytes_down = t->bytes_down;
    res.status = t->head_seen ? t->ex.status : 0;
    res.error = t->error;
    res.reset = t->reset;
    res.peer_id = t->ex.log.upstream_peer != NULL && t->ex.log.upstream_peer[0] != '\0' ? t->ex.log.upstream_peer : NULL;
    t->done(t->data, &res); /* the owner closes the client: a write or shutdown under way calls back cancelled */
    h2o_mem_clear_pool(&t->ex.pool); /* the mesh client's stream goes: END_STREAM if both ways ended, else a reset */
    h2o_buffer_dispose(&t->ex.body.buf);
    out_maybe_free(t);
}

static void on_out_later(h2o_timeout_entry_t *entry)
{
    sc_tunnel_out_t *t = H2O_STRUCT_FROM_MEMBER(sc_tunnel_out_t, later, entry);
    if (t->failing) {
        out_end(t);
        return;
    }
    if (t->want_proceed && !t->sink.writing && t->sink.pending->size == 0 && !t->upstream_done) {
        t->want_proceed = 0;
        t->ex.ops->on_proceed(&t->ex); /* may send again, or end */
        if (t->failing || t->ended)
            return;
    }
    /* both ways ended: the peer's bytes are out with the app's socket shut, and the app's went to the stream */
    if (t->shut_done && t->ex.body.complete && t->ex.body.buf->size == 0)
        out_end(t);
}

static void on_out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sc_tunnel_out_t *t = handle->data;
    (void)suggested;
    h2o_iovec_t room = h2o_buffer_reserve(&t->ex.body.buf, SC_TUNNEL_READ);
    *buf = uv_buf_init(room.base, (unsigned)(room.len < SC_TUNNEL_READ ? room.len : SC_TUNNEL_READ));
}

static void on_out_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sc_tunnel_out_t *t = stream->data;
    sc_http_body_t *body = &t->ex.body;
    (void)buf;
    if (nread == 0)
        return;
    if (nread > 0) {
        body->buf->size += (size_t)nread;
        body->received += (uint64_t)nread;
        if (body->buf->size >= SC_TUNNEL_HIGH) {
            uv_read_stop(stream); /* the mesh stream is behind: wait for it (out_consume) */
            t->reading = 0;
        }
    } else {
        uv_read_stop(stream);
        t->reading = 0;
        if (nread != UV_EOF) {
            body->failed = 1;
            out_fail(t, "client-reset", 0);
            return;
        }
        body->complete = 1; /* the app's half-close: END_STREAM once its bytes are out */
        out_later(t);
    }
    if (body->on_change != NULL)
        body->on_change(body->data);
}

static void out_start_reading(sc_tunnel_out_t *t)
{
    if (t->reading || t->ended || t->failing || t->ex.body.complete || t->ex.body.failed)
        return;
    if (uv_read_start(t->client, on_out_alloc, on_out_read) != 0) {
        out_fail(t, "client-reset", 1);
        return;
    }
    t->reading = 1;
}

static void on_out_sink(void *owner, int shut, size_t n, int status)
{
    sc_tunnel_out_t *t = owner;
    (void)n;
    if (t->ended) {
        out_maybe_free(t);
        return;
    }
    if (status != 0) {
        out_fail(t, "client-reset", 1);
        return;
    }
    if (shut) {
        t->shut_done = 1;
        out_later(t);
        return;
    }
    if (t->want_proceed && t->sink.pending->size == 0 && !t->upstream_done) {
        t->want_proceed = 0;
        t->ex.ops->on_proceed(&t->ex); /* the mesh client hands over what it holds, and may return window */
        if (t->failing || t->ended)
            return;
    }
    out_flush(t);
}

/* Writes what the peer sent; once its last byte is out, shuts the app's socket for writing. */
static void out_flush(sc_tunnel_out_t *t)
{
    if (t->ended || t->failing)
        return;
    if (sink_flush(&t->sink, t->upstream_done) != 0) {
        out_fail(t, "client-reset", 1);
        return;
    }
    if (t->want_proceed && !t->sink.writing)
        out_later(t); /* nothing to write (a head alone): the proceed comes on the next turn */
}

static void out_send(sc_exchange_t *ex, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state)
{
    sc_tunnel_out_t *t = (sc_tunnel_out_t *)ex;
    if (t->upstream_done || t->ended)
        return;
    if (!t->head_seen) {
        t->head_seen = 1;
        if (ex->status < 200 || ex->status > 299) {
            /* refused: by the peer's policy (403), or no mesh connection (the mesh client's own 502, 503, 504) */
            t->upstream_done = 1;
            out_fail(t, ex->log.error != NULL ? ex->log.error : ex->status == 403 ? "denied-by-peer" : "tunnel-refused",
                     1);
            return;
        }
    }
    for (size_t i = 0; i != bufcnt; ++i) {
        append(&t->sink.pending, bufs[i].base, bufs[i].len);
        t->bytes_down += bufs[i].len;
    }
    switch (state) {
    case SC_SEND_MORE:
        t->want_proceed = 1;
        break;
    case SC_SEND_FINAL:
        t->upstream_done = 1; /* the peer's half-close: the app's socket is shut once the bytes are out */
        break;
    case SC_SEND_ERROR:
        t->upstream_done = 1;
        out_fail(t, ex->log.error != NULL ? ex->log.error : "upstream-reset", 1);
        return;
    }
    out_flush(t);
}

static void out_consume(sc_exchange_t *ex, size_t n)
{
    sc_tunnel_out_t *t = (sc_tunnel_out_t *)ex;
    h2o_buffer_consume(&ex->body.buf, n);
    if (ex->body.buf->size < SC_TUNNEL_LOW)
        out_start_reading(t);
    if (ex->body.complete && ex->body.buf->size == 0)
        out_later(t); /* the end is looked at on the next turn: the mesh client is inside its own call */
}

static const sc_exchange_server_t out_server = {.send = out_send, .consume = out_consume};

int sc_tunnel_open(sc_upstream_env_t *env, sc_upstream_t *up, h2o_timeout_t *zero, uv_stream_t *client,
                   const char *authority, const char *first, size_t first_len, sc_tunnel_done_cb done, void *data)
{
    sc_tunnel_out_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -1;
    sc_exchange_t *ex = &t->ex;
    h2o_mem_init_pool(&ex->pool);
    ex->server = &out_server;
    ex->version = 0x200;
    ex->method = h2o_iovec_init(H2O_STRLIT("CONNECT"));
    ex->authority = h2o_strdup(&ex->pool, authority, SIZE_MAX);
    ex->path = h2o_iovec_init(H2O_STRLIT(""));
    ex->res_content_length = UINT64_MAX;
    ex->log.grpc_status = -1;
    gettimeofday(&ex->begin_at, NULL);
    ex->body.length = UINT64_MAX;
    ex->body.expected = 1;
    h2o_buffer_init(&ex->body.buf, &h2o_socket_buffer_prototype);
    append(&ex->body.buf, first, first_len);
    ex->body.received = first_len;
    sink_init(&t->sink, client, &t->pending_cbs, on_out_sink, t);
    t->client = client;
    t->zero = zero;
    t->later.cb = on_out_later;
    t->done = done;
    t->data = data;
    client->data = t;
    sc_upstream_forward(env, up, ex, ex->authority, ex->path);
    out_start_reading(t);
    return 0;
}

/* ---- the answering side: a peer's CONNECT exchange relayed to the app ---- */

typedef struct st_sc_tunnel_in_t {
    uv_tcp_t app;
    uv_timer_t timer; /* the connect's deadline */
    uv_connect_t connect_req;
    sc_exchange_t *ex;  /* NULL once the exchange is gone */
    tunnel_sink_t sink; /* the peer's bytes for the app, copied from ex->body.buf */
    size_t copied;      /* bytes at the head of ex->body.buf already copied into the sink */
    unsigned pending_cbs; /* connect, write, shutdown not called back */
    unsigned open_handles;
    int connected, reading, app_eof, body_complete, closing;
    char *rbuf; /* a read of the app's bytes (SC_TUNNEL_PIECE), from the alloc callback until sc_exchange_send
                   copied them: an idle tunnel holds none */
} sc_tunnel_in_t;

static void in_maybe_free(sc_tunnel_in_t *t)
{
    if (!t->closing || t->open_handles != 0 || t->pending_cbs != 0 || t->ex != NULL)
        return;
    sink_dispose(&t->sink);
    free(t->rbuf);
    free(t);
}

static void on_in_handle_close(uv_handle_t *handle)
{
    sc_tunnel_in_t *t = handle->data;
    --t->open_handles;
    in_maybe_free(t);
}

/* Lets go of the app's connection (a reset when reset and it was made); the exchange has had its last send. */
static void in_close(sc_tunnel_in_t *t, int reset)
{
    if (t->closing)
        return;
    t->closing = 1;
    if (t->ex != NULL)
        t->ex->body.on_change = NULL;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_in_handle_close);
    if (reset && t->connected)
        uv_tcp_close_reset(&t->app, on_in_handle_close);
    else
        uv_close((uv_handle_t *)&t->app, on_in_handle_close);
}

/* Cuts the stream (RST_STREAM) and the app's connection. */
static void in_abort(sc_tunnel_in_t *t, const char *error)
{
    if (t->ex != NULL) {
        if (t->ex->log.error == NULL)
            t->ex->log.error = error;
        sc_exchange_send(t->ex, NULL, 0, SC_SEND_ERROR);
    }
    in_close(t, 1);
}


/* Copies the peer's bytes not copied yet; they leave ex->body.buf once written. */
static void in_take_body(sc_tunnel_in_t *t)
{
    sc_http_body_t *body = &t->ex->body;
    append(&t->sink.pending, body->buf->bytes + t->copied, body->buf->size - t->copied);
    t->copied = body->buf->size;
    if (body->complete)
        t->body_complete = 1;
}

/* Writes the peer's bytes to the app; after the last (its END_STREAM), shuts the app's socket for writing. */
static void in_write(sc_tunnel_in_t *t)
{
    if (!t->closing && t->connected && sink_flush(&t->sink, t->body_complete) != 0)
        in_abort(t, "app-reset");
}

/* Both ways ended: the app's last byte went to the peer, and the peer's to the app with the socket shut. */
static void in_maybe_done(sc_tunnel_in_t *t)
{
    if (t->app_eof && t->sink.shut_started && t->pending_cbs == 0)
        in_close(t, 0);
}

static void on_in_sink(void *owner, int shut, size_t n, int status)
{
    sc_tunnel_in_t *t = owner;
    if (t->closing) {
        in_maybe_free(t);
        return;
    }
    if (status != 0) {
        in_abort(t, "app-reset");
        return;
    }
    if (shut) {
        in_maybe_done(t);
        return;
    }
    if (t->ex != NULL) {
        t->copied -= n;
        sc_exchange_consume(t->ex, n); /* the peer may send more */
    }
    in_write(t);
}

static void on_in_body_change(void *data)
{
    sc_tunnel_in_t *t = data;
    if (t->closing || t->ex == NULL)
        return;
    if (t->ex->body.failed) {
        in_close(t, 1); /* the peer reset the stream: so is the app's connection */
        return;
    }
    in_take_body(t);
    in_write(t);
}

static void on_in_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sc_tunnel_in_t *t = handle->data;
    (void)suggested;
    if (t->rbuf == NULL)
        t->rbuf = malloc(SC_TUNNEL_PIECE);
    *buf = uv_buf_init(t->rbuf, t->rbuf != NULL ? SC_TUNNEL_PIECE : 0); /* none: libuv reports UV_ENOBUFS */
}

static void on_in_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sc_tunnel_in_t *t = stream->data;
    (void)buf;
    if (nread == 0)
        return;
    uv_read_stop(stream); /* one piece at a time: the next read waits for on_proceed */
    t->reading = 0;
    if (t->ex == NULL) {
        in_close(t, 1);
        return;
    }
    if (nread > 0) {
        h2o_iovec_t piece = h2o_iovec_init(t->rbuf, (size_t)nread);
        t->ex->log.tunnel_sent += (uint64_t)nread;
        sc_exchange_send(t->ex, &piece, 1, SC_SEND_MORE);
        free(t->rbuf); /* copied */
        t->rbuf = NULL;
        return;
    }
    if (nread != UV_EOF) {
        in_abort(t, "app-reset");
        return;
    }
    t->app_eof = 1; /* the app's half-close: END_STREAM */
    sc_exchange_send(t->ex, NULL, 0, SC_SEND_FINAL);
    in_maybe_done(t);
}

static void on_in_proceed(sc_exchange_t *ex)
{
    sc_tunnel_in_t *t = ex->data;
    if (t->closing || t->reading || t->app_eof)
        return;
    if (uv_read_start((uv_stream_t *)&t->app, on_in_alloc, on_in_read) != 0) {
        in_abort(t, "app-reset");
        return;
    }
    t->reading = 1;
}

static void on_in_stop(sc_exchange_t *ex)
{
    sc_tunnel_in_t *t = ex->data;
    in_close(t, 1); /* the peer's connection went away first */
}

static const sc_exchange_ops_t in_ops = {.on_proceed = on_in_proceed, .on_stop = on_in_stop};

/* The exchange is going: the peer's last bytes are copied out first, they still go to the app. */
static void on_in_exchange_dispose(void *p)
{
    sc_tunnel_in_t *t = *(sc_tunnel_in_t **)p;
    if (!t->closing) {
        in_take_body(t);
        if (t->ex->body.failed || !t->app_eof)
            in_close(t, 1); /* reset, or ended before the app's side did */
    }
    t->ex = NULL;
    if (!t->closing) {
        in_write(t);
        in_maybe_done(t);
    }
    in_maybe_free(t);
}

static void on_in_connect_timeout(uv_timer_t *timer)
{
    sc_tunnel_in_t *t = timer->data;
    if (t->connected || t->closing || t->ex == NULL)
        return;
    t->ex->log.error = "app-connect-timeout";
    sc_exchange_reply(t->ex, 504, "gateway timeout: the app did not accept the tunnel's connection in time\n");
    in_close(t, 0); /* the connect calls back cancelled */
}

static void on_in_connect(uv_connect_t *req, int status)
{
    sc_tunnel_in_t *t = req->data;
    --t->pending_cbs;
    if (t->closing) {
        in_maybe_free(t);
        return;
    }
    uv_timer_stop(&t->timer);
    if (t->ex == NULL) {
        in_close(t, 0);
        return;
    }
    if (status != 0) {
        char body[200];
        snprintf(body, sizeof(body), "bad gateway: the app refused the tunnel's connection: %s\n", uv_strerror(status));
        t->ex->log.error = "app-connect-failed";
        sc_exchange_reply(t->ex, 502, body);
        in_close(t, 0);
        return;
    }
    t->connected = 1;
    uv_tcp_nodelay(&t->app, 1);
    t->ex->status = 200;
    sc_exchange_send(t->ex, NULL, 0, SC_SEND_MORE); /* the head; the app is read once it is on its way */
    if (t->closing || t->ex == NULL)
        return;
    in_take_body(t);
    in_write(t);
}

void sc_tunnel_serve(sc_exchange_t *ex, uv_loop_t *loop, const struct sockaddr *dst, uint64_t connect_timeout_ms)
{
    sc_tunnel_in_t *t = calloc(1, sizeof(*t));
    sc_tunnel_in_t **slot = NULL;
    if (t == NULL || (slot = h2o_mem_alloc_shared(&ex->pool, sizeof(*slot), on_in_exchange_dispose)) == NULL) {
        free(t);
        sc_exchange_reply(ex, 503, "service unavailable: out of memory\n");
        return;
    }
    *slot = t;
    t->ex = ex;
    sink_init(&t->sink, (uv_stream_t *)&t->app, &t->pending_cbs, on_in_sink, t);
    uv_tcp_init(loop, &t->app);
    uv_timer_init(loop, &t->timer);
    t->app.data = t;
    t->timer.data = t;
    t->open_handles = 2;
    ex->ops = &in_ops;
    ex->data = t;
    ex->body.on_change = on_in_body_change;
    ex->body.data = t;
    t->connect_req.data = t;
    int rc = uv_tcp_connect(&t->connect_req, &t->app, dst, on_in_connect);
    if (rc != 0) {
        char body[200];
        snprintf(body, sizeof(body), "bad gateway: cannot connect to the app: %s\n", uv_strerror(rc));
        ex->log.error = "app-connect-failed";
        sc_exchange_reply(ex, 502, body);
        in_close(t, 0);
        return;
    }
    ++t->pending_cbs;
    uv_timer_start(&t->timer, on_in_connect_timeout, connect_timeout_ms, 0);
}

uint16_t sc_tunnel_authority_port(const char *authority, size_t len)
{
    size_t i = len;
    unsigned port = 0;
    while (i != 0 && authority[i - 1] >= '0' && authority[i - 1] <= '9')
        --i;
    if (i == 0 || i == len || len - i > 5 || authority[i - 1] != ':' || i < 2)
        return 0;
    for (size_t j = i; j != len; ++j)
        port = port * 10 + (unsigned)(authority[j] - '0');
    return port >= 1 && port <= 65535 ? (uint16_t)port : 0;
}
