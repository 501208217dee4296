/* Connects to a TLS endpoint, handshakes as a mesh client would, and names what failed. */
#ifndef SEAM_CERTS_DIAGNOSE_H
#define SEAM_CERTS_DIAGNOSE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>

#include "certs/info.h"
#include "certs/verify.h"

/*
 * CRT_DIAG_MAP(XX): XX(NAME, "slug", "cause", "fix"). The slugs are the
 * categories of `seam-certs diagnose` (DESIGN.md section 4) and the body of an
 * outbound 502; tests match them.
 */
#define CRT_DIAG_MAP(XX)                                                                                               \
    XX(OK, "ok", "the handshake succeeded and the peer's certificate is valid for the expected identity", "nothing to fix") \
    XX(PLAIN_HTTP, "plain-http", "the port answers plain HTTP, not TLS",                                              \
       "connect to the sidecar's mTLS port (inbound, 15006 by default) instead of the application's plain port")      \
    XX(EXPIRED, "expired", "the peer's certificate (or a CA above it) has expired",                                   \
       "renew it: check the peer sidecar's /certs and its rotation_failures, and that seam-ca is reachable; for static files, issue a new certificate") \
    XX(NOT_YET_VALID, "not-yet-valid", "the peer's certificate is not valid yet",                                     \
       "check the clocks of both hosts (NTP); certificates are backdated only 60 s")                                 \
    XX(NAME_MISMATCH, "name-mismatch", "the peer's identity is not the one expected",                                  \
       "fix the route's identity or the --spiffe-id you expect, or issue the peer a certificate for the right service account") \
    XX(MISSING_INTERMEDIATE, "missing-intermediate", "the peer sent its leaf without the intermediate that links it to the trust bundle", \
       "serve the full chain (leaf + intermediate); with static files, put the intermediate after the leaf in the --cert file") \
    XX(UNTRUSTED_ROOT, "untrusted-root", "the peer's chain does not lead to a root in the trust bundle (self-signed or another CA)", \
       "give both sides the same trust bundle (seam-ca GET /v1/bundle), or re-issue the peer's certificate from this mesh's CA") \
    XX(BAD_CERTIFICATE, "bad-certificate", "the peer's certificate does not fit the mesh profile",                    \
       "re-issue it with seam-certs issue or seam-ca: one SPIFFE URI SAN, CA:FALSE, digitalSignature, serverAuth + clientAuth") \
    XX(NO_SHARED_CIPHER, "no-shared-cipher", "client and server share no TLS version or cipher suite",                \
       "mesh hops need TLS 1.3 with AES-GCM or ChaCha20-Poly1305 and X25519 or P-256; upgrade or reconfigure the server") \
    XX(CLIENT_CERT_REQUIRED, "client-cert-required", "the server requires a client certificate and none was sent",    \
       "present the workload's certificate (--cert and --key), as a sidecar does on mesh hops")                       \
    XX(CLIENT_CERT_REJECTED, "client-cert-rejected", "the server refused the client certificate that was sent",       \
       "check that the client certificate is current and issued under the server's trust bundle")                    \
    XX(CONNECTION_REFUSED, "connection-refused", "nothing listens on that address and port",                           \
       "check that the service and its sidecar run, and the port (inbound mTLS is 15006 by default)")                 \
    XX(TIMEOUT, "timeout", "no TLS answer within the time limit",                                                      \
       "check network policy and firewalls between the hosts, and that the port belongs to a TLS server")            \
    XX(DNS_FAILURE, "dns-failure", "the host name does not resolve", "check the name and the resolver")               \
    XX(TLS_ERROR, "tls-error", "the TLS handshake failed for another reason", "read the detail line")

typedef enum {
#define CRT_DIAG_ENUM(name, slug, cause, fix) CRT_DIAG_##name,
    CRT_DIAG_MAP(CRT_DIAG_ENUM)
#undef CRT_DIAG_ENUM
    CRT__DIAG_END
} crt_diag_t;

const char *crt_diag_slug(crt_diag_t diag);
const char *crt_diag_cause(crt_diag_t diag);
const char *crt_diag_fix(crt_diag_t diag);

/* Maps a chain-verification error (crt_verify_chain's result) to a diagnosis. */
crt_diag_t crt_diag_from_verify_error(int crt_err);

#define CRT_DIAG_TIMEOUT_MS_DEFAULT 5000
#define CRT_DIAG_ALERT_WAIT_MS 500 /* how long to wait for a TLS 1.3 post-handshake alert */

typedef struct st_crt_diag_opts_t {
    const char *host;
    const char *port;
    crt_bundle_t *bundle;          /* borrowed; NULL: the system's CA file */
    X509 *client_cert;             /* borrowed; NULL: no client certificate */
    STACK_OF(X509) * client_chain; /* borrowed intermediates; may be NULL */
    EVP_PKEY *client_key;          /* borrowed */
    const char *expected_id;       /* SPIFFE ID the peer must have; NULL: any */
    int timeout_ms;
    time_t now;
} crt_diag_opts_t;

typedef struct st_crt_diag_result_t {
    crt_diag_t diag;
    char detail[640];
    char tls_version[16];
    char cipher[64];
    char alpn[16];
    int have_leaf;
    crt_cert_info_t leaf; /* the peer's leaf, when it sent one */
    int chain_len;        /* certificates the peer sent */
    int cert_requested;   /* the server asked for a client certificate */
} crt_diag_result_t;

/*
 * Runs the whole diagnosis (DNS, TCP connect, TLS 1.3 handshake with full peer
 * verification, a short wait for post-handshake alerts, and a plain-HTTP probe
 * when TLS got no answer). Verification is never turned off: the peer's chain
 * is checked against opts->bundle and a failure is a diagnosis, not a bypass.
 * Always fills res; returns 0 when res->diag is CRT_DIAG_OK and -1 otherwise.
 */
int crt_diagnose(const crt_diag_opts_t *opts, crt_diag_result_t *res);

#endif
