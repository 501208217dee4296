/* Tests of sidecar/policy/streamrate.c: the one-second window and its limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sidecar/policy/streamrate.h"

static void test_resets_over_the_limit(void **state)
{
    (void)state;
    sc_stream_rate_t rate = {0};
    unsigned count = 0;
    for (unsigned i = 1; i <= SC_RESETS_PER_SECOND_MAX; ++i) {
        assert_int_equal(sc_stream_rate_note(&rate, 5000 + i, SC_STREAM_RESET, &count), 0);
        assert_int_equal(count, i);
    }
    assert_int_equal(sc_stream_rate_note(&rate, 5999, SC_STREAM_RESET, &count), 1);
    assert_int_equal(count, SC_RESETS_PER_SECOND_MAX + 1);
    /* reported once; the caller has closed the connection by then */
    assert_int_equal(sc_stream_rate_note(&rate, 5999, SC_STREAM_RESET, NULL), 0);
}

static void test_window_rolls(void **state)
{
    (void)state;
    sc_stream_rate_t rate = {0};
    unsigned count = 0;
    /* the same number spread over two windows stays under the limit */
    for (unsigned i = 0; i < SC_RESETS_PER_SECOND_MAX; ++i)
        assert_int_equal(sc_stream_rate_note(&rate, 10000, SC_STREAM_RESET, NULL), 0);
    assert_int_equal(sc_stream_rate_note(&rate, 10000 + SC_STREAM_RATE_WINDOW_MS, SC_STREAM_RESET, &count), 0);
    assert_int_equal(count, 1);
    /* a clock that goes backwards starts a new window instead of underflowing */
    assert_int_equal(sc_stream_rate_note(&rate, 3, SC_STREAM_RESET, &count), 0);
    assert_int_equal(count, 1);
}

static void test_opens_and_resets_are_separate(void **state)
{
    (void)state;
    sc_stream_rate_t rate = {0};
    unsigned count = 0;
    for (unsigned i = 0; i < SC_STREAMS_PER_SECOND_MAX; ++i)
        assert_int_equal(sc_stream_rate_note(&rate, 77, SC_STREAM_OPENED, NULL), 0);
    assert_int_equal(sc_stream_rate_note(&rate, 77, SC_STREAM_RESET, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(sc_stream_rate_note(&rate, 500, SC_STREAM_OPENED, &count), 1);
    assert_int_equal(count, SC_STREAMS_PER_SECOND_MAX + 1);
    assert_int_equal(sc_stream_rate_limit(SC_STREAM_OPENED), SC_STREAMS_PER_SECOND_MAX);
    assert_int_equal(sc_stream_rate_limit(SC_STREAM_RESET), SC_RESETS_PER_SECOND_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resets_over_the_limit),
        cmocka_unit_test(test_window_rolls),
        cmocka_unit_test(test_opens_and_resets_are_separate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
