/* Tests control/tokens.c: folding the tokens file, and create / peek / consume on disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/error.h"
#include "control/tokens.h"

#define WEB "spiffe://example.org/ns/default/sa/web"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define CREATE(h, exp) "{\"op\":\"create\",\"hash\":\"" h "\",\"spiffe_id\":\"" WEB "\",\"expires\":" #exp "}\n"
#define USE(h) "{\"op\":\"use\",\"hash\":\"" h "\",\"at\":5}\n"

static const struct {
    const char *name;
    const char *text;
    const char *hash;
    ca_token_state_t state;
    size_t bad_lines;
    int check_at_100;
} fold_rows[] = {
    {"unknown in empty file", "", H1, CA_TOKEN_UNKNOWN, 0, CA_E_JOIN_TOKEN_UNKNOWN},
    {"created", CREATE(H1, 1000), H1, CA_TOKEN_UNUSED, 0, 0},
    {"other token", CREATE(H2, 1000), H1, CA_TOKEN_UNKNOWN, 0, CA_E_JOIN_TOKEN_UNKNOWN},
    {"created then used", CREATE(H1, 1000) USE(H1), H1, CA_TOKEN_USED, 0, CA_E_JOIN_TOKEN_USED},
    {"use before create still counts", USE(H1) CREATE(H1, 1000), H1, CA_TOKEN_USED, 0, CA_E_JOIN_TOKEN_USED},
    {"other token used", CREATE(H1, 1000) USE(H2), H1, CA_TOKEN_UNUSED, 0, 0},
    {"expired", CREATE(H1, 100), H1, CA_TOKEN_UNUSED, 0, CA_E_JOIN_TOKEN_EXPIRED},
    {"corrupt lines skipped", "junk\n" CREATE(H1, 1000) "{\"op\":\"burn\"}\n{\"op\":\"use\",\"hash\":\"11", H1,
     CA_TOKEN_UNUSED, 3, 0},
    {"create without identity", "{\"op\":\"create\",\"hash\":\"" H1 "\",\"expires\":1000}\n", H1, CA_TOKEN_UNKNOWN, 1,
     CA_E_JOIN_TOKEN_UNKNOWN},
    {"hash prefix is not the hash", "{\"op\":\"create\",\"hash\":\"1111\",\"spiffe_id\":\"" WEB "\",\"expires\":1000}\n",
     H1, CA_TOKEN_UNKNOWN, 0, CA_E_JOIN_TOKEN_UNKNOWN},
};

static void test_fold_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fold_rows) / sizeof(fold_rows[0]); ++i) {
        ca_token_entry_t entry;
        assert_int_equal(ca_tokens_fold(fold_rows[i].text, strlen(fold_rows[i].text), fold_rows[i].hash, &entry), 0);
        if (entry.state != fold_rows[i].state || entry.bad_lines != fold_rows[i].bad_lines ||
            ca_token_check(&entry, 100) != fold_rows[i].check_at_100)
            fail_msg("%s: state %d bad %zu check %s", fold_rows[i].name, entry.state, entry.bad_lines,
                     ca_error_slug(ca_token_check(&entry, 100)));
        if (entry.state != CA_TOKEN_UNKNOWN && fold_rows[i].state == CA_TOKEN_UNUSED)
            assert_string_equal(entry.spiffe_id, WEB);
    }
}

static void test_hash_and_prefix(void **state)
{
    char hex[CA_TOKEN_HASH_HEX + 1];
    (void)state;
    ca_token_hash("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(ca_token_is_join_token("seam-join-x", 11));
    assert_false(ca_token_is_join_token("seam-join-", 10));
    assert_false(ca_token_is_join_token("eyJhbGciOi.x.y", 14));
}

static void test_create_peek_consume(void **state)
{
    const char *base = getenv("TEST_TMPDIR");
    char dir[4096], path[4200], token[CA_TOKEN_MAX + 1], token2[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1],
        detail[256];
    struct stat st;
    (void)state;
    snprintf(dir, sizeof(dir), "%s/tokens.XXXXXX", base != NULL ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/join-tokens", dir);

    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, token, detail, sizeof(detail)), 0);
    assert_true(ca_token_is_join_token(token, strlen(token)));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The file holds the hash, never the token. */
    FILE *fp = fopen(path, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    assert_null(strstr(text, token + sizeof(CA_TOKEN_PREFIX) - 1));

    assert_int_equal(ca_tokens_create(path, "spiffe://example.org/ns/default/sa/db", 1, 1000, token2, detail,
                                      sizeof(detail)),
                     0);
    assert_string_not_equal(token, token2);

    assert_int_equal(ca_tokens_peek(path, token, strlen(token), 1001, id, detail, sizeof(detail)), 0);
    assert_string_equal(id, WEB);
    /* Bound to its identity: a consume for another ID leaves it usable. */
    assert_int_equal(ca_tokens_consume(path, token, strlen(token), 1001, "spiffe://example.org/ns/default/sa/db",
                                       detail, sizeof(detail)),
                     CA_E_IDENTITY_MISMATCH);
    assert_int_equal(ca_tokens_consume(path, token, strlen(token), 1001, WEB, detail, sizeof(detail)), 0);
    assert_int_equal(ca_tokens_consume(path, token, strlen(token), 1002, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_USED);
    assert_int_equal(ca_tokens_peek(path, token, strlen(token), 1002, id, detail, sizeof(detail)), CA_E_JOIN_TOKEN_USED);
    /* token2 lived one second. */
    assert_int_equal(ca_tokens_peek(path, token2, strlen(token2), 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_EXPIRED);
    assert_int_equal(ca_tokens_peek(path, "seam-join-nope", 14, 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_tokens_peek(path, "not-a-token", 11, 1001, id, detail, sizeof(detail)), CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_tokens_peek("/nonexistent/tokens", token, strlen(token), 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_tokens_consume("/nonexistent/tokens", token, strlen(token), 1001, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_tokens_peek(dir, token, strlen(token), 1001, id, detail, sizeof(detail)), CA_E_IO);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_table),
        cmocka_unit_test(test_hash_and_prefix),
        cmocka_unit_test(test_create_peek_consume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
