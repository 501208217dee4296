/* Pure helpers of the outbound proxy: the request's target and which headers stop at this hop. */
#ifndef SEAM_SIDECAR_FORWARD_H
#define SEAM_SIDECAR_FORWARD_H

#include <stddef.h>

/* A borrowed slice of a request (no NUL terminator). */
typedef struct st_sc_slice_t {
    const char *base;
    size_t len;
} sc_slice_t;

typedef enum {
    SC_TARGET_OK = 0,
    SC_TARGET_NO_HOST = -1,     /* neither an absolute-form URI nor a Host/:authority */
    SC_TARGET_BAD_URI = -2,     /* absolute-form, but malformed (empty host, userinfo) */
    SC_TARGET_NOT_HTTP = -3,    /* absolute-form with a scheme other than http (https:// needs CONNECT) */
} sc_target_error_t;

/*
 * Finds where a request goes. An absolute-form target ("http://host:port/p?q",
 * what an app configured with http_proxy sends) wins over the Host header;
 * otherwise authority (Host or :authority) names the host and path is kept.
 * On SC_TARGET_OK, *host borrows from authority or path and *out_path from
 * path; *out_path may be empty or start with '?' (the caller then prefixes
 * "/"). No allocation, no I/O.
 */
int sc_forward_target(sc_slice_t authority, sc_slice_t path, sc_slice_t *host, sc_slice_t *out_path)
    __attribute__((warn_unused_result));

/*
 * True when a request header must not be forwarded: hop-by-hop headers
 * (RFC 9110 7.6.1: connection, keep-alive, proxy-connection, te,
 * transfer-encoding, upgrade, proxy-authorization, http2-settings), host
 * (sent as :authority), content-length (recomputed), x-forwarded-client-cert
 * (only the receiving sidecar may state it), and any header named in the
 * request's Connection header (connection: the value, or an empty slice).
 * name must be lowercase (h2o lowercases header names); connection tokens are
 * compared case-insensitively.
 */
int sc_forward_drop_header(sc_slice_t name, sc_slice_t connection);

#endif
