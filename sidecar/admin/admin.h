/* The admin endpoint on loopback: readiness, liveness, metrics, certificates, config, policy, /rotate. */
#ifndef SEAM_SIDECAR_ADMIN_ADMIN_H
#define SEAM_SIDECAR_ADMIN_ADMIN_H

#include <time.h>
#include <uv.h>

#include "sidecar/policy/config.h"
#include "sidecar/admin/localhttp.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/policy/policy.h"
#include "sidecar/identity/renewal.h"
#include "sidecar/identity/tls.h"

#define SC_ADMIN_CONNS_MAX 32 /* admin connections open at once; more are closed at once (inside SC_FD_RESERVE) */

/*
 * What the endpoint shows: the process's state, read (never written) on the
 * main thread when a request asks, through pointers into the owner's record.
 */
typedef struct st_sc_admin_view_t {
    const sc_config_t *cfg;
    sc_tls_t *const *tls;           /* the snapshot in force; NULL before the first certificate */
    const sc_renewal_t *renewal;    /* CA mode; NULL with static files */
    sc_policy_t *const *policy;
    const time_t *policy_loaded_at;
    const time_t *last_rotation;    /* static files: the last reload that took; 0 none */
    const sc_metrics_process_t *proc;
    const int *draining;
    /* every worker's counters, up to cap: returns how many it put in list */
    size_t (*worker_metrics)(void *data, sc_metrics_t **list, size_t cap);
    /* POST /rotate in CA mode: renew now */
    void (*rotate)(void *data);
    void *data;
} sc_admin_view_t;

typedef struct st_sc_admin_t {
    sc_admin_view_t view;
    sc_localhttp_t http;
} sc_admin_t;

/* Binds cfg->admin on loop, showing view (copied). Returns 0, SC_E_ADDRESS or SC_E_LISTEN with err. */
int sc_admin_start(sc_admin_t *admin, uv_loop_t *loop, const sc_admin_view_t *view, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/* Stops accepting admin connections. */
void sc_admin_stop(sc_admin_t *admin);

#endif
