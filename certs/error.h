/* The certs library's error vocabulary: one code, slug and message per failure. */
#ifndef SEAM_CERTS_ERROR_H
#define SEAM_CERTS_ERROR_H

#include <stddef.h>

/*
 * CRT_ERROR_MAP(XX) lists every error as XX(NAME, "slug", "message").
 * The slug is stable: it is printed by the CLI, used as a metric label
 * (seam_tls_handshake_errors_total{reason}) and matched by tests.
 * Chain-verification categories come first so that they read as one family.
 */
#define CRT_ERROR_MAP(XX)                                                                          \
    XX(EXPIRED, "expired", "a certificate in the chain has expired")                             \
    XX(NOT_YET_VALID, "not-yet-valid", "a certificate in the chain is not valid yet")            \
    XX(UNTRUSTED_ROOT, "untrusted-root", "the chain does not lead to a root in the trust bundle") \
    XX(MISSING_INTERMEDIATE, "missing-intermediate",                                              \
       "the chain lacks the intermediate that links the leaf to the trust bundle")                \
    XX(NO_URI_SAN, "no-uri-san", "the leaf has no URI SAN, so it carries no SPIFFE ID")           \
    XX(SEVERAL_URI_SANS, "several-uri-sans", "the leaf has more than one URI SAN")               \
    XX(BAD_SPIFFE_ID, "bad-spiffe-id", "the leaf's URI SAN is not a valid SPIFFE ID")            \
    XX(NOT_A_LEAF, "not-a-leaf", "the end-entity certificate is a CA (basicConstraints CA:TRUE)") \
    XX(WRONG_KEY_USAGE, "wrong-key-usage",                                                        \
       "the leaf's keyUsage or extKeyUsage does not allow this use")                              \
    XX(BAD_SIGNATURE, "bad-signature", "a certificate's signature does not verify")              \
    XX(NAME_CONSTRAINT, "name-constraint",                                                        \
       "the leaf's SPIFFE ID lies outside the trust domain its issuer may sign for")              \
    XX(INVALID_CHAIN, "invalid-chain", "the chain is invalid")                                    \
    XX(IDENTITY_MISMATCH, "identity-mismatch", "the peer's SPIFFE ID is not the expected one")    \
    XX(NOT_PEM, "not-pem", "not PEM data")                                                        \
    XX(BAD_DER, "bad-der", "PEM block holds truncated or malformed DER")                         \
    XX(NO_CERTIFICATE, "no-certificate", "no certificate found")                                 \
    XX(NO_KEY, "no-key", "no private key found")                                                 \
    XX(WRONG_KEY_TYPE, "wrong-key-type", "the key is not ECDSA P-256")                           \
    XX(KEY_MISMATCH, "key-mismatch", "the private key does not match the certificate")           \
    XX(CSR_BAD_SIGNATURE, "csr-bad-signature", "the CSR's signature does not verify")            \
    XX(CSR_SANS, "csr-sans", "the CSR must carry exactly one URI SAN and no other SAN")          \
    XX(OUT_OF_TRUST_DOMAIN, "out-of-trust-domain", "the SPIFFE ID is not in this trust domain")  \
    XX(BAD_TTL, "bad-ttl", "the requested lifetime is out of range")                              \
    XX(TOO_LARGE, "too-large", "input exceeds its size limit")                                   \
    XX(IO, "io", "file could not be read or written")                                            \
    XX(NOMEM, "nomem", "out of memory")                                                           \
    XX(INTERNAL, "internal", "internal error in the TLS library")

typedef enum {
    CRT_OK = 0,
#define CRT_ERROR_ENUM(name, slug, msg) CRT_E_##name,
    CRT__ERROR_FIRST = -1000,
    CRT_ERROR_MAP(CRT_ERROR_ENUM)
#undef CRT_ERROR_ENUM
    CRT__ERROR_END
} crt_error_t;

/* Stable short name ("expired") of an error code; "ok" for CRT_OK, "unknown" otherwise. */
const char *crt_error_slug(int err);

/* One-sentence human description of an error code. */
const char *crt_error_message(int err);

/* True when err is one of the chain-verification categories (EXPIRED .. IDENTITY_MISMATCH). */
int crt_error_is_verify_category(int err);

/*
 * Moves OpenSSL's pending error queue into buf as "; "-separated reasons so
 * that the queue is empty afterwards (STYLE.md rule 7). Writes "" when the
 * queue is empty. Returns buf.
 */
char *crt_error_drain_openssl(char *buf, size_t cap);

#endif
