/* JWT verification with the algorithm pinned by the JWKS key, never by the token header. */
#include "control/jwt.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/error.h"
#include "common/base64url.h"

#define KID_MAX 256
#define ES256_COORD_LEN 32
#define ES256_SIG_LEN 64
#define RSA_COMPONENT_MAX 1024 /* bytes: an 8192-bit modulus */

typedef enum { JWT_ALG_RS256 = 1, JWT_ALG_ES256 } jwt_alg_t;

struct st_ca_jwks_key_t {
    char kid[KID_MAX + 1];
    int has_kid;
    jwt_alg_t alg;
    EVP_PKEY *pkey;
};

struct st_ca_jwks_t {
    struct st_ca_jwks_key_t keys[CA_JWKS_MAX_KEYS];
    size_t num_keys;
};


/* ---- JWKS --------------------------------------------------------------- */

static BIGNUM *decode_bignum(json_t *obj, const char *field, size_t max_len, size_t exact_len)
{
    json_t *v = json_object_get(obj, field);
    unsigned char buf[RSA_COMPONENT_MAX];
    size_t n;

    if (!json_is_string(v) || max_len > sizeof(buf))
        return NULL;
    if (cmn_base64url_decode(json_string_value(v), json_string_length(v), buf, max_len, &n) != 0 || n == 0)
        return NULL;
    if (exact_len != 0 && n != exact_len)
        return NULL;
    return BN_bin2bn(buf, (int)n, NULL);
}

static EVP_PKEY *jwk_rsa_key(json_t *jwk, char *why, size_t cap)
{
    BIGNUM *n = decode_bignum(jwk, "n", RSA_COMPONENT_MAX, 0), *e = decode_bignum(jwk, "e", 8, 0);
    RSA *rsa = NULL;
    EVP_PKEY *pkey = NULL, *ret = NULL;

    if (n == NULL || e == NULL) {
        snprintf(why, cap, "\"n\" and \"e\" must be base64url integers");
        goto Exit;
    }
    if (BN_num_bits(n) < CA_JWT_RSA_MIN_BITS) {
        snprintf(why, cap, "RSA modulus has %d bits, at least %d are required", BN_num_bits(n), CA_JWT_RSA_MIN_BITS);
        goto Exit;
    }
    if ((rsa = RSA_new()) == NULL || !RSA_set0_key(rsa, n, e, NULL)) {
        snprintf(why, cap, "RSA key could not be built");
        goto Exit;
    }
    n = e = NULL;
    if ((pkey = EVP_PKEY_new()) == NULL || !EVP_PKEY_assign_RSA(pkey, rsa)) {
        snprintf(why, cap, "RSA key could not be built");
        goto Exit;
    }
    rsa = NULL;
    ret = pkey;
    pkey = NULL;

Exit:
    ERR_clear_error();
    BN_free(n);
    BN_free(e);
    RSA_free(rsa);
    EVP_PKEY_free(pkey);
    return ret;
}

static EVP_PKEY *jwk_ec_key(json_t *jwk, char *why, size_t cap)
{
    json_t *crv = json_object_get(jwk, "crv");
    BIGNUM *x = NULL, *y = NULL;
    EC_KEY *ec = NULL;
    EVP_PKEY *pkey = NULL, *ret = NULL;

    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0) {
        snprintf(why, cap, "\"crv\" must be P-256");
        goto Exit;
    }
    x = decode_bignum(jwk, "x", ES256_COORD_LEN, ES256_COORD_LEN);
    y = decode_bignum(jwk, "y", ES256_COORD_LEN, ES256_COORD_LEN);
    if (x == NULL || y == NULL) {
        snprintf(why, cap, "\"x\" and \"y\" must be 32-byte base64url coordinates");
        goto Exit;
    }
    if ((ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
        EC_KEY_set_public_key_affine_coordinates(ec, x, y) != 1) {
        snprintf(why, cap, "the point is not on P-256");
        goto Exit;
    }
    if ((pkey = EVP_PKEY_new()) == NULL || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
        snprintf(why, cap, "EC key could not be built");
        goto Exit;
    }
    ec = NULL;
    ret = pkey;
    pkey = NULL;

Exit:
    ERR_clear_error();
    BN_free(x);
    BN_free(y);
    EC_KEY_free(ec);
    EVP_PKEY_free(pkey);
    return ret;
}

