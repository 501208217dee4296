/* Blocking HTTPS client for seam-ca, with the CA's identity checked like any mesh peer's. */
#include "sidecar/identity/ca_client.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/diagnose.h"
#include "certs/error.h"
#include "certs/pem.h"
#include "common/connect.h"
#include "common/http1.h"
#include "common/wait.h"

#define REQUEST_HEAD_MAX 1024

const char *sc_ca_failure_name(sc_ca_failure_t failure)
{
    switch (failure) {
    case SC_CA_OK:
        return "ok";
    case SC_CA_UNREACHABLE:
        return "unreachable";
    case SC_CA_TLS:
        return "tls";
    case SC_CA_REFUSED:
        return "refused";
    default:
        return "bad-response";
    }
}

void sc_ca_identity_for(const char *trust_domain, size_t len, char *out, size_t cap)
{
    snprintf(out, cap, "spiffe://%.*s" SC_CA_SERVICE_ACCOUNT, (int)len, trust_domain);
}

void sc_ca_result_clear(sc_ca_result_t *res)
{
    sk_X509_pop_free(res->chain, X509_free);
    sk_X509_pop_free(res->roots, X509_free);
    res->chain = NULL;
    res->roots = NULL;
}

/* Splits "https://host[:port][/]" into host and port; only https is accepted. */
static int split_url(const char *url, char *host, size_t host_cap, char *port, size_t port_cap)
{
    static const char scheme[] = "https://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return -1;
    const char *h = url + sizeof(scheme) - 1, *end = h + strcspn(h, "/"), *colon;
    if (*end != '\0' && strcmp(end, "/") != 0)
        return -1;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (close == NULL)
            return -1;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (close + 1 != end && colon == NULL)
            return -1;
        if ((size_t)(close - h - 1) >= host_cap)
            return -1;
        memcpy(host, h + 1, (size_t)(close - h - 1));
        host[close - h - 1] = '\0';
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        size_t hlen = (size_t)((colon != NULL ? colon : end) - h);
        if (hlen == 0 || hlen >= host_cap)
            return -1;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (colon == NULL) {
        snprintf(port, port_cap, "15012");
        return 0;
    }
    size_t plen = (size_t)(end - colon - 1);
    if (plen == 0 || plen >= port_cap || strspn(colon + 1, "0123456789") < plen)
        return -1;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    return 0;
}

/* State the verify callback fills in. */
struct exchange {
    const sc_ca_endpoint_t *ep;
    int verify_err;
    char verify_detail[512];
};

/* The CA is checked like a mesh peer: chain to the trust bundle, exactly the CA's SPIFFE ID. */
static int on_verify_ca(X509_STORE_CTX *store, void *arg)
{
    struct exchange *ex = arg;
    crt_verify_opts_t opts = {.usage = CRT_USAGE_SERVER, .require_spiffe = 1, .expected_id = ex->ep->ca_id};
    crt_verify_result_t res;
    ex->verify_err = crt_verify_chain(ex->ep->trust, X509_STORE_CTX_get0_cert(store), X509_STORE_CTX_get0_untrusted(store),
                                      ex->ep->now, &opts, &res);
    if (ex->verify_err == 0)
        return 1;
    snprintf(ex->verify_detail, sizeof(ex->verify_detail), "%s: %s", crt_diag_slug(crt_diag_from_verify_error(ex->verify_err)),
             res.detail);
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static SSL_CTX *client_ctx(const sc_ca_endpoint_t *ep, struct exchange *ex)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    /* seam-ca serves TLS 1.2 and 1.3; ask for HTTP/1.1 (no ALPN: h2o then speaks HTTP/1.1). */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        goto Fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, on_verify_ca, ex);
    if (ep->cert != NULL) {
        if (!SSL_CTX_use_certificate(ctx, ep->cert) || !SSL_CTX_use_PrivateKey(ctx, ep->key) ||
            !SSL_CTX_check_private_key(ctx))
            goto Fail;
        for (int i = 0; ep->chain != NULL && i < sk_X509_num(ep->chain); ++i)
            if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(ep->chain, i)))
                goto Fail;
    }
    return ctx;
Fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Runs an SSL operation on a non-blocking socket until it completes or the deadline passes. */
static int ssl_wait(SSL *ssl, int fd, int ret, long long deadline)
{
    int e = SSL_get_error(ssl, ret);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return -1;
    return cmn_wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) > 0 ? 0 : -2;
}

