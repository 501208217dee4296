/* seam-ca's HTTPS service: TLS set-up, request handlers, metrics, signals. */
#include "control/server.h"

#include <errno.h>
#include <h2o.h>
#include <h2o/socket/uv-binding.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "certs/error.h"
#include "certs/info.h"
#include "certs/pem.h"
#include "certs/verify.h"
#include "common/log.h"
#include "control/authority.h"
#include "control/error.h"
#include "control/journal.h"
#include "control/jwt.h"
#include "control/ratelimit.h"
#include "control/sign.h"
#include "control/tokens.h"

#define TLS_LINK_BUCKETS 1024
#define DETAIL_MAX 512

typedef enum {
    CRED_NONE = 0,
    CRED_JWT,
    CRED_JOIN_TOKEN,
    CRED_CLIENT_CERT,
    CRED__COUNT
} credential_kind_t;

static const char *const credential_names[CRED__COUNT] = {"none", "jwt", "join_token", "client_cert"};

/* Links an h2o socket to its SSL, since h2o 2.2.5 offers no accessor. */
struct st_ca_tls_link_t {
    struct st_ca_tls_link_t *next;
    struct st_ca_server_t *server;
    h2o_socket_t *sock;
    SSL *ssl;
};

typedef struct st_ca_server_t {
    const ca_server_config_t *config;
    uv_loop_t loop;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t serving_timer, drain_timer;
    int listening, stopping;
    int shutdown_requested;           /* h2o was asked to close its connections */
    uint64_t drain_started;           /* loop time of the stop signal */
    uint64_t drain_deadline;          /* loop time at which a drain gives up */
    unsigned active_connections;

    ca_authority_t authority;
    ca_jwks_t *jwks;
    ca_journal_t journal;
    ca_ratelimit_t *ratelimit;
    ca_ratelimit_t *bad_credentials;  /* refused credentials per client address */

    SSL_CTX *ssl_ctx;                 /* for new connections; old ones keep theirs */
    time_t serving_not_after;
    char serving_id[CRT_SPIFFE_ID_MAX + 1];
    int ssl_index;
    struct st_ca_tls_link_t *tls_links[TLS_LINK_BUCKETS];

    uint64_t sign_total[CA_ERROR_COUNT + 1][CRED__COUNT]; /* row 0: ok */
} ca_server_t;

typedef struct st_ca_handler_t {
    h2o_handler_t super;
    ca_server_t *server;
} ca_handler_t;

/* ---- socket <-> SSL links ------------------------------------------------ */

static size_t link_bucket(const h2o_socket_t *sock)
{
    return ((uintptr_t)sock >> 4) % TLS_LINK_BUCKETS;
}

static SSL *find_ssl(ca_server_t *server, h2o_socket_t *sock)
{
    for (struct st_ca_tls_link_t *l = server->tls_links[link_bucket(sock)]; l != NULL; l = l->next)
        if (l->sock == sock)
            return l->ssl;
    return NULL;
}

static void on_ssl_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    ca_server_t *server = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (server == NULL || SSL_get_ex_data(ssl, server->ssl_index) != NULL)
        return;
    /* h2o installs its socket as the data of the BIO it gives OpenSSL. */
    h2o_socket_t *sock = BIO_get_data(SSL_get_rbio(ssl));
    struct st_ca_tls_link_t *link = calloc(1, sizeof(*link));
    if (sock == NULL || link == NULL) {
        free(link);
        return;
    }
    link->server = server;
    link->sock = sock;
    link->ssl = (SSL *)ssl;
    if (!SSL_set_ex_data((SSL *)ssl, server->ssl_index, link)) {
        free(link);
        return;
    }
    size_t b = link_bucket(sock);
    link->next = server->tls_links[b];
    server->tls_links[b] = link;
}

/* Runs from SSL_free: the link dies with its SSL, so a reused socket address never finds a stale one. */
static void on_ssl_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct st_ca_tls_link_t *link = ptr, **slot;
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (link == NULL)
        return;
    for (slot = &link->server->tls_links[link_bucket(link->sock)]; *slot != NULL; slot = &(*slot)->next) {
        if (*slot == link) {
            *slot = link->next;
            break;
        }
    }
    free(link);
}

/* Accept any client certificate during the handshake: renewal requests are judged per request. */
static int on_verify_client(int preverify_ok, X509_STORE_CTX *store_ctx)
{
    (void)preverify_ok, (void)store_ctx;
    return 1;
}

/* ---- serving certificate ------------------------------------------------ */

