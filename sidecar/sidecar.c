/* The seam-sidecar process: start-up, policy and certificate reloads (SIGHUP, file watch) and drain (SIGTERM). */
#include "sidecar/sidecar.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/log.h"
#include "sidecar/policy/connlimit.h"

/* The TLS hooks of every snapshot: inbound (server) handshakes report to the inbound side, outbound (client)
   ones to the mesh client. */
static const sc_tls_hooks_t tls_hooks = {.on_verify = sc_inbound_on_tls_verify,
                                         .on_info = sc_inbound_on_tls_info,
                                         .client_expected_id = sc_upstream_expected_id,
                                         .on_client_verify = sc_upstream_on_verify,
                                         .on_client_session = sc_upstream_on_session,
                                         .on_client_info = sc_upstream_on_info};

static void reload_policy(sc_sidecar_t *sc, const char *why)
{
    sc_policy_t *policy = NULL;
    sc_policy_error_t perr;
    char line[512];

    if (sc->cfg->policy[0] == '\0' || sc->draining)
        return; /* draining workers may already have closed their mailboxes */
    if (sc_policy_load_file(sc->cfg->policy, &policy, &perr) != 0) {
        sc_policy_error_format(sc->cfg->policy, &perr, line, sizeof(line));
        ++sc->proc.policy_reloads_failed;
        cmn_log_error("policy reload (%s) refused, the previous policy stays in force: %s", why, line);
        return;
    }
    if (strcmp(sc_policy_json(policy), sc_policy_json(sc->policy)) == 0 && strcmp(why, "SIGHUP") != 0) {
        sc_policy_release(policy); /* a touch or an unrelated file in the directory */
        return;
    }
    if (sc->has_inbound)
        sc_inbound_publish_policy(&sc->inbound, policy);
    sc_policy_release(sc->policy);
    sc->policy = policy;
    sc->policy_loaded_at = time(NULL);
    ++sc->proc.policy_reloads_ok;
    cmn_log_info("policy reloaded (%s) from %s: mode %s, %zu rule(s)", why, sc->cfg->policy,
                 sc_policy_mode(policy) == SC_POLICY_AUDIT ? "audit" : "enforce", sc_policy_num_rules(policy));
}

/*
 * Counts and logs a refused certificate reload, once per distinct cause when the
 * trigger is a file change: the sidecar's own log files may live in the watched
 * directory, and logging a refusal must not trigger the next one.
 */
static void refuse_identity(sc_sidecar_t *sc, const char *why, const char *msg)
{
    if (strcmp(why, "SIGHUP") != 0 && strcmp(msg, sc->last_identity_error) == 0)
        return;
    snprintf(sc->last_identity_error, sizeof(sc->last_identity_error), "%s", msg);
    ++sc->proc.rotations_failed;
    cmn_log_error("certificate reload (%s) refused%s", why, msg);
}

/* Re-reads the static identity files; a snapshot that verifies and keeps the identity replaces the current one. */
static void reload_identity(sc_sidecar_t *sc, const char *why)
{
    sc_tls_source_t src = {sc->cfg->cert, sc->cfg->key, sc->cfg->bundle};
    sc_tls_t *tls = NULL;
    char err[1024], msg[1400];

    if (sc->draining || sc->ca_mode)
        return; /* seam-ca's certificates renew on their own schedule */
    if (sc_tls_load(&src, &tls_hooks, time(NULL), &tls, err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), ", the current certificate stays: %s", err);
        refuse_identity(sc, why, msg);
        return;
    }
    if (strcmp(tls->spiffe_id, sc->tls->spiffe_id) != 0) {
        snprintf(msg, sizeof(msg), ": --cert %s names %s, but this sidecar is %s", sc->cfg->cert, tls->spiffe_id,
                 sc->tls->spiffe_id);
        refuse_identity(sc, why, msg);
        sc_tls_release(tls);
        return;
    }
    sc->last_identity_error[0] = '\0';
    if (strcmp(tls->chain_pem, sc->tls->chain_pem) == 0 && strcmp(tls->bundle_pem, sc->tls->bundle_pem) == 0) {
        sc_tls_release(tls); /* nothing changed */
        return;
    }
    cmn_log_info("certificate reloaded (%s): %s serial %s -> %s, valid until %lld", why, tls->spiffe_id,
                 sc->tls->leaf.serial, tls->leaf.serial, (long long)tls->leaf.not_after);
    sc->last_rotation = time(NULL);
    ++sc->proc.rotations_ok;
    sc_sidecar_publish_tls(sc, tls);
}

