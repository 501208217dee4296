/* libFuzzer target for the HTTP/1.1 responses Seam reads: the app's (appclient.c via h1parse.c) and common/http1.c's. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http1.h"
#include "sidecar/mesh/appclient.h"
#include "sidecar/http/h1parse.h"
#include "tests/fuzz/h1_chunked.h"

/* The app client's reading of a response head: 1xx heads are skipped, then the final one judged. */
static void app_response(const char *in, size_t size, int head_request, size_t window)
{
    struct phr_header headers[SC_APP_HEADERS_MAX];
    size_t num_headers, msg_len, off = 0;
    const char *msg;
    int minor, status, rlen;

    for (;;) {
        num_headers = SC_APP_HEADERS_MAX;
        rlen = phr_parse_response(in + off, size - off, &minor, &status, &msg, &msg_len, headers, &num_headers, 0);
        if (rlen == -2 || rlen < 0 || status < 100 || status > 999 || status == 101)
            return;
        if (rlen == 0 || (size_t)rlen > size - off)
            abort();
        if (status >= 200)
            break;
        off += (size_t)rlen;
    }
    sc_h1parse_framing_t f;
    if (sc_h1parse_response_framing(minor, status, head_request, headers, num_headers, &f) != 0)
        return;
    if (f.keepalive != 0 && f.keepalive != 1)
        abort();
    if ((head_request || status == 204 || status == 304) && f.body != SC_H1PARSE_BODY_NONE)
        abort();
    if (f.body == SC_H1PARSE_BODY_LENGTH && !f.has_length)
        abort();
    if (f.body == SC_H1PARSE_BODY_UNTIL_CLOSE && f.keepalive)
        abort();
    if (f.body == SC_H1PARSE_BODY_CHUNKED && f.has_length && f.keepalive)
        abort(); /* framed both ways: the connection is not reused */
    if (minor == 0 && f.keepalive)
        abort();
    for (size_t i = 0; i != num_headers; ++i)
        if (headers[i].name == NULL)
            abort(); /* a folded line must have been refused */

    off += (size_t)rlen;
    if (f.body == SC_H1PARSE_BODY_CHUNKED) {
        fuzz_chunked_t whole;
        fuzz_chunked_compare(in + off, size - off, window, &whole);
        if (whole.rc == 1) {
            struct phr_header fields[SC_HTTP_FIELDS_MAX];
            size_t num_fields = SC_HTTP_FIELDS_MAX;
            int trc = sc_h1parse_trailers(whole.rest, whole.rest_len, SC_APP_HEAD_MAX, fields, &num_fields);
            if (trc < -1 || trc > (int)whole.rest_len)
                abort();
            for (size_t i = 0; trc > 0 && i != num_fields; ++i)
                if (fields[i].name == NULL)
                    abort();
        }
        fuzz_chunked_free(&whole);
    }
}

/* The blocking clients' whole-response parser: the body it returns lies inside the buffer. */
static void blocking_response(const char *in, size_t size)
{
    char *buf = malloc(size + 1), *body = NULL, err[256];
    size_t body_len = 0;
    int status = 0;
    if (buf == NULL)
        abort();
    memcpy(buf, in, size);
    if (cmn_http1_parse_response(buf, size, &status, &body, &body_len, err, sizeof(err)) == 0) {
        /* picohttpparser promises three digits, no more: a 1xx is not skipped there, nor 099 refused */
        if (status < 0 || status > 999 || body == NULL || body < buf || body_len > size ||
            (size_t)(body - buf) > size - body_len)
            abort();
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte: whether the request was a HEAD, and the size of the reads the body arrives in */
    if (size == 0)
        return 0;
    int head_request = data[0] & 1;
    size_t window = 1 + (data[0] >> 1);
    app_response((const char *)data + 1, size - 1, head_request, window);
    blocking_response((const char *)data + 1, size - 1);
    return 0;
}
