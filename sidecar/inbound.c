/* The inbound side: mTLS termination, per-connection identity, policy, proxying, access log. */
#include "sidecar/inbound.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "certs/error.h"
#include "common/log.h"
#include "sidecar/appclient.h"
#include "sidecar/accesslog.h"
#include "sidecar/config.h"
#include "sidecar/error.h"
#include "sidecar/outbound.h"

/* Request-scoped facts the handler leaves for the logger, under these env names. */
#define ENV_DECISION "SEAM_DECISION"
#define ENV_RULE "SEAM_RULE"

/* Per-connection state, found from the h2o socket through sock->on_close.data. */
typedef struct st_sc_conn_t {
    uv_tcp_t tcp; /* the libuv handle; freed (with the whole record) in its close callback */
    sc_worker_t *worker;
    h2o_socket_t *sock; /* NULL once h2o closed it */
    sc_tls_t *tls;      /* the snapshot this connection's handshake used */
    struct sockaddr_storage peer_addr;
    int handshake_done;
    int resumed;
    const char *tls_version;   /* static string from OpenSSL */
    const char *fail_reason;   /* handshake failure category (static), NULL if none */
    char fail_detail[256];
    sc_stream_rate_t stream_rate;
    int rate_closed;
    char peer_id[CRT_SPIFFE_ID_MAX + 1]; /* verified SPIFFE ID, "" until verified */
    h2o_timeout_entry_t handshake_entry;  /* linked while the handshake runs */
} sc_conn_t;

typedef struct st_sc_authz_handler_t {
    h2o_handler_t super;
    sc_inbound_t *inbound;
} sc_authz_handler_t;

typedef struct st_sc_access_logger_t {
    h2o_logger_t super;
    sc_inbound_t *inbound;
} sc_access_logger_t;

static const h2o_iovec_t alpn_protocols[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};

static sc_worker_t *worker_of_ctx(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(sc_worker_t, ctx, ctx);
}

static sc_worker_t *worker_of_base(sc_worker_base_t *base)
{
    return H2O_STRUCT_FROM_MEMBER(sc_worker_t, base, base);
}

static sc_conn_t *conn_of_ssl(const SSL *ssl)
{
    BIO *bio = SSL_get_rbio(ssl);
    h2o_socket_t *sock = bio != NULL ? BIO_get_data(bio) : NULL;
    return sock != NULL ? sock->on_close.data : NULL;
}

static sc_conn_t *conn_of_req(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock != NULL ? sock->on_close.data : NULL;
}

static void format_peer_addr(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, cap, "%s:%u", host, port);
}

/* ---- TLS hooks (run inside OpenSSL during the handshake, on the worker's thread) ---- */

static void on_tls_verify(SSL *ssl, int rc, const crt_verify_result_t *res)
{
    sc_conn_t *conn = conn_of_ssl(ssl);
    if (conn == NULL)
        return;
    if (rc == 0) {
        snprintf(conn->peer_id, sizeof(conn->peer_id), "%s", res->spiffe_id);
    } else {
        conn->peer_id[0] = '\0';
        conn->fail_reason = crt_error_slug(rc);
        snprintf(conn->fail_detail, sizeof(conn->fail_detail), "%s", res->detail);
    }
}

static const char *reason_of_alert(int desc)
{
    switch (desc) {
    case 116: /* certificate_required */
        return SC_REASON_CLIENT_CERT_REQUIRED;
    case 70: /* protocol_version */
    case 40: /* handshake_failure: no shared cipher suite or group */
    case 71: /* insufficient_security */
        return SC_REASON_NO_SHARED_CIPHER;
    default:
        return SC_REASON_HANDSHAKE_FAILED;
    }
}

/* A handshake that stopped on an error without an alert (plain HTTP on the TLS port, garbage). */
static void note_handshake_error(sc_conn_t *conn)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return; /* SSL_ERROR_WANT_READ and friends: not a failure */
    switch (ERR_GET_REASON(e)) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        conn->fail_reason = SC_REASON_PLAIN_HTTP;
        break;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
        conn->fail_reason = SC_REASON_NO_SHARED_CIPHER;
        break;
    default:
        conn->fail_reason = SC_REASON_HANDSHAKE_FAILED;
        break;
    }
    const char *why = ERR_reason_error_string(e);
    snprintf(conn->fail_detail, sizeof(conn->fail_detail), "%s", why != NULL ? why : "TLS error");
}

