/* Tests of common/duration.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/duration.h"

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        int64_t ms;
    } rows[] = {
        {"0", 1, 0},        {"15", 1, 15000},       {"250ms", 1, 250},   {"15s", 1, 15000},
        {"5m", 1, 300000},  {"1h", 1, 3600000},     {"30d", 1, 2592000000LL},
        {"", 0, 0},         {"s", 0, 0},            {"-1s", 0, 0},        {"1.5s", 0, 0},
        {"1 s", 0, 0},      {"1sec", 0, 0},         {"1H", 0, 0},         {"10y", 0, 0},
        {"99999999999999999999s", 0, 0},            {"9999999999d", 0, 0}, {"+5s", 0, 0},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        int64_t ms = -1;
        int got = cmn_duration_parse(rows[i].text, &ms);
        if ((got == 0) != rows[i].ok)
            fail_msg("\"%s\": want %s", rows[i].text, rows[i].ok ? "ok" : "refused");
        if (rows[i].ok)
            assert_int_equal(ms, rows[i].ms);
    }
}

static void test_format(void **state)
{
    (void)state;
    char buf[32];
    cmn_duration_format(3600000, buf, sizeof(buf));
    assert_string_equal(buf, "1h");
    cmn_duration_format(90000, buf, sizeof(buf));
    assert_string_equal(buf, "90s");
    cmn_duration_format(250, buf, sizeof(buf));
    assert_string_equal(buf, "250ms");
    cmn_duration_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "0ms");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse), cmocka_unit_test(test_format)};
    return cmocka_run_group_tests_name("common/duration", tests, NULL, NULL);
}