static int record_issuance(ca_server_t *server, X509 *cert, const unsigned char serial[CRT_SERIAL_LEN],
                           const char *spiffe_id, time_t now, const char *credential, const char *ref, char *detail,
                           size_t detail_cap)
{
    ca_journal_record_t rec = {.issued_at = now};

    memcpy(rec.serial, serial, CRT_SERIAL_LEN);
    snprintf(rec.spiffe_id, sizeof(rec.spiffe_id), "%s", spiffe_id);
    snprintf(rec.credential, sizeof(rec.credential), "%s", credential);
    snprintf(rec.ref, sizeof(rec.ref), "%s", ref);
    if (crt_asn1_time_to_unix(X509_get0_notBefore(cert), &rec.not_before) != 0 ||
        crt_asn1_time_to_unix(X509_get0_notAfter(cert), &rec.not_after) != 0) {
        snprintf(detail, detail_cap, "issued certificate has undecodable validity");
        return CA_E_INTERNAL;
    }
    return ca_journal_append(&server->journal, &rec, detail, detail_cap);
}

/* Issues a fresh serving certificate and builds the SSL_CTX that new connections get. */
static int make_ssl_ctx(ca_server_t *server, time_t now, char *detail, size_t detail_cap)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    SSL_CTX *ssl_ctx = NULL;
    unsigned char serial[CRT_SERIAL_LEN];
    char ossl[256];
    int ret = -1;

    if (crt_key_generate(&key) != 0 || ca_journal_new_serial(&server->journal, serial) != 0) {
        snprintf(detail, detail_cap, "cannot make a key or serial for the serving certificate");
        goto Exit;
    }
    if (ca_authority_issue(&server->authority, key, server->serving_id, server->config->dns_names,
                           server->config->num_dns_names, now, server->config->serving_ttl, serial, &cert) != 0) {
        snprintf(detail, detail_cap, "cannot issue the serving certificate (has the intermediate expired?)");
        goto Exit;
    }
    if (record_issuance(server, cert, serial, server->serving_id, now, "serving", "", detail, detail_cap) != 0)
        goto Exit;
    if ((ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        goto SslError;
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_cipher_list(ssl_ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_set1_groups_list(ssl_ctx, "X25519:P-256") != 1 || SSL_CTX_use_certificate(ssl_ctx, cert) != 1 ||
        SSL_CTX_add1_chain_cert(ssl_ctx, server->authority.intermediate) != 1 ||
        SSL_CTX_use_PrivateKey(ssl_ctx, key) != 1 || SSL_CTX_check_private_key(ssl_ctx) != 1)
        goto SslError;
    /* Name the roots in the CertificateRequest so clients pick their mesh certificate. */
    for (size_t i = 0; i < (size_t)sk_X509_num(crt_bundle_roots(server->authority.bundle)); ++i)
        if (SSL_CTX_add_client_CA(ssl_ctx, sk_X509_value(crt_bundle_roots(server->authority.bundle), (int)i)) != 1)
            goto SslError;
    /* Request, never require, a client certificate: renewals present one, first issuance cannot. */
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, on_verify_client);
    SSL_CTX_set_info_callback(ssl_ctx, on_ssl_info);
    SSL_CTX_set_app_data(ssl_ctx, server);
    h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
    if (crt_asn1_time_to_unix(X509_get0_notAfter(cert), &server->serving_not_after) != 0)
        goto SslError;
    SSL_CTX_free(server->ssl_ctx);
    server->ssl_ctx = ssl_ctx;
    server->accept_ctx.ssl_ctx = ssl_ctx;
    ssl_ctx = NULL;
    ret = 0;
    goto Exit;

SslError:
    snprintf(detail, detail_cap, "TLS set-up failed: %s", crt_error_drain_openssl(ossl, sizeof(ossl)));
Exit:
    ERR_clear_error();
    SSL_CTX_free(ssl_ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ret;
}

static void on_serving_timer(uv_timer_t *timer)
{
    ca_server_t *server = timer->data;
    char detail[DETAIL_MAX];
    time_t now = time(NULL);
    int failed = make_ssl_ctx(server, now, detail, sizeof(detail)) != 0;

    if (failed)
        cmn_log_error("serving certificate renewal failed: %s; retrying in %d s", detail, CA_SERVING_RETRY_SECONDS);
    else
        cmn_log_info("serving certificate renewed for %s", server->serving_id);
    long delay = failed ? CA_SERVING_RETRY_SECONDS : (long)(server->serving_not_after - now) / 2;
    uv_timer_start(&server->serving_timer, on_serving_timer, (uint64_t)(delay < 1 ? 1 : delay) * 1000, 0);
}

/* ---- replies -------------------------------------------------------------- */

static void send_text(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
}

/* Sends obj (reference taken) as JSON. */
static void send_json(h2o_req_t *req, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (text == NULL) {
        static const char fallback[] = "{\"error\":\"nomem\",\"message\":\"out of memory\"}";
        send_text(req, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\n';
    send_text(req, status, "application/json", text, len + 1);
    free(text);
}

/* Details can quote token claims; keep every log line and message one printable line. */
static void sanitize_detail(char *detail)
{
    for (unsigned char *p = (unsigned char *)detail; *p != '\0'; ++p)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void send_error(h2o_req_t *req, int err, const char *detail)
{
    char message[DETAIL_MAX + 256];
    if (detail != NULL && detail[0] != '\0')
        snprintf(message, sizeof(message), "%s: %s", ca_error_message(err), detail);
    else
        snprintf(message, sizeof(message), "%s", ca_error_message(err));
    send_json(req, ca_error_status(err), json_pack("{s:s, s:s}", "error", ca_error_slug(err), "message", message));
}

/* The key the client's address is rate-limited under ("?" for an address family we do not know). */
static void client_key(h2o_req_t *req, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    if (req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0 ||
        ca_ratelimit_address_key((struct sockaddr *)&ss, buf, cap) != 0)
        snprintf(buf, cap, "?");
}

static void peer_name(h2o_req_t *req, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len != 0)
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(buf, cap, "%s%s%s:%s", ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "", port);
}

/* ---- POST /v1/sign -------------------------------------------------------- */

typedef struct st_ca_credential_t {
    credential_kind_t kind;
    char proven_id[CRT_SPIFFE_ID_MAX + 1];
    char ref[CA_JOURNAL_REF_MAX + 1];   /* journal reference: jti, token hash prefix, renewed serial */
    const char *join_token;             /* borrowed from the request */
    size_t join_token_len;
} ca_credential_t;

static int credential_from_jwt(ca_server_t *server, const char *token, size_t len, time_t now, ca_credential_t *cred,
                               char *detail, size_t detail_cap)
{
    ca_jwt_policy_t policy = {.issuer = server->config->issuer,
                              .audience = server->config->audience,
                              .now = now,
                              .skew_seconds = CA_JWT_SKEW_SECONDS};
    ca_jwt_claims_t claims;
    int err;

    cred->kind = CRED_JWT;
    if (server->jwks == NULL)
        return CA_E_JWT_DISABLED;
    if ((err = ca_jwt_verify(server->jwks, token, len, &policy, &claims, detail, detail_cap)) != 0)
        return err;
    if (crt_spiffe_from_service_account(server->config->trust_domain, claims.namespace_name, claims.service_account,
                                        cred->proven_id, sizeof(cred->proven_id)) != 0) {
        snprintf(detail, detail_cap, "sub %.200s does not make a valid SPIFFE ID", claims.sub);
        return CA_E_BAD_SUBJECT;
    }
    snprintf(cred->ref, sizeof(cred->ref), "jti:%s", claims.jti);
    return 0;
}

static int credential_from_join_token(ca_server_t *server, const char *token, size_t len, time_t now,
                                      ca_credential_t *cred, char *detail, size_t detail_cap)
{
    char hash[CA_TOKEN_HASH_HEX + 1];
    int err;

    cred->kind = CRED_JOIN_TOKEN;
    if (server->config->join_tokens == NULL)
        return CA_E_JOIN_TOKEN_DISABLED;
    err = ca_token_store_peek(server->config->join_tokens, token, len, now, cred->proven_id, detail, detail_cap);
    if (err != 0)
        return err;
    ca_token_hash(token, len, hash);
    snprintf(cred->ref, sizeof(cred->ref), "sha256:%.*s", CA_TOKEN_HASH_PREFIX, hash);
    cred->join_token = token;
    cred->join_token_len = len;
    return 0;
}

static int map_client_cert_error(int err)
{
    switch (err) {
    case CRT_E_EXPIRED:
    case CRT_E_NOT_YET_VALID:
        return CA_E_CLIENT_CERT_EXPIRED;
    case CRT_E_UNTRUSTED_ROOT:
    case CRT_E_MISSING_INTERMEDIATE:
    case CRT_E_BAD_SIGNATURE:
        return CA_E_CLIENT_CERT_UNTRUSTED;
    default:
        return CA_E_CLIENT_CERT_INVALID;
    }
}

static int credential_from_client_cert(ca_server_t *server, SSL *ssl, time_t now, ca_credential_t *cred, char *detail,
                                       size_t detail_cap)
{
    X509 *leaf = SSL_get_peer_certificate(ssl); /* a new reference */
    STACK_OF(X509) *untrusted = sk_X509_new_null(), *sent = SSL_get_peer_cert_chain(ssl);
    crt_verify_opts_t opts = {.usage = CRT_USAGE_CLIENT, .require_spiffe = 1, .trust_domain = server->config->trust_domain};
    crt_verify_result_t res;
    crt_cert_info_t info;
    int err = CA_E_NOMEM;

    if (leaf == NULL) {
        err = CA_E_MISSING_CREDENTIAL;
        goto Exit;
    }
    cred->kind = CRED_CLIENT_CERT;
    if (untrusted == NULL)
        goto Exit;
    /* Our own intermediate is always a candidate, so a leaf sent alone still chains. */
    for (int i = 0; sent != NULL && i < sk_X509_num(sent); ++i)
        if (X509_cmp(sk_X509_value(sent, i), leaf) != 0 && !sk_X509_push(untrusted, sk_X509_value(sent, i)))
            goto Exit;
    if (!sk_X509_push(untrusted, server->authority.intermediate))
        goto Exit;
    if ((err = crt_verify_chain(server->authority.bundle, leaf, untrusted, now, &opts, &res)) != 0) {
        snprintf(detail, detail_cap, "%s: %s", crt_error_slug(err), res.detail);
        err = map_client_cert_error(err);
        goto Exit;
    }
    snprintf(cred->proven_id, sizeof(cred->proven_id), "%s", res.spiffe_id);
    if (crt_cert_info(leaf, &info) == 0)
        snprintf(cred->ref, sizeof(cred->ref), "renews:%s", info.serial);
    err = 0;

Exit:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_free(leaf);
    return err;
}

/* Finds and checks the credential, in the order DESIGN.md gives. */
static int find_credential(ca_server_t *server, h2o_req_t *req, time_t now, ca_credential_t *cred, char *detail,
                           size_t detail_cap)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);

    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        static const char bearer[] = "bearer ";
        if (v.len <= sizeof(bearer) - 1 || !h2o_lcstris(v.base, sizeof(bearer) - 1, bearer, sizeof(bearer) - 1))
            return CA_E_BAD_AUTHORIZATION;
        const char *token = v.base + sizeof(bearer) - 1;
        size_t len = v.len - (sizeof(bearer) - 1);
        while (len > 0 && token[0] == ' ')
            ++token, --len;
        while (len > 0 && token[len - 1] == ' ')
            --len;
        if (ca_token_is_join_token(token, len))
            return credential_from_join_token(server, token, len, now, cred, detail, detail_cap);
        return credential_from_jwt(server, token, len, now, cred, detail, detail_cap);
    }
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    SSL *ssl = sock != NULL ? find_ssl(server, sock) : NULL;
    if (ssl == NULL)
        return CA_E_MISSING_CREDENTIAL;
    return credential_from_client_cert(server, ssl, now, cred, detail, detail_cap);
}

