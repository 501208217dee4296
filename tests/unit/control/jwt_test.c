/* Tests control/jwt.c: JWKS parsing and every token refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/error.h"
#include "control/jwt.h"
#include "common/base64url.h"

#define NOW 1800000000L
#define ISSUER "https://kubernetes.default.svc.cluster.local"
#define AUDIENCE "seam-ca"

/* ---- keys, JWKS and token minting -------------------------------------------- */

typedef struct {
    EVP_PKEY *rsa, *rsa_other, *ec;
    char *jwks_json;
    char *rsa_public_pem;
    ca_jwks_t *jwks;
} fixture_t;

static EVP_PKEY *keygen(int type)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(type, NULL);
    EVP_PKEY *key = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    if (type == EVP_PKEY_RSA)
        assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) > 0);
    else
        assert_true(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) > 0);
    assert_int_equal(EVP_PKEY_keygen(ctx, &key), 1);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static json_t *b64_bn(const BIGNUM *bn, int pad_to)
{
    unsigned char buf[1024];
    char enc[1400];
    int n = pad_to > 0 ? BN_bn2binpad(bn, buf, pad_to) : BN_bn2bin(bn, buf);
    assert_true(n > 0);
    assert_int_equal(cmn_base64url_encode(buf, (size_t)n, enc, sizeof(enc)), 0);
    return json_string(enc);
}

static json_t *jwk_of(EVP_PKEY *key, const char *kid)
{
    if (EVP_PKEY_base_id(key) == EVP_PKEY_RSA) {
        const RSA *rsa = EVP_PKEY_get0_RSA(key);
        return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "kty", "RSA", "kid", kid, "alg", "RS256", "use", "sig",
                         "n", b64_bn(RSA_get0_n(rsa), 0), "e", b64_bn(RSA_get0_e(rsa), 0));
    }
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
    BIGNUM *x = BN_new(), *y = BN_new();
    assert_int_equal(EC_POINT_get_affine_coordinates(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec), x, y, NULL), 1);
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:o, s:o}", "kty", "EC", "kid", kid, "crv", "P-256", "x", b64_bn(x, 32),
                            "y", b64_bn(y, 32));
    BN_free(x);
    BN_free(y);
    return jwk;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char detail[256];
    f->rsa = keygen(EVP_PKEY_RSA);
    f->rsa_other = keygen(EVP_PKEY_RSA);
    f->ec = keygen(EVP_PKEY_EC);
    json_t *jwks = json_pack("{s:[o,o]}", "keys", jwk_of(f->rsa, "rsa-1"), jwk_of(f->ec, "ec-1"));
    f->jwks_json = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);
    assert_int_equal(ca_jwks_parse(f->jwks_json, strlen(f->jwks_json), &f->jwks, detail, sizeof(detail)), 0);
    assert_int_equal(ca_jwks_num_keys(f->jwks), 2);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    assert_int_equal(PEM_write_bio_PUBKEY(bio, f->rsa), 1);
    long n = BIO_get_mem_data(bio, &data);
    f->rsa_public_pem = strndup(data, (size_t)n);
    BIO_free(bio);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY_free(f->rsa);
    EVP_PKEY_free(f->rsa_other);
    EVP_PKEY_free(f->ec);
    ca_jwks_free(f->jwks);
    free(f->jwks_json);
    free(f->rsa_public_pem);
    free(f);
    return 0;
}

typedef enum { SIGN_WITH_RSA, SIGN_WITH_EC, SIGN_WITH_OTHER_RSA, SIGN_NONE, SIGN_HMAC_WITH_PUBLIC_PEM } signer_t;

static void b64_text(const char *text, char *out, size_t cap)
{
    assert_int_equal(cmn_base64url_encode((const unsigned char *)text, strlen(text), out, cap), 0);
}

