/* The inbound side: worker threads that terminate mTLS, apply the policy and proxy to the app. */
#ifndef SEAM_SIDECAR_INBOUND_H
#define SEAM_SIDECAR_INBOUND_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <h2o/socketpool.h>
#include <stddef.h>
#include <uv.h>

#include "sidecar/error.h"
#include "sidecar/http/front.h"
#include "sidecar/metrics.h"
#include "sidecar/policy.h"
#include "sidecar/accesslog.h"
#include "sidecar/appclient.h"
#include "sidecar/streamrate.h"
#include "sidecar/tls.h"
#include "sidecar/upstream.h"
#include "sidecar/worker.h"

#define SC_H2_MAX_CONCURRENT_STREAMS 100          /* SETTINGS_MAX_CONCURRENT_STREAMS we honour per connection */
#define SC_MAX_REQUEST_BODY_BYTES (1024ul * 1024 * 1024) /* request body limit; more: 413 */
#define SC_APP_KEEPALIVE_MS 2000                  /* idle pooled connections to the app close after this */
#define SC_XFCC_HEADER "x-forwarded-client-cert"
#define SC_ORIG_PROTO_HEADER "seam-orig-proto" /* the calling app spoke HTTP/1.x (set by the outbound side) */

typedef struct st_sc_inbound_t sc_inbound_t;

/*
 * One worker: its own loop, h2o context, SO_REUSEPORT listener, pool of app
 * connections and counters. Everything here is touched only on the worker's
 * thread, except the mailbox (under base.mailbox_lock, used only on reload
 * and drain, never per request) and the metrics (relaxed atomics).
 */
typedef struct st_sc_worker_t {
    sc_worker_base_t base; /* loop, thread, listener, drain; num_conns counts TLS connections */
    sc_inbound_t *inbound;
    sc_front_t front;            /* HTTP/2 and HTTP/1.1 over the mesh's TLS */
    h2o_timeout_t handshake_timeout; /* --handshake-timeout, from accept to the end of the handshake */
    sc_app_pool_t app_pool;
    h2o_timeout_t app_timeout;   /* no progress from the app for --app-timeout */
    sc_app_target_t app_target;  /* what the app client needs: pool, timeout, name */
    sc_upstream_env_t app_h2;    /* h2c to the app: pooled, multiplexed */
    sc_upstream_t *app_up;       /* ... the app's address */
    h2o_iovec_t app_authority;   /* :authority for a request that came without one */
    sc_policy_t *policy; /* this worker's reference */
    sc_tls_t *tls;       /* this worker's reference: new handshakes use it */
    sc_metrics_t metrics;
    sc_accesslog_t accesslog;
    sc_policy_t *mail_policy; /* a new policy to take (under base.mailbox_lock); TLS snapshots go through base */
} sc_worker_t;

#define SC_INBOUND_TUNNEL_REFUSED_MAX 8

struct st_sc_inbound_t {
    int app_protocol; /* sc_app_protocol_t */
    struct sockaddr_storage listen_addr;
    struct sockaddr_storage app_addr;
    socklen_t app_addr_len;
    char app_name[320]; /* "127.0.0.1:8080", for messages */
    uint16_t app_port;  /* the app's port: HTTP requests are judged as going to it (policy "ports") */
    uint16_t tunnel_refused[SC_INBOUND_TUNNEL_REFUSED_MAX]; /* the sidecar's own ports: no tunnel reaches them */
    size_t num_tunnel_refused;
    sc_connlimit_t limit; /* --max-connections across the workers; the owner sets it before sc_inbound_start() */
    sc_worker_t *workers;
    size_t num_workers;
    size_t workers_running;
};

/* The TLS hooks the inbound connections need; pass them to sc_tls_load(). */
extern const sc_tls_hooks_t sc_inbound_tls_hooks;

/* The hooks of a sidecar with both sides (inbound server + outbound client handshakes). */
extern const sc_tls_hooks_t sc_sidecar_tls_hooks;

/*
 * Sets up num_workers workers listening on listen_addr ("0.0.0.0:15006") and
 * proxying to app_addr, each with a reference to tls and policy. Binds every
 * listener before returning, so an address in use fails here. A connection
 * must finish its TLS handshake within handshake_timeout_ms of its accept;
 * an HTTP/2 connection with no open stream closes after idle_timeout_ms.
 * The connection budget (in->limit) is left empty: set it with
 * sc_connlimit_init() before sc_inbound_start(). Returns 0, or
 * SC_E_ADDRESS / SC_E_LISTEN / SC_E_NOMEM with err.
 */
int sc_inbound_init(sc_inbound_t *in, const char *listen_addr, const char *app_addr, int app_protocol,
                    size_t num_workers, uint64_t drain_timeout_ms, uint64_t app_timeout_ms, uint64_t stream_idle_ms,
                    uint64_t handshake_timeout_ms, uint64_t idle_timeout_ms, sc_tls_t *tls, sc_policy_t *policy, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/*
 * Ports a peer's TCP tunnel may not reach on 127.0.0.1: the sidecar's own
 * listeners (admin, outbound, probes), which answer only on loopback. The
 * inbound listener's port is refused already. Call before sc_inbound_start.
 */
void sc_inbound_refuse_tunnel_port(sc_inbound_t *in, uint16_t port);

/* Sets every worker's request head limits (copied). Call after sc_inbound_init and before sc_inbound_start. */
void sc_inbound_set_front_limits(sc_inbound_t *in, const sc_front_limits_t *limits);

/* Starts the worker threads. Returns 0 or SC_E_THREAD. */
int sc_inbound_start(sc_inbound_t *in) __attribute__((warn_unused_result));

/* Hands a new policy to every worker (each takes its own reference); live requests keep deciding with the old one. */
void sc_inbound_publish_policy(sc_inbound_t *in, sc_policy_t *policy);

/* Hands a new TLS snapshot to every worker for new handshakes; live connections keep theirs. */
void sc_inbound_publish_tls(sc_inbound_t *in, sc_tls_t *tls);

/* Asks every worker to drain: close its listener, finish in-flight requests, stop within the drain timeout. */
void sc_inbound_drain(sc_inbound_t *in);

/* True when every started worker's loop has returned (after a drain). */
int sc_inbound_stopped(sc_inbound_t *in);

/* After sc_inbound_stopped(): the connections still open when the workers stopped (cut at the deadline). */
size_t sc_inbound_cut_connections(sc_inbound_t *in);

/* Resolves "host:port" (numeric or "localhost") into sa. Returns 0 or SC_E_ADDRESS. */
int sc_resolve_addr(const char *hostport, struct sockaddr_storage *sa, socklen_t *len) __attribute__((warn_unused_result));

#endif