static json_t *roots_array(const ca_server_t *server)
{
    json_t *roots = json_array();
    for (size_t i = 0; roots != NULL && i < server->authority.num_roots; ++i)
        json_array_append_new(roots, json_string(server->authority.root_pems[i]));
    return roots;
}

/* The CA's own identity and every --reserved-id are never signed, whatever the credential. */
static int check_not_reserved(ca_server_t *server, const char *id, char *detail, size_t detail_cap)
{
    const char *own = server->serving_id, *matched = NULL;

    if (ca_sign_check_reserved(id, &own, 1, NULL) != 0) {
        snprintf(detail, detail_cap, "%s is the CA's own identity", id);
        return CA_E_RESERVED_IDENTITY;
    }
    if (ca_sign_check_reserved(id, server->config->reserved_ids, server->config->num_reserved_ids, &matched) != 0) {
        snprintf(detail, detail_cap, "%s is reserved by --reserved-id %s", id, matched);
        return CA_E_RESERVED_IDENTITY;
    }
    return 0;
}

static void count_sign(ca_server_t *server, int err, credential_kind_t kind)
{
    int row = err == 0 ? 0 : ca_error_index(err) + 1;
    if (row >= 0)
        ++server->sign_total[row][kind];
}

static void handle_sign(ca_server_t *server, h2o_req_t *req)
{
    ca_sign_request_t sign_req = {0};
    ca_credential_t cred = {0};
    crt_csr_t csr = {0};
    X509 *cert = NULL;
    unsigned char serial[CRT_SERIAL_LEN];
    char detail[DETAIL_MAX] = "", peer[NI_MAXHOST + 16], serial_hex[2 * CRT_SERIAL_LEN + 1], nb[32], na[32];
    char client[CA_RATE_ADDRESS_KEY_MAX];
    char *leaf_pem = NULL;
    size_t leaf_len = 0;
    time_t now = time(NULL);
    int err;

    peer_name(req, peer, sizeof(peer));
    client_key(req, client, sizeof(client));
    /* An address whose credentials keep failing is turned away before any parsing, lookup or signature check. */
    if (!ca_ratelimit_allows(server->bad_credentials, client, uv_now(&server->loop))) {
        snprintf(detail, sizeof(detail), "%s: more than %u per minute, %u at once", client,
                 server->config->bad_credential_per_minute, server->config->bad_credential_burst);
        err = CA_E_TOO_MANY_BAD_CREDENTIALS;
        goto Exit;
    }
    if (req->entity.len > CA_BODY_MAX) {
        snprintf(detail, sizeof(detail), "%zu bytes, at most %d", req->entity.len, CA_BODY_MAX);
        err = CA_E_BODY_TOO_LARGE;
        goto Exit;
    }
    if ((err = ca_sign_request_parse(req->entity.base != NULL ? req->entity.base : "", req->entity.len, &sign_req)) != 0)
        goto Exit;
    if ((err = ca_sign_check_csr(sign_req.csr_pem, sign_req.csr_len, server->config->trust_domain, &csr)) != 0)
        goto Exit;
    if ((err = check_not_reserved(server, csr.spiffe_id, detail, sizeof(detail))) != 0)
        goto Exit;
    if ((err = find_credential(server, req, now, &cred, detail, sizeof(detail))) != 0) {
        /* Only refusals are charged; a table full of other addresses leaves this one untracked. */
        if (ca_error_status(err) == 401)
            (void)ca_ratelimit_take(server->bad_credentials, client, uv_now(&server->loop));
        goto Exit;
    }
    if ((err = ca_sign_check_identity(csr.spiffe_id, cred.proven_id)) != 0) {
        snprintf(detail, sizeof(detail), "the CSR asks for %s, the %s proves %s", csr.spiffe_id,
                 credential_names[cred.kind], cred.proven_id);
        goto Exit;
    }
    if ((err = ca_authority_check(&server->authority, now, detail, sizeof(detail))) != 0)
        goto Exit;
    if (!ca_ratelimit_take(server->ratelimit, cred.proven_id, uv_now(&server->loop))) {
        snprintf(detail, sizeof(detail), "%s: at most %u per minute, %u at once", cred.proven_id,
                 server->config->rate_per_minute, server->config->rate_burst);
        err = CA_E_RATE_LIMITED;
        goto Exit;
    }
    /* A join token is spent before anything is signed, so a crash cannot let it be used twice. */
    if (cred.kind == CRED_JOIN_TOKEN &&
        (err = ca_token_store_consume(server->config->join_tokens, cred.join_token, cred.join_token_len, now,
                                      cred.proven_id, detail, sizeof(detail))) != 0)
        goto Exit;
    long ttl = ca_sign_ttl(sign_req.ttl_seconds, server->config->default_ttl, server->config->max_ttl);
    if ((err = ca_journal_new_serial(&server->journal, serial)) != 0 ||
        (err = ca_authority_issue(&server->authority, csr.public_key, csr.spiffe_id, NULL, 0, now, ttl, serial, &cert)) != 0)
        goto Exit;
    if ((err = record_issuance(server, cert, serial, csr.spiffe_id, now, credential_names[cred.kind], cred.ref, detail,
                               sizeof(detail))) != 0) {
        cmn_log_error("journal: %s; certificate for %s withheld", detail, csr.spiffe_id);
        detail[0] = '\0';
        err = CA_E_JOURNAL;
        goto Exit;
    }
    if (crt_pem_write_cert(cert, &leaf_pem, &leaf_len) != 0) {
        err = CA_E_NOMEM;
        goto Exit;
    }
    time_t not_before = 0, not_after = 0;
    if (crt_asn1_time_to_unix(X509_get0_notBefore(cert), &not_before) != 0 ||
        crt_asn1_time_to_unix(X509_get0_notAfter(cert), &not_after) != 0) {
        err = CA_E_INTERNAL;
        goto Exit;
    }
    crt_serial_hex(serial, serial_hex);
    crt_format_time(not_before, nb, sizeof(nb));
    crt_format_time(not_after, na, sizeof(na));
    cmn_log_info("issued %s serial %s until %s to %s (credential %s %s)", csr.spiffe_id, serial_hex, na, peer,
                 credential_names[cred.kind], cred.ref);
    send_json(req, 200,
              json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:o}", "spiffe_id", csr.spiffe_id, "serial", serial_hex,
                        "not_before", nb, "not_after", na, "chain", leaf_pem, server->authority.intermediate_pem,
                        "bundle", roots_array(server)));

