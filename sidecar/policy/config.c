/* seam-sidecar's configuration: one option table shared by flags and the JSON file. */
#include "sidecar/policy/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "certs/pem.h"
#include "certs/spiffe.h"
#include "common/connect.h"
#include "common/duration.h"
#include "sidecar/policy/appprobe.h"
#include "sidecar/policy/connlimit.h"
#include "sidecar/policy/error.h"

const char sc_config_usage[] =
    "usage: seam-sidecar --ca-url URL --ca-bundle FILE --token-file FILE [--spiffe-id ID] [options]\n"
    "       seam-sidecar --cert FILE --key FILE --bundle FILE [options]\n"
    "       seam-sidecar probe [--admin 127.0.0.1:15000] [PATH]   (exec probe: exit 0 on 200)\n"
    "\n"
    "Identity from seam-ca (renewed automatically; the key never leaves memory):\n"
    "  --ca-url URL           https://HOST[:PORT] of seam-ca (port 15012 when omitted)\n"
    "  --ca-bundle FILE       roots that verify seam-ca's certificate (PEM)\n"
    "  --token-file FILE      join token or Kubernetes service-account token; re-read on every use\n"
    "  --spiffe-id ID         identity to request (default: from the Kubernetes token's subject)\n"
    "  --trust-domain TD      trust domain for an identity taken from a token (default " SC_DEFAULT_TRUST_DOMAIN ")\n"
    "  --bundle-refresh DUR   how often to fetch the trust bundle from seam-ca (default 5m)\n"
    "Identity from static files (reloaded when they change):\n"
    "  --cert FILE            leaf certificate + intermediate (PEM)\n"
    "  --key FILE             ECDSA P-256 private key (PEM)\n"
    "  --bundle FILE          trust bundle: root certificates (PEM)\n"
    "Listeners:\n"
    "  --inbound ADDR         mTLS listener (default " SC_DEFAULT_INBOUND "; \"off\" disables it)\n"
    "  --app ADDR             the application behind the sidecar (default " SC_DEFAULT_APP ")\n"
    "  --app-timeout DUR      the app making no progress for this long: 504, or a cut response (default 30s)\n"
    "  --admin ADDR           admin endpoint (default " SC_DEFAULT_ADMIN ")\n"
    "  --admin-allow-remote   allow a non-loopback admin address\n"
    "  --probe-listen ADDR    kubelet's probes of the app (the pod IP, e.g. 0.0.0.0:15020): serves only\n"
    "                         GET /app-health/<container>/<kind> from --app-probes, never the admin API\n"
    "  --app-probes JSON|FILE the app's original probes, keyed by path: {\"/app-health/web/readiness\":\n"
    "                         {\"httpGet\": {\"port\": 8080, \"path\": \"/healthz\"}, \"timeoutSeconds\": 1}, ...};\n"
    "                         httpGet (200 on a 2xx/3xx answer) or tcpSocket (200 on connect), via 127.0.0.1\n"
    "  --routes FILE          outbound routes (JSON); turns the outbound listener on\n"
    "  --outbound ADDR        plain HTTP/1.1 + h2c listener for the app (default " SC_DEFAULT_OUTBOUND "; \"off\")\n"
    "  --outbound-allow-remote  allow a non-loopback outbound address (whoever reaches it speaks as this pod)\n"
    "  --upstream-timeout DUR time to the upstream's response headers, then 504 (default 15s; a shorter\n"
    "                         grpc-timeout is the request's deadline)\n"
    "  --stream-idle-timeout DUR  after the response headers, no byte either way for this long ends a\n"
    "                         stream (default 5m: long gRPC streams live on)\n"
    "  --app-protocol P       auto (HTTP/1.1 for requests the app sent as HTTP/1.x, h2c for the rest),\n"
    "                         http1 or h2c (default auto)\n"
    "  --upstream-idle-timeout DUR  idle mesh connections close after this (default 60s)\n"
    "  --transparent          route connections the iptables rules redirected by their original destination;\n"
    "                         their first bytes tell HTTP (an HTTP/1.x request line, the h2 preface) from TCP\n"
    "  --detect-timeout DUR   --transparent: a connection silent this long is TCP (default 100ms)\n"
    "  --outbound-unknown M   --transparent: TCP to an address no route covers: passthrough (default) or deny\n"
    "  --max-connections N    connections each of the inbound and outbound listeners holds; more are closed\n"
    "                         at once (default 10000, fewer if the descriptor limit is lower)\n"
    "  --handshake-timeout DUR  an inbound connection must finish its TLS handshake within this (default 10s)\n"
    "  --idle-timeout DUR     an inbound HTTP/2 connection with no open stream closes after this (default 90s)\n"
    "Behaviour:\n"
    "  --policy FILE          inbound allow list (JSON); without it every request is denied\n"
    "  --threads N            worker threads (default 1, at most 64)\n"
    "  --drain-timeout DUR    how long SIGTERM waits for in-flight requests (default 10s)\n"
    "  --config FILE          JSON object with the same keys as the flags (flags win)\n"
    "Limits (both listeners):\n"
    "  --max-request-headers-kb N  a request head larger than N KiB gets 431: HTTP/1.1 counts its bytes,\n"
    "                         HTTP/2 the decoded header block with 32 bytes per field (default 60, 1 to 1024)\n"
    "  --max-request-headers N     a request with more than N header fields gets 431 (default 100, 1 to 1000)\n"
    "  A request head (or HTTP/2 header block) must be whole 10s after its first byte: 408, or GOAWAY.\n"
    "  --help, --version\n"
    "Durations take ms, s, m, h suffixes. SIGHUP reloads the policy, the routes and the certificate files;\n"
    "SIGTERM drains and exits.\n";

