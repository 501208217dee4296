/* Table-driven tests of sidecar/admin/adminguard.c: which admin requests may change state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/admin/adminguard.h"

#define ALLOW SC_ADMIN_GUARD_ALLOW
#define ORIGIN SC_ADMIN_GUARD_E_ORIGIN
#define HOST SC_ADMIN_GUARD_E_HOST

struct row {
    const char *method;
    int has_origin;
    const char *host; /* the Host value; "" when absent */
    const char *listen;
    int want;
};

static const struct row rows[] = {
    /* reads are never refused */
    {"GET", 1, "evil.example", "127.0.0.1:15000", ALLOW},
    {"HEAD", 1, "evil.example", "127.0.0.1:15000", ALLOW},
    {"GET", 0, "", "127.0.0.1:15000", ALLOW},
    /* the reported attack, and Origin on its own */
    {"POST", 1, "evil.example", "127.0.0.1:15000", ORIGIN},
    {"POST", 1, "127.0.0.1:15000", "127.0.0.1:15000", ORIGIN},
    {"PUT", 1, "localhost", "127.0.0.1:15000", ORIGIN},
    {"get", 1, "localhost", "127.0.0.1:15000", ORIGIN},
    /* a rebound name reaches the loopback listener with that name in Host */
    {"POST", 0, "evil.example", "127.0.0.1:15000", HOST},
    {"POST", 0, "evil.example:15000", "127.0.0.1:15000", HOST},
    {"POST", 0, "localhost.evil.example", "127.0.0.1:15000", HOST},
    {"POST", 0, "127.0.0.1.nip.io:15000", "127.0.0.1:15000", HOST},
    {"DELETE", 0, "evil.example", "127.0.0.1:15000", HOST},
    /* the loopback names, with any port or none */
    {"POST", 0, "127.0.0.1:15000", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "127.0.0.1", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "127.0.0.1:8080", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "127.0.0.1:", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "127.1.2.3:15000", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "localhost", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "LocalHost:15000", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "[::1]", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "[::1]:15000", "127.0.0.1:15000", ALLOW},
    {"POST", 0, "[0:0::1]:15000", "[::1]:15000", ALLOW},
    {"POST", 0, "127.0.0.1:15000", "[::1]:15000", ALLOW},
    /* malformed Host values */
    {"POST", 0, "", "127.0.0.1:15000", HOST},
    {"POST", 0, "::1", "127.0.0.1:15000", HOST},
    {"POST", 0, "[::1", "127.0.0.1:15000", HOST},
    {"POST", 0, "[::1]x", "127.0.0.1:15000", HOST},
    {"POST", 0, "[localhost]", "127.0.0.1:15000", HOST},
    {"POST", 0, "[127.0.0.1]", "127.0.0.1:15000", HOST},
    {"POST", 0, "127.0.0.1:15000:1", "127.0.0.1:15000", HOST},
    {"POST", 0, "127.0.0.1:65536", "127.0.0.1:15000", HOST},
    {"POST", 0, "127.0.0.1:123456", "127.0.0.1:15000", HOST},
    {"POST", 0, "127.0.0.1:1a", "127.0.0.1:15000", HOST},
    {"POST", 0, ":15000", "127.0.0.1:15000", HOST},
    {"POST", 0, "127.1", "127.0.0.1:15000", HOST},
    {"POST", 0, "localhost.", "127.0.0.1:15000", HOST},
    {"POST", 0, "user@localhost", "127.0.0.1:15000", HOST},
    {"POST", 0, "default", "127.0.0.1:15000", HOST},
    /* a non-loopback listen address (--admin-allow-remote): its own address, compared as an address */
    {"POST", 0, "10.0.0.5:15000", "10.0.0.5:15000", ALLOW},
    {"POST", 0, "10.0.0.5", "10.0.0.5:15000", ALLOW},
    {"POST", 0, "10.0.0.6:15000", "10.0.0.5:15000", HOST},
    {"POST", 0, "[2001:db8::5]:15000", "[2001:db8:0::5]:15000", ALLOW},
    {"POST", 0, "[2001:db8::6]:15000", "[2001:db8::5]:15000", HOST},
    {"POST", 0, "10.0.0.5:15000", "[2001:db8::5]:15000", HOST},
    {"POST", 0, "localhost:15000", "10.0.0.5:15000", ALLOW},
    /* a wildcard listen address: any address literal, no name but localhost */
    {"POST", 0, "10.0.0.5:15000", "0.0.0.0:15000", ALLOW},
    {"POST", 0, "[2001:db8::5]:15000", "0.0.0.0:15000", ALLOW},
    {"POST", 0, "10.0.0.5:15000", "[::]:15000", ALLOW},
    {"POST", 0, "pod.example:15000", "0.0.0.0:15000", HOST},
    {"POST", 0, "evil.example", "[::]:15000", HOST},
    {"POST", 1, "10.0.0.5:15000", "0.0.0.0:15000", ORIGIN},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        const struct row *r = &rows[i];
        sc_slice_t method = {r->method, strlen(r->method)}, host = {r->host, strlen(r->host)};
        int got = sc_admin_guard_check(method, r->has_origin, host, r->listen);
        if (got != r->want)
            fail_msg("row %zu (%s origin=%d Host \"%s\" on %s): want %s, got %s", i, r->method, r->has_origin,
                     r->host, r->listen, sc_admin_guard_name(r->want), sc_admin_guard_name(got));
    }
}

static void test_host_limits(void **state)
{
    (void)state;
    char host[SC_ADMIN_HOST_MAX + 2];
    sc_slice_t nul_host = {"localhost\0.evil.example", 23};

    /* a NUL inside the value does not cut it short */
    assert_int_equal(sc_admin_guard_host_ok(nul_host, "127.0.0.1:15000"), 0);
    /* the longest value looked at, and one byte more */
    memset(host, 'a', sizeof(host));
    sc_slice_t longest = {host, SC_ADMIN_HOST_MAX}, too_long = {host, SC_ADMIN_HOST_MAX + 1};
    memcpy(host, "localhost:", 10);
    assert_int_equal(sc_admin_guard_host_ok(longest, "127.0.0.1:15000"), 0); /* a bad port, not an overflow */
    assert_int_equal(sc_admin_guard_host_ok(too_long, "127.0.0.1:15000"), 0);
    memset(host, 'a', sizeof(host));
    assert_int_equal(sc_admin_guard_host_ok(longest, "127.0.0.1:15000"), 0);
    /* an unusable listen address matches only the loopback names */
    sc_slice_t ip = {"10.0.0.5", 8}, lo = {"localhost", 9};
    assert_int_equal(sc_admin_guard_host_ok(ip, "nonsense"), 0);
    assert_int_equal(sc_admin_guard_host_ok(lo, "nonsense"), 1);
}

static void test_vocabulary(void **state)
{
    (void)state;
    assert_string_equal(sc_admin_guard_name(ALLOW), "allow");
    assert_string_equal(sc_admin_guard_name(ORIGIN), "origin");
    assert_string_equal(sc_admin_guard_name(HOST), "host");
    assert_string_equal(sc_admin_guard_name(-1), "unknown");
    for (int v = SC__ADMIN_GUARD_FIRST + 1; v != SC__ADMIN_GUARD_END; ++v) {
        const char *m = sc_admin_guard_message(v);
        assert_true(v < 0);
        assert_non_null(strstr(m, "forbidden"));
        assert_null(strchr(m, '\n'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_host_limits),
        cmocka_unit_test(test_vocabulary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
