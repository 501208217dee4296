/* Tests control/ratelimit.c with a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_table_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