typedef enum { OPT_STRING, OPT_BOOL, OPT_INT, OPT_DURATION, OPT_CONFIG } opt_kind_t;

typedef struct st_sc_option_t {
    const char *name;
    opt_kind_t kind;
    size_t offset;
    size_t cap;    /* OPT_STRING: buffer size */
    long min, max; /* OPT_INT: the range */
} sc_option_t;

#define STR_OPT(n, field) {n, OPT_STRING, offsetof(sc_config_t, field), sizeof(((sc_config_t *)0)->field), 0, 0}
#define NUM_OPT(n, kind, field) {n, kind, offsetof(sc_config_t, field), 0, 0, 0}
#define INT_OPT(n, field, lo, hi) {n, OPT_INT, offsetof(sc_config_t, field), 0, lo, hi}

static const sc_option_t options[] = {
    STR_OPT("cert", cert),
    STR_OPT("key", key),
    STR_OPT("bundle", bundle),
    STR_OPT("ca-url", ca_url),
    STR_OPT("ca-bundle", ca_bundle),
    STR_OPT("token-file", token_file),
    STR_OPT("spiffe-id", spiffe_id),
    STR_OPT("trust-domain", trust_domain),
    STR_OPT("inbound", inbound),
    STR_OPT("app", app),
    STR_OPT("outbound", outbound),
    NUM_OPT("outbound-allow-remote", OPT_BOOL, outbound_allow_remote),
    STR_OPT("routes", routes),
    NUM_OPT("transparent", OPT_BOOL, transparent),
    NUM_OPT("detect-timeout", OPT_DURATION, detect_timeout_ms),
    STR_OPT("outbound-unknown", outbound_unknown),
    NUM_OPT("upstream-timeout", OPT_DURATION, upstream_timeout_ms),
    NUM_OPT("app-timeout", OPT_DURATION, app_timeout_ms),
    NUM_OPT("upstream-idle-timeout", OPT_DURATION, upstream_idle_timeout_ms),
    NUM_OPT("stream-idle-timeout", OPT_DURATION, stream_idle_timeout_ms),
    STR_OPT("app-protocol", app_protocol),
    STR_OPT("admin", admin),
    NUM_OPT("admin-allow-remote", OPT_BOOL, admin_allow_remote),
    STR_OPT("probe-listen", probe_listen),
    STR_OPT("app-probes", app_probes),
    INT_OPT("max-connections", max_connections, 1, SC_MAX_CONNECTIONS_MAX),
    NUM_OPT("handshake-timeout", OPT_DURATION, handshake_timeout_ms),
    NUM_OPT("idle-timeout", OPT_DURATION, idle_timeout_ms),
    STR_OPT("policy", policy),
    INT_OPT("threads", threads, 1, SC_THREADS_MAX),
    NUM_OPT("drain-timeout", OPT_DURATION, drain_timeout_ms),
    NUM_OPT("bundle-refresh", OPT_DURATION, bundle_refresh_ms),
    INT_OPT("max-request-headers-kb", max_request_headers_kb, 1, SC_MAX_REQUEST_HEADERS_KB_LIMIT),
    INT_OPT("max-request-headers", max_request_headers, 1, SC_MAX_REQUEST_HEADERS_LIMIT),
    {"config", OPT_CONFIG, offsetof(sc_config_t, config_file), sizeof(((sc_config_t *)0)->config_file), 0, 0},
};

