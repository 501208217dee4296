/* The sidecar's counters: one block per worker thread, summed when /metrics is scraped. */
#ifndef SEAM_SIDECAR_ADMIN_METRICS_H
#define SEAM_SIDECAR_ADMIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "certs/tlsfail.h"
#include "sidecar/policy/connlimit.h"
#include "sidecar/policy/policy.h"

/* Handshake failure reasons the sidecar names directly; the labels are the certs library's crt_tlsfail_t. */
#define SC_REASON_CLIENT_CERT_REQUIRED crt_tlsfail_slug(CRT_TLSFAIL_CLIENT_CERT_REQUIRED)
#define SC_REASON_HANDSHAKE_FAILED crt_tlsfail_slug(CRT_TLSFAIL_HANDSHAKE_FAILED)
#define SC_REASON_TIMEOUT crt_tlsfail_slug(CRT_TLSFAIL_TIMEOUT)

/* Upper bounds of seam_request_duration_seconds' buckets, in microseconds. */
#define SC_METRICS_DURATION_BUCKETS_US                                                                       \
    {                                                                                                        \
        1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000         \
    }
#define SC_METRICS_NUM_BUCKETS 12
#define SC_METRICS_MAX_REASONS 32 /* distinct handshake-error reasons tracked (CRT__TLSFAIL_END of them) */
#define SC_METRICS_STATUS_MAX 600 /* status codes 100..599 */

/*
 * One worker's counters. Only the owning worker writes them (relaxed atomic
 * adds, so a concurrent scrape reads whole values); nobody takes a lock.
 */
typedef enum { SC_DIRECTION_INBOUND = 0, SC_DIRECTION_OUTBOUND = 1 } sc_direction_t;

/*
 * What became of an opaque TCP connection. Outbound: passed through to an
 * address no route covers, tunneled to a mesh peer, or denied. Inbound (a
 * peer's tunnel): allowed or denied by the policy.
 */
typedef enum { SC_TCP_PASSTHROUGH, SC_TCP_DENY, SC_TCP_TUNNEL, SC_TCP_ALLOW, SC_TCP_NUM_DECISIONS } sc_tcp_decision_t;

typedef struct st_sc_metrics_t {
    sc_direction_t direction; /* set once by the owner before the worker starts; labels every series */
    uint64_t requests[SC_METRICS_STATUS_MAX];
    uint64_t duration_buckets[SC_METRICS_NUM_BUCKETS + 1]; /* last: +Inf */
    uint64_t duration_sum_us;
    uint64_t decisions[3]; /* indexed by sc_decision_t */
    uint64_t handshakes[2]; /* [resumed] */
    uint64_t handshake_errors[SC_METRICS_MAX_REASONS];
    int64_t connections_active;
    uint64_t connections_rejected[SC_REFUSE_NUM_REASONS]; /* closed at once by the connection budget */
    uint64_t stream_rate_closes;
    /* outbound only: mesh (upstream) connections opened and currently open */
    uint64_t tcp_connections[SC_TCP_NUM_DECISIONS]; /* opaque TCP connections, by sc_tcp_decision_t */
    uint64_t tcp_bytes;                             /* their bytes, both ways */
    uint64_t upstream_connections_opened;
    int64_t upstream_connections_active;
} sc_metrics_t;

/* The index of a handshake-error reason slug (its crt_tlsfail_t; unknown slugs map to "handshake-failed"). */
size_t sc_metrics_reason_index(const char *reason);

void sc_metrics_count_request(sc_metrics_t *m, int status, uint64_t duration_us);
void sc_metrics_count_decision(sc_metrics_t *m, sc_decision_t decision);
void sc_metrics_count_handshake(sc_metrics_t *m, int resumed);
void sc_metrics_count_handshake_error(sc_metrics_t *m, const char *reason);
void sc_metrics_connection_delta(sc_metrics_t *m, int delta);
void sc_metrics_count_rejection(sc_metrics_t *m, sc_refuse_reason_t reason);
void sc_metrics_count_stream_rate_close(sc_metrics_t *m);
void sc_metrics_count_tcp(sc_metrics_t *m, sc_tcp_decision_t decision, uint64_t bytes);
/* "passthrough", "deny", "tunnel", "allow": the label value, and the access log's decision */
const char *sc_metrics_tcp_decision_name(sc_tcp_decision_t decision);
void sc_metrics_upstream_connection_delta(sc_metrics_t *m, int delta); /* +1 also counts an opened one */

/* Facts of the process that are not per-worker counters. */
typedef struct st_sc_metrics_process_t {
    double cert_expiry; /* Unix time of the leaf's notAfter; 0 when none */
    uint64_t rotations_ok;
    uint64_t rotations_failed;
    uint64_t policy_reloads_ok;
    uint64_t policy_reloads_failed;
    uint64_t connections_limit[2]; /* each data listener's budget, by sc_direction_t; 0 while it does not run */
} sc_metrics_process_t;

/*
 * Renders the Prometheus text format of the sum of workers[0..n) (per direction) plus proc
 * into a new heap string (*out, length *out_len; caller frees). Returns 0 or SC_E_NOMEM.
 */
int sc_metrics_render(sc_metrics_t *const *workers, size_t n, const sc_metrics_process_t *proc, char **out,
                      size_t *out_len) __attribute__((warn_unused_result));

#endif
