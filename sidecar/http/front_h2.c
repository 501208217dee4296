/* The front end's HTTP/2 server: nghttp2 over an h2o socket, request bodies under the handler's flow control. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/log.h"
#include "sidecar/http/decimal.h"
#include "sidecar/http/front_conn.h"

static sc_freq_t *stream_of(nghttp2_session *session, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(session, id) : NULL;
}

/* A CONNECT the handler answered 2xx: a TCP tunnel whose two directions end on their own. A refused one (4xx, 5xx)
   ends as any request does: its answer ends the stream, and what the client still sends is dropped. */
static int tunnel_open(const sc_freq_t *r)
{
    return r->tunnel && r->ex.status >= 200 && r->ex.status <= 299;
}

/* ---- output ---- */

/* Sends fields (trailers) as a HEADERS frame; nghttp2 copies them. */
static void submit_fields(nghttp2_session *session, uint8_t flags, int32_t stream_id, const sc_http_fields_t *fields)
{
    nghttp2_nv nva[SC_HTTP_FIELDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i != fields->size && n != SC_HTTP_FIELDS_MAX; ++i) {
        const sc_http_field_t *f = &fields->entries[i];
        if (sc_front_skip_response_header(&f->name))
            continue;
        nva[n++] = (nghttp2_nv){(uint8_t *)f->name.base, (uint8_t *)f->value.base, f->name.len, f->value.len,
                                NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_submit_headers(session, flags, stream_id, NULL, nva, n, NULL);
}

/* Response bytes for nghttp2's DATA frames; defers when the handler has not sent more yet. */
static ssize_t on_read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                                uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    sc_freq_t *r = source->ptr;
    (void)session, (void)stream_id, (void)user_data;
    size_t n = r->out->size < length ? r->out->size : length;
    if (n != 0) {
        memcpy(buf, r->out->bytes, n);
        h2o_buffer_consume(&r->out, n);
    }
    if (r->out->size == 0 && r->final && !r->failed) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (r->ex.res_trailers.size != 0) {
            /* the trailing HEADERS end the stream instead of this DATA frame */
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            submit_fields(session, NGHTTP2_FLAG_END_STREAM, stream_id, &r->ex.res_trailers);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        r->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void run_proceeds(sc_fconn_t *conn);

/*
 * Pulls frames from nghttp2 for the write made before the loop polls (one
 * per turn, with every stream's frames of the turn). Never inside nghttp2's own
 * callbacks (then the caller flushes when they return). Closes the connection
 * when nghttp2 is done with it.
 */
void sc_front_h2_flush(sc_fconn_t *conn)
{
    if (conn->dead || conn->in_callback || conn->sock == NULL || conn->session == NULL)
        return;
    if (!conn->out.writing) {
        conn->in_callback = 1;
        int err = sc_wqueue_pull_h2(&conn->out, conn->session);
        conn->in_callback = 0;
        if (conn->dead)
            return;
        if (err != 0) {
            sc_fconn_close(conn);
            return;
        }
        sc_fconn_flush_later(conn); /* the frames other streams add in this turn go in the same write */
    }
    if (conn->num_streams == 0) {
        if (!h2o_timeout_is_linked(&conn->timeout))
            h2o_timeout_link(conn->front->loop, &conn->front->h2_idle, &conn->timeout);
        if (!h2o_timeout_is_linked(&conn->release_entry))
            h2o_timeout_link(conn->front->loop, &conn->front->release, &conn->release_entry);
    }
    if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session) &&
        sc_wqueue_empty(&conn->out))
        sc_fconn_close(conn); /* GOAWAY went both ways or out with no stream left: done */
}

/* Gives each handler waiting for room its proceed, once its queued bytes went below SC_FRONT_OUT_LOW. */
static void run_proceeds(sc_fconn_t *conn)
{
    h2o_linklist_t ready;
    h2o_linklist_init_anchor(&ready);
    /* move them out first: a proceed may queue its stream again */
    while (!h2o_linklist_is_empty(&conn->proceed)) {
        sc_freq_t *r = H2O_STRUCT_FROM_MEMBER(sc_freq_t, proceed_link, conn->proceed.next);
        h2o_linklist_unlink(&r->proceed_link);
        h2o_linklist_insert(&ready, &r->proceed_link);
    }
    conn->in_callback = 1; /* no flush in between: it could close (and free) a stream still in the list */
    while (!h2o_linklist_is_empty(&ready) && !conn->dead) {
        sc_freq_t *r = H2O_STRUCT_FROM_MEMBER(sc_freq_t, proceed_link, ready.next);
        h2o_linklist_unlink(&r->proceed_link);
        if (r->out->size >= SC_FRONT_OUT_LOW) {
            h2o_linklist_insert(&conn->proceed, &r->proceed_link);
            continue;
        }
        r->want_proceed = 0;
        r->ex.ops->on_proceed(&r->ex);
    }
    conn->in_callback = 0;
    while (!h2o_linklist_is_empty(&ready)) { /* the connection died under us: leave them unlinked */
        sc_freq_t *r = H2O_STRUCT_FROM_MEMBER(sc_freq_t, proceed_link, ready.next);
        h2o_linklist_unlink(&r->proceed_link);
    }
}

/*
 * A connection with no open stream for SC_FRONT_RELEASE_MS gives back its
 * write buffers and the pages of nghttp2's frame buffer: an idle connection
 * then holds little beyond its TLS and HPACK state. They come back with the
 * next request.
 */
void sc_front_h2_release(sc_fconn_t *conn)
{
    if (conn->dead || conn->session == NULL || conn->num_streams != 0 || !sc_wqueue_empty(&conn->out) ||
        nghttp2_session_want_write(conn->session))
        return; /* busy again: the next idle moment links the entry anew */
    sc_wqueue_trim(&conn->out);
    sc_h2mem_release(&conn->h2mem);
}

void sc_front_h2_on_written(sc_fconn_t *conn)
{
    sc_front_h2_flush(conn);
    if (conn->dead)
        return;
    run_proceeds(conn);
    sc_front_h2_flush(conn);
}

void sc_front_h2_on_resume(sc_fconn_t *conn)
{
    run_proceeds(conn); /* first: what the handlers send joins the frames already waiting, in one write */
    sc_front_h2_flush(conn);
}

static void submit_response(sc_fconn_t *conn, sc_freq_t *r, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state)
{
    sc_exchange_t *ex = &r->ex;
    size_t n = 0, total = sc_exchange_bytes(bufs, bufcnt);

    r->head_sent = 1;
    gettimeofday(&ex->response_start_at, NULL);
    r->no_body = ex->status == 204 || ex->status == 304 || h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("HEAD"));
    /* a complete response without body bytes or trailers ends with its HEADERS (a gRPC trailers-only reply) */
    int headers_only = r->no_body || (state == SC_SEND_FINAL && total == 0 && ex->res_trailers.size == 0);
    nghttp2_nv *nva = h2o_mem_alloc_pool(&ex->pool, sizeof(*nva) * (ex->res_headers.size + 4));
    char *status = h2o_mem_alloc_pool(&ex->pool, 8);
    sc_decimal_status(status, ex->status);
#define NV(nm, nmlen, val, vallen)                                                                                    \
    nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), (nmlen), (vallen), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    NV(":status", 7, status, 3);
    h2o_iovec_t date = sc_front_date(conn->front);
    date = h2o_strdup(&ex->pool, date.base, date.len);
    NV("date", 4, date.base, date.len);
    NV("server", 6, conn->front->server_name, strlen(conn->front->server_name));
    for (size_t i = 0; i != ex->res_headers.size; ++i) {
        const sc_http_field_t *f = &ex->res_headers.entries[i];
        if (!sc_front_skip_response_header(&f->name))
            NV(f->name.base, f->name.len, f->value.base, f->value.len);
    }
    uint64_t length = ex->res_content_length;
    if (length == UINT64_MAX && state == SC_SEND_FINAL && !r->no_body && ex->res_trailers.size == 0)
        length = total;
    if (length != UINT64_MAX && ex->status != 204 && ex->status != 304 && !(headers_only && length == 0 && sc_exchange_is_grpc(ex))) {
        char *clen = h2o_mem_alloc_pool(&ex->pool, SC_DECIMAL_MAX);
        NV("content-length", 14, clen, sc_decimal(clen, length));
    }