static int jwk_parse(json_t *jwk, struct st_ca_jwks_key_t *key, char *why, size_t cap)
{
    json_t *kty = json_object_get(jwk, "kty"), *alg = json_object_get(jwk, "alg"), *use = json_object_get(jwk, "use"),
           *kid = json_object_get(jwk, "kid");
    const char *want_alg;

    if (!json_is_object(jwk)) {
        snprintf(why, cap, "not a JSON object");
        return -1;
    }
    if (!json_is_string(kty)) {
        snprintf(why, cap, "\"kty\" is missing");
        return -1;
    }
    if (strcmp(json_string_value(kty), "RSA") == 0) {
        key->alg = JWT_ALG_RS256;
        want_alg = "RS256";
    } else if (strcmp(json_string_value(kty), "EC") == 0) {
        key->alg = JWT_ALG_ES256;
        want_alg = "ES256";
    } else {
        snprintf(why, cap, "\"kty\" %.32s is not RSA or EC", json_string_value(kty));
        return -1;
    }
    if (alg != NULL && (!json_is_string(alg) || strcmp(json_string_value(alg), want_alg) != 0)) {
        snprintf(why, cap, "\"alg\" must be %s for kty %s", want_alg, json_string_value(kty));
        return -1;
    }
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
        snprintf(why, cap, "\"use\" must be sig");
        return -1;
    }
    if (kid != NULL) {
        if (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) > KID_MAX) {
            snprintf(why, cap, "\"kid\" must be a string of 1 to %d bytes", KID_MAX);
            return -1;
        }
        memcpy(key->kid, json_string_value(kid), json_string_length(kid) + 1);
        key->has_kid = 1;
    }
    key->pkey = key->alg == JWT_ALG_RS256 ? jwk_rsa_key(jwk, why, cap) : jwk_ec_key(jwk, why, cap);
    return key->pkey == NULL ? -1 : 0;
}

int ca_jwks_parse(const char *json, size_t len, ca_jwks_t **out, char *detail, size_t detail_cap)
{
    json_error_t jerr;
    json_t *root = NULL, *keys;
    ca_jwks_t *jwks = NULL;
    char why[200] = "";
    int ret = CA_E_CONFIG;

    if (len > CA_JWKS_MAX) {
        snprintf(detail, detail_cap, "larger than %d bytes", CA_JWKS_MAX);
        goto Exit;
    }
    if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        snprintf(detail, detail_cap, "line %d: %s", jerr.line, jerr.text);
        goto Exit;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        snprintf(detail, detail_cap, "\"keys\" must be a non-empty array");
        goto Exit;
    }
    if (json_array_size(keys) > CA_JWKS_MAX_KEYS) {
        snprintf(detail, detail_cap, "\"keys\" holds more than %d keys", CA_JWKS_MAX_KEYS);
        goto Exit;
    }
    if ((jwks = calloc(1, sizeof(*jwks))) == NULL) {
        ret = CA_E_NOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < json_array_size(keys); ++i) {
        if (jwk_parse(json_array_get(keys, i), &jwks->keys[i], why, sizeof(why)) != 0) {
            snprintf(detail, detail_cap, "keys[%zu]: %s", i, why);
            goto Exit;
        }
        jwks->num_keys = i + 1;
        for (size_t j = 0; j < i; ++j) {
            if (jwks->keys[i].has_kid && jwks->keys[j].has_kid && strcmp(jwks->keys[i].kid, jwks->keys[j].kid) == 0) {
                snprintf(detail, detail_cap, "keys[%zu]: \"kid\" repeats keys[%zu]", i, j);
                goto Exit;
            }
        }
    }
    *out = jwks;
    jwks = NULL;
    ret = 0;

Exit:
    json_decref(root);
    ca_jwks_free(jwks);
    return ret;
}

size_t ca_jwks_num_keys(const ca_jwks_t *jwks)
{
    return jwks->num_keys;
}

void ca_jwks_free(ca_jwks_t *jwks)
{
    if (jwks == NULL)
        return;
    for (size_t i = 0; i < jwks->num_keys; ++i)
        EVP_PKEY_free(jwks->keys[i].pkey);
    free(jwks);
}

/* ---- tokens ------------------------------------------------------------- */

/* Decodes one base64url JSON part into a new object, or NULL. */
static json_t *decode_json_part(const char *part, size_t len)
{
    unsigned char *buf = malloc(len + 1);
    json_t *obj = NULL;
    size_t n;

    if (buf == NULL)
        return NULL;
    if (cmn_base64url_decode(part, len, buf, len, &n) == 0)
        obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* JWS ES256 signatures are r || s; OpenSSL wants DER. */
static int es256_to_der(const unsigned char *raw, unsigned char **der, size_t *der_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, ES256_COORD_LEN, NULL), *s = BN_bin2bn(raw + ES256_COORD_LEN, ES256_COORD_LEN, NULL);
    int ret = -1, n;

    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s))
        goto Exit;
    r = s = NULL;
    *der = NULL;
    if ((n = i2d_ECDSA_SIG(sig, der)) <= 0)
        goto Exit;
    *der_len = (size_t)n;
    ret = 0;

