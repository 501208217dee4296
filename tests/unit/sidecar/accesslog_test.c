/* Tests of sidecar/admin/accesslog.c: the hand-written JSON line says exactly what jansson would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/admin/accesslog.h"

/* The line's object as text ("{...}"), for comparing. */
static char *finish(sc_logline_t *line)
{
    size_t len;
    const char *text = sc_logline_text(line, &len);
    char *out = malloc(len + 2);
    memcpy(out, text, len);
    memcpy(out + len, "}", 2);
    if (line->p != line->inline_buf)
        free(line->p);
    return out;
}

/* What jansson writes for {"k": <value>} with the access log's old flags. */
static char *jansson_says(json_t *value)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "k", value);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(obj);
    return text;
}

static void expect_string_as_jansson(const char *s, size_t len)
{
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_logline_str(&line, "k", s, len);
    char *ours = finish(&line);
    json_t *v = json_stringn(s, len); /* NULL when not UTF-8: then null */
    char *theirs = jansson_says(v != NULL ? v : json_null());
    assert_string_equal(ours, theirs);
    free(ours);
    free(theirs);
}

static void test_strings_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        const char *want;
    } rows[] = {
        {"plain", 5, "{\"k\":\"plain\"}"},
        {"", 0, "{\"k\":\"\"}"},
        {"a\"b\\c", 5, "{\"k\":\"a\\\"b\\\\c\"}"},
        {"\b\f\n\r\t", 5, "{\"k\":\"\\b\\f\\n\\r\\t\"}"},
        {"\x01\x1f", 2, "{\"k\":\"\\u0001\\u001F\"}"},
        {"nul\0in", 6, "{\"k\":\"nul\\u0000in\"}"},
        {"/api/../x?q=1", 13, "{\"k\":\"/api/../x?q=1\"}"},
        {"caf\xc3\xa9", 5, "{\"k\":\"caf\xc3\xa9\"}"},            /* UTF-8 passes as it is */
        {"\xf0\x9f\x98\x80", 4, "{\"k\":\"\xf0\x9f\x98\x80\"}"}, /* four bytes */
        {"\xff", 1, "{\"k\":null}"},                             /* not UTF-8 */
        {"\xc0\xaf", 2, "{\"k\":null}"},                         /* overlong */
        {"\xed\xa0\x80", 3, "{\"k\":null}"},                     /* a surrogate */
        {"\xe2\x82", 2, "{\"k\":null}"},                         /* cut short */
        {"\xf4\x90\x80\x80", 4, "{\"k\":null}"},                 /* past U+10FFFF */
        {NULL, 0, "{\"k\":null}"},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_logline_t line;
        sc_logline_begin(&line);
        sc_logline_str(&line, "k", rows[i].s, rows[i].len);
        char *ours = finish(&line);
        assert_string_equal(ours, rows[i].want);
        free(ours);
        if (rows[i].s != NULL)
            expect_string_as_jansson(rows[i].s, rows[i].len);
    }
}

/* Random byte strings, biased towards the interesting bytes: the same text as jansson, every time. */
static void test_random_strings_match_jansson(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'a', '"', '\\', '\n', 0x01, 0x7f, 0x80, 0xbf, 0xc3, 0xa9,
                                             0xe2, 0x82, 0xac, 0xed, 0xf0, 0x9f, 0xf4, 0xff, '/', 0};
    unsigned seed = 12345;
    char buf[16];
    for (int n = 0; n != 20000; ++n) {
        size_t len = (size_t)(n % (int)sizeof(buf));
        for (size_t i = 0; i != len; ++i) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        expect_string_as_jansson(buf, len);
    }
}

