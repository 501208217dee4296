/* The sidecar's TLS identity snapshot and the inbound peer verification. */
#include "sidecar/identity/tls.h"

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "certs/pem.h"
#include "sidecar/policy/error.h"

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

void sc_tls_ref(void *tls, int delta)
{
    (delta > 0 ? sc_tls_addref : sc_tls_release)(tls);
}

static int read_file(const char *path, const char *what, char **buf, size_t *len, char *err, size_t err_cap)
{
    if (crt_file_read(path, CRT_FILE_MAX, buf, len) != 0) {
        snprintf(err, err_cap, "%s %s: cannot read the file", what, path);
        return SC_E_IO;
    }
    return 0;
}

/* Appends every certificate of certs to *pem as PEM text. */
static int certs_to_pem(STACK_OF(X509) * certs, char **pem)
{
    size_t len = 0;
    for (int i = 0; i < sk_X509_num(certs); ++i)
        if (crt_pem_write_cert(sk_X509_value(certs, i), pem, &len) != 0)
            return -1;
    return 0;
}

/* One SSL_CTX with the mesh profile and the own certificate chain and key. */
static SSL_CTX *new_ctx(const SSL_METHOD *method, STACK_OF(X509) * chain, EVP_PKEY *key)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_ciphersuites(ctx, SC_TLS_CIPHERSUITES) ||
        !SSL_CTX_set1_groups_list(ctx, SC_TLS_GROUPS) || SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto Error;
    for (int i = 1; i < sk_X509_num(chain); ++i)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
            goto Error;
    /* an idle connection holds no TLS record buffers (about 34 KB each): they come back when bytes do */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
Error:
    SSL_CTX_free(ctx);
    return NULL;
}

/*
 * Bounds a new inbound session's lifetime by its peer certificate's: a
 * session outlives short-lived certificates, and a resumed handshake skips
 * the chain check, so an expired identity would otherwise keep connecting.
 * Past the bound the cache treats the session as gone and the client gets a
 * full handshake, which checks its certificate again.
 */
static int on_server_new_session(SSL *ssl, SSL_SESSION *session)
{
    X509 *peer = SSL_SESSION_get0_peer(session);
    int days = 0, secs = 0;
    long left = 0;

    (void)ssl;
    if (peer != NULL && ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(peer)))
        left = (long)days * 86400 + secs;
    if (left < 0)
        left = 0;
    if (left < SSL_SESSION_get_timeout(session))
        SSL_SESSION_set_timeout(session, left);
    return 0; /* the cache holds its own reference */
}

int sc_tls_build(const sc_tls_parts_t *parts, const sc_tls_hooks_t *hooks, time_t now, sc_tls_t **out, char *err,
                 size_t err_cap)
{
    char ossl[256];
    sc_tls_t *tls = NULL;
    crt_verify_result_t res;
    crt_verify_opts_t opts = {.usage = CRT_USAGE_ANY, .require_spiffe = 1};
    X509 *leaf = sk_X509_value(parts->chain, 0);
    int rc, ret = SC_E_IDENTITY;

    if ((tls = calloc(1, sizeof(*tls))) == NULL) {
        snprintf(err, err_cap, "out of memory");
        ret = SC_E_NOMEM;
        goto Exit;
    }
    tls->refcnt = 1;
    tls->loaded_at = now;
    tls->hooks = hooks;
    crt_bundle_addref(parts->bundle);
    tls->bundle = parts->bundle;
    memset(&res, 0, sizeof(res));
    if ((rc = crt_verify_chain(tls->bundle, leaf, parts->chain, now, &opts, &res)) != 0) {
        snprintf(err, err_cap, "%s: does not verify against %s: %s (%s)", parts->chain_source, parts->bundle_source,
                 crt_error_slug(rc), res.detail);
        goto Exit;
    }
    snprintf(tls->spiffe_id, sizeof(tls->spiffe_id), "%s", res.spiffe_id);
    if ((rc = crt_cert_info(leaf, &tls->leaf)) != 0) {
        snprintf(err, err_cap, "%s: %s", parts->chain_source, crt_error_message(rc));
        goto Exit;
    }
    if (certs_to_pem(parts->chain, &tls->chain_pem) != 0 || certs_to_pem(crt_bundle_roots(tls->bundle), &tls->bundle_pem) != 0) {
        snprintf(err, err_cap, "out of memory");
        ret = SC_E_NOMEM;
        goto Exit;
    }

    /* the inbound server context */
    SSL_CTX *ctx = tls->server_ctx = new_ctx(TLS_server_method(), parts->chain, parts->key);
    if (ctx == NULL) {
        snprintf(err, err_cap, "%s / %s: %s", parts->chain_source, parts->key_source,
                 crt_error_drain_openssl(ossl, sizeof(ossl)));
        goto Exit;
    }
    static const unsigned char sid_ctx[] = "seam-inbound";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_timeout(ctx, SC_TLS_SESSION_TIMEOUT_S);
    /*
     * Stateful resumption: the ticket a client gets names a session the server
     * keeps in memory, instead of carrying the whole session encrypted. Taking
     * a ticket back would decode the session and the peer certificate in it,
     * which under OpenSSL 3 cost about half of a resumed handshake's CPU (and
     * encrypting two tickets a third of a full one's). One ticket per handshake:
     * the mesh client keeps only the newest.
     */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, SC_TLS_SERVER_SESSIONS);
    SSL_CTX_sess_set_new_cb(ctx, on_server_new_session);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, on_cert_verify, tls);
    SSL_CTX_set_app_data(ctx, tls);
    SSL_CTX_set_info_callback(ctx, on_info);

    /* the outbound client context */
    static const unsigned char alpn_h2[] = {2, 'h', '2'};
    ctx = tls->client_ctx = new_ctx(TLS_client_method(), parts->chain, parts->key);
    if (ctx == NULL || SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0) {
        snprintf(err, err_cap, "%s / %s (client): %s", parts->chain_source, parts->key_source,
                 crt_error_drain_openssl(ossl, sizeof(ossl)));
        goto Exit;
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
    tls_free(tls);
    ERR_clear_error();
    return ret;
}

