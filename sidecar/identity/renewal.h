/* Certificates from seam-ca: bootstrap with a token, renewal at half-life, trust-bundle refresh. */
#ifndef SEAM_SIDECAR_IDENTITY_RENEWAL_H
#define SEAM_SIDECAR_IDENTITY_RENEWAL_H

#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "certs/spiffe.h"
#include "sidecar/policy/config.h"
#include "sidecar/identity/rotation.h"
#include "sidecar/identity/tls.h"

#define SC_RENEWAL_DETAIL_MAX 1200

/*
 * What renewal needs from the process that runs it: the main loop, the
 * configuration, the snapshot in force, and where a new one goes. All of it
 * is used on the main thread only.
 */
typedef struct st_sc_renewal_host_t {
    uv_loop_t *loop;
    const sc_config_t *cfg;
    const sc_tls_hooks_t *hooks;   /* the TLS hooks of the snapshots it builds */
    sc_tls_t *const *current;      /* the snapshot in force; NULL before the first certificate */
    void (*publish)(void *data, sc_tls_t *fresh); /* takes over the reference */
    uint64_t *rotations_ok;        /* counted here, shown by the metrics */
    uint64_t *rotations_failed;
    void *data;
} sc_renewal_host_t;

/*
 * The main thread's view of the CA-issued identity. Exchanges with seam-ca
 * block, so each runs as one job on libuv's thread pool; the result comes
 * back to the main loop, which publishes it. One job at a time.
 */
typedef struct st_sc_renewal_t {
    sc_renewal_host_t host;
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1]; /* the identity this sidecar asks for */
    char ca_id[CRT_SPIFFE_ID_MAX + 1];     /* the identity seam-ca must present */
    sc_rotation_t rot;
    uv_timer_t sign_timer;   /* next issuance or renewal */
    uv_timer_t bundle_timer; /* next GET /v1/bundle */
    uv_timer_t expiry_timer; /* fires at notAfter, then once a minute while expired */
    int busy;                /* a job is on the thread pool */
    int sign_wanted;         /* POST /rotate or a bundle change asked for a renewal while busy */
    int bundle_wanted;       /* the bundle poll came due while busy */
    int stopped;
    char last_error[SC_RENEWAL_DETAIL_MAX];   /* the last failed attempt ("" after a success) */
    time_t bundle_refreshed_at;               /* last successful GET /v1/bundle; 0: none */
    uint64_t bundle_failures;                 /* consecutive failed refreshes */
} sc_renewal_t;

/*
 * Decides the identity to ask for (--spiffe-id, or the Kubernetes token's
 * subject in --trust-domain) and starts: the first request to seam-ca goes out
 * at once. Returns 0, or -1 with one line in err (exit 1: nothing can be asked).
 */
int sc_renewal_start(sc_renewal_t *r, const sc_renewal_host_t *host, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/* POST /rotate: renew now (after the job in flight, if any). */
void sc_renewal_force(sc_renewal_t *r);

/* Stops the timers; a job in flight finishes and its result is dropped. */
void sc_renewal_stop(sc_renewal_t *r);

/* Wall-clock time of the next planned attempt (renewal or retry); 0 when one is running or due now. */
time_t sc_renewal_next_attempt(const sc_renewal_t *r);

#endif