Exit:
    count_sign(server, err, cred.kind);
    if (err != 0) {
        sanitize_detail(detail);
        cmn_log_warn("sign refused for %s: %s%s%s", peer, ca_error_slug(err), detail[0] ? ": " : "", detail);
        send_error(req, err, detail);
    }
    free(leaf_pem);
    X509_free(cert);
    crt_csr_clear(&csr);
    ca_sign_request_clear(&sign_req);
}

/* ---- GET endpoints -------------------------------------------------------- */

static void handle_bundle(ca_server_t *server, h2o_req_t *req)
{
    send_json(req, 200, json_pack("{s:s, s:o}", "trust_domain", server->config->trust_domain, "roots", roots_array(server)));
}

static void handle_healthz(ca_server_t *server, h2o_req_t *req)
{
    char why[DETAIL_MAX] = "";
    if (ca_authority_check(&server->authority, time(NULL), why, sizeof(why)) != 0) {
        send_json(req, 503, json_pack("{s:s, s:s}", "status", "unavailable", "reason", why));
        return;
    }
    send_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static int append_metric(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int append_metric(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

static void handle_metrics(ca_server_t *server, h2o_req_t *req)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    int bad = 0;

    bad |= append_metric(buf, cap, &len,
                         "# HELP seam_ca_sign_total Sign requests by result (ok or error code) and credential kind.\n"
                         "# TYPE seam_ca_sign_total counter\n");
    for (int row = 0; row <= CA_ERROR_COUNT; ++row) {
        for (int kind = 0; kind < CRED__COUNT; ++kind) {
            uint64_t v = server->sign_total[row][kind];
            /* Always show the success rows so dashboards see zeros rather than nothing. */
            if (v == 0 && !(row == 0 && kind != CRED_NONE))
                continue;
            const char *result = row == 0 ? "ok" : ca_error_slug(CA__ERROR_FIRST + row);
            bad |= append_metric(buf, cap, &len, "seam_ca_sign_total{result=\"%s\",credential=\"%s\"} %llu\n", result,
                                 credential_names[kind], (unsigned long long)v);
        }
    }
    bad |= append_metric(buf, cap, &len,
                         "# HELP seam_ca_intermediate_expiry_timestamp_seconds When the signing intermediate expires.\n"
                         "# TYPE seam_ca_intermediate_expiry_timestamp_seconds gauge\n"
                         "seam_ca_intermediate_expiry_timestamp_seconds %lld\n"
                         "# HELP seam_ca_root_expiry_timestamp_seconds When the root the intermediate chains to expires.\n"
                         "# TYPE seam_ca_root_expiry_timestamp_seconds gauge\n"
                         "seam_ca_root_expiry_timestamp_seconds %lld\n"
                         "# HELP seam_ca_serving_cert_expiry_timestamp_seconds When the CA's own TLS certificate expires.\n"
                         "# TYPE seam_ca_serving_cert_expiry_timestamp_seconds gauge\n"
                         "seam_ca_serving_cert_expiry_timestamp_seconds %lld\n"
                         "# HELP seam_ca_journal_records Certificates recorded in the journal.\n"
                         "# TYPE seam_ca_journal_records gauge\n"
                         "seam_ca_journal_records %zu\n"
                         "# HELP seam_ca_connections_active Open client connections.\n"
                         "# TYPE seam_ca_connections_active gauge\n"
                         "seam_ca_connections_active %u\n",
                         (long long)server->authority.intermediate_not_after, (long long)server->authority.root_not_after,
                         (long long)server->serving_not_after, server->journal.records, server->active_connections);
    if (bad) {
        send_error(req, CA_E_INTERNAL, "metrics do not fit");
        return;
    }
    send_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ca_server_t *server = ((ca_handler_t *)self)->server;
    h2o_iovec_t path = req->path_normalized;
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                 h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));

    if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/sign"))) {
        if (!is_post)
            send_error(req, CA_E_METHOD_NOT_ALLOWED, "use POST");
        else
            handle_sign(server, req);
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/bundle"))) {
        is_get ? handle_bundle(server, req) : send_error(req, CA_E_METHOD_NOT_ALLOWED, "use GET");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        is_get ? handle_healthz(server, req) : send_error(req, CA_E_METHOD_NOT_ALLOWED, "use GET");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        is_get ? handle_metrics(server, req) : send_error(req, CA_E_METHOD_NOT_ALLOWED, "use GET");
    } else {
        send_error(req, CA_E_NOT_FOUND, NULL);
    }
    return 0;
}

