/* libFuzzer target for control/jwt.c: base64url round-trips, and no forged token ever verifies. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/jwt.h"
#include "common/base64url.h"

static ca_jwks_t *jwks;

/* One P-256 key, made at start: the fuzzer cannot know its private half. */
static void make_jwks(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
    BIGNUM *x = BN_new(), *y = BN_new();
    unsigned char xb[32], yb[32];
    char xs[64], ys[64], json[512], detail[256];

    if (key == NULL || ec == NULL ||
        !EC_POINT_get_affine_coordinates(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec), x, y, NULL) ||
        BN_bn2binpad(x, xb, 32) != 32 || BN_bn2binpad(y, yb, 32) != 32 || cmn_base64url_encode(xb, 32, xs, sizeof(xs)) != 0 ||
        cmn_base64url_encode(yb, 32, ys, sizeof(ys)) != 0)
        abort();
    snprintf(json, sizeof(json), "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k1\",\"x\":\"%s\",\"y\":\"%s\"}]}", xs, ys);
    if (ca_jwks_parse(json, strlen(json), &jwks, detail, sizeof(detail)) != 0)
        abort();
    BN_free(x);
    BN_free(y);
    EVP_PKEY_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char decoded[8192];
    static char encoded[16384];
    size_t len;

    if (jwks == NULL)
        make_jwks();
    if (size > 6000)
        return 0;
    /* A decoded value encodes back to exactly its input (one encoding per value). */
    if (cmn_base64url_decode((const char *)data, size, decoded, sizeof(decoded), &len) == 0) {
        if (cmn_base64url_encode(decoded, len, encoded, sizeof(encoded)) != 0 || strlen(encoded) != size ||
            memcmp(encoded, data, size) != 0)
            abort();
    }
    ca_jwt_policy_t policy = {.issuer = "https://kubernetes.default.svc", .audience = "seam-ca", .now = 1800000000, .skew_seconds = 60};
    ca_jwt_claims_t claims;
    char detail[256];
    if (ca_jwt_verify(jwks, (const char *)data, size, &policy, &claims, detail, sizeof(detail)) == 0)
        abort();
    return 0;
}
