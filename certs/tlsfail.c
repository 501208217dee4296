/* The TLS-failure vocabulary's table and the one place that decides which name a failed handshake gets. */
#include "certs/tlsfail.h"

#include <openssl/ssl.h>
#include <string.h>

static const struct {
    int verify_err;
    crt_diag_t diag;
    const char *own_slug;
} rows[] = {
#define CRT_TLSFAIL_ROW(name, verify_err, diag, own_slug) {verify_err, diag, own_slug},
    CRT_TLSFAIL_MAP(CRT_TLSFAIL_ROW)
#undef CRT_TLSFAIL_ROW
};

_Static_assert(sizeof(rows) / sizeof(rows[0]) == CRT__TLSFAIL_END, "one row per name");

const char *crt_tlsfail_slug(crt_tlsfail_t fail)
{
    if (fail >= CRT__TLSFAIL_END)
        return "unknown";
    if (rows[fail].verify_err != 0)
        return crt_error_slug(rows[fail].verify_err);
    if (rows[fail].diag != CRT__DIAG_END)
        return crt_diag_slug(rows[fail].diag);
    return rows[fail].own_slug;
}

int crt_tlsfail_from_slug(const char *slug, crt_tlsfail_t *fail)
{
    for (int i = 0; i != CRT__TLSFAIL_END; ++i) {
        if (strcmp(crt_tlsfail_slug((crt_tlsfail_t)i), slug) == 0) {
            *fail = (crt_tlsfail_t)i;
            return 0;
        }
    }
    return -1;
}

crt_diag_t crt_tlsfail_diag(crt_tlsfail_t fail)
{
    if (fail >= CRT__TLSFAIL_END)
        return CRT_DIAG_TLS_ERROR;
    if (rows[fail].diag != CRT__DIAG_END)
        return rows[fail].diag;
    if (rows[fail].verify_err != 0)
        return crt_diag_from_verify_error(rows[fail].verify_err);
    return CRT_DIAG_TLS_ERROR;
}

/* The row that carries a diagnosis; tls-error for one no row carries (only "ok"). */
static crt_tlsfail_t of_diag(crt_diag_t diag)
{
    for (int i = 0; i != CRT__TLSFAIL_END; ++i)
        if (rows[i].diag == diag)
            return (crt_tlsfail_t)i;
    return CRT_TLSFAIL_TLS_ERROR;
}

/* The alerts a peer sends when the two ends share no TLS version, cipher suite or group. */
static int alert_means_no_shared_cipher(int alert)
{
    return alert == SSL_AD_PROTOCOL_VERSION || alert == SSL_AD_HANDSHAKE_FAILURE ||
           alert == SSL_AD_INSUFFICIENT_SECURITY;
}

/* Inbound: the alert we sent says why; failing that, OpenSSL's reason for stopping. */
static crt_tlsfail_t classify_server(const crt_tlsfail_facts_t *f)
{
    if (f->alert_seen == CRT_TLSFAIL_ALERT_SENT) {
        if (f->alert == SSL_AD_CERTIFICATE_REQUIRED)
            return CRT_TLSFAIL_CLIENT_CERT_REQUIRED;
        if (alert_means_no_shared_cipher(f->alert))
            return CRT_TLSFAIL_NO_SHARED_CIPHER;
        return CRT_TLSFAIL_HANDSHAKE_FAILED;
    }
    switch (f->ssl_reason) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return CRT_TLSFAIL_PLAIN_HTTP;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
        return CRT_TLSFAIL_NO_SHARED_CIPHER;
    default:
        return CRT_TLSFAIL_HANDSHAKE_FAILED;
    }
}