/* Mints header.payload.signature; the signer ignores what the header says. */
static char *mint(fixture_t *f, const char *header, const char *payload, signer_t signer)
{
    char h[2048], p[4096], sig_b64[1024];
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    b64_text(header, h, sizeof(h));
    b64_text(payload, p, sizeof(p));
    size_t signed_len = strlen(h) + 1 + strlen(p);
    char *signing_input = malloc(signed_len + 1);
    snprintf(signing_input, signed_len + 1, "%s.%s", h, p);

    if (signer == SIGN_NONE) {
        sig_len = 0;
    } else if (signer == SIGN_HMAC_WITH_PUBLIC_PEM) {
        unsigned int mac_len = 0;
        HMAC(EVP_sha256(), f->rsa_public_pem, (int)strlen(f->rsa_public_pem), (unsigned char *)signing_input,
             signed_len, sig, &mac_len);
        sig_len = mac_len;
    } else {
        EVP_PKEY *key = signer == SIGN_WITH_RSA ? f->rsa : signer == SIGN_WITH_EC ? f->ec : f->rsa_other;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[256];
        size_t der_len = sizeof(der);
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
        if (signer == SIGN_WITH_EC) {
            assert_int_equal(EVP_DigestSign(md, der, &der_len, (unsigned char *)signing_input, signed_len), 1);
            const unsigned char *q = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
            assert_non_null(es);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            sig_len = 64;
            ECDSA_SIG_free(es);
        } else {
            assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)signing_input, signed_len), 1);
        }
        EVP_MD_CTX_free(md);
    }
    assert_int_equal(cmn_base64url_encode(sig, sig_len, sig_b64, sizeof(sig_b64)), 0);
    size_t total = signed_len + 1 + strlen(sig_b64) + 1;
    char *token = malloc(total);
    snprintf(token, total, "%s.%s", signing_input, sig_b64);
    free(signing_input);
    return token;
}

static char *claims(const char *iss, const char *aud, const char *sub, long exp, long nbf, long iat)
{
    char *out = malloc(1024);
    snprintf(out, 1024,
             "{\"iss\":\"%s\",\"aud\":[\"%s\"],\"sub\":\"%s\",\"exp\":%ld,\"nbf\":%ld,\"iat\":%ld,\"jti\":\"j-1\","
             "\"kubernetes.io\":{\"namespace\":\"default\"}}",
             iss, aud, sub, exp, nbf, iat);
    return out;
}

static int verify(fixture_t *f, const char *token, ca_jwt_claims_t *out)
{
    ca_jwt_policy_t policy = {.issuer = ISSUER, .audience = AUDIENCE, .now = NOW, .skew_seconds = CA_JWT_SKEW_SECONDS};
    char detail[256];
    return ca_jwt_verify(f->jwks, token, strlen(token), &policy, out, detail, sizeof(detail));
}

#define GOOD_SUB "system:serviceaccount:default:web"