/* ---- listener, signals, lifecycle ---------------------------------------- */

static void on_connection_closed(uv_handle_t *handle)
{
    ca_server_t *server = handle->loop->data;
    --server->active_connections;
    free(handle);
}

static void on_refused_closed(uv_handle_t *handle)
{
    free(handle);
}

static void on_accept(uv_stream_t *listener, int status)
{
    ca_server_t *server = listener->data;
    uv_tcp_t *conn;

    if (status != 0)
        return;
    if ((conn = calloc(1, sizeof(*conn))) == NULL)
        return;
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_refused_closed);
        return;
    }
    if (server->active_connections >= server->config->max_connections) {
        uv_close((uv_handle_t *)conn, on_refused_closed);
        return;
    }
    ++server->active_connections;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_connection_closed);
    h2o_accept(&server->accept_ctx, sock);
}

static int parse_listen(const char *listen, struct sockaddr_storage *addr)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t host_len;
    char *end;

    if (colon == NULL || colon == listen || colon[1] == '\0')
        return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    host_len = (size_t)(colon - listen);
    if (listen[0] == '[') {
        if (host_len < 3 || listen[host_len - 1] != ']')
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(host_len - 2), listen + 1);
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0 ? 0 : -1;
    }
    snprintf(host, sizeof(host), "%.*s", (int)host_len, listen);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0 ? 0 : -1;
}