#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

void sc_config_defaults(sc_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->inbound, sizeof(cfg->inbound), "%s", SC_DEFAULT_INBOUND);
    snprintf(cfg->app, sizeof(cfg->app), "%s", SC_DEFAULT_APP);
    snprintf(cfg->admin, sizeof(cfg->admin), "%s", SC_DEFAULT_ADMIN);
    cfg->threads = 1;
    cfg->drain_timeout_ms = SC_DEFAULT_DRAIN_MS;
    cfg->upstream_timeout_ms = SC_DEFAULT_UPSTREAM_TIMEOUT_MS;
    cfg->app_timeout_ms = SC_DEFAULT_APP_TIMEOUT_MS;
    cfg->upstream_idle_timeout_ms = SC_DEFAULT_UPSTREAM_IDLE_MS;
    cfg->stream_idle_timeout_ms = SC_DEFAULT_STREAM_IDLE_MS;
    cfg->max_connections = SC_DEFAULT_MAX_CONNECTIONS;
    cfg->handshake_timeout_ms = SC_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    cfg->idle_timeout_ms = SC_DEFAULT_IDLE_TIMEOUT_MS;
    snprintf(cfg->app_protocol, sizeof(cfg->app_protocol), "auto");
    snprintf(cfg->outbound_unknown, sizeof(cfg->outbound_unknown), "passthrough");
    cfg->detect_timeout_ms = SC_DEFAULT_DETECT_TIMEOUT_MS;
    cfg->bundle_refresh_ms = 5 * 60 * 1000;
    cfg->max_request_headers_kb = SC_DEFAULT_MAX_REQUEST_HEADERS_KB;
    cfg->max_request_headers = SC_DEFAULT_MAX_REQUEST_HEADERS;
}

static const sc_option_t *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i != NUM_OPTIONS; ++i)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Stores a textual value; what names the source ("--threads", "FILE: threads") for errors. */
static int set_text(sc_config_t *cfg, const sc_option_t *opt, const char *value, const char *what, char *err,
                    size_t err_cap)
{
    char *base = (char *)cfg + opt->offset;
    switch (opt->kind) {
    case OPT_STRING:
    case OPT_CONFIG:
        if (value[0] == '\0') {
            snprintf(err, err_cap, "%s: empty value", what);
            return SC_E_USAGE;
        }
        if (strlen(value) >= opt->cap) {
            snprintf(err, err_cap, "%s: value longer than %zu bytes", what, opt->cap - 1);
            return SC_E_USAGE;
        }
        memcpy(base, value, strlen(value) + 1);
        return 0;
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || v < opt->min || v > opt->max) {
            snprintf(err, err_cap, "%s: \"%s\" is not a number from %ld to %ld", what, value, opt->min, opt->max);
            return SC_E_USAGE;
        }
        *(int *)base = (int)v;
        return 0;
    }
    case OPT_DURATION:
        if (cmn_duration_parse(value, (int64_t *)base) != 0) {
            snprintf(err, err_cap, "%s: \"%s\" is not a duration (e.g. 500ms, 10s, 5m, 1h)", what, value);
            return SC_E_USAGE;
        }
        return 0;
    case OPT_BOOL:
        if (strcmp(value, "true") == 0) {
            *(int *)base = 1;
        } else if (strcmp(value, "false") == 0) {
            *(int *)base = 0;
        } else {
            snprintf(err, err_cap, "%s: \"%s\" is not true or false", what, value);
            return SC_E_USAGE;
        }
        return 0;
    }
    return SC_E_USAGE;
}

