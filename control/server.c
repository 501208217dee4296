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
#include "sidecar/http/front.h"
#include "sidecar/http/sockio.h"
#include "control/authority.h"
#include "control/error.h"
#include "control/journal.h"
#include "control/jwt.h"
#include "control/ratelimit.h"
#include "control/sign.h"
#include "control/tokens.h"

#define DETAIL_MAX 512

typedef enum {
    CRED_NONE = 0,
    CRED_JWT,
    CRED_JOIN_TOKEN,
    CRED_CLIENT_CERT,
    CRED__COUNT
} credential_kind_t;

static const char *const credential_names[CRED__COUNT] = {"none", "jwt", "join_token", "client_cert"};

/* One client connection, from accept until its libuv handle closes. */
typedef struct st_ca_conn_t {
    uv_tcp_t tcp;                        /* the handle's close callback finds the record from it */
    struct st_ca_server_t *server;
    h2o_socket_t *sock;                  /* NULL once h2o closed it */
    SSL *ssl;                            /* set when the handshake completes; owned by sock */
    SSL_CTX *ssl_ctx;                    /* a reference to the serving context the handshake uses: h2o 2.2.5
                                            makes the connection's SSL only when its first bytes arrive, and a
                                            renewal may have replaced server->ssl_ctx by then */
    h2o_timeout_entry_t handshake_entry; /* linked while the handshake runs */
} ca_conn_t;

typedef struct st_ca_server_t {
    const ca_server_config_t *config;
    uv_loop_t loop;
    sc_front_t front;                 /* HTTP/1.1 and HTTP/2 over the TLS connections */
    h2o_timeout_t handshake_timeout;  /* config->idle_timeout_ms */
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t serving_timer, drain_timer;
    int listening, stopping;
    uint64_t drain_deadline;          /* loop time at which a drain gives up */
    unsigned active_connections;      /* accepted and not yet closed, handshaking ones included */

    ca_authority_t authority;
    ca_jwks_t *jwks;
    ca_journal_t journal;
    ca_ratelimit_t *ratelimit;
    ca_ratelimit_t *bad_credentials;  /* refused credentials per client address */

    SSL_CTX *ssl_ctx;                 /* for new connections; old ones keep theirs */
    time_t serving_not_after;
    char serving_id[CRT_SPIFFE_ID_MAX + 1];

    uint64_t sign_total[CA_ERROR_COUNT + 1][CRED__COUNT]; /* row 0: ok */
} ca_server_t;

/* h2 first; a client that names neither still gets HTTP/1.1. The list outlives every SSL_CTX. */
static const h2o_iovec_t alpn_protocols[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};

static ca_server_t *server_of_front(sc_front_t *front)
{
    return H2O_STRUCT_FROM_MEMBER(ca_server_t, front, front);
}

/* ---- TLS ------------------------------------------------------------------ */

/*
 * h2o 2.2.5 offers no accessor for a socket's SSL, but it installs the socket
 * as the data of the BIO it gives OpenSSL, and the socket's on_close.data is
 * our connection record: the record learns its SSL when the handshake ends.
 */
static void on_ssl_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    BIO *bio = SSL_get_rbio(ssl);
    h2o_socket_t *sock = bio != NULL ? BIO_get_data(bio) : NULL;
    ca_conn_t *conn = sock != NULL ? sock->on_close.data : NULL;
    if (conn != NULL)
        conn->ssl = (SSL *)ssl;
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
    h2o_ssl_register_alpn_protocols(ssl_ctx, alpn_protocols);
    if (crt_asn1_time_to_unix(X509_get0_notAfter(cert), &server->serving_not_after) != 0)
        goto SslError;
    SSL_CTX_free(server->ssl_ctx);
    server->ssl_ctx = ssl_ctx;
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

