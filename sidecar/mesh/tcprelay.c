/*
 * A TCP relay: two streams, each read into buffers that are written to the
 * other as they are (no copy), with a high and a low mark on what waits to
 * be written so a fast sender cannot fill memory. A side's end of stream is
 * passed on as a shutdown of the other's writing half, so half-closed
 * protocols keep working; an error on either side ends both.
 *
 * The record lives until its own handles are closed, every write and
 * shutdown it started has called back (closing the client cancels those on
 * the client side) and done has run.
 */
#include "sidecar/mesh/tcprelay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CLIENT = 0, DEST = 1 };

typedef struct st_sc_relay_side_t {
    uv_stream_t *stream;
    int reading;    /* uv_read_start is on */
    int read_eof;   /* this side sent its last byte */
    int shut_sent;  /* its writing half is (being) shut: the other side's last byte was passed on */
    int shut_done;
    uint64_t bytes; /* read from this side */
} sc_relay_side_t;

struct st_sc_tcprelay_t {
    uv_tcp_t dest;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_shutdown_t shut_req[2];
    sc_relay_side_t side[2];
    unsigned pending;      /* writes, shutdowns and the connect that have not called back */
    unsigned open_handles; /* dest and timer, until their close callbacks */
    int connected, finished, done_called;
    sc_tcprelay_result_t res;
    sc_tcprelay_done_cb done;
    void *data;
    struct st_sc_relay_write_t *first; /* the bytes the caller read before the relay began, until the connect */
    size_t first_len;
};

typedef struct st_sc_relay_write_t {
    uv_write_t req;
    sc_tcprelay_t *relay;
    int to;
    char bytes[SC_TCPRELAY_READ];
} sc_relay_write_t;

static void start_reading(sc_tcprelay_t *r, int i);

static void maybe_free(sc_tcprelay_t *r)
{
    if (r->done_called && r->pending == 0 && r->open_handles == 0) {
        free(r->first);
        free(r);
    }
}

static void on_handle_close(uv_handle_t *h)
{
    sc_tcprelay_t *r = h->data;
    --r->open_handles;
    maybe_free(r);
}

/* Ends the relay: stops both sides, closes the destination (reset when the client failed), tells the owner. */
static void finish(sc_tcprelay_t *r, const char *error, const char *detail)
{
    if (r->finished)
        return;
    r->finished = 1;
    r->res.error = error;
    if (detail != NULL)
        snprintf(r->res.detail, sizeof(r->res.detail), "%s", detail);
    r->res.bytes_up = r->side[CLIENT].bytes;
    r->res.bytes_down = r->side[DEST].bytes;
    r->res.connected = r->connected;
    if (r->side[CLIENT].reading)
        uv_read_stop(r->side[CLIENT].stream);
    r->side[CLIENT].reading = 0;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_handle_close);
    if (r->res.client_reset && r->connected)
        uv_tcp_close_reset(&r->dest, on_handle_close);
    else
        uv_close((uv_handle_t *)&r->dest, on_handle_close);
    r->done_called = 1;
    r->done(r->data, &r->res);
    maybe_free(r);
}

static void maybe_complete(sc_tcprelay_t *r)
{
    if (r->side[CLIENT].read_eof && r->side[DEST].read_eof && r->side[CLIENT].shut_done && r->side[DEST].shut_done)
        finish(r, NULL, NULL);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sc_tcprelay_t *r = req->data;
    int i = req == &r->shut_req[CLIENT] ? CLIENT : DEST;
    --r->pending;
    if (!r->finished) {
        r->side[i].shut_done = 1;
        (void)status; /* a failed shutdown means the peer is gone: its read side reports it */
        maybe_complete(r);
    }
    maybe_free(r);
}

/* Side i sent its last byte: the other side's writing half closes once what is queued for it is out. */
static void pass_on_eof(sc_tcprelay_t *r, int i)
{
    int o = !i;
    r->side[i].read_eof = 1;
    if (r->side[i].reading)
        uv_read_stop(r->side[i].stream);
    r->side[i].reading = 0;
    r->side[o].shut_sent = 1;
    r->shut_req[o].data = r;
    if (uv_shutdown(&r->shut_req[o], r->side[o].stream, on_shutdown) == 0) {
        ++r->pending;
    } else {
        r->side[o].shut_done = 1; /* nothing to shut: the other side is gone already */
        maybe_complete(r);
    }
}

static void fail_side(sc_tcprelay_t *r, int i, const char *what, int status)
{
    char detail[160];
    if (i == CLIENT) {
        r->res.client_reset = 1;
        snprintf(detail, sizeof(detail), "the client %s (%s)", what, uv_strerror(status));
        finish(r, "client-reset", detail);
    } else {
        r->res.dest_reset = 1;
        snprintf(detail, sizeof(detail), "the destination %s (%s)", what, uv_strerror(status));
        finish(r, "destination-reset", detail);
    }
}

static void on_written(uv_write_t *req, int status)
{
    sc_relay_write_t *w = (sc_relay_write_t *)req; /* req is the first member */
    sc_tcprelay_t *r = w->relay;
    int to = w->to;
    free(w);
    --r->pending;
    if (!r->finished) {
        if (status != 0)
            fail_side(r, to, "stopped taking bytes", status);
        else if (uv_stream_get_write_queue_size(r->side[to].stream) < SC_TCPRELAY_LOW)
            start_reading(r, !to); /* the queue drained: the side that feeds it is read again */
    }
    maybe_free(r);
}