int sc_config_apply_json(sc_config_t *cfg, const char *text, size_t len, const char *source, char *err,
                         size_t err_cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *value;
    int ret = SC_E_CONFIG;

    if (root == NULL) {
        snprintf(err, err_cap, "%s:%d: invalid JSON: %s", source, jerr.line, jerr.text);
        return SC_E_CONFIG;
    }
    if (!json_is_object(root)) {
        snprintf(err, err_cap, "%s: must be a JSON object", source);
        goto Exit;
    }
    json_object_foreach(root, key, value)
    {
        const sc_option_t *opt = find_option(key, strlen(key));
        char what[256], num[32];
        snprintf(what, sizeof(what), "%s: %s", source, key);
        if (opt == NULL || opt->kind == OPT_CONFIG) {
            snprintf(err, err_cap, "%s: unknown key", what);
            goto Exit;
        }
        if (opt->kind == OPT_BOOL) {
            if (!json_is_boolean(value)) {
                snprintf(err, err_cap, "%s: must be true or false", what);
                goto Exit;
            }
            *(int *)((char *)cfg + opt->offset) = json_is_true(value);
        } else if (opt->kind == OPT_INT && json_is_integer(value)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(value));
            if (set_text(cfg, opt, num, what, err, err_cap) != 0)
                goto Exit;
        } else if (json_is_string(value)) {
            if (set_text(cfg, opt, json_string_value(value), what, err, err_cap) != 0)
                goto Exit;
        } else {
            snprintf(err, err_cap, "%s: must be a %s", what, opt->kind == OPT_INT ? "number" : "string");
            goto Exit;
        }
    }
    ret = 0;
Exit:
    json_decref(root);
    return ret;
}

static int load_config_file(sc_config_t *cfg, const char *path, char *err, size_t err_cap)
{
    char *buf = NULL;
    size_t len = 0;
    if (crt_file_read(path, SC_CONFIG_FILE_MAX, &buf, &len) != 0) {
        snprintf(err, err_cap, "--config %s: cannot read the file (missing, unreadable or over %d bytes)", path,
                 SC_CONFIG_FILE_MAX);
        return SC_E_CONFIG;
    }
    int rc = sc_config_apply_json(cfg, buf, len, path, err, err_cap);
    free(buf);
    return rc;
}

/* Splits argv[*i] into an option and its value ("--x=v" or "--x v"); advances *i past a separate value. */
static int next_flag(int argc, char **argv, int *i, const sc_option_t **opt, const char **value, char *err,
                     size_t err_cap)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        snprintf(err, err_cap, "unexpected argument \"%s\"", arg);
        return SC_E_USAGE;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    if ((*opt = find_option(name, name_len)) == NULL) {
        snprintf(err, err_cap, "unknown flag --%.*s", (int)name_len, name);
        return SC_E_USAGE;
    }
    if (eq != NULL) {
        *value = eq + 1;
    } else if ((*opt)->kind == OPT_BOOL) {
        *value = "true";
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        snprintf(err, err_cap, "--%s needs a value", (*opt)->name);
        return SC_E_USAGE;
    }
    return 0;
}