static void test_numbers_and_literals(void **state)
{
    (void)state;
    static const double reals[] = {0.0, 1.578, 2.0, 12.5, 0.012, 1e-6, 1.5e-7, 123456.7, 1234567.0, 1e20, 30000.0};
    for (size_t i = 0; i != sizeof(reals) / sizeof(reals[0]); ++i) {
        sc_logline_t line;
        sc_logline_begin(&line);
        sc_logline_real(&line, "k", reals[i]);
        char *ours = finish(&line), *theirs = jansson_says(json_real(reals[i]));
        assert_string_equal(ours, theirs);
        free(ours);
        free(theirs);
    }
    static const struct {
        int64_t us;
        const char *text;
    } millis[] = {{0, "0.000"}, {7, "0.007"}, {482, "0.482"}, {1000, "1.000"}, {1234567, "1234.567"}, {-5, "0.000"}};
    for (size_t i = 0; i != sizeof(millis) / sizeof(millis[0]); ++i) {
        sc_logline_t line;
        char want[64];
        sc_logline_begin(&line);
        sc_logline_millis(&line, "d", millis[i].us);
        char *ours = finish(&line);
        snprintf(want, sizeof(want), "{\"d\":%s}", millis[i].text);
        assert_string_equal(ours, want);
        free(ours);
    }
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_logline_int(&line, "status", 200);
    sc_logline_int(&line, "big", -9007199254740993LL);
    sc_logline_bool(&line, "yes", 1);
    sc_logline_bool(&line, "no", 0);
    sc_logline_null(&line, "none");
    sc_logline_cstr(&line, "s", NULL);
    sc_logline_str(&line, "bad", "ok\"then\xff", 8); /* invalid UTF-8 after an escape: the member says null */
    char *ours = finish(&line);
    assert_string_equal(ours, "{\"status\":200,\"big\":-9007199254740993,\"yes\":true,\"no\":false,\"none\":null,\"s\":null,"
                              "\"bad\":null}");
    free(ours);
}

/* A line longer than the inline buffer moves to the heap and stays whole. */
static void test_long_line(void **state)
{
    (void)state;
    size_t len = 3 * SC_LOGLINE_INLINE + 17;
    char *path = malloc(len);
    for (size_t i = 0; i != len; ++i)
        path[i] = (char)('a' + i % 26);
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_logline_cstr(&line, "direction", "inbound");
    sc_logline_str(&line, "path", path, len);
    sc_logline_int(&line, "status", 404);
    assert_ptr_not_equal(line.p, line.inline_buf);
    char *ours = finish(&line);
    json_error_t err;
    json_t *parsed = json_loads(ours, 0, &err);
    assert_non_null(parsed);
    assert_int_equal(json_string_length(json_object_get(parsed, "path")), len);
    assert_memory_equal(json_string_value(json_object_get(parsed, "path")), path, len);
    assert_int_equal(json_integer_value(json_object_get(parsed, "status")), 404);
    json_decref(parsed);
    free(ours);
    free(path);
}

/* Writes one "ts" field for tv through log and checks the line. */
static void check_timestamp(sc_accesslog_t *log, const struct timeval *tv, const char *want)
{
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(log, &line, "ts", tv);
    char *ours = finish(&line);
    assert_string_equal(ours, want);
    free(ours);
}

static void test_timestamp(void **state)
{
    (void)state;
    sc_accesslog_t log;
    memset(&log, 0, sizeof(log));
    log.ts_second = -1;
    struct timeval tv = {.tv_sec = 1795741341, .tv_usec = 137999}; /* 2026-11-27T01:02:21.137Z */
    check_timestamp(&log, &tv, "{\"ts\":\"2026-11-27T01:02:21.137Z\"}");
    check_timestamp(&log, &tv, "{\"ts\":\"2026-11-27T01:02:21.137Z\"}"); /* again, from the cached date */
    tv.tv_sec += 61;
    tv.tv_usec = 5000;
    check_timestamp(&log, &tv, "{\"ts\":\"2026-11-27T01:03:22.005Z\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_table),
        cmocka_unit_test(test_random_strings_match_jansson),
        cmocka_unit_test(test_numbers_and_literals),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_timestamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
