/* Unit tests of sidecar/forward.c: request targets and headers dropped at the hop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sidecar/http/forward.h"

static sc_slice_t sl(const char *s)
{
    return (sc_slice_t){s, s != NULL ? strlen(s) : 0};
}

static void test_target(void **state)
{
    static const struct {
        const char *authority, *path;
        int rc;
        const char *host, *out_path;
    } rows[] = {
        {"backend.svc", "/api?x=1", SC_TARGET_OK, "backend.svc", "/api?x=1"},
        {"backend.svc:8080", "/", SC_TARGET_OK, "backend.svc:8080", "/"},
        {"ignored.svc", "http://backend.svc/api", SC_TARGET_OK, "backend.svc", "/api"},
        {NULL, "http://backend.svc:80/a/b?q#f", SC_TARGET_OK, "backend.svc:80", "/a/b?q#f"},
        {NULL, "HTTP://Backend.svc", SC_TARGET_OK, "Backend.svc", ""},
        {NULL, "http://backend.svc?q=1", SC_TARGET_OK, "backend.svc", "?q=1"},
        {NULL, "http://[::1]:15006/x", SC_TARGET_OK, "[::1]:15006", "/x"},
        {NULL, "/api", SC_TARGET_NO_HOST, NULL, NULL},
        {"", "/api", SC_TARGET_NO_HOST, NULL, NULL},
        {NULL, "http:///api", SC_TARGET_BAD_URI, NULL, NULL},
        {NULL, "http://user:pw@backend.svc/", SC_TARGET_BAD_URI, NULL, NULL},
        {NULL, "http://", SC_TARGET_BAD_URI, NULL, NULL},
        {NULL, "backend.svc:80", SC_TARGET_BAD_URI, NULL, NULL},
        {NULL, "nocolon", SC_TARGET_BAD_URI, NULL, NULL},
        {NULL, "https://backend.svc/", SC_TARGET_NOT_HTTP, NULL, NULL},
        {NULL, "ftp://backend.svc/", SC_TARGET_NOT_HTTP, NULL, NULL},
    };
    (void)state;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_slice_t host = {NULL, 0}, path = {NULL, 0};
        int rc = sc_forward_target(sl(rows[i].authority), sl(rows[i].path), &host, &path);
        if (rc != rows[i].rc)
            fail_msg("row %zu (%s): rc %d, want %d", i, rows[i].path, rc, rows[i].rc);
        if (rc == SC_TARGET_OK &&
            (host.len != strlen(rows[i].host) || memcmp(host.base, rows[i].host, host.len) != 0 ||
             path.len != strlen(rows[i].out_path) || memcmp(path.base, rows[i].out_path, path.len) != 0))
            fail_msg("row %zu (%s): host \"%.*s\" path \"%.*s\"", i, rows[i].path, (int)host.len, host.base,
                     (int)path.len, path.base);
    }
}

static void test_drop_header(void **state)
{
    static const struct {
        const char *name, *connection;
        int drop;
    } rows[] = {
        {"connection", "", 1},
        {"keep-alive", "", 1},
        {"proxy-connection", "", 1},
        {"te", "", 1},
        {"transfer-encoding", "", 1},
        {"upgrade", "", 1},
        {"proxy-authorization", "", 1},
        {"http2-settings", "", 1},
        {"host", "", 1},
        {"content-length", "", 1},
        {"x-forwarded-client-cert", "", 1},
        {"accept", "", 0},
        {"authorization", "", 0},
        {"x-request-id", "", 0},
        {"x-hop", "keep-alive, X-Hop", 1},
        {"x-hop", "x-hop", 1},
        {"x-hop", " ,x-hop ,", 1},
        {"x-hop", "x-hopper", 0},
        {"x-ho", "x-hop", 0},
        {"x-other", "close, x-hop", 0},
        {"cookie", "", 0},
    };
    (void)state;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i)
        if (sc_forward_drop_header(sl(rows[i].name), sl(rows[i].connection)) != rows[i].drop)
            fail_msg("row %zu: %s (connection: %s) should %s", i, rows[i].name, rows[i].connection,
                     rows[i].drop ? "be dropped" : "pass");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_drop_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
