/* Tests of sidecar/http/detect.c: whole, partial, slow and odd first bytes of a redirected connection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http/detect.h"

static const char *const names[] = {"MORE", "HTTP1", "HTTP2", "TCP"};

static void expect(const char *bytes, size_t len, sc_detect_t want)
{
    sc_detect_t got = sc_detect_protocol(bytes, len);
    if (got != want)
        fail_msg("%.*s (%zu bytes): %s, want %s", (int)len, bytes, len, names[got], names[want]);
}

static void expect_str(const char *s, sc_detect_t want)
{
    expect(s, strlen(s), want);
}

static void test_whole_first_bytes(void **state)
{
    (void)state;
    expect_str("GET / HTTP/1.1\r\n", SC_DETECT_HTTP1);
    expect_str("GET / HTTP/1.1\r\nHost: x\r\n\r\n", SC_DETECT_HTTP1);
    expect_str("POST /api?x=1 HTTP/1.0\r\n", SC_DETECT_HTTP1);
    expect_str("OPTIONS * HTTP/1.1\r\n", SC_DETECT_HTTP1);
    expect_str("CONNECT db.example:5432 HTTP/1.1\r\n", SC_DETECT_HTTP1);
    expect_str("GET / HTTP/1.1\n", SC_DETECT_HTTP1); /* a bare LF ends the line, as picohttpparser takes it */
    expect_str("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", SC_DETECT_HTTP2);
    expect_str("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04", SC_DETECT_HTTP2);
}

/* Every proper prefix of an HTTP start waits for more; the whole one decides. */
static void test_every_prefix_waits(void **state)
{
    (void)state;
    static const char *const starts[] = {"GET /index.html HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"};
    for (size_t s = 0; s != 2; ++s) {
        size_t len = strlen(starts[s]);
        for (size_t i = 0; i != len; ++i)
            expect(starts[s], i, SC_DETECT_MORE);
        expect(starts[s], len, s == 0 ? SC_DETECT_HTTP1 : SC_DETECT_HTTP2);
    }
}

static void test_not_http(void **state)
{
    (void)state;
    expect_str("\x16\x03\x01\x02\x00\x01", SC_DETECT_TCP);     /* a TLS ClientHello (the API server on 443) */
    expect_str("*1\r\n$4\r\nPING\r\n", SC_DETECT_TCP);        /* Redis */
    expect_str("PING\r\n", SC_DETECT_TCP);                    /* Redis inline: no space after the command */
    expect_str("GET key\r\n", SC_DETECT_TCP);                 /* Redis inline GET: no HTTP version */
    expect_str("GET / HTTP/2.0\r\n", SC_DETECT_TCP);          /* HTTP/2 does not start with a request line */
    expect_str("GET / HTTP/1.x\r\n", SC_DETECT_TCP);
    expect_str("GET / HTTP/1.1\rX", SC_DETECT_TCP);
    expect_str("GET  / HTTP/1.1\r\n", SC_DETECT_TCP);         /* an empty target */
    expect_str(" GET / HTTP/1.1\r\n", SC_DETECT_TCP);         /* an empty method */
    expect_str("GE(T / HTTP/1.1\r\n", SC_DETECT_TCP);         /* not a token */
    expect_str("GET /a\tb HTTP/1.1\r\n", SC_DETECT_TCP);      /* a control byte in the target */
    expect_str("PRI * HTTP/2.1\r\n\r\nSM\r\n\r\n", SC_DETECT_TCP); /* departs from the preface, and no HTTP/1.x */
    expect_str("hello\n", SC_DETECT_TCP);
    expect("\0\0\0\0", 4, SC_DETECT_TCP);                     /* a binary protocol's header */
    expect("", 0, SC_DETECT_MORE);                            /* nothing yet: the caller's timer decides */
}

/* A request line still valid at SC_DETECT_MAX is HTTP (the front end judges its length); junk that long is not. */
static void test_long_lines(void **state)
{
    (void)state;
    char *buf = malloc(SC_DETECT_MAX + 64);
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', SC_DETECT_MAX + 59);
    expect(buf, SC_DETECT_MAX - 1, SC_DETECT_MORE);
    expect(buf, SC_DETECT_MAX, SC_DETECT_HTTP1);
    expect(buf, SC_DETECT_MAX + 64, SC_DETECT_HTTP1);
    memset(buf, 'x', SC_DETECT_MAX + 64); /* a bulk transfer of letters: no method is that long */
    expect(buf, SC_DETECT_METHOD_MAX, SC_DETECT_MORE);
    expect(buf, SC_DETECT_METHOD_MAX + 1, SC_DETECT_TCP);
    expect(buf, SC_DETECT_MAX, SC_DETECT_TCP);
    memcpy(buf, "VERSION-CONTROL /x HTTP/1.1\r\n", 29); /* a long registered method (RFC 3253) */
    expect(buf, 29, SC_DETECT_HTTP1);
    buf[5] = '\n';
    expect(buf, 29, SC_DETECT_TCP);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_first_bytes),
        cmocka_unit_test(test_every_prefix_waits),
        cmocka_unit_test(test_not_http),
        cmocka_unit_test(test_long_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
