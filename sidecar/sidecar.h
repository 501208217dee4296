/* The seam-sidecar process: wires config, identity, policy, inbound workers and the admin endpoint. */
#ifndef SEAM_SIDECAR_SIDECAR_H
#define SEAM_SIDECAR_SIDECAR_H

#include <time.h>
#include <uv.h>

#include "sidecar/admin/admin.h"
#include "sidecar/policy/config.h"
#include "sidecar/mesh/inbound.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/mesh/outbound.h"
#include "sidecar/policy/policy.h"
#include "sidecar/admin/probeserver.h"
#include "sidecar/identity/renewal.h"
#include "sidecar/identity/tls.h"

#define SC_POLICY_RELOAD_DEBOUNCE_MS 100 /* a burst of file events becomes one reload */
#define SC_IDENTITY_RELOAD_DEBOUNCE_MS 500 /* certificate and key are often written one after the other */
#define SC_DRAIN_POLL_MS 50              /* how often the main loop checks that workers stopped */

/* The process's main-thread state. Workers never touch it. */
typedef struct st_sc_sidecar_t {
    const sc_config_t *cfg;
    uv_loop_t main_loop;
    uv_loop_t *loop;
    time_t started_at;
    sc_tls_t *tls;       /* current identity snapshot (main thread's reference); NULL until seam-ca issued one */
    int ca_mode;         /* the identity comes from seam-ca */
    sc_renewal_t renewal; /* CA mode: bootstrap, renewal, bundle refresh */
    sc_policy_t *policy; /* current policy (main thread's reference) */
    time_t policy_loaded_at;
    int has_inbound;
    sc_inbound_t inbound;
    int has_outbound;
    sc_outbound_t outbound;
    sc_routes_t *routes; /* current routes (main thread's reference); NULL without outbound */
    uv_fs_event_t routes_watch;
    int routes_watching;
    uv_timer_t routes_debounce;
    int draining;
    int start_failed; /* CA mode: the listeners could not start with the first certificate; the loop stops */
    sc_metrics_process_t proc;
    sc_admin_t admin;        /* the admin endpoint */
    sc_probe_server_t probe; /* --probe-listen: kubelet's probes of the app */
    /* signals, file watch, timers */
    uv_signal_t sigterm, sigint, sighup;
    uv_fs_event_t policy_watch;
    int policy_watching;
    uv_timer_t policy_debounce;
    uv_timer_t drain_poll;
    uv_fs_event_t identity_watch[3]; /* directories of --cert, --key, --bundle */
    size_t num_identity_watches;
    uv_timer_t identity_debounce;
    time_t last_rotation; /* last successful certificate reload; 0: none */
    char last_identity_error[1400]; /* the last refused reload's message; a file change repeating it is not counted again */
} sc_sidecar_t;

/*
 * Makes tls (the caller's reference, taken over) the identity for new
 * handshakes on every worker; live connections keep theirs. The first one
 * also starts the listeners. Main thread only.
 */
void sc_sidecar_publish_tls(sc_sidecar_t *sc, sc_tls_t *tls);

/* Runs the sidecar until it has drained after SIGTERM. Returns the process exit code (0, or 1 on start-up failure). */
int sc_sidecar_run(const sc_config_t *cfg);

#endif
