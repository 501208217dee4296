/* seam-certs diagnose: one TLS handshake, fully verified, and a name for what went wrong. */
#include "certs/diagnose.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certs/error.h"
#include "certs/pem.h"
#include "certs/tlsfail.h"
#include "common/connect.h"
#include "common/wait.h"

#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define PLAIN_HTTP_PROBE_MS 2000
#define FIRST_BYTES 16

static const struct {
    const char *slug, *cause, *fix;
} diag_table[] = {
#define CRT_DIAG_ROW(name, slug, cause, fix) {slug, cause, fix},
    CRT_DIAG_MAP(CRT_DIAG_ROW)
#undef CRT_DIAG_ROW
};

const char *crt_diag_slug(crt_diag_t diag)
{
    return diag < CRT__DIAG_END ? diag_table[diag].slug : "unknown";
}

const char *crt_diag_cause(crt_diag_t diag)
{
    return diag < CRT__DIAG_END ? diag_table[diag].cause : "unknown";
}

const char *crt_diag_fix(crt_diag_t diag)
{
    return diag < CRT__DIAG_END ? diag_table[diag].fix : "unknown";
}

crt_diag_t crt_diag_from_verify_error(int crt_err)
{
    switch (crt_err) {
    case 0:
        return CRT_DIAG_OK;
    case CRT_E_EXPIRED:
        return CRT_DIAG_EXPIRED;
    case CRT_E_NOT_YET_VALID:
        return CRT_DIAG_NOT_YET_VALID;
    case CRT_E_UNTRUSTED_ROOT:
        return CRT_DIAG_UNTRUSTED_ROOT;
    case CRT_E_MISSING_INTERMEDIATE:
        return CRT_DIAG_MISSING_INTERMEDIATE;
    case CRT_E_IDENTITY_MISMATCH:
    case CRT_E_NO_URI_SAN:
    case CRT_E_SEVERAL_URI_SANS:
    case CRT_E_BAD_SPIFFE_ID:
    case CRT_E_NAME_CONSTRAINT:
        return CRT_DIAG_NAME_MISMATCH;
    default:
        return CRT_DIAG_BAD_CERTIFICATE;
    }
}

/* State of one diagnosis, shared with the OpenSSL callbacks. */
struct diag_state {
    const crt_diag_opts_t *opts;
    crt_bundle_t *bundle;
    int verify_err;
    char verify_detail[512];
    int cert_requested;
    unsigned char first_bytes[FIRST_BYTES];
    size_t first_len;
    STACK_OF(X509) * peer_chain;
};

/* Connects to the first address that accepts; returns fd or -1 with res filled. */
static int connect_with_deadline(const crt_diag_opts_t *opts, long long deadline, crt_diag_result_t *res)
{
    int fd = -1;
    switch (cmn_connect(opts->host, opts->port, deadline, &fd, res->detail, sizeof(res->detail))) {
    case CMN_CONNECT_OK:
        return fd;
    case CMN_CONNECT_DNS:
        res->diag = CRT_DIAG_DNS_FAILURE;
        return -1;
    case CMN_CONNECT_TIMEOUT:
        res->diag = CRT_DIAG_TIMEOUT;
        return -1;
    case CMN_CONNECT_REFUSED:
    default:
        res->diag = CRT_DIAG_CONNECTION_REFUSED;
        return -1;
    }
}

