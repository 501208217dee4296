/* Offline verification of Kubernetes service-account JWTs against a JWKS (RS256 and ES256 only). */
#ifndef SEAM_CONTROL_JWT_H
#define SEAM_CONTROL_JWT_H

#include <stddef.h>
#include <time.h>

#include "certs/spiffe.h"

#define CA_JWT_MAX (16 * 1024)        /* largest token accepted, bytes */
#define CA_JWKS_MAX (256 * 1024)      /* largest JWKS file, bytes */
#define CA_JWKS_MAX_KEYS 64           /* keys in one JWKS */
#define CA_JWT_SKEW_SECONDS 60        /* clock skew allowed on exp, nbf and iat */
#define CA_JWT_RSA_MIN_BITS 2048      /* smaller RSA keys in the JWKS are refused */
#define CA_JWT_CLAIM_MAX 256          /* longest sub / jti we keep */


/* A parsed, immutable JWKS: each key carries the one algorithm it may verify. */
typedef struct st_ca_jwks_t ca_jwks_t;

/*
 * Parses a JWKS ({"keys":[...]}) from json[0..len). RSA keys (kty RSA, at
 * least CA_JWT_RSA_MIN_BITS) are pinned to RS256 and EC keys (kty EC, crv
 * P-256) to ES256; a key whose "alg" or "use" says otherwise is refused, as is
 * any other kty. Returns 0 and a new *out (free with ca_jwks_free), or
 * CA_E_CONFIG with detail naming the key index and field.
 */
int ca_jwks_parse(const char *json, size_t len, ca_jwks_t **out, char *detail, size_t detail_cap)
    __attribute__((warn_unused_result));

/* Number of keys in jwks. */
size_t ca_jwks_num_keys(const ca_jwks_t *jwks);

void ca_jwks_free(ca_jwks_t *jwks);

/* What the caller accepts; all strings borrowed. */
typedef struct st_ca_jwt_policy_t {
    const char *issuer;        /* exact "iss" */
    const char *audience;      /* must be "aud" or one of its entries */
    time_t now;                /* the clock, passed in */
    long skew_seconds;         /* normally CA_JWT_SKEW_SECONDS */
} ca_jwt_policy_t;

/* The claims a verified token proves. */
typedef struct st_ca_jwt_claims_t {
    char sub[CA_JWT_CLAIM_MAX + 1];
    char namespace_name[CA_JWT_CLAIM_MAX + 1];
    char service_account[CA_JWT_CLAIM_MAX + 1];
    char jti[CA_JWT_CLAIM_MAX + 1];   /* "" when absent */
    long long exp;
} ca_jwt_claims_t;

/*
 * Verifies token[0..len): exactly three base64url parts, a JSON header whose
 * alg is RS256 or ES256 and equals the pinned algorithm of the JWKS key named
 * by kid (a token without kid is accepted only when the JWKS holds one key),
 * the signature checked with that key, then iss, aud, exp (required), nbf and
 * iat against policy->now with the skew, and sub of the form
 * system:serviceaccount:NS:SA. Pure: no clock read, no I/O.
 * Returns 0 with *claims filled, or a CA_E_* code (MALFORMED_TOKEN,
 * UNSUPPORTED_ALG, UNKNOWN_KID, ALG_MISMATCH, BAD_TOKEN_SIGNATURE,
 * WRONG_ISSUER, WRONG_AUDIENCE, MISSING_CLAIM, TOKEN_EXPIRED,
 * TOKEN_NOT_YET_VALID, TOKEN_IAT_FUTURE, BAD_SUBJECT) with detail set.
 */
int ca_jwt_verify(const ca_jwks_t *jwks, const char *token, size_t len, const ca_jwt_policy_t *policy,
                  ca_jwt_claims_t *claims, char *detail, size_t detail_cap) __attribute__((warn_unused_result));

#endif
