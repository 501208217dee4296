/* What a redirected connection speaks, judged from its first bytes. */
#ifndef SEAM_SIDECAR_DETECT_H
#define SEAM_SIDECAR_DETECT_H

#include <stddef.h>

/*
 * Bytes read before the verdict must be in; a request line still valid at
 * this length is taken for HTTP (the front end then judges its size).
 */
#define SC_DETECT_MAX 4096
#define SC_DETECT_METHOD_MAX 24 /* a longer first word is no HTTP method (the longest registered is 17) */

typedef enum {
    SC_DETECT_MORE,  /* the bytes so far begin both an HTTP request and something else: read on */
    SC_DETECT_HTTP1, /* an HTTP/1.x request line: METHOD SP TARGET SP HTTP/1.DIGIT CRLF */
    SC_DETECT_HTTP2, /* the HTTP/2 client preface (h2c with prior knowledge) */
    SC_DETECT_TCP,   /* anything else: opaque TCP */
} sc_detect_t;

/*
 * Judges the first len bytes a client sent. SC_DETECT_MORE only while len is
 * under SC_DETECT_MAX; the caller that stops waiting (the client sent nothing
 * more in time, or closed) takes the connection for TCP.
 */
sc_detect_t sc_detect_protocol(const char *bytes, size_t len);

#endif
