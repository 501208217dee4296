/* The sidecar's own HTTP server side, for both listeners: HTTP/1.1 and HTTP/2 with request bodies streamed. */
#ifndef SEAM_SIDECAR_FRONT_H
#define SEAM_SIDECAR_FRONT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/http/exchange.h"
#include "sidecar/http/flushq.h"

/*
 * h2o 2.2.5's servers read a whole request body before any handler runs and
 * cannot carry trailers, so Seam serves HTTP itself: HTTP/1.1 with
 * picohttpparser and HTTP/2 with nghttp2, over h2o's (TLS) sockets. Each
 * request becomes an sc_exchange_t (exchange.h) handed to the listener's
 * handler; its body arrives as the client sends it, and the client is held
 * back (HTTP/2 flow control, or no socket reads) until the handler has
 * passed the bytes on. Trailers cross both ways.
 */

#define SC_FRONT_BODY_WINDOW (256 * 1024) /* request body bytes buffered per request before the client waits */
#define SC_FRONT_TUNNEL_WINDOW (1024 * 1024) /* ... and per CONNECT stream (a TCP tunnel): one stream carries a bulk
                                                transfer, and the window is what is in flight per round trip */
#define SC_FRONT_OUT_LOW (64 * 1024)      /* response bytes queued per request below which the handler gets more */
#define SC_FRONT_HEADER_BYTES_DEFAULT (60 * 1024) /* sc_front_limits_t.header_bytes_max unless set */
#define SC_FRONT_HEADER_FIELDS_DEFAULT 100        /* sc_front_limits_t.header_fields_max unless set */
#define SC_FRONT_HEADER_FIELDS_LIMIT 1000 /* the most header_fields_max may be: HTTP/1.1 parses into a stack
                                             array of this many (32 KB) */
#define SC_FRONT_HEAD_TIMEOUT_MS 10000    /* a request head (HTTP/1.1) or header block (HTTP/2) must be whole this
                                             long after its first byte: 408, or GOAWAY */
#define SC_FRONT_REFUSED_BLOCKS_MAX 3     /* HTTP/2: header blocks refused (431) on one connection before it gets
                                             GOAWAY ENHANCE_YOUR_CALM and closes */
#define SC_FRONT_H1_IDLE_MS 10000         /* HTTP/1.1: the next request (or more of a body) must come within this */
#define SC_FRONT_H2_CONN_WINDOW (32 * 1024 * 1024) /* HTTP/2 connection receive window: every stream's body
                                                      window fits, so one slow request never stalls the others */
#define SC_FRONT_SHUTDOWN_GRACE_MS 1000   /* HTTP/2 drain: the final GOAWAY follows the first after this */
#define SC_FRONT_BODY_IDLE_MS 30000      /* HTTP/2: a stream whose client sends none of its body for this long
                                             (with room in the window) is reset */
#define SC_FRONT_RELEASE_MS 1000          /* an HTTP/2 connection idle this long gives its write and frame buffers back */
#define SC_FRONT_LINGER_MS 2000           /* HTTP/1.1: after a response that left a body unread, the
                                             client's further bytes are read and dropped this long */

typedef enum { SC_FRONT_HTTP1 = 1, SC_FRONT_HTTP2 = 2 } sc_front_protocol_t;

typedef struct st_sc_front_t sc_front_t;

/*
 * What a request head may hold (--max-request-headers-kb, --max-request-headers).
 * Past either the request is answered 431 without reaching the handler, and
 * no more of the head is copied.
 */
typedef struct st_sc_front_limits_t {
    size_t header_bytes_max;  /* HTTP/1.1: bytes of the head (request line included); HTTP/2: decoded bytes of a header
                                 block, 32 added per field as RFC 7541 4.1 counts them; also the trailers' bound */
    size_t header_fields_max; /* header fields of a request (HTTP/2 pseudo-header fields not counted), at most
                                 SC_FRONT_HEADER_FIELDS_LIMIT */
} sc_front_limits_t;