#undef NV
    nghttp2_data_provider prd = {.source = {.ptr = r}, .read_callback = on_read_response};
    int rc = nghttp2_submit_response(conn->session, r->stream_id, nva, n, headers_only ? NULL : &prd);
    if (rc != 0) {
        cmn_log_warn("HTTP/2 stream %d: cannot send the response head: %s", (int)r->stream_id, nghttp2_strerror(rc));
        r->failed = 1;
        nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_INTERNAL_ERROR);
    }
    if (headers_only)
        r->no_body = 1;
}

void sc_front_h2_send(sc_freq_t *r, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state)
{
    sc_fconn_t *conn = r->conn;
    if (r->stream_closed || r->failed) {
        if (state != SC_SEND_MORE)
            r->final = 1;
        return;
    }
    int head_alone = 0;
    if (!r->head_sent) {
        submit_response(conn, r, bufs, bufcnt, state);
        head_alone = state == SC_SEND_MORE && sc_exchange_bytes(bufs, bufcnt) == 0;
    }
    if (!r->no_body && !r->failed) {
        for (size_t i = 0; i != bufcnt; ++i) {
            if (bufs[i].len == 0)
                continue;
            h2o_iovec_t room = h2o_buffer_reserve(&r->out, bufs[i].len);
            memcpy(room.base, bufs[i].base, bufs[i].len);
            r->out->size += bufs[i].len;
        }
    }
    if (state == SC_SEND_FINAL) {
        r->final = 1;
        gettimeofday(&r->ex.response_end_at, NULL);
    } else if (state == SC_SEND_ERROR) {
        r->final = 1;
        if (!r->failed) {
            r->failed = 1; /* the client must not take a cut response for a whole one */
            nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_INTERNAL_ERROR);
        }
    } else {
        r->want_proceed = 1;
        if (!h2o_linklist_is_linked(&r->proceed_link))
            h2o_linklist_insert(&conn->proceed, &r->proceed_link);
    }
    if (r->deferred && !r->no_body && !r->failed) {
        r->deferred = 0;
        nghttp2_session_resume_data(conn->session, r->stream_id);
    }
    if (conn->in_callback || head_alone) {
        /* what nghttp2 is inside of flushes when it returns; proceeds wait for the loop; a HEADERS frame waits for
           the DATA that usually follows within this turn, to leave in one write with it */
        sc_fconn_resume_soon(conn);
        return;
    }
    int waits = r->want_proceed;
    sc_front_h2_flush(conn); /* may close the stream, and free r with it */
    if (!conn->dead && waits && sc_wqueue_empty(&conn->out))
        sc_fconn_resume_soon(conn); /* no write is coming to bring the proceed: it comes on the next turn */
}