static int routes_equal(const sc_routes_t *a, const sc_routes_t *b)
{
    if (sc_routes_count(a) != sc_routes_count(b))
        return 0;
    for (size_t i = 0; i != sc_routes_count(a); ++i) {
        const sc_route_t *x = sc_routes_at(a, i), *y = sc_routes_at(b, i);
        if (strcmp(x->host, y->host) != 0 || strcmp(x->upstream_host, y->upstream_host) != 0 ||
            x->upstream_port != y->upstream_port || strcmp(x->identity, y->identity) != 0)
            return 0;
    }
    return 1;
}

static void reload_routes(sc_sidecar_t *sc, const char *why)
{
    sc_routes_t *routes = NULL;
    char err[1024];

    if (!sc_config_has_outbound(sc->cfg) || sc->draining)
        return;
    if (sc_routes_load_file(sc->cfg->routes, &routes, err, sizeof(err)) != 0) {
        cmn_log_error("routes reload (%s) refused, the previous routes stay in force: %s", why, err);
        return;
    }
    if (strcmp(why, "SIGHUP") != 0 && routes_equal(routes, sc->routes)) {
        sc_routes_release(routes); /* a touch, or another file in the directory changed */
        return;
    }
    if (sc->has_outbound)
        sc_outbound_publish_routes(&sc->outbound, routes);
    sc_routes_release(sc->routes);
    sc->routes = routes;
    cmn_log_info("routes reloaded (%s) from %s: %zu route(s)", why, sc->cfg->routes, sc_routes_count(routes));
}

static void on_routes_debounce(uv_timer_t *timer)
{
    reload_routes(timer->data, "file change");
}

static void on_routes_dir_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    sc_sidecar_t *sc = handle->data;
    (void)filename, (void)events;
    if (status == 0)
        uv_timer_start(&sc->routes_debounce, on_routes_debounce, SC_POLICY_RELOAD_DEBOUNCE_MS, 0);
}

static void start_routes_watch(sc_sidecar_t *sc)
{
    char copy[SC_PATH_MAX];
    int rc;

    uv_timer_init(sc->loop, &sc->routes_debounce);
    sc->routes_debounce.data = sc;
    if (!sc_config_has_outbound(sc->cfg))
        return;
    snprintf(copy, sizeof(copy), "%s", sc->cfg->routes);
    const char *dir = dirname(copy);
    uv_fs_event_init(sc->loop, &sc->routes_watch);
    sc->routes_watch.data = sc;
    if ((rc = uv_fs_event_start(&sc->routes_watch, on_routes_dir_event, dir, 0)) != 0) {
        cmn_log_warn("cannot watch %s for routes changes (%s); SIGHUP still reloads", dir, uv_strerror(rc));
        uv_close((uv_handle_t *)&sc->routes_watch, NULL);
        return;
    }
    sc->routes_watching = 1;
}

static void on_identity_debounce(uv_timer_t *timer)
{
    reload_identity(timer->data, "file change");
}

static void on_identity_dir_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    sc_sidecar_t *sc = handle->data;
    (void)filename, (void)events;
    if (status == 0)
        uv_timer_start(&sc->identity_debounce, on_identity_debounce, SC_IDENTITY_RELOAD_DEBOUNCE_MS, 0);
}

/* Watches the directories of --cert, --key and --bundle (each once). */
static void start_identity_watch(sc_sidecar_t *sc)
{
    const char *paths[] = {sc->cfg->cert, sc->cfg->key, sc->cfg->bundle};
    char dirs[3][SC_PATH_MAX];
    int rc;

    uv_timer_init(sc->loop, &sc->identity_debounce);
    sc->identity_debounce.data = sc;
    for (size_t i = 0; i != 3; ++i) {
        char copy[SC_PATH_MAX];
        snprintf(copy, sizeof(copy), "%s", paths[i]);
        snprintf(dirs[i], sizeof(dirs[i]), "%s", dirname(copy));
        int seen = 0;
        for (size_t j = 0; j != i; ++j)
            seen |= strcmp(dirs[i], dirs[j]) == 0;
        if (seen)
            continue;
        uv_fs_event_t *h = &sc->identity_watch[sc->num_identity_watches];
        uv_fs_event_init(sc->loop, h);
        h->data = sc;
        if ((rc = uv_fs_event_start(h, on_identity_dir_event, dirs[i], 0)) != 0) {
            cmn_log_warn("cannot watch %s for certificate changes (%s); SIGHUP still reloads", dirs[i], uv_strerror(rc));
            uv_close((uv_handle_t *)h, NULL);
            continue;
        }
        ++sc->num_identity_watches;
    }
}