/* Queues len bytes of w (a buffer read from the other side, or the first bytes) toward side to. */
static int relay_write(sc_tcprelay_t *r, sc_relay_write_t *w, size_t len, int to)
{
    uv_buf_t buf = uv_buf_init(w->bytes, (unsigned)len);
    w->relay = r;
    w->to = to;
    int rc = uv_write(&w->req, r->side[to].stream, &buf, 1, on_written);
    if (rc != 0) {
        free(w);
        fail_side(r, to, "cannot be written to", rc);
        return -1;
    }
    ++r->pending;
    if (uv_stream_get_write_queue_size(r->side[to].stream) > SC_TCPRELAY_HIGH && r->side[!to].reading) {
        uv_read_stop(r->side[!to].stream); /* the peer is slow: stop taking bytes it cannot take yet */
        r->side[!to].reading = 0;
    }
    return 0;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle, (void)suggested;
    sc_relay_write_t *w = malloc(sizeof(*w));
    *buf = w != NULL ? uv_buf_init(w->bytes, sizeof(w->bytes)) : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sc_tcprelay_t *r = stream->data;
    int i = stream == r->side[CLIENT].stream ? CLIENT : DEST;
    sc_relay_write_t *w = buf->base != NULL ? (sc_relay_write_t *)(buf->base - offsetof(sc_relay_write_t, bytes)) : NULL;
    if (nread > 0) {
        r->side[i].bytes += (uint64_t)nread;
        relay_write(r, w, (size_t)nread, !i);
        return;
    }
    free(w);
    if (nread == 0)
        return; /* EAGAIN */
    if (nread == UV_EOF)
        pass_on_eof(r, i);
    else if (nread == UV_ENOBUFS)
        fail_side(r, i, "could not be read (out of memory)", (int)nread);
    else
        fail_side(r, i, "closed the connection with an error", (int)nread);
}

static void start_reading(sc_tcprelay_t *r, int i)
{
    sc_relay_side_t *s = &r->side[i];
    if (r->finished || s->reading || s->read_eof || !r->connected)
        return;
    if (uv_stream_get_write_queue_size(r->side[!i].stream) >= SC_TCPRELAY_LOW)
        return;
    int rc = uv_read_start(s->stream, on_alloc, on_read);
    if (rc != 0) {
        fail_side(r, i, "cannot be read", rc);
        return;
    }
    s->reading = 1;
}

static void on_connect(uv_connect_t *req, int status)
{
    sc_tcprelay_t *r = req->data;
    --r->pending;
    if (r->finished) {
        maybe_free(r);
        return;
    }
    uv_timer_stop(&r->timer);
    if (status != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail), "cannot connect to the destination (%s)", uv_strerror(status));
        r->res.dest_reset = status == UV_ECONNREFUSED;
        finish(r, "connect-failed", detail);
        return;
    }
    r->connected = 1;
    uv_tcp_nodelay(&r->dest, 1);
    if (r->first != NULL) {
        sc_relay_write_t *w = r->first; /* the write owns it from here */
        r->first = NULL;
        r->side[CLIENT].bytes += r->first_len; /* read before the relay began, counted as the client's */
        if (relay_write(r, w, r->first_len, DEST) != 0)
            return;
    }
    start_reading(r, CLIENT);
    start_reading(r, DEST);
}

static void on_connect_timeout(uv_timer_t *timer)
{
    sc_tcprelay_t *r = timer->data;
    finish(r, "connect-timeout", "the destination did not accept the connection in time");
}

sc_tcprelay_t *sc_tcprelay_start(uv_loop_t *loop, uv_stream_t *client, const struct sockaddr *dst, const char *first,
                                 size_t first_len, uint64_t connect_timeout_ms, sc_tcprelay_done_cb done, void *data)
{
    sc_tcprelay_t *r = calloc(1, sizeof(*r));
    if (r == NULL || first_len > SC_TCPRELAY_READ)
        goto fail;
    if (first_len != 0) {
        if ((r->first = malloc(sizeof(*r->first))) == NULL)
            goto fail;
        memcpy(r->first->bytes, first, first_len);
        r->first_len = first_len;
    }
    r->done = done;
    r->data = data;
    r->side[CLIENT].stream = client;
    r->side[DEST].stream = (uv_stream_t *)&r->dest;
    client->data = r;
    uv_tcp_init(loop, &r->dest);
    r->dest.data = r;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open_handles = 2;
    r->connect_req.data = r;
    if (uv_tcp_connect(&r->connect_req, &r->dest, dst, on_connect) != 0) {
        r->done_called = 1; /* the caller hears it from the NULL: done never runs */
        uv_close((uv_handle_t *)&r->timer, on_handle_close);
        uv_close((uv_handle_t *)&r->dest, on_handle_close);
        return NULL;
    }
    ++r->pending;
    uv_timer_start(&r->timer, on_connect_timeout, connect_timeout_ms, 0);
    return r;
fail:
    if (r != NULL)
        free(r->first);
    free(r);
    return NULL;
}