/* What a listener does with its requests; both run on the worker's thread. */
typedef struct st_sc_front_handler_t {
    /* a request head arrived: take ex (set ex->ops) and answer it with sc_exchange_send()/sc_exchange_reply() */
    void (*on_request)(sc_front_t *front, sc_exchange_t *ex);
    /* the exchange ends (answered, or the client went away): write the access log; ex dies after this */
    void (*on_log)(sc_front_t *front, sc_exchange_t *ex);
} sc_front_handler_t;

/* One worker's front end: its settings and open connections. Worker thread only. */
struct st_sc_front_t {
    h2o_loop_t *loop;
    const sc_front_handler_t *handler; /* static */
    void *data;                 /* the owner's (the worker) */
    int https;                  /* the sockets are TLS */
    int allow_h2c;              /* an HTTP/1.1 connection that opens with the HTTP/2 preface becomes h2c */
    uint32_t h2_max_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint64_t max_body;          /* request bodies larger than this: 413 (or a reset stream once under way) */
    sc_front_limits_t limits;   /* request heads; the defaults unless sc_front_set_limits() */
    const char *server_name;    /* the server header of responses */
    h2o_timeout_t zero;         /* runs on the loop's next turn */
    h2o_timeout_t h1_idle;      /* SC_FRONT_H1_IDLE_MS, or sc_front_set_h1_idle()'s */
    h2o_timeout_t head_timeout; /* SC_FRONT_HEAD_TIMEOUT_MS, or the HTTP/1.1 idle timeout when that is shorter */
    h2o_timeout_t h2_idle;      /* an HTTP/2 connection with no open stream closes after this */
    h2o_timeout_t grace;        /* SC_FRONT_SHUTDOWN_GRACE_MS */
    h2o_timeout_t linger;       /* SC_FRONT_LINGER_MS */
    h2o_timeout_t body_idle;    /* SC_FRONT_BODY_IDLE_MS */
    h2o_timeout_t release;      /* SC_FRONT_RELEASE_MS */
    sc_flushq_t flushq;         /* HTTP/2 connections' socket writes, one per connection and loop turn */
    h2o_linklist_t conns;       /* open connections */
    size_t num_conns;
    int shutting_down;
    time_t date_sec;            /* the second date_text was made for */
    char date_text[32];         /* RFC 1123, for the date header */
};

/*
 * Sets up front on loop; handler is static, data the owner's. server_name
 * must outlive the front end.
 */
void sc_front_init(sc_front_t *front, h2o_loop_t *loop, const sc_front_handler_t *handler, void *data, int https,
                   int allow_h2c, uint32_t h2_max_streams, uint64_t max_body, uint64_t h2_idle_ms,
                   const char *server_name);

/*
 * Sets the HTTP/1.1 idle timeout (SC_FRONT_H1_IDLE_MS unless set): the wait
 * for the next request, or for more of a body under way. A whole-head timeout
 * longer than it is lowered to it. Call before the first sc_front_serve().
 */
void sc_front_set_h1_idle(sc_front_t *front, uint64_t ms);

/*
 * Sets what a request head may hold (the defaults unless set); a
 * header_fields_max above SC_FRONT_HEADER_FIELDS_LIMIT counts as the limit.
 * HTTP/2 connections advertise header_bytes_max as
 * SETTINGS_MAX_HEADER_LIST_SIZE. Call before the first sc_front_serve().
 */
void sc_front_set_limits(sc_front_t *front, const sc_front_limits_t *limits);

/*
 * Serves HTTP on sock (plain, or TLS with the handshake done), speaking
 * protocol. Takes ownership of sock: the front end closes it when the
 * connection ends (sock->on_close stays the caller's, and exchanges find the
 * caller's record in their conn_data; sock->data becomes the front end's).
 * Bytes already in sock->input are read first.
 */
void sc_front_serve(sc_front_t *front, h2o_socket_t *sock, sc_front_protocol_t protocol);

/*
 * Starts a graceful shutdown: idle HTTP/1.1 connections close now and busy
 * ones after their response; HTTP/2 connections get GOAWAY (twice, as RFC
 * 9113 6.8 suggests) and close once their streams are done.
 */
void sc_front_shutdown(sc_front_t *front);

/* Stops the front end's timers (the loop is closing); every connection must be gone. */
void sc_front_dispose(sc_front_t *front);

#endif
