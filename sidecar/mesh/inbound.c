/* The inbound side: mTLS termination, per-connection identity, policy, proxying, access log. */
#include "sidecar/mesh/inbound.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "certs/error.h"
#include "certs/tlsfail.h"
#include "common/log.h"
#include "sidecar/mesh/appclient.h"
#include "sidecar/admin/accesslog.h"
#include "sidecar/policy/config.h"
#include "sidecar/policy/error.h"
#include "sidecar/http/pathnorm.h"
#include "sidecar/mesh/tunnel.h"

_Static_assert(SC_FD_ONWARD_INBOUND == SC_APP_CONNS_MAX, "the descriptor plan keeps one per app connection");

#define FAIL_DETAIL_MAX 256 /* a handshake failure's detail in the log line */

/*
 * Per-connection state, found from the h2o socket through sock->on_close.data.
 * Kept small: an idle connection holds it for as long as it stays open.
 */
typedef struct st_sc_conn_t {
    uv_tcp_t tcp; /* the libuv handle; freed (with the whole record) in its close callback */
    sc_worker_t *worker;
    h2o_socket_t *sock; /* NULL once h2o closed it */
    sc_tls_t *tls;      /* the snapshot this connection's handshake used */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer_addr; /* TCP: one of the two, not a whole sockaddr_storage */
    int handshake_done;
    int resumed;
    const char *tls_version;   /* static string from OpenSSL */
    const char *fail_reason;   /* handshake failure category (static), NULL if none */
    char *fail_detail;         /* its detail (malloc'ed once something failed), NULL if none */
    sc_stream_rate_t stream_rate;
    int rate_closed;
    char *peer_id; /* verified SPIFFE ID (malloc'ed to its length), NULL until verified */
    h2o_timeout_entry_t handshake_entry;  /* linked while the handshake runs */
} sc_conn_t;

static const h2o_iovec_t alpn_protocols[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};

static sc_worker_t *worker_of_front(sc_front_t *front)
{
    return H2O_STRUCT_FROM_MEMBER(sc_worker_t, front, front);
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


static void format_peer_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, cap, "%s:%u", host, port);
}

/* Notes why the handshake failed, for the log line when the socket closes; a later note replaces it. */
static void note_fail_detail(sc_conn_t *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_fail_detail(sc_conn_t *conn, const char *fmt, ...)
{
    char detail[FAIL_DETAIL_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(detail, sizeof(detail), fmt, args);
    va_end(args);
    free(conn->fail_detail);
    conn->fail_detail = strdup(detail); /* NULL (no memory): the line goes without it */
}

/* ---- TLS hooks (run inside OpenSSL during the handshake, on the worker's thread) ---- */

void sc_inbound_on_tls_verify(SSL *ssl, int rc, const crt_verify_result_t *res)
{
    sc_conn_t *conn = conn_of_ssl(ssl);
    if (conn == NULL)
        return;
    free(conn->peer_id);
    conn->peer_id = NULL;
    if (rc == 0) {
        conn->peer_id = strdup(res->spiffe_id); /* NULL (no memory) fails the request as unverified */
    } else {
        conn->fail_reason = crt_error_slug(rc); /* the check's own name: one of crt_tlsfail_t's verify rows */
        note_fail_detail(conn, "%s", res->detail);
    }
}

/* A handshake that stopped on an error without an alert (plain HTTP on the TLS port, garbage). */
static void note_handshake_error(sc_conn_t *conn)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return; /* SSL_ERROR_WANT_READ and friends: not a failure */
    crt_tlsfail_facts_t facts = {.observer = CRT_TLSFAIL_SERVER, .ssl_reason = ERR_GET_REASON(e)};
    conn->fail_reason = crt_tlsfail_slug(crt_tlsfail_classify(&facts));
    const char *why = ERR_reason_error_string(e);
    note_fail_detail(conn, "%s", why != NULL ? why : "TLS error");
}

void sc_inbound_on_tls_info(const SSL *ssl, int where, int ret)
{
    sc_conn_t *conn = conn_of_ssl(ssl);
    if (conn == NULL)
        return;
    /* HANDSHAKE_DONE comes once the client's Finished is in: after sc_inbound_on_tls_verify for full handshakes */
    if ((where & SSL_CB_HANDSHAKE_DONE) != 0 && !conn->handshake_done && conn->fail_reason == NULL &&
        (conn->peer_id != NULL || SSL_session_reused((SSL *)ssl))) {
        conn->handshake_done = 1;
        conn->resumed = SSL_session_reused((SSL *)ssl);
        conn->tls_version = SSL_get_version(ssl);
        if (conn->resumed && conn->peer_id == NULL) {
            /* a resumed session skips verification: take the identity the original handshake verified */
            char id[CRT_SPIFFE_ID_MAX + 1];
            X509 *peer = SSL_get0_peer_certificate(ssl);
            if (peer != NULL && crt_cert_spiffe_id(peer, id, sizeof(id)) == 0)
                conn->peer_id = strdup(id);
        }
        sc_metrics_count_handshake(&conn->worker->metrics, conn->resumed);
    } else if ((where & SSL_CB_EXIT) != 0 && ret <= 0 && !conn->handshake_done && conn->fail_reason == NULL) {
        /* OpenSSL empties the error queue at every handshake step, so a queued error belongs to this one */
        note_handshake_error(conn);
    } else if ((where & SSL_CB_ALERT) != 0 && (where & SSL_CB_WRITE) != 0 && !conn->handshake_done) {
        if (conn->fail_reason == NULL && (ret >> 8) == 2 /* fatal */) {
            crt_tlsfail_facts_t facts = {
                .observer = CRT_TLSFAIL_SERVER, .alert_seen = CRT_TLSFAIL_ALERT_SENT, .alert = ret & 0xff};
            conn->fail_reason = crt_tlsfail_slug(crt_tlsfail_classify(&facts));
            note_fail_detail(conn, "sent TLS alert %d (%s)", ret & 0xff,
                             (ret & 0xff) == SSL_AD_CERTIFICATE_REQUIRED ? "certificate required"
                                                                        : SSL_alert_desc_string_long(ret));
        }
    }
}


/* ---- connections ---- */

static void on_conn_handle_close(uv_handle_t *handle)
{
    sc_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_conn_t, tcp, (uv_tcp_t *)handle);
    sc_worker_base_t *base = sc_worker_base_of(handle);
    sc_tls_release(conn->tls);
    free(conn->peer_id);
    free(conn->fail_detail);
    free(conn);
    sc_worker_base_release(base);
}

