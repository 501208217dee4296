/* The sidecar's TLS identity: an immutable, reference-counted snapshot of certificate, key, bundle and SSL_CTX. */
#ifndef SEAM_SIDECAR_IDENTITY_TLS_H
#define SEAM_SIDECAR_IDENTITY_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <time.h>

#include "certs/info.h"
#include "certs/spiffe.h"
#include "certs/verify.h"

#define SC_TLS_SESSION_TIMEOUT_S 300 /* lifetime of an inbound session (and its ticket) */
#define SC_TLS_SERVER_SESSIONS 256 /* inbound sessions kept for resumption per snapshot (about 12 KB each) */
#define SC_TLS_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define SC_TLS_GROUPS "X25519:P-256"
#define SC_TLS_CLIENT_SESSIONS 1024 /* upstream sessions kept per snapshot */

/*
 * Callbacks the connection layer installs on every SSL made from a snapshot.
 * on_verify runs once per full handshake, after the certs library judged the
 * peer's chain: rc 0 with res->spiffe_id, or a crt_error_t category.
 * on_info is OpenSSL's info callback (alerts, handshake done) for server connections.
 */
typedef struct st_sc_tls_hooks_t {
    void (*on_verify)(SSL *ssl, int rc, const crt_verify_result_t *res);
    void (*on_info)(const SSL *ssl, int where, int ret);
    /*
     * Outbound (client) side. client_expected_id names the SPIFFE ID the
     * server must present on this connection (NULL: refuse the handshake);
     * on_client_verify reports the verdict like on_verify; on_client_session
     * receives a resumable session (a NewSessionTicket) and returns 1 when it
     * took the reference, 0 otherwise.
     */
    const char *(*client_expected_id)(SSL *ssl);
    void (*on_client_verify)(SSL *ssl, int rc, const crt_verify_result_t *res);
    int (*on_client_session)(SSL *ssl, SSL_SESSION *session);
    void (*on_client_info)(const SSL *ssl, int where, int ret);
} sc_tls_hooks_t;

/* Static files a snapshot's identity comes from (--cert, --key, --bundle). */
typedef struct st_sc_tls_source_t {
    const char *cert_path;   /* leaf + intermediates, PEM */
    const char *key_path;    /* ECDSA P-256 key, PEM */
    const char *bundle_path; /* roots, PEM */
} sc_tls_source_t;

typedef struct st_sc_tls_t {
    int refcnt;
    SSL_CTX *server_ctx;        /* inbound: TLS 1.3, client certificate required */
    SSL_CTX *client_ctx;        /* outbound: TLS 1.3, own certificate as client certificate, ALPN h2,
                                   server checked against the route's identity; holds a session cache */
    crt_bundle_t *bundle;       /* trust bundle (one reference held) */
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1];
    crt_cert_info_t leaf;       /* facts of the own leaf */
    char *chain_pem;            /* own chain as PEM (public) */
    char *bundle_pem;           /* roots as PEM (public) */
    time_t loaded_at;
    const sc_tls_hooks_t *hooks; /* borrowed; outlives every snapshot */
} sc_tls_t;

#define SC_TLS_SOURCE_MAX 4200 /* "--cert PATH" and the like */

/*
 * The ingredients of a snapshot, all in memory. sources name where each came
 * from in error lines ("--cert /etc/seam/cert.pem", "seam-ca").
 */
typedef struct st_sc_tls_parts_t {
    STACK_OF(X509) * chain; /* leaf first, then intermediates */
    EVP_PKEY *key;          /* the leaf's private key */
    crt_bundle_t *bundle;   /* roots */
    const char *chain_source, *key_source, *bundle_source;
} sc_tls_parts_t;

/*
 * Builds a snapshot from parts (nothing is taken over; the snapshot keeps its
 * own references): the chain must verify against the bundle at now with one
 * SPIFFE ID, and the key must match the leaf. Returns 0, or SC_E_IDENTITY /
 * SC_E_NOMEM with one line in err.
 */
int sc_tls_build(const sc_tls_parts_t *parts, const sc_tls_hooks_t *hooks, time_t now, sc_tls_t **out, char *err,
                 size_t err_cap) __attribute__((warn_unused_result));

/*
 * The parts a snapshot was built from, with new references (sources are
 * NULL), so a renewal can present the current certificate or a new bundle can
 * be combined with it. Returns 0 or -1 (out of memory). Free with sc_tls_parts_clear().
 */
int sc_tls_parts_of(const sc_tls_t *tls, sc_tls_parts_t *parts) __attribute__((warn_unused_result));
void sc_tls_parts_clear(sc_tls_parts_t *parts);

/*
 * Builds a snapshot from static files: reads them, checks the key matches the
 * leaf and that the own chain verifies against the bundle at now with one
 * SPIFFE ID. Returns 0 and a snapshot with one reference, or SC_E_IO /
 * SC_E_IDENTITY / SC_E_NOMEM with err (one
 * line naming the file and the cause). The key is cleansed from memory after use.
 */
int sc_tls_load(const sc_tls_source_t *src, const sc_tls_hooks_t *hooks, time_t now, sc_tls_t **out, char *err,
                size_t err_cap) __attribute__((warn_unused_result));

void sc_tls_addref(sc_tls_t *tls);
void sc_tls_release(sc_tls_t *tls);
/* Either, for code that holds snapshots of any kind: delta > 0 takes a reference, else drops one. */
void sc_tls_ref(void *tls, int delta);

#endif
