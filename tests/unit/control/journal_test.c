/* Tests control/journal.c: line format, serial set, and reading back a damaged journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/error.h"
#include "control/journal.h"

#define GOOD_LINE                                                                                                     \
    "{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123456789abcdef0123456789abcdef\",\"spiffe_id\":"               \
    "\"spiffe://example.org/ns/default/sa/web\",\"not_before\":\"2026-11-27T19:23:18Z\",\"not_after\":"            \
    "\"2026-11-27T20:24:18Z\",\"credential\":\"jwt\",\"ref\":\"jti:abc\"}"

static const struct {
    const char *line;
    int ok;
} line_rows[] = {
    {GOOD_LINE, 1},
    {"{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123456789abcdef0123456789abcdef\",\"spiffe_id\":\"x\","
     "\"not_before\":\"2026-11-27T19:23:18Z\",\"not_after\":\"2026-11-27T20:24:18Z\",\"credential\":\"serving\"}",
     1}, /* ref is optional */
    {"", 0},
    {"not json", 0},
    {"[1]", 0},
    {"{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123\",\"spiffe_id\":\"x\",\"not_before\":\"2026-11-27T19:23:18Z\","
     "\"not_after\":\"2026-11-27T20:24:18Z\",\"credential\":\"jwt\"}",
     0}, /* short serial */
    {"{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123456789ABCDEF0123456789ABCDEF\",\"spiffe_id\":\"x\","
     "\"not_before\":\"2026-11-27T19:23:18Z\",\"not_after\":\"2026-11-27T20:24:18Z\",\"credential\":\"jwt\"}",
     0}, /* uppercase hex */
    {"{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123456789abcdef0123456789abcdef\",\"not_before\":"
     "\"2026-11-27T19:23:18Z\",\"not_after\":\"2026-11-27T20:24:18Z\",\"credential\":\"jwt\"}",
     0}, /* no spiffe_id */
    {"{\"ts\":\"2026-11-27 19:24:18\",\"serial\":\"0123456789abcdef0123456789abcdef\",\"spiffe_id\":\"x\","
     "\"not_before\":\"2026-11-27T19:23:18Z\",\"not_after\":\"2026-11-27T20:24:18Z\",\"credential\":\"jwt\"}",
     0}, /* not RFC 3339 */
    {"{\"ts\":\"2026-13-27T19:24:18Z\",\"serial\":\"0123456789abcdef0123456789abcdef\",\"spiffe_id\":\"x\","
     "\"not_before\":\"2026-11-27T19:23:18Z\",\"not_after\":\"2026-11-27T20:24:18Z\",\"credential\":\"jwt\"}",
     0}, /* month 13 */
    {"{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123456789abcdef0123456789abcdef\",\"spiffe_id\":\"x\","
     "\"not_before\":\"2026-11-27T19:23:18Z\",\"not_after\":\"2026-11-27T20:24:18Z\"}",
     0}, /* no credential */
    {"{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"0123456789abcdef01234567", 0}, /* torn */
};

static void test_line_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(line_rows) / sizeof(line_rows[0]); ++i) {
        ca_journal_record_t rec;
        char why[200] = "";
        int got = ca_journal_parse_line(line_rows[i].line, strlen(line_rows[i].line), &rec, why, sizeof(why));
        if ((got == 0) != line_rows[i].ok)
            fail_msg("line row %zu: expected %s", i, line_rows[i].ok ? "ok" : "refusal");
        if (got != 0)
            assert_true(why[0] != '\0');
    }
}

static void test_format_round_trip(void **state)
{
    ca_journal_record_t rec, back;
    char *line, why[200];
    size_t len;
    (void)state;
    assert_int_equal(ca_journal_parse_line(GOOD_LINE, strlen(GOOD_LINE), &rec, why, sizeof(why)), 0);
    assert_int_equal(rec.serial[0], 0x01);
    assert_int_equal(rec.not_after - rec.not_before, 3660);
    assert_string_equal(rec.ref, "jti:abc");
    assert_int_equal(ca_journal_format(&rec, &line, &len), 0);
    assert_int_equal(line[len - 1], '\n');
    assert_int_equal(ca_journal_parse_line(line, len - 1, &back, why, sizeof(why)), 0);
    assert_memory_equal(&rec, &back, sizeof(rec));
    assert_string_equal(line, GOOD_LINE "\n");
    free(line);
}