/* Answers ex with body (copied) and no caching. */
static void send_text(sc_exchange_t *ex, int status, const char *content_type, const char *body, size_t len)
{
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    ex->status = status;
    ex->res_content_length = len; /* stated for HEAD too, as for GET */
    sc_http_fields_add_ref(&ex->pool, &ex->res_headers, h2o_iovec_init(H2O_STRLIT("content-type")),
                           h2o_iovec_init(content_type, strlen(content_type)));
    sc_http_fields_add_ref(&ex->pool, &ex->res_headers, h2o_iovec_init(H2O_STRLIT("cache-control")),
                           h2o_iovec_init(H2O_STRLIT("no-store")));
    sc_exchange_send(ex, &buf, 1, SC_SEND_FINAL);
}

/* Sends obj (reference taken) as JSON. */
static void send_json(sc_exchange_t *ex, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (text == NULL) {
        static const char fallback[] = "{\"error\":\"nomem\",\"message\":\"out of memory\"}";
        send_text(ex, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\n';
    send_text(ex, status, "application/json", text, len + 1);
    free(text);
}

/* Details can quote token claims; keep every log line and message one printable line. */
static void sanitize_detail(char *detail)
{
    for (unsigned char *p = (unsigned char *)detail; *p != '\0'; ++p)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void send_error(sc_exchange_t *ex, int err, const char *detail)
{
    char message[DETAIL_MAX + 256];
    if (detail != NULL && detail[0] != '\0')
        snprintf(message, sizeof(message), "%s: %s", ca_error_message(err), detail);
    else
        snprintf(message, sizeof(message), "%s", ca_error_message(err));
    send_json(ex, ca_error_status(err), json_pack("{s:s, s:s}", "error", ca_error_slug(err), "message", message));
}

/* The key the client's address is rate-limited under ("?" for an address family we do not know). */
static void client_key(sc_exchange_t *ex, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    if (sc_exchange_peername(ex, (struct sockaddr *)&ss, sizeof(ss)) == 0 ||
        ca_ratelimit_address_key((struct sockaddr *)&ss, buf, cap) != 0)
        snprintf(buf, cap, "?");
}

static void peer_name(sc_exchange_t *ex, char *buf, size_t cap)
{
    struct sockaddr_storage ss = {0};
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    socklen_t len = sc_exchange_peername(ex, (struct sockaddr *)&ss, sizeof(ss));
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
static int find_credential(ca_server_t *server, sc_exchange_t *ex, time_t now, ca_credential_t *cred, char *detail,
                           size_t detail_cap)
{
    ssize_t i = sc_http_fields_find(&ex->headers, H2O_STRLIT("authorization"), -1);

    if (i >= 0) {
        h2o_iovec_t v = ex->headers.entries[i].value;
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
    ca_conn_t *conn = ex->conn_data;
    SSL *ssl = conn != NULL && conn->sock != NULL ? conn->ssl : NULL;
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

/* Counts, logs and answers a refused sign request; detail (may be "") is sanitised in place. */
static void refuse_sign(ca_server_t *server, sc_exchange_t *ex, int err, credential_kind_t kind, const char *peer,
                        char *detail)
{
    count_sign(server, err, kind);
    sanitize_detail(detail);
    cmn_log_warn("sign refused for %s: %s%s%s", peer, ca_error_slug(err), detail[0] ? ": " : "", detail);
    send_error(ex, err, detail);
}

/* Signs the CSR in body (the whole request body, borrowed) and answers ex. */
static void handle_sign(ca_server_t *server, sc_exchange_t *ex, const char *body, size_t body_len)
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

    peer_name(ex, peer, sizeof(peer));
    client_key(ex, client, sizeof(client));
    /* An address whose credentials keep failing is turned away before any parsing, lookup or signature check. */
    if (!ca_ratelimit_allows(server->bad_credentials, client, uv_now(&server->loop))) {
        snprintf(detail, sizeof(detail), "%s: more than %u per minute, %u at once", client,
                 server->config->bad_credential_per_minute, server->config->bad_credential_burst);
        err = CA_E_TOO_MANY_BAD_CREDENTIALS;
        goto Exit;
    }
    if ((err = ca_sign_request_parse(body != NULL ? body : "", body_len, &sign_req)) != 0)
        goto Exit;
    if ((err = ca_sign_check_csr(sign_req.csr_pem, sign_req.csr_len, server->config->trust_domain, &csr)) != 0)
        goto Exit;
    if ((err = check_not_reserved(server, csr.spiffe_id, detail, sizeof(detail))) != 0)
        goto Exit;
    if ((err = find_credential(server, ex, now, &cred, detail, sizeof(detail))) != 0) {
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
    send_json(ex, 200,
              json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:o}", "spiffe_id", csr.spiffe_id, "serial", serial_hex,
                        "not_before", nb, "not_after", na, "chain", leaf_pem, server->authority.intermediate_pem,
                        "bundle", roots_array(server)));

Exit:
    if (err != 0)
        refuse_sign(server, ex, err, cred.kind, peer, detail);
    else
        count_sign(server, 0, cred.kind);
    free(leaf_pem);
    X509_free(cert);
    crt_csr_clear(&csr);
    ca_sign_request_clear(&sign_req);
}

/* ---- GET endpoints -------------------------------------------------------- */

static void handle_bundle(ca_server_t *server, sc_exchange_t *ex)
{
    send_json(ex, 200, json_pack("{s:s, s:o}", "trust_domain", server->config->trust_domain, "roots", roots_array(server)));
}

static void handle_healthz(ca_server_t *server, sc_exchange_t *ex)
{
    char why[DETAIL_MAX] = "";
    if (ca_authority_check(&server->authority, time(NULL), why, sizeof(why)) != 0) {
        send_json(ex, 503, json_pack("{s:s, s:s}", "status", "unavailable", "reason", why));
        return;
    }
    send_json(ex, 200, json_pack("{s:s}", "status", "ok"));
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

static void handle_metrics(ca_server_t *server, sc_exchange_t *ex)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = h2o_mem_alloc_pool(&ex->pool, cap);
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
        send_error(ex, CA_E_INTERNAL, "metrics do not fit");
        return;
    }
    send_text(ex, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}

/* ---- requests ------------------------------------------------------------ */

static void on_sign_proceed(sc_exchange_t *ex)
{
    (void)ex; /* every answer goes out whole (SC_SEND_FINAL) */
}

/* A sign request while its body arrives; lives in the exchange's pool. */
typedef struct st_ca_sign_t {
    ca_server_t *server;
    int too_large; /* past CA_BODY_MAX: the rest is read and dropped, then 413 */
} ca_sign_t;

/* The client went away while its body was on its way: nothing is answered. */
static void on_sign_stop(sc_exchange_t *ex)
{
    ex->body.on_change = NULL;
}

static const sc_exchange_ops_t sign_ops = {.on_proceed = on_sign_proceed, .on_stop = on_sign_stop};

/*
 * More of a sign request's body arrived. It stays in the front end's buffer
 * until it is complete, and only while it is within CA_BODY_MAX: past that
 * (or when its declared length is) every further byte is dropped as it
 * comes, and the 413 goes out once the client has sent it all. Answering at
 * once would end the stream under a client still uploading, which curl
 * reports as a failed transfer instead of the 413; the front end's own
 * bound (CA_BODY_HARD_MAX) and timeouts cap what is read.
 */
static void on_sign_body(void *data)
{
    sc_exchange_t *ex = data;
    ca_sign_t *sign = ex->data;
    char detail[DETAIL_MAX] = "", peer[NI_MAXHOST + 16];

    if (ex->body.failed) {
        ex->body.on_change = NULL; /* the client is gone or broke the framing: no one to answer */
        return;
    }
    if (ex->body.received > CA_BODY_MAX)
        sign->too_large = 1;
    if (sign->too_large)
        sc_exchange_consume(ex, ex->body.buf->size);
    if (!ex->body.complete)
        return;
    ex->body.on_change = NULL;
    if (sign->too_large) {
        peer_name(ex, peer, sizeof(peer));
        snprintf(detail, sizeof(detail), "%llu bytes, at most %d", (unsigned long long)ex->body.received, CA_BODY_MAX);
        refuse_sign(sign->server, ex, CA_E_BODY_TOO_LARGE, CRED_NONE, peer, detail);
        return;
    }
    handle_sign(sign->server, ex, ex->body.buf->bytes, ex->body.buf->size);
}

/* POST /v1/sign: reads the body as it arrives (on_sign_body). */
static void start_sign(ca_server_t *server, sc_exchange_t *ex)
{
    ca_sign_t *sign = h2o_mem_alloc_pool(&ex->pool, sizeof(*sign));

    sign->server = server;
    sign->too_large = ex->body.length != UINT64_MAX && ex->body.length > CA_BODY_MAX;
    ex->ops = &sign_ops;
    ex->data = sign;
    ex->body.on_change = on_sign_body;
    ex->body.data = ex;
    if (ex->body.complete || ex->body.failed || ex->body.buf->size != 0)
        on_sign_body(ex);
}

static void on_request(sc_front_t *front, sc_exchange_t *ex)
{
    ca_server_t *server = server_of_front(front);
    /* the path as h2o's server matched it: dot segments resolved, the query left off */
    size_t query_at;
    size_t *norm_indexes;
    h2o_iovec_t path = h2o_url_normalize_path(&ex->pool, ex->path.base, ex->path.len, &query_at, &norm_indexes);
    int is_get = h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("GET")) ||
                 h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("HEAD"));
    int is_post = h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("POST"));

    if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/sign"))) {
        if (!is_post)
            send_error(ex, CA_E_METHOD_NOT_ALLOWED, "use POST");
        else
            start_sign(server, ex);
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/bundle"))) {
        is_get ? handle_bundle(server, ex) : send_error(ex, CA_E_METHOD_NOT_ALLOWED, "use GET");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        is_get ? handle_healthz(server, ex) : send_error(ex, CA_E_METHOD_NOT_ALLOWED, "use GET");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        is_get ? handle_metrics(server, ex) : send_error(ex, CA_E_METHOD_NOT_ALLOWED, "use GET");
    } else {
        send_error(ex, CA_E_NOT_FOUND, NULL);
    }
}