/* One request/response over a fresh TLS connection; the reply is read until the CA closes. */
static sc_ca_failure_t exchange(const sc_ca_endpoint_t *ep, const char *method, const char *path, const char *body,
                                size_t body_len, sc_ca_result_t *res, char **reply, size_t *reply_len)
{
    struct exchange ex = {.ep = ep};
    long long deadline = cmn_monotonic_ms() + (ep->timeout_ms > 0 ? ep->timeout_ms : SC_CA_TIMEOUT_MS);
    char host[256], port[16], head[REQUEST_HEAD_MAX], ossl[256];
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char *buf = NULL;
    size_t len = 0;
    int fd = -1, r;
    sc_ca_failure_t ret = SC_CA_UNREACHABLE;

    if (split_url(ep->url, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(res->detail, sizeof(res->detail), "%s: not an https://HOST[:PORT] URL", ep->url);
        return SC_CA_UNREACHABLE;
    }
    if (cmn_connect(host, port, deadline, &fd, res->detail, sizeof(res->detail)) != CMN_CONNECT_OK)
        return SC_CA_UNREACHABLE;
    ret = SC_CA_TLS;
    if ((ctx = client_ctx(ep, &ex)) == NULL || (ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)) {
        snprintf(res->detail, sizeof(res->detail), "TLS set-up failed: %s", crt_error_drain_openssl(ossl, sizeof(ossl)));
        goto Exit;
    }
    if (strchr(host, ':') == NULL)
        SSL_set_tlsext_host_name(ssl, host);
    while ((r = SSL_connect(ssl)) != 1) {
        int w = ssl_wait(ssl, fd, r, deadline);
        if (w == 0)
            continue;
        if (ex.verify_err != 0)
            snprintf(res->detail, sizeof(res->detail), "seam-ca at %s: %s", ep->url, ex.verify_detail);
        else if (w == -2)
            snprintf(res->detail, sizeof(res->detail), "seam-ca at %s: TLS handshake timed out", ep->url);
        else
            snprintf(res->detail, sizeof(res->detail), "seam-ca at %s: TLS handshake failed: %s", ep->url,
                     crt_error_drain_openssl(ossl, sizeof(ossl)));
        ret = w == -2 ? SC_CA_UNREACHABLE : SC_CA_TLS;
        goto Exit;
    }

    ret = SC_CA_UNREACHABLE;
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\n%s%s%s\r\n",
                     method, path, host, body_len, ep->bearer != NULL ? "authorization: Bearer " : "",
                     ep->bearer != NULL ? ep->bearer : "", ep->bearer != NULL ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        snprintf(res->detail, sizeof(res->detail), "request too large (is the token file sane?)");
        ret = SC_CA_BAD_RESPONSE;
        goto Exit;
    }
    const struct {
        const char *p;
        size_t len;
    } parts[2] = {{head, (size_t)n}, {body, body_len}};
    for (int i = 0; i != 2; ++i) {
        size_t off = 0;
        while (off < parts[i].len) {
            r = SSL_write(ssl, parts[i].p + off, (int)(parts[i].len - off));
            if (r > 0) {
                off += (size_t)r;
            } else if (ssl_wait(ssl, fd, r, deadline) != 0) {
                snprintf(res->detail, sizeof(res->detail), "seam-ca at %s: sending the request failed", ep->url);
                goto Exit;
            }
        }
    }
    if ((buf = malloc(SC_CA_RESPONSE_MAX + 1)) == NULL) {
        snprintf(res->detail, sizeof(res->detail), "out of memory");
        goto Exit;
    }
    for (;;) {
        if (len == SC_CA_RESPONSE_MAX) {
            snprintf(res->detail, sizeof(res->detail), "seam-ca at %s: reply larger than %d bytes", ep->url,
                     SC_CA_RESPONSE_MAX);
            ret = SC_CA_BAD_RESPONSE;
            goto Exit;
        }
        r = SSL_read(ssl, buf + len, (int)(SC_CA_RESPONSE_MAX - len));
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && len != 0) || (e == SSL_ERROR_SSL && len != 0))
            break; /* closed: the reply is complete (framing is checked by the parser) */
        if (ssl_wait(ssl, fd, r, deadline) != 0) {
            snprintf(res->detail, sizeof(res->detail), "seam-ca at %s: no complete reply in time", ep->url);
            goto Exit;
        }
    }
    buf[len] = '\0';
    *reply = buf;
    *reply_len = len;
    buf = NULL;
    ret = SC_CA_OK;

Exit:
    ERR_clear_error();
    free(buf);
    if (ssl != NULL)
        SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return ret;
}

/* Reads a JSON list of PEM strings into a new stack. */
static int read_pem_list(json_t *list, STACK_OF(X509) * *out, const char *field, sc_ca_result_t *res)
{
    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(res->detail, sizeof(res->detail), "reply field \"%s\" is not a non-empty list", field);
        return -1;
    }
    STACK_OF(X509) *all = sk_X509_new_null();
    for (size_t i = 0; all != NULL && i != json_array_size(list); ++i) {
        const char *pem = json_string_value(json_array_get(list, i));
        STACK_OF(X509) *one = NULL;
        if (pem == NULL || crt_pem_read_certs(pem, strlen(pem), &one, NULL, 0) != 0) {
            snprintf(res->detail, sizeof(res->detail), "reply field \"%s\"[%zu] is not a PEM certificate", field, i);
            sk_X509_pop_free(all, X509_free);
            return -1;
        }
        while (sk_X509_num(one) > 0)
            if (!sk_X509_push(all, sk_X509_shift(one)))
                break;
        sk_X509_pop_free(one, X509_free);
    }
    if (all == NULL)
        return -1;
    *out = all;
    return 0;
}

