/* Tests of certs/issue.c: the leaf, intermediate and root profiles of DESIGN.md section 3. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "certs/error.h"
#include "certs/info.h"
#include "tests/unit/certs/fixture.h"

static fixture_ca_t ca;

static int setup(void **state)
{
    (void)state;
    fixture_ca_init(&ca, FIXTURE_TD);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fixture_ca_free(&ca);
    return 0;
}

static X509 *issue(long ttl)
{
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    unsigned char serial[CRT_SERIAL_LEN];
    assert_int_equal(crt_key_generate(&key), 0);
    assert_int_equal(crt_serial_random(serial), 0);
    assert_int_equal(crt_issue_leaf(ca.intermediate, ca.int_key, key, FIXTURE_ID, NULL, 0, FIXTURE_NOW, ttl, serial, &leaf), 0);
    EVP_PKEY_free(key);
    return leaf;
}

static void test_leaf_profile(void **state)
{
    (void)state;
    X509 *leaf = issue(3600);
    crt_cert_info_t info;
    assert_int_equal(crt_cert_info(leaf, &info), 0);

    assert_string_equal(info.spiffe_id, FIXTURE_ID);
    assert_string_equal(info.subject, "");
    assert_string_equal(info.key_type, "ECDSA P-256");
    assert_int_equal(info.not_before, FIXTURE_NOW - 60);
    assert_int_equal(info.not_after, FIXTURE_NOW + 3600);
    assert_false(info.is_ca);

    /* exactly one SAN, URI, critical */
    int idx = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(leaf, idx)), 1);
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    assert_int_equal(sk_GENERAL_NAME_value(names, 0)->type, GEN_URI);
    GENERAL_NAMES_free(names);

    uint32_t flags = X509_get_extension_flags(leaf);
    assert_true(flags & EXFLAG_BCONS);
    assert_false(flags & EXFLAG_CA);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER | XKU_SSL_CLIENT);

    /* 128-bit positive serial */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    assert_int_equal(ASN1_STRING_length(serial), 16);
    assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
    assert_int_equal(strlen(info.serial), 32);
    X509_free(leaf);
}

static void test_serials_differ(void **state)
{
    (void)state;
    X509 *a = issue(60), *b = issue(60);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    X509_free(a);
    X509_free(b);
}

static void test_leaf_clamped_to_issuer(void **state)
{
    (void)state;
    X509 *leaf = issue(400L * 86400);
    time_t leaf_end, int_end;
    assert_int_equal(crt_asn1_time_to_unix(X509_get0_notAfter(leaf), &leaf_end), 0);
    assert_int_equal(crt_asn1_time_to_unix(X509_get0_notAfter(ca.intermediate), &int_end), 0);
    assert_int_equal(leaf_end, int_end);
    X509_free(leaf);
}

static void test_leaf_refusals(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    unsigned char serial[CRT_SERIAL_LEN] = {0x40};
    assert_int_equal(crt_key_generate(&key), 0);
    assert_int_equal(crt_issue_leaf(ca.intermediate, ca.int_key, key, "spiffe://cluster.local", NULL, 0, FIXTURE_NOW,
                                    60, serial, &leaf),
                     CRT_E_BAD_SPIFFE_ID);
    assert_int_equal(crt_issue_leaf(ca.intermediate, ca.int_key, key, FIXTURE_ID, NULL, 0, FIXTURE_NOW, 0, serial, &leaf),
                     CRT_E_BAD_TTL);
    /* an expired intermediate signs nothing */
    assert_int_equal(crt_issue_leaf(ca.intermediate, ca.int_key, key, FIXTURE_ID, NULL, 0, FIXTURE_NOW + 400L * 86400,
                                    60, serial, &leaf),
                     CRT_E_BAD_TTL);
    assert_null(leaf);
    EVP_PKEY_free(key);
}

static void test_intermediate_profile(void **state)
{
    (void)state;
    uint32_t flags = X509_get_extension_flags(ca.intermediate);
    assert_true(flags & EXFLAG_CA);
    assert_int_equal(X509_get_key_usage(ca.intermediate) & KU_KEY_CERT_SIGN, KU_KEY_CERT_SIGN);
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca.intermediate, NID_name_constraints, NULL, NULL);
    assert_non_null(nc);
    assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 1);
    GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0)->base;
    assert_int_equal(base->type, GEN_URI);
    assert_memory_equal(ASN1_STRING_get0_data(base->d.uniformResourceIdentifier), FIXTURE_TD, strlen(FIXTURE_TD));
    NAME_CONSTRAINTS_free(nc);
    assert_int_equal(X509_get_pathlen(ca.intermediate), 0);
    assert_true(X509_get_extension_flags(ca.root) & EXFLAG_SS);
}

static void test_formatting(void **state)
{
    (void)state;
    char buf[64];
    crt_format_time(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    crt_format_duration(3 * 86400 + 4 * 3600 + 5, buf, sizeof(buf));
    assert_string_equal(buf, "3d4h");
    crt_format_duration(59 * 60 + 12, buf, sizeof(buf));
    assert_string_equal(buf, "59m12s");
    crt_format_duration(-7200, buf, sizeof(buf));
    assert_string_equal(buf, "-2h0m");
    unsigned char serial[CRT_SERIAL_LEN] = {0xab, 0x01};
    char hex[2 * CRT_SERIAL_LEN + 1];
    crt_serial_hex(serial, hex);
    assert_string_equal(hex, "ab010000000000000000000000000000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_profile),       cmocka_unit_test(test_serials_differ),
        cmocka_unit_test(test_leaf_clamped_to_issuer), cmocka_unit_test(test_leaf_refusals),
        cmocka_unit_test(test_intermediate_profile), cmocka_unit_test(test_formatting),
    };
    return cmocka_run_group_tests_name("certs/issue", tests, setup, teardown);
}
