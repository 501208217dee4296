/* Tests common/base64url.c: the strict base64url tables and the Kubernetes subject split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/base64url.h"

static const struct {
    const char *in;
    const char *out; /* NULL: must be refused */
    size_t out_len;
} b64_rows[] = {
    {"", "", 0},
    {"Zg", "f", 1},
    {"Zm8", "fo", 2},
    {"Zm9v", "foo", 3},
    {"Zm9vYg", "foob", 4},
    {"Zm9vYmE", "fooba", 5},
    {"Zm9vYmFy", "foobar", 6},
    {"-_8", "\xfb\xff", 2},
    {"AA", "\0", 1},
    {"Zg==", NULL, 0},     /* padding is not base64url as JWT uses it */
    {"Zm9v+", NULL, 0},    /* '+' is base64, not base64url */
    {"Zm9v/w", NULL, 0},   /* '/' likewise */
    {"Z", NULL, 0},        /* length 1 mod 4 */
    {"Zh", NULL, 0},       /* non-zero unused bits */
    {"Zm9", NULL, 0},      /* non-zero unused bits */
    {"Zm 9v", NULL, 0},    /* space */
    {"Zm9v\n", NULL, 0},   /* newline */
    {"Zm9v.", NULL, 0},    /* dot */
};

static void test_base64url_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(b64_rows) / sizeof(b64_rows[0]); ++i) {
        unsigned char out[64];
        size_t n = 99;
        int ret = cmn_base64url_decode(b64_rows[i].in, strlen(b64_rows[i].in), out, sizeof(out), &n);
        if (b64_rows[i].out == NULL) {
            if (ret != -1)
                fail_msg("row %zu (%s) should be refused", i, b64_rows[i].in);
        } else {
            if (ret != 0 || n != b64_rows[i].out_len || memcmp(out, b64_rows[i].out, n) != 0)
                fail_msg("row %zu (%s) decoded wrong", i, b64_rows[i].in);
            char enc[64];
            assert_int_equal(cmn_base64url_encode(out, n, enc, sizeof(enc)), 0);
            assert_string_equal(enc, b64_rows[i].in);
        }
    }
}

static void test_base64url_bounds(void **state)
{
    unsigned char out[2];
    char enc[4];
    size_t n;
    (void)state;
    assert_int_equal(cmn_base64url_decode("Zm9v", 4, out, sizeof(out), &n), -1); /* does not fit */
    assert_int_equal(cmn_base64url_encode((const unsigned char *)"foo", 3, enc, sizeof(enc)), -1);
}

static const struct {
    const char *sub;
    int ok;
} subject_rows[] = {
    {"system:serviceaccount:default:web", 1},
    {"system:serviceaccount:kube-system:coredns", 1},
    {"system:serviceaccount::web", 0},
    {"system:serviceaccount:default:", 0},
    {"system:serviceaccount:default", 0},
    {"system:serviceaccounts:default:web", 0},
    {"system:serviceaccount:a:b:c", 0},
    {"", 0},
};

static void test_subject_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(subject_rows) / sizeof(subject_rows[0]); ++i) {
        char ns[64], sa[64];
        int got = cmn_k8s_subject_split(subject_rows[i].sub, ns, sa, sizeof(ns));
        if ((got == 0) != subject_rows[i].ok)
            fail_msg("subject row %zu (%s)", i, subject_rows[i].sub);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_table),
        cmocka_unit_test(test_base64url_bounds),
        cmocka_unit_test(test_subject_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