static void on_sock_close(void *data)
{
    sc_conn_t *conn = data;
    conn->sock = NULL;
    if (h2o_timeout_is_linked(&conn->handshake_entry))
        h2o_timeout_unlink(&conn->handshake_entry);
    if (!conn->handshake_done && conn->fail_reason != NULL) {
        char addr[64];
        format_peer_addr(&conn->peer_addr.sa, addr, sizeof(addr));
        sc_metrics_count_handshake_error(&conn->worker->metrics, conn->fail_reason);
        cmn_log_warn("inbound handshake from %s refused: %s: %s", addr, conn->fail_reason,
                     conn->fail_detail != NULL ? conn->fail_detail : "(no detail)");
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
        note_fail_detail(conn, "no complete handshake within %llu ms",
                         (unsigned long long)conn->worker->handshake_timeout.timeout);
    }
    h2o_socket_t *sock = conn->sock;
    sock->data = NULL;
    h2o_socket_close(sock);
}

/* Counts and logs a connection the budget turned away (the caller has closed it). */
static void on_inbound_connection(uv_stream_t *listener, int status)
{
    sc_worker_t *w = worker_of_base(listener->data);
    sc_conn_t *conn = sc_worker_base_admit(&w->base, listener, status, sizeof(*conn), on_conn_handle_close);
    int namelen;

    if (conn == NULL)
        return;
    conn->worker = w;
    namelen = sizeof(conn->peer_addr);
    uv_tcp_getpeername(&conn->tcp, &conn->peer_addr.sa, &namelen);
    conn->tls = w->tls;
    sc_tls_addref(conn->tls);
    conn->sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_handle_close);
    conn->sock->on_close.cb = on_sock_close;
    conn->sock->on_close.data = conn;
    conn->sock->data = conn;
    /* linked once, here: the deadline bounds the whole handshake, however the bytes trickle in */
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
    format_peer_addr(&conn->peer_addr.sa, addr, sizeof(addr));
    cmn_log_warn("inbound connection from %s (%s) closed: %u streams %s in one second (limit %u)", addr,
                 conn->peer_id != NULL ? conn->peer_id : "unverified", count,
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

/* The app refused h2c: the exchange, untouched, goes over HTTP/1.1. */
static void on_h2c_refused(sc_upstream_env_t *env, sc_exchange_t *ex)
{
    sc_worker_t *w = H2O_STRUCT_FROM_MEMBER(sc_worker_t, app_h2, env);
    sc_app_forward(ex, &w->app_target);
}

/*
 * What the sidecar tells the app about the hop, in either protocol: the
 * caller's verified identity (x-forwarded-client-cert, replacing any the
 * caller sent), that the hop was TLS (x-forwarded-proto, likewise replaced)
 * and the address it came from (appended to x-forwarded-for, as proxies do).
 */
static void state_forwarding_headers(sc_exchange_t *ex, sc_conn_t *conn)
{
    sc_http_fields_delete_all(&ex->headers, H2O_STRLIT(SC_XFCC_HEADER));
    h2o_iovec_t xfcc = h2o_concat(&ex->pool, h2o_iovec_init(H2O_STRLIT("By=")),
                                  h2o_iovec_init(conn->tls->spiffe_id, strlen(conn->tls->spiffe_id)),
                                  h2o_iovec_init(H2O_STRLIT(";URI=")), h2o_iovec_init(conn->peer_id, strlen(conn->peer_id)));
    sc_http_fields_add_ref(&ex->pool, &ex->headers, h2o_iovec_init(H2O_STRLIT(SC_XFCC_HEADER)), xfcc);
    sc_http_fields_delete_all(&ex->headers, H2O_STRLIT("x-forwarded-proto"));
    sc_http_fields_add_ref(&ex->pool, &ex->headers, h2o_iovec_init(H2O_STRLIT("x-forwarded-proto")),
                           h2o_iovec_init(H2O_STRLIT("https")));

    struct sockaddr_storage peer;
    char ip[INET6_ADDRSTRLEN] = "";
    socklen_t peer_len = sc_exchange_peername(ex, (struct sockaddr *)&peer, sizeof(peer));
    if (peer_len != 0 && peer.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, ip, sizeof(ip));
    else if (peer_len != 0 && peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, ip, sizeof(ip));
    if (ip[0] == '\0')
        return;
    h2o_iovec_t addr = h2o_strdup(&ex->pool, ip, SIZE_MAX);
    ssize_t i = sc_http_fields_find(&ex->headers, H2O_STRLIT("x-forwarded-for"), -1);
    if (i != -1) {
        sc_http_field_t *f = &ex->headers.entries[i];
        f->value = h2o_concat(&ex->pool, f->value, h2o_iovec_init(H2O_STRLIT(", ")), addr);
    } else {
        sc_http_fields_add_ref(&ex->pool, &ex->headers, h2o_iovec_init(H2O_STRLIT("x-forwarded-for")), addr);
    }
}

/* Sends an authorized exchange to the app, in the protocol it was sent in by the calling app (or the pinned one). */
static void forward_to_app(sc_worker_t *w, sc_exchange_t *ex)
{
    /* seam-orig-proto: the calling app spoke HTTP/1.x; the mark stops here */
    int orig_http1 = sc_http_fields_delete_all(&ex->headers, H2O_STRLIT(SC_ORIG_PROTO_HEADER)) != 0 || ex->version < 0x200;
    int http1 = 0;
    switch (w->inbound->app_protocol) {
    case SC_APP_PROTOCOL_HTTP1:
        if (!orig_http1 && sc_http_fields_find(&ex->headers, H2O_STRLIT("te"), -1) != -1) {
            ex->log.error = "app-protocol";
            sc_exchange_reply(ex, 502, "bad gateway: the request needs trailers (te: trailers) and the app speaks "
                                       "only HTTP/1.1 (--app-protocol http1)\n");
            return;
        }
        http1 = 1;
        break;
    case SC_APP_PROTOCOL_H2C:
        break;
    default:
        /* an app that refused h2c lately gets HTTP/1.1, except for what HTTP/1.1 cannot carry (gRPC sends te: trailers) */
        http1 = orig_http1 || (w->app_h2.h2c_refused_until > h2o_now(&w->base.loop) &&
                               sc_http_fields_find(&ex->headers, H2O_STRLIT("te"), -1) == -1);
        break;
    }
    if (http1) {
        sc_app_forward(ex, &w->app_target);
        return;
    }
    ex->log.app_protocol = "h2c";
    sc_upstream_forward(&w->app_h2, w->app_up, ex, ex->authority.base != NULL ? ex->authority : w->app_authority,
                        ex->path);
}

static int tunnel_port_refused(const sc_inbound_t *in, uint16_t port)
{
    for (size_t i = 0; i != in->num_tunnel_refused; ++i)
        if (in->tunnel_refused[i] == port)
            return 1;
    return 0;
}

/* A peer's TCP tunnel (HTTP/2 CONNECT to "IP:port"): the policy decides by identity and port, then 127.0.0.1:port. */
static void serve_tunnel(sc_worker_t *w, sc_conn_t *conn, sc_exchange_t *ex)
{
    sc_policy_verdict_t verdict;
    char body[CRT_SPIFFE_ID_MAX + 1024];
    uint16_t port = ex->authority.base != NULL ? sc_tunnel_authority_port(ex->authority.base, ex->authority.len) : 0;

    if (ex->version < 0x200 || port == 0) {
        ex->log.error = "bad-tunnel";
        sc_exchange_reply(ex, 400, "bad request: a TCP tunnel is an HTTP/2 CONNECT to IP:port\n");
        return;
    }
    if (tunnel_port_refused(w->inbound, port)) {
        ex->log.error = "tunnel-to-sidecar";
        snprintf(body, sizeof(body), "forbidden: port %u is the sidecar's own, not the app's\n", (unsigned)port);
        sc_exchange_reply(ex, 403, body);
        return;
    }
    sc_policy_decide(w->policy, conn->peer_id, strlen(conn->peer_id), port, NULL, 0, NULL, 0, &verdict);
    ex->log.decision = sc_decision_name(verdict.decision);
    ex->log.rule = h2o_strdup(&ex->pool, verdict.rule, SIZE_MAX).base;
    if (verdict.decision == SC_DECISION_DENY) {
        snprintf(body, sizeof(body), "forbidden: policy %s denies %s TCP to app port %u (no rule matched: default deny)\n",
                 sc_policy_source(w->policy), conn->peer_id, (unsigned)port);
        sc_exchange_reply(ex, 403, body);
        return;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sc_tunnel_serve(ex, &w->base.loop, (struct sockaddr *)&dst, w->app_timeout.timeout);
}

static void on_request(sc_front_t *front, sc_exchange_t *ex)
{
    sc_worker_t *w = worker_of_front(front);
    sc_conn_t *conn = ex->conn_data;
    sc_policy_verdict_t verdict;

    if (conn == NULL || conn->peer_id == NULL) {
        sc_exchange_reply(ex, 403, "forbidden: the connection has no verified peer identity\n");
        return;
    }
    if (note_stream(conn, SC_STREAM_OPENED)) {
        sc_exchange_reply(ex, 429, "too many requests on this connection\n");
        return;
    }
    if (h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("CONNECT"))) {
        serve_tunnel(w, conn, ex);
        return;
    }

    /* the policy judges the path the app receives: normalised once, forwarded as normalised (pathnorm.h) */
    h2o_iovec_t path = ex->path;
    if (!h2o_memis(ex->path.base, ex->path.len, H2O_STRLIT("*"))) {
        sc_pathnorm_result_t norm;
        char *out = h2o_mem_alloc_pool(&ex->pool, ex->path.len + 1);
        int rc = sc_pathnorm_normalise((sc_slice_t){ex->path.base, ex->path.len}, out, ex->path.len + 1, &norm);
        if (rc != SC_PATHNORM_OK) {
            char body[256];
            snprintf(body, sizeof(body), "bad request: the path cannot be normalised safely: %s\n",
                     sc_pathnorm_error_message(rc));
            ex->log.error = sc_pathnorm_error_name(rc);
            sc_exchange_reply(ex, 400, body);
            return;
        }
        ex->path = h2o_iovec_init(out, norm.len);
        path = h2o_iovec_init(out, norm.path_len);
    }
    sc_policy_decide(w->policy, conn->peer_id, strlen(conn->peer_id), w->inbound->app_port, ex->method.base,
                     ex->method.len, path.base, path.len, &verdict);
    sc_metrics_count_decision(&w->metrics, verdict.decision);
    ex->log.decision = sc_decision_name(verdict.decision);
    ex->log.rule = h2o_strdup(&ex->pool, verdict.rule, SIZE_MAX).base;

    if (verdict.decision == SC_DECISION_DENY) {
        char body[CRT_SPIFFE_ID_MAX + 1024];
        snprintf(body, sizeof(body), "forbidden: policy %s denies %s %.*s %.*s (no rule matched: default deny)\n",
                 sc_policy_source(w->policy), conn->peer_id, (int)ex->method.len, ex->method.base,
                 (int)(path.len > 512 ? 512 : path.len), path.base);
        sc_exchange_reply(ex, 403, body);
        return;
    }

    state_forwarding_headers(ex, conn);
    forward_to_app(w, ex);
}

/* ---- access log and request metrics ---- */

/* A peer's TCP tunnel: one line with the bytes each way, and the TCP counters. */
static void log_tunnel(sc_worker_t *w, sc_conn_t *conn, sc_exchange_t *ex, int64_t duration_us)
{
    int denied = ex->log.decision == NULL || strcmp(ex->log.decision, "deny") == 0;
    sc_metrics_count_tcp(&w->metrics, denied ? SC_TCP_DENY : SC_TCP_ALLOW, ex->log.tunnel_sent + ex->body.received);
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(&w->accesslog, &line, "ts", &ex->begin_at);
    sc_logline_cstr(&line, "direction", "inbound");
    sc_logline_cstr(&line, "peer_id", conn != NULL ? conn->peer_id : NULL);
    sc_logline_str(&line, "authority", ex->authority.base, ex->authority.len);
    sc_logline_cstr(&line, "protocol", "tcp");
    sc_logline_int(&line, "status", ex->status);
    sc_logline_cstr(&line, "decision", ex->log.decision);
    sc_logline_cstr(&line, "rule", ex->log.rule);
    sc_logline_cstr(&line, "error", ex->log.error);
    sc_logline_int(&line, "bytes_sent", (int64_t)ex->log.tunnel_sent);
    sc_logline_int(&line, "bytes_received", (int64_t)ex->body.received);
    sc_logline_millis(&line, "duration_ms", duration_us);
    sc_logline_cstr(&line, "tls_version", conn != NULL ? conn->tls_version : NULL);
    sc_logline_bool(&line, "resumed", conn != NULL && conn->resumed);
    sc_accesslog_emit(&w->accesslog, &line);
}

static void on_log_access(sc_front_t *front, sc_exchange_t *ex)
{
    sc_worker_t *w = worker_of_front(front);
    sc_conn_t *conn = ex->conn_data;
    struct timeval end = ex->response_end_at;
    int completed = end.tv_sec != 0;

    if (!completed)
        gettimeofday(&end, NULL);
    int64_t duration_us = sc_accesslog_elapsed_us(&ex->begin_at, &end);

    /* an h2 stream that ends before its response headers went out was cancelled by the client */
    if (conn != NULL && ex->version >= 0x200 && (ex->status == 0 || !completed))
        note_stream(conn, SC_STREAM_RESET);
    if (ex->version >= 0x200 && h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("CONNECT"))) {
        log_tunnel(w, conn, ex, duration_us);
        return;
    }
    sc_metrics_count_request(&w->metrics, ex->status, (uint64_t)duration_us);

    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(&w->accesslog, &line, "ts", &ex->begin_at);
    sc_logline_cstr(&line, "direction", "inbound");
    sc_logline_cstr(&line, "peer_id", conn != NULL ? conn->peer_id : NULL);
    sc_logline_str(&line, "method", ex->method.base, ex->method.len);
    sc_logline_str(&line, "authority", ex->authority.base, ex->authority.len);
    sc_logline_str(&line, "path", ex->path.base, ex->path.len);
    sc_logline_cstr(&line, "protocol", ex->version >= 0x200 ? "h2" : "http/1.1");
    sc_logline_cstr(&line, "app_protocol", ex->log.app_protocol);
    sc_logline_int(&line, "status", ex->status);
    int grpc_status = sc_exchange_grpc_status(ex);
    if (grpc_status >= 0)
        sc_logline_int(&line, "grpc_status", grpc_status);
    else
        sc_logline_null(&line, "grpc_status");
    sc_logline_cstr(&line, "decision", ex->log.decision);
    sc_logline_cstr(&line, "rule", ex->log.rule);
    sc_logline_cstr(&line, "error", ex->log.error);
    sc_logline_millis(&line, "duration_ms", duration_us);
    sc_logline_cstr(&line, "tls_version", conn != NULL ? conn->tls_version : NULL);
    sc_logline_bool(&line, "resumed", conn != NULL && conn->resumed);
    sc_accesslog_emit(&w->accesslog, &line);
}