Exit:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return ret;
}

static int verify_signature(const struct st_ca_jwks_key_t *key, const char *signed_part, size_t signed_len,
                            const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    int ok = 0;

    if (md == NULL)
        goto Exit;
    if (key->alg == JWT_ALG_ES256) {
        if (sig_len != ES256_SIG_LEN || es256_to_der(sig, &der, &sig_len) != 0)
            goto Exit;
        sig = der;
    } else if (sig_len != (size_t)EVP_PKEY_size(key->pkey)) {
        goto Exit;
    }
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1)
        goto Exit;
    ok = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)signed_part, signed_len) == 1;

Exit:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok;
}


/* Reads a NumericDate claim; returns 1 when present and valid, 0 when absent, -1 when malformed. */
static int get_time_claim(json_t *claims, const char *name, long long *out)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v) && json_real_value(v) > -1e15 && json_real_value(v) < 1e15) {
        *out = (long long)json_real_value(v);
        return 1;
    }
    return -1;
}

static int audience_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        for (size_t i = 0; i < json_array_size(aud); ++i) {
            json_t *a = json_array_get(aud, i);
            if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
                return 1;
        }
    }
    return 0;
}

static int check_claims(json_t *claims, const ca_jwt_policy_t *policy, ca_jwt_claims_t *out, char *detail,
                        size_t detail_cap)
{
    json_t *iss = json_object_get(claims, "iss"), *sub = json_object_get(claims, "sub"),
           *jti = json_object_get(claims, "jti");
    long long exp = 0, nbf = 0, iat = 0, now = (long long)policy->now, skew = policy->skew_seconds;
    int has;

    if (!json_is_string(iss) || strcmp(json_string_value(iss), policy->issuer) != 0) {
        snprintf(detail, detail_cap, "iss is %.200s, expected %.200s", json_is_string(iss) ? json_string_value(iss) : "absent",
                 policy->issuer);
        return CA_E_WRONG_ISSUER;
    }
    if (!audience_matches(json_object_get(claims, "aud"), policy->audience)) {
        snprintf(detail, detail_cap, "aud does not include %.200s", policy->audience);
        return CA_E_WRONG_AUDIENCE;
    }
    if ((has = get_time_claim(claims, "exp", &exp)) <= 0) {
        snprintf(detail, detail_cap, "exp is %s", has == 0 ? "missing" : "not a number");
        return has == 0 ? CA_E_MISSING_CLAIM : CA_E_MALFORMED_TOKEN;
    }
    if (now - skew >= exp) {
        snprintf(detail, detail_cap, "expired %lld s ago", now - exp);
        return CA_E_TOKEN_EXPIRED;
    }
    if ((has = get_time_claim(claims, "nbf", &nbf)) < 0) {
        snprintf(detail, detail_cap, "nbf is not a number");
        return CA_E_MALFORMED_TOKEN;
    }
    if (has && now + skew < nbf) {
        snprintf(detail, detail_cap, "valid in %lld s (nbf)", nbf - now);
        return CA_E_TOKEN_NOT_YET_VALID;
    }
    if ((has = get_time_claim(claims, "iat", &iat)) < 0) {
        snprintf(detail, detail_cap, "iat is not a number");
        return CA_E_MALFORMED_TOKEN;
    }
    if (has && now + skew < iat) {
        snprintf(detail, detail_cap, "issued %lld s in the future (iat)", iat - now);
        return CA_E_TOKEN_IAT_FUTURE;
    }
    if (!json_is_string(sub) || json_string_length(sub) > CA_JWT_CLAIM_MAX) {
        snprintf(detail, detail_cap, "sub is missing or too long");
        return CA_E_BAD_SUBJECT;
    }
    memcpy(out->sub, json_string_value(sub), json_string_length(sub) + 1);
    if (cmn_k8s_subject_split(out->sub, out->namespace_name, out->service_account, sizeof(out->service_account)) != 0) {
        snprintf(detail, detail_cap, "sub %.200s is not system:serviceaccount:NAMESPACE:NAME", out->sub);
        return CA_E_BAD_SUBJECT;
    }
    if (jti != NULL) {
        if (!json_is_string(jti) || json_string_length(jti) > CA_JWT_CLAIM_MAX) {
            snprintf(detail, detail_cap, "jti is not a string of at most %d bytes", CA_JWT_CLAIM_MAX);
            return CA_E_MALFORMED_TOKEN;
        }
        memcpy(out->jti, json_string_value(jti), json_string_length(jti) + 1);
    }
    out->exp = exp;
    return 0;
}

