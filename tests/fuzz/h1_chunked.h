/* What the HTTP/1.x fuzz targets share: a chunked body decoded in steps must decode as it does in one go. */
#ifndef SEAM_TESTS_FUZZ_H1_CHUNKED_H
#define SEAM_TESTS_FUZZ_H1_CHUNKED_H

#include <stdlib.h>
#include <string.h>

#include "sidecar/http/h1parse.h"

typedef struct {
    int rc;          /* the last step's result */
    char *payload;   /* malloc'ed */
    size_t payload_len;
    char *rest;      /* after the last chunk (rc == 1): the trailer section and what follows; malloc'ed */
    size_t rest_len;
} fuzz_chunked_t;

/* Decodes body[0..len) window bytes at a time, checking each step's contract. */
static void fuzz_chunked_decode(const char *body, size_t len, size_t window, fuzz_chunked_t *out)
{
    char *buf = malloc(len + 1);
    size_t size = len;
    struct phr_chunked_decoder decoder;

    memset(&decoder, 0, sizeof(decoder));
    out->payload = malloc(len + 1);
    out->payload_len = 0;
    out->rc = 0;
    if (buf == NULL || out->payload == NULL)
        abort();
    memcpy(buf, body, len);
    while (out->rc == 0 && size != 0) {
        size_t before = size, decoded = (size_t)-1;
        out->rc = sc_h1parse_chunked(&decoder, buf, &size, window, &decoded);
        if (out->rc < -1 || out->rc > 1)
            abort();
        if (out->rc == -1)
            break;
        /* the payload fits in the window, and only framing bytes went away */
        if (decoded > window || decoded > size || size > before || out->payload_len + decoded > len)
            abort();
        /* a step that is not the last consumes its whole window (a partial chunk-size line stays in the decoder) */
        size_t n = window < before ? window : before;
        if (out->rc == 0 && size != before - n + decoded)
            abort();
        memcpy(out->payload + out->payload_len, buf, decoded);
        out->payload_len += decoded;
        memmove(buf, buf + decoded, size - decoded);
        size -= decoded;
    }
    out->rest = buf;
    out->rest_len = out->rc == 1 ? size : 0;
}

/* Decodes body in one go and in steps of window bytes; both must agree on the outcome and the bytes. */
static void fuzz_chunked_compare(const char *body, size_t len, size_t window, fuzz_chunked_t *whole)
{
    fuzz_chunked_t steps;
    fuzz_chunked_decode(body, len, len == 0 ? 1 : len, whole);
    fuzz_chunked_decode(body, len, window, &steps);
    if (steps.rc != whole->rc)
        abort();
    if (whole->rc >= 0 && (steps.payload_len != whole->payload_len ||
                           memcmp(steps.payload, whole->payload, whole->payload_len) != 0 ||
                           steps.rest_len != whole->rest_len || memcmp(steps.rest, whole->rest, whole->rest_len) != 0))
        abort();
    /* the rest after the last chunk is the body's own tail, byte for byte */
    if (whole->rc == 1 && (whole->rest_len > len || memcmp(whole->rest, body + len - whole->rest_len, whole->rest_len) != 0))
        abort();
    free(steps.payload);
    free(steps.rest);
}

static void fuzz_chunked_free(fuzz_chunked_t *c)
{
    free(c->payload);
    free(c->rest);
}

/* Encodes payload as chunks whose sizes come from seed; decoding it in any window gives the payload back. */
static void fuzz_chunked_round_trip(const char *payload, size_t len, unsigned seed, size_t window)
{
    char *body = malloc(len * 24 + 64), *p = body;
    size_t off = 0;
    if (body == NULL)
        abort();
    while (off < len) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 37;
        if (n > len - off)
            n = len - off;
        p += sprintf(p, (seed & 1) != 0 ? "%zX;ext=\"x\"\r\n" : "%zx\r\n", n);
        memcpy(p, payload + off, n);
        p += n;
        memcpy(p, "\r\n", 2);
        p += 2;
        off += n;
    }
    p += sprintf(p, "0\r\nx-t: 1\r\n\r\n");
    fuzz_chunked_t whole;
    fuzz_chunked_compare(body, (size_t)(p - body), window, &whole);
    if (whole.rc != 1 || whole.payload_len != len || memcmp(whole.payload, payload, len) != 0 || whole.rest_len != 10)
        abort();
    fuzz_chunked_free(&whole);
    free(body);
}

#endif
