/* Tests of sidecar/http/h1parse.c: request and response framing, chunked steps and trailers, row by row. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "sidecar/http/h1parse.h"

#define HEADERS_MAX 16

/* Parses "name: value\r\n..." lines (a folded line included) with picohttpparser, as the callers do. */
static size_t parse_lines(const char *lines, char *buf, size_t cap, struct phr_header *headers)
{
    size_t num = HEADERS_MAX;
    snprintf(buf, cap, "%s\r\n", lines);
    if (phr_parse_headers(buf, strlen(buf), headers, &num, 0) < 0)
        fail_msg("cannot parse %s", lines);
    return num;
}

static void test_request_framing(void **state)
{
    (void)state;
    static const struct {
        int minor;
        const char *lines;
        int rc;
        sc_h1parse_body_t body;
        uint64_t length;
        int keepalive;
        sc_h1parse_expect_t expect;
    } rows[] = {
        {1, "Host: a\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {0, "Host: a\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 0, SC_H1PARSE_EXPECT_NONE},
        {0, "Connection: Keep-Alive\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Connection: te, close\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 0, SC_H1PARSE_EXPECT_NONE},
        /* a close on any Connection line counts */
        {1, "Connection: close\r\nConnection: keep-alive\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 0, SC_H1PARSE_EXPECT_NONE},
        {1, "Connection: closed\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: 5\r\n", 0, SC_H1PARSE_BODY_LENGTH, 5, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: 5\r\ncontent-length: 5\r\n", 0, SC_H1PARSE_BODY_LENGTH, 5, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: 9999999999999999999\r\n", 0, SC_H1PARSE_BODY_LENGTH, 9999999999999999999ull, 1,
         SC_H1PARSE_EXPECT_NONE},
        {1, "Transfer-Encoding: Chunked\r\n", 0, SC_H1PARSE_BODY_CHUNKED, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Expect: 100-Continue\r\nContent-Length: 1\r\n", 0, SC_H1PARSE_BODY_LENGTH, 1, 1, SC_H1PARSE_EXPECT_CONTINUE},
        {1, "Expect: teapot\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_UNKNOWN},
        /* refused: 400 */
        {1, "Host: a\r\nHost: b\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "X-Folded: one\r\n two\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: 5\r\nContent-Length: 6\r\n", -1, SC_H1PARSE_BODY_LENGTH, 5, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: +5\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: 5, 5\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: \r\n", -1, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Content-Length: 18446744073709551616\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Transfer-Encoding: gzip, chunked\r\n", -1, SC_H1PARSE_BODY_CHUNKED, 0, 1, SC_H1PARSE_EXPECT_NONE},
        {1, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", -1, SC_H1PARSE_BODY_CHUNKED, 0, 1,
         SC_H1PARSE_EXPECT_NONE},
        {1, "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", -1, SC_H1PARSE_BODY_CHUNKED, 3, 1, SC_H1PARSE_EXPECT_NONE},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        char buf[512];
        struct phr_header headers[HEADERS_MAX];
        size_t num = parse_lines(rows[i].lines, buf, sizeof(buf), headers);
        sc_h1parse_framing_t f;
        int rc = sc_h1parse_request_framing(rows[i].minor, headers, num, &f);
        if (rc != rows[i].rc || f.body != rows[i].body || f.length != rows[i].length || f.keepalive != rows[i].keepalive ||
            f.expect != rows[i].expect)
            fail_msg("row %zu (%s): rc %d body %d length %llu keepalive %d expect %d", i, rows[i].lines, rc, (int)f.body,
                     (unsigned long long)f.length, f.keepalive, (int)f.expect);
    }
}

static void test_request_host_and_kept(void **state)
{
    (void)state;
    char buf[512];
    struct phr_header headers[HEADERS_MAX];
    size_t num = parse_lines("Host: svc:8080\r\nUpgrade: h2c\r\nConnection: close\r\nExpect: 100-continue\r\n"
                             "Content-Length: 0\r\nX-A: 1\r\n",
                             buf, sizeof(buf), headers);
    sc_h1parse_framing_t f;
    assert_int_equal(sc_h1parse_request_framing(1, headers, num, &f), 0);
    assert_non_null(f.host);
    assert_int_equal(f.host->value_len, 8);
    assert_memory_equal(f.host->value, "svc:8080", 8);
    assert_int_equal(f.connection_len, 5);
    static const int kept[] = {0, 0, 1, 0, 0, 1};
    assert_int_equal(num, 6);
    for (size_t i = 0; i != num; ++i)
        assert_int_equal(sc_h1parse_request_header_kept(&headers[i]), kept[i]);
}

static void test_response_framing(void **state)
{
    (void)state;
    static const struct {
        int minor, status, head;
        const char *lines;
        int rc;
        sc_h1parse_body_t body;
        uint64_t length;
        int keepalive;
    } rows[] = {
        {1, 200, 0, "Content-Length: 5\r\n", 0, SC_H1PARSE_BODY_LENGTH, 5, 1},
        {1, 200, 0, "", 0, SC_H1PARSE_BODY_UNTIL_CLOSE, 0, 0},
        {0, 200, 0, "Content-Length: 5\r\n", 0, SC_H1PARSE_BODY_LENGTH, 5, 0},
        {1, 200, 0, "Connection: Close\r\nContent-Length: 5\r\n", 0, SC_H1PARSE_BODY_LENGTH, 5, 0},
        {1, 200, 0, "Transfer-Encoding: chunked\r\n", 0, SC_H1PARSE_BODY_CHUNKED, 0, 1},
        {1, 200, 0, "Transfer-Encoding: gzip, Chunked \r\n", 0, SC_H1PARSE_BODY_CHUNKED, 0, 1},
        /* both framings: chunked wins, and the connection is not reused */
        {1, 200, 0, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 0, SC_H1PARSE_BODY_CHUNKED, 5, 0},
        {1, 204, 0, "Content-Length: 5\r\n", 0, SC_H1PARSE_BODY_NONE, 5, 1},
        {1, 304, 0, "Transfer-Encoding: chunked\r\n", 0, SC_H1PARSE_BODY_NONE, 0, 1},
        {1, 200, 1, "Content-Length: 5\r\n", 0, SC_H1PARSE_BODY_NONE, 5, 1},
        /* refused: 502 */
        {1, 200, 0, "Transfer-Encoding: gzip\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 0},
        {1, 200, 0, "Transfer-Encoding: xchunked\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 0},
        {1, 200, 0, "Transfer-Encoding: chunked, gzip\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 0},
        {1, 200, 0, "Content-Length: 5\r\nContent-Length: 6\r\n", -1, SC_H1PARSE_BODY_NONE, 5, 0},
        {1, 200, 0, "Content-Length: 5x\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 0},
        /* more digits than 64 bits hold: refused, not read as 2^64 - 1 */
        {1, 200, 0, "Content-Length: 99999999999999999999999\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 0},
        /* a folded line would be passed on as a field without a name */
        {1, 200, 0, "X-Folded: one\r\n two\r\nContent-Length: 0\r\n", -1, SC_H1PARSE_BODY_NONE, 0, 0},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        char buf[512];
        struct phr_header headers[HEADERS_MAX];
        size_t num = parse_lines(rows[i].lines, buf, sizeof(buf), headers);
        sc_h1parse_framing_t f;
        int rc = sc_h1parse_response_framing(rows[i].minor, rows[i].status, rows[i].head, headers, num, &f);
        if (rc != rows[i].rc || (rc == 0 && (f.body != rows[i].body || f.length != rows[i].length ||
                                             f.keepalive != rows[i].keepalive)))
            fail_msg("row %zu (%s): rc %d body %d length %llu keepalive %d", i, rows[i].lines, rc, (int)f.body,
                     (unsigned long long)f.length, f.keepalive);
    }
}

/* Decodes raw in steps of `window` bytes, as the front end does; returns the result code and the payload. */
static int decode_in_steps(const char *raw, size_t window, char *payload, size_t *payload_len, char *rest, size_t *rest_len)
{
    char buf[256];
    size_t size = strlen(raw), decoded;
    struct phr_chunked_decoder d = {0};
    int rc = 0;
    memcpy(buf, raw, size);
    *payload_len = 0;
    while (rc == 0 && size != 0) {
        rc = sc_h1parse_chunked(&d, buf, &size, window, &decoded);
        if (rc < 0)
            return rc;
        memcpy(payload + *payload_len, buf, decoded);
        *payload_len += decoded;
        memmove(buf, buf + decoded, size - decoded);
        size -= decoded;
    }
    memcpy(rest, buf, size);
    *rest_len = size;
    return rc;
}

static void test_chunked_steps(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int rc;
        const char *payload, *rest;
    } rows[] = {
        {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 1, "hello world", "\r\n"},
        {"3;ext=1\r\nabc\r\n0\r\nx-t: 1\r\n\r\nNEXT", 1, "abc", "x-t: 1\r\n\r\nNEXT"},
        {"A\r\n0123456789\r\n0\n\n", 1, "0123456789", "\n"},
        {"5\r\nhel", 0, "hel", ""},
        {"zz\r\n", -1, "", ""},
        {"3\r\nabcX\r\n", -1, "", ""},
        {"11111111111111111\r\n", -1, "", ""},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        for (size_t window = 1; window <= strlen(rows[i].raw); ++window) {
            char payload[256], rest[256];
            size_t payload_len, rest_len;
            int rc = decode_in_steps(rows[i].raw, window, payload, &payload_len, rest, &rest_len);
            if (rc != rows[i].rc)
                fail_msg("row %zu window %zu: rc %d", i, window, rc);
            if (rc < 0)
                continue;
            if (payload_len != strlen(rows[i].payload) || memcmp(payload, rows[i].payload, payload_len) != 0 ||
                rest_len != strlen(rows[i].rest) || memcmp(rest, rows[i].rest, rest_len) != 0)
                fail_msg("row %zu window %zu: payload \"%.*s\" rest \"%.*s\"", i, window, (int)payload_len, payload,
                         (int)rest_len, rest);
        }
    }
}

/* An empty socket buffer has no bytes at all (h2o's initial buffer): a step over it is "need more", with no copy. */
static void test_chunked_empty_buffer(void **state)
{
    (void)state;
    struct phr_chunked_decoder d = {0};
    size_t size = 0, decoded = 99;
    assert_int_equal(sc_h1parse_chunked(&d, NULL, &size, 0, &decoded), 0);
    assert_int_equal(size, 0);
    assert_int_equal(decoded, 0);
}

static void test_trailers(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        size_t max;
        int rc;
        size_t fields;
    } rows[] = {
        {"\r\n", 100, 2, 0},
        {"grpc-status: 0\r\n\r\nNEXT", 100, 18, 1},
        {"grpc-status: 0\r\n", 100, 0, 0},
        {"grpc-status: 0\r\n", 16, -1, 0}, /* incomplete at the limit */
        {"x-a: one\r\n two\r\n\r\n", 100, -1, 0},
        {": no name\r\n\r\n", 100, -1, 0},
        {"x-a: 1\r\nx-b: 2\r\nx-c: 3\r\n\r\n", 100, -1, 0}, /* more lines than room (2) */
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        struct phr_header fields[2];
        size_t num = 2;
        int rc = sc_h1parse_trailers(rows[i].raw, strlen(rows[i].raw), rows[i].max, fields, &num);
        if (rc != rows[i].rc || (rc > 0 && num != rows[i].fields))
            fail_msg("row %zu: rc %d fields %zu", i, rc, num);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_framing),
        cmocka_unit_test(test_request_host_and_kept),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_chunked_steps),
        cmocka_unit_test(test_chunked_empty_buffer),
        cmocka_unit_test(test_trailers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
