/* The admin endpoint: readiness, liveness, metrics, certificates, config and policy, on loopback. */
#include "sidecar/admin/admin.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/info.h"
#include "common/log.h"
#include "common/version.h"
#include "sidecar/admin/adminguard.h"

typedef struct st_sc_admin_handler_t {
    h2o_handler_t super;
    const sc_admin_view_t *view;
} sc_admin_handler_t;

/* Sends obj as JSON and drops the reference. */
static void send_json(h2o_req_t *req, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (text == NULL) {
        sc_localhttp_send_text(req, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    size_t len = strlen(text);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(body, text, len);
    body[len] = '\n';
    free(text);
    sc_localhttp_send(req, 200, "OK", "application/json", body, len + 1);
}

static json_t *time_json(time_t t)
{
    char buf[32];
    crt_format_time(t, buf, sizeof(buf));
    return json_string(buf);
}

/* Splits PEM text into an array of one PEM string per certificate. */
static json_t *pem_array(const char *pem)
{
    static const char end_marker[] = "-----END CERTIFICATE-----";
    json_t *arr = json_array();
    const char *p = pem;
    while (p != NULL && *p != '\0') {
        const char *end = strstr(p, end_marker);
        if (end == NULL)
            break;
        end += sizeof(end_marker) - 1;
        if (*end == '\n')
            ++end;
        json_array_append_new(arr, json_stringn(p, (size_t)(end - p)));
        p = end;
    }
    return arr;
}

static void handle_certs(const sc_admin_view_t *v, h2o_req_t *req)
{
    const sc_tls_t *tls = *v->tls;
    const sc_renewal_t *r = v->renewal;
    time_t now = time(NULL);
    json_t *obj = json_object();

    json_object_set_new(obj, "mode", json_string(r != NULL ? "ca" : "static"));
    if (tls == NULL) {
        json_object_set_new(obj, "spiffe_id", r != NULL ? json_string(r->spiffe_id) : json_null());
        json_object_set_new(obj, "serial", json_null());
        json_object_set_new(obj, "state", json_string("waiting for the first certificate from seam-ca"));
    } else {
        json_object_set_new(obj, "spiffe_id", json_string(tls->spiffe_id));
        json_object_set_new(obj, "serial", json_string(tls->leaf.serial));
        json_object_set_new(obj, "not_before", time_json(tls->leaf.not_before));
        json_object_set_new(obj, "not_after", time_json(tls->leaf.not_after));
        json_object_set_new(obj, "expires_in_seconds", json_integer((json_int_t)(tls->leaf.not_after - now)));
        json_object_set_new(obj, "chain", pem_array(tls->chain_pem));
        json_object_set_new(obj, "bundle", pem_array(tls->bundle_pem));
        json_object_set_new(obj, "loaded_at", time_json(tls->loaded_at));
    }
    if (r != NULL) {
        time_t next = sc_renewal_next_attempt(r);
        json_object_set_new(obj, "ca_url", json_string(v->cfg->ca_url));
        json_object_set_new(obj, "last_rotation", r->rot.last_rotation != 0 ? time_json(r->rot.last_rotation) : json_null());
        json_object_set_new(obj, "next_rotation", next != 0 ? time_json(next) : json_string("now"));
        json_object_set_new(obj, "rotation_failures", json_integer((json_int_t)r->rot.total_failures));
        json_object_set_new(obj, "consecutive_failures", json_integer((json_int_t)r->rot.failures));
        json_object_set_new(obj, "last_error", r->last_error[0] != '\0' ? json_string(r->last_error) : json_null());
        json_object_set_new(obj, "bundle_refreshed_at",
                            r->bundle_refreshed_at != 0 ? time_json(r->bundle_refreshed_at) : json_null());
    } else {
        json_object_set_new(obj, "last_rotation", *v->last_rotation != 0 ? time_json(*v->last_rotation) : json_null());
        json_object_set_new(obj, "next_rotation", json_null()); /* static files change when their writer says */
        json_object_set_new(obj, "rotation_failures", json_integer((json_int_t)v->proc->rotations_failed));
    }
    send_json(req, obj);
}

static void handle_ready(const sc_admin_view_t *v, h2o_req_t *req)
{
    const sc_tls_t *tls = *v->tls;
    const char *last_error = v->renewal != NULL && v->renewal->last_error[0] != '\0' ? v->renewal->last_error : NULL;
    char text[SC_RENEWAL_DETAIL_MAX + 200];

    if (*v->draining) {
        sc_localhttp_send_text(req, 503, "Service Unavailable", "not ready: draining\n");
        return;
    }
    if (tls == NULL) {
        snprintf(text, sizeof(text), "not ready: no certificate from seam-ca yet (%s)\n",
                 last_error != NULL ? last_error : "first request in progress");
    } else if (tls->leaf.not_after <= time(NULL)) {
        snprintf(text, sizeof(text), "not ready: the certificate has expired%s%s%s\n",
                 last_error != NULL ? " and could not be renewed (" : "", last_error != NULL ? last_error : "",
                 last_error != NULL ? ")" : "");
    } else {
        sc_localhttp_send_text(req, 200, "OK", "ready\n");
        return;
    }
    char *body = h2o_mem_alloc_pool(&req->pool, strlen(text) + 1);
    memcpy(body, text, strlen(text) + 1);
    sc_localhttp_send_text(req, 503, "Service Unavailable", body);
}

static void handle_policy(const sc_admin_view_t *v, h2o_req_t *req)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "source", json_string(sc_policy_source(*v->policy)));
    json_object_set_new(obj, "loaded_at", time_json(*v->policy_loaded_at));
    json_object_set_new(obj, "reloads_ok", json_integer((json_int_t)v->proc->policy_reloads_ok));
    json_object_set_new(obj, "reloads_failed", json_integer((json_int_t)v->proc->policy_reloads_failed));
    json_t *policy = json_loads(sc_policy_json(*v->policy), 0, NULL);
    json_object_set_new(obj, "policy", policy != NULL ? policy : json_null());
    send_json(req, obj);
}

