/* Tests control/sign.c: body parsing, CSR checks, identity and lifetime decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/csr.h"
#include "certs/pem.h"
#include "control/error.h"
#include "control/sign.h"

#define TD "example.org"
#define WEB "spiffe://example.org/ns/default/sa/web"

static const struct {
    const char *body;
    int expected;
    long ttl;
} body_rows[] = {
    {"{\"csr\":\"PEM\"}", 0, 0},
    {"{\"csr\":\"PEM\",\"ttl_seconds\":600}", 0, 600},
    {"{\"csr\":\"PEM\",\"ttl_seconds\":null}", 0, 0},
    {"{\"csr\":\"PEM\",\"extra\":1}", 0, 0},
    {"", CA_E_BAD_JSON, 0},
    {"csr=PEM", CA_E_BAD_JSON, 0},
    {"[\"csr\"]", CA_E_BAD_JSON, 0},
    {"{\"csr\":\"a\",\"csr\":\"b\"}", CA_E_BAD_JSON, 0},
    {"{}", CA_E_MISSING_CSR, 0},
    {"{\"csr\":\"\"}", CA_E_MISSING_CSR, 0},
    {"{\"csr\":42}", CA_E_MISSING_CSR, 0},
    {"{\"csr\":\"PEM\",\"ttl_seconds\":0}", CA_E_BAD_TTL, 0},
    {"{\"csr\":\"PEM\",\"ttl_seconds\":-5}", CA_E_BAD_TTL, 0},
    {"{\"csr\":\"PEM\",\"ttl_seconds\":1.5}", CA_E_BAD_TTL, 0},
    {"{\"csr\":\"PEM\",\"ttl_seconds\":\"60\"}", CA_E_BAD_TTL, 0},
};

static void test_body_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(body_rows) / sizeof(body_rows[0]); ++i) {
        ca_sign_request_t req;
        int got = ca_sign_request_parse(body_rows[i].body, strlen(body_rows[i].body), &req);
        if (got != body_rows[i].expected)
            fail_msg("body row %zu (%s): expected %s, got %s", i, body_rows[i].body,
                     ca_error_slug(body_rows[i].expected), ca_error_slug(got));
        if (got == 0) {
            assert_string_equal(req.csr_pem, "PEM");
            assert_int_equal(req.ttl_seconds, body_rows[i].ttl);
        }
        ca_sign_request_clear(&req);
    }
}

static void test_body_too_large(void **state)
{
    ca_sign_request_t req;
    char *big = calloc(1, CA_BODY_MAX + 2);
    (void)state;
    memset(big, ' ', CA_BODY_MAX + 1);
    assert_int_equal(ca_sign_request_parse(big, CA_BODY_MAX + 1, &req), CA_E_BODY_TOO_LARGE);
    free(big);
}

/* ---- CSRs -------------------------------------------------------------------- */

static EVP_PKEY *rsa_key(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    EVP_PKEY *key = NULL;
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) > 0);
    assert_int_equal(EVP_PKEY_keygen(ctx, &key), 1);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* A CSR with the given subjectAltName text ("URI:a,DNS:b"), signed by key; corrupt flips a signature bit. */
static char *make_csr(EVP_PKEY *key, const char *san, int corrupt)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
    assert_non_null(ext);
    sk_X509_EXTENSION_push(exts, ext);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    if (corrupt) {
        const ASN1_BIT_STRING *sig;
        X509_REQ_get0_signature(req, &sig, NULL);
        ((ASN1_BIT_STRING *)sig)->data[10] ^= 0x01;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    long n = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)n);
    BIO_free(bio);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return pem;
}

static void test_csr_table(void **state)
{
    EVP_PKEY *ec = NULL, *rsa = rsa_key();
    (void)state;
    assert_int_equal(crt_key_generate(&ec), 0);
    const struct {
        const char *name;
        EVP_PKEY *key;
        const char *san;
        int corrupt;
        int expected;
    } rows[] = {
        {"good", ec, "URI:" WEB, 0, 0},
        {"two URI SANs", ec, "URI:" WEB ",URI:spiffe://example.org/ns/default/sa/db", 0, CA_E_CSR_SANS},
        {"DNS SAN beside the URI", ec, "URI:" WEB ",DNS:web.default.svc", 0, CA_E_CSR_SANS},
        {"DNS SAN only", ec, "DNS:web.default.svc", 0, CA_E_CSR_SANS},
        {"email SAN", ec, "email:a@example.org", 0, CA_E_CSR_SANS},
        {"bad signature", ec, "URI:" WEB, 1, CA_E_CSR_BAD_SIGNATURE},
        {"RSA key", rsa, "URI:" WEB, 0, CA_E_CSR_KEY_TYPE},
        {"other trust domain", ec, "URI:spiffe://evil.example/ns/default/sa/web", 0, CA_E_OUT_OF_TRUST_DOMAIN},
        {"not SPIFFE", ec, "URI:https://example.org/web", 0, CA_E_CSR_BAD_SPIFFE_ID},
        {"trust-domain-only ID", ec, "URI:spiffe://example.org", 0, CA_E_CSR_BAD_SPIFFE_ID},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); ++i) {
        char *pem = make_csr(rows[i].key, rows[i].san, rows[i].corrupt);
        crt_csr_t csr;
        int got = ca_sign_check_csr(pem, strlen(pem), TD, &csr);
        if (got != rows[i].expected)
            fail_msg("%s: expected %s, got %s", rows[i].name, ca_error_slug(rows[i].expected), ca_error_slug(got));
        if (got == 0) {
            assert_string_equal(csr.spiffe_id, WEB);
            crt_csr_clear(&csr);
        }
        free(pem);
    }
    crt_csr_t csr;
    assert_int_equal(ca_sign_check_csr("not pem", 7, TD, &csr), CA_E_BAD_CSR);
    const char truncated[] = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
    assert_int_equal(ca_sign_check_csr(truncated, sizeof(truncated) - 1, TD, &csr), CA_E_BAD_CSR);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void test_identity_and_ttl(void **state)
{
    (void)state;
    assert_int_equal(ca_sign_check_identity(WEB, WEB), 0);
    assert_int_equal(ca_sign_check_identity(WEB, "spiffe://example.org/ns/default/sa/db"), CA_E_IDENTITY_MISMATCH);
    assert_int_equal(ca_sign_check_identity(WEB, WEB "x"), CA_E_IDENTITY_MISMATCH);
    assert_int_equal(ca_sign_ttl(0, 3600, 86400), 3600);
    assert_int_equal(ca_sign_ttl(600, 3600, 86400), 600);
    assert_int_equal(ca_sign_ttl(100000, 3600, 86400), 86400);
    assert_int_equal(ca_sign_ttl(0, 3600, 1800), 1800);
}