/* Ticks while draining: stop once every connection has closed, or at the deadline. */
static void on_drain_tick(uv_timer_t *timer)
{
    ca_server_t *server = timer->data;
    uint64_t now = uv_now(timer->loop);
    /* After a shutdown request h2o re-sends HTTP/2 GOAWAY from a one-second timer; the context cannot be disposed before. */
    int settled = !server->shutdown_requested || now >= server->drain_started + CA_GOAWAY_SETTLE_MS;
    if ((server->active_connections == 0 && settled) || now >= server->drain_deadline)
        uv_stop(timer->loop);
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    ca_server_t *server = sig->data;
    if (server->stopping)
        return;
    server->stopping = 1;
    cmn_log_info("signal %d: stopping (no new connections, %u open)", signum, server->active_connections);
    if (server->listening)
        uv_close((uv_handle_t *)&server->listener, NULL);
    server->listening = 0;
    uv_timer_stop(&server->serving_timer);
    uv_signal_stop(&server->sigterm);
    uv_signal_stop(&server->sigint);
    uv_signal_stop(&server->sighup);
    /*
     * HTTP/1.1 connections close after their current request, HTTP/2 ones get
     * GOAWAY; idle ones fall to the idle timeout, so the deadline bounds the drain.
     */
    if (server->active_connections != 0) {
        h2o_context_request_shutdown(&server->ctx);
        server->shutdown_requested = 1;
    }
    server->drain_started = uv_now(&server->loop);
    server->drain_deadline = server->drain_started + server->config->idle_timeout_ms + CA_DRAIN_MS;
    server->drain_timer.data = server;
    uv_timer_start(&server->drain_timer, on_drain_tick, 0, CA_DRAIN_TICK_MS);
}