/* Runs Seam's chain verification in place of OpenSSL's, keeping the peer's chain for the report. */
static int on_verify_peer(X509_STORE_CTX *ctx, void *arg)
{
    struct diag_state *st = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    STACK_OF(X509) *untrusted = X509_STORE_CTX_get0_untrusted(ctx);
    crt_verify_opts_t vopts = {.usage = CRT_USAGE_SERVER,
                               .require_spiffe = st->opts->expected_id != NULL,
                               .expected_id = st->opts->expected_id};
    crt_verify_result_t vres;

    if (st->peer_chain == NULL && (st->peer_chain = sk_X509_new_null()) != NULL) {
        if (X509_up_ref(leaf) && !sk_X509_push(st->peer_chain, leaf))
            X509_free(leaf);
        for (int i = 0; untrusted != NULL && i < sk_X509_num(untrusted); ++i) {
            X509 *c = sk_X509_value(untrusted, i);
            if (c != leaf && X509_up_ref(c) && !sk_X509_push(st->peer_chain, c))
                X509_free(c);
        }
    }
    /* OpenSSL passes the peer's whole chain (leaf included) as untrusted; that is what crt_verify_chain expects. */
    st->verify_err = crt_verify_chain(st->bundle, leaf, untrusted, st->opts->now, &vopts, &vres);
    if (st->verify_err != 0) {
        snprintf(st->verify_detail, sizeof(st->verify_detail), "%s", vres.detail);
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

static int on_certificate_request(SSL *ssl, void *arg)
{
    (void)ssl;
    ((struct diag_state *)arg)->cert_requested = 1;
    return 1;
}

/* Keeps the first bytes the server sends, to recognise a plain-HTTP answer. */
static long on_socket_io(BIO *bio, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                         size_t *processed)
{
    (void)len, (void)argi, (void)argl;
    struct diag_state *st = (struct diag_state *)BIO_get_callback_arg(bio);
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed != NULL && st->first_len < FIRST_BYTES) {
        size_t n = *processed < FIRST_BYTES - st->first_len ? *processed : FIRST_BYTES - st->first_len;
        memcpy(st->first_bytes + st->first_len, argp, n);
        st->first_len += n;
    }
    return ret;
}

static int looks_like_http(const unsigned char *bytes, size_t len)
{
    return len >= 5 && memcmp(bytes, "HTTP/", 5) == 0;
}

/* Sends a plain HTTP request on a fresh connection: did a TLS port turn out to be HTTP? */
static int probe_plain_http(const crt_diag_opts_t *opts)
{
    crt_diag_result_t scratch;
    long long deadline = cmn_monotonic_ms() + PLAIN_HTTP_PROBE_MS;
    int fd = connect_with_deadline(opts, deadline, &scratch), is_http = 0;
    char request[512], reply[8];
    size_t got = 0;

    if (fd < 0)
        return 0;
    int n = snprintf(request, sizeof(request), "HEAD / HTTP/1.0\r\nHost: %s\r\n\r\n", opts->host);
    if (n > 0 && send(fd, request, (size_t)n, MSG_NOSIGNAL) == n) {
        while (got < 5 && cmn_wait_fd(fd, POLLIN, deadline) > 0) {
            ssize_t r = recv(fd, reply + got, sizeof(reply) - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        is_http = looks_like_http((unsigned char *)reply, got);
    }
    close(fd);
    return is_http;
}

/* What the server's first bytes were: the classifier reads it, and a non-TLS answer earns an HTTP probe. */
static crt_tlsfail_answer_t peer_answer(const struct diag_state *st)
{
    if (looks_like_http(st->first_bytes, st->first_len))
        return CRT_TLSFAIL_ANSWER_HTTP;
    if (st->first_len == 0)
        return CRT_TLSFAIL_ANSWER_NONE;
    return st->first_bytes[0] == 0x15 || st->first_bytes[0] == 0x16 ? CRT_TLSFAIL_ANSWER_TLS : CRT_TLSFAIL_ANSWER_OTHER;
}

/*
 * Names a failed handshake (crt_tlsfail_classify) from the first OpenSSL
 * error, the alert in it and what the server asked for; then words the detail.
 */
static void classify_tls_failure(struct diag_state *st, unsigned long code, int sent_cert, int after_finished,
                                 crt_diag_result_t *res)
{
    int reason = ERR_GET_LIB(code) == ERR_LIB_SSL ? ERR_GET_REASON(code) : 0;
    int alert = reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256 ? reason - SSL_AD_REASON_OFFSET : -1;
    crt_tlsfail_facts_t facts = {
        .observer = CRT_TLSFAIL_DIAGNOSE,
        .verify_err = st->verify_err,
        .alert_seen = alert < 0 ? CRT_TLSFAIL_NO_ALERT
                      : after_finished ? CRT_TLSFAIL_ALERT_AFTER_FINISHED
                                       : CRT_TLSFAIL_ALERT_RECEIVED,
        .alert = alert,
        .ssl_reason = reason,
        .peer_answer = peer_answer(st),
        .cert_requested = st->cert_requested,
        .cert_sent = sent_cert,
    };
    const char *what = code != 0 ? ERR_reason_error_string(code) : NULL;

    res->diag = crt_tlsfail_diag(crt_tlsfail_classify(&facts));
    if (what == NULL)
        what = "connection closed during the handshake";
    snprintf(res->detail, sizeof(res->detail), "%s", what);

    if (st->verify_err != 0) {
        snprintf(res->detail, sizeof(res->detail), "%s: %s", crt_error_slug(st->verify_err), st->verify_detail);
        return;
    }
    if (facts.peer_answer == CRT_TLSFAIL_ANSWER_HTTP) {
        snprintf(res->detail, sizeof(res->detail), "the server answered the TLS ClientHello with \"%.*s...\"",
                 (int)st->first_len < 12 ? (int)st->first_len : 12, (const char *)st->first_bytes);
        return;
    }
    if (res->diag == CRT_DIAG_TLS_ERROR && facts.peer_answer == CRT_TLSFAIL_ANSWER_OTHER) {
        /* Some HTTP servers answer a ClientHello with a bare error page: ask them in HTTP. */
        if (probe_plain_http(st->opts)) {
            res->diag = CRT_DIAG_PLAIN_HTTP;
            snprintf(res->detail, sizeof(res->detail),
                     "the server answered the TLS ClientHello with non-TLS data and a plain HTTP request with HTTP");
            return;
        }
        snprintf(res->detail, sizeof(res->detail), "the port answered with data that is not TLS (first byte 0x%02x)",
                 st->first_bytes[0]);
    }
}

static SSL_CTX *new_client_ctx(const crt_diag_opts_t *opts, struct diag_state *st)
{
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    /* The mesh's TLS profile (DESIGN.md section 3): TLS 1.3 only. */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") ||
        !SSL_CTX_set1_groups_list(ctx, "X25519:P-256") || SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
        goto Fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, on_verify_peer, st);
    SSL_CTX_set_cert_cb(ctx, on_certificate_request, st);
    if (opts->client_cert != NULL) {
        if (!SSL_CTX_use_certificate(ctx, opts->client_cert) || !SSL_CTX_use_PrivateKey(ctx, opts->client_key) ||
            !SSL_CTX_check_private_key(ctx))
            goto Fail;
        for (int i = 0; opts->client_chain != NULL && i < sk_X509_num(opts->client_chain); ++i)
            if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(opts->client_chain, i)))
                goto Fail;
    }
    return ctx;

Fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* After a TLS 1.3 handshake the server judges our certificate: wait briefly for its verdict. */
static int read_post_handshake_alert(SSL *ssl, int fd, long long deadline, unsigned long *code)
{
    long long wait_until = cmn_monotonic_ms() + CRT_DIAG_ALERT_WAIT_MS;
    char buf[256];

    if (wait_until > deadline)
        wait_until = deadline;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(ssl, buf, sizeof(buf));
        if (r > 0)
            return 0; /* the server talks to us: accepted */
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            if (cmn_wait_fd(fd, POLLIN, wait_until) <= 0)
                return 0;
            continue;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        *code = ERR_peek_error();
        return -1;
    }
}