/* Turns a reply into a result: status, JSON, and the certificate lists the caller wants. */
static sc_ca_failure_t interpret(char *reply, size_t len, int want_chain, sc_ca_result_t *res)
{
    char *body;
    size_t body_len;
    char why[256];
    json_error_t jerr;

    if (cmn_http1_parse_response(reply, len, &res->status, &body, &body_len, why, sizeof(why)) != 0) {
        snprintf(res->detail, sizeof(res->detail), "seam-ca reply: %s", why);
        return SC_CA_BAD_RESPONSE;
    }
    json_t *json = json_loadb(body, body_len, 0, &jerr);
    sc_ca_failure_t ret = SC_CA_BAD_RESPONSE;
    if (json == NULL || !json_is_object(json)) {
        snprintf(res->detail, sizeof(res->detail), "seam-ca answered %d with a body that is not a JSON object", res->status);
        goto Exit;
    }
    if (res->status != 200) {
        const char *code = json_string_value(json_object_get(json, "error"));
        const char *message = json_string_value(json_object_get(json, "message"));
        snprintf(res->error, sizeof(res->error), "%s", code != NULL ? code : "unknown");
        snprintf(res->detail, sizeof(res->detail), "seam-ca refused (%d %s): %s", res->status, res->error,
                 message != NULL ? message : "no message");
        ret = SC_CA_REFUSED;
        goto Exit;
    }
    if (want_chain && read_pem_list(json_object_get(json, "chain"), &res->chain, "chain", res) != 0)
        goto Exit;
    if (read_pem_list(json_object_get(json, want_chain ? "bundle" : "roots"), &res->roots, want_chain ? "bundle" : "roots",
                      res) != 0)
        goto Exit;
    ret = SC_CA_OK;
Exit:
    json_decref(json);
    if (ret != SC_CA_OK)
        sc_ca_result_clear(res);
    return ret;
}

sc_ca_failure_t sc_ca_sign(const sc_ca_endpoint_t *ep, const char *csr_pem, long ttl_seconds, sc_ca_result_t *res)
{
    json_t *req = json_pack("{s:s}", "csr", csr_pem);
    char *body = NULL, *reply = NULL;
    size_t reply_len = 0;
    sc_ca_failure_t ret = SC_CA_BAD_RESPONSE;

    memset(res, 0, sizeof(*res));
    if (req == NULL || (ttl_seconds > 0 && json_object_set_new(req, "ttl_seconds", json_integer(ttl_seconds)) != 0) ||
        (body = json_dumps(req, JSON_COMPACT)) == NULL) {
        snprintf(res->detail, sizeof(res->detail), "cannot build the sign request");
        goto Exit;
    }
    if ((ret = exchange(ep, "POST", "/v1/sign", body, strlen(body), res, &reply, &reply_len)) != SC_CA_OK)
        goto Exit;
    ret = interpret(reply, reply_len, 1, res);
Exit:
    json_decref(req);
    free(body);
    free(reply);
    return ret;
}

sc_ca_failure_t sc_ca_get_bundle(const sc_ca_endpoint_t *ep, sc_ca_result_t *res)
{
    char *reply = NULL;
    size_t reply_len = 0;
    memset(res, 0, sizeof(*res));
    sc_ca_failure_t ret = exchange(ep, "GET", "/v1/bundle", "", 0, res, &reply, &reply_len);
    if (ret == SC_CA_OK)
        ret = interpret(reply, reply_len, 0, res);
    free(reply);
    return ret;
}

int sc_ca_check_issued(const sc_ca_result_t *res, const char *expected_id, EVP_PKEY *key, time_t now, char *err,
                       size_t err_cap)
{
    crt_bundle_t *roots = NULL;
    crt_verify_opts_t opts = {.usage = CRT_USAGE_ANY, .require_spiffe = 1, .expected_id = expected_id};
    crt_verify_result_t vres;
    int ret = -1;

    if (res->chain == NULL || sk_X509_num(res->chain) == 0 || res->roots == NULL) {
        snprintf(err, err_cap, "the CA returned no chain or no bundle");
        return -1;
    }
    X509 *leaf = sk_X509_value(res->chain, 0);
    if (crt_bundle_from_certs(res->roots, &roots) != 0) {
        snprintf(err, err_cap, "the CA's bundle holds no usable root");
        goto Exit;
    }
    int verr = crt_verify_chain(roots, leaf, res->chain, now, &opts, &vres);
    if (verr != 0) {
        snprintf(err, err_cap, "the issued chain does not check out: %s: %s", crt_error_slug(verr), vres.detail);
        goto Exit;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        snprintf(err, err_cap, "the issued certificate is not for our key");
        goto Exit;
    }
    ret = 0;
Exit:
    crt_bundle_release(roots);
    return ret;
}
