/* HTTP/1.x framing judged from a parsed head, and chunked bodies decoded in bounded steps (RFC 9112 6, 7). */
#include "sidecar/http/h1parse.h"

#include <string.h>
#include <strings.h>
#include <sys/types.h>

static int slice_is(const char *s, size_t len, const char *lit)
{
    return s != NULL && len == strlen(lit) && strncasecmp(s, lit, len) == 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* True when the comma-separated list names token (case-insensitive). */
int sc_h1parse_has_token(const char *list, size_t len, const char *token)
{
    size_t tlen = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (is_ows(list[i]) || list[i] == ','))
            ++i;
        size_t start = i;
        while (i < len && list[i] != ',')
            ++i;
        size_t end = i;
        while (end > start && is_ows(list[end - 1]))
            --end;
        if (end - start == tlen && strncasecmp(list + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

/* True when the last coding of a Transfer-Encoding list is chunked ("gzip, chunked" is; "xchunked" is not). */
static int last_coding_is_chunked(const char *list, size_t len)
{
    while (len != 0 && is_ows(list[len - 1]))
        --len;
    size_t start = len;
    while (start != 0 && list[start - 1] != ',')
        --start;
    while (start < len && is_ows(list[start]))
        ++start;
    return slice_is(list + start, len - start, "chunked");
}

/* Parses a Content-Length value; -1 unless it is a plain decimal of at most SC_H1PARSE_LENGTH_DIGITS_MAX digits. */
static int parse_length(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0 || len > SC_H1PARSE_LENGTH_DIGITS_MAX)
        return -1;
    for (size_t i = 0; i != len; ++i) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* One more Content-Length line: -1 when it is malformed or disagrees with an earlier one. */
static int add_length(const struct phr_header *h, sc_h1parse_framing_t *out)
{
    uint64_t n;
    if (parse_length(h->value, h->value_len, &n) != 0 || (out->has_length && n != out->length))
        return -1;
    out->length = n;
    out->has_length = 1;
    return 0;
}

int sc_h1parse_request_framing(int minor, const struct phr_header *headers, size_t num_headers, sc_h1parse_framing_t *out)
{
    int bad = 0, chunked = 0, close = 0, keep_alive = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i != num_headers; ++i) {
        const struct phr_header *h = &headers[i];
        if (h->name == NULL) {
            bad = 1; /* obsolete line folding */
        } else if (slice_is(h->name, h->name_len, "host")) {
            if (out->host == NULL)
                out->host = h;
            else
                bad = 1; /* RFC 9112 3.2: a second Host is an error, not a choice */
        } else if (slice_is(h->name, h->name_len, "content-length")) {
            if (add_length(h, out) != 0)
                bad = 1;
        } else if (slice_is(h->name, h->name_len, "transfer-encoding")) {
            /* only chunked, and only once: anything else would be framed differently by someone downstream */
            if (chunked || !slice_is(h->value, h->value_len, "chunked"))
                bad = 1;
            chunked = 1;
        } else if (slice_is(h->name, h->name_len, "expect")) {
            out->expect = slice_is(h->value, h->value_len, "100-continue") ? SC_H1PARSE_EXPECT_CONTINUE
                                                                          : SC_H1PARSE_EXPECT_UNKNOWN;
        } else if (slice_is(h->name, h->name_len, "connection")) {
            out->connection = h->value, out->connection_len = h->value_len;
            close |= sc_h1parse_has_token(h->value, h->value_len, "close");
            keep_alive |= sc_h1parse_has_token(h->value, h->value_len, "keep-alive");
        }
    }
    out->keepalive = !close && (minor != 0 || keep_alive);
    if (chunked && out->has_length)
        bad = 1; /* RFC 9112 6.1: the two framings at once are refused */
    out->body = chunked ? SC_H1PARSE_BODY_CHUNKED : out->has_length ? SC_H1PARSE_BODY_LENGTH : SC_H1PARSE_BODY_NONE;
    return bad ? -1 : 0;
}

int sc_h1parse_request_header_kept(const struct phr_header *h)
{
    static const char *const consumed[] = {"host", "content-length", "transfer-encoding", "expect", "upgrade"};
    if (h->name == NULL)
        return 0;
    for (size_t i = 0; i != sizeof(consumed) / sizeof(consumed[0]); ++i)
        if (slice_is(h->name, h->name_len, consumed[i]))
            return 0;
    return 1;
}

int sc_h1parse_response_framing(int minor, int status, int head_request, const struct phr_header *headers,
                                size_t num_headers, sc_h1parse_framing_t *out)
{
    int chunked = 0, close = minor == 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i != num_headers; ++i) {
        const struct phr_header *h = &headers[i];
        if (h->name == NULL) {
            /* RFC 9112 5.2: a proxy refuses obsolete line folding or unfolds it; passed on, it would become a
               field without a name */
            return -1;
        } else if (slice_is(h->name, h->name_len, "connection")) {
            out->connection = h->value, out->connection_len = h->value_len;
            close |= sc_h1parse_has_token(h->value, h->value_len, "close");
        } else if (slice_is(h->name, h->name_len, "transfer-encoding")) {
            if (!last_coding_is_chunked(h->value, h->value_len))
                return -1; /* a coding we cannot frame */
            chunked = 1;
        } else if (slice_is(h->name, h->name_len, "content-length")) {
            if (add_length(h, out) != 0)
                return -1;
        }
    }
    out->keepalive = !close;
    if (head_request || status < 200 || status == 204 || status == 304) {
        out->body = SC_H1PARSE_BODY_NONE;
    } else if (chunked) {
        out->body = SC_H1PARSE_BODY_CHUNKED;
        if (out->has_length)
            out->keepalive = 0;
    } else if (out->has_length) {
        out->body = SC_H1PARSE_BODY_LENGTH;
    } else {
        out->body = SC_H1PARSE_BODY_UNTIL_CLOSE;
        out->keepalive = 0;
    }
    return 0;
}

int sc_h1parse_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *size, size_t window, size_t *decoded)
{
    size_t total = *size, n = window < total ? window : total, len = n;
    ssize_t rest = phr_decode_chunked(decoder, buf, &len);
    if (rest == -1)
        return -1;
    /* the undecoded rest of the window sits after the payload; the bytes beyond the window follow it */
    size_t left = rest >= 0 ? (size_t)rest : 0;
    if (total > n) /* (an empty buffer may have no bytes at all: buf NULL) */
        memmove(buf + len + left, buf + n, total - n);
    *size = len + left + (total - n);
    *decoded = len;
    return rest >= 0 ? 1 : 0;
}

int sc_h1parse_trailers(const char *buf, size_t len, size_t max, struct phr_header *fields, size_t *num_fields)
{
    int rc = phr_parse_headers(buf, len, fields, num_fields, 0);
    if (rc == -2)
        return len >= max ? -1 : 0;
    if (rc < 0)
        return -1;
    for (size_t i = 0; i != *num_fields; ++i)
        if (fields[i].name == NULL)
            return -1; /* a folded trailer line */
    return rc;
}
