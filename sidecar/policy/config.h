/* seam-sidecar's configuration: command-line flags and the --config JSON file. */
#ifndef SEAM_SIDECAR_POLICY_CONFIG_H
#define SEAM_SIDECAR_POLICY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sidecar/policy/error.h"

#define SC_CONFIG_FILE_MAX (64 * 1024) /* largest --config file read */
#define SC_THREADS_MAX 64              /* --threads upper bound */
#define SC_ADDR_MAX 300                /* bytes in a host:port */
#define SC_PATH_MAX 4096               /* bytes in a file path */
#define SC_APP_PROBES_ARG_MAX (16 * 1024) /* --app-probes: inline JSON or a file path */

#define SC_DEFAULT_INBOUND "0.0.0.0:15006"
#define SC_DEFAULT_APP "127.0.0.1:8080"
#define SC_DEFAULT_ADMIN "127.0.0.1:15000"
#define SC_DEFAULT_DRAIN_MS 10000
#define SC_DEFAULT_OUTBOUND "127.0.0.1:15001"
#define SC_DEFAULT_UPSTREAM_TIMEOUT_MS 15000
#define SC_DEFAULT_APP_TIMEOUT_MS 30000
#define SC_DEFAULT_UPSTREAM_IDLE_MS 60000
#define SC_DEFAULT_STREAM_IDLE_MS (5 * 60 * 1000)
#define SC_DEFAULT_DETECT_TIMEOUT_MS 100 /* --transparent: a redirected connection silent this long is TCP */
#define SC_DEFAULT_TRUST_DOMAIN "cluster.local"
#define SC_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000 /* an inbound TLS handshake must finish within this */
#define SC_DEFAULT_IDLE_TIMEOUT_MS 90000      /* an inbound HTTP/2 connection without requests closes after this
                                                 (above the outbound default, SC_DEFAULT_UPSTREAM_IDLE_MS) */
#define SC_DEFAULT_MAX_REQUEST_HEADERS_KB 60
#define SC_DEFAULT_MAX_REQUEST_HEADERS 100
#define SC_MAX_REQUEST_HEADERS_KB_LIMIT 1024 /* --max-request-headers-kb upper bound */
#define SC_MAX_REQUEST_HEADERS_LIMIT 1000    /* --max-request-headers upper bound */

/* Every setting; strings are "" when not given. */
typedef struct st_sc_config_t {
    /* identity: static files */
    char cert[SC_PATH_MAX];
    char key[SC_PATH_MAX];
    char bundle[SC_PATH_MAX];
    /* identity: issued by seam-ca */
    char ca_url[SC_PATH_MAX];
    char ca_bundle[SC_PATH_MAX];
    char token_file[SC_PATH_MAX];
    char spiffe_id[SC_PATH_MAX];
    char trust_domain[SC_PATH_MAX]; /* for an ID taken from a token's subject; "" = SC_DEFAULT_TRUST_DOMAIN */
    /* listeners */
    char inbound[SC_ADDR_MAX];
    char app[SC_ADDR_MAX];
    char outbound[SC_ADDR_MAX];
    int outbound_allow_remote; /* a non-loopback --outbound is refused without it */
    int64_t detect_timeout_ms;   /* --transparent: silence this long makes a redirected connection TCP */
    char outbound_unknown[16];   /* --transparent: "passthrough" or "deny" for TCP no route covers */
    char routes[SC_PATH_MAX];
    int transparent;
    int64_t upstream_timeout_ms;
    int64_t app_timeout_ms;
    int64_t upstream_idle_timeout_ms;
    int64_t stream_idle_timeout_ms;
    char app_protocol[8]; /* auto, http1 or h2c */
    char admin[SC_ADDR_MAX];
    int admin_allow_remote;
    char probe_listen[SC_ADDR_MAX];          /* kubelet's probes of the app arrive here; "" = none */
    char app_probes[SC_APP_PROBES_ARG_MAX]; /* the probes it answers (appprobe.h): JSON text or a file */
    int max_connections;          /* per data listener (connlimit.h); fewer when descriptors are short */
    int64_t handshake_timeout_ms; /* from accept to the end of an inbound TLS handshake */
    int64_t idle_timeout_ms;      /* an inbound HTTP/2 connection with no open stream closes after this */
    /* behaviour */
    char policy[SC_PATH_MAX];
    int threads;
    int64_t drain_timeout_ms;
    int64_t bundle_refresh_ms;
    /* limits */
    int max_request_headers_kb; /* request head (HTTP/1.1) or decoded header block (HTTP/2) size; more: 431 */
    int max_request_headers;    /* header fields per request; more: 431 */
    char config_file[SC_PATH_MAX];
} sc_config_t;

