/* seam-ca's error vocabulary: one code, HTTP status, slug and message per refusal. */
#ifndef SEAM_CONTROL_ERROR_H
#define SEAM_CONTROL_ERROR_H

/*
 * CA_ERROR_MAP(XX) lists every error as XX(NAME, status, "slug", "message").
 * The slug is the "error" field of a JSON error reply and the result label of
 * seam_ca_sign_total; it is stable, operators and tests match it.
 */
#define CA_ERROR_MAP(XX)                                                                                         \
    XX(BAD_JSON, 400, "bad-json", "the request body is not a JSON object")                                     \
    XX(MISSING_CSR, 400, "missing-csr", "the request has no \"csr\" string")                                   \
    XX(BAD_TTL, 400, "bad-ttl", "ttl_seconds must be a positive integer")                                      \
    XX(BAD_CSR, 400, "bad-csr", "the CSR is not a PEM certificate request")                                    \
    XX(CSR_BAD_SIGNATURE, 400, "csr-bad-signature", "the CSR's signature does not verify")                     \
    XX(CSR_KEY_TYPE, 400, "csr-key-type", "the CSR's key is not ECDSA P-256")                                  \
    XX(CSR_SANS, 400, "csr-sans", "the CSR must carry exactly one URI SAN and no DNS, IP or email SAN")         \
    XX(CSR_BAD_SPIFFE_ID, 400, "csr-bad-spiffe-id", "the CSR's URI SAN is not a workload SPIFFE ID")           \
    XX(MISSING_CREDENTIAL, 401, "missing-credential",                                                            \
       "no credential: send a service-account token, a join token or a client certificate")                     \
    XX(BAD_AUTHORIZATION, 401, "bad-authorization", "the Authorization header is not \"Bearer <token>\"")      \
    XX(MALFORMED_TOKEN, 401, "malformed-token", "the token is not a well-formed JWT")                          \
    XX(UNSUPPORTED_ALG, 401, "unsupported-alg", "the token's algorithm is not RS256 or ES256")                 \
    XX(ALG_MISMATCH, 401, "alg-mismatch", "the token's algorithm does not match its key in the JWKS")         \
    XX(UNKNOWN_KID, 401, "unknown-kid", "the token's key id is not in the JWKS")                               \
    XX(BAD_TOKEN_SIGNATURE, 401, "bad-token-signature", "the token's signature does not verify")               \
    XX(TOKEN_EXPIRED, 401, "token-expired", "the token has expired")                                           \
    XX(TOKEN_NOT_YET_VALID, 401, "token-not-yet-valid", "the token is not valid yet (nbf)")                    \
    XX(TOKEN_IAT_FUTURE, 401, "token-iat-future", "the token claims to be issued in the future (iat)")         \
    XX(MISSING_CLAIM, 401, "missing-claim", "the token lacks a required claim")                                \
    XX(WRONG_ISSUER, 401, "wrong-issuer", "the token's issuer (iss) is not the configured one")                \
    XX(WRONG_AUDIENCE, 401, "wrong-audience", "the token's audience (aud) does not include this CA")           \
    XX(BAD_SUBJECT, 401, "bad-subject", "the token's sub is not system:serviceaccount:NAMESPACE:NAME")         \
    XX(JWT_DISABLED, 401, "jwt-disabled", "this CA accepts no service-account tokens (no --jwks)")             \
    XX(JOIN_TOKEN_DISABLED, 401, "join-tokens-disabled", "this CA accepts no join tokens (no --join-tokens)")   \
    XX(JOIN_TOKEN_UNKNOWN, 401, "join-token-unknown", "the join token is not known to this CA")                \
    XX(JOIN_TOKEN_USED, 401, "join-token-used", "the join token has already been used")                        \
    XX(JOIN_TOKEN_EXPIRED, 401, "join-token-expired", "the join token has expired")                            \
    XX(CLIENT_CERT_EXPIRED, 401, "client-cert-expired", "the client certificate has expired or is not valid yet") \
    XX(CLIENT_CERT_UNTRUSTED, 401, "client-cert-untrusted",                                                      \
       "the client certificate does not chain to this CA's trust bundle")                                       \
    XX(CLIENT_CERT_INVALID, 401, "client-cert-invalid", "the client certificate is not a valid SPIFFE leaf")   \
    XX(OUT_OF_TRUST_DOMAIN, 403, "out-of-trust-domain", "the CSR's SPIFFE ID is not in this CA's trust domain") \
    XX(IDENTITY_MISMATCH, 403, "identity-mismatch",                                                              \
       "the CSR's SPIFFE ID is not the identity the credential proves")                                         \
    XX(RESERVED_IDENTITY, 403, "reserved-identity",                                                              \
       "the CSR's SPIFFE ID is reserved (the CA's own identity or a --reserved-id); it is never signed")        \
    XX(NOT_FOUND, 404, "not-found", "no such endpoint")                                                          \
    XX(METHOD_NOT_ALLOWED, 405, "method-not-allowed", "this endpoint does not take that method")              \
    XX(BODY_TOO_LARGE, 413, "body-too-large", "the request body exceeds its size limit")                       \
    XX(RATE_LIMITED, 429, "rate-limited", "too many certificates for this identity; retry later")             \
    XX(TOO_MANY_BAD_CREDENTIALS, 429, "too-many-bad-credentials",                                                \
       "too many refused credentials from this address; retry later")                                           \
    XX(CA_NOT_READY, 500, "ca-not-ready", "the CA cannot sign now; see /healthz")                              \
    XX(JOURNAL, 500, "journal-failed", "the issuance could not be recorded in the journal")                    \
    XX(IO, 500, "io", "a file could not be read or written")                                                    \
    XX(CONFIG, 500, "config", "a configuration file is invalid")                                                \
    XX(NOMEM, 500, "nomem", "out of memory")                                                                    \
    XX(INTERNAL, 500, "internal", "internal error")

typedef enum {
    CA_OK = 0,
    CA__ERROR_FIRST = -2000,
#define CA_ERROR_ENUM(name, status, slug, msg) CA_E_##name,
    CA_ERROR_MAP(CA_ERROR_ENUM)
#undef CA_ERROR_ENUM
    CA__ERROR_END
} ca_error_t;

#define CA_ERROR_COUNT (CA__ERROR_END - CA__ERROR_FIRST - 1)

/* Stable slug ("token-expired"); "ok" for CA_OK, "internal" for an unknown code. */
const char *ca_error_slug(int err);

/* One-sentence description of err. */
const char *ca_error_message(int err);

/* HTTP status for err (200 for CA_OK, 500 for an unknown code). */
int ca_error_status(int err);

/* Index 0 .. CA_ERROR_COUNT-1 of a CA_E_* code, for per-error counters; -1 otherwise. */
int ca_error_index(int err);

#endif
