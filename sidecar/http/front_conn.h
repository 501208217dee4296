/* What front.c (requests, HTTP/1.1) and front_h2.c (HTTP/2) share: a connection and a request of the front end. */
#ifndef SEAM_SIDECAR_FRONT_CONN_H
#define SEAM_SIDECAR_FRONT_CONN_H

#include <nghttp2/nghttp2.h>

#include "common/picohttpparser.h"
#include "sidecar/http/front.h"
#include "sidecar/http/h2mem.h"
#include "sidecar/http/sockio.h"
#include "sidecar/http/wqueue.h"

typedef struct st_sc_fconn_t sc_fconn_t;

/* One request; malloc'ed, freed once the exchange ended and the protocol let go of it. */
typedef struct st_sc_freq_t {
    sc_exchange_t ex;   /* first: the exchange functions cast back */
    sc_front_t *front;
    sc_fconn_t *conn;   /* NULL once the connection let go of it */
    int dispatched;     /* handed to the handler */
    int keepalive;      /* HTTP/1.1: the connection may carry the next request */
    int head_sent;      /* the response head is queued */
    int final;          /* the last response bytes are queued (or the response failed) */
    int failed;         /* the response ended in error: the client must see it cut */
    int want_proceed;   /* the handler waits for its on_proceed */
    int no_body;        /* HEAD, 204, 304: the response has no body */
    int chunked;        /* HTTP/1.1: the response body is chunked */
    /* HTTP/2 */
    int32_t stream_id;
    h2o_linklist_t stream_link;  /* in conn->streams */
    h2o_buffer_t *out;     /* response bytes nghttp2 has not taken yet */
    h2o_linklist_t proceed_link; /* in conn->proceed while want_proceed */
    int deferred;          /* nghttp2 waits for response bytes (NGHTTP2_ERR_DEFERRED) */
    h2o_timeout_entry_t body_timeout; /* linked while the client owes body bytes it may send */
    int stream_closed;     /* nghttp2 closed the stream */
    int trailers_pending;  /* the body is out; the trailing HEADERS go next */
    size_t header_bytes;   /* decoded header (or trailer) bytes of the block being received */
    size_t header_fields;  /* its fields, pseudo-header fields not counted */
    int headers_too_large; /* the block went past front->limits: the stream is answered 431 */
    int tunnel;            /* CONNECT: body and response are the two directions of a TCP stream, each may end first;
                              no body size limit and no body timeout (the tunnel's ends bound it) */
} sc_freq_t;

/*
 * Where the client's HTTP/2 frames begin and end in the bytes nghttp2 took.
 * nghttp2 keeps its reading state to itself and skips some header blocks (a
 * closed stream's) without a callback, so the front end follows the frame
 * headers to know when a header block is under way and time it.
 */
typedef struct st_sc_h2_frames_t {
    uint32_t preface_left; /* client connection preface bytes still to pass */
    uint32_t payload_left; /* payload bytes of the current frame still to come */
    uint8_t head[9];       /* a frame header read in part */
    uint8_t head_len;
    uint8_t in_block;      /* a header block began and the frame that ends it has not ended yet */
    uint8_t block_ends;    /* the current frame carries END_HEADERS */
} sc_h2_frames_t;

struct st_sc_fconn_t {
    sc_front_t *front;
    h2o_linklist_t link; /* in front->conns */
    h2o_socket_t *sock;
    sc_front_protocol_t protocol;
    h2o_timeout_entry_t timeout;
    sc_wqueue_t out; /* bytes for the socket */
    sc_flushq_entry_t flush_entry; /* HTTP/2: on front->flushq while out holds bytes for this turn's write */
    int reading;     /* HTTP/1.1: the socket is being read */
    int closing;     /* close once the writes are out */
    int lingering;   /* HTTP/1.1: done, reading (and dropping) what the client still sends before the close */
    int read_eof;    /* HTTP/1.1: the client half-closed; the request in hand is answered, then the close */
    int dead;        /* closed; freed when the outermost callback returns */
    unsigned busy;   /* callbacks of this connection on the stack */
    int in_callback; /* HTTP/2: inside nghttp2 or a loop over streams; flushing waits until it returns */
    h2o_timeout_entry_t resume_entry; /* on ctx->zero_timeout: read or flush on the loop's next turn */
    /* HTTP/1.1 */
    sc_freq_t *cur;  /* the request being read or answered */
    int body_kind;   /* H1_BODY_* of cur */
    uint64_t body_left;
    struct phr_chunked_decoder chunked;
    int in_trailers; /* the last chunk came: the trailer section is being read */
    size_t prev_head_len; /* for picohttpparser's incremental parse */
    int head_started; /* a request head began: conn->timeout is its whole-head timer, which reads do not re-arm */
    /* HTTP/2 */
    nghttp2_session *session;
    size_t num_streams;
    h2o_linklist_t streams; /* sc_freq_t of the open streams */
    int goaway_stage; /* 0 none, 1 notice sent, 2 final GOAWAY sent */
    h2o_linklist_t proceed; /* sc_freq_t whose handler waits for more room */
    h2o_timeout_entry_t grace_entry;
    sc_h2_frames_t frames;
    h2o_timeout_entry_t block_entry; /* on front->head_timeout while a header block is under way; on front->grace
                                        once calm is set */
    size_t refused_blocks; /* header blocks answered 431 (or trailers reset) for going past the limits */
    int calm;              /* GOAWAY ENHANCE_YOUR_CALM is on its way: the socket closes once it is out, or when
                              block_entry fires */
    h2o_timeout_entry_t release_entry; /* linked while no stream is open: then the buffers go back */
    sc_h2mem_t h2mem;                  /* nghttp2's allocator for session */
};

/* front.c */
sc_freq_t *sc_freq_new(sc_fconn_t *conn, int version);
void sc_freq_free(sc_freq_t *r);
void sc_freq_body_changed(sc_freq_t *r);
void sc_freq_body_fail(sc_freq_t *r);
void sc_freq_dispatch(sc_freq_t *r);
void sc_fconn_flush_socket(sc_fconn_t *conn);
void sc_fconn_flush_later(sc_fconn_t *conn);
void sc_fconn_resume_soon(sc_fconn_t *conn);
void sc_fconn_close(sc_fconn_t *conn);
void sc_fconn_enter(sc_fconn_t *conn);
int sc_fconn_leave(sc_fconn_t *conn);
int sc_front_skip_response_header(const h2o_iovec_t *name);
h2o_iovec_t sc_front_date(sc_front_t *front);
void sc_freq_send(sc_freq_t *r, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state);

/* front_h2.c */
int sc_front_h2_start(sc_fconn_t *conn);
void sc_front_h2_on_written(sc_fconn_t *conn);
void sc_front_h2_on_resume(sc_fconn_t *conn);
void sc_front_h2_flush(sc_fconn_t *conn);
void sc_front_h2_body_consumed(sc_freq_t *r, size_t n);
void sc_front_h2_send(sc_freq_t *r, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state);
void sc_front_h2_shutdown(sc_fconn_t *conn);
void sc_front_h2_dispose(sc_fconn_t *conn);
void sc_front_h2_release(sc_fconn_t *conn);

#endif
