/* Table-driven tests of certs/spiffe.c: every rule of the SPIFFE ID grammar. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "certs/spiffe.h"

struct row {
    const char *id;
    int want; /* CRT_SPIFFE_OK or the error */
};

static const struct row rows[] = {
    /* good */
    {"spiffe://cluster.local/ns/default/sa/frontend", CRT_SPIFFE_OK},
    {"spiffe://example.org", CRT_SPIFFE_OK},
    {"spiffe://example.org/workload", CRT_SPIFFE_OK},
    {"spiffe://a/b", CRT_SPIFFE_OK},
    {"spiffe://trust_domain-1.example/a/b/c", CRT_SPIFFE_OK},
    {"spiffe://td/Path/With/UPPER/case", CRT_SPIFFE_OK},
    {"spiffe://td/a.b/c-d/e_f", CRT_SPIFFE_OK},
    {"spiffe://td/...", CRT_SPIFFE_OK},
    {"spiffe://td/.hidden", CRT_SPIFFE_OK},
    {"spiffe://0123456789/x", CRT_SPIFFE_OK},
    /* scheme */
    {"", CRT_SPIFFE_E_EMPTY},
    {"http://td/a", CRT_SPIFFE_E_SCHEME},
    {"SPIFFE://td/a", CRT_SPIFFE_E_SCHEME},
    {"spiffe:/td/a", CRT_SPIFFE_E_SCHEME},
    {"spiffe:td/a", CRT_SPIFFE_E_SCHEME},
    {"td/ns/default", CRT_SPIFFE_E_SCHEME},
    /* trust domain */
    {"spiffe://", CRT_SPIFFE_E_NO_TRUST_DOMAIN},
    {"spiffe:///a", CRT_SPIFFE_E_NO_TRUST_DOMAIN},
    {"spiffe://Cluster.local/a", CRT_SPIFFE_E_TRUST_DOMAIN_CHAR},
    {"spiffe://CLUSTER/a", CRT_SPIFFE_E_TRUST_DOMAIN_CHAR},
    {"spiffe://td:8080/a", CRT_SPIFFE_E_PORT},
    {"spiffe://td:/a", CRT_SPIFFE_E_PORT},
    {"spiffe://user@td/a", CRT_SPIFFE_E_USERINFO},
    {"spiffe://user:pw@td/a", CRT_SPIFFE_E_PORT},
    {"spiffe://td?x=1", CRT_SPIFFE_E_QUERY},
    {"spiffe://td#frag", CRT_SPIFFE_E_FRAGMENT},
    {"spiffe://t d/a", CRT_SPIFFE_E_TRUST_DOMAIN_CHAR},
    {"spiffe://td%41/a", CRT_SPIFFE_E_TRUST_DOMAIN_CHAR},
    {"spiffe://[::1]/a", CRT_SPIFFE_E_TRUST_DOMAIN_CHAR},
    {"spiffe://tdé/a", CRT_SPIFFE_E_TRUST_DOMAIN_CHAR},
    /* path */
    {"spiffe://td/", CRT_SPIFFE_E_EMPTY_SEGMENT},
    {"spiffe://td/a/", CRT_SPIFFE_E_EMPTY_SEGMENT},
    {"spiffe://td//a", CRT_SPIFFE_E_EMPTY_SEGMENT},
    {"spiffe://td/a//b", CRT_SPIFFE_E_EMPTY_SEGMENT},
    {"spiffe://td/.", CRT_SPIFFE_E_DOT_SEGMENT},
    {"spiffe://td/..", CRT_SPIFFE_E_DOT_SEGMENT},
    {"spiffe://td/a/./b", CRT_SPIFFE_E_DOT_SEGMENT},
    {"spiffe://td/a/../b", CRT_SPIFFE_E_DOT_SEGMENT},
    {"spiffe://td/a?x=1", CRT_SPIFFE_E_QUERY},
    {"spiffe://td/a#frag", CRT_SPIFFE_E_FRAGMENT},
    {"spiffe://td/a%20b", CRT_SPIFFE_E_PATH_CHAR},
    {"spiffe://td/%2e%2e", CRT_SPIFFE_E_PATH_CHAR},
    {"spiffe://td/a b", CRT_SPIFFE_E_PATH_CHAR},
    {"spiffe://td/a:b", CRT_SPIFFE_E_PATH_CHAR},
    {"spiffe://td/a@b", CRT_SPIFFE_E_PATH_CHAR},
    {"spiffe://td/a*", CRT_SPIFFE_E_PATH_CHAR},
    {"spiffe://td/a\\b", CRT_SPIFFE_E_PATH_CHAR},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        crt_spiffe_id_t id = {0};
        int got = crt_spiffe_parse(rows[i].id, strlen(rows[i].id), &id);
        if (got != rows[i].want)
            fail_msg("row %zu \"%s\": want %s, got %s", i, rows[i].id, crt_spiffe_error_message(rows[i].want),
                     crt_spiffe_error_message(got));
    }
}