/* Reads the JWKS file into *out (a new set). */
static int load_jwks(ca_server_t *server, ca_jwks_t **out, char *detail, size_t detail_cap)
{
    char *text = NULL, why[256];
    size_t len = 0;
    int ret = -1;

    if (crt_file_read(server->config->jwks_path, CA_JWKS_MAX, &text, &len) != 0) {
        snprintf(detail, detail_cap, "%s: %s", server->config->jwks_path,
                 errno != 0 ? strerror(errno) : "cannot be read (or too large)");
        return -1;
    }
    if (ca_jwks_parse(text, len, out, why, sizeof(why)) != 0) {
        snprintf(detail, detail_cap, "%s: %s", server->config->jwks_path, why);
        goto Exit;
    }
    ret = 0;

Exit:
    free(text);
    return ret;
}

/* SIGHUP: re-read the JWKS (the cluster rotates its signing keys); a bad file keeps the old keys. */
static void on_reload_signal(uv_signal_t *sig, int signum)
{
    ca_server_t *server = sig->data;
    ca_jwks_t *fresh = NULL;
    char detail[DETAIL_MAX];
    (void)signum;
    if (server->config->jwks_path == NULL)
        return;
    if (load_jwks(server, &fresh, detail, sizeof(detail)) != 0) {
        cmn_log_error("SIGHUP: --jwks %s; keeping the previous keys", detail);
        return;
    }
    ca_jwks_free(server->jwks);
    server->jwks = fresh;
    cmn_log_info("SIGHUP: reloaded %zu key(s) from %s", ca_jwks_num_keys(fresh), server->config->jwks_path);
}

static void on_close_noop(uv_handle_t *handle)
{
    (void)handle;
}

