/* Table-driven tests of sidecar/http/pathnorm.c: every normalisation rule and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/http/pathnorm.h"

#define OK SC_PATHNORM_OK

struct row {
    const char *in;
    size_t in_len;    /* 0: strlen(in) (rows with a NUL byte give it) */
    int want;         /* SC_PATHNORM_OK or the error */
    const char *out;  /* the normalised target, when want is OK */
    size_t path_len;  /* of out, when want is OK and out has a query (0: all of out) */
};

static const struct row rows[] = {
    /* already normal: unchanged */
    {"/", 0, OK, "/", 0},
    {"/api", 0, OK, "/api", 0},
    {"/api/", 0, OK, "/api/", 0},
    {"/api/v1/items", 0, OK, "/api/v1/items", 0},
    {"/a.b/c-d/e_f/~g", 0, OK, "/a.b/c-d/e_f/~g", 0},
    {"/...", 0, OK, "/...", 0},
    {"/.hidden/..x/x..", 0, OK, "/.hidden/..x/x..", 0},
    {"/a;b=c/d:e@f!$&'()*+,=", 0, OK, "/a;b=c/d:e@f!$&'()*+,=", 0},
    {"/caf\xc3\xa9", 0, OK, "/caf\xc3\xa9", 0},
    {"/%20/%3F/%25/%C3%A9", 0, OK, "/%20/%3F/%25/%C3%A9", 0},
    {"*", 0, OK, "*", 0},
    /* the query is kept as it is, even what the path would rewrite */
    {"/api?x=1", 0, OK, "/api?x=1", 4},
    {"/api?", 0, OK, "/api?", 4},
    {"/?", 0, OK, "/?", 1},
    {"/api?a=//../%2f%2e%zz\\b/?c", 0, OK, "/api?a=//../%2f%2e%zz\\b/?c", 4},
    {"/a//b?x//y", 0, OK, "/a/b?x//y", 4},
    {"/a/./b?./", 0, OK, "/a/b?./", 4},
    /* unreserved escapes decoded, the others kept with upper-case hex */
    {"/%41%5a%61%7A%30%39", 0, OK, "/AZaz09", 0},
    {"/%2D%2e%5F%7e", 0, OK, "/-._~", 0},
    {"/%7e/user", 0, OK, "/~/user", 0},
    {"/a%3ab", 0, OK, "/a%3Ab", 0},
    {"/a%c3%a9", 0, OK, "/a%C3%A9", 0},
    {"/%25", 0, OK, "/%25", 0},
    {"/%252F", 0, OK, "/%252F", 0},
    {"/%252e%252e/admin", 0, OK, "/%252e%252e/admin", 0},
    {"/%3f?%3f", 0, OK, "/%3F?%3f", 4},
    {"/%2A", 0, OK, "/%2A", 0},
    /* slashes merged */
    {"//", 0, OK, "/", 0},
    {"///", 0, OK, "/", 0},
    {"//api", 0, OK, "/api", 0},
    {"/api//v1", 0, OK, "/api/v1", 0},
    {"/api///v1//", 0, OK, "/api/v1/", 0},
    {"/api//?q", 0, OK, "/api/?q", 5},
    /* dot segments resolved */
    {"/.", 0, OK, "/", 0},
    {"/./", 0, OK, "/", 0},
    {"/./api", 0, OK, "/api", 0},
    {"/api/.", 0, OK, "/api/", 0},
    {"/api/./", 0, OK, "/api/", 0},
    {"/api/./v1", 0, OK, "/api/v1", 0},
    {"/api/..", 0, OK, "/", 0},
    {"/api/../", 0, OK, "/", 0},
    {"/api/../admin", 0, OK, "/admin", 0},
    {"/api/v1/../v2", 0, OK, "/api/v2", 0},
    {"/api/v1/..", 0, OK, "/api/", 0},
    {"/a/b/c/../../d", 0, OK, "/a/d", 0},
    {"/a/b/../../..x", 0, OK, "/..x", 0},
    {"/a/./b/./../c/.", 0, OK, "/a/c/", 0},
    {"/a/..?x", 0, OK, "/?x", 1},
    {"/a/.?x", 0, OK, "/a/?x", 3},
    {"/a/%2e", 0, OK, "/a/", 0},
    {"/a/%2E%2e", 0, OK, "/", 0},
    {"/a/.%2e/b", 0, OK, "/b", 0},
    {"/a/%2e./b", 0, OK, "/b", 0},
    {"/api/%2e%2e/admin", 0, OK, "/admin", 0},
    {"/a/%2e%2e%2e", 0, OK, "/a/...", 0},
    /* slashes merged before dot segments: ".." drops the segment before the run */
    {"/api//../admin/secret.txt", 0, OK, "/admin/secret.txt", 0},
    {"/api/v1//..//admin", 0, OK, "/api/admin", 0},
    {"/api/.//./x", 0, OK, "/api/x", 0},
    {"/a/b//../../c", 0, OK, "/c", 0},
    /* refused: not origin-form */
    {"", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"api", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"?x", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"http://host/api", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"host:443", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"**", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"*?x", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"%2F", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    {"\\api", 0, SC_PATHNORM_E_NOT_ORIGIN_FORM, NULL, 0},
    /* refused: malformed escapes */
    {"/%", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/%4", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/a%4?x", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/a%/b", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/%zz", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/%g0", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/%0g", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/% 1", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/%%41", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    {"/%-1", 0, SC_PATHNORM_E_BAD_ESCAPE, NULL, 0},
    /* refused: encoded slash and backslash */
    {"/api/%2f../admin/secret.txt", 0, SC_PATHNORM_E_ENCODED_SLASH, NULL, 0},
    {"/api/%2F../admin", 0, SC_PATHNORM_E_ENCODED_SLASH, NULL, 0},
    {"/api%2fadmin", 0, SC_PATHNORM_E_ENCODED_SLASH, NULL, 0},
    {"/%2e%2e%2f", 0, SC_PATHNORM_E_ENCODED_SLASH, NULL, 0},
    {"/api/%5c../admin", 0, SC_PATHNORM_E_ENCODED_BACKSLASH, NULL, 0},
    {"/api/%5C", 0, SC_PATHNORM_E_ENCODED_BACKSLASH, NULL, 0},
    /* refused: raw backslash (in the path only) */
    {"/api\\..\\admin", 0, SC_PATHNORM_E_BACKSLASH, NULL, 0},
    {"/\\", 0, SC_PATHNORM_E_BACKSLASH, NULL, 0},
    {"/api/..\\", 0, SC_PATHNORM_E_BACKSLASH, NULL, 0},
    /* refused: NUL, raw or encoded, path or query */
    {"/a\0b", 4, SC_PATHNORM_E_NUL, NULL, 0},
    {"/\0", 2, SC_PATHNORM_E_NUL, NULL, 0},
    {"/a?x\0", 5, SC_PATHNORM_E_NUL, NULL, 0},
    {"/a%00b", 0, SC_PATHNORM_E_NUL, NULL, 0},
    {"/a%00", 0, SC_PATHNORM_E_NUL, NULL, 0},
    /* refused: control characters, space, '#' anywhere */
    {"/a\rb", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/a\nb", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/a\tb", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/\x01", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/\x1f", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/\x7f", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/a?b\r\nHost: evil", 0, SC_PATHNORM_E_CONTROL, NULL, 0},
    {"/a b", 0, SC_PATHNORM_E_SPACE, NULL, 0},
    {"/a?b c", 0, SC_PATHNORM_E_SPACE, NULL, 0},
    {"/a#b", 0, SC_PATHNORM_E_FRAGMENT, NULL, 0},
    {"/api/x#/../../admin", 0, SC_PATHNORM_E_FRAGMENT, NULL, 0},
    {"/a?b#c", 0, SC_PATHNORM_E_FRAGMENT, NULL, 0},
    /* kept: encoded control characters stay encoded, the app decodes them if it wants */
    {"/a%0d%0Ab", 0, OK, "/a%0D%0Ab", 0},
    {"/a%23b%20c", 0, OK, "/a%23b%20c", 0},
    /* refused: above the root */
    {"/..", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/../", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/../admin", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/./..", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"//..", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/api/../..", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/api/../../etc/passwd", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/a/b/../../../c", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/%2e%2e/admin", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/api/.%2E/%2e./x", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
    {"/..?x", 0, SC_PATHNORM_E_ABOVE_ROOT, NULL, 0},
};

#define NUM_ROWS (sizeof(rows) / sizeof(rows[0]))

static size_t row_len(const struct row *r)
{
    return r->in_len != 0 ? r->in_len : strlen(r->in);
}

static sc_slice_t slice(const char *s, size_t len)
{
    sc_slice_t sl = {s, len};
    return sl;
}

static void test_table(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i != NUM_ROWS; ++i) {
        const struct row *r = &rows[i];
        size_t len = row_len(r);
        sc_pathnorm_result_t res = {999, 999, 999};
        int got = sc_pathnorm_normalise(slice(r->in, len), out, sizeof(out), &res);
        if (got != r->want)
            fail_msg("row %zu \"%s\": want %s, got %s", i, r->in, sc_pathnorm_error_name(r->want),
                     sc_pathnorm_error_name(got));
        if (got != OK) {
            if (res.len != 999 || res.path_len != 999 || res.changed != 999)
                fail_msg("row %zu \"%s\": the result was written on an error", i, r->in);
            continue;
        }
        size_t want_len = strlen(r->out), want_path = r->path_len != 0 ? r->path_len : want_len;
        if (res.len != want_len || memcmp(out, r->out, want_len) != 0)
            fail_msg("row %zu \"%s\": want \"%s\", got \"%.*s\"", i, r->in, r->out, (int)res.len, out);
        if (res.path_len != want_path)
            fail_msg("row %zu \"%s\": path_len want %zu, got %zu", i, r->in, want_path, res.path_len);
        int differs = want_len != len || memcmp(r->out, r->in, len) != 0;
        if (res.changed != differs)
            fail_msg("row %zu \"%s\": changed want %d, got %d", i, r->in, differs, res.changed);
    }
}

/* The attacks from the report: neither reaches the app as a path under /api/. */
static void test_reported_bypasses(void **state)
{
    (void)state;
    static const char *const attacks[] = {"/api//../admin/secret.txt", "/api/%2f../admin/secret.txt"};
    char out[64];
    for (size_t i = 0; i != sizeof(attacks) / sizeof(attacks[0]); ++i) {
        sc_pathnorm_result_t res;
        int rc = sc_pathnorm_normalise(slice(attacks[i], strlen(attacks[i])), out, sizeof(out), &res);
        if (rc == OK && res.path_len >= 5 && memcmp(out, "/api/", 5) == 0)
            fail_msg("\"%s\" normalised to \"%.*s\", still under /api/", attacks[i], (int)res.len, out);
    }
}

/* Every accepted output normalises to itself, unchanged. */
static void test_idempotent(void **state)
{
    (void)state;
    char out[256], again[256];
    for (size_t i = 0; i != NUM_ROWS; ++i) {
        sc_pathnorm_result_t res, res2;
        if (rows[i].want != OK)
            continue;
        assert_int_equal(sc_pathnorm_normalise(slice(rows[i].in, row_len(&rows[i])), out, sizeof(out), &res), OK);
        assert_int_equal(sc_pathnorm_normalise(slice(out, res.len), again, sizeof(again), &res2), OK);
        if (res2.changed || res2.len != res.len || res2.path_len != res.path_len || memcmp(out, again, res.len) != 0)
            fail_msg("row %zu \"%s\": \"%.*s\" normalises again to \"%.*s\"", i, rows[i].in, (int)res.len, out,
                     (int)res2.len, again);
    }
}

/* out == target.base gives what a separate buffer gives. */
static void test_in_place(void **state)
{
    (void)state;
    char buf[256], out[256];
    for (size_t i = 0; i != NUM_ROWS; ++i) {
        size_t len = row_len(&rows[i]);
        sc_pathnorm_result_t res, res_in_place;
        memcpy(buf, rows[i].in, len);
        int want = sc_pathnorm_normalise(slice(rows[i].in, len), out, sizeof(out), &res);
        int got = sc_pathnorm_normalise(slice(buf, len), buf, len, &res_in_place);
        if (got != want)
            fail_msg("row %zu \"%s\": in place %s, separately %s", i, rows[i].in, sc_pathnorm_error_name(got),
                     sc_pathnorm_error_name(want));
        if (got == OK && (res_in_place.len != res.len || res_in_place.path_len != res.path_len ||
                          res_in_place.changed != res.changed || memcmp(buf, out, res.len) != 0))
            fail_msg("row %zu \"%s\": in place \"%.*s\", separately \"%.*s\"", i, rows[i].in, (int)res_in_place.len,
                     buf, (int)res.len, out);
    }
}

static void test_limits(void **state)
{
    (void)state;
    char *in = malloc(SC_PATHNORM_TARGET_MAX + 1), *out = malloc(SC_PATHNORM_TARGET_MAX + 1);
    sc_pathnorm_result_t res;
    assert_non_null(in);
    assert_non_null(out);

    /* exactly the limit is fine, one byte more is refused before anything is read */
    memset(in, 'a', SC_PATHNORM_TARGET_MAX + 1);
    in[0] = '/';
    assert_int_equal(sc_pathnorm_normalise(slice(in, SC_PATHNORM_TARGET_MAX), out, SC_PATHNORM_TARGET_MAX, &res), OK);
    assert_int_equal(res.len, SC_PATHNORM_TARGET_MAX);
    assert_int_equal(res.changed, 0);
    assert_int_equal(sc_pathnorm_normalise(slice(in, SC_PATHNORM_TARGET_MAX + 1), out, SC_PATHNORM_TARGET_MAX + 1, &res),
                     SC_PATHNORM_E_TOO_LONG);

    /* a long run of slashes and dot segments collapses */
    for (size_t i = 0; i != SC_PATHNORM_TARGET_MAX; ++i)
        in[i] = "/./"[i % 3];
    assert_int_equal(sc_pathnorm_normalise(slice(in, SC_PATHNORM_TARGET_MAX), out, SC_PATHNORM_TARGET_MAX, &res), OK);
    assert_int_equal(res.len, 1);
    assert_int_equal(res.changed, 1);

    /* the output buffer must hold the input, even when the output would be shorter */
    assert_int_equal(sc_pathnorm_normalise(slice("/a//b", 5), out, 4, &res), SC_PATHNORM_E_OUT_TOO_SMALL);
    assert_int_equal(sc_pathnorm_normalise(slice("/a//b", 5), out, 5, &res), OK);
    assert_int_equal(sc_pathnorm_normalise(slice("*", 1), out, 0, &res), SC_PATHNORM_E_OUT_TOO_SMALL);
    free(in);
    free(out);
}

static void test_error_table(void **state)
{
    (void)state;
    for (int err = SC__PATHNORM_FIRST + 1; err != SC__PATHNORM_END; ++err) {
        const char *name = sc_pathnorm_error_name(err), *message = sc_pathnorm_error_message(err);
        assert_true(err < 0);
        assert_string_not_equal(name, "unknown");
        assert_true(strlen(message) > 10 && strchr(message, '\n') == NULL);
        for (int other = SC__PATHNORM_FIRST + 1; other != err; ++other)
            assert_string_not_equal(name, sc_pathnorm_error_name(other));
    }
    assert_string_equal(sc_pathnorm_error_name(OK), "ok");
    assert_string_equal(sc_pathnorm_error_name(SC__PATHNORM_FIRST), "unknown");
    assert_string_equal(sc_pathnorm_error_name(SC__PATHNORM_END), "unknown");
    assert_string_equal(sc_pathnorm_error_message(-1), "unknown error");
    assert_string_equal(sc_pathnorm_error_name(SC_PATHNORM_E_ENCODED_SLASH), "encoded-slash");
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", SC_PATHNORM_TARGET_MAX);
    assert_non_null(strstr(sc_pathnorm_error_message(SC_PATHNORM_E_TOO_LONG), limit));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),       cmocka_unit_test(test_reported_bypasses), cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_in_place),    cmocka_unit_test(test_limits),            cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
