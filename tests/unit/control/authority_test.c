/* Tests control/authority.c: loading a CA directory, readiness, and leaf lifetimes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs/info.h"
#include "certs/issue.h"
#include "certs/pem.h"
#include "control/authority.h"
#include "control/error.h"

#define TD "example.org"
#define NOW 1800000000L
#define DAY 86400L

static void write_cert(const char *dir, const char *name, X509 *cert)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    sk_X509_push(certs, cert);
    assert_int_equal(crt_pem_write_certs_file(certs, path), 0);
    sk_X509_free(certs);
}

static void write_key(const char *dir, const char *name, EVP_PKEY *key)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(crt_pem_write_key_file(key, path), 0);
}

/* Writes a root + intermediate CA directory; the intermediate lives inter_days. */
static void make_ca_dir(const char *dir, long inter_days, int with_bundle)
{
    EVP_PKEY *root_key = NULL, *inter_key = NULL;
    X509 *root = NULL, *inter = NULL;
    assert_int_equal(crt_key_generate(&root_key), 0);
    assert_int_equal(crt_key_generate(&inter_key), 0);
    assert_int_equal(crt_issue_root(root_key, TD, NOW, 3650, &root), 0);
    assert_int_equal(crt_issue_intermediate(root, root_key, inter_key, TD, NOW, inter_days, &inter), 0);
    write_cert(dir, "root.pem", root);
    if (with_bundle)
        write_cert(dir, "bundle.pem", root);
    write_cert(dir, "intermediate.pem", inter);
    write_key(dir, "intermediate.key", inter_key);
    X509_free(root);
    X509_free(inter);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(inter_key);
}

static char *temp_dir(const char *tag)
{
    const char *base = getenv("TEST_TMPDIR");
    char *dir = malloc(4096);
    snprintf(dir, 4096, "%s/%s.XXXXXX", base != NULL ? base : "/tmp", tag);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void test_load_issue_and_readiness(void **state)
{
    char *dir = temp_dir("ca"), detail[512], why[512];
    ca_authority_t ca;
    EVP_PKEY *leaf_key = NULL;
    X509 *leaf = NULL;
    unsigned char serial[CRT_SERIAL_LEN];
    time_t not_after;
    (void)state;
    make_ca_dir(dir, 30, 1);
    assert_int_equal(ca_authority_load(dir, TD, NOW, &ca, detail, sizeof(detail)), 0);
    assert_int_equal(ca.num_roots, 1);
    assert_non_null(strstr(ca.root_pems[0], "BEGIN CERTIFICATE"));
    assert_non_null(strstr(ca.intermediate_pem, "BEGIN CERTIFICATE"));
    assert_true(ca.root_not_after > ca.intermediate_not_after);
    assert_int_equal(ca_authority_check(&ca, NOW + 60, why, sizeof(why)), 0);
    /* Expired intermediate: not ready, and says so. */
    assert_int_equal(ca_authority_check(&ca, NOW + 31 * DAY, why, sizeof(why)), CA_E_CA_NOT_READY);
    assert_non_null(strstr(why, "expired"));

    /* A leaf never outlives the intermediate. */
    assert_int_equal(crt_key_generate(&leaf_key), 0);
    assert_int_equal(crt_serial_random(serial), 0);
    assert_int_equal(ca_authority_issue(&ca, leaf_key, "spiffe://example.org/ns/default/sa/web", NULL, 0,
                                        ca.intermediate_not_after - 600, 3600, serial, &leaf),
                     0);
    assert_int_equal(crt_asn1_time_to_unix(X509_get0_notAfter(leaf), &not_after), 0);
    assert_int_equal(not_after, ca.intermediate_not_after);
    X509_free(leaf);
    leaf = NULL;
    assert_int_equal(ca_authority_issue(&ca, leaf_key, "spiffe://example.org/ns/default/sa/web", NULL, 0,
                                        ca.intermediate_not_after + 1, 3600, serial, &leaf),
                     CA_E_CA_NOT_READY);
    EVP_PKEY_free(leaf_key);
    ca_authority_dispose(&ca);
    free(dir);
}

static void test_root_pem_fallback(void **state)
{
    char *dir = temp_dir("ca-nobundle"), detail[512];
    ca_authority_t ca;
    (void)state;
    make_ca_dir(dir, 30, 0);
    assert_int_equal(ca_authority_load(dir, TD, NOW, &ca, detail, sizeof(detail)), 0);
    assert_int_equal(ca.num_roots, 1);
    ca_authority_dispose(&ca);
    free(dir);
}

static void test_refusals(void **state)
{
    char *a = temp_dir("ca-a"), *b = temp_dir("ca-b"), detail[512], why[512], src[4200], dst[4200];
    ca_authority_t ca;
    (void)state;
    make_ca_dir(a, 30, 1);
    make_ca_dir(b, 30, 1);

    /* Missing directory: names the file. */
    assert_int_equal(ca_authority_load("/nonexistent-ca", TD, NOW, &ca, detail, sizeof(detail)), CA_E_IO);
    assert_non_null(strstr(detail, "/nonexistent-ca/intermediate.pem"));

    /* b's bundle does not hold a's root: loads, but is not ready, and says why. */
    snprintf(src, sizeof(src), "%s/bundle.pem", b);
    snprintf(dst, sizeof(dst), "%s/bundle.pem", a);
    assert_int_equal(rename(src, dst), 0);
    assert_int_equal(ca_authority_load(a, TD, NOW, &ca, detail, sizeof(detail)), 0);
    assert_int_equal(ca_authority_check(&ca, NOW + 60, why, sizeof(why)), CA_E_CA_NOT_READY);
    assert_non_null(strstr(why, "does not chain"));
    ca_authority_dispose(&ca);

    /* b's key with a's intermediate: refused, naming the key file. */
    snprintf(src, sizeof(src), "%s/intermediate.key", b);
    snprintf(dst, sizeof(dst), "%s/intermediate.key", a);
    assert_int_equal(rename(src, dst), 0);
    assert_int_equal(ca_authority_load(a, TD, NOW, &ca, detail, sizeof(detail)), CA_E_CONFIG);
    assert_non_null(strstr(detail, "intermediate.key"));

    /* A leaf in the intermediate's place: refused. */
    snprintf(src, sizeof(src), "%s/intermediate.pem", a);
    FILE *fp = fopen(src, "w");
    fputs("not a certificate\n", fp);
    fclose(fp);
    assert_int_equal(ca_authority_load(a, TD, NOW, &ca, detail, sizeof(detail)), CA_E_CONFIG);
    assert_non_null(strstr(detail, "intermediate.pem"));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_issue_and_readiness),
        cmocka_unit_test(test_root_pem_fallback),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