int sc_config_parse(sc_config_t *cfg, int argc, char **argv, char *err, size_t err_cap)
{
    const sc_option_t *opt;
    const char *value;
    int i;

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return SC_CONFIG_HELP;
        if (strcmp(argv[i], "--version") == 0)
            return SC_CONFIG_VERSION;
    }
    /* first pass: the config file, so that flags override it */
    for (i = 1; i < argc; ++i) {
        if (next_flag(argc, argv, &i, &opt, &value, err, err_cap) != 0)
            return SC_CONFIG_USAGE;
        if (opt->kind == OPT_CONFIG) {
            if (set_text(cfg, opt, value, "--config", err, err_cap) != 0 ||
                load_config_file(cfg, value, err, err_cap) != 0)
                return SC_CONFIG_USAGE;
        }
    }
    for (i = 1; i < argc; ++i) {
        char what[64];
        if (next_flag(argc, argv, &i, &opt, &value, err, err_cap) != 0)
            return SC_CONFIG_USAGE;
        if (opt->kind == OPT_CONFIG)
            continue;
        snprintf(what, sizeof(what), "--%s", opt->name);
        if (set_text(cfg, opt, value, what, err, err_cap) != 0)
            return SC_CONFIG_USAGE;
    }
    return SC_CONFIG_OK;
}

int sc_addr_split(const char *hostport, char *host, size_t host_cap, uint16_t *port)
{
    return cmn_hostport_split(hostport, host, host_cap, port) == 0 ? 0 : SC_E_ADDRESS;
}

int sc_addr_is_loopback(const char *hostport)
{
    char host[SC_ADDR_MAX];
    uint16_t port;
    struct in_addr a4;
    struct in6_addr a6;

    if (sc_addr_split(hostport, host, sizeof(host), &port) != 0)
        return 0;
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
    return 0;
}

static int check_addr(const char *flag, const char *value, char *err, size_t err_cap)
{
    char host[SC_ADDR_MAX];
    uint16_t port;
    if (sc_addr_split(value, host, sizeof(host), &port) != 0) {
        snprintf(err, err_cap, "--%s: \"%s\" is not HOST:PORT", flag, value);
        return SC_E_USAGE;
    }
    return 0;
}

int sc_config_has_outbound(const sc_config_t *cfg)
{
    return cfg->routes[0] != '\0' && strcmp(cfg->outbound, "off") != 0;
}

const char *sc_config_outbound_addr(const sc_config_t *cfg)
{
    return cfg->outbound[0] != '\0' ? cfg->outbound : SC_DEFAULT_OUTBOUND;
}

int sc_config_ca_mode(const sc_config_t *cfg)
{
    return cfg->ca_url[0] != '\0' || cfg->ca_bundle[0] != '\0' || cfg->token_file[0] != '\0';
}

