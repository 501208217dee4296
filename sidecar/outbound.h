/* The outbound side: plain HTTP from the app, routed and sent over pooled HTTP/2 mTLS mesh connections. */
#ifndef SEAM_SIDECAR_OUTBOUND_H
#define SEAM_SIDECAR_OUTBOUND_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sidecar/config.h"
#include "sidecar/error.h"
#include "sidecar/metrics.h"
#include "sidecar/routes.h"
#include "sidecar/tls.h"

#define SC_ROUTES_FILE_MAX (4 * 1024 * 1024)   /* largest routes file read */
#define SC_UPSTREAM_MAX_ADDRS 16               /* addresses kept per upstream name */
#define SC_UPSTREAM_RESOLVE_MS 30000           /* re-resolve an upstream name this often (on use) */
#define SC_UPSTREAM_BACKOFF_MIN_MS 500         /* an unreachable address is skipped this long, doubling */
#define SC_UPSTREAM_BACKOFF_MAX_MS 30000
#define SC_UPSTREAM_STREAMS_DEFAULT 100        /* streams per connection until the peer's SETTINGS say */
#define SC_UPSTREAM_STREAM_WINDOW (256 * 1024) /* per-stream receive window: bounds buffered response bytes */
#define SC_UPSTREAM_CONN_WINDOW (4 * 1024 * 1024) /* connection receive window */
#define SC_UPSTREAM_WRITE_BATCH (64 * 1024)    /* bytes gathered from nghttp2 per socket write */

typedef struct st_sc_outbound_t sc_outbound_t;

/* One outbound worker: its loop, h2o context, listener, upstreams and counters (touched only on its thread). */
typedef struct st_sc_oworker_t {
    h2o_context_t ctx;
    sc_outbound_t *outbound;
    size_t index;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listener;
    int listener_open;
    uv_async_t wakeup;
    uv_timer_t drain_timer;
    h2o_accept_ctx_t accept_ctx;
    h2o_timeout_t upstream_timeout; /* --upstream-timeout */
    h2o_timeout_t idle_timeout;     /* --upstream-idle-timeout */
    h2o_linklist_t upstreams;       /* sc_upstream_t, created on first use */
    sc_routes_t *routes;            /* this worker's reference */
    sc_tls_t *tls;                  /* this worker's reference: new mesh connections use it */
    size_t num_conns;               /* app connections */
    int draining;
    int stopped;
    sc_metrics_t metrics;
    pthread_mutex_t mailbox_lock;
    pthread_cond_t parked;
    struct {
        sc_routes_t *routes;
        sc_tls_t *tls;
        int drain;
    } mailbox;
} sc_oworker_t;

struct st_sc_outbound_t {
    h2o_globalconf_t globalconf;
    struct sockaddr_storage listen_addr;
    uint64_t upstream_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t drain_timeout_ms;
    sc_oworker_t *workers;
    size_t num_workers;
    size_t workers_running;
};

/* The client-side TLS hooks (sc_tls_hooks_t's client_* members) the outbound connections need. */
const char *sc_outbound_expected_id(SSL *ssl);
void sc_outbound_on_verify(SSL *ssl, int rc, const crt_verify_result_t *res);
int sc_outbound_on_session(SSL *ssl, SSL_SESSION *session);
void sc_outbound_on_info(const SSL *ssl, int where, int ret);

/*
 * Reads and validates a routes file. Returns 0 and a snapshot with one
 * reference, or SC_E_IO / SC_E_CONFIG with err naming the file, route index and field.
 */
int sc_routes_load_file(const char *path, sc_routes_t **out, char *err, size_t err_cap) __attribute__((warn_unused_result));

/*
 * Sets up num_workers workers listening (plain TCP, HTTP/1.1 and h2c) on
 * listen_addr, each with a reference to tls and routes. Binds every listener
 * before returning. Returns 0 or SC_E_ADDRESS / SC_E_LISTEN / SC_E_NOMEM with err.
 */
int sc_outbound_init(sc_outbound_t *out, const char *listen_addr, size_t num_workers, uint64_t upstream_timeout_ms,
                     uint64_t idle_timeout_ms, uint64_t drain_timeout_ms, sc_tls_t *tls, sc_routes_t *routes, char *err,
                     size_t err_cap) __attribute__((warn_unused_result));

/* Starts the worker threads. Returns 0 or SC_E_THREAD. */
int sc_outbound_start(sc_outbound_t *out) __attribute__((warn_unused_result));

/* Hands new routes / a new TLS snapshot to every worker; requests in flight keep what they started with. */
void sc_outbound_publish_routes(sc_outbound_t *out, sc_routes_t *routes);
void sc_outbound_publish_tls(sc_outbound_t *out, sc_tls_t *tls);

/* Asks every worker to drain; sc_outbound_stopped() turns true when all have stopped. */
void sc_outbound_drain(sc_outbound_t *out);
int sc_outbound_stopped(sc_outbound_t *out);

#endif