static void on_policy_debounce(uv_timer_t *timer)
{
    reload_policy(timer->data, "file change");
}

static void on_policy_dir_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    sc_sidecar_t *sc = handle->data;
    (void)filename, (void)events;
    if (status != 0)
        return;
    /* any change in the directory counts: a ConfigMap update swaps the "..data" symlink, not the file */
    uv_timer_start(&sc->policy_debounce, on_policy_debounce, SC_POLICY_RELOAD_DEBOUNCE_MS, 0);
}

static void start_policy_watch(sc_sidecar_t *sc)
{
    char copy[SC_PATH_MAX];
    int rc;

    uv_timer_init(sc->loop, &sc->policy_debounce);
    sc->policy_debounce.data = sc;
    if (sc->cfg->policy[0] == '\0')
        return;
    snprintf(copy, sizeof(copy), "%s", sc->cfg->policy);
    const char *dir = dirname(copy);
    uv_fs_event_init(sc->loop, &sc->policy_watch);
    sc->policy_watch.data = sc;
    if ((rc = uv_fs_event_start(&sc->policy_watch, on_policy_dir_event, dir, 0)) != 0) {
        cmn_log_warn("cannot watch %s for policy changes (%s); SIGHUP still reloads", dir, uv_strerror(rc));
        uv_close((uv_handle_t *)&sc->policy_watch, NULL);
        return;
    }
    sc->policy_watching = 1;
}

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_drain_poll(uv_timer_t *timer)
{
    sc_sidecar_t *sc = timer->data;
    if (sc->has_inbound && !sc_worker_group_stopped(&sc->inbound.group))
        return;
    if (sc->has_outbound && !sc_worker_group_stopped(&sc->outbound.group))
        return;
    if (sc->has_inbound) {
        size_t cut = sc_worker_group_open_conns(&sc->inbound.group);
        if (cut != 0)
            cmn_log_warn("drain: %zu connection(s) were still open at the deadline", cut);
    }
    cmn_log_info("drained; exiting");
    sc->draining = 2;
    sc_admin_stop(&sc->admin);
    sc_probe_stop(&sc->probe);
    close_if_open((uv_handle_t *)&sc->drain_poll);
    close_if_open((uv_handle_t *)&sc->policy_debounce);
    if (!sc->ca_mode)
        close_if_open((uv_handle_t *)&sc->identity_debounce);
    close_if_open((uv_handle_t *)&sc->routes_debounce);
    if (sc->routes_watching)
        close_if_open((uv_handle_t *)&sc->routes_watch);
    for (size_t i = 0; i != sc->num_identity_watches; ++i)
        close_if_open((uv_handle_t *)&sc->identity_watch[i]);
    if (sc->policy_watching)
        close_if_open((uv_handle_t *)&sc->policy_watch);
    close_if_open((uv_handle_t *)&sc->sigterm);
    close_if_open((uv_handle_t *)&sc->sigint);
    close_if_open((uv_handle_t *)&sc->sighup);
    uv_stop(sc->loop);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    sc_sidecar_t *sc = handle->data;
    if (signum == SIGHUP) {
        reload_identity(sc, "SIGHUP");
        reload_policy(sc, "SIGHUP");
        reload_routes(sc, "SIGHUP");
        return;
    }
    if (sc->draining)
        return;
    sc->draining = 1;
    if (sc->ca_mode)
        sc_renewal_stop(&sc->renewal);
    cmn_log_info("%s: draining (up to %lld ms): /ready now answers 503, listeners close", strsignal(signum),
                 (long long)sc->cfg->drain_timeout_ms);
    if (sc->has_inbound)
        sc_worker_group_drain(&sc->inbound.group);
    if (sc->has_outbound)
        sc_worker_group_drain(&sc->outbound.group);
    uv_timer_init(sc->loop, &sc->drain_poll);
    sc->drain_poll.data = sc;
    uv_timer_start(&sc->drain_poll, on_drain_poll, 0, SC_DRAIN_POLL_MS);
}