static void on_tls_info(const SSL *ssl, int where, int ret)
{
    sc_conn_t *conn = conn_of_ssl(ssl);
    if (conn == NULL)
        return;
    /* HANDSHAKE_DONE comes once the client's Finished is in: after on_tls_verify for full handshakes */
    if ((where & SSL_CB_HANDSHAKE_DONE) != 0 && !conn->handshake_done && conn->fail_reason == NULL &&
        (conn->peer_id[0] != '\0' || SSL_session_reused((SSL *)ssl))) {
        conn->handshake_done = 1;
        conn->resumed = SSL_session_reused((SSL *)ssl);
        conn->tls_version = SSL_get_version(ssl);
        if (conn->resumed && conn->peer_id[0] == '\0') {
            /* a resumed session skips verification: take the identity the original handshake verified */
            X509 *peer = SSL_get0_peer_certificate(ssl);
            if (peer == NULL || crt_cert_spiffe_id(peer, conn->peer_id, sizeof(conn->peer_id)) != 0)
                conn->peer_id[0] = '\0';
        }
        sc_metrics_count_handshake(&conn->worker->metrics, conn->resumed);
    } else if ((where & SSL_CB_EXIT) != 0 && ret <= 0 && !conn->handshake_done && conn->fail_reason == NULL) {
        /* OpenSSL empties the error queue at every handshake step, so a queued error belongs to this one */
        note_handshake_error(conn);
    } else if ((where & SSL_CB_ALERT) != 0 && (where & SSL_CB_WRITE) != 0 && !conn->handshake_done) {
        if (conn->fail_reason == NULL && (ret >> 8) == 2 /* fatal */) {
            conn->fail_reason = reason_of_alert(ret & 0xff);
            snprintf(conn->fail_detail, sizeof(conn->fail_detail), "sent TLS alert %d (%s)", ret & 0xff,
                     (ret & 0xff) == 116 ? "certificate required" : SSL_alert_desc_string_long(ret));
        }
    }
}

const sc_tls_hooks_t sc_inbound_tls_hooks = {.on_verify = on_tls_verify, .on_info = on_tls_info};

/* Both sides: inbound (server) handshakes report here, outbound (client) ones to outbound.c. */
const sc_tls_hooks_t sc_sidecar_tls_hooks = {.on_verify = on_tls_verify,
                                             .on_info = on_tls_info,
                                             .client_expected_id = sc_outbound_expected_id,
                                             .on_client_verify = sc_outbound_on_verify,
                                             .on_client_session = sc_outbound_on_session,
                                             .on_client_info = sc_outbound_on_info};

/* ---- connections ---- */

static void on_conn_handle_close(uv_handle_t *handle)
{
    sc_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_conn_t, tcp, (uv_tcp_t *)handle);
    sc_worker_t *w = conn->worker;
    sc_tls_release(conn->tls);
    free(conn);
    --w->base.num_conns;
    sc_worker_base_maybe_finish(&w->base);
}

static void on_sock_close(void *data)
{
    sc_conn_t *conn = data;
    conn->sock = NULL;
    if (h2o_timeout_is_linked(&conn->handshake_entry))
        h2o_timeout_unlink(&conn->handshake_entry);
    sc_metrics_connection_delta(&conn->worker->metrics, -1);
    if (!conn->handshake_done && conn->fail_reason != NULL) {
        char addr[64];
        format_peer_addr(&conn->peer_addr, addr, sizeof(addr));
        sc_metrics_count_handshake_error(&conn->worker->metrics, conn->fail_reason);
        cmn_log_warn("inbound handshake from %s refused: %s: %s", addr, conn->fail_reason, conn->fail_detail);
    }
}

