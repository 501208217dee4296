/* Tests of certs/verify.c: each failure category from a certificate made at run time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "tests/unit/certs/fixture.h"

static fixture_ca_t ca, other_ca;

static int setup(void **state)
{
    (void)state;
    fixture_ca_init(&ca, FIXTURE_TD);
    fixture_ca_init(&other_ca, FIXTURE_TD); /* same names, other keys */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fixture_ca_free(&ca);
    fixture_ca_free(&other_ca);
    return 0;
}

static const char *const good_uri[] = {FIXTURE_ID};

/* Verifies leaf (+ ca's intermediate unless lone) at time now; returns the code. */
static int run(fixture_ca_t *issuer, X509 *leaf, int lone, time_t now, const crt_verify_opts_t *opts,
               crt_verify_result_t *res)
{
    STACK_OF(X509) *chain = lone ? NULL : fixture_chain(issuer);
    int ret = crt_verify_chain(ca.bundle, leaf, chain, now, opts, res);
    sk_X509_free(chain);
    return ret;
}

static const crt_verify_opts_t strict = {.usage = CRT_USAGE_CLIENT, .require_spiffe = 1};

static void test_good_leaf(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    X509 *leaf = fixture_leaf(&ca, &p);
    crt_verify_result_t res;
    crt_verify_opts_t opts = strict;
    opts.trust_domain = FIXTURE_TD;
    opts.expected_id = FIXTURE_ID;
    assert_int_equal(run(&ca, leaf, 0, FIXTURE_NOW, &opts, &res), 0);
    assert_string_equal(res.spiffe_id, FIXTURE_ID);
    opts.usage = CRT_USAGE_SERVER;
    assert_int_equal(run(&ca, leaf, 0, FIXTURE_NOW, &opts, &res), 0);
    X509_free(leaf);
}

struct bad_case {
    const char *name;
    int want;
};

static void expect(X509 *leaf, fixture_ca_t *issuer, int lone, time_t now, const crt_verify_opts_t *opts, int want,
                   const char *name)
{
    crt_verify_result_t res;
    int got = run(issuer, leaf, lone, now, opts, &res);
    if (got != want)
        fail_msg("%s: want %s, got %s (%s)", name, crt_error_slug(want), crt_error_slug(got), res.detail);
    assert_true(res.detail[0] != '\0');
    X509_free(leaf);
}

static void test_expired(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    p.not_before = FIXTURE_NOW - 7200, p.not_after = FIXTURE_NOW - 1;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_EXPIRED, "expired");
    /* the clock is an input: a good leaf verified two hours later is expired */
    p = fixture_leaf_profile(good_uri, 1);
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW + 7200, &strict, CRT_E_EXPIRED, "expired later");
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    p.not_before = FIXTURE_NOW + 600, p.not_after = FIXTURE_NOW + 7200;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_NOT_YET_VALID, "not-yet-valid");
}

static void test_untrusted_root(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    expect(fixture_leaf(&other_ca, &p), &other_ca, 0, FIXTURE_NOW, &strict, CRT_E_UNTRUSTED_ROOT, "other CA");
}

static void test_self_signed_leaf(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    assert_int_equal(crt_key_generate(&key), 0);
    assert_int_equal(crt_cert_build(&p, key, NULL, key, &leaf), 0);
    EVP_PKEY_free(key);
    expect(leaf, &ca, 1, FIXTURE_NOW, &strict, CRT_E_UNTRUSTED_ROOT, "self-signed");
}

static void test_missing_intermediate(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    expect(fixture_leaf(&ca, &p), &ca, 1, FIXTURE_NOW, &strict, CRT_E_MISSING_INTERMEDIATE, "lone leaf");
}

static void test_no_uri_san(void **state)
{
    (void)state;
    static const char *const dns[] = {"web.default.svc"};
    crt_cert_profile_t p = fixture_leaf_profile(NULL, 0);
    p.subject_cn = "web";
    p.dns_sans = dns, p.num_dns_sans = 1;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_NO_URI_SAN, "no URI SAN");
}

static void test_several_uri_sans(void **state)
{
    (void)state;
    static const char *const uris[] = {FIXTURE_ID, "spiffe://cluster.local/ns/default/sa/admin"};
    crt_cert_profile_t p = fixture_leaf_profile(uris, 2);
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_SEVERAL_URI_SANS, "two URI SANs");
}

static void test_bad_spiffe_id(void **state)
{
    (void)state;
    static const char *const uris[] = {"spiffe://cluster.local/ns/../sa/web"};
    crt_cert_profile_t p = fixture_leaf_profile(uris, 1);
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_BAD_SPIFFE_ID, "dot segment");
    static const char *const td_only[] = {"spiffe://cluster.local"};
    p = fixture_leaf_profile(td_only, 1);
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_BAD_SPIFFE_ID, "trust-domain ID");
}

static void test_not_a_leaf(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    p.is_ca = 1;
    p.key_usage = CRT_KU_DIGITAL_SIGNATURE | CRT_KU_KEY_CERT_SIGN;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_NOT_A_LEAF, "CA:TRUE leaf");
}