/* ---- input ---- */

/* The client owes body bytes: it must send some within SC_FRONT_BODY_IDLE_MS (the timer restarts on each). */
static void arm_body_timeout(sc_freq_t *r)
{
    if (h2o_timeout_is_linked(&r->body_timeout))
        h2o_timeout_unlink(&r->body_timeout);
    if (!r->ex.body.complete && !r->ex.body.failed && !r->final && !r->tunnel)
        h2o_timeout_link(r->conn->front->loop, &r->conn->front->body_idle, &r->body_timeout);
}

static void on_body_timeout(h2o_timeout_entry_t *entry)
{
    sc_freq_t *r = H2O_STRUCT_FROM_MEMBER(sc_freq_t, body_timeout, entry);
    sc_fconn_t *conn = r->conn;
    if (conn == NULL || conn->session == NULL || r->stream_closed)
        return;
    if (r->ex.body.buf->size >= SC_FRONT_BODY_WINDOW) {
        arm_body_timeout(r); /* the window is full: the handler is the slow one, not the client */
        return;
    }
    sc_fconn_enter(conn);
    nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
    sc_freq_body_fail(r); /* the handler lets go of the next hop */
    sc_fconn_resume_soon(conn);
    sc_fconn_leave(conn);
}

void sc_front_h2_body_consumed(sc_freq_t *r, size_t n)
{
    sc_fconn_t *conn = r->conn;
    if (r->stream_closed || conn->session == NULL)
        return;
    arm_body_timeout(r);
    nghttp2_session_consume(conn->session, r->stream_id, n);
    /* the WINDOW_UPDATE goes out on the loop's next turn (the caller may be inside anything) */
    sc_fconn_resume_soon(conn);
}

