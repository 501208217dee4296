/* Tests of sidecar/policy/connlimit.c: the descriptor plan behind the connection budgets, and the shared count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "sidecar/policy/connlimit.h"

static void test_plan(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        sc_connlimit_want_t want;
        int rc;
        uint64_t nofile, inbound_max, outbound_max;
        int clamped;
    } rows[] = {
        /* soft 1024, hard 1M: raised to what 10000 per listener needs */
        {"raised for both listeners", {1024, 1048576, 10000, 1, 1}, 0, 64 + 2 * (10000 + 128), 10000, 10000, 0},
        {"raised for inbound only", {1024, 1048576, 10000, 2, 0}, 0, 64 + 10000 + 256, 10000, 0, 0},
        {"an unlimited hard limit", {1024, UINT64_MAX, 10000, 1, 0}, 0, 64 + 10000 + 128, 10000, 0, 0},
        {"already enough: left alone", {65536, 65536, 10000, 1, 1}, 0, 65536, 10000, 10000, 0},
        /* ulimit -n 256: (256 - 64) = 192 for the one listener, half kept for the app */
        {"256, inbound only", {256, 256, 10000, 1, 0}, 0, 256, 96, 0, 1},
        /* 1024 for both: 480 each; inbound keeps 128 for the app, outbound 32 for the mesh */
        {"1024, both", {1024, 1024, 10000, 1, 1}, 0, 1024, 352, 448, 1},
        {"1024, both, a small max", {1024, 1024, 100, 1, 1}, 0, 1024, 100, 100, 0},
        {"4096, four workers", {4096, 4096, 10000, 4, 4}, 0, 4096, 2016 - 512, 2016 - 128, 1},
        {"raised only up to the hard limit", {1024, 2048, 10000, 1, 0}, 0, 2048, 2048 - 64 - 128, 0, 1},
        {"a hard limit below the soft one", {512, 256, 10000, 1, 0}, 0, 512, 512 - 64 - 128, 0, 1},
        {"admin only", {256, 256, 10000, 0, 0}, 0, 256, 0, 0, 0},
        {"65 descriptors: one connection", {65, 65, 10000, 1, 0}, 0, 65, 1, 0, 1},
        {"64 descriptors: none left", {64, 64, 10000, 1, 0}, -1, 64, 0, 0, 1},
        {"66 for both: one each", {66, 66, 10000, 1, 1}, 0, 66, 1, 1, 1},
        {"65 for both: none", {65, 65, 10000, 1, 1}, -1, 65, 0, 0, 1},
        {"huge max saturates", {1024, UINT64_MAX, UINT64_MAX, 1, 1}, 0, UINT64_MAX, UINT64_MAX / 2 - 32 - 128,
         UINT64_MAX / 2 - 32 - 32, 1},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_connlimit_plan_t plan;
        int rc = sc_connlimit_plan(&rows[i].want, &plan);
        if (rc != rows[i].rc)
            fail_msg("%s: rc %d", rows[i].what, rc);
        if (plan.nofile != rows[i].nofile || plan.inbound_max != rows[i].inbound_max ||
            plan.outbound_max != rows[i].outbound_max || plan.clamped != rows[i].clamped)
            fail_msg("%s: nofile %llu inbound %llu outbound %llu clamped %d", rows[i].what,
                     (unsigned long long)plan.nofile, (unsigned long long)plan.inbound_max,
                     (unsigned long long)plan.outbound_max, plan.clamped);
    }
}

static void test_take_release(void **state)
{
    (void)state;
    sc_connlimit_t limit;

    sc_connlimit_init(&limit, 2, 256);
    assert_true(sc_connlimit_take(&limit));
    assert_true(sc_connlimit_take(&limit));
    assert_false(sc_connlimit_take(&limit)); /* full: nothing taken */
    assert_int_equal(sc_connlimit_open(&limit), 2);
    sc_connlimit_release(&limit);
    assert_int_equal(sc_connlimit_open(&limit), 1);
    assert_true(sc_connlimit_take(&limit));
    assert_false(sc_connlimit_take(&limit));
    sc_connlimit_release(&limit);
    sc_connlimit_release(&limit);
    assert_int_equal(sc_connlimit_open(&limit), 0);

    sc_connlimit_init(&limit, 0, 256); /* an unset budget refuses everything */
    assert_false(sc_connlimit_take(&limit));
    assert_int_equal(sc_connlimit_open(&limit), 0);
}

static void test_fd_ceiling(void **state)
{
    (void)state;
    sc_connlimit_t limit;

    sc_connlimit_init(&limit, 10, 256);
    assert_true(sc_connlimit_fd_ok(&limit, 3));
    assert_true(sc_connlimit_fd_ok(&limit, 256 - SC_FD_HEADROOM - 1));
    assert_false(sc_connlimit_fd_ok(&limit, 256 - SC_FD_HEADROOM));
    assert_false(sc_connlimit_fd_ok(&limit, 255));
    sc_connlimit_init(&limit, 10, UINT64_MAX);
    assert_true(sc_connlimit_fd_ok(&limit, 1 << 30));
    sc_connlimit_init(&limit, 10, 8); /* below the headroom: every descriptor is refused */
    assert_false(sc_connlimit_fd_ok(&limit, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_take_release),
        cmocka_unit_test(test_fd_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
