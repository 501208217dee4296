/* HTTP/1.x framing judged from a parsed head, and chunked bodies decoded in bounded steps: pure, no sockets. */
#ifndef SEAM_SIDECAR_H1PARSE_H
#define SEAM_SIDECAR_H1PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/picohttpparser.h"

/* Digits in a Content-Length: 19 always fit in 64 bits, so a longer value is refused rather than wrapped. */
#define SC_H1PARSE_LENGTH_DIGITS_MAX 19

typedef enum {
    SC_H1PARSE_BODY_NONE = 0,     /* no body: a request without one, a HEAD, 1xx, 204 or 304 response */
    SC_H1PARSE_BODY_LENGTH,       /* Content-Length bytes */
    SC_H1PARSE_BODY_CHUNKED,      /* chunked, then a trailer section */
    SC_H1PARSE_BODY_UNTIL_CLOSE,  /* responses only: everything up to the close */
} sc_h1parse_body_t;

typedef enum {
    SC_H1PARSE_EXPECT_NONE = 0,
    SC_H1PARSE_EXPECT_CONTINUE, /* "Expect: 100-continue" */
    SC_H1PARSE_EXPECT_UNKNOWN,  /* any other expectation: 417 */
} sc_h1parse_expect_t;

/* What a message's header lines say about its body and its connection. Pointers borrow the caller's headers. */
typedef struct st_sc_h1parse_framing_t {
    sc_h1parse_body_t body;
    uint64_t length;                /* the Content-Length when has_length, else 0 */
    int has_length;                 /* a valid Content-Length was given (a HEAD response's says what GET would get) */
    int keepalive;                  /* the connection may carry the next message */
    sc_h1parse_expect_t expect;     /* requests only */
    const struct phr_header *host;  /* requests: the Host line, NULL without one */
    const char *connection;         /* the last Connection value, NULL without one */
    size_t connection_len;
} sc_h1parse_framing_t;

/* True when the comma-separated list (a header value) names token, compared case-insensitively. */
int sc_h1parse_has_token(const char *list, size_t len, const char *token);

/*
 * Judges a request head that picohttpparser parsed (minor: its HTTP/1.x
 * minor version). Fills *out in full either way, and returns 0, or -1 when
 * the framing is malformed and the request must be refused with 400: a
 * folded line, a second Host, a Content-Length that is not a decimal of at
 * most SC_H1PARSE_LENGTH_DIGITS_MAX digits or that disagrees with another,
 * a Transfer-Encoding other than one "chunked", or both framings at once.
 */
int sc_h1parse_request_framing(int minor, const struct phr_header *headers, size_t num_headers, sc_h1parse_framing_t *out)
    __attribute__((warn_unused_result));

/* True when the front end passes this request line on as a header (not framing, Host, Expect, Upgrade or folding). */
int sc_h1parse_request_header_kept(const struct phr_header *header);

/*
 * Judges a final (status 200 to 999) response head. head_request: it answers
 * a HEAD request, so it has no body whatever it says. Returns 0 with *out
 * filled, or -1 when its body cannot be framed: a Transfer-Encoding whose last
 * coding is not chunked, or a Content-Length that is malformed or disagrees
 * with another. A response framed both ways is read as chunked and ends its
 * connection (RFC 9112 6.3: it may be an attempt at response splitting).
 */
int sc_h1parse_response_framing(int minor, int status, int head_request, const struct phr_header *headers,
                                size_t num_headers, sc_h1parse_framing_t *out) __attribute__((warn_unused_result));

/*
 * Decodes in place the first `window` bytes at most of the chunked body held
 * in buf[0..*size), with decoder's state from the previous step (zeroed for
 * the first; consume_trailer must be 0). Afterwards buf[0..*decoded) is
 * payload and the bytes not decoded follow it unchanged, up to the new *size
 * (the framing removed is gone). Returns 1 when the last chunk ended (the
 * trailer section starts at buf + *decoded), 0 when more input is needed,
 * -1 for a malformed chunk (buf is then unspecified).
 */
int sc_h1parse_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *size, size_t window, size_t *decoded)
    __attribute__((warn_unused_result));

/*
 * Parses the trailer section at buf[0..len), into at most *num_fields
 * fields that point into buf (*num_fields becomes their count). Returns its
 * length when complete, 0 when incomplete with fewer than max bytes in hand,
 * -1 when malformed, folded, of more lines, or incomplete at max bytes.
 */
int sc_h1parse_trailers(const char *buf, size_t len, size_t max, struct phr_header *fields, size_t *num_fields)
    __attribute__((warn_unused_result));

#endif