static int start_signal(sc_sidecar_t *sc, uv_signal_t *h, int signum)
{
    uv_signal_init(sc->loop, h);
    h->data = sc;
    return uv_signal_start(h, on_signal, signum);
}

static uint64_t rlim_value(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

/*
 * Sets each data listener's connection budget from --max-connections and
 * RLIMIT_NOFILE (connlimit.h), raising the soft limit towards the hard one
 * when the budgets need it. Returns 0, or -1 (logged) when the descriptor
 * limit leaves a listener nothing.
 */
static int plan_connections(sc_sidecar_t *sc)
{
    const sc_config_t *cfg = sc->cfg;
    sc_connlimit_want_t want = {.max_connections = (uint64_t)cfg->max_connections,
                                .inbound_workers = sc->has_inbound ? (size_t)cfg->threads : 0,
                                .outbound_workers = sc->has_outbound ? (size_t)cfg->threads : 0};
    sc_connlimit_plan_t plan;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        cmn_log_error("cannot read RLIMIT_NOFILE: %s", strerror(errno));
        return -1;
    }
    want.nofile_soft = rlim_value(rl.rlim_cur);
    want.nofile_hard = rlim_value(rl.rlim_max);
    if (sc_connlimit_plan(&want, &plan) != 0) {
        cmn_log_error("RLIMIT_NOFILE is %llu: too few descriptors for a connection budget (the sidecar keeps %d for "
                      "itself and some per worker for the app and the mesh); raise it (ulimit -n)",
                      (unsigned long long)want.nofile_soft, SC_FD_RESERVE);
        return -1;
    }
    if (plan.nofile != want.nofile_soft) {
        rl.rlim_cur = plan.nofile == UINT64_MAX ? RLIM_INFINITY : (rlim_t)plan.nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            cmn_log_warn("cannot raise RLIMIT_NOFILE from %llu to %llu (%s)", (unsigned long long)want.nofile_soft,
                         (unsigned long long)plan.nofile, strerror(errno));
            want.nofile_hard = want.nofile_soft;
            if (sc_connlimit_plan(&want, &plan) != 0)
                return -1;
        }
    }
    if (plan.clamped)
        cmn_log_warn("RLIMIT_NOFILE (%llu) is too low for --max-connections %d: inbound holds %llu connections, "
                     "outbound %llu; raise the descriptor limit for more",
                     (unsigned long long)plan.nofile, cfg->max_connections, (unsigned long long)plan.inbound_max,
                     (unsigned long long)plan.outbound_max);
    if (sc->has_inbound)
        sc_connlimit_init(&sc->inbound.limit, plan.inbound_max, plan.nofile);
    if (sc->has_outbound)
        sc_connlimit_init(&sc->outbound.limit, plan.outbound_max, plan.nofile);
    sc->proc.connections_limit[SC_DIRECTION_INBOUND] = plan.inbound_max;
    sc->proc.connections_limit[SC_DIRECTION_OUTBOUND] = plan.outbound_max;
    return 0;
}