static void test_valid_rs256_and_es256(void **state)
{
    fixture_t *f = *state;
    ca_jwt_claims_t c;
    char *payload = claims(ISSUER, AUDIENCE, GOOD_SUB, NOW + 600, NOW - 10, NOW - 10);
    char *rs = mint(f, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", payload, SIGN_WITH_RSA);
    char *es = mint(f, "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"typ\":\"JWT\"}", payload, SIGN_WITH_EC);
    assert_int_equal(verify(f, rs, &c), 0);
    assert_string_equal(c.namespace_name, "default");
    assert_string_equal(c.service_account, "web");
    assert_string_equal(c.jti, "j-1");
    assert_int_equal(c.exp, NOW + 600);
    assert_int_equal(verify(f, es, &c), 0);
    /* Within the 60 s skew on every clock claim. */
    char *skewed = claims(ISSUER, AUDIENCE, GOOD_SUB, NOW - 30, NOW + 30, NOW + 30);
    char *tok = mint(f, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", skewed, SIGN_WITH_RSA);
    assert_int_equal(verify(f, tok, &c), 0);
    free(payload);
    free(rs);
    free(es);
    free(skewed);
    free(tok);
}

static const struct {
    const char *name;
    const char *header;
    signer_t signer;
    const char *iss, *aud, *sub;
    long exp, nbf, iat;
    int expected;
} reject_rows[] = {
    {"alg none", "{\"alg\":\"none\",\"kid\":\"rsa-1\"}", SIGN_NONE, ISSUER, AUDIENCE, GOOD_SUB, NOW + 600, NOW, NOW,
     CA_E_UNSUPPORTED_ALG},
    {"HS256 keyed with the RSA public key", "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", SIGN_HMAC_WITH_PUBLIC_PEM, ISSUER,
     AUDIENCE, GOOD_SUB, NOW + 600, NOW, NOW, CA_E_UNSUPPORTED_ALG},
    {"RS512", "{\"alg\":\"RS512\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB, NOW + 600, NOW, NOW,
     CA_E_UNSUPPORTED_ALG},
    {"ES256 header on an RSA key", "{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", SIGN_WITH_EC, ISSUER, AUDIENCE, GOOD_SUB,
     NOW + 600, NOW, NOW, CA_E_ALG_MISMATCH},
    {"unknown kid", "{\"alg\":\"RS256\",\"kid\":\"nope\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB, NOW + 600, NOW,
     NOW, CA_E_UNKNOWN_KID},
    {"no kid, several keys", "{\"alg\":\"RS256\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB, NOW + 600, NOW, NOW,
     CA_E_UNKNOWN_KID},
    {"signed by another key", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_OTHER_RSA, ISSUER, AUDIENCE, GOOD_SUB,
     NOW + 600, NOW, NOW, CA_E_BAD_TOKEN_SIGNATURE},
    {"expired", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB, NOW - 61, NOW - 3600,
     NOW - 3600, CA_E_TOKEN_EXPIRED},
    {"nbf in the future", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB, NOW + 3600,
     NOW + 120, NOW, CA_E_TOKEN_NOT_YET_VALID},
    {"iat in the future", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB, NOW + 3600,
     NOW, NOW + 120, CA_E_TOKEN_IAT_FUTURE},
    {"wrong aud", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, "kubernetes", GOOD_SUB, NOW + 600, NOW,
     NOW, CA_E_WRONG_AUDIENCE},
    {"wrong iss", "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", SIGN_WITH_EC, "https://evil.example", AUDIENCE, GOOD_SUB,
     NOW + 600, NOW, NOW, CA_E_WRONG_ISSUER},
    {"sub not a service account", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE,
     "system:node:worker-1", NOW + 600, NOW, NOW, CA_E_BAD_SUBJECT},
    {"sub with extra colon", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", SIGN_WITH_RSA, ISSUER, AUDIENCE,
     "system:serviceaccount:a:b:c", NOW + 600, NOW, NOW, CA_E_BAD_SUBJECT},
    {"crit header", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"x\"]}", SIGN_WITH_RSA, ISSUER, AUDIENCE, GOOD_SUB,
     NOW + 600, NOW, NOW, CA_E_MALFORMED_TOKEN},
};

static void test_rejections(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof(reject_rows) / sizeof(reject_rows[0]); ++i) {
        ca_jwt_claims_t c;
        char *payload = claims(reject_rows[i].iss, reject_rows[i].aud, reject_rows[i].sub, reject_rows[i].exp,
                               reject_rows[i].nbf, reject_rows[i].iat);
        char *token = mint(f, reject_rows[i].header, payload, reject_rows[i].signer);
        int got = verify(f, token, &c);
        if (got != reject_rows[i].expected)
            fail_msg("%s: expected %s, got %s", reject_rows[i].name, ca_error_slug(reject_rows[i].expected),
                     ca_error_slug(got));
        free(payload);
        free(token);
    }
}

static void test_malformed(void **state)
{
    fixture_t *f = *state;
    ca_jwt_claims_t c;
    char *payload = claims(ISSUER, AUDIENCE, GOOD_SUB, NOW + 600, NOW, NOW);
    char *good = mint(f, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", payload, SIGN_WITH_RSA);
    char buf[8192], hdr[256], body[256];
    const char *dot2 = strrchr(good, '.');

    /* two parts */
    snprintf(buf, sizeof(buf), "%.*s", (int)(dot2 - good), good);
    assert_int_equal(verify(f, buf, &c), CA_E_MALFORMED_TOKEN);
    /* four parts */
    snprintf(buf, sizeof(buf), "%s.x", good);
    assert_int_equal(verify(f, buf, &c), CA_E_MALFORMED_TOKEN);
    /* bad base64 in the payload */
    snprintf(buf, sizeof(buf), "%s", good);
    buf[strchr(buf, '.') - buf + 3] = '*';
    assert_int_equal(verify(f, buf, &c), CA_E_MALFORMED_TOKEN);
    /* bad base64 in the signature */
    snprintf(buf, sizeof(buf), "%s", good);
    buf[strlen(buf) - 2] = '=';
    assert_int_equal(verify(f, buf, &c), CA_E_MALFORMED_TOKEN);
    /* non-JSON header and payload */
    b64_text("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", hdr, sizeof(hdr));
    b64_text("not json", body, sizeof(body));
    snprintf(buf, sizeof(buf), "%s.%s.AAAA", hdr, body);
    assert_int_equal(verify(f, buf, &c), CA_E_MALFORMED_TOKEN);
    b64_text("[1,2]", body, sizeof(body));
    snprintf(buf, sizeof(buf), "%s.%s.AAAA", body, hdr);
    assert_int_equal(verify(f, buf, &c), CA_E_MALFORMED_TOKEN);
    /* empty, and oversized */
    assert_int_equal(verify(f, "", &c), CA_E_MALFORMED_TOKEN);
    char *huge = malloc(CA_JWT_MAX + 2);
    memset(huge, 'A', CA_JWT_MAX + 1);
    huge[CA_JWT_MAX + 1] = '\0';
    assert_int_equal(verify(f, huge, &c), CA_E_MALFORMED_TOKEN);
    free(huge);
    /* a missing exp */
    char *no_exp = mint(f, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}",
                        "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"" GOOD_SUB "\"}", SIGN_WITH_RSA);
    assert_int_equal(verify(f, no_exp, &c), CA_E_MISSING_CLAIM);
    free(no_exp);
    free(payload);
    free(good);
}

static const struct {
    const char *json;
} bad_jwks_rows[] = {
    {"not json"},
    {"{}"},
    {"{\"keys\":[]}"},
    {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"HS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"}, /* 17-bit modulus */
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"},
    {"{\"keys\":[1]}"},
};

static void test_bad_jwks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_jwks_rows) / sizeof(bad_jwks_rows[0]); ++i) {
        ca_jwks_t *jwks = NULL;
        char detail[256] = "";
        int got = ca_jwks_parse(bad_jwks_rows[i].json, strlen(bad_jwks_rows[i].json), &jwks, detail, sizeof(detail));
        if (got != CA_E_CONFIG || jwks != NULL)
            fail_msg("jwks row %zu should be refused", i);
        assert_true(detail[0] != '\0');
    }
}

static void test_duplicate_kid(void **state)
{
    fixture_t *f = *state;
    json_t *jwks = json_pack("{s:[o,o]}", "keys", jwk_of(f->rsa, "same"), jwk_of(f->ec, "same"));
    char *text = json_dumps(jwks, JSON_COMPACT), detail[256];
    ca_jwks_t *out = NULL;
    assert_int_equal(ca_jwks_parse(text, strlen(text), &out, detail, sizeof(detail)), CA_E_CONFIG);
    json_decref(jwks);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_jwks),
        cmocka_unit_test_setup_teardown(test_valid_rs256_and_es256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_kid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