/* The client's address, for a log line. */
static void peer_text(sc_fconn_t *conn, char *buf, size_t cap)
{
    struct sockaddr_storage sa;
    snprintf(buf, cap, "?");
    if (conn->sock != NULL && h2o_socket_getpeername(conn->sock, (struct sockaddr *)&sa) != 0)
        h2o_socket_getnumerichost((struct sockaddr *)&sa, sizeof(sa), buf);
}

/*
 * Ends a connection whose client abuses it: GOAWAY ENHANCE_YOUR_CALM, and
 * nghttp2 ignores every frame after it. The socket closes once the GOAWAY is
 * out, or SC_FRONT_SHUTDOWN_GRACE_MS later at most (a client that reads
 * nothing cannot hold it).
 */
static void h2_calm(sc_fconn_t *conn, const char *why)
{
    char peer[1025];
    if (conn->calm || conn->dead || conn->session == NULL)
        return;
    conn->calm = 1;
    peer_text(conn, peer, sizeof(peer));
    cmn_log_warn("HTTP/2 connection from %s: %s: GOAWAY ENHANCE_YOUR_CALM, then close", peer, why);
    nghttp2_session_terminate_session(conn->session, NGHTTP2_ENHANCE_YOUR_CALM);
    if (h2o_timeout_is_linked(&conn->block_entry))
        h2o_timeout_unlink(&conn->block_entry);
    h2o_timeout_link(conn->front->loop, &conn->front->grace, &conn->block_entry);
    if (!conn->in_callback)
        sc_front_h2_flush(conn); /* else h2_handle_input flushes once nghttp2 returns */
}

