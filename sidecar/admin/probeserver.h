/* The probe listener (--probe-listen): kubelet's rewritten probes of the app, and nothing else. */
#ifndef SEAM_SIDECAR_ADMIN_PROBESERVER_H
#define SEAM_SIDECAR_ADMIN_PROBESERVER_H

#include <uv.h>

#include "sidecar/policy/appprobe.h"
#include "sidecar/policy/config.h"
#include "sidecar/admin/localhttp.h"

#define SC_PROBE_CONNS_MAX 32 /* probe-listener connections open at once, each with at most one check of the app
                                 in flight; more are closed at once (inside SC_FD_RESERVE) */

typedef struct st_sc_probe_server_t {
    uv_loop_t *loop;
    sc_app_probes_t probes; /* --app-probes */
    sc_localhttp_t http;
} sc_probe_server_t;

/*
 * Loads --app-probes and binds --probe-listen on loop, when cfg gives one;
 * draining (the process's flag) closes connections after their answer.
 * Returns 0, SC_E_USAGE, SC_E_ADDRESS or SC_E_LISTEN with err.
 */
int sc_probe_start(sc_probe_server_t *p, uv_loop_t *loop, const sc_config_t *cfg, const int *draining, char *err,
                   size_t err_cap) __attribute__((warn_unused_result));

/* Stops accepting probe connections; checks in flight finish or die with the loop. */
void sc_probe_stop(sc_probe_server_t *p);

#endif
