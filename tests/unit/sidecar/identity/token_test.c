/* Tests sidecar/identity/token.c: reading the token file and the identity a Kubernetes token names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/spiffe.h"
#include "common/base64url.h"
#include "sidecar/identity/token.h"

/* A JWT-shaped token with the given payload (header and signature are not looked at). */
static void make_jwt(const char *payload, char *out, size_t cap)
{
    char b64[2048];
    assert_int_equal(cmn_base64url_encode((const unsigned char *)payload, strlen(payload), b64, sizeof(b64)), 0);
    snprintf(out, cap, "eyJhbGciOiJSUzI1NiJ9.%s.c2ln", b64);
}

static void test_spiffe_id_from_subject(void **state)
{
    char token[4096], id[CRT_SPIFFE_ID_MAX + 1], err[256];
    (void)state;
    make_jwt("{\"sub\":\"system:serviceaccount:shop:checkout\",\"aud\":[\"seam-ca\"]}", token, sizeof(token));
    assert_int_equal(sc_token_spiffe_id(token, "cluster.local", id, sizeof(id), err, sizeof(err)), 0);
    assert_string_equal(id, "spiffe://cluster.local/ns/shop/sa/checkout");
    assert_int_equal(sc_token_spiffe_id(token, "example.org", id, sizeof(id), err, sizeof(err)), 0);
    assert_string_equal(id, "spiffe://example.org/ns/shop/sa/checkout");
}

static void test_spiffe_id_refusals(void **state)
{
    static const struct {
        const char *payload; /* NULL: the token below is used as is */
        const char *token;
        const char *needle;
    } rows[] = {
        {NULL, "seam-join-0123456789abcdef", "give --spiffe-id"},
        {NULL, "a.b", "give --spiffe-id"},
        {NULL, "a.b.c.d", "give --spiffe-id"},
        {NULL, "a.!!!.c", "not base64url JSON"},
        {"[1,2]", NULL, "not base64url JSON"},
        {"{\"aud\":\"seam-ca\"}", NULL, "sub is not"},
        {"{\"sub\":42}", NULL, "sub is not"},
        {"{\"sub\":\"system:node:worker-1\"}", NULL, "sub is not"},
        {"{\"sub\":\"system:serviceaccount:a:b:c\"}", NULL, "sub is not"},
        {"{\"sub\":\"system:serviceaccount:bad ns:web\"}", NULL, "no valid SPIFFE ID"},
        {"{\"sub\":\"system:serviceaccount:..:web\"}", NULL, NULL}, /* "..": a segment the SPIFFE parser refuses */
    };
    char token[4096], id[CRT_SPIFFE_ID_MAX + 1], err[256];
    (void)state;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        if (rows[i].payload != NULL)
            make_jwt(rows[i].payload, token, sizeof(token));
        else
            snprintf(token, sizeof(token), "%s", rows[i].token);
        err[0] = '\0';
        if (sc_token_spiffe_id(token, "cluster.local", id, sizeof(id), err, sizeof(err)) != -1)
            fail_msg("row %zu accepted", i);
        if (rows[i].needle != NULL && strstr(err, rows[i].needle) == NULL)
            fail_msg("row %zu: \"%s\" lacks \"%s\"", i, err, rows[i].needle);
        if (strchr(err, '\n') != NULL)
            fail_msg("row %zu: error is not one line", i);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_read(void **state)
{
    char dir[] = "/tmp/seam-token-XXXXXX", path[256], err[512], *token = NULL;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/token", dir);

    write_file(path, "seam-join-abc\n");
    assert_int_equal(sc_token_read(path, &token, err, sizeof(err)), 0);
    assert_string_equal(token, "seam-join-abc"); /* the trailing newline a ConfigMap or echo adds is dropped */
    sc_token_free(token);

    write_file(path, "\n \n");
    assert_int_equal(sc_token_read(path, &token, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "empty"));
    assert_non_null(strstr(err, path));

    write_file(path, "one two\n");
    assert_int_equal(sc_token_read(path, &token, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a single token"));

    unlink(path);
    assert_int_equal(sc_token_read(path, &token, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot read"));

    char *big = malloc(SC_TOKEN_MAX + 2);
    memset(big, 'a', SC_TOKEN_MAX + 1);
    big[SC_TOKEN_MAX + 1] = '\0';
    write_file(path, big);
    free(big);
    assert_int_equal(sc_token_read(path, &token, err, sizeof(err)), -1);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spiffe_id_from_subject),
        cmocka_unit_test(test_spiffe_id_refusals),
        cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