/* Outbound: our verdict on the server first, then what the server said or failed to say in TLS. */
static crt_diag_t classify_client(const crt_tlsfail_facts_t *f)
{
    if (f->verify_err != 0)
        return crt_diag_from_verify_error(f->verify_err);
    /* TLS 1.3: after its Finished, all a server has left to say is its verdict on our certificate */
    if (f->alert_seen == CRT_TLSFAIL_ALERT_AFTER_FINISHED)
        return f->alert == SSL_AD_CERTIFICATE_REQUIRED ? CRT_DIAG_CLIENT_CERT_REQUIRED : CRT_DIAG_CLIENT_CERT_REJECTED;
    /* the answer to our ClientHello was not a TLS record: most often an HTTP server */
    if (f->ssl_reason == SSL_R_WRONG_VERSION_NUMBER || f->ssl_reason == SSL_R_PACKET_LENGTH_TOO_LONG)
        return CRT_DIAG_PLAIN_HTTP;
    if (f->alert_seen == CRT_TLSFAIL_ALERT_RECEIVED && alert_means_no_shared_cipher(f->alert))
        return CRT_DIAG_NO_SHARED_CIPHER;
    return CRT_DIAG_TLS_ERROR;
}

/* seam-certs diagnose: as the outbound side, but it also reads certificate alerts and version reasons. */
static crt_diag_t classify_diagnose(const crt_tlsfail_facts_t *f)
{
    int no_cert_sent = f->cert_requested && !f->cert_sent;

    if (f->verify_err != 0)
        return crt_diag_from_verify_error(f->verify_err);
    if (f->peer_answer == CRT_TLSFAIL_ANSWER_HTTP)
        return CRT_DIAG_PLAIN_HTTP;
    if (f->alert_seen == CRT_TLSFAIL_ALERT_RECEIVED || f->alert_seen == CRT_TLSFAIL_ALERT_AFTER_FINISHED) {
        switch (f->alert) {
        case SSL_AD_CERTIFICATE_REQUIRED:
            return CRT_DIAG_CLIENT_CERT_REQUIRED;
        case SSL_AD_HANDSHAKE_FAILURE:
            /* also what a TLS 1.2-style server sends when it wanted a certificate and got none */
            return no_cert_sent ? CRT_DIAG_CLIENT_CERT_REQUIRED : CRT_DIAG_NO_SHARED_CIPHER;
        case SSL_AD_PROTOCOL_VERSION:
        case SSL_AD_INSUFFICIENT_SECURITY:
            return CRT_DIAG_NO_SHARED_CIPHER;
        case SSL_AD_BAD_CERTIFICATE:
        case SSL_AD_UNSUPPORTED_CERTIFICATE:
        case SSL_AD_CERTIFICATE_REVOKED:
        case SSL_AD_CERTIFICATE_EXPIRED:
        case SSL_AD_CERTIFICATE_UNKNOWN:
        case SSL_AD_UNKNOWN_CA:
        case SSL_AD_ACCESS_DENIED:
        case SSL_AD_DECRYPT_ERROR:
            return f->cert_sent ? CRT_DIAG_CLIENT_CERT_REJECTED : CRT_DIAG_CLIENT_CERT_REQUIRED;
        default:
            break;
        }
    }
    switch (f->ssl_reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
        return CRT_DIAG_NO_SHARED_CIPHER;
    default:
        break;
    }
    /* not TLS and not HTTP/: the caller may still ask the port in HTTP */
    if (f->peer_answer == CRT_TLSFAIL_ANSWER_OTHER)
        return CRT_DIAG_TLS_ERROR;
    /* a server that hangs up once it has seen no certificate */
    return no_cert_sent ? CRT_DIAG_CLIENT_CERT_REQUIRED : CRT_DIAG_TLS_ERROR;
}

crt_tlsfail_t crt_tlsfail_classify(const crt_tlsfail_facts_t *facts)
{
    switch (facts->observer) {
    case CRT_TLSFAIL_SERVER:
        return classify_server(facts);
    case CRT_TLSFAIL_CLIENT:
        return of_diag(classify_client(facts));
    case CRT_TLSFAIL_DIAGNOSE:
        return of_diag(classify_diagnose(facts));
    default:
        return CRT_TLSFAIL_HANDSHAKE_FAILED;
    }
}