/* A header block went past the limits (and was answered 431, or its trailers refused): a few may be mistakes. */
static void count_refused_block(sc_fconn_t *conn)
{
    if (++conn->refused_blocks >= SC_FRONT_REFUSED_BLOCKS_MAX)
        h2_calm(conn, "header blocks past the limits, again and again");
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_fconn_t *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    sc_freq_t *r = sc_freq_new(conn, 0x200);
    r->ex.authority = h2o_iovec_init(NULL, 0);
    r->stream_id = frame->hd.stream_id;
    r->body_timeout.cb = on_body_timeout;
    nghttp2_session_set_stream_user_data(session, r->stream_id, r);
    h2o_linklist_insert(&conn->streams, &r->stream_link);
    ++conn->num_streams;
    if (h2o_timeout_is_linked(&conn->timeout))
        h2o_timeout_unlink(&conn->timeout);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    sc_freq_t *r = stream_of(session, frame->hd.stream_id);
    (void)flags, (void)user_data;
    if (r == NULL)
        return 0;
    sc_exchange_t *ex = &r->ex;
    const char *n = (const char *)name, *v = (const char *)value;
    /* the block's decoded size is bounded as it is decoded: HPACK lets one byte name a 4 KB field again */
    const sc_front_limits_t *limits = &r->front->limits;
    r->header_bytes += namelen + valuelen + 32;
    if (namelen == 0 || n[0] != ':')
        ++r->header_fields;
    if (r->headers_too_large || r->header_bytes > limits->header_bytes_max ||
        (!r->dispatched && r->header_fields > limits->header_fields_max)) {
        r->headers_too_large = 1;
        return 0;
    }
    if (r->dispatched) {
        /* trailers: passed on with the body */
        if (namelen != 0 && n[0] != ':') {
            if (ex->body.trailers.size == SC_HTTP_FIELDS_MAX)
                r->headers_too_large = 1;
            else
                sc_http_fields_add(&ex->pool, &ex->body.trailers, n, namelen, v, valuelen);
        }
        return 0;
    }
    if (namelen != 0 && n[0] == ':') {
        h2o_iovec_t copy = h2o_strdup(&ex->pool, v, valuelen);
        if (namelen == 7 && memcmp(n, ":method", 7) == 0)
            ex->method = copy;
        else if (namelen == 5 && memcmp(n, ":path", 5) == 0)
            ex->path = copy;
        else if (namelen == 10 && memcmp(n, ":authority", 10) == 0)
            ex->authority = copy;
        return 0; /* :scheme: the front end knows whether it speaks TLS */
    }
    if (namelen == 4 && memcmp(n, "host", 4) == 0) {
        if (ex->authority.base == NULL)
            ex->authority = h2o_strdup(&ex->pool, v, valuelen);
        return 0;
    }
    if (namelen == 14 && memcmp(n, "content-length", 14) == 0) {
        uint64_t len = 0; /* nghttp2 checked it is a number, and will hold the DATA to it */
        for (size_t i = 0; i != valuelen; ++i)
            len = len * 10 + (uint64_t)(v[i] - '0');
        ex->body.length = len;
        return 0;
    }
    sc_http_fields_add(&ex->pool, &ex->headers, n, namelen, v, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_fconn_t *conn = user_data;
    sc_freq_t *r = stream_of(session, frame->hd.stream_id);
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (r == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !r->dispatched) {
        r->ex.body.expected = !end;
        r->ex.body.complete = end;
        r->header_bytes = 0; /* a trailer block is counted on its own */
        r->header_fields = 0;
        /* nghttp2 let CONNECT through only with :authority and without :scheme and :path (RFC 9113 8.5) */
        r->tunnel = h2o_memis(r->ex.method.base, r->ex.method.len, H2O_STRLIT("CONNECT"));
        if (r->tunnel)
            nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, r->stream_id, SC_FRONT_TUNNEL_WINDOW);
        if (r->ex.path.base == NULL)
            r->ex.path = h2o_iovec_init(H2O_STRLIT(""));
        if (r->headers_too_large) {
            /* answered here, not by a handler; the body that may follow is dropped (on_data_chunk) */
            r->dispatched = 1;
            r->ex.body.failed = !end;
            sc_exchange_reply(&r->ex, 431, "request headers too large\n");
            count_refused_block(conn);
            return 0;
        }
        if (r->ex.body.length != UINT64_MAX && r->ex.body.length > conn->front->max_body) {
            r->dispatched = 1;
            r->ex.body.failed = !end;
            sc_exchange_reply(&r->ex, 413, "payload too large\n");
            return 0;
        }
        arm_body_timeout(r);
        sc_freq_dispatch(r);
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && r->headers_too_large && !r->ex.body.complete) {
        int counted = r->ex.body.failed; /* the head itself was refused (and counted) */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        sc_freq_body_fail(r); /* trailers past the bound: the handler lets go of the next hop */
        if (!counted)
            count_refused_block(conn);
        return 0;
    }
    if (end && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && !r->ex.body.complete) {
        r->ex.body.complete = 1;
        if (h2o_timeout_is_linked(&r->body_timeout))
            h2o_timeout_unlink(&r->body_timeout);
        sc_freq_body_changed(r);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data)
{
    sc_fconn_t *conn = user_data;
    sc_freq_t *r = stream_of(session, stream_id);
    (void)flags;
    if (r == NULL || r->ex.body.failed || (r->final && (!tunnel_open(r) || r->failed))) {
        nghttp2_session_consume(session, stream_id, len); /* nobody reads it: give the window back */
        return 0;
    }
    h2o_iovec_t room = h2o_buffer_reserve(&r->ex.body.buf, len);
    memcpy(room.base, data, len);
    r->ex.body.buf->size += len;
    r->ex.body.received += len;
    arm_body_timeout(r);
    if (r->ex.body.received > conn->front->max_body && !r->tunnel) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        sc_freq_body_fail(r);
        return 0;
    }
    sc_freq_body_changed(r);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_freq_t *r = stream_of(session, frame->hd.stream_id);
    (void)user_data;
    /* the response is complete while the client still sends: it need not (RFC 9113 8.1) */
    if (r != NULL && !tunnel_open(r) && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !r->ex.body.complete &&
        (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS))
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static void free_stream(sc_fconn_t *conn, sc_freq_t *r)
{
    h2o_linklist_unlink(&r->stream_link);
    --conn->num_streams;
    r->stream_closed = 1;
    if (!r->ex.body.complete)
        r->ex.body.failed = 1; /* no on_change: the handler is stopped next */
    r->conn = NULL;
    sc_freq_free(r);
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    sc_fconn_t *conn = user_data;
    sc_freq_t *r = stream_of(session, stream_id);
    (void)error_code;
    if (r == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    /* body bytes the handler never took still hold the connection window */
    if (r->ex.body.buf->size != 0)
        nghttp2_session_consume_connection(session, r->ex.body.buf->size);
    free_stream(conn, r);
    return 0;
}

static nghttp2_session_callbacks *server_callbacks;
static pthread_once_t server_callbacks_once = PTHREAD_ONCE_INIT;

static void make_server_callbacks(void)
{
    if (nghttp2_session_callbacks_new(&server_callbacks) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_headers_callback(server_callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(server_callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(server_callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(server_callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(server_callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(server_callbacks, on_stream_close);
}

static void h2_on_read(h2o_socket_t *sock, const char *err);

#define H2_PREFACE_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2_FRAME_HEADER_LEN 9

/* Follows the frames in len more bytes of the client's; returns 1 while a header block is under way after them. */
static int track_frames(sc_h2_frames_t *t, const uint8_t *p, size_t len)
{
    while (len != 0) {
        size_t n;
        if (t->preface_left != 0) {
            n = len < t->preface_left ? len : t->preface_left;
            t->preface_left -= (uint32_t)n;
        } else if (t->payload_left != 0) {
            n = len < t->payload_left ? len : t->payload_left;
            t->payload_left -= (uint32_t)n;
            if (t->payload_left == 0 && t->block_ends)
                t->in_block = 0;
        } else {
            n = H2_FRAME_HEADER_LEN - t->head_len;
            if (n > len)
                n = len;
            memcpy(t->head + t->head_len, p, n);
            t->head_len += (uint8_t)n;
            if (t->head_len == H2_FRAME_HEADER_LEN) {
                uint8_t type = t->head[3];
                t->head_len = 0;
                t->payload_left = (uint32_t)t->head[0] << 16 | (uint32_t)t->head[1] << 8 | t->head[2];
                /* a block is HEADERS (or PUSH_PROMISE) then CONTINUATIONs, up to the frame flagged END_HEADERS */
                t->in_block = type == NGHTTP2_HEADERS || type == NGHTTP2_PUSH_PROMISE || type == NGHTTP2_CONTINUATION;
                t->block_ends = (t->head[4] & NGHTTP2_FLAG_END_HEADERS) != 0;
                if (t->payload_left == 0 && t->block_ends)
                    t->in_block = 0;
            }
        }
        p += n;
        len -= n;
    }
    return t->in_block;
}

/* A header block was not whole within the head timeout of its first frame. */
static void on_block_timeout(h2o_timeout_entry_t *entry)
{
    sc_fconn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_fconn_t, block_entry, entry);
    sc_fconn_enter(conn);
    if (conn->calm)
        sc_fconn_close(conn); /* the GOAWAY did not get out in time */
    else
        h2_calm(conn, "a header block not complete in time");
    sc_fconn_leave(conn);
}

/* Feeds what the socket read to nghttp2, then writes what it answered. */
static void h2_handle_input(sc_fconn_t *conn)
{
    h2o_buffer_t **input = &conn->sock->input;
    if ((*input)->size != 0) {
        conn->in_callback = 1;
        ssize_t n = nghttp2_session_mem_recv(conn->session, (const uint8_t *)(*input)->bytes, (*input)->size);
        conn->in_callback = 0;
        if (conn->dead)
            return;
        if (n < 0) {
            char peer[1025];
            peer_text(conn, peer, sizeof(peer));
            cmn_log_warn("HTTP/2 connection from %s closed: %s", peer, nghttp2_strerror((int)n));
            sc_fconn_close(conn);
            return;
        }
        /* the whole block is timed from its first frame: trickled CONTINUATIONs do not extend it */
        int in_block = track_frames(&conn->frames, (const uint8_t *)(*input)->bytes, (size_t)n);
        if (!conn->calm) {
            if (!in_block && h2o_timeout_is_linked(&conn->block_entry))
                h2o_timeout_unlink(&conn->block_entry);
            else if (in_block && !h2o_timeout_is_linked(&conn->block_entry))
                h2o_timeout_link(conn->front->loop, &conn->front->head_timeout, &conn->block_entry);
        }
        h2o_buffer_consume(input, (size_t)n);
    }
    sc_front_h2_flush(conn);
}

static void h2_on_read(h2o_socket_t *sock, const char *err)
{
    sc_fconn_t *conn = sock->data;
    if (conn == NULL || sc_sockio_read_spurious(sock, err))
        return;
    sc_fconn_enter(conn);
    if (err != NULL) {
        if (conn->num_streams != 0) /* a peer leaving between requests is ordinary; mid-request it is worth a line */
            cmn_log_warn("HTTP/2 connection closed with %zu stream(s) open: read: %s", conn->num_streams, err);
        sc_fconn_close(conn);
    } else {
        h2_handle_input(conn);
    }
    sc_fconn_leave(conn);
}

int sc_front_h2_start(sc_fconn_t *conn)
{
    nghttp2_option *opt;
    pthread_once(&server_callbacks_once, make_server_callbacks);
    if (server_callbacks == NULL || nghttp2_option_new(&opt) != 0)
        return -1;
    /* the window opens as handlers pass body bytes on, not as they arrive */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    sc_h2mem_init(&conn->h2mem);
    int rc = nghttp2_session_server_new3(&conn->session, server_callbacks, conn, opt, &conn->h2mem.mem);
    sc_h2mem_created(&conn->h2mem);
    nghttp2_option_del(opt);
    if (rc != 0) {
        conn->session = NULL;
        return -1;
    }
    conn->frames.preface_left = H2_PREFACE_LEN;
    conn->block_entry.cb = on_block_timeout;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, conn->front->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SC_FRONT_BODY_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)conn->front->limits.header_bytes_max}};
    if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0])) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, SC_FRONT_H2_CONN_WINDOW) != 0)
        return -1;
    h2o_socket_read_start(conn->sock, h2_on_read);
    h2_handle_input(conn); /* bytes read with the TLS handshake or the h2c preface */
    if (!conn->dead && conn->front->shutting_down)
        sc_front_h2_shutdown(conn); /* its handshake finished after the drain began */
    return 0;
}

