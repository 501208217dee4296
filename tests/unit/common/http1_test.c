/* Tests of common/http1.c: response framing, chunked bodies, and every malformed shape. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/http1.h"

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int ok, status;
        const char *body;
        const char *err;
    } rows[] = {
        {"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", 1, 200, "hello", NULL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, trailing junk", 1, 200, "hello", NULL},
        {"HTTP/1.0 403 Forbidden\r\n\r\n{\"error\":\"x\"}", 1, 403, "{\"error\":\"x\"}", NULL},
        {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 1, 200, "hello world", NULL},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n", 1, 200, "abc", NULL},
        {"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n", 1, 204, "", NULL},
        {"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", 0, 0, NULL, "short of its content-length"},
        {"HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\nx", 0, 0, NULL, "bad content-length"},
        {"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nx", 0, 0, NULL, "unsupported transfer-encoding"},
        {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", 0, 0, NULL, "inside its chunked body"},
        {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 0, 0, NULL, "malformed chunked body"},
        {"HTTP/1.1 200 OK\r\ncontent-len", 0, 0, NULL, "inside its headers"},
        {"SSH-2.0-OpenSSH\r\n\r\n", 0, 0, NULL, "not HTTP/1.x"},
        {"", 0, 0, NULL, "inside its headers"},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        char buf[256], err[128] = "", *body = NULL;
        size_t len = strlen(rows[i].raw), body_len = 0;
        int status = 0;
        memcpy(buf, rows[i].raw, len + 1);
        int ret = cmn_http1_parse_response(buf, len, &status, &body, &body_len, err, sizeof(err));
        if ((ret == 0) != rows[i].ok)
            fail_msg("row %zu: want %s, got %s (%s)", i, rows[i].ok ? "ok" : "error", ret == 0 ? "ok" : "error", err);
        if (rows[i].ok) {
            assert_int_equal(status, rows[i].status);
            assert_int_equal(body_len, strlen(rows[i].body));
            assert_memory_equal(body, rows[i].body, body_len);
        } else if (strstr(err, rows[i].err) == NULL) {
            fail_msg("row %zu: error \"%s\" lacks \"%s\"", i, err, rows[i].err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests_name("common/http1", tests, NULL, NULL);
}
