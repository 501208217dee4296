/* Test fixture: a throw-away CA (root + intermediate) made in memory at run time. */
#ifndef SEAM_TESTS_CERTS_FIXTURE_H
#define SEAM_TESTS_CERTS_FIXTURE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>

#include "certs/issue.h"
#include "certs/pem.h"
#include "certs/verify.h"

#define FIXTURE_NOW ((time_t)1800000000) /* a fixed clock: 2027-01-15 */
#define FIXTURE_TD "cluster.local"
#define FIXTURE_ID "spiffe://cluster.local/ns/default/sa/web"

typedef struct {
    EVP_PKEY *root_key, *int_key;
    X509 *root, *intermediate;
    crt_bundle_t *bundle;
} fixture_ca_t;

static inline void fixture_ca_init(fixture_ca_t *ca, const char *td)
{
    STACK_OF(X509) *roots = sk_X509_new_null();
    if (crt_key_generate(&ca->root_key) != 0 || crt_key_generate(&ca->int_key) != 0 ||
        crt_issue_root(ca->root_key, td, FIXTURE_NOW - 86400, 3650, &ca->root) != 0 ||
        crt_issue_intermediate(ca->root, ca->root_key, ca->int_key, td, FIXTURE_NOW - 86400, 365,
                               &ca->intermediate) != 0 ||
        roots == NULL || !sk_X509_push(roots, ca->root) || crt_bundle_from_certs(roots, &ca->bundle) != 0)
        abort();
    sk_X509_free(roots);
}

static inline void fixture_ca_free(fixture_ca_t *ca)
{
    EVP_PKEY_free(ca->root_key);
    EVP_PKEY_free(ca->int_key);
    X509_free(ca->root);
    X509_free(ca->intermediate);
    crt_bundle_release(ca->bundle);
}

/* A profile that is DESIGN.md's leaf profile for uri; tests then break one field. */
static inline crt_cert_profile_t fixture_leaf_profile(const char *const *uris, size_t num_uris)
{
    crt_cert_profile_t p = {.not_before = FIXTURE_NOW - 60,
                            .not_after = FIXTURE_NOW + 3600,
                            .uri_sans = uris,
                            .num_uri_sans = num_uris,
                            .path_len = -1,
                            .key_usage = CRT_KU_DIGITAL_SIGNATURE,
                            .ext_key_usage = CRT_EKU_SERVER | CRT_EKU_CLIENT};
    if (crt_serial_random(p.serial) != 0)
        abort();
    return p;
}

/* Builds a leaf from profile, signed by ca's intermediate. */
static inline X509 *fixture_leaf(fixture_ca_t *ca, const crt_cert_profile_t *p)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    if (crt_key_generate(&key) != 0 || crt_cert_build(p, key, ca->intermediate, ca->int_key, &cert) != 0)
        abort();
    EVP_PKEY_free(key);
    return cert;
}

/* A stack holding just the intermediate (borrowed), as a peer would send it. */
static inline STACK_OF(X509) * fixture_chain(fixture_ca_t *ca)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL || !sk_X509_push(chain, ca->intermediate))
        abort();
    return chain;
}

#endif
