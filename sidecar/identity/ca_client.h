/* The sidecar's client for seam-ca: POST /v1/sign and GET /v1/bundle over verified TLS. */
#ifndef SEAM_SIDECAR_CA_CLIENT_H
#define SEAM_SIDECAR_CA_CLIENT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "certs/verify.h"

#define SC_CA_TIMEOUT_MS 10000           /* one whole exchange */
#define SC_CA_RESPONSE_MAX (1024 * 1024) /* largest reply we read */
#define SC_CA_SERVICE_ACCOUNT "/ns/seam-system/sa/seam-ca"

/* How an exchange failed, for logs and seam_cert_rotations_total{result}. */
typedef enum {
    SC_CA_OK = 0,
    SC_CA_UNREACHABLE,  /* DNS, refused, timeout */
    SC_CA_TLS,          /* the CA's certificate or the handshake failed: detail names the category */
    SC_CA_REFUSED,      /* the CA answered 4xx/5xx: status and error code set */
    SC_CA_BAD_RESPONSE, /* not the JSON the contract promises, or a chain that does not check out */
} sc_ca_failure_t;

/* Where seam-ca is and how to talk to it. Everything is borrowed. */
typedef struct st_sc_ca_endpoint_t {
    const char *url;            /* "https://host:port" (port defaults to 15012) */
    const crt_bundle_t *trust;  /* roots that verify the CA's certificate */
    const char *ca_id;          /* SPIFFE ID the CA must present */
    X509 *cert;                 /* client certificate for renewal, or NULL */
    STACK_OF(X509) * chain;     /* its intermediates, or NULL */
    EVP_PKEY *key;              /* its key, or NULL */
    const char *bearer;         /* token for Authorization: Bearer, or NULL */
    int timeout_ms;             /* 0: SC_CA_TIMEOUT_MS */
    time_t now;                 /* the clock, for certificate checks */
} sc_ca_endpoint_t;

typedef struct st_sc_ca_result_t {
    int status;               /* HTTP status; 0 when there was none */
    char error[64];           /* the CA's error code on refusal */
    char detail[640];         /* one line: what failed and why */
    STACK_OF(X509) * chain;   /* sign: leaf + intermediate (owned) */
    STACK_OF(X509) * roots;   /* sign and bundle: the trust bundle (owned) */
} sc_ca_result_t;

/* The CA's expected identity for a trust domain: spiffe://TD/ns/seam-system/sa/seam-ca. */
void sc_ca_identity_for(const char *trust_domain, size_t len, char *out, size_t cap);

/*
 * POSTs {"csr": csr_pem, "ttl_seconds": ttl} to /v1/sign (ttl <= 0: let the
 * CA choose). Blocking, bounded by the endpoint's timeout; runs on the
 * sidecar's identity thread, never on a worker. On SC_CA_OK res->chain and
 * res->roots are set. Always fills res->detail on failure.
 */
sc_ca_failure_t sc_ca_sign(const sc_ca_endpoint_t *ep, const char *csr_pem, long ttl_seconds, sc_ca_result_t *res);

/* GETs /v1/bundle; on SC_CA_OK res->roots is set. */
sc_ca_failure_t sc_ca_get_bundle(const sc_ca_endpoint_t *ep, sc_ca_result_t *res);

/*
 * Checks what the CA returned before it is used: the chain verifies against
 * the returned roots at `now`, the leaf carries exactly expected_id, and its
 * public key is `key`'s. Returns 0, or -1 with one line in err.
 */
int sc_ca_check_issued(const sc_ca_result_t *res, const char *expected_id, EVP_PKEY *key, time_t now, char *err,
                       size_t err_cap) __attribute__((warn_unused_result));

/* Frees what a call put into res. */
void sc_ca_result_clear(sc_ca_result_t *res);

/* "unreachable", "tls", "refused", "bad-response" or "ok". */
const char *sc_ca_failure_name(sc_ca_failure_t failure);

#endif