void sc_front_h2_shutdown(sc_fconn_t *conn)
{
    if (conn->session == NULL || conn->goaway_stage == 2)
        return;
    if (conn->goaway_stage == 0 && conn->front->shutting_down && conn->num_streams != 0) {
        /* first a notice (RFC 9113 6.8): requests already on their way are still taken */
        nghttp2_submit_shutdown_notice(conn->session);
        conn->goaway_stage = 1;
        h2o_timeout_link(conn->front->loop, &conn->front->grace, &conn->grace_entry);
    } else {
        nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(conn->session),
                              NGHTTP2_NO_ERROR, NULL, 0);
        conn->goaway_stage = 2;
    }
    if (!conn->in_callback)
        sc_front_h2_flush(conn);
}

void sc_front_h2_dispose(sc_fconn_t *conn)
{
    while (!h2o_linklist_is_empty(&conn->streams)) {
        sc_freq_t *r = H2O_STRUCT_FROM_MEMBER(sc_freq_t, stream_link, conn->streams.next);
        if (conn->session != NULL)
            nghttp2_session_set_stream_user_data(conn->session, r->stream_id, NULL);
        free_stream(conn, r);
    }
    if (conn->session != NULL) {
        nghttp2_session_del(conn->session);
        conn->session = NULL;
    }
}