/* The handshake is over: serve HTTP as ALPN chose (h2, or http/1.1 also when the client named none). */
static void on_handshake(h2o_socket_t *sock, const char *err)
{
    sc_conn_t *conn = sock->data;
    if (conn == NULL)
        return; /* timed out and closed */
    if (h2o_timeout_is_linked(&conn->handshake_entry))
        h2o_timeout_unlink(&conn->handshake_entry);
    if (err != NULL) {
        h2o_socket_close(sock); /* on_sock_close says why, when the TLS callbacks saw a reason */
        return;
    }
    h2o_iovec_t alpn = h2o_socket_ssl_get_selected_protocol(sock);
    sc_front_serve(&conn->worker->front, sock,
                   h2o_memis(alpn.base, alpn.len, H2O_STRLIT("h2")) ? SC_FRONT_HTTP2 : SC_FRONT_HTTP1);
}

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    sc_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_conn_t, handshake_entry, entry);
    if (conn->fail_reason == NULL) {
        conn->fail_reason = SC_REASON_TIMEOUT;
        snprintf(conn->fail_detail, sizeof(conn->fail_detail), "no complete handshake within %d ms",
                 SC_HANDSHAKE_TIMEOUT_MS);
    }
    h2o_socket_t *sock = conn->sock;
    sock->data = NULL;
    h2o_socket_close(sock);
}

static void on_inbound_connection(uv_stream_t *listener, int status)
{
    sc_worker_t *w = worker_of_base(listener->data);
    sc_conn_t *conn;
    int namelen;

    if (status != 0)
        return;
    if ((conn = calloc(1, sizeof(*conn))) == NULL)
        return;
    conn->worker = w;
    uv_tcp_init(&w->base.loop, &conn->tcp);
    ++w->base.num_conns;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        conn->tls = NULL;
        uv_close((uv_handle_t *)&conn->tcp, on_conn_handle_close);
        return;
    }
    namelen = sizeof(conn->peer_addr);
    uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer_addr, &namelen);
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->tls = w->tls;
    sc_tls_addref(conn->tls);
    conn->sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_handle_close);
    conn->sock->on_close.cb = on_sock_close;
    conn->sock->on_close.data = conn;
    conn->sock->data = conn;
    sc_metrics_connection_delta(&w->metrics, 1);
    conn->handshake_entry.cb = on_handshake_timeout;
    h2o_timeout_link(&w->base.loop, &w->handshake_timeout, &conn->handshake_entry);
    h2o_socket_ssl_handshake(conn->sock, conn->tls->server_ctx, NULL, on_handshake);
}

/* Makes h2o close the connection through its own error path (a read of EOF), never under its feet. */
static void close_for_stream_rate(sc_conn_t *conn, sc_stream_event_t event, unsigned count)
{
    char addr[64];
    if (conn->rate_closed || conn->sock == NULL)
        return;
    conn->rate_closed = 1;
    format_peer_addr(&conn->peer_addr, addr, sizeof(addr));
    cmn_log_warn("inbound connection from %s (%s) closed: %u streams %s in one second (limit %u)", addr,
                 conn->peer_id[0] != '\0' ? conn->peer_id : "unverified", count,
                 event == SC_STREAM_RESET ? "reset" : "opened", sc_stream_rate_limit(event));
    sc_metrics_count_stream_rate_close(&conn->worker->metrics);
    shutdown(h2o_socket_get_fd(conn->sock), SHUT_RDWR);
}

/* Counts a stream event; closes the connection when it goes over the limit. Returns 1 if it did. */
static int note_stream(sc_conn_t *conn, sc_stream_event_t event)
{
    unsigned count;
    if (sc_stream_rate_note(&conn->stream_rate, uv_now(&conn->worker->base.loop), event, &count)) {
        close_for_stream_rate(conn, event, count);
        return 1;
    }
    return conn->rate_closed;
}

/* ---- request handling ---- */

static void set_env(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    h2o_iovec_t *slot = h2o_req_getenv(req, name, name_len, 1);
    *slot = h2o_strdup(&req->pool, value, value_len);
}

