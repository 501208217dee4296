/* The HTTP/2 client of both sides: pooled, multiplexed connections (mTLS to mesh peers, h2c to the app). */
#ifndef SEAM_SIDECAR_MESH_UPSTREAM_H
#define SEAM_SIDECAR_MESH_UPSTREAM_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/verify.h"
#include "sidecar/http/exchange.h"
#include "sidecar/http/flushq.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/policy/routes.h"
#include "sidecar/identity/tls.h"

#define SC_UPSTREAM_MAX_ADDRS 16               /* addresses kept per upstream name */
#define SC_UPSTREAM_RESOLVE_MS 30000           /* re-resolve an upstream name this often (on use) */
#define SC_UPSTREAM_BACKOFF_MIN_MS 500         /* an unreachable address is skipped this long, doubling */
#define SC_UPSTREAM_BACKOFF_MAX_MS 30000
#define SC_UPSTREAM_STREAMS_DEFAULT 100        /* streams per connection until the peer's SETTINGS say */
#define SC_UPSTREAM_STREAM_WINDOW (256 * 1024) /* per-stream receive window: bounds buffered response bytes */
#define SC_UPSTREAM_TUNNEL_WINDOW (1024 * 1024) /* ... of a CONNECT stream: a bulk transfer's bytes in flight */
#define SC_UPSTREAM_CONN_WINDOW (4 * 1024 * 1024) /* connection receive window */
#define SC_UPSTREAM_H2C_REFUSED_MS 30000       /* an app that refused h2c is spoken to over HTTP/1.1 this long */

typedef struct st_sc_upstream_t sc_upstream_t;
typedef struct st_sc_upstream_env_t sc_upstream_env_t;

/*
 * One worker's client: its upstreams (created on first use) and the settings
 * they share. Worker thread only.
 */
struct st_sc_upstream_env_t {
    h2o_loop_t *loop;
    sc_metrics_t *metrics;      /* the worker's: handshakes, upstream connections */
    sc_tls_t *const *tls;       /* the worker's current snapshot; NULL for h2c */
    int plaintext;              /* h2c with prior knowledge (to the app) instead of mTLS (to a mesh peer) */
    uint64_t request_timeout_ms;
    h2o_timeout_t request_timeout; /* no response head within this: 504 (--upstream-timeout, --app-timeout) */
    h2o_timeout_t idle_timeout;    /* a connection without streams closes after this */
    h2o_timeout_t stream_idle;     /* after the response head: no byte either way for this long ends the stream */
    h2o_linklist_t upstreams;
    sc_flushq_t flushq;            /* the connections' socket writes, one per connection and loop turn */
    /*
     * h2c only: the app answered the connection preface with something that
     * is not HTTP/2 before any stream was sent; the exchange is untouched and
     * may go over HTTP/1.1. NULL: such exchanges get 502.
     */
    void (*on_h2c_refused)(sc_upstream_env_t *env, sc_exchange_t *ex);
    uint64_t h2c_refused_until;    /* loop time until which h2c is not tried again */
};

/* Sets up env on loop. tls points at the worker's snapshot pointer (NULL with plaintext). */
void sc_upstream_env_init(sc_upstream_env_t *env, h2o_loop_t *loop, sc_metrics_t *metrics, sc_tls_t *const *tls,
                          int plaintext, uint64_t request_timeout_ms, uint64_t idle_timeout_ms,
                          uint64_t stream_idle_ms);

/* The upstream for host:port that must prove identity ("" for h2c), created on first use; NULL when out of memory. */
sc_upstream_t *sc_upstream_get(sc_upstream_env_t *env, const char *host, uint16_t port, const char *identity);

/*
 * Sends ex to up as an HTTP/2 request (authority and path as given, the
 * headers of ex minus those that stop at a hop; the body and its trailers as
 * the client sends them) and streams the response, its trailers included,
 * back through ex. Takes over ex (ex->ops, ex->data). A grpc-timeout
 * shorter than the request timeout is the deadline. Failures before the
 * response head are replies (sc_exchange_reply): 503 no connection, 502 TLS or
 * protocol failure (the body names the category), 504 deadline; after it,
 * the response is cut. A CONNECT exchange (tunnel.h) goes without :scheme and
 * :path; its two directions end on their own (the response's end does not
 * reset a request body still under way) and no idle timer bounds it.
 */
void sc_upstream_forward(sc_upstream_env_t *env, sc_upstream_t *up, sc_exchange_t *ex, h2o_iovec_t authority,
                         h2o_iovec_t path);

/* The client-side TLS hooks (sc_tls_hooks_t's client_* members) the mesh connections need. */
const char *sc_upstream_expected_id(SSL *ssl);
void sc_upstream_on_verify(SSL *ssl, int rc, const crt_verify_result_t *res);
int sc_upstream_on_session(SSL *ssl, SSL_SESSION *session);
void sc_upstream_on_info(const SSL *ssl, int where, int ret);

#endif
