/* The CA's signing material: intermediate certificate and key, and the trust bundle of roots. */
#ifndef SEAM_CONTROL_AUTHORITY_H
#define SEAM_CONTROL_AUTHORITY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "certs/issue.h"
#include "certs/spiffe.h"
#include "certs/verify.h"

#define CA_MAX_ROOTS 16

typedef struct st_ca_authority_t {
    char trust_domain[CRT_SPIFFE_TRUST_DOMAIN_MAX + 1];
    X509 *intermediate;             /* owned */
    EVP_PKEY *key;                  /* owned; the intermediate's private key, memory only */
    crt_bundle_t *bundle;           /* one reference owned */
    X509_STORE *store;              /* owned; the roots, for checking the intermediate */
    char *intermediate_pem;         /* owned */
    char *root_pems[CA_MAX_ROOTS];  /* owned, one PEM block per root */
    size_t num_roots;
    time_t intermediate_not_after;
    time_t root_not_after;          /* of the root the intermediate chains to (earliest root if none) */
} ca_authority_t;

/*
 * Loads DIR/intermediate.pem, DIR/intermediate.key and DIR/bundle.pem (or
 * DIR/root.pem when there is no bundle). The key must match the
 * intermediate, which must be a CA. The key text read from disk is cleansed.
 * Returns 0, or CA_E_IO / CA_E_CONFIG with detail naming the file.
 */
int ca_authority_load(const char *dir, const char *trust_domain, time_t now, ca_authority_t *ca, char *detail,
                      size_t detail_cap) __attribute__((warn_unused_result));

/*
 * Whether the CA may sign at now: the intermediate is within its validity and
 * chains to a root of the bundle. Returns 0 or CA_E_CA_NOT_READY with why.
 */
int ca_authority_check(const ca_authority_t *ca, time_t now, char *why, size_t why_cap)
    __attribute__((warn_unused_result));

/*
 * Issues a leaf for public_key (borrowed) with crt_issue_leaf(); the leaf
 * never outlives the intermediate. *out is new. Returns 0 or CA_E_INTERNAL / CA_E_CA_NOT_READY.
 */
int ca_authority_issue(const ca_authority_t *ca, EVP_PKEY *public_key, const char *spiffe_id,
                       const char *const *dns_names, size_t num_dns_names, time_t now, long ttl_seconds,
                       const unsigned char serial[CRT_SERIAL_LEN], X509 **out) __attribute__((warn_unused_result));

void ca_authority_dispose(ca_authority_t *ca);

#endif