static void test_serial_set(void **state)
{
    ca_serial_set_t set;
    unsigned char s[CRT_SERIAL_LEN] = {0};
    (void)state;
    ca_serial_set_init(&set);
    assert_false(ca_serial_set_contains(&set, s));
    for (unsigned i = 0; i < 5000; ++i) {
        s[0] = (unsigned char)i;
        s[1] = (unsigned char)(i >> 8);
        s[15] = (unsigned char)(i * 7);
        assert_int_equal(ca_serial_set_add(&set, s), 1);
        assert_int_equal(ca_serial_set_add(&set, s), 0);
    }
    assert_int_equal(set.count, 5000);
    s[0] = 3, s[1] = 0, s[15] = 21;
    assert_true(ca_serial_set_contains(&set, s));
    s[15] = 22;
    assert_false(ca_serial_set_contains(&set, s));
    ca_serial_set_dispose(&set);
}

static char *temp_dir(void)
{
    const char *base = getenv("TEST_TMPDIR");
    char *dir = malloc(4096);
    snprintf(dir, 4096, "%s/journal.XXXXXX", base != NULL ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = calloc(1, 65536);
    assert_non_null(fp);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void test_open_damaged_and_append(void **state)
{
    char *dir = temp_dir(), path[4200], detail[256];
    ca_journal_t journal;
    ca_journal_record_t rec;
    const char *torn = "{\"ts\":\"2026-11-27T19:24:18Z\",\"serial\":\"feed";
    (void)state;
    snprintf(path, sizeof(path), "%s/journal", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "%s\ngarbage in the middle\n\n%s", GOOD_LINE, torn);
    fclose(fp);

    assert_int_equal(ca_journal_open(path, &journal, detail, sizeof(detail)), 0);
    assert_int_equal(journal.records, 1);
    assert_int_equal(journal.corrupt_lines, 2);
    assert_int_equal(ca_journal_parse_line(GOOD_LINE, strlen(GOOD_LINE), &rec, detail, sizeof(detail)), 0);
    assert_true(ca_serial_set_contains(&journal.serials, rec.serial));

    unsigned char serial[CRT_SERIAL_LEN];
    assert_int_equal(ca_journal_new_serial(&journal, serial), 0);
    assert_false(ca_serial_set_contains(&journal.serials, serial));
    memcpy(rec.serial, serial, CRT_SERIAL_LEN);
    assert_int_equal(ca_journal_append(&journal, &rec, detail, sizeof(detail)), 0);
    assert_true(ca_serial_set_contains(&journal.serials, serial));
    ca_journal_close(&journal);

    /* History is kept byte for byte; the new record starts on its own line. */
    char *text = slurp(path);
    assert_non_null(strstr(text, "garbage in the middle\n"));
    assert_non_null(strstr(text, torn));
    assert_non_null(strstr(text, "feed\n{\"ts\""));
    free(text);

    assert_int_equal(ca_journal_open(path, &journal, detail, sizeof(detail)), 0);
    assert_int_equal(journal.records, 2);
    assert_int_equal(journal.corrupt_lines, 2);
    assert_true(ca_serial_set_contains(&journal.serials, serial));
    ca_journal_close(&journal);

    assert_int_equal(ca_journal_open("/nonexistent-dir/journal", &journal, detail, sizeof(detail)), CA_E_IO);
    assert_non_null(strstr(detail, "/nonexistent-dir/journal"));
    unlink(path);
    rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_table),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_serial_set),
        cmocka_unit_test(test_open_damaged_and_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
