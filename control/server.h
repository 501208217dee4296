/* seam-ca's HTTPS service: Seam's HTTP front end on one libuv loop, /v1/sign, /v1/bundle, /healthz, /metrics. */
#ifndef SEAM_CONTROL_SERVER_H
#define SEAM_CONTROL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "control/sign.h"
#include "control/tokens.h"

#define CA_DEFAULT_LISTEN "0.0.0.0:15012"
#define CA_DEFAULT_AUDIENCE "seam-ca"
#define CA_MAX_DNS_NAMES 16
#define CA_SERVING_NAMESPACE "seam-system"
#define CA_SERVING_SERVICE_ACCOUNT "seam-ca"
#define CA_SERVING_TTL_DEFAULT (24 * 3600)        /* the CA's own certificate; renewed at half-life */
#define CA_SERVING_RETRY_SECONDS 60               /* retry after a failed renewal */
#define CA_DEFAULT_IDLE_TIMEOUT_MS 10000          /* handshake, request and HTTP/2 idle timeouts */
#define CA_MAX_CONNECTIONS_DEFAULT 1024           /* more are accepted and closed at once */
#define CA_BODY_HARD_MAX (1024 * 1024)            /* the front end's plain 413 above this; JSON 413 above CA_BODY_MAX */
#define CA_H2_MAX_STREAMS 100                     /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS */
#define CA_DRAIN_MS 1000                          /* SIGTERM waits the idle timeout plus this for connections */
#define CA_DRAIN_TICK_MS 50                       /* how often a drain checks for open connections */

/* Everything the service is started with; strings and objects are borrowed for the service's lifetime. */
typedef struct st_ca_server_config_t {
    const char *listen;             /* "HOST:PORT", IPv6 as "[::1]:PORT" */
    const char *ca_dir;
    const char *trust_domain;
    const char *jwks_path;          /* NULL: no service-account tokens */
    const char *issuer;
    const char *audience;
    const char *join_tokens_path;   /* NULL: no join tokens */
    ca_token_store_t *join_tokens;  /* the opened join_tokens_path; NULL: no join tokens */
    const char *journal_path;
    const char *dns_names[CA_MAX_DNS_NAMES];
    size_t num_dns_names;
    long default_ttl;               /* seconds */
    long max_ttl;                   /* seconds */
    long serving_ttl;               /* seconds; the CA's own certificate */
    unsigned rate_per_minute;
    unsigned rate_burst;
    unsigned bad_credential_per_minute;  /* refused credentials per client address */
    unsigned bad_credential_burst;
    const char *reserved_ids[CA_RESERVED_IDS_MAX]; /* never signed, besides the CA's own ID */
    size_t num_reserved_ids;
    uint64_t idle_timeout_ms;
    unsigned max_connections;
} ca_server_config_t;

/*
 * Loads the CA material, JWKS and journal, issues the serving certificate,
 * listens, and serves until SIGTERM or SIGINT. Returns 0 after a clean stop,
 * 1 when start-up fails (the reason is logged on one line).
 */
int ca_server_run(const ca_server_config_t *config);

#endif