/* Binds and starts the inbound and outbound workers around the first certificate. Returns 0 or -1 (logged). */
static int start_listeners(sc_sidecar_t *sc)
{
    const sc_config_t *cfg = sc->cfg;
    char err[1024];
    _Static_assert(SC_MAX_REQUEST_HEADERS_LIMIT <= SC_FRONT_HEADER_FIELDS_LIMIT, "--max-request-headers beyond the front end");
    const sc_front_limits_t limits = {(size_t)cfg->max_request_headers_kb * 1024, (size_t)cfg->max_request_headers};

    if (strcmp(cfg->inbound, "off") != 0) {
        if (sc_inbound_init(&sc->inbound, cfg->inbound, cfg->app, sc_config_app_protocol(cfg), (size_t)cfg->threads,
                            (uint64_t)cfg->drain_timeout_ms, (uint64_t)cfg->app_timeout_ms,
                            (uint64_t)cfg->stream_idle_timeout_ms, (uint64_t)cfg->handshake_timeout_ms,
                            (uint64_t)cfg->idle_timeout_ms, sc->tls,
                            sc->policy, err, sizeof(err)) != 0) {
            cmn_log_error("%s", err);
            return -1;
        }
        sc_worker_group_set_front_limits(&sc->inbound.group, &limits);
        /* the listeners that answer only on loopback are the sidecar's, never a tunnel's destination */
        const char *own[] = {cfg->admin, sc_config_outbound_addr(cfg), cfg->probe_listen};
        for (size_t i = 0; i != sizeof(own) / sizeof(own[0]); ++i) {
            char host[SC_ADDR_MAX];
            uint16_t port;
            if (own[i][0] != '\0' && strcmp(own[i], "off") != 0 && sc_addr_split(own[i], host, sizeof(host), &port) == 0)
                sc_inbound_refuse_tunnel_port(&sc->inbound, port);
        }
        sc->has_inbound = 1;
    }
    if (sc_config_has_outbound(cfg)) {
        if (sc_outbound_init(&sc->outbound, sc_config_outbound_addr(cfg), (size_t)cfg->threads,
                             (uint64_t)cfg->upstream_timeout_ms, (uint64_t)cfg->upstream_idle_timeout_ms,
                             (uint64_t)cfg->stream_idle_timeout_ms, (uint64_t)cfg->drain_timeout_ms, sc->tls,
                             sc->routes, err, sizeof(err)) != 0) {
            cmn_log_error("%s", err);
            return -1;
        }
        sc_outbound_set_transparent(&sc->outbound, cfg->transparent);
        sc_outbound_set_tcp(&sc->outbound, (uint64_t)cfg->detect_timeout_ms, strcmp(cfg->outbound_unknown, "deny") == 0);
        sc_worker_group_set_front_limits(&sc->outbound.group, &limits);
        sc->has_outbound = 1;
    }
    if (plan_connections(sc) != 0)
        return -1;
    if ((sc->has_inbound && sc_worker_group_start(&sc->inbound.group) != 0) ||
        (sc->has_outbound && sc_worker_group_start(&sc->outbound.group) != 0)) {
        cmn_log_error("cannot start worker threads");
        return -1;
    }
    cmn_log_info("identity %s (serial %s); inbound %s -> app %s with %d thread(s); admin %s; policy %s (%zu rule(s), %s)",
                 sc->tls->spiffe_id, sc->tls->leaf.serial, sc->has_inbound ? cfg->inbound : "off", cfg->app,
                 cfg->threads, cfg->admin, sc_policy_source(sc->policy), sc_policy_num_rules(sc->policy),
                 sc_policy_mode(sc->policy) == SC_POLICY_AUDIT ? "audit" : "enforce");
    if (sc->has_outbound)
        cmn_log_info("outbound %s: %zu route(s) from %s; upstream timeout %lld ms, idle %lld ms",
                     sc_config_outbound_addr(cfg), sc_routes_count(sc->routes), cfg->routes,
                     (long long)cfg->upstream_timeout_ms, (long long)cfg->upstream_idle_timeout_ms);
    cmn_log_info("connection budget: inbound %llu, outbound %llu (0: off); handshake deadline %lld ms",
                 (unsigned long long)sc->proc.connections_limit[SC_DIRECTION_INBOUND],
                 (unsigned long long)sc->proc.connections_limit[SC_DIRECTION_OUTBOUND],
                 (long long)cfg->handshake_timeout_ms);
    return 0;
}

void sc_sidecar_publish_tls(sc_sidecar_t *sc, sc_tls_t *tls)
{
    if (sc->draining || sc->start_failed) { /* nothing half started gets a snapshot while the loop winds down */
        sc_tls_release(tls);
        return;
    }
    if (sc->tls == NULL) {
        sc->tls = tls;
        if (start_listeners(sc) != 0) {
            /* a CA-mode sidecar that cannot bind is as dead as a static one: let the supervisor see it */
            sc->start_failed = 1;
            uv_stop(sc->loop);
        }
        return;
    }
    if (sc->has_inbound)
        sc_inbound_publish_tls(&sc->inbound, tls);
    if (sc->has_outbound)
        sc_worker_group_post_tls(&sc->outbound.group, tls);
    sc_tls_release(sc->tls);
    sc->tls = tls;
}

