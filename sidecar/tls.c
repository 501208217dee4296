/* The sidecar's TLS identity snapshot and the inbound peer verification. */
#include "sidecar/tls.h"

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "certs/pem.h"
#include "sidecar/error.h"

/* The snapshot is the SSL_CTX's app data, so callbacks need no global to find their hooks. */
static const sc_tls_hooks_t *ctx_hooks(SSL_CTX *ctx)
{
    sc_tls_t *tls = SSL_CTX_get_app_data(ctx);
    return tls != NULL ? tls->hooks : NULL;
}

/* The certs library judges the chain OpenSSL hands over; `who` names the peer in the detail line. */
static int judge_peer(const sc_tls_t *tls, X509_STORE_CTX *store, const crt_verify_opts_t *opts, const char *who,
                      crt_verify_result_t *res)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    memset(res, 0, sizeof(*res));
    if (leaf == NULL) {
        snprintf(res->detail, sizeof(res->detail), "the %s sent no certificate", who);
        return CRT_E_NO_CERTIFICATE;
    }
    return crt_verify_chain(tls->bundle, leaf, X509_STORE_CTX_get0_untrusted(store), time(NULL), opts, res);
}

/* What OpenSSL's verify callback returns for a verdict. */
static int verdict(X509_STORE_CTX *store, int rc)
{
    if (rc != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

/* Replaces OpenSSL's chain building: the certs library decides, with its categories. */
static int on_cert_verify(X509_STORE_CTX *store, void *arg)
{
    sc_tls_t *tls = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    crt_verify_opts_t opts = {.usage = CRT_USAGE_CLIENT, .require_spiffe = 1};
    crt_verify_result_t res;
    int rc = judge_peer(tls, store, &opts, "peer", &res);
    const sc_tls_hooks_t *hooks = ssl != NULL ? ctx_hooks(SSL_get_SSL_CTX(ssl)) : NULL;
    if (hooks != NULL && hooks->on_verify != NULL)
        hooks->on_verify(ssl, rc, &res);
    return verdict(store, rc);
}

/* Outbound: the server's chain must lead to the bundle and name exactly the route's identity. */
static int on_client_cert_verify(X509_STORE_CTX *store, void *arg)
{
    sc_tls_t *tls = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const sc_tls_hooks_t *hooks = tls->hooks;
    const char *expected = ssl != NULL && hooks != NULL && hooks->client_expected_id != NULL ? hooks->client_expected_id(ssl) : NULL;
    crt_verify_opts_t opts = {.usage = CRT_USAGE_SERVER, .require_spiffe = 1, .expected_id = expected};
    crt_verify_result_t res;
    int rc;

    if (expected == NULL) {
        memset(&res, 0, sizeof(res));
        snprintf(res.detail, sizeof(res.detail), "no identity is expected for this connection");
        rc = CRT_E_IDENTITY_MISMATCH;
    } else {
        rc = judge_peer(tls, store, &opts, "server", &res);
    }
    if (ssl != NULL && hooks != NULL && hooks->on_client_verify != NULL)
        hooks->on_client_verify(ssl, rc, &res);
    return verdict(store, rc);
}

static int on_client_new_session(SSL *ssl, SSL_SESSION *session)
{
    const sc_tls_hooks_t *hooks = ctx_hooks(SSL_get_SSL_CTX(ssl));
    return hooks != NULL && hooks->on_client_session != NULL ? hooks->on_client_session(ssl, session) : 0;
}

static void on_info(const SSL *ssl, int where, int ret)
{
    const sc_tls_hooks_t *hooks = ctx_hooks(SSL_get_SSL_CTX(ssl));
    void (*cb)(const SSL *, int, int) = hooks == NULL ? NULL : SSL_is_server(ssl) ? hooks->on_info : hooks->on_client_info;
    if (cb != NULL)
        cb(ssl, where, ret);
}

static void tls_free(sc_tls_t *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->server_ctx);
    SSL_CTX_free(tls->client_ctx); /* also destroys its session cache */
    if (tls->bundle != NULL)
        crt_bundle_release(tls->bundle);
    free(tls->chain_pem);
    free(tls->bundle_pem);
    free(tls);
}

void sc_tls_addref(sc_tls_t *tls)
{
    __atomic_add_fetch(&tls->refcnt, 1, __ATOMIC_RELAXED);
}

void sc_tls_release(sc_tls_t *tls)
{
    if (tls != NULL && __atomic_sub_fetch(&tls->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        tls_free(tls);
}

static int read_file(const char *path, const char *what, char **buf, size_t *len, char *err, size_t err_cap)
{
    if (crt_file_read(path, CRT_FILE_MAX, buf, len) != 0) {
        snprintf(err, err_cap, "%s %s: cannot read the file", what, path);
        return SC_E_IO;
    }
    return 0;
}

int sc_tls_load(const sc_tls_source_t *src, const sc_tls_hooks_t *hooks, time_t now, sc_tls_t **out, char *err,
                size_t err_cap)
{
    char *cert_pem = NULL, *key_pem = NULL, *bundle_pem = NULL, detail[256], ossl[256];
    size_t cert_len = 0, key_len = 0, bundle_len = 0;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    sc_tls_t *tls = NULL;
    crt_verify_result_t res;
    crt_verify_opts_t opts = {.usage = CRT_USAGE_ANY, .require_spiffe = 1};
    int rc, ret = SC_E_IDENTITY;

    if ((tls = calloc(1, sizeof(*tls))) == NULL) {
        snprintf(err, err_cap, "out of memory");
        ret = SC_E_NOMEM;
        goto Exit;
    }
    tls->refcnt = 1;
    tls->loaded_at = now;
    tls->hooks = hooks;
    if (read_file(src->cert_path, "--cert", &cert_pem, &cert_len, err, err_cap) != 0 ||
        read_file(src->key_path, "--key", &key_pem, &key_len, err, err_cap) != 0 ||
        read_file(src->bundle_path, "--bundle", &bundle_pem, &bundle_len, err, err_cap) != 0) {
        ret = SC_E_IO;
        goto Exit;
    }
    if ((rc = crt_pem_read_certs(cert_pem, cert_len, &chain, detail, sizeof(detail))) != 0) {
        snprintf(err, err_cap, "--cert %s: %s %s", src->cert_path, crt_error_message(rc), detail);
        goto Exit;
    }
    if ((rc = crt_pem_read_key(key_pem, key_len, &key)) != 0) {
        snprintf(err, err_cap, "--key %s: %s", src->key_path, crt_error_message(rc));
        goto Exit;
    }
    if ((rc = crt_bundle_from_pem(bundle_pem, bundle_len, &tls->bundle, detail, sizeof(detail))) != 0) {
        snprintf(err, err_cap, "--bundle %s: %s %s", src->bundle_path, crt_error_message(rc), detail);
        goto Exit;
    }
    X509 *leaf = sk_X509_value(chain, 0);
    memset(&res, 0, sizeof(res));
    if ((rc = crt_verify_chain(tls->bundle, leaf, chain, now, &opts, &res)) != 0) {
        snprintf(err, err_cap, "--cert %s: does not verify against --bundle %s: %s (%s)", src->cert_path,
                 src->bundle_path, crt_error_slug(rc), res.detail);
        goto Exit;
    }
    snprintf(tls->spiffe_id, sizeof(tls->spiffe_id), "%s", res.spiffe_id);
    if ((rc = crt_cert_info(leaf, &tls->leaf)) != 0) {
        snprintf(err, err_cap, "--cert %s: %s", src->cert_path, crt_error_message(rc));
        goto Exit;
    }
    size_t chain_pem_len = 0, bundle_pem_len = 0;
    for (int i = 0; i < sk_X509_num(chain); ++i) {
        if (crt_pem_write_cert(sk_X509_value(chain, i), &tls->chain_pem, &chain_pem_len) != 0) {
            snprintf(err, err_cap, "out of memory");
            goto Exit;
        }
    }
    STACK_OF(X509) *roots = crt_bundle_roots(tls->bundle);
    for (int i = 0; i < sk_X509_num(roots); ++i) {
        if (crt_pem_write_cert(sk_X509_value(roots, i), &tls->bundle_pem, &bundle_pem_len) != 0) {
            snprintf(err, err_cap, "out of memory");
            goto Exit;
        }
    }

    /* the inbound server context */
    SSL_CTX *ctx = tls->server_ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_ciphersuites(ctx, SC_TLS_CIPHERSUITES) ||
        !SSL_CTX_set1_groups_list(ctx, SC_TLS_GROUPS) || SSL_CTX_use_certificate(ctx, leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_cap, "--cert %s / --key %s: %s", src->cert_path, src->key_path,
                 crt_error_drain_openssl(ossl, sizeof(ossl)));
        goto Exit;
    }
    for (int i = 1; i < sk_X509_num(chain); ++i) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
            snprintf(err, err_cap, "--cert %s: %s", src->cert_path, crt_error_drain_openssl(ossl, sizeof(ossl)));
            goto Exit;
        }
    }
    static const unsigned char sid_ctx[] = "seam-inbound";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_timeout(ctx, SC_TLS_SESSION_TIMEOUT_S);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, on_cert_verify, tls);
    SSL_CTX_set_app_data(ctx, tls);
    SSL_CTX_set_info_callback(ctx, on_info);

    /* the outbound client context */
    static const unsigned char alpn_h2[] = {2, 'h', '2'};
    ctx = tls->client_ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_ciphersuites(ctx, SC_TLS_CIPHERSUITES) ||
        !SSL_CTX_set1_groups_list(ctx, SC_TLS_GROUPS) || SSL_CTX_use_certificate(ctx, leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0) {
        snprintf(err, err_cap, "--cert %s / --key %s (client): %s", src->cert_path, src->key_path,
                 crt_error_drain_openssl(ossl, sizeof(ossl)));
        goto Exit;
    }
    for (int i = 1; i < sk_X509_num(chain); ++i) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
            snprintf(err, err_cap, "--cert %s: %s", src->cert_path, crt_error_drain_openssl(ossl, sizeof(ossl)));
            goto Exit;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, on_client_cert_verify, tls);
    SSL_CTX_set_app_data(ctx, tls);
    /* sessions arrive in NewSessionTicket after the handshake; the hook stores them per upstream */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_client_new_session);
    SSL_CTX_set_info_callback(ctx, on_info);
    h2o_socket_ssl_set_session_cache(ctx, h2o_cache_create(H2O_CACHE_FLAG_MULTITHREADED, SC_TLS_CLIENT_SESSIONS,
                                                           (uint64_t)SC_TLS_SESSION_TIMEOUT_S * 1000,
                                                           h2o_socket_ssl_destroy_session_cache_entry));
    *out = tls;
    tls = NULL;
    ret = 0;
Exit:
    if (key_pem != NULL) {
        OPENSSL_cleanse(key_pem, key_len);
        free(key_pem);
    }
    free(cert_pem);
    free(bundle_pem);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    tls_free(tls);
    ERR_clear_error();
    return ret;
}
