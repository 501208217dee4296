/* The sidecar's own HTTP server side, for both listeners: HTTP/1.1 and HTTP/2 with request bodies streamed. */
#ifndef SEAM_SIDECAR_FRONT_H
#define SEAM_SIDECAR_FRONT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

/*
 * h2o 2.2.5's servers read a whole request body before any handler runs, so a
 * 100 MB upload would sit in memory twice (once per sidecar). This front end
 * parses HTTP/1.1 (picohttpparser) and HTTP/2 (nghttp2) itself over h2o
 * sockets and hands the existing handlers ordinary h2o requests, so routing,
 * policy, error pages and access logs stay h2o's; only the body differs: it
 * arrives through sc_front_body_t as the client sends it, and the client is
 * held back (HTTP/2 flow control, or no socket reads) until the handler has
 * passed the bytes on.
 */

#define SC_FRONT_BODY_WINDOW (256 * 1024) /* request body bytes buffered per request before the client waits */
#define SC_FRONT_OUT_LOW (64 * 1024)      /* response bytes queued per request below which the handler gets more */
#define SC_FRONT_HEAD_MAX (64 * 1024)     /* largest HTTP/1.1 request head; more: 431 */
#define SC_FRONT_HEADERS_MAX 128          /* header lines in an HTTP/1.1 request head; more: 431 */
#define SC_FRONT_H1_IDLE_MS 10000         /* HTTP/1.1: the next request (or more of this one) must come within this */
#define SC_FRONT_H2_CONN_WINDOW (32 * 1024 * 1024) /* HTTP/2 connection receive window: every stream's body
                                                      window fits, so one slow request never stalls the others */
#define SC_FRONT_SHUTDOWN_GRACE_MS 1000   /* HTTP/2 drain: the final GOAWAY follows the first after this */
#define SC_FRONT_BODY_IDLE_MS 30000      /* HTTP/2: a stream whose client sends none of its body for this long
                                             (with room in the window) is reset */
#define SC_FRONT_LINGER_MS 2000           /* HTTP/1.1: after a response that left a body unread, the
                                             client's further bytes are read and dropped this long */
#define SC_FRONT_WRITE_BATCH (64 * 1024)  /* HTTP/2 frame bytes gathered per socket write */

typedef enum { SC_FRONT_HTTP1 = 1, SC_FRONT_HTTP2 = 2 } sc_front_protocol_t;

/* One worker's front end: its settings and open connections. Worker thread only. */
typedef struct st_sc_front_t {
    h2o_context_t *ctx;         /* borrowed: the worker's h2o context (handlers, loggers, timestamps) */
    h2o_hostconf_t **hosts;     /* borrowed: NULL-terminated, as h2o_accept_ctx_t has them */
    int https;                  /* the sockets are TLS: requests get scheme https */
    int allow_h2c;              /* an HTTP/1.1 connection that opens with the HTTP/2 preface becomes h2c */
    uint32_t h2_max_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint64_t max_body;          /* request bodies larger than this: 413 (or a reset stream once under way) */
    h2o_timeout_t h1_idle;      /* SC_FRONT_H1_IDLE_MS */
    h2o_timeout_t h2_idle;      /* an HTTP/2 connection with no open stream closes after this */
    h2o_timeout_t grace;        /* SC_FRONT_SHUTDOWN_GRACE_MS */
    h2o_timeout_t linger;       /* SC_FRONT_LINGER_MS */
    h2o_timeout_t body_idle;    /* SC_FRONT_BODY_IDLE_MS */
    h2o_linklist_t conns;       /* open connections */
    size_t num_conns;
    int shutting_down;
} sc_front_t;

/*
 * h2o puts its chunked-encoding filter on every path; the front end frames
 * HTTP/1.1 bodies itself, so it takes the filter off the host's paths. Call
 * once the paths are registered.
 */
void sc_front_configure_host(h2o_hostconf_t *hostconf);

/* Sets up front on ctx's loop. hosts and ctx are borrowed and must outlive it. */
void sc_front_init(sc_front_t *front, h2o_context_t *ctx, h2o_hostconf_t **hosts, int https, int allow_h2c,
                   uint32_t h2_max_streams, uint64_t max_body, uint64_t h2_idle_ms);

/*
 * Serves HTTP on sock (plain, or TLS with the handshake done), speaking
 * protocol. Takes ownership of sock: the front end closes it when the
 * connection ends (sock->on_close stays the caller's; sock->data becomes the
 * front end's). Bytes already in sock->input are read first.
 */
void sc_front_serve(sc_front_t *front, h2o_socket_t *sock, sc_front_protocol_t protocol);

/*
 * Starts a graceful shutdown: idle HTTP/1.1 connections close now and busy
 * ones after their response; HTTP/2 connections get GOAWAY (twice, as RFC
 * 9113 6.8 suggests) and close once their streams are done.
 */
void sc_front_shutdown(sc_front_t *front);

/*
 * A request body as the client sends it. The handler reads buf, and reports
 * each byte it has passed on with sc_front_body_consume(), which lets the
 * client send more. on_change (set by the handler, may stay NULL) runs after
 * buf grew or complete/failed turned true; never from inside
 * sc_front_body_consume(). Everything here belongs to the request and dies
 * with it.
 */
typedef struct st_sc_front_body_t {
    h2o_buffer_t *buf;     /* received bytes not consumed yet */
    uint64_t length;       /* the declared length (content-length), UINT64_MAX when unknown */
    uint64_t received;     /* bytes received so far */
    int expected;          /* the request has a body (it may still turn out empty) */
    int complete;          /* every byte arrived (buf may still hold the last of them) */
    int failed;            /* it never will: the client went away, reset the stream or broke the framing */
    void (*on_change)(void *data);
    void *data;
} sc_front_body_t;

/* The body of a request the front end made (every request on the listeners' contexts). */
sc_front_body_t *sc_front_req_body(h2o_req_t *req);

/* The handler passed n bytes at the start of buf on (n <= buf->size): they leave buf and the window opens. */
void sc_front_body_consume(h2o_req_t *req, size_t n);

#endif
