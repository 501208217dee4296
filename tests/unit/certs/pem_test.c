/* Tests of certs/pem.c: files and PEM, and every way they can be bad. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/error.h"
#include "tests/unit/certs/fixture.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/pem_test.XXXXXX", getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static char *path_of(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

static void write_file(const char *name, const char *data, size_t len)
{
    FILE *fp = fopen(path_of(name), "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static void test_file_read(void **state)
{
    (void)state;
    char *buf;
    size_t len;
    write_file("small", "abc", 3);
    assert_int_equal(crt_file_read(path_of("small"), 10, &buf, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(buf, "abc");
    free(buf);
    write_file("empty", "", 0);
    assert_int_equal(crt_file_read(path_of("empty"), 10, &buf, &len), 0);
    assert_int_equal(len, 0);
    free(buf);
    assert_int_equal(crt_file_read(path_of("small"), 2, &buf, &len), CRT_E_TOO_LARGE);
    assert_int_equal(crt_file_read(path_of("missing"), 10, &buf, &len), CRT_E_IO);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(crt_file_read(dir, 10, &buf, &len), CRT_E_IO); /* a directory */
}

static void test_certs_round_trip(void **state)
{
    (void)state;
    fixture_ca_t ca;
    fixture_ca_init(&ca, FIXTURE_TD);
    STACK_OF(X509) *out = sk_X509_new_null(), *in = NULL;
    assert_true(sk_X509_push(out, ca.intermediate) && sk_X509_push(out, ca.root));
    assert_int_equal(crt_pem_write_certs_file(out, path_of("chain.pem")), 0);
    char *buf;
    size_t len;
    assert_int_equal(crt_file_read(path_of("chain.pem"), CRT_FILE_MAX, &buf, &len), 0);
    assert_int_equal(crt_pem_read_certs(buf, len, &in, NULL, 0), 0);
    assert_int_equal(sk_X509_num(in), 2);
    assert_int_equal(X509_cmp(sk_X509_value(in, 0), ca.intermediate), 0);

    /* a truncated copy of the same file: the second block no longer decodes */
    char detail[256];
    STACK_OF(X509) *bad = NULL;
    assert_int_equal(crt_pem_read_certs(buf, len - 100, &bad, detail, sizeof(detail)), CRT_E_BAD_DER);
    assert_null(bad);

    /* crt_pem_write_cert appends */
    char *text = NULL;
    size_t text_len = 0;
    assert_int_equal(crt_pem_write_cert(ca.root, &text, &text_len), 0);
    assert_int_equal(crt_pem_write_cert(ca.root, &text, &text_len), 0);
    assert_int_equal(text_len, strlen(text));
    free(text);

    free(buf);
    sk_X509_free(out);
    sk_X509_pop_free(in, X509_free);
    fixture_ca_free(&ca);
}

static void test_cert_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int want;
    } rows[] = {
        {"", CRT_E_NOT_PEM},
        {"hello world\n", CRT_E_NOT_PEM},
        {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", CRT_E_NO_CERTIFICATE},
        {"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n", CRT_E_BAD_DER},
        {"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", CRT_E_BAD_DER},
        {"-----BEGIN CERTIFICATE-----\nMIIB", CRT_E_BAD_DER},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        STACK_OF(X509) *certs = NULL;
        int got = crt_pem_read_certs(rows[i].text, strlen(rows[i].text), &certs, NULL, 0);
        if (got != rows[i].want)
            fail_msg("row %zu: want %s got %s", i, crt_error_slug(rows[i].want), crt_error_slug(got));
        assert_null(certs);
    }
}

static void test_keys(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL, *back = NULL;
    struct stat st;
    char *buf;
    size_t len;

    assert_int_equal(crt_key_generate(&key), 0);
    assert_true(crt_key_is_p256(key));
    /* an existing file with loose permissions is tightened to 0600 */
    write_file("k.pem", "old", 3);
    chmod(path_of("k.pem"), 0644);
    assert_int_equal(crt_pem_write_key_file(key, path_of("k.pem")), 0);
    assert_int_equal(stat(path_of("k.pem"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(crt_file_read(path_of("k.pem"), CRT_FILE_MAX, &buf, &len), 0);
    assert_int_equal(crt_pem_read_key(buf, len, &back), 0);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    free(buf);

    char desc[32];
    crt_key_describe(key, desc, sizeof(desc));
    assert_string_equal(desc, "ECDSA P-256");

    /* other key types are refused with wrong-key-type */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_int_equal(crt_pem_write_key_file(rsa, path_of("rsa.pem")), 0);
    assert_int_equal(crt_file_read(path_of("rsa.pem"), CRT_FILE_MAX, &buf, &len), 0);
    EVP_PKEY *refused = NULL;
    assert_int_equal(crt_pem_read_key(buf, len, &refused), CRT_E_WRONG_KEY_TYPE);
    assert_null(refused);
    crt_key_describe(rsa, desc, sizeof(desc));
    assert_string_equal(desc, "RSA 2048");
    free(buf);

    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    assert_false(crt_key_is_p256(p384));

    assert_int_equal(crt_pem_read_key("nothing", 7, &refused), CRT_E_NOT_PEM);
    assert_int_equal(crt_pem_read_key("-----BEGIN CERTIFICATE-----\n", 28, &refused), CRT_E_NO_KEY);
    assert_int_equal(crt_pem_read_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 58, &refused),
                     CRT_E_BAD_DER);

    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(key);
    EVP_PKEY_free(back);
}

static void test_bundle_from_pem(void **state)
{
    (void)state;
    crt_bundle_t *bundle = NULL;
    char detail[128];
    assert_int_equal(crt_bundle_from_pem("junk", 4, &bundle, detail, sizeof(detail)), CRT_E_NOT_PEM);
    assert_null(bundle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_read), cmocka_unit_test(test_certs_round_trip),
        cmocka_unit_test(test_cert_refusals), cmocka_unit_test(test_keys),
        cmocka_unit_test(test_bundle_from_pem),
    };
    return cmocka_run_group_tests_name("certs/pem", tests, setup, NULL);
}
