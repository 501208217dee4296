/* One name for every way a mesh TLS handshake fails, and the rules that pick it from what a handshake saw. */
#ifndef SEAM_CERTS_TLSFAIL_H
#define SEAM_CERTS_TLSFAIL_H

#include <stddef.h>

#include "certs/diagnose.h"
#include "certs/error.h"

/*
 * CRT_TLSFAIL_MAP(XX): XX(NAME, verify_err, diag, own_slug), one row per name,
 * in the order seam_tls_handshake_errors_total lists its reason labels
 * (dashboards and tests read that order: append only). A row borrows its slug
 * from where the name is defined, so no slug is written twice:
 *   verify_err  the chain-verification error of that name (certs/error.h), or 0;
 *   diag        the diagnosis of that name (certs/diagnose.h), or CRT__DIAG_END;
 *   own_slug    the slug of a name defined only here, or NULL.
 * Where a row has both a verify_err and a diag, the two slugs are the same.
 */
#define CRT_TLSFAIL_MAP(XX)                                                                                            \
    XX(EXPIRED, CRT_E_EXPIRED, CRT_DIAG_EXPIRED, NULL)                                                                 \
    XX(NOT_YET_VALID, CRT_E_NOT_YET_VALID, CRT_DIAG_NOT_YET_VALID, NULL)                                               \
    XX(UNTRUSTED_ROOT, CRT_E_UNTRUSTED_ROOT, CRT_DIAG_UNTRUSTED_ROOT, NULL)                                            \
    XX(MISSING_INTERMEDIATE, CRT_E_MISSING_INTERMEDIATE, CRT_DIAG_MISSING_INTERMEDIATE, NULL)                          \
    XX(NO_URI_SAN, CRT_E_NO_URI_SAN, CRT__DIAG_END, NULL)                                                              \
    XX(SEVERAL_URI_SANS, CRT_E_SEVERAL_URI_SANS, CRT__DIAG_END, NULL)                                                  \
    XX(BAD_SPIFFE_ID, CRT_E_BAD_SPIFFE_ID, CRT__DIAG_END, NULL)                                                        \
    XX(NOT_A_LEAF, CRT_E_NOT_A_LEAF, CRT__DIAG_END, NULL)                                                              \
    XX(WRONG_KEY_USAGE, CRT_E_WRONG_KEY_USAGE, CRT__DIAG_END, NULL)                                                    \
    XX(BAD_SIGNATURE, CRT_E_BAD_SIGNATURE, CRT__DIAG_END, NULL)                                                        \
    XX(NAME_CONSTRAINT, CRT_E_NAME_CONSTRAINT, CRT__DIAG_END, NULL)                                                    \
    XX(INVALID_CHAIN, CRT_E_INVALID_CHAIN, CRT__DIAG_END, NULL)                                                        \
    XX(IDENTITY_MISMATCH, CRT_E_IDENTITY_MISMATCH, CRT__DIAG_END, NULL)                                                \
    XX(CLIENT_CERT_REQUIRED, 0, CRT_DIAG_CLIENT_CERT_REQUIRED, NULL)                                                   \
    XX(NAME_MISMATCH, 0, CRT_DIAG_NAME_MISMATCH, NULL)                                                                 \
    XX(BAD_CERTIFICATE, 0, CRT_DIAG_BAD_CERTIFICATE, NULL)                                                             \
    XX(CLIENT_CERT_REJECTED, 0, CRT_DIAG_CLIENT_CERT_REJECTED, NULL)                                                   \
    XX(CONNECTION_REFUSED, 0, CRT_DIAG_CONNECTION_REFUSED, NULL)                                                       \
    XX(DNS_FAILURE, 0, CRT_DIAG_DNS_FAILURE, NULL)                                                                     \
    XX(TLS_ERROR, 0, CRT_DIAG_TLS_ERROR, NULL)                                                                         \
    XX(NO_SHARED_CIPHER, 0, CRT_DIAG_NO_SHARED_CIPHER, NULL)                                                           \
    XX(PLAIN_HTTP, 0, CRT_DIAG_PLAIN_HTTP, NULL)                                                                       \
    XX(TIMEOUT, 0, CRT_DIAG_TIMEOUT, NULL)                                                                             \
    XX(HANDSHAKE_FAILED, 0, CRT__DIAG_END, "handshake-failed")