typedef enum { SC_APP_PROTOCOL_AUTO = 0, SC_APP_PROTOCOL_HTTP1, SC_APP_PROTOCOL_H2C } sc_app_protocol_t;

/* cfg->app_protocol as an sc_app_protocol_t, or -1 when it names none. */
int sc_config_app_protocol(const sc_config_t *cfg);

typedef enum {
    SC_CONFIG_OK = 0,
    SC_CONFIG_HELP = 1,    /* --help was given: print usage, exit 0 */
    SC_CONFIG_VERSION = 2, /* --version was given: print it, exit 0 */
    SC_CONFIG_USAGE = SC_E_USAGE, /* bad flag or value (or --config file): err says which; exit 2 */
} sc_config_result_t;

/* Sets every default: inbound on SC_DEFAULT_INBOUND only when no flag says otherwise is decided by the caller. */
void sc_config_defaults(sc_config_t *cfg);

/*
 * Parses argv (argv[0] is skipped). A --config FILE is applied first, so flags
 * override the file. Returns an sc_config_result_t; on SC_CONFIG_USAGE err gets
 * one line naming the flag, file or field.
 */
int sc_config_parse(sc_config_t *cfg, int argc, char **argv, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/* Applies a JSON config text (keys are the flag names without "--"). Returns 0 or SC_E_CONFIG with err. */
int sc_config_apply_json(sc_config_t *cfg, const char *text, size_t len, const char *source, char *err,
                         size_t err_cap) __attribute__((warn_unused_result));

/*
 * Checks the combination: exactly one complete identity source (static files
 * or seam-ca), unimplemented features refused, admin and outbound listeners
 * on loopback unless allowed. Returns 0 or SC_E_USAGE with err.
 */
int sc_config_check(const sc_config_t *cfg, char *err, size_t err_cap) __attribute__((warn_unused_result));

/* True when the identity comes from seam-ca (--ca-url and friends) rather than static files. */
int sc_config_ca_mode(const sc_config_t *cfg);

/* True when the outbound listener runs: --routes given and --outbound not "off". */
int sc_config_has_outbound(const sc_config_t *cfg);

/* The outbound listen address (--outbound, or SC_DEFAULT_OUTBOUND). */
const char *sc_config_outbound_addr(const sc_config_t *cfg);

/* True when host (the part of a host:port before the port) is a loopback address. */
int sc_addr_is_loopback(const char *hostport);

/* Resolves "host:port" (numeric or "localhost") into sa. Returns 0 or SC_E_ADDRESS. */
int sc_resolve_addr(const char *hostport, struct sockaddr_storage *sa, socklen_t *len) __attribute__((warn_unused_result));

/* Splits "host:port" or "[v6]:port" into host (NUL-terminated) and port. Returns 0 or SC_E_ADDRESS. */
int sc_addr_split(const char *hostport, char *host, size_t host_cap, uint16_t *port) __attribute__((warn_unused_result));

/* The configuration as a JSON object (for GET /config); the caller frees it with free(). */
char *sc_config_to_json(const sc_config_t *cfg);

/* The usage text for --help. */
extern const char sc_config_usage[];

#endif
