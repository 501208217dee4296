/* Parsing HTTP/1.x responses for the blocking clients, with the parser libh2o carries. */
#ifndef SEAM_COMMON_HTTP1_H
#define SEAM_COMMON_HTTP1_H

#include <stddef.h>

#define CMN_HTTP1_HEADERS_MAX 64

/*
 * Parses a complete HTTP/1.x response held in buf[0..len) (the connection was
 * closed by the server, or the caller read it whole). Decodes a chunked body
 * in place. On success returns 0 with the status and the body (pointing into
 * buf). Returns -1 with a one-line reason in err when the response is
 * incomplete or malformed.
 */
int cmn_http1_parse_response(char *buf, size_t len, int *status, char **body, size_t *body_len, char *err,
                             size_t err_cap);

#endif
