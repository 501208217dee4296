/* The inbound side: worker threads that terminate mTLS, apply the policy and proxy to the app. */
#ifndef SEAM_SIDECAR_MESH_INBOUND_H
#define SEAM_SIDECAR_MESH_INBOUND_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <h2o/socketpool.h>
#include <stddef.h>
#include <uv.h>

#include "sidecar/policy/error.h"
#include "sidecar/http/front.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/policy/policy.h"
#include "sidecar/admin/accesslog.h"
#include "sidecar/mesh/appclient.h"
#include "sidecar/policy/streamrate.h"
#include "sidecar/identity/tls.h"
#include "sidecar/mesh/upstream.h"
#include "sidecar/mesh/worker.h"

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
    sc_connlimit_t limit; /* --max-connections across the workers; the owner sets it before the start */
    sc_worker_t *workers;
    size_t num_workers;
    sc_worker_group_t group; /* the same workers, for what goes to all of them */
};

/* The server-side TLS hooks (sc_tls_hooks_t's on_verify and on_info) the inbound connections need. */
void sc_inbound_on_tls_verify(SSL *ssl, int rc, const crt_verify_result_t *res);
void sc_inbound_on_tls_info(const SSL *ssl, int where, int ret);

/*
 * Sets up num_workers workers listening on listen_addr ("0.0.0.0:15006") and
 * proxying to app_addr, each with a reference to tls and policy. Binds every
 * listener before returning, so an address in use fails here. A connection
 * must finish its TLS handshake within handshake_timeout_ms of its accept;
 * an HTTP/2 connection with no open stream closes after idle_timeout_ms.
 * The connection budget (in->limit) is left empty: set it with
 * sc_connlimit_init() before starting in->group. Returns 0, or
 * SC_E_ADDRESS / SC_E_LISTEN / SC_E_NOMEM with err.
 */
int sc_inbound_init(sc_inbound_t *in, const char *listen_addr, const char *app_addr, int app_protocol,
                    size_t num_workers, uint64_t drain_timeout_ms, uint64_t app_timeout_ms, uint64_t stream_idle_ms,
                    uint64_t handshake_timeout_ms, uint64_t idle_timeout_ms, sc_tls_t *tls, sc_policy_t *policy, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/*
 * Ports a peer's TCP tunnel may not reach on 127.0.0.1: the sidecar's own
 * listeners (admin, outbound, probes), which answer only on loopback. The
 * inbound listener's port is refused already. Call before the workers start.
 */
void sc_inbound_refuse_tunnel_port(sc_inbound_t *in, uint16_t port);


/* Hands a new policy to every worker (each takes its own reference); live requests keep deciding with the old one. */
void sc_inbound_publish_policy(sc_inbound_t *in, sc_policy_t *policy);

/*
 * Hands a new TLS snapshot to every worker for new handshakes (with the ALPN
 * list on its server context); live connections keep theirs. Starting, the
 * front end's limits, the drain and the stop check go to every worker alike:
 * in->group (worker.h).
 */
void sc_inbound_publish_tls(sc_inbound_t *in, sc_tls_t *tls);



#endif
