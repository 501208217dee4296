/* libFuzzer target for the front end's HTTP/1.1 request framing (sidecar/http/h1parse.c), head to trailers. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http/front.h"
#include "sidecar/http/h1parse.h"
#include "tests/fuzz/h1_chunked.h"

static int inside(const char *p, size_t len, const char *buf, size_t size)
{
    return len == 0 || (p >= buf && len <= size && (size_t)(p - buf) <= size - len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *method, *path;
    size_t method_len, path_len, num_headers = SC_FRONT_HEADER_FIELDS_DEFAULT;
    struct phr_header headers[SC_FRONT_HEADER_FIELDS_DEFAULT];
    int minor;
    /* the front end parses at most SC_FRONT_HEADER_BYTES_DEFAULT bytes, first a prefix as it arrived, then more */
    size_t avail = size < SC_FRONT_HEADER_BYTES_DEFAULT ? size : SC_FRONT_HEADER_BYTES_DEFAULT;
    size_t prefix = avail / 2, prev_len = 0;
    int rc = phr_parse_request(in, prefix, &method, &method_len, &path, &path_len, &minor, headers, &num_headers, 0);
    if (rc == -2)
        prev_len = prefix;
    num_headers = SC_FRONT_HEADER_FIELDS_DEFAULT;
    rc = phr_parse_request(in, avail, &method, &method_len, &path, &path_len, &minor, headers, &num_headers, prev_len);
    if (rc < -2 || rc > (int)avail)
        abort();

    const char *body = in;
    size_t body_len = size;
    if (rc > 0) {
        if (minor < 0 || minor > 9 || num_headers > SC_FRONT_HEADER_FIELDS_DEFAULT || !inside(method, method_len, in, (size_t)rc) ||
            !inside(path, path_len, in, (size_t)rc))
            abort();
        for (size_t i = 0; i != num_headers; ++i)
            if ((headers[i].name != NULL && !inside(headers[i].name, headers[i].name_len, in, (size_t)rc)) ||
                !inside(headers[i].value, headers[i].value_len, in, (size_t)rc))
                abort();

        sc_h1parse_framing_t f;
        int bad = sc_h1parse_request_framing(minor, headers, num_headers, &f);
        if (bad != 0 && bad != -1)
            abort();
        if (f.keepalive != 0 && f.keepalive != 1)
            abort();
        if (f.body != SC_H1PARSE_BODY_NONE && f.body != SC_H1PARSE_BODY_LENGTH && f.body != SC_H1PARSE_BODY_CHUNKED)
            abort();
        if ((f.body == SC_H1PARSE_BODY_LENGTH) != (f.has_length && f.body != SC_H1PARSE_BODY_CHUNKED))
            abort();
        if (bad == 0 && f.body == SC_H1PARSE_BODY_CHUNKED && f.has_length)
            abort(); /* never both framings: that is how requests are smuggled */
        if (f.host != NULL && (f.host < headers || f.host >= headers + num_headers))
            abort();
        if (f.connection != NULL && !inside(f.connection, f.connection_len, in, (size_t)rc))
            abort();
        /* what is passed on as a header is never a framing line */
        for (size_t i = 0; i != num_headers; ++i)
            if (sc_h1parse_request_header_kept(&headers[i]) &&
                (headers[i].name == NULL || &headers[i] == f.host ||
                 (headers[i].name_len == 14 && strncasecmp(headers[i].name, "content-length", 14) == 0) ||
                 (headers[i].name_len == 17 && strncasecmp(headers[i].name, "transfer-encoding", 17) == 0)))
                abort();
        body = in + rc;
        body_len = size - (size_t)rc;
    }

    /* the bytes after the head (all of them when there is none) as a chunked body, in steps of a few sizes */
    size_t window = 1 + (size % 61);
    fuzz_chunked_t whole;
    fuzz_chunked_compare(body, body_len, window, &whole);
    if (whole.rc == 1) {
        struct phr_header fields[SC_HTTP_FIELDS_MAX];
        size_t num_fields = SC_HTTP_FIELDS_MAX;
        int trc = sc_h1parse_trailers(whole.rest, whole.rest_len, SC_FRONT_HEADER_BYTES_DEFAULT, fields, &num_fields);
        if (trc < -1 || trc > (int)whole.rest_len)
            abort();
        if (trc > 0) {
            if (num_fields > SC_HTTP_FIELDS_MAX)
                abort();
            for (size_t i = 0; i != num_fields; ++i)
                if (fields[i].name == NULL || !inside(fields[i].name, fields[i].name_len, whole.rest, (size_t)trc) ||
                    !inside(fields[i].value, fields[i].value_len, whole.rest, (size_t)trc))
                    abort();
        }
    }
    fuzz_chunked_free(&whole);
    fuzz_chunked_round_trip(in, size < 512 ? size : 512, (unsigned)size, window);
    return 0;
}
