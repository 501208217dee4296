/* SPIFFE ID parsing and validation (SPIFFE ID specification, DESIGN.md section 3). */
#ifndef SEAM_CERTS_SPIFFE_H
#define SEAM_CERTS_SPIFFE_H

#include <stddef.h>

#define CRT_SPIFFE_ID_MAX 2048       /* bytes, whole URI */
#define CRT_SPIFFE_TRUST_DOMAIN_MAX 255
#define CRT_SPIFFE_SCHEME "spiffe://"

/* Why a string is not a SPIFFE ID; each row has a message for the one-line error. */
#define CRT_SPIFFE_ERROR_MAP(XX)                                                       \
    XX(EMPTY, "empty string")                                                          \
    XX(TOO_LONG, "longer than 2048 bytes")                                             \
    XX(SCHEME, "does not start with spiffe://")                                        \
    XX(NO_TRUST_DOMAIN, "trust domain is empty")                                       \
    XX(TRUST_DOMAIN_TOO_LONG, "trust domain is longer than 255 bytes")                 \
    XX(TRUST_DOMAIN_CHAR, "trust domain may only hold a-z, 0-9, '.', '-' and '_'")     \
    XX(PORT, "trust domain must not carry a port")                                     \
    XX(USERINFO, "trust domain must not carry userinfo")                               \
    XX(QUERY, "query ('?') is not allowed")                                            \
    XX(FRAGMENT, "fragment ('#') is not allowed")                                      \
    XX(EMPTY_SEGMENT, "path has an empty segment (or a trailing '/')")                 \
    XX(DOT_SEGMENT, "path segment is '.' or '..'")                                     \
    XX(PATH_CHAR, "path may only hold A-Z, a-z, 0-9, '.', '-', '_' and '/'")           \
    XX(NO_PATH, "a workload ID needs a path after the trust domain")

typedef enum {
    CRT_SPIFFE_OK = 0,
#define CRT_SPIFFE_ENUM(name, msg) CRT_SPIFFE_E_##name,
    CRT__SPIFFE_FIRST = -100,
    CRT_SPIFFE_ERROR_MAP(CRT_SPIFFE_ENUM)
#undef CRT_SPIFFE_ENUM
    CRT__SPIFFE_END
} crt_spiffe_error_t;

/* A parsed SPIFFE ID; both slices borrow from the string that was parsed. */
typedef struct st_crt_spiffe_id_t {
    const char *trust_domain;
    size_t trust_domain_len;
    const char *path; /* "" or "/seg/seg"; never ends with '/' */
    size_t path_len;
} crt_spiffe_id_t;

/*
 * Parses s[0..len) strictly. On success fills *out (slices into s) and returns
 * 0; otherwise returns a negative crt_spiffe_error_t and leaves *out unchanged.
 * A trust-domain ID ("spiffe://example.org") is valid here; use
 * crt_spiffe_parse_workload() where a path is required.
 */
int crt_spiffe_parse(const char *s, size_t len, crt_spiffe_id_t *out) __attribute__((warn_unused_result));

/* As crt_spiffe_parse(), but the ID must have a non-empty path (CRT_SPIFFE_E_NO_PATH). */
int crt_spiffe_parse_workload(const char *s, size_t len, crt_spiffe_id_t *out)
    __attribute__((warn_unused_result));

/* Checks that td is a valid trust domain name (same rules as inside an ID). */
int crt_spiffe_check_trust_domain(const char *td, size_t len) __attribute__((warn_unused_result));

/* Message for a crt_spiffe_error_t. */
const char *crt_spiffe_error_message(int err);

/* True when the parsed ID's trust domain equals td exactly. */
int crt_spiffe_in_trust_domain(const crt_spiffe_id_t *id, const char *td, size_t td_len);

/*
 * Writes "spiffe://TD/ns/NS/sa/SA" into buf (cap bytes, NUL-terminated) for a
 * Kubernetes service account and validates the result. NS and SA must be
 * Kubernetes names ([a-z0-9.-], non-empty). Returns 0, or a negative
 * crt_spiffe_error_t (also when it does not fit); buf is "" on failure.
 */
int crt_spiffe_from_service_account(const char *td, const char *ns, const char *sa, char *buf, size_t cap)
    __attribute__((warn_unused_result));

#endif