int ca_jwt_verify(const ca_jwks_t *jwks, const char *token, size_t len, const ca_jwt_policy_t *policy,
                  ca_jwt_claims_t *claims, char *detail, size_t detail_cap)
{
    const char *dot1, *dot2, *alg_name;
    json_t *header = NULL, *payload = NULL, *alg, *kid;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const struct st_ca_jwks_key_t *key = NULL;
    jwt_alg_t alg_wanted;
    int ret = CA_E_MALFORMED_TOKEN;

    memset(claims, 0, sizeof(*claims));
    detail[0] = '\0';
    if (len == 0 || len > CA_JWT_MAX) {
        snprintf(detail, detail_cap, "token length %zu is out of range", len);
        goto Exit;
    }
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
        snprintf(detail, detail_cap, "a JWT has exactly three dot-separated parts");
        goto Exit;
    }
    if ((header = decode_json_part(token, (size_t)(dot1 - token))) == NULL) {
        snprintf(detail, detail_cap, "the header is not base64url JSON");
        goto Exit;
    }
    if ((payload = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1))) == NULL) {
        snprintf(detail, detail_cap, "the payload is not base64url JSON");
        goto Exit;
    }
    size_t sig_b64_len = len - (size_t)(dot2 + 1 - token);
    if ((sig = malloc(sig_b64_len + 1)) == NULL) {
        ret = CA_E_NOMEM;
        goto Exit;
    }
    if (cmn_base64url_decode(dot2 + 1, sig_b64_len, sig, sig_b64_len, &sig_len) != 0) {
        snprintf(detail, detail_cap, "the signature is not base64url");
        goto Exit;
    }
    alg = json_object_get(header, "alg");
    if (!json_is_string(alg)) {
        snprintf(detail, detail_cap, "the header has no alg");
        goto Exit;
    }
    alg_name = json_string_value(alg);
    if (strcmp(alg_name, "RS256") == 0) {
        alg_wanted = JWT_ALG_RS256;
    } else if (strcmp(alg_name, "ES256") == 0) {
        alg_wanted = JWT_ALG_ES256;
    } else {
        snprintf(detail, detail_cap, "alg %.32s is not accepted", alg_name);
        ret = CA_E_UNSUPPORTED_ALG;
        goto Exit;
    }
    if (json_object_get(header, "crit") != NULL) {
        snprintf(detail, detail_cap, "the header has crit extensions");
        goto Exit;
    }
    kid = json_object_get(header, "kid");
    if (kid != NULL) {
        if (!json_is_string(kid)) {
            snprintf(detail, detail_cap, "kid is not a string");
            goto Exit;
        }
        for (size_t i = 0; i < jwks->num_keys && key == NULL; ++i)
            if (jwks->keys[i].has_kid && strcmp(jwks->keys[i].kid, json_string_value(kid)) == 0)
                key = &jwks->keys[i];
        if (key == NULL) {
            snprintf(detail, detail_cap, "kid %.64s is not in the JWKS", json_string_value(kid));
            ret = CA_E_UNKNOWN_KID;
            goto Exit;
        }
    } else if (jwks->num_keys == 1) {
        key = &jwks->keys[0];
    } else {
        snprintf(detail, detail_cap, "the token has no kid and the JWKS holds several keys");
        ret = CA_E_UNKNOWN_KID;
        goto Exit;
    }
    /* The key decides the algorithm; the header may only agree with it. */
    if (key->alg != alg_wanted) {
        snprintf(detail, detail_cap, "alg %s does not match the %s key", alg_name,
                 key->alg == JWT_ALG_RS256 ? "RS256" : "ES256");
        ret = CA_E_ALG_MISMATCH;
        goto Exit;
    }
    if (!verify_signature(key, token, (size_t)(dot2 - token), sig, sig_len)) {
        snprintf(detail, detail_cap, "signature does not verify with key %.64s", key->has_kid ? key->kid : "(no kid)");
        ret = CA_E_BAD_TOKEN_SIGNATURE;
        goto Exit;
    }
    ret = check_claims(payload, policy, claims, detail, detail_cap);

Exit:
    free(sig);
    json_decref(header);
    json_decref(payload);
    return ret;
}
