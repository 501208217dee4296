/*
 * The picohttpparser functions libh2o exports. Debian ships no header for
 * them; these declarations follow the version libh2o 2.2.5 bundles.
 */
#ifndef SEAM_COMMON_PICOHTTPPARSER_H
#define SEAM_COMMON_PICOHTTPPARSER_H

#include <stddef.h>
#include <sys/types.h>

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer; /* set to 1 to also consume the trailer section */
    char _hex_count;
    char _state;
};

/*
 * Parses a request head. Returns its length, -1 on a parse error (also when
 * there are more than *num_headers header lines), -2 when incomplete; last_len
 * is the length of the previous incomplete attempt (0 the first time).
 */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

/* Returns the header length, -1 on a parse error, -2 when incomplete. */
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

/*
 * Parses header lines up to and including the empty line that ends them
 * (a chunked body's trailer section). Returns their length, -1 on a parse
 * error, -2 when incomplete.
 */
int phr_parse_headers(const char *buf, size_t len, struct phr_header *headers, size_t *num_headers, size_t last_len);

/*
 * Decodes chunked data in place: buf[0..*bufsz) becomes the payload, *bufsz
 * its length. Returns the number of bytes after the final chunk (the
 * message is complete; without consume_trailer they start with the trailer
 * section), -2 when more is needed, -1 on an error.
 */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