typedef enum {
#define CRT_TLSFAIL_ENUM(name, verify_err, diag, own_slug) CRT_TLSFAIL_##name,
    CRT_TLSFAIL_MAP(CRT_TLSFAIL_ENUM)
#undef CRT_TLSFAIL_ENUM
    CRT__TLSFAIL_END
} crt_tlsfail_t;

/* The slug of a name ("expired"); "unknown" outside the map. Static storage. */
const char *crt_tlsfail_slug(crt_tlsfail_t fail);

/* The name a slug stands for: 0 and *fail set, or -1 when the slug is not in the map. */
int crt_tlsfail_from_slug(const char *slug, crt_tlsfail_t *fail) __attribute__((warn_unused_result));

/*
 * The diagnosis closest to a name: the row's own diag, else the diagnosis of
 * its chain-verification error, else CRT_DIAG_TLS_ERROR.
 */
crt_diag_t crt_tlsfail_diag(crt_tlsfail_t fail);

/*
 * Who saw the failure. The three ends read the same facts with rules of their
 * own, because each has always named some failures differently:
 *   SERVER    the sidecar's inbound side; its catch-all is handshake-failed.
 *   CLIENT    the sidecar's outbound side, a mesh client that always presents
 *             a certificate; its catch-all is tls-error.
 *   DIAGNOSE  seam-certs diagnose, a client that also knows whether the server
 *             asked for a certificate and what its first bytes were, so it
 *             names alerts and OpenSSL reasons more finely.
 */
typedef enum { CRT_TLSFAIL_SERVER, CRT_TLSFAIL_CLIENT, CRT_TLSFAIL_DIAGNOSE } crt_tlsfail_observer_t;

/* Whether a fatal alert went by, and which way. */
typedef enum {
    CRT_TLSFAIL_NO_ALERT = 0,
    CRT_TLSFAIL_ALERT_SENT,
    CRT_TLSFAIL_ALERT_RECEIVED,
    CRT_TLSFAIL_ALERT_AFTER_FINISHED /* received once our side of the handshake had completed */
} crt_tlsfail_alert_t;

/* What the peer's first bytes looked like, for an observer that keeps them. */
typedef enum {
    CRT_TLSFAIL_ANSWER_UNSEEN = 0, /* not watched */
    CRT_TLSFAIL_ANSWER_NONE,       /* watched; nothing arrived */
    CRT_TLSFAIL_ANSWER_TLS,        /* a TLS handshake or alert record */
    CRT_TLSFAIL_ANSWER_HTTP,       /* "HTTP/" */
    CRT_TLSFAIL_ANSWER_OTHER       /* something that is neither */
} crt_tlsfail_answer_t;

/*
 * What one end saw of a failed handshake. Zero means "not seen" in every
 * field, so a designated initializer names only what was seen.
 */
typedef struct st_crt_tlsfail_facts_t {
    crt_tlsfail_observer_t observer;
    int verify_err;                   /* crt_verify_chain's error when our check of the peer failed; 0: none */
    crt_tlsfail_alert_t alert_seen;
    int alert;                        /* the alert's description (SSL_AD_*) when alert_seen says there was one */
    int ssl_reason;                   /* ERR_GET_REASON of the OpenSSL error that stopped the handshake; 0: none */
    crt_tlsfail_answer_t peer_answer;
    int cert_requested;               /* client: the server asked for our certificate */
    int cert_sent;                    /* client: we had a certificate to send */
} crt_tlsfail_facts_t;

/*
 * Names a failed handshake from what the observer saw. Pure: no I/O, and it
 * reads nothing but *facts (the caller drains OpenSSL's error queue). A server
 * does not read verify_err: it reports a failed check of its client's chain
 * under the check's own name (crt_error_slug, the first rows of the map).
 * Facts that match no rule, and an unknown observer, give the observer's
 * catch-all (handshake-failed for an unknown observer).
 */
crt_tlsfail_t crt_tlsfail_classify(const crt_tlsfail_facts_t *facts);

#endif
