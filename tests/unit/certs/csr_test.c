/* Tests of certs/csr.c: a good CSR round-trips; every malformed one is refused with its code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "certs/csr.h"
#include "certs/error.h"
#include "certs/pem.h"

#define ID "spiffe://cluster.local/ns/default/sa/web"

/* A CSR with arbitrary SANs (type, value pairs), signed by key; PEM text returned (caller frees). */
static char *raw_csr(EVP_PKEY *key, const int *types, const char *const *values, size_t n)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    for (size_t i = 0; i != n; ++i) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        ASN1_STRING_set(s, values[i], (int)strlen(values[i]));
        GENERAL_NAME_set0_value(gn, types[i], s);
        sk_GENERAL_NAME_push(names, gn);
    }
    if (n != 0) {
        sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_subject_alt_name, 0, names));
        X509_REQ_add_extensions(req, exts);
    }
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    char *pem;
    size_t len;
    assert_int_equal(crt_csr_to_pem(req, &pem, &len), 0);
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return pem;
}

static int parse(const char *pem)
{
    crt_csr_t csr;
    int ret = crt_csr_parse(pem, strlen(pem), &csr);
    crt_csr_clear(&csr);
    return ret;
}

static void test_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    char *pem;
    size_t len;
    crt_csr_t csr;
    assert_int_equal(crt_key_generate(&key), 0);
    assert_int_equal(crt_csr_create(key, ID, &req), 0);
    assert_int_equal(crt_csr_to_pem(req, &pem, &len), 0);
    assert_int_equal(crt_csr_parse(pem, len, &csr), 0);
    assert_string_equal(csr.spiffe_id, ID);
    assert_int_equal(EVP_PKEY_eq(csr.public_key, key), 1);
    crt_csr_clear(&csr);
    assert_null(csr.public_key);
    free(pem);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void test_create_refuses_bad_id(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    assert_int_equal(crt_key_generate(&key), 0);
    assert_int_equal(crt_csr_create(key, "spiffe://Bad/x", &req), CRT_E_BAD_SPIFFE_ID);
    assert_null(req);
    EVP_PKEY_free(key);
}

static void test_san_shapes(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    assert_int_equal(crt_key_generate(&key), 0);
    static const struct {
        const char *name;
        int types[2];
        const char *values[2];
        size_t n;
        int want;
    } rows[] = {
        {"one URI", {GEN_URI}, {ID}, 1, 0},
        {"no SAN", {0}, {NULL}, 0, CRT_E_CSR_SANS},
        {"two URIs", {GEN_URI, GEN_URI}, {ID, "spiffe://cluster.local/ns/default/sa/db"}, 2, CRT_E_CSR_SANS},
        {"URI + DNS", {GEN_URI, GEN_DNS}, {ID, "web.default.svc"}, 2, CRT_E_CSR_SANS},
        {"DNS only", {GEN_DNS}, {"web.default.svc"}, 1, CRT_E_CSR_SANS},
        {"email only", {GEN_EMAIL}, {"a@b.c"}, 1, CRT_E_CSR_SANS},
        {"URI not SPIFFE", {GEN_URI}, {"https://web.default.svc/"}, 1, CRT_E_BAD_SPIFFE_ID},
        {"trust-domain only", {GEN_URI}, {"spiffe://cluster.local"}, 1, CRT_E_BAD_SPIFFE_ID},
        {"port", {GEN_URI}, {"spiffe://cluster.local:1/ns/a/sa/b"}, 1, CRT_E_BAD_SPIFFE_ID},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        char *pem = raw_csr(key, rows[i].types, rows[i].values, rows[i].n);
        int got = parse(pem);
        if (got != rows[i].want)
            fail_msg("%s: want %s got %s", rows[i].name, crt_error_slug(rows[i].want), crt_error_slug(got));
        free(pem);
    }
    EVP_PKEY_free(key);
}

static void test_rsa_key(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    static const int types[] = {GEN_URI};
    static const char *const values[] = {ID};
    assert_non_null(rsa);
    char *pem = raw_csr(rsa, types, values, 1);
    assert_int_equal(parse(pem), CRT_E_WRONG_KEY_TYPE);
    free(pem);
    EVP_PKEY_free(rsa);
}

static void test_bad_signature(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    assert_int_equal(crt_key_generate(&key), 0);
    assert_int_equal(crt_csr_create(key, ID, &req), 0);
    /* Flip a bit in the signature of the DER, then re-wrap it as PEM. */
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    assert_true(len > 10);
    der[len - 5] ^= 0x01;
    const unsigned char *p = der;
    X509_REQ *tampered = d2i_X509_REQ(NULL, &p, len);
    assert_non_null(tampered);
    char *pem;
    size_t pem_len;
    assert_int_equal(crt_csr_to_pem(tampered, &pem, &pem_len), 0);
    assert_int_equal(parse(pem), CRT_E_CSR_BAD_SIGNATURE);
    free(pem);
    OPENSSL_free(der);
    X509_REQ_free(tampered);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void test_not_pem(void **state)
{
    (void)state;
    assert_int_equal(parse("hello"), CRT_E_NOT_PEM);
    assert_int_equal(parse("{\"csr\": 1}"), CRT_E_NOT_PEM);
    assert_int_equal(parse("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
                     CRT_E_BAD_DER);
    assert_int_equal(parse("-----BEGIN CERTIFICATE REQUEST-----\nnot base64 !!\n"), CRT_E_BAD_DER);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t n = CRT_CSR_PEM_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    assert_int_equal(parse(big), CRT_E_TOO_LARGE);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_create_refuses_bad_id),
        cmocka_unit_test(test_san_shapes), cmocka_unit_test(test_rsa_key),
        cmocka_unit_test(test_bad_signature), cmocka_unit_test(test_not_pem),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests_name("certs/csr", tests, NULL, NULL);
}