static void test_table_is_large_enough(void **state)
{
    (void)state;
    assert_true(sizeof(rows) / sizeof(rows[0]) >= 30);
}

static void test_slices(void **state)
{
    (void)state;
    const char *s = "spiffe://cluster.local/ns/default/sa/web";
    crt_spiffe_id_t id;
    assert_int_equal(crt_spiffe_parse(s, strlen(s), &id), CRT_SPIFFE_OK);
    assert_int_equal(id.trust_domain_len, strlen("cluster.local"));
    assert_memory_equal(id.trust_domain, "cluster.local", id.trust_domain_len);
    assert_int_equal(id.path_len, strlen("/ns/default/sa/web"));
    assert_memory_equal(id.path, "/ns/default/sa/web", id.path_len);
    assert_true(crt_spiffe_in_trust_domain(&id, "cluster.local", 13));
    assert_false(crt_spiffe_in_trust_domain(&id, "cluster.loca", 12));
    assert_false(crt_spiffe_in_trust_domain(&id, "other.local", 11));
}

static void test_length_limits(void **state)
{
    (void)state;
    static char buf[CRT_SPIFFE_ID_MAX + 2];
    crt_spiffe_id_t id;

    /* exactly 2048 bytes is allowed */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "spiffe://td/", 12);
    assert_int_equal(crt_spiffe_parse(buf, CRT_SPIFFE_ID_MAX, &id), CRT_SPIFFE_OK);
    assert_int_equal(crt_spiffe_parse(buf, CRT_SPIFFE_ID_MAX + 1, &id), CRT_SPIFFE_E_TOO_LONG);

    /* trust domain of 255 is fine, 256 is not */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "spiffe://", 9);
    buf[9 + 255] = '/';
    assert_int_equal(crt_spiffe_parse(buf, 9 + 255 + 2, &id), CRT_SPIFFE_OK);
    buf[9 + 255] = 'a';
    buf[9 + 256] = '/';
    assert_int_equal(crt_spiffe_parse(buf, 9 + 256 + 2, &id), CRT_SPIFFE_E_TRUST_DOMAIN_TOO_LONG);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    static const char s[] = "spiffe://td/a\0b";
    crt_spiffe_id_t id;
    assert_int_equal(crt_spiffe_parse(s, sizeof(s) - 1, &id), CRT_SPIFFE_E_PATH_CHAR);
}

static void test_workload_needs_path(void **state)
{
    (void)state;
    crt_spiffe_id_t id;
    assert_int_equal(crt_spiffe_parse_workload("spiffe://td", 11, &id), CRT_SPIFFE_E_NO_PATH);
    assert_int_equal(crt_spiffe_parse_workload("spiffe://td/a", 13, &id), CRT_SPIFFE_OK);
    assert_int_equal(crt_spiffe_parse_workload("spiffe://TD/a", 13, &id), CRT_SPIFFE_E_TRUST_DOMAIN_CHAR);
}

static void test_from_service_account(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(crt_spiffe_from_service_account("cluster.local", "default", "web", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "spiffe://cluster.local/ns/default/sa/web");
    assert_int_equal(crt_spiffe_from_service_account("cluster.local", "a/b", "web", buf, sizeof(buf)),
                     CRT_SPIFFE_E_PATH_CHAR);
    assert_int_equal(crt_spiffe_from_service_account("cluster.local", "default", "Web", buf, sizeof(buf)),
                     CRT_SPIFFE_E_PATH_CHAR);
    assert_int_equal(crt_spiffe_from_service_account("cluster.local", "..", "web", buf, sizeof(buf)),
                     CRT_SPIFFE_E_DOT_SEGMENT);
    assert_string_equal(buf, "");
    assert_int_equal(crt_spiffe_from_service_account("cluster.local", "", "web", buf, sizeof(buf)),
                     CRT_SPIFFE_E_EMPTY_SEGMENT);
    assert_int_equal(crt_spiffe_from_service_account("cluster.local", "default", "web", buf, 10),
                     CRT_SPIFFE_E_TOO_LONG);
}

static void test_messages(void **state)
{
    (void)state;
    assert_string_equal(crt_spiffe_error_message(CRT_SPIFFE_E_PORT), "trust domain must not carry a port");
    assert_string_equal(crt_spiffe_error_message(12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_table_is_large_enough),
        cmocka_unit_test(test_slices),         cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_embedded_nul),   cmocka_unit_test(test_workload_needs_path),
        cmocka_unit_test(test_from_service_account), cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests_name("certs/spiffe", tests, NULL, NULL);
}