/* Exactly one identity source, complete, with well-formed values. */
static int check_identity(const sc_config_t *cfg, char *err, size_t err_cap)
{
    int has_static = cfg->cert[0] != '\0' || cfg->key[0] != '\0' || cfg->bundle[0] != '\0';
    crt_spiffe_id_t id;
    int rc;

    if (has_static && sc_config_ca_mode(cfg)) {
        snprintf(err, err_cap, "--cert/--key/--bundle and --ca-url/--ca-bundle/--token-file are two ways to get an "
                               "identity: give one of them");
        return SC_E_USAGE;
    }
    if (has_static) {
        if (cfg->cert[0] == '\0' || cfg->key[0] == '\0' || cfg->bundle[0] == '\0') {
            snprintf(err, err_cap, "--cert, --key and --bundle are required together (the identity's static files)");
            return SC_E_USAGE;
        }
        if (cfg->spiffe_id[0] != '\0' || cfg->trust_domain[0] != '\0') {
            snprintf(err, err_cap, "--%s applies to certificates from seam-ca (--ca-url); a static certificate "
                                   "carries its own identity", cfg->spiffe_id[0] != '\0' ? "spiffe-id" : "trust-domain");
            return SC_E_USAGE;
        }
        return 0;
    }
    if (!sc_config_ca_mode(cfg)) {
        snprintf(err, err_cap, "no identity: give --ca-url, --ca-bundle and --token-file (certificates from seam-ca) "
                               "or --cert, --key and --bundle (static files)");
        return SC_E_USAGE;
    }
    if (cfg->ca_url[0] == '\0' || cfg->ca_bundle[0] == '\0' || cfg->token_file[0] == '\0') {
        snprintf(err, err_cap, "--ca-url, --ca-bundle and --token-file are required together (certificates from seam-ca)");
        return SC_E_USAGE;
    }
    if (strncmp(cfg->ca_url, "https://", 8) != 0 || cfg->ca_url[8] == '\0') {
        snprintf(err, err_cap, "--ca-url %s: must be https://HOST[:PORT] (seam-ca speaks TLS only)", cfg->ca_url);
        return SC_E_USAGE;
    }
    if (cfg->spiffe_id[0] != '\0' &&
        (rc = crt_spiffe_parse_workload(cfg->spiffe_id, strlen(cfg->spiffe_id), &id)) != 0) {
        snprintf(err, err_cap, "--spiffe-id %s: %s", cfg->spiffe_id, crt_spiffe_error_message(rc));
        return SC_E_USAGE;
    }
    if (cfg->trust_domain[0] != '\0') {
        if ((rc = crt_spiffe_check_trust_domain(cfg->trust_domain, strlen(cfg->trust_domain))) != 0) {
            snprintf(err, err_cap, "--trust-domain %s: %s", cfg->trust_domain, crt_spiffe_error_message(rc));
            return SC_E_USAGE;
        }
        if (cfg->spiffe_id[0] != '\0' && (id.trust_domain_len != strlen(cfg->trust_domain) ||
                                           memcmp(id.trust_domain, cfg->trust_domain, id.trust_domain_len) != 0)) {
            snprintf(err, err_cap, "--trust-domain %s: --spiffe-id %s is in another trust domain", cfg->trust_domain,
                     cfg->spiffe_id);
            return SC_E_USAGE;
        }
    }
    if (cfg->bundle_refresh_ms < 1000) {
        snprintf(err, err_cap, "--bundle-refresh: at least 1s");
        return SC_E_USAGE;
    }
    return 0;
}

/* --probe-listen is an address; --app-probes parses (read here too, so a bad file is a usage error). */
static int check_probes(const sc_config_t *cfg, char *err, size_t err_cap)
{
    sc_app_probes_t probes;

    if (cfg->probe_listen[0] != '\0' && check_addr("probe-listen", cfg->probe_listen, err, err_cap) != 0)
        return SC_E_USAGE;
    if (cfg->app_probes[0] == '\0')
        return 0;
    if (cfg->probe_listen[0] == '\0') {
        snprintf(err, err_cap, "--app-probes needs --probe-listen ADDR (where kubelet's probes arrive)");
        return SC_E_USAGE;
    }
    if (sc_app_probes_load(cfg->app_probes, &probes, err, err_cap) != 0)
        return SC_E_USAGE;
    sc_app_probes_dispose(&probes);
    return 0;
}

