/* Building and signing certificates: roots, intermediates and SPIFFE leaves. */
#ifndef SEAM_CERTS_ISSUE_H
#define SEAM_CERTS_ISSUE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#define CRT_SERIAL_LEN 16              /* random 128-bit serials */
#define CRT_LEAF_BACKDATE_SECONDS 60   /* notBefore backdating for clock skew */
#define CRT_LEAF_TTL_DEFAULT 3600      /* 1 h */
#define CRT_LEAF_TTL_MAX (24 * 3600)   /* 24 h */

/* keyUsage bits for crt_cert_profile_t.key_usage */
#define CRT_KU_DIGITAL_SIGNATURE 0x1
#define CRT_KU_KEY_CERT_SIGN 0x2
#define CRT_KU_CRL_SIGN 0x4
/* extKeyUsage bits for crt_cert_profile_t.ext_key_usage */
#define CRT_EKU_SERVER 0x1
#define CRT_EKU_CLIENT 0x2
#define CRT_EKU_CODE_SIGNING 0x4

/*
 * Everything that goes into one certificate. The library's issuing functions
 * fill it with DESIGN.md's profiles; tests fill it by hand to make the bad
 * certificates that verification must refuse. All pointers are borrowed.
 */
typedef struct st_crt_cert_profile_t {
    unsigned char serial[CRT_SERIAL_LEN];
    time_t not_before;
    time_t not_after;
    const char *subject_cn;            /* NULL: empty subject (then the SAN is critical) */
    const char *const *uri_sans;       /* URI SANs */
    size_t num_uri_sans;
    const char *const *dns_sans;       /* DNS SANs */
    size_t num_dns_sans;
    int is_ca;                          /* basicConstraints CA:TRUE */
    int path_len;                       /* pathLenConstraint for CAs; < 0: none */
    unsigned key_usage;                 /* CRT_KU_*; 0: no extension */
    unsigned ext_key_usage;             /* CRT_EKU_*; 0: no extension */
    const char *permitted_uri_domain;   /* name constraint (URI host); NULL: none */
} crt_cert_profile_t;

/* Fills serial with CRT_SERIAL_LEN random bytes forming a positive integer. Returns 0 or CRT_E_INTERNAL. */
int crt_serial_random(unsigned char serial[CRT_SERIAL_LEN]) __attribute__((warn_unused_result));

/* Lowercase hex of a serial (2 * CRT_SERIAL_LEN + 1 bytes). */
void crt_serial_hex(const unsigned char serial[CRT_SERIAL_LEN], char *out);

/*
 * Builds and signs a certificate for subject_key's public key. issuer_cert NULL
 * means self-signed (issuer_key must then be subject_key). Borrows every input;
 * *out is new and owned by the caller. Returns 0 or a negative crt_error_t.
 */
int crt_cert_build(const crt_cert_profile_t *profile, EVP_PKEY *subject_key, X509 *issuer_cert, EVP_PKEY *issuer_key,
                   X509 **out) __attribute__((warn_unused_result));

/* A self-signed root CA for trust domain td, valid from now - 60 s for days. */
int crt_issue_root(EVP_PKEY *key, const char *td, time_t now, long days, X509 **out)
    __attribute__((warn_unused_result));

/* An intermediate CA signed by root, name-constrained to URIs in td, path length 0. */
int crt_issue_intermediate(X509 *root, EVP_PKEY *root_key, EVP_PKEY *key, const char *td, time_t now, long days,
                           X509 **out) __attribute__((warn_unused_result));

/*
 * A leaf with DESIGN.md's profile: one critical URI SAN (spiffe_id), empty
 * subject, CA:FALSE, digitalSignature, serverAuth + clientAuth, notBefore
 * now - 60 s, notAfter now + ttl_seconds but never after the issuer's notAfter.
 * dns_sans (may be NULL) adds DNS names, for the CA's own serving certificate.
 * Returns CRT_E_BAD_TTL when ttl_seconds <= 0 or the issuer expires before now.
 */
int crt_issue_leaf(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *leaf_key, const char *spiffe_id,
                   const char *const *dns_sans, size_t num_dns_sans, time_t now, long ttl_seconds,
                   const unsigned char serial[CRT_SERIAL_LEN], X509 **out) __attribute__((warn_unused_result));

#endif