/* The admin endpoint's view of the workers' counters (sc_admin_view_t). */
static size_t worker_metrics(void *data, sc_metrics_t **list, size_t cap)
{
    sc_sidecar_t *sc = data;
    size_t n = 0;
    if (sc->has_inbound)
        for (size_t i = 0; i != sc->inbound.num_workers && n != cap; ++i)
            list[n++] = &sc->inbound.workers[i].metrics;
    if (sc->has_outbound)
        for (size_t i = 0; i != sc->outbound.num_workers && n != cap; ++i)
            list[n++] = &sc->outbound.workers[i].metrics;
    return n;
}

/* POST /rotate (sc_admin_view_t). */
static void rotate_now(void *data)
{
    sc_sidecar_t *sc = data;
    sc_renewal_force(&sc->renewal);
}

/* The renewal's way to publish (sc_renewal_host_t). */
static void publish_renewed(void *data, sc_tls_t *fresh)
{
    sc_sidecar_publish_tls(data, fresh);
}

int sc_sidecar_run(const sc_config_t *cfg)
{
    static sc_sidecar_t sidecar; /* large (per-worker metrics); lives for the whole process */
    sc_sidecar_t *sc = &sidecar;
    sc_tls_source_t src = {cfg->cert, cfg->key, cfg->bundle};
    sc_policy_error_t perr;
    char err[1024];

    memset(sc, 0, sizeof(*sc));
    sc->cfg = cfg;
    sc->ca_mode = sc_config_ca_mode(cfg);
    sc->started_at = time(NULL);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&sc->main_loop);
    sc->loop = &sc->main_loop;

    if (!sc->ca_mode && sc_tls_load(&src, &tls_hooks, time(NULL), &sc->tls, err, sizeof(err)) != 0) {
        cmn_log_error("%s", err);
        return 1;
    }
    if (cfg->policy[0] != '\0') {
        if (sc_policy_load_file(cfg->policy, &sc->policy, &perr) != 0) {
            sc_policy_error_format(cfg->policy, &perr, err, sizeof(err));
            cmn_log_error("--policy: %s", err);
            return 1;
        }
    } else if (sc_policy_new_empty("(no --policy: every request is denied)", &sc->policy) != 0) {
        cmn_log_error("out of memory");
        return 1;
    }
    sc->policy_loaded_at = time(NULL);
    if (sc_config_has_outbound(cfg) && sc_routes_load_file(cfg->routes, &sc->routes, err, sizeof(err)) != 0) {
        cmn_log_error("--routes: %s", err);
        return 1;
    }
    const sc_admin_view_t view = {.cfg = cfg,
                                  .tls = &sc->tls,
                                  .renewal = sc->ca_mode ? &sc->renewal : NULL,
                                  .policy = &sc->policy,
                                  .policy_loaded_at = &sc->policy_loaded_at,
                                  .last_rotation = &sc->last_rotation,
                                  .proc = &sc->proc,
                                  .draining = &sc->draining,
                                  .worker_metrics = worker_metrics,
                                  .rotate = rotate_now,
                                  .data = sc};
    if (sc_admin_start(&sc->admin, sc->loop, &view, err, sizeof(err)) != 0 ||
        sc_probe_start(&sc->probe, sc->loop, cfg, &sc->draining, err, sizeof(err)) != 0) {
        cmn_log_error("%s", err);
        return 1;
    }
    if (start_signal(sc, &sc->sigterm, SIGTERM) != 0 || start_signal(sc, &sc->sigint, SIGINT) != 0 ||
        start_signal(sc, &sc->sighup, SIGHUP) != 0) {
        cmn_log_error("cannot install signal handlers");
        return 1;
    }
    start_policy_watch(sc);
    start_routes_watch(sc);
    if (sc->ca_mode) {
        /* the listeners start when the first certificate arrives; until then connections are refused */
        const sc_renewal_host_t host = {.loop = sc->loop,
                                        .cfg = cfg,
                                        .hooks = &tls_hooks,
                                        .current = &sc->tls,
                                        .publish = publish_renewed,
                                        .rotations_ok = &sc->proc.rotations_ok,
                                        .rotations_failed = &sc->proc.rotations_failed,
                                        .data = sc};
        if (sc_renewal_start(&sc->renewal, &host, err, sizeof(err)) != 0) {
            cmn_log_error("%s", err);
            return 1;
        }
    } else {
        start_identity_watch(sc);
        if (start_listeners(sc) != 0)
            return 1;
    }
    uv_run(sc->loop, UV_RUN_DEFAULT);
    return sc->start_failed ? 1 : 0;
}