int sc_config_check(const sc_config_t *cfg, char *err, size_t err_cap)
{
    if (cfg->transparent && !sc_config_has_outbound(cfg)) {
        snprintf(err, err_cap, "--transparent routes the outbound listener's connections: it needs --routes FILE "
                               "(and --outbound not \"off\")");
        return SC_E_USAGE;
    }
    if (cfg->outbound[0] != '\0' && strcmp(cfg->outbound, "off") != 0) {
        if (cfg->routes[0] == '\0') {
            snprintf(err, err_cap, "--outbound %s needs --routes FILE (the hosts the app may reach)", cfg->outbound);
            return SC_E_USAGE;
        }
        if (check_addr("outbound", cfg->outbound, err, err_cap) != 0)
            return SC_E_USAGE;
    }
    /*
     * The outbound listener takes plain HTTP from anyone who can connect and
     * sends it on with this pod's certificate: on a reachable address it is
     * an unauthenticated forwarder that every policy trusts as this pod.
     */
    if (sc_config_has_outbound(cfg) && !cfg->outbound_allow_remote &&
        !sc_addr_is_loopback(sc_config_outbound_addr(cfg))) {
        snprintf(err, err_cap, "--outbound: %s is not a loopback address (add --outbound-allow-remote to expose it; "
                               "anyone who reaches it speaks with this pod's identity)",
                 sc_config_outbound_addr(cfg));
        return SC_E_USAGE;
    }

    if (check_identity(cfg, err, err_cap) != 0)
        return SC_E_USAGE;
    if (cfg->app_timeout_ms <= 0) {
        snprintf(err, err_cap, "--app-timeout: must be longer than 0");
        return SC_E_USAGE;
    }
    if (cfg->stream_idle_timeout_ms <= 0) {
        snprintf(err, err_cap, "--stream-idle-timeout: must be longer than 0");
        return SC_E_USAGE;
    }
    if (cfg->handshake_timeout_ms <= 0) {
        snprintf(err, err_cap, "--handshake-timeout: must be longer than 0");
        return SC_E_USAGE;
    }
    if (cfg->idle_timeout_ms <= 0) {
        snprintf(err, err_cap, "--idle-timeout: must be longer than 0");
        return SC_E_USAGE;
    }
    if (cfg->detect_timeout_ms <= 0) {
        snprintf(err, err_cap, "--detect-timeout: must be longer than 0");
        return SC_E_USAGE;
    }
    if (strcmp(cfg->outbound_unknown, "passthrough") != 0 && strcmp(cfg->outbound_unknown, "deny") != 0) {
        snprintf(err, err_cap, "--outbound-unknown %s: must be passthrough or deny", cfg->outbound_unknown);
        return SC_E_USAGE;
    }
    if (sc_config_app_protocol(cfg) < 0) {
        snprintf(err, err_cap, "--app-protocol %s: must be auto, http1 or h2c", cfg->app_protocol);
        return SC_E_USAGE;
    }
    if (strcmp(cfg->inbound, "off") != 0 && check_addr("inbound", cfg->inbound, err, err_cap) != 0)
        return SC_E_USAGE;
    if (check_addr("app", cfg->app, err, err_cap) != 0 || check_addr("admin", cfg->admin, err, err_cap) != 0)
        return SC_E_USAGE;
    if (!cfg->admin_allow_remote && !sc_addr_is_loopback(cfg->admin)) {
        snprintf(err, err_cap, "--admin: %s is not a loopback address (add --admin-allow-remote to expose it)",
                 cfg->admin);
        return SC_E_USAGE;
    }
    return check_probes(cfg, err, err_cap);
}

int sc_config_app_protocol(const sc_config_t *cfg)
{
    if (strcmp(cfg->app_protocol, "auto") == 0)
        return SC_APP_PROTOCOL_AUTO;
    if (strcmp(cfg->app_protocol, "http1") == 0)
        return SC_APP_PROTOCOL_HTTP1;
    if (strcmp(cfg->app_protocol, "h2c") == 0)
        return SC_APP_PROTOCOL_H2C;
    return -1;
}

char *sc_config_to_json(const sc_config_t *cfg)
{
    json_t *obj = json_object();
    char *out;
    if (obj == NULL)
        return NULL;
    for (size_t i = 0; i != NUM_OPTIONS; ++i) {
        const sc_option_t *opt = &options[i];
        const char *base = (const char *)cfg + opt->offset;
        char buf[32];
        switch (opt->kind) {
        case OPT_STRING:
        case OPT_CONFIG:
            json_object_set_new(obj, opt->name, base[0] != '\0' ? json_string(base) : json_null());
            break;
        case OPT_BOOL:
            json_object_set_new(obj, opt->name, json_boolean(*(const int *)base));
            break;
        case OPT_INT:
            json_object_set_new(obj, opt->name, json_integer(*(const int *)base));
            break;
        case OPT_DURATION:
            cmn_duration_format(*(const int64_t *)base, buf, sizeof(buf));
            json_object_set_new(obj, opt->name, json_string(buf));
            break;
        }
    }
    out = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return out;
}

int sc_resolve_addr(const char *hostport, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[SC_ADDR_MAX];
    uint16_t port;

    memset(sa, 0, sizeof(*sa));
    if (sc_addr_split(hostport, host, sizeof(host), &port) != 0)
        return SC_E_ADDRESS;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0) {
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0) {
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return SC_E_ADDRESS;
}
