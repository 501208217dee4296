/* Chain verification against a trust bundle, and SPIFFE identity extraction. */
#ifndef SEAM_CERTS_VERIFY_H
#define SEAM_CERTS_VERIFY_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "certs/spiffe.h"

/* An immutable set of trusted roots (one or more: root rotation holds two). */
typedef struct st_crt_bundle_t crt_bundle_t;

/*
 * Loads roots from PEM. Every certificate must be a CA. Returns 0 and a new
 * bundle with one reference, or a crt_error_t (detail gets the reason).
 */
int crt_bundle_from_pem(const char *pem, size_t len, crt_bundle_t **out, char *detail, size_t detail_cap)
    __attribute__((warn_unused_result));

/* Builds a bundle from roots (borrowed; each is up-referenced). */
int crt_bundle_from_certs(STACK_OF(X509) * roots, crt_bundle_t **out) __attribute__((warn_unused_result));

/* Reference counting: a bundle is shared by snapshots on several threads. */
void crt_bundle_addref(crt_bundle_t *bundle);
void crt_bundle_release(crt_bundle_t *bundle);

/* The roots (borrowed; valid while the bundle lives). */
STACK_OF(X509) * crt_bundle_roots(const crt_bundle_t *bundle);

/* Which extendedKeyUsage the leaf needs. */
typedef enum { CRT_USAGE_ANY = 0, CRT_USAGE_CLIENT, CRT_USAGE_SERVER } crt_usage_t;

typedef struct st_crt_verify_opts_t {
    crt_usage_t usage;
    int require_spiffe;            /* the leaf must carry exactly one valid workload SPIFFE ID */
    const char *trust_domain;      /* if set, the ID must be in it */
    const char *expected_id;       /* if set, the ID must equal it */
} crt_verify_opts_t;

typedef struct st_crt_verify_result_t {
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1];  /* "" when the leaf has none */
    int depth;                               /* chain position of the failure, -1 if none */
    char detail[512];                        /* one line for logs: why, with names */
} crt_verify_result_t;

/*
 * Verifies leaf (+ untrusted intermediates, may be NULL) against bundle at time
 * now, then checks the leaf profile and identity per opts. Pure: no clock, no
 * global state. Returns 0 with res->spiffe_id set, or the failure category
 * (CRT_E_EXPIRED ... CRT_E_IDENTITY_MISMATCH, see error.h) with res->detail.
 */
int crt_verify_chain(const crt_bundle_t *bundle, X509 *leaf, STACK_OF(X509) * untrusted, time_t now,
                     const crt_verify_opts_t *opts, crt_verify_result_t *res) __attribute__((warn_unused_result));

/*
 * The leaf's SPIFFE ID when it has exactly one URI SAN that parses as a
 * workload ID. Returns 0, CRT_E_NO_URI_SAN, CRT_E_SEVERAL_URI_SANS or
 * CRT_E_BAD_SPIFFE_ID.
 */
int crt_cert_spiffe_id(X509 *cert, char *buf, size_t cap) __attribute__((warn_unused_result));

#endif
