/* Tests of sidecar/rotation.c: due times, jitter bounds, backoff, and the scheduler's state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sidecar/identity/rotation.h"

#define T0 ((time_t)1800000000)
#define HOUR 3600

static void test_due_is_half_life_with_bounded_jitter(void **state)
{
    (void)state;
    /* 1 h certificate: due within [30m - 6m, 30m + 6m] for every random value */
    time_t lo = T0 + HOUR / 2 - HOUR / 10, hi = T0 + HOUR / 2 + HOUR / 10;
    static const uint32_t randoms[] = {0, 1, 360, 721, 12345, 0x7fffffff, 0x80000000u, 0xffffffffu};
    int below_half = 0, above_half = 0;
    for (size_t i = 0; i != sizeof(randoms) / sizeof(randoms[0]); ++i) {
        time_t due = sc_rotation_due(T0, T0 + HOUR, randoms[i]);
        if (due < lo || due > hi)
            fail_msg("random %u: due %ld outside [%ld, %ld]", randoms[i], (long)(due - T0), (long)(lo - T0), (long)(hi - T0));
        below_half += due < T0 + HOUR / 2;
        above_half += due > T0 + HOUR / 2;
    }
    assert_true(below_half > 0 && above_half > 0); /* the jitter goes both ways */
    assert_int_equal(sc_rotation_due(T0, T0 + HOUR, 0), lo);
    assert_int_equal(sc_rotation_due(T0, T0 + HOUR, 720), hi);
    assert_int_equal(sc_rotation_due(T0, T0 + HOUR, 360), T0 + HOUR / 2);
    /* 20 s certificate (the rotation test's ttl): 10 s +- 2 s */
    for (uint32_t r = 0; r < 100; ++r) {
        time_t due = sc_rotation_due(T0, T0 + 20, r);
        assert_true(due >= T0 + 8 && due <= T0 + 12);
    }
    /* degenerate lifetimes */
    assert_int_equal(sc_rotation_due(T0, T0, 5), T0);
    assert_int_equal(sc_rotation_due(T0, T0 - 10, 5), T0);
    assert_int_equal(sc_rotation_due(T0, T0 + 1, 5), T0);
}

static void test_backoff(void **state)
{
    (void)state;
    time_t far = T0 + 24 * HOUR;
    static const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
    for (unsigned i = 0; i != sizeof(want) / sizeof(want[0]); ++i)
        assert_int_equal(sc_rotation_backoff_ms(i + 1, T0, far), want[i]);
    assert_int_equal(sc_rotation_backoff_ms(1000, T0, far), 60000); /* no overflow */
    /* 10 s before expiry a 60 s wait shrinks so the attempt lands before expiry */
    assert_int_equal(sc_rotation_backoff_ms(8, T0, T0 + 10), 9000);
    /* already expired: keep retrying at the capped interval */
    assert_int_equal(sc_rotation_backoff_ms(8, T0, T0 - 10), 60000);
    assert_int_equal(sc_rotation_backoff_ms(1, T0, T0 - 10), 1000);
}

static void test_scheduler(void **state)
{
    (void)state;
    sc_rotation_t r = {0};
    /* no certificate yet: attempt now, and expired */
    assert_int_equal(sc_rotation_wait_ms(&r, T0, 0), 0);
    assert_true(sc_rotation_expired(&r, T0));

    sc_rotation_on_success(&r, T0 - 60, T0 + HOUR, T0, 360 + 6);
    assert_false(sc_rotation_expired(&r, T0));
    assert_int_equal(r.last_rotation, T0);
    int64_t wait = sc_rotation_wait_ms(&r, T0, 1000);
    assert_int_equal(wait, (int64_t)(r.due - T0) * 1000);
    assert_true(wait > 20 * 60 * 1000 && wait < 40 * 60 * 1000);

    /* at the due time: renew; the CA is down: back off 1 s, 2 s, 4 s */
    time_t now = r.due;
    assert_int_equal(sc_rotation_wait_ms(&r, now, 5000), 0);
    assert_int_equal(sc_rotation_on_failure(&r, now, 5000), 1000);
    assert_int_equal(sc_rotation_wait_ms(&r, now, 5500), 500);
    assert_int_equal(sc_rotation_wait_ms(&r, now, 6000), 0);
    assert_int_equal(sc_rotation_on_failure(&r, now, 6000), 2000);
    assert_int_equal(sc_rotation_on_failure(&r, now, 8000), 4000);
    assert_int_equal(r.failures, 3);
    assert_int_equal(r.total_failures, 3);

    /* the CA is back: success resets the retry state but keeps the failure total */
    sc_rotation_on_success(&r, now, now + HOUR, now, 0);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.total_failures, 3);
    assert_true(sc_rotation_wait_ms(&r, now, 9000) > 0);

    /* past expiry with the CA gone: expired, retries keep coming */
    time_t late = now + HOUR + 5;
    assert_true(sc_rotation_expired(&r, late));
    assert_int_equal(sc_rotation_wait_ms(&r, late, 10000), 0);
    assert_true(sc_rotation_on_failure(&r, late, 10000) <= SC_ROTATION_BACKOFF_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_is_half_life_with_bounded_jitter),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_scheduler),
    };
    return cmocka_run_group_tests_name("sidecar/rotation", tests, NULL, NULL);
}