static void fill_peer_facts(SSL *ssl, struct diag_state *st, crt_diag_result_t *res)
{
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;

    if (st->peer_chain != NULL && sk_X509_num(st->peer_chain) > 0) {
        res->chain_len = sk_X509_num(st->peer_chain);
        res->have_leaf = crt_cert_info(sk_X509_value(st->peer_chain, 0), &res->leaf) == 0;
    }
    res->cert_requested = st->cert_requested;
    if (ssl != NULL && SSL_is_init_finished(ssl)) {
        snprintf(res->tls_version, sizeof(res->tls_version), "%s", SSL_get_version(ssl));
        snprintf(res->cipher, sizeof(res->cipher), "%s", SSL_get_cipher_name(ssl));
        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        snprintf(res->alpn, sizeof(res->alpn), "%.*s", (int)alpn_len, alpn != NULL ? (const char *)alpn : "");
    }
}

/* Without --spiffe-id, a certificate that names hosts must name the one we dialled. */
static int check_host_name(SSL *ssl, const char *host, crt_diag_result_t *res)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    GENERAL_NAMES *names = leaf != NULL ? X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL) : NULL;
    int names_hosts = 0, ok = 1;
    unsigned char addr[16];

    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); ++i) {
        int type = sk_GENERAL_NAME_value(names, i)->type;
        names_hosts |= type == GEN_DNS || type == GEN_IPADD;
    }
    GENERAL_NAMES_free(names);
    if (!names_hosts)
        return 0;
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        ok = X509_check_ip_asc(leaf, host, 0) == 1;
    else
        ok = X509_check_host(leaf, host, 0, 0, NULL) == 1;
    if (!ok) {
        res->diag = CRT_DIAG_NAME_MISMATCH;
        snprintf(res->detail, sizeof(res->detail), "the certificate's names (%s) do not include %s",
                 res->have_leaf ? res->leaf.sans : "?", host);
        return -1;
    }
    return 0;
}

