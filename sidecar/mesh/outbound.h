/* The outbound side: plain HTTP from the app, routed and sent over pooled HTTP/2 mTLS mesh connections. */
#ifndef SEAM_SIDECAR_MESH_OUTBOUND_H
#define SEAM_SIDECAR_MESH_OUTBOUND_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "sidecar/admin/accesslog.h"
#include "sidecar/policy/config.h"
#include "sidecar/policy/error.h"
#include "sidecar/http/front.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/policy/routes.h"
#include "sidecar/identity/tls.h"
#include "sidecar/mesh/upstream.h"
#include "sidecar/mesh/worker.h"

#define SC_ROUTES_FILE_MAX (4 * 1024 * 1024)   /* largest routes file read */
#define SC_ORIGINAL_DST_TEXT_MAX 64            /* "[IPv6]:port" of a redirected connection's original destination */
#define SC_OUTBOUND_H2_IDLE_MS 10000           /* an h2c connection from the app without requests closes after this */

typedef struct st_sc_outbound_t sc_outbound_t;

/* One outbound worker: its loop, h2o context, listener, upstreams and counters (touched only on its thread). */
typedef struct st_sc_oworker_t {
    sc_worker_base_t base; /* loop, thread, listener, drain; num_conns counts app connections */
    sc_outbound_t *outbound;
    sc_front_t front;               /* HTTP/1.1 and h2c from the app */
    sc_upstream_env_t mesh;         /* pooled mTLS HTTP/2 connections to the upstreams */
    sc_routes_t *routes;            /* this worker's reference */
    sc_tls_t *tls;                  /* this worker's reference: new mesh connections use it */
    int original_dst_warned; /* --transparent: an unreadable original destination was logged once */
    h2o_timeout_t detect_timeout;   /* --detect-timeout: a redirected connection silent this long is TCP */
    sc_metrics_t metrics;
    sc_accesslog_t accesslog;
    sc_routes_t *mail_routes; /* new routes to take (under base.mailbox_lock); TLS snapshots go through base */
} sc_oworker_t;

struct st_sc_outbound_t {
    struct sockaddr_storage listen_addr;
    uint64_t upstream_timeout_ms;
    uint64_t idle_timeout_ms;
    int transparent; /* --transparent: route redirected connections by their original destination */
    int unknown_deny; /* --outbound-unknown deny: TCP to a destination no route covers is refused, not passed */
    sc_connlimit_t limit; /* --max-connections across the workers; the owner sets it before the start */
    sc_oworker_t *workers;
    size_t num_workers;
    sc_worker_group_t group; /* the same workers, for what goes to all of them */
};

/*
 * Reads and validates a routes file. Returns 0 and a snapshot with one
 * reference, or SC_E_IO / SC_E_CONFIG with err naming the file, route index and field.
 */
int sc_routes_load_file(const char *path, sc_routes_t **out, char *err, size_t err_cap) __attribute__((warn_unused_result));

/*
 * Formats an IPv4 or IPv6 socket address as "192.0.2.2:8080" or
 * "[2001:db8::2]:8080" (an IPv4-mapped IPv6 address as IPv4) into buf.
 * Returns 0, or -1 (buf "") for another family or a buffer too small.
 */
int sc_outbound_format_addr(const struct sockaddr *sa, char *buf, size_t cap);

/*
 * Chooses the route of a request on a connection the interception rules
 * redirected to the outbound listener (--transparent), original_dst being
 * where the app meant to connect: the route whose host is the original
 * destination's IP literal, else the one whose upstream is that IP:port,
 * else the one for the request's host (host may be NULL). IP literals are
 * compared as addresses, not text. Returns a route borrowed from routes, or
 * NULL: a destination without a route is never reached. Sets *by_dst to 1
 * when the original destination chose the route. No allocation, no I/O.
 */
const sc_route_t *sc_outbound_route_redirected(const sc_routes_t *routes, const struct sockaddr *original_dst,
                                               const char *host, size_t host_len, int *by_dst);

/*
 * Sets up num_workers workers listening (plain TCP, HTTP/1.1 and h2c) on
 * listen_addr, each with a reference to tls and routes. Binds every listener
 * before returning. The connection budget (out->limit) is left empty: set it
 * with sc_connlimit_init() before starting out->group. Returns 0 or
 * SC_E_ADDRESS / SC_E_LISTEN / SC_E_NOMEM with err.
 */
int sc_outbound_init(sc_outbound_t *out, const char *listen_addr, size_t num_workers, uint64_t upstream_timeout_ms,
                     uint64_t idle_timeout_ms, uint64_t stream_idle_ms, uint64_t drain_timeout_ms, sc_tls_t *tls,
                     sc_routes_t *routes, char *err, size_t err_cap) __attribute__((warn_unused_result));

/*
 * Turns routing by the original destination on or off (--transparent).
 * Call after sc_outbound_init and before the workers start.
 */
void sc_outbound_set_transparent(sc_outbound_t *out, int on);

/*
 * --transparent only: how long a redirected connection may stay silent before
 * it is taken for TCP (--detect-timeout), and whether TCP to a destination no
 * route covers passes through as it is (0) or is refused (1). Call before
 * the workers start.
 */
void sc_outbound_set_tcp(sc_outbound_t *out, uint64_t detect_timeout_ms, int unknown_deny);

/* Hands new routes to every worker; requests in flight keep what they started with. */
void sc_outbound_publish_routes(sc_outbound_t *out, sc_routes_t *routes);

/*
 * Starting, the front end's limits, TLS snapshots, the drain and the stop
 * check go to every worker alike: out->group (worker.h).
 */

#endif
