/* Request-target path normalisation: one pure function, so the path the policy judges is the path the app receives. */
#ifndef SEAM_SIDECAR_HTTP_PATHNORM_H
#define SEAM_SIDECAR_HTTP_PATHNORM_H

#include <stddef.h>

#include "sidecar/http/forward.h" /* sc_slice_t */

#define SC_PATHNORM_TARGET_MAX 8192 /* bytes in a request target (path and query) we normalise */

/*
 * Why a request target is refused: XX(NAME, "slug", "message"). The caller
 * answers 400 with the message (every row is the client's fault; the slug is
 * for the access log and metrics). Encoded forms are checked after decoding,
 * so "%2e%2E" is a dot segment and "%00" is a NUL.
 */
#define SC_PATHNORM_ERROR_MAP(XX)                                                                                  \
    XX(TOO_LONG, "too-long", "the request target is longer than 8192 bytes")                                       \
    XX(NOT_ORIGIN_FORM, "not-origin-form", "the path does not start with '/'")                                     \
    XX(BAD_ESCAPE, "bad-escape", "'%' is not followed by two hex digits")                                          \
    XX(ENCODED_SLASH, "encoded-slash", "the path holds an encoded '/' (%2F)")                                      \
    XX(ENCODED_BACKSLASH, "encoded-backslash", "the path holds an encoded '\\' (%5C)")                             \
    XX(BACKSLASH, "backslash", "the path holds a '\\'")                                                            \
    XX(NUL, "nul", "the request target holds a NUL byte (raw or %00)")                                            \
    XX(CONTROL, "control-char", "the request target holds a control character")                                   \
    XX(SPACE, "space", "the request target holds a raw space")                                                     \
    XX(FRAGMENT, "fragment", "the request target holds a raw '#'")                                                 \
    XX(ABOVE_ROOT, "above-root", "a '..' segment climbs above the root")                                           \
    XX(OUT_TOO_SMALL, "out-too-small", "the output buffer is smaller than the request target")

typedef enum {
    SC_PATHNORM_OK = 0,
#define SC_PATHNORM_ENUM(name, slug, msg) SC_PATHNORM_E_##name,
    SC__PATHNORM_FIRST = -2100,
    SC_PATHNORM_ERROR_MAP(SC_PATHNORM_ENUM)
#undef SC_PATHNORM_ENUM
    SC__PATHNORM_END
} sc_pathnorm_error_t;

/* What sc_pathnorm_normalise() wrote. */
typedef struct st_sc_pathnorm_result_t {
    size_t len;      /* bytes written to out: the path, then '?' and the query when there is one */
    size_t path_len; /* of which the path: out[0..path_len) is what the policy judges */
    int changed;     /* 1 when out[0..len) differs from the input, 0 when it is the same bytes */
} sc_pathnorm_result_t;

/*
 * Normalises an origin-form request target ("/a/b?q") as RFC 3986 section 6
 * describes, with the stricter choices a policy check needs:
 *
 *   1. percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are
 *      decoded; every other escape stays, with its hex digits in upper case;
 *   2. runs of '/' become one '/' (before step 3, so "/api//../admin" is
 *      "/admin": what a file-serving app would have opened);
 *   3. "." and ".." segments are resolved (section 5.2.4), also when they
 *      were written "%2e"; a trailing "." or ".." leaves a trailing '/';
 *   4. the query (from the first '?') is copied byte for byte, never decoded
 *      or rewritten.
 *
 * Refused, each with its own code (see SC_PATHNORM_ERROR_MAP): a target longer
 * than SC_PATHNORM_TARGET_MAX; a path not starting with '/' (absolute-form and
 * authority-form targets are the caller's to split first); a malformed
 * escape; %2F or %5C (an app that decodes them would see other segments than
 * the policy did); a raw '\'; a ".." above the root (never clamped: a client
 * that sends one is probing); and anywhere in the target, path or query, a
 * NUL (raw or %00), a control character (0x01-0x1F, 0x7F), a raw space or a
 * raw '#' (none can be in a request target, and an HTTP/1.1 app would read
 * them as the end of the request line or of the path).
 *
 * The asterisk-form "*" (OPTIONS *) is returned unchanged: it is the only
 * output that does not start with '/'; whether the method allows it is the
 * caller's decision. Bytes >= 0x80 are copied as they are.
 *
 * The output is never longer than the input, so cap >= target.len always
 * suffices (e.g. h2o_mem_alloc_pool(pool, target.len)); out may be
 * target.base itself (normalised in place), otherwise the two must not
 * overlap. out is not NUL-terminated. Normalising the output again gives the
 * same bytes with changed == 0.
 *
 * Returns SC_PATHNORM_OK with *res filled, or a negative sc_pathnorm_error_t;
 * on error *res is untouched and out[0..cap) holds unspecified bytes. Pure:
 * no allocation, no I/O; borrows target, writes only out and *res.
 */
int sc_pathnorm_normalise(sc_slice_t target, char *out, size_t cap, sc_pathnorm_result_t *res)
    __attribute__((warn_unused_result));

/* Stable short name of a code ("encoded-slash"); "ok" for SC_PATHNORM_OK, "unknown" otherwise. */
const char *sc_pathnorm_error_name(int err);

/* One-line description of a code, for the 400 body and the log. */
const char *sc_pathnorm_error_message(int err);

#endif
