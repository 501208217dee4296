/* Tests control/ratelimit.c with a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "control/ratelimit.h"

#define A "spiffe://example.org/ns/default/sa/a"
#define B "spiffe://example.org/ns/default/sa/b"

static void test_burst_then_refill(void **state)
{
    ca_ratelimit_t *rl = ca_ratelimit_new(60, 3, 100); /* one per second, three at once */
    (void)state;
    assert_non_null(rl);
    assert_int_equal(ca_ratelimit_take(rl, A, 1000), 1);
    assert_int_equal(ca_ratelimit_take(rl, A, 1000), 1);
    assert_int_equal(ca_ratelimit_take(rl, A, 1000), 1);
    assert_int_equal(ca_ratelimit_take(rl, A, 1000), 0);
    assert_int_equal(ca_ratelimit_take(rl, B, 1000), 1); /* identities are independent */
    assert_int_equal(ca_ratelimit_take(rl, A, 1500), 0);
    assert_int_equal(ca_ratelimit_take(rl, A, 2000), 1);
    assert_int_equal(ca_ratelimit_take(rl, A, 2000), 0);
    /* A long pause refills only up to the burst. */
    for (int i = 0; i < 3; ++i)
        assert_int_equal(ca_ratelimit_take(rl, A, 1000000), 1);
    assert_int_equal(ca_ratelimit_take(rl, A, 1000000), 0);
    /* The clock going backwards never adds tokens. */
    assert_int_equal(ca_ratelimit_take(rl, A, 10), 0);
    ca_ratelimit_free(rl);
}

static void test_table_bound(void **state)
{
    ca_ratelimit_t *rl = ca_ratelimit_new(60, 1, 4);
    char id[64];
    (void)state;
    for (int i = 0; i < 4; ++i) {
        snprintf(id, sizeof(id), "spiffe://example.org/ns/n/sa/%d", i);
        assert_int_equal(ca_ratelimit_take(rl, id, 0), 1);
    }
    /* Full of active identities: fail closed. */
    assert_int_equal(ca_ratelimit_take(rl, "spiffe://example.org/ns/n/sa/new", 0), 0);
    /* After their buckets refill they are forgotten and room is made. */
    assert_int_equal(ca_ratelimit_take(rl, "spiffe://example.org/ns/n/sa/new", 5000), 1);
    assert_int_equal(ca_ratelimit_size(rl), 1);
    ca_ratelimit_free(rl);
    assert_null(ca_ratelimit_new(0, 1, 1));
    assert_null(ca_ratelimit_new(1, 0, 1));
}

/* Refused credentials are charged per address; allows() looks without taking. */
static void test_allows(void **state)
{
    ca_ratelimit_t *rl = ca_ratelimit_new(60, 2, 2);
    (void)state;
    assert_non_null(rl);
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.1", 0), 1); /* unknown: a full bucket */
    assert_int_equal(ca_ratelimit_size(rl), 0);                   /* and looking tracks nothing */
    assert_int_equal(ca_ratelimit_take(rl, "192.0.2.1", 0), 1);
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.1", 0), 1);
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.1", 0), 1); /* looking twice takes nothing */
    assert_int_equal(ca_ratelimit_take(rl, "192.0.2.1", 0), 1);
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.1", 0), 0);
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.2", 0), 1);   /* addresses are independent */
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.1", 999), 0); /* not yet a whole token back */
    assert_int_equal(ca_ratelimit_allows(rl, "192.0.2.1", 1000), 1);
    /* A table full of limited addresses still lets a new one in: it has done nothing wrong yet. */
    assert_int_equal(ca_ratelimit_take(rl, "192.0.2.3", 1000), 1);
    assert_int_equal(ca_ratelimit_take(rl, "192.0.2.3", 1000), 1);
    assert_int_equal(ca_ratelimit_allows(rl, "198.51.100.9", 1000), 1);
    ca_ratelimit_free(rl);
}

static const struct {
    int family;
    const char *address;
    const char *key;
} address_rows[] = {
    {AF_INET, "192.0.2.7", "192.0.2.7"},
    {AF_INET, "127.0.0.1", "127.0.0.1"},
    {AF_INET6, "::ffff:192.0.2.7", "192.0.2.7"}, /* IPv4-mapped: the same client as over IPv4 */
    {AF_INET6, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
    {AF_INET6, "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"}, /* one /64, one key */
    {AF_INET6, "2001:db8:1:3::1", "2001:db8:1:3::/64"},
    {AF_INET6, "::1", "::/64"},
    {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::/64"},
};

static void test_address_key_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(address_rows) / sizeof(address_rows[0]); ++i) {
        struct sockaddr_storage ss = {0};
        char key[CA_RATE_ADDRESS_KEY_MAX];
        ss.ss_family = (sa_family_t)address_rows[i].family;
        if (address_rows[i].family == AF_INET)
            assert_int_equal(inet_pton(AF_INET, address_rows[i].address, &((struct sockaddr_in *)&ss)->sin_addr), 1);
        else
            assert_int_equal(inet_pton(AF_INET6, address_rows[i].address, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
        assert_int_equal(ca_ratelimit_address_key((struct sockaddr *)&ss, key, sizeof(key)), 0);
        if (strcmp(key, address_rows[i].key) != 0)
            fail_msg("%s: key %s, want %s", address_rows[i].address, key, address_rows[i].key);
    }
    struct sockaddr_storage unix_addr = {.ss_family = AF_UNIX};
    char key[CA_RATE_ADDRESS_KEY_MAX];
    assert_int_equal(ca_ratelimit_address_key((struct sockaddr *)&unix_addr, key, sizeof(key)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_table_bound),
        cmocka_unit_test(test_allows),
        cmocka_unit_test(test_address_key_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