static const sc_front_handler_t front_handler = {.on_request = on_request, .on_log = on_log_access};

/* ---- workers ---- */

static void on_worker_stop(sc_worker_base_t *base)
{
    sc_worker_t *w = worker_of_base(base);
    sc_accesslog_flush(&w->accesslog);
    sc_app_pool_dispose(&w->app_pool);
}

static const sc_worker_ops_t worker_ops = {
    .on_stop = on_worker_stop};

void sc_inbound_refuse_tunnel_port(sc_inbound_t *in, uint16_t port)
{
    if (port != 0 && in->num_tunnel_refused != SC_INBOUND_TUNNEL_REFUSED_MAX)
        in->tunnel_refused[in->num_tunnel_refused++] = port;
}

int sc_inbound_init(sc_inbound_t *in, const char *listen_addr, const char *app_addr, int app_protocol,
                    size_t num_workers, uint64_t drain_timeout_ms, uint64_t app_timeout_ms, uint64_t stream_idle_ms,
                    uint64_t handshake_timeout_ms, uint64_t idle_timeout_ms, sc_tls_t *tls, sc_policy_t *policy, char *err, size_t err_cap)
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

    in->app_protocol = app_protocol;
    char app_host[SC_ADDR_MAX];
    uint16_t app_port;
    if (sc_addr_split(app_addr, app_host, sizeof(app_host), &app_port) != 0) {
        snprintf(err, err_cap, "--app %s: not a host and port", app_addr);
        return SC_E_ADDRESS;
    }
    in->app_port = app_port;
    uint16_t listen_port = ntohs(in->listen_addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&in->listen_addr)->sin6_port
                                                                        : ((struct sockaddr_in *)&in->listen_addr)->sin_port);
    sc_inbound_refuse_tunnel_port(in, listen_port);
    if ((in->workers = sc_worker_group_alloc(&in->group, num_workers, sizeof(*in->workers), offsetof(sc_worker_t, base))) ==
        NULL) {
        snprintf(err, err_cap, "out of memory");
        return SC_E_NOMEM;
    }
    in->num_workers = num_workers;
    for (size_t i = 0; i != num_workers; ++i) {
        sc_worker_t *w = &in->workers[i];
        w->inbound = in;
        const sc_worker_setup_t setup = {&worker_ops, "inbound", w, &in->limit, &w->metrics, &w->tls,
                                         (void **)&w->mail_policy, (void **)&w->policy, sc_policy_ref};
        sc_worker_base_init(&w->base, &setup, i, drain_timeout_ms);
        w->tls = tls;
        sc_tls_addref(tls);
        w->policy = policy;
        sc_policy_addref(policy);
        sc_front_init(&w->front, &w->base.loop, &front_handler, w, 1, 0, SC_H2_MAX_CONCURRENT_STREAMS,
                      SC_MAX_REQUEST_BODY_BYTES, idle_timeout_ms, "seam-sidecar");
        w->base.front = &w->front;
        h2o_timeout_init(&w->base.loop, &w->handshake_timeout, handshake_timeout_ms);
        sc_app_pool_init(&w->app_pool, &w->base.loop, (struct sockaddr *)&in->app_addr, in->app_addr_len, SC_APP_KEEPALIVE_MS);
        h2o_timeout_init(&w->base.loop, &w->app_timeout, app_timeout_ms);
        w->app_target = (sc_app_target_t){&w->app_pool, &w->app_timeout, in->app_name};
        /* h2c to the app: the same client as the mesh's, over plain TCP */
        sc_upstream_env_init(&w->app_h2, &w->base.loop, &w->metrics, NULL, 1, app_timeout_ms, SC_APP_KEEPALIVE_MS,
                             stream_idle_ms);
        w->app_h2.on_h2c_refused = on_h2c_refused;
        if ((w->app_up = sc_upstream_get(&w->app_h2, app_host, app_port, "")) == NULL) {
            snprintf(err, err_cap, "out of memory");
            return SC_E_NOMEM;
        }
        w->app_authority = h2o_iovec_init(in->app_name, strlen(in->app_name));
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

void sc_inbound_publish_policy(sc_inbound_t *in, sc_policy_t *policy)
{
    sc_worker_group_post(&in->group, offsetof(sc_worker_t, mail_policy), policy, sc_policy_ref);
}

void sc_inbound_publish_tls(sc_inbound_t *in, sc_tls_t *tls)
{
    h2o_ssl_register_alpn_protocols(tls->server_ctx, alpn_protocols);
    sc_worker_group_post_tls(&in->group, tls);
}