static void test_wrong_key_usage(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    p.key_usage = CRT_KU_KEY_CERT_SIGN;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_WRONG_KEY_USAGE, "keyCertSign only");
    p = fixture_leaf_profile(good_uri, 1);
    p.ext_key_usage = CRT_EKU_SERVER;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_WRONG_KEY_USAGE, "server-only as client");
    p = fixture_leaf_profile(good_uri, 1);
    p.ext_key_usage = CRT_EKU_CODE_SIGNING;
    crt_verify_opts_t server = strict;
    server.usage = CRT_USAGE_SERVER;
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &server, CRT_E_WRONG_KEY_USAGE, "codeSigning as server");
}

static void test_identity_mismatch(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    crt_verify_opts_t opts = strict;
    opts.expected_id = "spiffe://cluster.local/ns/default/sa/db";
    X509 *leaf = fixture_leaf(&ca, &p);
    crt_verify_result_t res;
    assert_int_equal(run(&ca, leaf, 0, FIXTURE_NOW, &opts, &res), CRT_E_IDENTITY_MISMATCH);
    assert_non_null(strstr(res.detail, "expected spiffe://cluster.local/ns/default/sa/db, got " FIXTURE_ID));
    X509_free(leaf);
}

static void test_name_constraint(void **state)
{
    (void)state;
    static const char *const uris[] = {"spiffe://evil.example/ns/default/sa/web"};
    crt_cert_profile_t p = fixture_leaf_profile(uris, 1);
    expect(fixture_leaf(&ca, &p), &ca, 0, FIXTURE_NOW, &strict, CRT_E_NAME_CONSTRAINT, "outside trust domain");
}

static void test_bundle_with_two_roots(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = sk_X509_new_null();
    crt_bundle_t *both = NULL;
    crt_verify_result_t res;
    assert_true(sk_X509_push(roots, ca.root) && sk_X509_push(roots, other_ca.root));
    assert_int_equal(crt_bundle_from_certs(roots, &both), 0);
    sk_X509_free(roots);
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    X509 *leaf = fixture_leaf(&other_ca, &p);
    STACK_OF(X509) *chain = fixture_chain(&other_ca);
    assert_int_equal(crt_verify_chain(both, leaf, chain, FIXTURE_NOW, &strict, &res), 0);
    assert_int_equal(sk_X509_num(crt_bundle_roots(both)), 2);
    sk_X509_free(chain);
    X509_free(leaf);
    crt_bundle_release(both);
}

static void test_bundle_rejects_leaf(void **state)
{
    (void)state;
    crt_cert_profile_t p = fixture_leaf_profile(good_uri, 1);
    X509 *leaf = fixture_leaf(&ca, &p);
    STACK_OF(X509) *roots = sk_X509_new_null();
    crt_bundle_t *bundle = NULL;
    assert_true(sk_X509_push(roots, leaf));
    assert_int_equal(crt_bundle_from_certs(roots, &bundle), CRT_E_INVALID_CHAIN);
    sk_X509_free(roots);
    roots = sk_X509_new_null();
    assert_int_equal(crt_bundle_from_certs(roots, &bundle), CRT_E_NO_CERTIFICATE);
    sk_X509_free(roots);
    X509_free(leaf);
}

static void test_optional_spiffe(void **state)
{
    (void)state;
    static const char *const dns[] = {"ca.seam-system.svc"};
    crt_cert_profile_t p = fixture_leaf_profile(NULL, 0);
    p.subject_cn = "ca";
    p.dns_sans = dns, p.num_dns_sans = 1;
    X509 *leaf = fixture_leaf(&ca, &p);
    crt_verify_opts_t opts = {.usage = CRT_USAGE_SERVER};
    crt_verify_result_t res;
    assert_int_equal(run(&ca, leaf, 0, FIXTURE_NOW, &opts, &res), 0);
    assert_string_equal(res.spiffe_id, "");
    X509_free(leaf);
}

static void test_error_vocabulary(void **state)
{
    (void)state;
    assert_string_equal(crt_error_slug(CRT_E_EXPIRED), "expired");
    assert_string_equal(crt_error_slug(CRT_E_MISSING_INTERMEDIATE), "missing-intermediate");
    assert_string_equal(crt_error_slug(0), "ok");
    assert_string_equal(crt_error_slug(-1), "unknown");
    assert_true(crt_error_is_verify_category(CRT_E_WRONG_KEY_USAGE));
    assert_false(crt_error_is_verify_category(CRT_E_NOT_PEM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_leaf),          cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),      cmocka_unit_test(test_untrusted_root),
        cmocka_unit_test(test_self_signed_leaf),   cmocka_unit_test(test_missing_intermediate),
        cmocka_unit_test(test_no_uri_san),         cmocka_unit_test(test_several_uri_sans),
        cmocka_unit_test(test_bad_spiffe_id),      cmocka_unit_test(test_not_a_leaf),
        cmocka_unit_test(test_wrong_key_usage),    cmocka_unit_test(test_identity_mismatch),
        cmocka_unit_test(test_name_constraint),    cmocka_unit_test(test_bundle_with_two_roots),
        cmocka_unit_test(test_bundle_rejects_leaf), cmocka_unit_test(test_optional_spiffe),
        cmocka_unit_test(test_error_vocabulary),
    };
    return cmocka_run_group_tests_name("certs/verify", tests, setup, teardown);
}