static size_t request_header_bytes(h2o_req_t *req)
{
    size_t total = req->input.path.len + req->input.authority.len + req->input.method.len;
    for (size_t i = 0; i != req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    return total;
}

static int on_authz_req(h2o_handler_t *self, h2o_req_t *req)
{
    sc_worker_t *w = worker_of_ctx(req->conn->ctx);
    sc_conn_t *conn = conn_of_req(req);
    sc_policy_verdict_t verdict;
    ssize_t cursor;
    (void)self;

    if (conn == NULL || conn->peer_id[0] == '\0') {
        h2o_send_error_generic(req, 403, "Forbidden", "forbidden: the connection has no verified peer identity\n", 0);
        return 0;
    }
    if (note_stream(conn, SC_STREAM_OPENED)) {
        h2o_send_error_generic(req, 429, "Too Many Requests", "too many requests on this connection\n", 0);
        return 0;
    }
    if (request_header_bytes(req) > SC_MAX_REQUEST_HEADER_BYTES) {
        h2o_send_error_generic(req, 431, "Request Header Fields Too Large", "request headers too large\n", 0);
        return 0;
    }

    /* the normalised path (dot segments resolved, no query) is what the policy sees */
    sc_policy_decide(w->policy, conn->peer_id, strlen(conn->peer_id), req->method.base, req->method.len,
                     req->path_normalized.base, req->path_normalized.len, &verdict);
    sc_metrics_count_decision(&w->metrics, verdict.decision);
    const char *decision = sc_decision_name(verdict.decision);
    set_env(req, H2O_STRLIT(ENV_DECISION), decision, strlen(decision));
    set_env(req, H2O_STRLIT(ENV_RULE), verdict.rule, strlen(verdict.rule));

    if (verdict.decision == SC_DECISION_DENY) {
        char body[CRT_SPIFFE_ID_MAX + 1024];
        snprintf(body, sizeof(body), "forbidden: policy %s denies %s %.*s %.*s (no rule matched: default deny)\n",
                 sc_policy_source(w->policy), conn->peer_id, (int)req->method.len, req->method.base,
                 (int)(req->path_normalized.len > 512 ? 512 : req->path_normalized.len), req->path_normalized.base);
        h2o_send_error_generic(req, 403, "Forbidden", body, 0);
        return 0;
    }

    /* x-forwarded-client-cert: drop what the client sent, then state what the sidecar verified */
    while ((cursor = h2o_find_header_by_str(&req->headers, H2O_STRLIT(SC_XFCC_HEADER), -1)) != -1)
        h2o_delete_header(&req->headers, cursor);
    h2o_iovec_t xfcc = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("By=")),
                                  h2o_iovec_init(conn->tls->spiffe_id, strlen(conn->tls->spiffe_id)),
                                  h2o_iovec_init(H2O_STRLIT(";URI=")), h2o_iovec_init(conn->peer_id, strlen(conn->peer_id)));
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(SC_XFCC_HEADER), 0, NULL, xfcc.base, xfcc.len);

    sc_app_forward(req, &w->app_target);
    return 0;
}

/* ---- access log and request metrics ---- */

static void log_iovec(sc_logline_t *line, const char *key, const h2o_iovec_t *v)
{
    sc_logline_str(line, key, v != NULL ? v->base : NULL, v != NULL ? v->len : 0);
}