int crt_diagnose(const crt_diag_opts_t *opts, crt_diag_result_t *res)
{
    struct diag_state st = {.opts = opts, .bundle = opts->bundle};
    long long deadline = cmn_monotonic_ms() + (opts->timeout_ms > 0 ? opts->timeout_ms : CRT_DIAG_TIMEOUT_MS_DEFAULT);
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    unsigned long code = 0;
    int fd = -1;

    memset(res, 0, sizeof(*res));
    res->diag = CRT_DIAG_TLS_ERROR;
    ERR_clear_error();

    if (st.bundle == NULL) {
        char *pem = NULL, detail[256];
        size_t len;
        if (crt_file_read(SYSTEM_CA_FILE, 4 * CRT_FILE_MAX, &pem, &len) != 0 ||
            crt_bundle_from_pem(pem, len, &st.bundle, detail, sizeof(detail)) != 0) {
            free(pem);
            res->diag = CRT_DIAG_TLS_ERROR;
            snprintf(res->detail, sizeof(res->detail), "no --bundle given and %s is not usable", SYSTEM_CA_FILE);
            goto Exit;
        }
        free(pem);
    }
    if ((ctx = new_client_ctx(opts, &st)) == NULL || (ssl = SSL_new(ctx)) == NULL) {
        crt_error_drain_openssl(res->detail, sizeof(res->detail));
        goto Exit;
    }
    if ((fd = connect_with_deadline(opts, deadline, res)) < 0)
        goto Exit;
    if (!SSL_set_fd(ssl, fd)) {
        crt_error_drain_openssl(res->detail, sizeof(res->detail));
        goto Exit;
    }
    BIO_set_callback_ex(SSL_get_rbio(ssl), on_socket_io);
    BIO_set_callback_arg(SSL_get_rbio(ssl), (char *)&st);
    if (opts->host[0] != '\0' && strchr(opts->host, ':') == NULL)
        SSL_set_tlsext_host_name(ssl, opts->host);

    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (cmn_wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) > 0)
                continue;
            /* No TLS answer in time: a plain-HTTP server may still be waiting for a request line. */
            fill_peer_facts(ssl, &st, res);
            if (st.first_len == 0 && probe_plain_http(opts)) {
                res->diag = CRT_DIAG_PLAIN_HTTP;
                snprintf(res->detail, sizeof(res->detail),
                         "no TLS answer, but a plain HTTP request on the same port got an HTTP reply");
            } else {
                res->diag = CRT_DIAG_TIMEOUT;
                snprintf(res->detail, sizeof(res->detail), "TLS handshake with %s:%s got no answer in %d ms",
                         opts->host, opts->port, opts->timeout_ms);
            }
            goto Exit;
        }
        code = ERR_peek_error();
        classify_tls_failure(&st, code, opts->client_cert != NULL, 0, res);
        fill_peer_facts(ssl, &st, res);
        goto Exit;
    }

    fill_peer_facts(ssl, &st, res);
    if (st.cert_requested && read_post_handshake_alert(ssl, fd, deadline, &code) != 0) {
        classify_tls_failure(&st, code, opts->client_cert != NULL, 1, res);
        goto Exit;
    }
    if (opts->expected_id == NULL && check_host_name(ssl, opts->host, res) != 0)
        goto Exit;
    res->diag = CRT_DIAG_OK;
    if (res->have_leaf && res->leaf.spiffe_id[0] != '\0')
        snprintf(res->detail, sizeof(res->detail), "peer is %s", res->leaf.spiffe_id);
    else
        snprintf(res->detail, sizeof(res->detail), "handshake and chain verification succeeded");

Exit:
    ERR_clear_error();
    if (ssl != NULL)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    sk_X509_pop_free(st.peer_chain, X509_free);
    if (opts->bundle == NULL)
        crt_bundle_release(st.bundle);
    return res->diag == CRT_DIAG_OK ? 0 : -1;
}