int sc_tls_load(const sc_tls_source_t *src, const sc_tls_hooks_t *hooks, time_t now, sc_tls_t **out, char *err,
                size_t err_cap)
{
    char *cert_pem = NULL, *key_pem = NULL, *bundle_pem = NULL, detail[256];
    char chain_source[SC_TLS_SOURCE_MAX], key_source[SC_TLS_SOURCE_MAX], bundle_source[SC_TLS_SOURCE_MAX];
    size_t cert_len = 0, key_len = 0, bundle_len = 0;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    crt_bundle_t *bundle = NULL;
    int rc, ret = SC_E_IDENTITY;

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
    if ((rc = crt_bundle_from_pem(bundle_pem, bundle_len, &bundle, detail, sizeof(detail))) != 0) {
        snprintf(err, err_cap, "--bundle %s: %s %s", src->bundle_path, crt_error_message(rc), detail);
        goto Exit;
    }
    snprintf(chain_source, sizeof(chain_source), "--cert %s", src->cert_path);
    snprintf(key_source, sizeof(key_source), "--key %s", src->key_path);
    snprintf(bundle_source, sizeof(bundle_source), "--bundle %s", src->bundle_path);
    sc_tls_parts_t parts = {chain, key, bundle, chain_source, key_source, bundle_source};
    ret = sc_tls_build(&parts, hooks, now, out, err, err_cap);
Exit:
    if (key_pem != NULL) {
        OPENSSL_cleanse(key_pem, key_len);
        free(key_pem);
    }
    free(cert_pem);
    free(bundle_pem);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    if (bundle != NULL)
        crt_bundle_release(bundle);
    ERR_clear_error();
    return ret;
}

int sc_tls_parts_of(const sc_tls_t *tls, sc_tls_parts_t *parts)
{
    SSL_CTX *ctx = tls->client_ctx;
    STACK_OF(X509) *extra = NULL;
    memset(parts, 0, sizeof(*parts));
    if ((parts->chain = sk_X509_new_null()) == NULL || SSL_CTX_get0_chain_certs(ctx, &extra) != 1)
        goto Error;
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (leaf == NULL || !X509_up_ref(leaf) || !sk_X509_push(parts->chain, leaf))
        goto Error;
    for (int i = 0; i < sk_X509_num(extra); ++i) {
        X509 *c = sk_X509_value(extra, i);
        if (!X509_up_ref(c) || !sk_X509_push(parts->chain, c))
            goto Error;
    }
    if ((parts->key = SSL_CTX_get0_privatekey(ctx)) == NULL || !EVP_PKEY_up_ref(parts->key))
        goto Error;
    crt_bundle_addref(tls->bundle);
    parts->bundle = tls->bundle;
    return 0;
Error:
    sk_X509_pop_free(parts->chain, X509_free);
    memset(parts, 0, sizeof(*parts));
    return -1;
}

void sc_tls_parts_clear(sc_tls_parts_t *parts)
{
    sk_X509_pop_free(parts->chain, X509_free);
    EVP_PKEY_free(parts->key);
    if (parts->bundle != NULL)
        crt_bundle_release(parts->bundle);
    memset(parts, 0, sizeof(*parts));
}
