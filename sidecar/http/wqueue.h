/* The one socket writer of Seam's HTTP layer: bytes queued while one write is under way, and nghttp2's frames pulled into it. */
#ifndef SEAM_SIDECAR_WQUEUE_H
#define SEAM_SIDECAR_WQUEUE_H

#include <h2o.h>
#include <nghttp2/nghttp2.h>

#define SC_WQUEUE_H2_BATCH (256 * 1024) /* HTTP/2 frame bytes gathered per socket write */

/*
 * A socket's outgoing bytes. One write is in flight at a time (which paces a
 * fast producer to the network); what is queued meanwhile goes out in one
 * write when it completes. The two buffers swap, so nothing is copied twice;
 * they are kept while bytes flow and given back by sc_wqueue_trim, which the
 * owner calls when its connection goes idle.
 */
typedef struct st_sc_wqueue_t {
    h2o_buffer_t *queued;   /* bytes not yet handed to the socket */
    h2o_buffer_t *inflight; /* bytes of the write under way */
    int writing;
} sc_wqueue_t;

void sc_wqueue_init(sc_wqueue_t *q);
void sc_wqueue_dispose(sc_wqueue_t *q);

/* Queues len bytes (copied). */
void sc_wqueue_append(sc_wqueue_t *q, const void *bytes, size_t len);

/* Room for at least len more bytes at the queue's end; commit what was written there with sc_wqueue_commit. */
h2o_iovec_t sc_wqueue_reserve(sc_wqueue_t *q, size_t len);
void sc_wqueue_commit(sc_wqueue_t *q, size_t len);

/*
 * Moves frames from nghttp2 into the queue until it holds SC_WQUEUE_H2_BATCH
 * bytes or nghttp2 has nothing more to send. Returns 0, or nghttp2's error
 * code. nghttp2 runs its callbacks (data sources, on_frame_send) meanwhile.
 */
int sc_wqueue_pull_h2(sc_wqueue_t *q, nghttp2_session *session);

/* Starts writing the queued bytes on sock unless a write is under way or none are queued; cb runs when it is done.
 * Returns 1 if a write started. */
int sc_wqueue_flush(sc_wqueue_t *q, h2o_socket_t *sock, h2o_socket_cb cb);

/* Call first in the write's callback, error or not: the write in flight is over. */
void sc_wqueue_written(sc_wqueue_t *q);

/* Gives back the buffers that hold nothing (an idle connection need not keep them); they come back from the allocator's
 * recycle list when bytes flow again. */
void sc_wqueue_trim(sc_wqueue_t *q);

/* Bytes queued and not yet handed to the socket. */
static inline size_t sc_wqueue_size(const sc_wqueue_t *q)
{
    return q->queued->size;
}

/* 1 when nothing is queued and no write is under way. */
static inline int sc_wqueue_empty(const sc_wqueue_t *q)
{
    return !q->writing && q->queued->size == 0;
}

#endif