static void on_log_access(h2o_logger_t *_self, h2o_req_t *req)
{
    sc_worker_t *w = worker_of_ctx(req->conn->ctx);
    sc_conn_t *conn = conn_of_req(req);
    struct timeval end = req->timestamps.response_end_at;
    int completed = end.tv_sec != 0;
    (void)_self;

    if (!completed)
        gettimeofday(&end, NULL);
    int64_t duration_us = (int64_t)(end.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                          (end.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (duration_us < 0)
        duration_us = 0;
    sc_metrics_count_request(&w->metrics, req->res.status, (uint64_t)duration_us);

    /* an h2 stream that ends before its response headers went out was cancelled by the client */
    if (conn != NULL && req->version >= 0x200 && (req->res.status == 0 || !completed))
        note_stream(conn, SC_STREAM_RESET);

    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(&w->accesslog, &line, "ts", &req->timestamps.request_begin_at);
    sc_logline_cstr(&line, "direction", "inbound");
    sc_logline_cstr(&line, "peer_id", conn != NULL && conn->peer_id[0] != '\0' ? conn->peer_id : NULL);
    log_iovec(&line, "method", &req->input.method);
    log_iovec(&line, "authority", &req->input.authority);
    log_iovec(&line, "path", &req->input.path);
    sc_logline_cstr(&line, "protocol", req->version >= 0x200 ? "h2" : "http/1.1");
    sc_logline_int(&line, "status", req->res.status);
    log_iovec(&line, "decision", h2o_req_getenv(req, H2O_STRLIT(ENV_DECISION), 0));
    log_iovec(&line, "rule", h2o_req_getenv(req, H2O_STRLIT(ENV_RULE), 0));
    sc_logline_real(&line, "duration_ms", (double)duration_us / 1000.0);
    sc_logline_cstr(&line, "tls_version", conn != NULL ? conn->tls_version : NULL);
    sc_logline_bool(&line, "resumed", conn != NULL && conn->resumed);
    sc_accesslog_emit(&w->accesslog, &line);
}

/* ---- workers ---- */

static void on_worker_mail(sc_worker_base_t *base)
{
    sc_worker_t *w = worker_of_base(base);
    sc_tls_t *tls = sc_worker_base_take_tls(base);
    sc_policy_t *policy;

    pthread_mutex_lock(&base->mailbox_lock);
    policy = w->mail_policy, w->mail_policy = NULL;
    pthread_mutex_unlock(&base->mailbox_lock);

    if (policy != NULL) {
        sc_policy_release(w->policy);
        w->policy = policy;
    }
    if (tls != NULL) {
        sc_tls_release(w->tls);
        w->tls = tls;
    }
}

static void on_worker_drain_timeout(sc_worker_base_t *base)
{
    cmn_log_warn("worker %zu: drain timeout reached with %zu connection(s) still open; closing them", base->index,
                 base->num_conns);
}

static void on_worker_stop(sc_worker_base_t *base)
{
    sc_worker_t *w = worker_of_base(base);
    sc_accesslog_flush(&w->accesslog);
    sc_app_pool_dispose(&w->app_pool);
}

static const sc_worker_ops_t worker_ops = {
    .on_mail = on_worker_mail, .on_drain_timeout = on_worker_drain_timeout, .on_stop = on_worker_stop};

int sc_inbound_stopped(sc_inbound_t *in)
{
    for (size_t i = 0; i != in->workers_running; ++i)
        if (!sc_worker_base_stopped(&in->workers[i].base))
            return 0;
    return 1;
}

int sc_resolve_addr(const char *hostport, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[SC_ADDR_MAX];
    uint16_t port;

    memset(sa, 0, sizeof(*sa));
    if (sc_addr_split(hostport, host, sizeof(host), &port) != 0)
        return SC_E_ADDRESS;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0) {
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0) {
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return SC_E_ADDRESS;
}

int sc_inbound_init(sc_inbound_t *in, const char *listen_addr, const char *app_addr, size_t num_workers,
                    uint64_t drain_timeout_ms, uint64_t app_timeout_ms, sc_tls_t *tls, sc_policy_t *policy, char *err,
                    size_t err_cap)
{
    socklen_t listen_len;
    char why[256];

    memset(in, 0, sizeof(*in));
    snprintf(in->app_name, sizeof(in->app_name), "%s", app_addr);
    if (sc_resolve_addr(listen_addr, &in->listen_addr, &listen_len) != 0) {
        snprintf(err, err_cap, "--inbound %s: not a numeric IPv4/IPv6 address and port", listen_addr);
        return SC_E_ADDRESS;
    }
    if (sc_resolve_addr(app_addr, &in->app_addr, &in->app_addr_len) != 0) {
        snprintf(err, err_cap, "--app %s: not a numeric IPv4/IPv6 address and port", app_addr);
        return SC_E_ADDRESS;
    }

    h2o_config_init(&in->globalconf);
    in->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("seam-sidecar"));
    in->globalconf.max_request_entity_size = SC_MAX_REQUEST_BODY_BYTES;
    in->globalconf.handshake_timeout = SC_HANDSHAKE_TIMEOUT_MS;
    in->globalconf.http2.max_concurrent_requests_per_connection = SC_H2_MAX_CONCURRENT_STREAMS;
    /* longer than the outbound side's idle timeout, so the client closes an idle mesh connection first */
    in->globalconf.http2.idle_timeout = SC_INBOUND_H2_IDLE_MS;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&in->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    sc_authz_handler_t *handler = (void *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_authz_req;
    handler->inbound = in;
    sc_access_logger_t *logger = (void *)h2o_create_logger(pathconf, sizeof(*logger));
    logger->super.log_access = on_log_access;
    logger->inbound = in;
    sc_front_configure_host(hostconf);

    if ((in->workers = calloc(num_workers, sizeof(*in->workers))) == NULL) {
        snprintf(err, err_cap, "out of memory");
        return SC_E_NOMEM;
    }
    in->num_workers = num_workers;
    for (size_t i = 0; i != num_workers; ++i) {
        sc_worker_t *w = &in->workers[i];
        w->inbound = in;
        sc_worker_base_init(&w->base, &worker_ops, i, drain_timeout_ms);
        w->base.loop.data = w;
        h2o_context_init(&w->ctx, &w->base.loop, &in->globalconf);
        w->tls = tls;
        sc_tls_addref(tls);
        w->policy = policy;
        sc_policy_addref(policy);
        sc_front_init(&w->front, &w->ctx, in->globalconf.hosts, 1, 0, SC_H2_MAX_CONCURRENT_STREAMS,
                      SC_MAX_REQUEST_BODY_BYTES, SC_INBOUND_H2_IDLE_MS);
        w->base.front = &w->front;
        h2o_timeout_init(&w->base.loop, &w->handshake_timeout, SC_HANDSHAKE_TIMEOUT_MS);
        sc_app_pool_init(&w->app_pool, &w->base.loop, (struct sockaddr *)&in->app_addr, in->app_addr_len, SC_APP_KEEPALIVE_MS);
        h2o_timeout_init(&w->base.loop, &w->app_timeout, app_timeout_ms);
        w->app_target = (sc_app_target_t){&w->app_pool, &w->app_timeout, in->app_name};
        sc_accesslog_init(&w->accesslog, &w->base.loop);
        if (sc_worker_base_listen(&w->base, (struct sockaddr *)&in->listen_addr, on_inbound_connection, why,
                                  sizeof(why)) != 0) {
            snprintf(err, err_cap, "--inbound %s: cannot listen: %s", listen_addr, why);
            return SC_E_LISTEN;
        }
    }
    /* ALPN lives on the SSL_CTX: offer h2 and http/1.1 (the list must outlive the context) */
    h2o_ssl_register_alpn_protocols(tls->server_ctx, alpn_protocols);
    return 0;
}

int sc_inbound_start(sc_inbound_t *in)
{
    for (size_t i = 0; i != in->num_workers; ++i) {
        if (sc_worker_base_start(&in->workers[i].base) != 0)
            return SC_E_THREAD;
        ++in->workers_running;
    }
    return 0;
}

void sc_inbound_publish_policy(sc_inbound_t *in, sc_policy_t *policy)
{
    for (size_t i = 0; i != in->num_workers; ++i) {
        sc_worker_t *w = &in->workers[i];
        sc_policy_addref(policy);
        pthread_mutex_lock(&w->base.mailbox_lock);
        sc_policy_t *superseded = w->mail_policy;
        w->mail_policy = policy;
        pthread_mutex_unlock(&w->base.mailbox_lock);
        sc_policy_release(superseded);
        sc_worker_base_wake(&w->base);
    }
}

void sc_inbound_publish_tls(sc_inbound_t *in, sc_tls_t *tls)
{
    h2o_ssl_register_alpn_protocols(tls->server_ctx, alpn_protocols);
    for (size_t i = 0; i != in->num_workers; ++i)
        sc_worker_base_post_tls(&in->workers[i].base, tls);
}

void sc_inbound_drain(sc_inbound_t *in)
{
    for (size_t i = 0; i != in->num_workers; ++i)
        sc_worker_base_post_drain(&in->workers[i].base);
}

size_t sc_inbound_cut_connections(sc_inbound_t *in)
{
    size_t cut = 0;
    for (size_t i = 0; i != in->workers_running; ++i) {
        sc_worker_base_t *base = &in->workers[i].base;
        pthread_mutex_lock(&base->mailbox_lock); /* orders the read after the worker's last write */
        cut += base->num_conns;
        pthread_mutex_unlock(&base->mailbox_lock);
    }
    return cut;
}