/* The CA's own identity comes first, as seam-ca checks it; then --reserved-id entries. */
#define CA_ID "spiffe://example.org/ns/seam-system/sa/seam-ca"
static const char *const reserved[] = {CA_ID, "spiffe://example.org/ns/kube-system/sa/admin",
                                       "spiffe://example.org/ns/ops/*"};

static const struct {
    const char *id;
    int want;
    const char *matched; /* the entry named, when refused */
} reserved_rows[] = {
    {CA_ID, CA_E_RESERVED_IDENTITY, CA_ID},
    {"spiffe://example.org/ns/kube-system/sa/admin", CA_E_RESERVED_IDENTITY, reserved[1]},
    {"spiffe://example.org/ns/ops/sa/deployer", CA_E_RESERVED_IDENTITY, reserved[2]},
    {"spiffe://example.org/ns/ops/sa/deployer/extra", CA_E_RESERVED_IDENTITY, reserved[2]},
    /* Exact entries cover only themselves; a prefix only what lies below it, by whole segments. */
    {"spiffe://example.org/ns/seam-system/sa/seam-ca2", 0, NULL},
    {"spiffe://example.org/ns/seam-system/sa/seam-ca/x", 0, NULL},
    {"spiffe://example.org/ns/seam-system/sa/seam", 0, NULL},
    {"spiffe://example.org/ns/seam-system/sa/other", 0, NULL},
    {"spiffe://example.org/ns/SEAM-SYSTEM/sa/seam-ca", 0, NULL},
    {"spiffe://example.org/ns/kube-system/sa/admin2", 0, NULL},
    {"spiffe://example.org/ns/ops", 0, NULL},
    {"spiffe://example.org/ns/opsx/sa/a", 0, NULL},
    {"spiffe://other.org/ns/seam-system/sa/seam-ca", 0, NULL},
    {WEB, 0, NULL},
};

static void test_reserved_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reserved_rows) / sizeof(reserved_rows[0]); ++i) {
        const char *matched = NULL;
        int got = ca_sign_check_reserved(reserved_rows[i].id, reserved, 3, &matched);
        if (got != reserved_rows[i].want)
            fail_msg("%s: got %s, want %s", reserved_rows[i].id, ca_error_slug(got), ca_error_slug(reserved_rows[i].want));
        if (got != 0)
            assert_string_equal(matched, reserved_rows[i].matched);
    }
    /* Nothing reserved: everything may be signed. */
    assert_int_equal(ca_sign_check_reserved(CA_ID, reserved, 0, NULL), 0);
    assert_int_equal(ca_error_status(CA_E_RESERVED_IDENTITY), 403);
    assert_string_equal(ca_error_slug(CA_E_RESERVED_IDENTITY), "reserved-identity");
}

static const struct {
    const char *entry;
    const char *trust_domain;
    int ok;
} entry_rows[] = {
    {"spiffe://example.org/ns/ops/sa/admin", TD, 1},
    {"spiffe://example.org/ns/ops/*", TD, 1},
    {"spiffe://example.org/ns/ops/*", NULL, 1},
    {"spiffe://other.org/ns/ops/sa/admin", NULL, 1},
    {"spiffe://other.org/ns/ops/sa/admin", TD, 0},
    {"spiffe://example.org", TD, 0},    /* a trust domain is not a workload */
    {"spiffe://example.org/*", TD, 0},  /* would reserve the whole mesh */
    {"spiffe://example.org/ns/ops/", TD, 0},
    {"spiffe://example.org/ns/ops*", TD, 0},
    {"spiffe://example.org/ns/*/sa/x", TD, 0},
    {"spiffe://example.org/ns/../sa/x", TD, 0},
    {"https://example.org/ns/ops/sa/admin", TD, 0},
    {"", TD, 0},
    {"/*", TD, 0},
};

static void test_reserved_entry_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(entry_rows) / sizeof(entry_rows[0]); ++i) {
        char why[256] = "";
        int ok = ca_sign_reserved_entry_check(entry_rows[i].entry, entry_rows[i].trust_domain, why, sizeof(why)) == 0;
        if (ok != entry_rows[i].ok)
            fail_msg("%s: accepted %d, want %d (%s)", entry_rows[i].entry, ok, entry_rows[i].ok, why);
        if (!ok)
            assert_true(why[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_table),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_csr_table),
        cmocka_unit_test(test_identity_and_ttl),
        cmocka_unit_test(test_reserved_table),
        cmocka_unit_test(test_reserved_entry_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