int ca_server_run(const ca_server_config_t *config)
{
    ca_server_t *server = calloc(1, sizeof(*server));
    struct sockaddr_storage addr = {0};
    char detail[DETAIL_MAX] = "";
    int exit_code = 1, loop_ready = 0, ctx_ready = 0, handles_ready = 0, r;
    time_t now = time(NULL);

    if (server == NULL) {
        cmn_log_error("out of memory");
        return 1;
    }
    server->config = config;
    server->journal.fd = -1;
    server->ssl_index = -1;
    h2o_config_init(&server->globalconf);
    if (parse_listen(config->listen, &addr) != 0) {
        cmn_log_error("--listen %s: not HOST:PORT with a numeric IPv4 or [IPv6] address", config->listen);
        goto Exit;
    }
    if (crt_spiffe_from_service_account(config->trust_domain, CA_SERVING_NAMESPACE, CA_SERVING_SERVICE_ACCOUNT,
                                        server->serving_id, sizeof(server->serving_id)) != 0) {
        cmn_log_error("--trust-domain %s: not a valid trust domain", config->trust_domain);
        goto Exit;
    }
    if (ca_authority_load(config->ca_dir, config->trust_domain, now, &server->authority, detail, sizeof(detail)) != 0) {
        cmn_log_error("--ca-dir: %s", detail);
        goto Exit;
    }
    if (ca_authority_check(&server->authority, now, detail, sizeof(detail)) != 0)
        cmn_log_warn("--ca-dir %s: %s; the CA will refuse to sign", config->ca_dir, detail);
    if (config->jwks_path != NULL && load_jwks(server, &server->jwks, detail, sizeof(detail)) != 0) {
        cmn_log_error("--jwks %s", detail);
        goto Exit;
    }
    if (ca_journal_open(config->journal_path, &server->journal, detail, sizeof(detail)) != 0) {
        cmn_log_error("--journal %s", detail);
        goto Exit;
    }
    if (server->journal.corrupt_lines != 0)
        cmn_log_warn("journal %s: %zu corrupt line(s) skipped", config->journal_path, server->journal.corrupt_lines);
    if ((server->ratelimit = ca_ratelimit_new(config->rate_per_minute, config->rate_burst, CA_RATE_MAX_IDENTITIES)) == NULL ||
        (server->bad_credentials = ca_ratelimit_new(config->bad_credential_per_minute, config->bad_credential_burst,
                                                    CA_RATE_MAX_ADDRESSES)) == NULL) {
        cmn_log_error("out of memory");
        goto Exit;
    }
    if ((server->ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, on_ssl_ex_free)) < 0) {
        cmn_log_error("cannot allocate TLS ex-data index");
        goto Exit;
    }
    if (make_ssl_ctx(server, now, detail, sizeof(detail)) != 0) {
        cmn_log_error("serving certificate: %s", detail);
        goto Exit;
    }

    server->globalconf.max_request_entity_size = CA_BODY_HARD_MAX;
    server->globalconf.handshake_timeout = config->idle_timeout_ms;
    server->globalconf.http1.req_timeout = config->idle_timeout_ms;
    server->globalconf.http2.idle_timeout = config->idle_timeout_ms;
    server->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("seam-ca"));
    h2o_hostconf_t *hostconf = h2o_config_register_host(&server->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    ca_handler_t *handler = (ca_handler_t *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = server;

    if ((r = uv_loop_init(&server->loop)) != 0) {
        cmn_log_error("event loop: %s", uv_strerror(r));
        goto Exit;
    }
    loop_ready = 1;
    server->loop.data = server;
    h2o_context_init(&server->ctx, &server->loop, &server->globalconf);
    ctx_ready = 1;
    server->accept_ctx.ctx = &server->ctx;
    server->accept_ctx.hosts = server->globalconf.hosts;

    uv_tcp_init(&server->loop, &server->listener);
    server->listener.data = server;
    server->listening = 1;
    if ((r = uv_tcp_bind(&server->listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (r = uv_listen((uv_stream_t *)&server->listener, 128, on_accept)) != 0) {
        cmn_log_error("--listen %s: %s", config->listen, uv_strerror(r));
        goto Exit;
    }
    uv_timer_init(&server->loop, &server->serving_timer);
    handles_ready = 1;
    server->serving_timer.data = server;
    uv_timer_init(&server->loop, &server->drain_timer);
    uv_signal_init(&server->loop, &server->sigterm);
    uv_signal_init(&server->loop, &server->sigint);
    uv_signal_init(&server->loop, &server->sighup);
    server->sigterm.data = server->sigint.data = server->sighup.data = server;
    uv_signal_start(&server->sighup, on_reload_signal, SIGHUP);
    uv_signal_start(&server->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&server->sigint, on_stop_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    uv_timer_start(&server->serving_timer, on_serving_timer,
                   (uint64_t)((server->serving_not_after - now) / 2 > 0 ? (server->serving_not_after - now) / 2 : 1) * 1000, 0);

    cmn_log_info("serving %s on %s as %s (journal %s: %zu records, jwks %s, join tokens %s)", config->trust_domain,
                 config->listen, server->serving_id, config->journal_path, server->journal.records,
                 config->jwks_path != NULL ? config->jwks_path : "off",
                 config->join_tokens_path != NULL ? config->join_tokens_path : "off");
    uv_run(&server->loop, UV_RUN_DEFAULT);
    exit_code = 0;

Exit:
    if (loop_ready) {
        if (server->listening)
            uv_close((uv_handle_t *)&server->listener, NULL);
        server->listening = 0;
        if (handles_ready) {
            uv_handle_t *own[] = {(uv_handle_t *)&server->serving_timer, (uv_handle_t *)&server->drain_timer,
                                  (uv_handle_t *)&server->sigterm, (uv_handle_t *)&server->sigint,
                                  (uv_handle_t *)&server->sighup};
            for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); ++i)
                if (!uv_is_closing(own[i]))
                    uv_close(own[i], on_close_noop);
        }
        if (server->active_connections != 0) {
            /* h2o cannot dispose a context under live connections; the process exit reclaims them. */
            cmn_log_warn("%u connection(s) still open at exit", server->active_connections);
            return exit_code;
        }
        if (ctx_ready)
            h2o_context_dispose(&server->ctx);
        uv_run(&server->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&server->loop) != 0)
            cmn_log_warn("event loop still had handles at exit");
    }
    h2o_config_dispose(&server->globalconf);
    SSL_CTX_free(server->ssl_ctx);
    if (server->ssl_index >= 0)
        CRYPTO_free_ex_index(CRYPTO_EX_INDEX_SSL, server->ssl_index);
    ca_ratelimit_free(server->ratelimit);
    ca_ratelimit_free(server->bad_credentials);
    if (server->journal.path != NULL)
        ca_journal_close(&server->journal);
    ca_jwks_free(server->jwks);
    ca_authority_dispose(&server->authority);
    free(server);
    return exit_code;
}