/* seam-ca keeps no access log: issuances and refusals are logged where they are decided. */
static void on_log(sc_front_t *front, sc_exchange_t *ex)
{
    (void)front, (void)ex;
}

static const sc_front_handler_t front_handler = {.on_request = on_request, .on_log = on_log};

/* ---- listener, signals, lifecycle ---------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *handle)
{
    ca_conn_t *conn = H2O_STRUCT_FROM_MEMBER(ca_conn_t, tcp, (uv_tcp_t *)handle);
    --conn->server->active_connections;
    SSL_CTX_free(conn->ssl_ctx);
    free(conn);
}

/* h2o closed the socket (its SSL goes with it); the handle closes next. */
static void on_sock_closed(void *data)
{
    ca_conn_t *conn = data;
    conn->sock = NULL;
    conn->ssl = NULL;
    if (h2o_timeout_is_linked(&conn->handshake_entry))
        h2o_timeout_unlink(&conn->handshake_entry);
}

static void on_refused_closed(uv_handle_t *handle)
{
    free(handle);
}

/* The handshake is over: serve HTTP as ALPN chose (h2, else HTTP/1.1). */
static void on_handshake(h2o_socket_t *sock, const char *err)
{
    ca_conn_t *conn = sock->data;
    if (conn == NULL)
        return; /* timed out and closed */
    if (h2o_timeout_is_linked(&conn->handshake_entry))
        h2o_timeout_unlink(&conn->handshake_entry);
    if (err != NULL) {
        sc_sockio_close(sock);
        return;
    }
    h2o_iovec_t alpn = h2o_socket_ssl_get_selected_protocol(sock);
    sc_front_serve(&conn->server->front, sock,
                   h2o_memis(alpn.base, alpn.len, H2O_STRLIT("h2")) ? SC_FRONT_HTTP2 : SC_FRONT_HTTP1);
}

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    ca_conn_t *conn = H2O_STRUCT_FROM_MEMBER(ca_conn_t, handshake_entry, entry);
    h2o_socket_t *sock = conn->sock;
    sock->data = NULL;
    sc_sockio_close(sock);
}