static void handle_config(const sc_admin_view_t *v, h2o_req_t *req)
{
    char *text = sc_config_to_json(v->cfg);
    json_t *obj = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (obj != NULL)
        json_object_set_new(obj, "version", json_string(SEAM_VERSION));
    send_json(req, obj);
}

static void handle_metrics(const sc_admin_view_t *v, h2o_req_t *req)
{
    static sc_metrics_t none; /* zero: the list is never empty */
    sc_metrics_t *list[2 * SC_THREADS_MAX + 1];
    size_t n = 0;
    char *text;
    size_t len;

    list[n++] = &none;
    n += v->worker_metrics(v->data, list + n, sizeof(list) / sizeof(list[0]) - n);
    sc_metrics_process_t proc = *v->proc; /* a copy: a GET writes nothing of the process */
    proc.cert_expiry = *v->tls != NULL ? (double)(*v->tls)->leaf.not_after : 0;
    if (sc_metrics_render(list, n, &proc, &text, &len) != 0) {
        sc_localhttp_send_text(req, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    char *body = h2o_mem_alloc_pool(&req->pool, len);
    memcpy(body, text, len);
    free(text);
    sc_localhttp_send(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static int on_admin_req(h2o_handler_t *_self, h2o_req_t *req)
{
    sc_admin_handler_t *self = (void *)_self;
    const sc_admin_view_t *v = self->view;
    h2o_iovec_t path = req->path_normalized;
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                 h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    sc_slice_t method = {req->method.base, req->method.len};
    /* h2o fills in its default host name when the request had none: that is refused like any foreign name */
    sc_slice_t host = {req->input.authority.base, req->input.authority.len};
    int has_origin = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1) != -1;
    sc_admin_guard_t verdict = sc_admin_guard_check(method, has_origin, host, v->cfg->admin);

    if (verdict != SC_ADMIN_GUARD_ALLOW) {
        /* before any handler runs: a page in a browser must not rotate the certificate or learn that it can */
        size_t len = strlen(sc_admin_guard_message(verdict));
        char *body = h2o_mem_alloc_pool(&req->pool, len + 2);
        memcpy(body, sc_admin_guard_message(verdict), len);
        memcpy(body + len, "\n", 2);
        cmn_log_warn("admin: a request that changes state was refused (%s): %s", sc_admin_guard_name(verdict),
                     sc_admin_guard_message(verdict));
        sc_localhttp_send_text(req, 403, "Forbidden", body);
        return 0;
    }

#define PATH_IS(s) h2o_memis(path.base, path.len, H2O_STRLIT(s))
    if (PATH_IS("/rotate")) {
        if (!is_post) {
            sc_localhttp_send_text(req, 405, "Method Not Allowed", "use POST /rotate\n");
        } else if (v->renewal != NULL && !*v->draining) {
            v->rotate(v->data);
            sc_localhttp_send_text(req, 202, "Accepted", "renewal started: GET /certs shows the new serial, the log the outcome\n");
        } else if (v->renewal != NULL) {
            sc_localhttp_send_text(req, 503, "Service Unavailable", "draining: no renewal\n");
        } else {
            sc_localhttp_send_text(req, 501, "Not Implemented",
                      "not implemented: static mode; the certificate comes from --cert/--key files, which the "
                      "sidecar reloads on change or SIGHUP\n");
        }
        return 0;
    }
    if (!is_get) {
        sc_localhttp_send_text(req, 405, "Method Not Allowed", "method not allowed\n");
        return 0;
    }
    if (PATH_IS("/live")) {
        sc_localhttp_send_text(req, 200, "OK", "live\n");
    } else if (PATH_IS("/ready")) {
        handle_ready(v, req);
    } else if (PATH_IS("/metrics")) {
        handle_metrics(v, req);
    } else if (PATH_IS("/certs")) {
        handle_certs(v, req);
    } else if (PATH_IS("/config")) {
        handle_config(v, req);
    } else if (PATH_IS("/policy")) {
        handle_policy(v, req);
    } else {
        sc_localhttp_send_text(req, 404, "Not Found", "not found: try /ready, /live, /metrics, /certs, /config, /policy, /rotate\n");
    }
#undef PATH_IS
    return 0;
}

int sc_admin_start(sc_admin_t *admin, uv_loop_t *loop, const sc_admin_view_t *view, char *err, size_t err_cap)
{
    const sc_config_t *cfg = view->cfg;
    struct sockaddr_storage sa;
    socklen_t salen;
    int rc;

    admin->view = *view;
    if (sc_resolve_addr(cfg->admin, &sa, &salen) != 0) {
        snprintf(err, err_cap, "--admin %s: not a numeric IPv4/IPv6 address and port", cfg->admin);
        return SC_E_ADDRESS;
    }
    /* the admin endpoint's descriptors come out of SC_FD_RESERVE: it must not eat what keeps it reachable */
    sc_admin_handler_t *handler = (void *)sc_localhttp_init(&admin->http, loop, "seam-sidecar-admin", sizeof(*handler),
                                                            on_admin_req, SC_ADMIN_CONNS_MAX, admin->view.draining);
    handler->view = &admin->view;
    if ((rc = sc_localhttp_listen(&admin->http, (struct sockaddr *)&sa)) != 0) {
        snprintf(err, err_cap, "--admin %s: cannot listen: %s", cfg->admin, uv_strerror(rc));
        return SC_E_LISTEN;
    }
    return 0;
}

void sc_admin_stop(sc_admin_t *admin)
{
    sc_localhttp_stop(&admin->http);
}
