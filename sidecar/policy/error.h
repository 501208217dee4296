/* The sidecar's error vocabulary: one code, slug and message per kind of failure. */
#ifndef SEAM_SIDECAR_POLICY_ERROR_H
#define SEAM_SIDECAR_POLICY_ERROR_H

/*
 * SC_ERROR_MAP(XX) lists every error as XX(NAME, "slug", "message"). Functions
 * return 0 or one of these (negative) codes; the one-line detail for logs goes
 * through an err buffer or an error struct.
 */
#define SC_ERROR_MAP(XX)                                                               \
    XX(USAGE, "usage", "bad flag or flag value")                                       \
    XX(CONFIG, "config", "the --config file is invalid")                               \
    XX(POLICY, "policy", "the policy file is invalid")                                 \
    XX(IO, "io", "a file could not be read")                                           \
    XX(IDENTITY, "identity", "the certificate, key or trust bundle cannot be used")    \
    XX(ADDRESS, "address", "not a numeric address and port")                           \
    XX(LISTEN, "listen", "cannot listen on the address")                               \
    XX(THREAD, "thread", "cannot start a worker thread")                               \
    XX(NOMEM, "nomem", "out of memory")

typedef enum {
    SC_OK = 0,
#define SC_ERROR_ENUM(name, slug, msg) SC_E_##name,
    SC__ERROR_FIRST = -2000,
    SC_ERROR_MAP(SC_ERROR_ENUM)
#undef SC_ERROR_ENUM
    SC__ERROR_END
} sc_error_t;

/* Stable short name ("policy") of a code; "ok" for SC_OK, "unknown" otherwise. */
const char *sc_error_slug(int err);

/* One-sentence description of a code. */
const char *sc_error_message(int err);

#endif