static void on_accept(uv_stream_t *listener, int status)
{
    ca_server_t *server = listener->data;
    ca_conn_t *conn;

    if (status != 0)
        return;
    if ((conn = calloc(1, sizeof(*conn))) == NULL)
        return;
    uv_tcp_init(listener->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || server->active_connections >= server->config->max_connections) {
        uv_close((uv_handle_t *)&conn->tcp, on_refused_closed);
        return;
    }
    ++server->active_connections;
    conn->server = server;
    uv_tcp_nodelay(&conn->tcp, 1); /* answers are one small write each */
    conn->sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_handle_closed);
    conn->sock->on_close.cb = on_sock_closed;
    conn->sock->on_close.data = conn; /* the front end hands it to each exchange as conn_data */
    conn->sock->data = conn;
    conn->handshake_entry.cb = on_handshake_timeout;
    h2o_timeout_link(&server->loop, &server->handshake_timeout, &conn->handshake_entry);
    SSL_CTX_up_ref(server->ssl_ctx);
    conn->ssl_ctx = server->ssl_ctx;
    h2o_socket_ssl_handshake(conn->sock, conn->ssl_ctx, NULL, on_handshake);
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
    /* a connection counts until its handle closed, so none of the front end's timers is left running */
    if (server->active_connections == 0 || uv_now(timer->loop) >= server->drain_deadline)
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
     * Idle HTTP/1.1 connections close now and busy ones after their current
     * request; HTTP/2 ones get GOAWAY and close once their streams are done.
     * A handshake under way falls to its timeout, so the deadline bounds the drain.
     */
    sc_front_shutdown(&server->front);
    server->drain_deadline = uv_now(&server->loop) + server->config->idle_timeout_ms + CA_DRAIN_MS;
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
    int exit_code = 1, loop_ready = 0, front_ready = 0, handles_ready = 0, r;
    time_t now = time(NULL);

    if (server == NULL) {
        cmn_log_error("out of memory");
        return 1;
    }
    server->config = config;
    server->journal.fd = -1;
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
    if (make_ssl_ctx(server, now, detail, sizeof(detail)) != 0) {
        cmn_log_error("serving certificate: %s", detail);
        goto Exit;
    }

    if ((r = uv_loop_init(&server->loop)) != 0) {
        cmn_log_error("event loop: %s", uv_strerror(r));
        goto Exit;
    }
    loop_ready = 1;
    server->loop.data = server;
    /* The front end refuses bodies past CA_BODY_HARD_MAX by itself; the sign handler's bound is CA_BODY_MAX. */
    sc_front_init(&server->front, &server->loop, &front_handler, server, 1, 0, CA_H2_MAX_STREAMS, CA_BODY_HARD_MAX,
                  config->idle_timeout_ms, "seam-ca");
    sc_front_set_h1_idle(&server->front, config->idle_timeout_ms);
    h2o_timeout_init(&server->loop, &server->handshake_timeout, config->idle_timeout_ms);
    front_ready = 1;

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
            /* their timers still point into the front end; the process exit reclaims them */
            cmn_log_warn("%u connection(s) still open at exit", server->active_connections);
            return exit_code;
        }
        if (front_ready) {
            sc_front_dispose(&server->front);
            h2o_timeout_dispose(&server->loop, &server->handshake_timeout);
        }
        uv_run(&server->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&server->loop) != 0)
            cmn_log_warn("event loop still had handles at exit");
    }
    SSL_CTX_free(server->ssl_ctx);
    ca_ratelimit_free(server->ratelimit);
    ca_ratelimit_free(server->bad_credentials);
    if (server->journal.path != NULL)
        ca_journal_close(&server->journal);
    ca_jwks_free(server->jwks);
    ca_authority_dispose(&server->authority);
    free(server);
    return exit_code;
}
