/* The one socket writer of Seam's HTTP layer: bytes queued while one write is under way, and nghttp2's frames pulled into it. */
#include <string.h>

#include "sidecar/http/wqueue.h"

void sc_wqueue_init(sc_wqueue_t *q)
{
    h2o_buffer_init(&q->queued, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&q->inflight, &h2o_socket_buffer_prototype);
    q->writing = 0;
}

void sc_wqueue_dispose(sc_wqueue_t *q)
{
    h2o_buffer_dispose(&q->queued);
    h2o_buffer_dispose(&q->inflight);
}

h2o_iovec_t sc_wqueue_reserve(sc_wqueue_t *q, size_t len)
{
    return h2o_buffer_reserve(&q->queued, len);
}

void sc_wqueue_commit(sc_wqueue_t *q, size_t len)
{
    q->queued->size += len;
}

void sc_wqueue_append(sc_wqueue_t *q, const void *bytes, size_t len)
{
    if (len == 0)
        return;
    h2o_iovec_t room = h2o_buffer_reserve(&q->queued, len);
    memcpy(room.base, bytes, len);
    q->queued->size += len;
}

int sc_wqueue_pull_h2(sc_wqueue_t *q, nghttp2_session *session)
{
    while (q->queued->size < SC_WQUEUE_H2_BATCH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(session, &data);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        sc_wqueue_append(q, data, (size_t)n);
    }
    return 0;
}

int sc_wqueue_flush(sc_wqueue_t *q, h2o_socket_t *sock, h2o_socket_cb cb)
{
    if (q->writing || sock == NULL || q->queued->size == 0)
        return 0;
    h2o_buffer_t *swap = q->inflight;
    q->inflight = q->queued;
    q->queued = swap;
    q->writing = 1;
    h2o_iovec_t vec = h2o_iovec_init(q->inflight->bytes, q->inflight->size);
    h2o_socket_write(sock, &vec, 1, cb);
    return 1;
}

void sc_wqueue_written(sc_wqueue_t *q)
{
    q->writing = 0;
    h2o_buffer_consume(&q->inflight, q->inflight->size); /* kept: a stream's next write takes it again */
}

void sc_wqueue_trim(sc_wqueue_t *q)
{
    if (!q->writing) {
        h2o_buffer_dispose(&q->inflight);
        h2o_buffer_init(&q->inflight, &h2o_socket_buffer_prototype);
    }
    if (q->queued->size == 0) {
        h2o_buffer_dispose(&q->queued);
        h2o_buffer_init(&q->queued, &h2o_socket_buffer_prototype);
    }
}
