/* The outbound side: routing app requests, pooled HTTP/2 mTLS mesh connections (nghttp2 over h2o sockets). */
#include "sidecar/outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
/* after the libc headers, whose definitions the kernel's then leave alone */
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include "certs/diagnose.h"
#include "certs/error.h"
#include "certs/pem.h"
#include "common/log.h"
#include "sidecar/accesslog.h"
#include "sidecar/config.h"
#include "sidecar/forward.h"
#include "sidecar/inbound.h"
#include "sidecar/sockio.h"

/* Request-scoped facts left for the access logger. */
#define ENV_PEER "SEAM_OUT_PEER"
#define ENV_TLS "SEAM_OUT_TLS"
#define ENV_RESUMED "SEAM_OUT_RESUMED"
#define ENV_ERROR "SEAM_OUT_ERROR"
#define ENV_ORIGINAL_DST "SEAM_OUT_ORIGINAL_DST"

typedef struct st_sc_upstream_t sc_upstream_t;
typedef struct st_sc_h2conn_t sc_h2conn_t;
typedef struct st_sc_ostream_t sc_ostream_t;

/* An app connection; found from its h2o socket through sock->on_close.data. */
typedef struct st_sc_app_conn_t {
    uv_tcp_t tcp; /* the libuv handle; freed (with the whole record) in its close callback */
    sc_oworker_t *worker;
    int redirected; /* --transparent and the interception rules sent it here: original_dst is where it was going */
    struct sockaddr_storage original_dst;
    char original_dst_text[SC_ORIGINAL_DST_TEXT_MAX]; /* "192.0.2.2:8080" */
} sc_app_conn_t;

typedef struct st_sc_upstream_addr_t {
    struct sockaddr_storage sa;
    socklen_t len;
    uint64_t down_until; /* loop time before which the address is skipped */
    uint64_t backoff_ms;
} sc_upstream_addr_t;

/* An upstream name:port and the identity it must prove; per worker, created on first use. */
struct st_sc_upstream_t {
    h2o_linklist_t link; /* in worker->upstreams */
    sc_oworker_t *worker;
    char host[SC_ROUTE_HOST_MAX + 1];
    uint16_t port;
    char identity[CRT_SPIFFE_ID_MAX + 1];
    char session_key[SC_ROUTE_HOST_MAX + 16]; /* "host:port": the TLS session cache key */
    sc_upstream_addr_t addrs[SC_UPSTREAM_MAX_ADDRS];
    size_t num_addrs;
    size_t next_addr;
    uint64_t resolved_at;
    int resolving;
    uv_getaddrinfo_t gai;
    char dns_error[128];
    h2o_linklist_t conns;   /* sc_h2conn_t */
    h2o_linklist_t waiting; /* streams waiting for the first resolution */
};

typedef enum { CONN_CONNECTING, CONN_HANDSHAKING, CONN_READY } sc_conn_state_t;

/* One mesh connection: TLS 1.3 + HTTP/2 to one address of an upstream. */
struct st_sc_h2conn_t {
    h2o_linklist_t link; /* in up->conns */
    sc_upstream_t *up;
    size_t addr_index;
    h2o_socket_t *sock;
    sc_tls_t *tls; /* the snapshot this connection's handshake used */
    nghttp2_session *session;
    sc_conn_state_t state;
    int goaway;
    int32_t goaway_last_id; /* streams above it were not processed by the server */
    int in_callback; /* inside nghttp2_session_mem_recv: no flush, no close */
    int got_frame;   /* the server's first frame arrived: the handshake is confirmed */
    int resumed;
    SSL *ssl;        /* borrowed from h2o's socket, noted by the info callback */
    int alert;       /* fatal alert received from the server (description), -1 none */
    int verify_rc;   /* crt_verify_chain's verdict in the verify callback; 1: not run */
    char verify_detail[600];
    char peer_id[CRT_SPIFFE_ID_MAX + 1];
    size_t num_streams;     /* attached streams (waiting or open) */
    h2o_linklist_t streams; /* sc_ostream_t */
    h2o_buffer_t *wbuf;     /* frames from nghttp2 not yet handed to the socket */
    h2o_buffer_t *wbuf_inflight;
    int writing;
    h2o_timeout_entry_t idle_entry;
};

/* One proxied request; lives in the request's pool (freed with it, see on_stream_dispose). */
struct st_sc_ostream_t {
    h2o_generator_t super;
    h2o_req_t *req;
    sc_oworker_t *worker;
    sc_upstream_t *up;
    sc_h2conn_t *conn;
    h2o_linklist_t link; /* in conn->streams or up->waiting */
    int32_t stream_id;   /* 0 until submitted */
    h2o_iovec_t authority, path;
    h2o_timeout_entry_t timeout;
    size_t body_sent;  /* request body bytes handed to nghttp2 (then the stream cannot be sent again) */
    int body_deferred; /* nghttp2 waits for more of the request body */
    int response_started, eos, closed, sending, done;
    int retried; /* sent again once after its connection went away unprocessed */
    size_t unconsumed; /* received DATA bytes not yet returned to nghttp2's windows */
    h2o_buffer_t *pending, *inflight;
};

static sc_oworker_t *worker_of_ctx(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(sc_oworker_t, ctx, ctx);
}

static sc_oworker_t *worker_of_base(sc_worker_base_t *base)
{
    return H2O_STRUCT_FROM_MEMBER(sc_oworker_t, base, base);
}

static void set_env(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    h2o_iovec_t *slot = h2o_req_getenv(req, name, name_len, 1);
    *slot = h2o_strdup(&req->pool, value, value_len);
}

static void conn_flush(sc_h2conn_t *conn);
static void conn_close(sc_h2conn_t *conn, int status, const char *category, const char *detail);
static void stream_submit(sc_ostream_t *st);
static void stream_fail(sc_ostream_t *st, int status, const char *category, const char *detail);

/* ---- TLS hooks: find the connection through h2o's BIO ---- */

static sc_h2conn_t *conn_of_ssl(const SSL *ssl)
{
    BIO *bio = SSL_get_rbio(ssl);
    h2o_socket_t *sock = bio != NULL ? BIO_get_data(bio) : NULL;
    return sock != NULL ? sock->data : NULL;
}

const char *sc_outbound_expected_id(SSL *ssl)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    return conn != NULL ? conn->up->identity : NULL;
}

void sc_outbound_on_verify(SSL *ssl, int rc, const crt_verify_result_t *res)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    if (conn == NULL)
        return;
    conn->verify_rc = rc;
    if (rc == 0) {
        snprintf(conn->peer_id, sizeof(conn->peer_id), "%s", res->spiffe_id);
    } else if (rc == CRT_E_IDENTITY_MISMATCH) {
        snprintf(conn->verify_detail, sizeof(conn->verify_detail), "expected %s, got %s", conn->up->identity,
                 res->spiffe_id[0] != '\0' ? res->spiffe_id : "(none)");
    } else {
        snprintf(conn->verify_detail, sizeof(conn->verify_detail), "%s", res->detail);
    }
}

int sc_outbound_on_session(SSL *ssl, SSL_SESSION *session)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    h2o_cache_t *cache = h2o_socket_ssl_get_session_cache(SSL_get_SSL_CTX(ssl));
    if (conn == NULL || cache == NULL || !SSL_SESSION_is_resumable(session))
        return 0;
    h2o_iovec_t key = h2o_iovec_init(conn->up->session_key, strlen(conn->up->session_key));
    h2o_cache_set(cache, h2o_now(&conn->up->worker->base.loop), key, 0, h2o_iovec_init(session, 1));
    return 1;
}

void sc_outbound_on_info(const SSL *ssl, int where, int ret)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    if (conn != NULL)
        conn->ssl = (SSL *)ssl;
    if (conn != NULL && (where & SSL_CB_ALERT) != 0 && (where & SSL_CB_READ) != 0 && (ret >> 8) == 2)
        conn->alert = ret & 0xff;
}

/* ---- upstreams: resolution, addresses, backoff ---- */

static sc_upstream_t *find_upstream(sc_oworker_t *w, const sc_route_t *route)
{
    for (h2o_linklist_t *n = w->upstreams.next; n != &w->upstreams; n = n->next) {
        sc_upstream_t *up = H2O_STRUCT_FROM_MEMBER(sc_upstream_t, link, n);
        if (up->port == route->upstream_port && strcmp(up->host, route->upstream_host) == 0 &&
            strcmp(up->identity, route->identity) == 0)
            return up;
    }
    sc_upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->worker = w;
    snprintf(up->host, sizeof(up->host), "%s", route->upstream_host);
    up->port = route->upstream_port;
    snprintf(up->identity, sizeof(up->identity), "%s", route->identity);
    snprintf(up->session_key, sizeof(up->session_key), "%s:%u", up->host, (unsigned)up->port);
    h2o_linklist_init_anchor(&up->conns);
    h2o_linklist_init_anchor(&up->waiting);
    up->gai.data = up;
    h2o_linklist_insert(&w->upstreams, &up->link);
    return up;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sc_upstream_t *up = req->data;
    up->resolving = 0;
    up->resolved_at = uv_now(&up->worker->base.loop);
    if (status != 0) {
        snprintf(up->dns_error, sizeof(up->dns_error), "%s", uv_strerror(status));
        if (up->num_addrs != 0)
            cmn_log_warn("re-resolving upstream %s failed (%s); keeping %zu address(es)", up->host, up->dns_error,
                         up->num_addrs);
    } else {
        size_t n = 0;
        for (struct addrinfo *ai = res; ai != NULL && n < SC_UPSTREAM_MAX_ADDRS; ai = ai->ai_next) {
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(struct sockaddr_storage))
                continue;
            sc_upstream_addr_t *a = &up->addrs[n];
            /* an address already known keeps its backoff state */
            int kept = 0;
            for (size_t i = n; i < up->num_addrs; ++i) {
                if (up->addrs[i].len == ai->ai_addrlen && memcmp(&up->addrs[i].sa, ai->ai_addr, ai->ai_addrlen) == 0) {
                    sc_upstream_addr_t tmp = up->addrs[i];
                    up->addrs[i] = *a;
                    *a = tmp;
                    kept = 1;
                    break;
                }
            }
            if (!kept) {
                memset(a, 0, sizeof(*a));
                memcpy(&a->sa, ai->ai_addr, ai->ai_addrlen);
                a->len = (socklen_t)ai->ai_addrlen;
            }
            ++n;
        }
        up->num_addrs = n;
        up->dns_error[0] = '\0';
        if (n == 0)
            snprintf(up->dns_error, sizeof(up->dns_error), "no IPv4 or IPv6 address");
    }
    if (res != NULL)
        uv_freeaddrinfo(res);
    /* hand the waiting streams on (or fail them) */
    while (!h2o_linklist_is_empty(&up->waiting)) {
        sc_ostream_t *st = H2O_STRUCT_FROM_MEMBER(sc_ostream_t, link, up->waiting.next);
        h2o_linklist_unlink(&st->link);
        if (up->num_addrs == 0) {
            char detail[300];
            snprintf(detail, sizeof(detail), "cannot resolve %s: %s", up->host, up->dns_error);
            stream_fail(st, 503, crt_diag_slug(CRT_DIAG_DNS_FAILURE), detail);
        } else {
            stream_submit(st);
        }
    }
}

static void start_resolve(sc_upstream_t *up)
{
    char port[8];
    struct addrinfo hints;
    if (up->resolving)
        return;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    snprintf(port, sizeof(port), "%u", (unsigned)up->port);
    up->resolving = 1;
    int rc = uv_getaddrinfo(&up->worker->base.loop, &up->gai, on_resolved, up->host, port, &hints);
    if (rc != 0) {
        up->resolving = 0;
        snprintf(up->dns_error, sizeof(up->dns_error), "%s", uv_strerror(rc));
    }
}

/* Picks the next address round robin, skipping ones in backoff (unless all are). */
static size_t pick_addr(sc_upstream_t *up)
{
    uint64_t now = uv_now(&up->worker->base.loop);
    size_t best = up->next_addr % up->num_addrs;
    for (size_t i = 0; i != up->num_addrs; ++i) {
        size_t idx = (up->next_addr + i) % up->num_addrs;
        if (up->addrs[idx].down_until <= now) {
            best = idx;
            break;
        }
        if (up->addrs[idx].down_until < up->addrs[best].down_until)
            best = idx;
    }
    up->next_addr = best + 1;
    return best;
}

static void mark_down(sc_upstream_t *up, size_t idx)
{
    if (idx >= up->num_addrs)
        return;
    sc_upstream_addr_t *a = &up->addrs[idx];
    a->backoff_ms = a->backoff_ms == 0 ? SC_UPSTREAM_BACKOFF_MIN_MS : a->backoff_ms * 2;
    if (a->backoff_ms > SC_UPSTREAM_BACKOFF_MAX_MS)
        a->backoff_ms = SC_UPSTREAM_BACKOFF_MAX_MS;
    a->down_until = uv_now(&up->worker->base.loop) + a->backoff_ms;
}

/* ---- mesh connection I/O ---- */

static void on_conn_write(h2o_socket_t *sock, const char *err)
{
    sc_h2conn_t *conn = sock->data;
    if (conn == NULL)
        return; /* closed by us meanwhile */
    conn->writing = 0;
    h2o_buffer_consume(&conn->wbuf_inflight, conn->wbuf_inflight->size);
    if (err != NULL) {
        char detail[200];
        snprintf(detail, sizeof(detail), "the mesh connection failed while writing (%s)", err);
        conn_close(conn, 502, "upstream-closed", detail);
        return;
    }
    conn_flush(conn);
}

/* Moves frames from nghttp2 to the socket; one write in flight at a time, which paces DATA to the network. */
static void conn_flush(sc_h2conn_t *conn)
{
    if (conn->writing || conn->in_callback || conn->sock == NULL || conn->state != CONN_READY)
        return;
    while (conn->wbuf->size < SC_UPSTREAM_WRITE_BATCH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(conn->session, &data);
        if (n < 0) {
            conn_close(conn, 502, crt_diag_slug(CRT_DIAG_TLS_ERROR), nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        h2o_iovec_t dst = h2o_buffer_reserve(&conn->wbuf, (size_t)n);
        memcpy(dst.base, data, (size_t)n);
        conn->wbuf->size += (size_t)n;
    }
    if (conn->wbuf->size == 0) {
        if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))
            conn_close(conn, 502, "upstream-closed", "the upstream closed the mesh connection");
        return;
    }
    h2o_buffer_t *tmp = conn->wbuf_inflight;
    conn->wbuf_inflight = conn->wbuf;
    conn->wbuf = tmp;
    conn->writing = 1;
    h2o_iovec_t buf = h2o_iovec_init(conn->wbuf_inflight->bytes, conn->wbuf_inflight->size);
    h2o_socket_write(conn->sock, &buf, 1, on_conn_write);
}

static size_t max_streams(sc_h2conn_t *conn)
{
    if (conn->session == NULL || !conn->got_frame)
        return SC_UPSTREAM_STREAMS_DEFAULT;
    uint32_t n = nghttp2_session_get_remote_settings(conn->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return n == 0 ? 1 : n;
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    sc_h2conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_h2conn_t, idle_entry, entry);
    if (conn->num_streams == 0)
        conn_close(conn, 502, "idle", "idle");
}

/* A stream left the connection. Returns 1 when that closed (and freed) the connection. */
static int conn_stream_detached(sc_h2conn_t *conn)
{
    --conn->num_streams;
    if (conn->num_streams == 0 && conn->state != CONN_READY) {
        /* nobody waits for this connect or handshake any more (timed out or gone): give it up */
        conn_close(conn, 502, "", "");
        return 1;
    }
    if (conn->num_streams == 0 && !h2o_timeout_is_linked(&conn->idle_entry))
        h2o_timeout_link(&conn->up->worker->base.loop, &conn->up->worker->idle_timeout, &conn->idle_entry);
    return 0;
}

/* Takes a stream off whatever it waits on or runs on; resets it on the mesh connection if it was sent. */
static void stream_detach(sc_ostream_t *st)
{
    if (h2o_timeout_is_linked(&st->timeout))
        h2o_timeout_unlink(&st->timeout);
    if (h2o_linklist_is_linked(&st->link))
        h2o_linklist_unlink(&st->link);
    sc_h2conn_t *conn = st->conn;
    if (conn == NULL)
        return;
    st->conn = NULL;
    if (st->stream_id > 0 && conn->session != NULL) {
        if (!st->closed) {
            nghttp2_session_set_stream_user_data(conn->session, st->stream_id, NULL);
            nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, st->stream_id, NGHTTP2_CANCEL);
            st->closed = 1;
        }
        if (st->unconsumed != 0)
            nghttp2_session_consume_connection(conn->session, st->unconsumed);
        st->unconsumed = 0;
    }
    if (!conn_stream_detached(conn))
        conn_flush(conn);
}

/* Answers the app with an error (before any response was started), or aborts a started response. */
static void stream_fail(sc_ostream_t *st, int status, const char *category, const char *detail)
{
    h2o_req_t *req = st->req;
    if (st->done)
        return;
    stream_detach(st);
    st->done = 1;
    set_env(req, H2O_STRLIT(ENV_ERROR), category, strlen(category));
    if (st->response_started) {
        cmn_log_warn("outbound %.*s%.*s via %s: response aborted: %s: %s", (int)st->authority.len, st->authority.base,
                     (int)st->path.len, st->path.base, st->up != NULL ? st->up->session_key : "-", category, detail);
        if (!st->sending)
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        else
            st->eos = -1; /* the error goes out when h2o asks for more */
        return;
    }
    const char *reason = status == 404 ? "Not Found"
                         : status == 503 ? "Service Unavailable"
                         : status == 504 ? "Gateway Timeout"
                                         : "Bad Gateway";
    char body[1200];
    if (status == 404) {
        snprintf(body, sizeof(body), "no route: %s\n", detail);
    } else {
        snprintf(body, sizeof(body), "%s: %s: %s (upstream %s, identity %s)\n",
                 status == 502 ? "upstream TLS failure" : status == 504 ? "upstream timeout" : "upstream unavailable",
                 category, detail, st->up != NULL ? st->up->session_key : "-", st->up != NULL ? st->up->identity : "-");
        cmn_log_warn("outbound %.*s%.*s: %d %s", (int)st->authority.len, st->authority.base, (int)st->path.len,
                     st->path.base, status, body);
    }
    h2o_send_error_generic(req, status, reason, body, H2O_SEND_ERROR_KEEP_HEADERS);
}

static void on_stream_timeout(h2o_timeout_entry_t *entry)
{
    sc_ostream_t *st = H2O_STRUCT_FROM_MEMBER(sc_ostream_t, timeout, entry);
    char detail[128];
    snprintf(detail, sizeof(detail), "no response within %llu ms",
             (unsigned long long)st->worker->outbound->upstream_timeout_ms);
    if (st->conn != NULL && st->conn->state != CONN_READY)
        sc_metrics_count_handshake_error(&st->worker->metrics, SC_REASON_TIMEOUT);
    stream_fail(st, 504, crt_diag_slug(CRT_DIAG_TIMEOUT), detail);
}

/* Hands buffered response bytes to h2o; one send in flight, the rest waits for proceed. */
static void stream_send(sc_ostream_t *st)
{
    if (st->sending || !st->response_started || st->done)
        return;
    if (st->pending->size == 0 && !st->eos)
        return;
    h2o_buffer_t *tmp = st->inflight;
    st->inflight = st->pending;
    st->pending = tmp;
    h2o_iovec_t buf = h2o_iovec_init(st->inflight->bytes, st->inflight->size);
    h2o_send_state_t state = st->eos > 0 ? H2O_SEND_STATE_FINAL : st->eos < 0 ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_IN_PROGRESS;
    st->sending = 1;
    if (state != H2O_SEND_STATE_IN_PROGRESS)
        st->done = 1;
    h2o_send(st->req, &buf, buf.len != 0 ? 1 : 0, state);
}

static void on_generator_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    sc_ostream_t *st = (void *)gen;
    size_t sent = st->inflight->size;
    (void)req;
    st->sending = 0;
    h2o_buffer_consume(&st->inflight, sent);
    if (st->conn != NULL && st->conn->session != NULL && sent != 0 && st->unconsumed >= sent) {
        /* the app took the bytes: only now may the upstream send more */
        if (st->closed)
            nghttp2_session_consume_connection(st->conn->session, sent);
        else
            nghttp2_session_consume(st->conn->session, st->stream_id, sent);
        st->unconsumed -= sent;
        conn_flush(st->conn);
    }
    if (st->eos < 0 && st->pending->size == 0) {
        st->done = 1;
        h2o_send(st->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    stream_send(st);
}

static void on_generator_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    sc_ostream_t *st = (void *)gen;
    (void)req;
    st->done = 1;
    stream_detach(st);
}

/* The request's pool is going away: nothing may point at the stream after this. */
static void on_stream_dispose(void *p)
{
    sc_ostream_t *st = p;
    stream_detach(st);
    h2o_buffer_dispose(&st->pending);
    h2o_buffer_dispose(&st->inflight);
}

/* ---- nghttp2 callbacks ---- */

static sc_ostream_t *stream_of(nghttp2_session *session, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(session, id) : NULL;
}

static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    sc_ostream_t *st = stream_of(session, stream_id);
    (void)source, (void)user_data;
    if (st == NULL) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    /* the app's body streams through: what the app sent so far, and the app may send more once it left */
    sc_front_body_t *body = sc_front_req_body(st->req);
    size_t n = body->buf->size < length ? body->buf->size : length;
    if (n != 0) {
        memcpy(buf, body->buf->bytes, n);
        sc_front_body_consume(st->req, n);
        st->body_sent += n;
    }
    if (body->buf->size == 0) {
        if (body->complete) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (body->failed) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the app went away mid-body: reset the stream */
        } else if (n == 0) {
            st->body_deferred = 1;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

/* More of the app's request body arrived (or all of it, or it broke off): the upstream stream may go on. */
static void on_body_change(void *data)
{
    sc_ostream_t *st = data;
    if (!st->body_deferred || st->conn == NULL || st->stream_id <= 0 || st->closed || st->conn->session == NULL)
        return;
    st->body_deferred = 0;
    nghttp2_session_resume_data(st->conn->session, st->stream_id);
    conn_flush(st->conn);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    sc_ostream_t *st = stream_of(session, frame->hd.stream_id);
    (void)flags, (void)user_data;
    if (st == NULL || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_RESPONSE)
        return 0; /* trailers and informational responses' fields are not forwarded (h2o cannot send trailers) */
    h2o_req_t *req = st->req;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int status = 0;
        for (size_t i = 0; i != valuelen && i < 3; ++i)
            status = status * 10 + (value[i] - '0');
        req->res.status = status;
        return 0;
    }
    if (name[0] == ':' || req->res.status < 200)
        return 0;
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        size_t len = h2o_strtosize((const char *)value, valuelen);
        if (len != SIZE_MAX)
            req->res.content_length = len;
        return 0;
    }
    if (sc_forward_drop_header((sc_slice_t){(const char *)name, namelen}, (sc_slice_t){NULL, 0}))
        return 0;
    h2o_iovec_t n = h2o_strdup(&req->pool, (const char *)name, namelen);
    h2o_iovec_t v = h2o_strdup(&req->pool, (const char *)value, valuelen);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_ostream_t *st = stream_of(session, frame->hd.stream_id);
    (void)user_data;
    if (st != NULL && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        st->req->res.status = 0;
        st->req->res.content_length = SIZE_MAX;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_h2conn_t *conn = user_data;
    if (!conn->got_frame) {
        /* the server's first frame: it accepted our certificate, the handshake is confirmed */
        conn->got_frame = 1;
        sc_metrics_count_handshake(&conn->up->worker->metrics, conn->resumed);
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        conn->goaway = 1;
        conn->goaway_last_id = frame->goaway.last_stream_id;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
            cmn_log_warn("mesh connection to %s: the upstream sent GOAWAY %s (last stream %d): %.*s",
                         conn->up->session_key, nghttp2_http2_strerror(frame->goaway.error_code),
                         (int)frame->goaway.last_stream_id, (int)(frame->goaway.opaque_data_len > 200 ? 200 : frame->goaway.opaque_data_len),
                         (const char *)frame->goaway.opaque_data);
        return 0;
    }
    sc_ostream_t *st = stream_of(session, frame->hd.stream_id);
    if (st == NULL || st->done)
        return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        if (st->req->res.status < 200) {
            st->req->res.status = 0; /* 1xx: wait for the final response */
            return 0;
        }
        if (h2o_timeout_is_linked(&st->timeout))
            h2o_timeout_unlink(&st->timeout);
        st->response_started = 1;
        st->eos = end;
        h2o_start_response(st->req, &st->super);
        stream_send(st);
    } else if (end && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
        st->eos = 1;
        stream_send(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data)
{
    sc_ostream_t *st = stream_of(session, stream_id);
    (void)flags, (void)user_data;
    if (st == NULL || st->done) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    h2o_iovec_t dst = h2o_buffer_reserve(&st->pending, len);
    memcpy(dst.base, data, len);
    st->pending->size += len;
    st->unconsumed += len;
    stream_send(st);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    sc_ostream_t *st = stream_of(session, stream_id);
    sc_h2conn_t *conn = user_data;
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    st->closed = 1;
    /* bytes still buffered for the app no longer count against the connection window */
    if (st->unconsumed != 0)
        nghttp2_session_consume_connection(session, st->unconsumed);
    st->unconsumed = 0;
    if (h2o_linklist_is_linked(&st->link))
        h2o_linklist_unlink(&st->link);
    st->conn = NULL;
    (void)conn_stream_detached(conn); /* a ready connection: never closed here */
    if (st->done)
        return 0;
    if (error_code == NGHTTP2_REFUSED_STREAM && !st->retried && !st->response_started && st->body_sent == 0) {
        /* the server did not process it (RFC 9113 8.7): send it again, on another connection */
        st->retried = 1;
        st->closed = 0;
        st->stream_id = 0;
        st->body_deferred = 0;
        stream_submit(st);
        return 0;
    }
    if (error_code != NGHTTP2_NO_ERROR || !st->response_started) {
        char detail[128];
        snprintf(detail, sizeof(detail), "the upstream reset the stream (%s)", nghttp2_http2_strerror(error_code));
        stream_fail(st, 502, "upstream-reset", detail);
    } else if (!st->eos) {
        st->eos = 1;
        stream_send(st);
    }
    return 0;
}

/* ---- connection set-up ---- */

static void on_conn_read(h2o_socket_t *sock, const char *err)
{
    sc_h2conn_t *conn = sock->data;
    if (conn == NULL || sc_sockio_read_spurious(sock, err))
        return; /* closed by us meanwhile, or nothing to read yet */
    if (err != NULL) {
        if (!conn->got_frame && conn->alert >= 0) {
            /* TLS 1.3: the server judges our certificate after its Finished and answers with an alert */
            char detail[160];
            crt_diag_t diag = conn->alert == SSL_AD_CERTIFICATE_REQUIRED ? CRT_DIAG_CLIENT_CERT_REQUIRED
                                                                         : CRT_DIAG_CLIENT_CERT_REJECTED;
            snprintf(detail, sizeof(detail), "the upstream sent TLS alert %d (%s) after our certificate", conn->alert,
                     SSL_alert_desc_string_long(conn->alert));
            sc_metrics_count_handshake_error(&conn->up->worker->metrics, crt_diag_slug(diag));
            conn_close(conn, 502, crt_diag_slug(diag), detail);
        } else {
            char detail[200];
            snprintf(detail, sizeof(detail), "the upstream closed the mesh connection (%s)", err);
            conn_close(conn, 502, "upstream-closed", detail);
        }
        return;
    }
    conn->in_callback = 1;
    ssize_t n = nghttp2_session_mem_recv(conn->session, (const uint8_t *)sock->input->bytes, sock->input->size);
    conn->in_callback = 0;
    if (n < 0) {
        cmn_log_warn("mesh connection to %s: HTTP/2 error: %s", conn->up->session_key, nghttp2_strerror((int)n));
        conn_close(conn, 502, "upstream-protocol-error", nghttp2_strerror((int)n));
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
    conn_flush(conn);
}

static const char *handshake_category(sc_h2conn_t *conn, const char *err, char *detail, size_t cap)
{
    if (conn->verify_rc != 1 && conn->verify_rc != 0) {
        snprintf(detail, cap, "%s", conn->verify_detail);
        return crt_diag_slug(crt_diag_from_verify_error(conn->verify_rc));
    }
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER || ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG)) {
        snprintf(detail, cap, "the upstream does not speak TLS");
        ERR_clear_error();
        return crt_diag_slug(CRT_DIAG_PLAIN_HTTP);
    }
    if (conn->alert == SSL_AD_PROTOCOL_VERSION || conn->alert == SSL_AD_HANDSHAKE_FAILURE ||
        conn->alert == SSL_AD_INSUFFICIENT_SECURITY) {
        snprintf(detail, cap, "the upstream sent TLS alert %d", conn->alert);
        ERR_clear_error();
        return crt_diag_slug(CRT_DIAG_NO_SHARED_CIPHER);
    }
    snprintf(detail, cap, "%s", err);
    ERR_clear_error();
    return crt_diag_slug(CRT_DIAG_TLS_ERROR);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    sc_h2conn_t *conn = sock->data;
    if (conn == NULL)
        return;
    char detail[700];
    sc_metrics_t *metrics = &conn->up->worker->metrics;

    /* the identity was proved in the verify callback; h2o's DNS-name check does not apply to SPIFFE certificates */
    if (err != NULL && err != h2o_socket_error_ssl_cert_name_mismatch) {
        const char *category = handshake_category(conn, err, detail, sizeof(detail));
        sc_metrics_count_handshake_error(metrics, category);
        conn_close(conn, 502, category, detail);
        return;
    }
    conn->resumed = h2o_socket_get_ssl_session_reused(sock);
    /* a resumed session skips verification: check the identity it was made with */
    X509 *peer = conn->ssl != NULL ? SSL_get_peer_certificate(conn->ssl) : NULL;
    char got[CRT_SPIFFE_ID_MAX + 1] = "";
    if (peer == NULL || crt_cert_spiffe_id(peer, got, sizeof(got)) != 0 || strcmp(got, conn->up->identity) != 0) {
        snprintf(detail, sizeof(detail), "expected %s, got %s", conn->up->identity, got[0] != '\0' ? got : "(none)");
        X509_free(peer);
        sc_metrics_count_handshake_error(metrics, crt_diag_slug(CRT_DIAG_NAME_MISMATCH));
        conn_close(conn, 502, crt_diag_slug(CRT_DIAG_NAME_MISMATCH), detail);
        return;
    }
    X509_free(peer);
    snprintf(conn->peer_id, sizeof(conn->peer_id), "%s", got);
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (!h2o_memis(proto.base, proto.len, H2O_STRLIT("h2"))) {
        sc_metrics_count_handshake_error(metrics, crt_diag_slug(CRT_DIAG_TLS_ERROR));
        conn_close(conn, 502, crt_diag_slug(CRT_DIAG_TLS_ERROR), "the upstream did not select ALPN h2");
        return;
    }
    conn->state = CONN_READY;
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SC_UPSTREAM_STREAM_WINDOW}};
    nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
    nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, SC_UPSTREAM_CONN_WINDOW);
    /* send what waited for the handshake */
    for (h2o_linklist_t *n = conn->streams.next; n != &conn->streams;) {
        sc_ostream_t *st = H2O_STRUCT_FROM_MEMBER(sc_ostream_t, link, n);
        n = n->next;
        stream_submit(st);
    }
    h2o_socket_read_start(sock, on_conn_read);
    if (sock->input->size != 0)
        on_conn_read(sock, NULL); /* bytes decrypted together with the handshake */
    else
        conn_flush(conn);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    sc_h2conn_t *conn = sock->data;
    if (conn == NULL)
        return; /* closed by us meanwhile */
    if (err != NULL) {
        char detail[300];
        mark_down(conn->up, conn->addr_index);
        snprintf(detail, sizeof(detail), "cannot connect to %s: %s", conn->up->session_key, err);
        conn_close(conn, 503, crt_diag_slug(CRT_DIAG_CONNECTION_REFUSED), detail);
        return;
    }
    conn->up->addrs[conn->addr_index].backoff_ms = 0;
    conn->state = CONN_HANDSHAKING;
    h2o_socket_ssl_handshake(sock, conn->tls->client_ctx, conn->up->host, on_handshake);
}

static void on_socket_close_noop(void *data)
{
    (void)data;
}

/*
 * May a stream whose connection went away be sent again? Only once, only before
 * any response, and only when the server cannot have acted on it: never sent,
 * refused by GOAWAY, or an idempotent method (RFC 9110 9.2.2).
 */
static int may_retry(sc_h2conn_t *conn, sc_ostream_t *st)
{
    h2o_iovec_t m = st->req->method;
    if (st->retried || st->response_started || st->done || st->body_sent != 0)
        return 0; /* body bytes already passed on are gone: they cannot be sent twice */
    if (st->stream_id <= 0 || (conn->goaway && st->stream_id > conn->goaway_last_id))
        return 1;
    return h2o_memis(m.base, m.len, H2O_STRLIT("GET")) || h2o_memis(m.base, m.len, H2O_STRLIT("HEAD")) ||
           h2o_memis(m.base, m.len, H2O_STRLIT("OPTIONS"));
}

/* Closes a mesh connection, answering every stream on it with status/category (or aborting started ones). */
static void conn_close(sc_h2conn_t *conn, int status, const char *category, const char *detail)
{
    if (conn->in_callback)
        return; /* on_conn_read closes after nghttp2 returns */
    /* off the pool first, so that a retried stream goes elsewhere */
    if (h2o_linklist_is_linked(&conn->link))
        h2o_linklist_unlink(&conn->link);
    /* a connection that worked and then went away (idle close, restart): some streams can go again */
    int retry_ok = conn->state == CONN_READY && strcmp(category, "upstream-closed") == 0;
    while (!h2o_linklist_is_empty(&conn->streams)) {
        sc_ostream_t *st = H2O_STRUCT_FROM_MEMBER(sc_ostream_t, link, conn->streams.next);
        int retry = retry_ok && may_retry(conn, st);
        if (st->stream_id > 0 && conn->session != NULL) {
            nghttp2_session_set_stream_user_data(conn->session, st->stream_id, NULL);
            if (st->unconsumed != 0)
                nghttp2_session_consume_connection(conn->session, st->unconsumed);
            st->unconsumed = 0;
            st->closed = !retry;
        }
        h2o_linklist_unlink(&st->link);
        st->conn = NULL;
        --conn->num_streams;
        if (retry) {
            st->retried = 1;
            st->stream_id = 0;
            st->body_deferred = 0;
            stream_submit(st);
        } else {
            stream_fail(st, status, category, detail);
        }
    }
    if (h2o_timeout_is_linked(&conn->idle_entry))
        h2o_timeout_unlink(&conn->idle_entry);
    if (conn->state == CONN_READY && strcmp(category, "idle") != 0)
        cmn_log_info("mesh connection to %s closed: %s: %s", conn->up->session_key, category, detail);
    if (conn->session != NULL)
        nghttp2_session_del(conn->session);
    if (conn->sock != NULL) {
        conn->sock->data = NULL;
        conn->sock->on_close.cb = on_socket_close_noop;
        sc_sockio_close(conn->sock);
    }
    sc_metrics_upstream_connection_delta(&conn->up->worker->metrics, -1);
    h2o_buffer_dispose(&conn->wbuf);
    h2o_buffer_dispose(&conn->wbuf_inflight);
    sc_tls_release(conn->tls);
    free(conn);
}

static nghttp2_session_callbacks *client_callbacks(void)
{
    static __thread nghttp2_session_callbacks *cbs; /* one per worker thread, built once */
    if (cbs == NULL && nghttp2_session_callbacks_new(&cbs) == 0) {
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    }
    return cbs;
}

static sc_h2conn_t *conn_open(sc_upstream_t *up)
{
    sc_oworker_t *w = up->worker;
    sc_h2conn_t *conn = calloc(1, sizeof(*conn));
    nghttp2_option *opt = NULL;
    if (conn == NULL)
        return NULL;
    conn->up = up;
    conn->alert = -1;
    conn->verify_rc = 1;
    conn->tls = w->tls;
    sc_tls_addref(conn->tls);
    h2o_linklist_init_anchor(&conn->streams);
    h2o_buffer_init(&conn->wbuf, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&conn->wbuf_inflight, &h2o_socket_buffer_prototype);
    conn->idle_entry.cb = on_idle_timeout;
    h2o_linklist_insert(&up->conns, &conn->link);
    sc_metrics_upstream_connection_delta(&w->metrics, 1);
    if (client_callbacks() == NULL || nghttp2_option_new(&opt) != 0)
        goto Fail;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, SC_UPSTREAM_STREAMS_DEFAULT);
    int rc = nghttp2_session_client_new2(&conn->session, client_callbacks(), conn, opt);
    nghttp2_option_del(opt);
    if (rc != 0)
        goto Fail;
    conn->addr_index = pick_addr(up);
    sc_upstream_addr_t *a = &up->addrs[conn->addr_index];
    conn->state = CONN_CONNECTING;
    if ((conn->sock = h2o_socket_connect(&w->base.loop, (struct sockaddr *)&a->sa, a->len, on_connect)) == NULL) {
        mark_down(up, conn->addr_index);
        goto Fail;
    }
    conn->sock->data = conn;
    return conn;
Fail:
    conn_close(conn, 503, "", "");
    return NULL;
}

/* ---- routing by the original destination (--transparent) ---- */

/* An IP address without its port: 4 bytes (AF_INET) or 16 (AF_INET6). */
typedef struct st_sc_ip_t {
    int family;
    unsigned char addr[16];
} sc_ip_t;

/* The address and port of an IPv4 or IPv6 socket address; an IPv4-mapped IPv6 address counts as IPv4. */
static int ip_of_sockaddr(const struct sockaddr *sa, sc_ip_t *ip, uint16_t *port)
{
    memset(ip, 0, sizeof(*ip));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        ip->family = AF_INET;
        memcpy(ip->addr, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            ip->family = AF_INET;
            memcpy(ip->addr, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            ip->family = AF_INET6;
            memcpy(ip->addr, &in6->sin6_addr, 16);
        }
        *port = ntohs(in6->sin6_port);
        return 0;
    }
    return -1;
}

/* Parses an IP literal of a routes file ("192.0.2.2", "[2001:db8::2]" or, for an upstream, "2001:db8::2"). */
static int ip_of_text(const char *text, sc_ip_t *ip)
{
    char bare[INET6_ADDRSTRLEN + 1];
    size_t len = strlen(text);

    /* DNS names are most routes: skip them without a parse */
    if (len == 0 || !((text[0] >= '0' && text[0] <= '9') || text[0] == '[' || memchr(text, ':', len) != NULL))
        return -1;
    if (text[0] == '[') {
        if (len < 3 || text[len - 1] != ']' || len - 2 >= sizeof(bare))
            return -1;
        memcpy(bare, text + 1, len - 2);
        bare[len - 2] = '\0';
    } else {
        if (len >= sizeof(bare))
            return -1;
        memcpy(bare, text, len + 1);
    }
    memset(ip, 0, sizeof(*ip));
    if (inet_pton(AF_INET, bare, ip->addr) == 1) {
        ip->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, bare, ip->addr) == 1) {
        struct in6_addr v6;
        memcpy(&v6, ip->addr, sizeof(v6));
        if (IN6_IS_ADDR_V4MAPPED(&v6)) {
            memmove(ip->addr, ip->addr + 12, 4);
            memset(ip->addr + 4, 0, 12);
            ip->family = AF_INET;
        } else {
            ip->family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

static int ip_equal(const sc_ip_t *a, const sc_ip_t *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

int sc_outbound_format_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    sc_ip_t ip;
    uint16_t port;
    int n;

    if (cap == 0)
        return -1;
    buf[0] = '\0';
    if (ip_of_sockaddr(sa, &ip, &port) != 0 || inet_ntop(ip.family, ip.addr, text, sizeof(text)) == NULL)
        return -1;
    if (ip.family == AF_INET6)
        n = snprintf(buf, cap, "[%s]:%u", text, (unsigned)port);
    else
        n = snprintf(buf, cap, "%s:%u", text, (unsigned)port);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

const sc_route_t *sc_outbound_route_redirected(const sc_routes_t *routes, const struct sockaddr *original_dst,
                                               const char *host, size_t host_len, int *by_dst)
{
    const sc_route_t *by_upstream = NULL;
    sc_ip_t dst, ip;
    uint16_t port;

    *by_dst = 0;
    if (ip_of_sockaddr(original_dst, &dst, &port) == 0) {
        /* the common case, a route named by an IPv4 address, is a binary search */
        char text[INET6_ADDRSTRLEN];
        const sc_route_t *route;
        if (dst.family == AF_INET && inet_ntop(AF_INET, dst.addr, text, sizeof(text)) != NULL &&
            (route = sc_routes_find(routes, text, strlen(text))) != NULL) {
            *by_dst = 1;
            return route;
        }
        /* IPv6 literals have many spellings, and upstreams are not indexed: compare addresses */
        for (size_t i = 0; i != sc_routes_count(routes); ++i) {
            route = sc_routes_at(routes, i);
            if (ip_of_text(route->host, &ip) == 0 && ip_equal(&ip, &dst)) {
                *by_dst = 1;
                return route;
            }
            if (by_upstream == NULL && route->upstream_port == port && ip_of_text(route->upstream_host, &ip) == 0 &&
                ip_equal(&ip, &dst))
                by_upstream = route;
        }
        if (by_upstream != NULL) {
            *by_dst = 1;
            return by_upstream;
        }
    }
    return host != NULL && host_len != 0 ? sc_routes_find(routes, host, host_len) : NULL;
}

/* ---- requests ---- */

/* Sends (or queues) a stream on a connection of its upstream with room for it. */
static void stream_submit(sc_ostream_t *st)
{
    sc_upstream_t *up = st->up;
    sc_h2conn_t *conn = st->conn;
    h2o_req_t *req = st->req;

    if (conn == NULL) {
        for (h2o_linklist_t *n = up->conns.next; n != &up->conns; n = n->next) {
            sc_h2conn_t *c = H2O_STRUCT_FROM_MEMBER(sc_h2conn_t, link, n);
            if (!c->goaway && c->num_streams < max_streams(c)) {
                conn = c;
                break;
            }
        }
        if (conn == NULL && (conn = conn_open(up)) == NULL) {
            char detail[300];
            snprintf(detail, sizeof(detail), "cannot open a connection to %s", up->session_key);
            stream_fail(st, 503, crt_diag_slug(CRT_DIAG_CONNECTION_REFUSED), detail);
            return;
        }
        st->conn = conn;
        ++conn->num_streams;
        h2o_linklist_insert(&conn->streams, &st->link);
        if (h2o_timeout_is_linked(&conn->idle_entry))
            h2o_timeout_unlink(&conn->idle_entry);
    }
    if (conn->state != CONN_READY)
        return; /* on_handshake submits it */

    set_env(req, H2O_STRLIT(ENV_PEER), conn->peer_id, strlen(conn->peer_id));
    const char *version = h2o_socket_get_ssl_protocol_version(conn->sock);
    set_env(req, H2O_STRLIT(ENV_TLS), version, strlen(version));
    set_env(req, H2O_STRLIT(ENV_RESUMED), conn->resumed ? "1" : "0", 1);

    size_t max = req->headers.size + 5, n = 0;
    nghttp2_nv *nva = h2o_mem_alloc_pool(&req->pool, sizeof(*nva) * max);
#define NV(nm, nmlen, val, vallen)                                                                                    \
    nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), (nmlen), (vallen), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    NV(":method", 7, req->method.base, req->method.len);
    NV(":scheme", 7, "https", 5);
    NV(":authority", 10, st->authority.base, st->authority.len);
    NV(":path", 5, st->path.base, st->path.len);
    ssize_t ci = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1);
    sc_slice_t connection = ci != -1 ? (sc_slice_t){req->headers.entries[ci].value.base, req->headers.entries[ci].value.len}
                                     : (sc_slice_t){NULL, 0};
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (sc_forward_drop_header((sc_slice_t){h->name->base, h->name->len}, connection))
            continue;
        NV(h->name->base, h->name->len, h->value.base, h->value.len);
    }
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = on_read_body};
    sc_front_body_t *body = sc_front_req_body(req);
    if (body->expected && body->length != UINT64_MAX) {
        char *clen = h2o_mem_alloc_pool(&req->pool, sizeof(H2O_UINT64_LONGEST_STR));
        int len = snprintf(clen, sizeof(H2O_UINT64_LONGEST_STR), "%llu", (unsigned long long)body->length);
        NV("content-length", 14, clen, (size_t)len);
    }
#undef NV
    int32_t id = nghttp2_submit_request(conn->session, NULL, nva, n, body->expected ? &prd : NULL, st);
    if (id < 0) {
        stream_fail(st, 502, "upstream-protocol-error", nghttp2_strerror(id));
        return;
    }
    st->stream_id = id;
    conn_flush(conn);
}

static sc_app_conn_t *app_conn_of_req(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock != NULL ? sock->on_close.data : NULL;
}

static int on_outbound_req(h2o_handler_t *self, h2o_req_t *req)
{
    sc_oworker_t *w = worker_of_ctx(req->conn->ctx);
    h2o_iovec_t authority, path;
    sc_slice_t host, target;
    (void)self;

    /* --transparent: the original destination was read once, when the connection was accepted */
    sc_app_conn_t *app = w->outbound->transparent ? app_conn_of_req(req) : NULL;
    int redirected = app != NULL && app->redirected;
    if (redirected)
        set_env(req, H2O_STRLIT(ENV_ORIGINAL_DST), app->original_dst_text, strlen(app->original_dst_text));

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("CONNECT"))) {
        set_env(req, H2O_STRLIT(ENV_ERROR), "connect-refused", 15);
        h2o_send_error_generic(req, 405, "Method Not Allowed", "CONNECT is not supported: send plain HTTP\n", 0);
        return 0;
    }
    /* a forward-proxy request names its target in an absolute-form URI, which wins over Host */
    switch (sc_forward_target((sc_slice_t){req->input.authority.base, req->input.authority.len},
                              (sc_slice_t){req->input.path.base, req->input.path.len}, &host, &target)) {
    case SC_TARGET_OK:
        break;
    case SC_TARGET_NOT_HTTP:
        set_env(req, H2O_STRLIT(ENV_ERROR), "bad-target", 10);
        h2o_send_error_generic(req, 400, "Bad Request",
                               "only http:// targets: the app speaks plain HTTP to its sidecar, which adds mTLS\n", 0);
        return 0;
    default:
        set_env(req, H2O_STRLIT(ENV_ERROR), "bad-target", 10);
        h2o_send_error_generic(req, 400, "Bad Request", "the request names no host (Host header or absolute URI)\n", 0);
        return 0;
    }
    authority = h2o_iovec_init(host.base, host.len);
    if (target.len == 0 || target.base[0] != '/')
        path = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("/")), h2o_iovec_init(target.base, target.len));
    else
        path = h2o_iovec_init(target.base, target.len);
    const sc_route_t *route;
    int by_dst = 0;
    if (redirected)
        route = sc_outbound_route_redirected(w->routes, (const struct sockaddr *)&app->original_dst, authority.base,
                                             authority.len, &by_dst);
    else
        route = authority.base != NULL ? sc_routes_find(w->routes, authority.base, authority.len) : NULL;
    sc_ostream_t *st = h2o_mem_alloc_shared(&req->pool, sizeof(*st), on_stream_dispose);
    memset(st, 0, sizeof(*st));
    st->super.proceed = on_generator_proceed;
    st->super.stop = on_generator_stop;
    st->req = req;
    st->worker = w;
    st->authority = authority;
    st->path = path;
    st->timeout.cb = on_stream_timeout;
    h2o_buffer_init(&st->pending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&st->inflight, &h2o_socket_buffer_prototype);
    sc_front_body_t *body = sc_front_req_body(req);
    body->on_change = on_body_change;
    body->data = st;
    if (route == NULL) {
        char detail[500];
        if (redirected)
            snprintf(detail, sizeof(detail), "no route for original destination %s or host \"%.*s\"",
                     app->original_dst_text, (int)(authority.len > 300 ? 300 : authority.len),
                     authority.base != NULL ? authority.base : "");
        else
            snprintf(detail, sizeof(detail), "no route for host \"%.*s\"", (int)(authority.len > 300 ? 300 : authority.len),
                     authority.base != NULL ? authority.base : "");
        set_env(req, H2O_STRLIT(ENV_ERROR), "no-route", 8);
        st->done = 1;
        h2o_send_error_generic(req, 404, "Not Found", detail, 0);
        return 0;
    }
    if ((st->up = find_upstream(w, route)) == NULL) {
        st->done = 1;
        h2o_send_error_generic(req, 503, "Service Unavailable", "out of memory\n", 0);
        return 0;
    }
    h2o_timeout_link(&w->base.loop, &w->upstream_timeout, &st->timeout);
    sc_upstream_t *up = st->up;
    if (up->num_addrs == 0 || uv_now(&w->base.loop) - up->resolved_at > SC_UPSTREAM_RESOLVE_MS)
        start_resolve(up);
    if (up->num_addrs == 0) {
        if (up->resolving) {
            h2o_linklist_insert(&up->waiting, &st->link);
        } else {
            char detail[300];
            snprintf(detail, sizeof(detail), "cannot resolve %s: %s", up->host, up->dns_error);
            stream_fail(st, 503, crt_diag_slug(CRT_DIAG_DNS_FAILURE), detail);
        }
        return 0;
    }
    stream_submit(st);
    return 0;
}

/* ---- access log ---- */

/* An env value for the log: null when absent or empty. */
static void log_env(sc_logline_t *line, const char *key, h2o_req_t *req, const char *name, size_t len)
{
    h2o_iovec_t *v = h2o_req_getenv(req, name, len, 0);
    sc_logline_str(line, key, v != NULL && v->len != 0 ? v->base : NULL, v != NULL ? v->len : 0);
}

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    sc_oworker_t *w = worker_of_ctx(req->conn->ctx);
    struct timeval end = req->timestamps.response_end_at;
    (void)self;

    if (end.tv_sec == 0)
        gettimeofday(&end, NULL);
    int64_t duration_us = (int64_t)(end.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                          (end.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (duration_us < 0)
        duration_us = 0;
    sc_metrics_count_request(&w->metrics, req->res.status, (uint64_t)duration_us);

    h2o_iovec_t *resumed = h2o_req_getenv(req, H2O_STRLIT(ENV_RESUMED), 0);
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(&w->accesslog, &line, "ts", &req->timestamps.request_begin_at);
    sc_logline_cstr(&line, "direction", "outbound");
    log_env(&line, "peer_id", req, H2O_STRLIT(ENV_PEER));
    sc_logline_str(&line, "method", req->input.method.base, req->input.method.len);
    sc_logline_str(&line, "authority", req->input.authority.base, req->input.authority.len);
    sc_logline_str(&line, "path", req->input.path.base, req->input.path.len);
    log_env(&line, "original_dst", req, H2O_STRLIT(ENV_ORIGINAL_DST));
    sc_logline_cstr(&line, "protocol", h2o_req_getenv(req, H2O_STRLIT(ENV_PEER), 0) != NULL ? "h2" : NULL);
    sc_logline_cstr(&line, "app_protocol", req->version >= 0x200 ? "h2c" : "http/1.1");
    sc_logline_int(&line, "status", req->res.status);
    sc_logline_null(&line, "decision");
    sc_logline_null(&line, "rule");
    log_env(&line, "error", req, H2O_STRLIT(ENV_ERROR));
    sc_logline_real(&line, "duration_ms", (double)duration_us / 1000.0);
    log_env(&line, "tls_version", req, H2O_STRLIT(ENV_TLS));
    sc_logline_bool(&line, "resumed", resumed != NULL && resumed->len == 1 && resumed->base[0] == '1');
    sc_accesslog_emit(&w->accesslog, &line);
}

/* ---- app connections and workers ---- */

static void on_app_handle_close(uv_handle_t *handle)
{
    sc_app_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, tcp, (uv_tcp_t *)handle);
    sc_oworker_t *w = conn->worker;
    free(conn);
    --w->base.num_conns;
    sc_metrics_connection_delta(&w->metrics, -1);
    sc_worker_base_maybe_finish(&w->base);
}

/*
 * --transparent: where the app meant to connect, as the conntrack entry of the
 * interception rules remembers it; read once per connection. A connection made
 * to the listener itself (or one conntrack does not know) was not redirected.
 */
static void read_original_dst(sc_app_conn_t *conn)
{
    struct sockaddr_storage local;
    int local_len = sizeof(local);
    socklen_t len = sizeof(conn->original_dst);
    sc_ip_t dst_ip, local_ip;
    uint16_t dst_port, local_port;
    uv_os_fd_t fd;
    int rc;

    if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0 ||
        uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&local, &local_len) != 0)
        return;
    if (local.ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr))
        rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &conn->original_dst, &len);
    else
        rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &conn->original_dst, &len);
    if (rc != 0) {
        if (errno != ENOENT && !conn->worker->original_dst_warned) {
            conn->worker->original_dst_warned = 1;
            cmn_log_warn("outbound worker %zu: --transparent: cannot read the original destination (%s); "
                         "connections are routed by Host",
                         conn->worker->base.index, strerror(errno));
        }
        return;
    }
    if (ip_of_sockaddr((struct sockaddr *)&conn->original_dst, &dst_ip, &dst_port) != 0 ||
        ip_of_sockaddr((struct sockaddr *)&local, &local_ip, &local_port) != 0 ||
        (dst_port == local_port && ip_equal(&dst_ip, &local_ip)))
        return;
    if (sc_outbound_format_addr((struct sockaddr *)&conn->original_dst, conn->original_dst_text,
                                sizeof(conn->original_dst_text)) != 0)
        return;
    conn->redirected = 1;
}

static void on_app_connection(uv_stream_t *listener, int status)
{
    sc_oworker_t *w = worker_of_base(listener->data);
    sc_app_conn_t *conn;
    if (status != 0 || (conn = calloc(1, sizeof(*conn))) == NULL)
        return;
    conn->worker = w;
    uv_tcp_init(&w->base.loop, &conn->tcp);
    ++w->base.num_conns;
    sc_metrics_connection_delta(&w->metrics, 1);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        uv_close((uv_handle_t *)&conn->tcp, on_app_handle_close);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    if (w->outbound->transparent)
        read_original_dst(conn);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_app_handle_close);
    sock->on_close.data = conn;
    sc_front_serve(&w->front, sock, SC_FRONT_HTTP1);
}

static void on_worker_mail(sc_worker_base_t *base)
{
    sc_oworker_t *w = worker_of_base(base);
    sc_tls_t *tls = sc_worker_base_take_tls(base);
    pthread_mutex_lock(&base->mailbox_lock);
    sc_routes_t *routes = w->mail_routes;
    w->mail_routes = NULL;
    pthread_mutex_unlock(&base->mailbox_lock);
    if (routes != NULL) {
        sc_routes_release(w->routes);
        w->routes = routes;
    }
    if (tls != NULL) {
        sc_tls_release(w->tls);
        w->tls = tls;
    }
}

static void on_worker_drain_timeout(sc_worker_base_t *base)
{
    cmn_log_warn("outbound worker %zu: drain timeout reached with %zu app connection(s) open", base->index,
                 base->num_conns);
}

static void on_worker_stop(sc_worker_base_t *base)
{
    sc_accesslog_flush(&worker_of_base(base)->accesslog);
}

static const sc_worker_ops_t worker_ops = {
    .on_mail = on_worker_mail, .on_drain_timeout = on_worker_drain_timeout, .on_stop = on_worker_stop};

int sc_outbound_stopped(sc_outbound_t *out)
{
    for (size_t i = 0; i != out->workers_running; ++i)
        if (!sc_worker_base_stopped(&out->workers[i].base))
            return 0;
    return 1;
}

int sc_routes_load_file(const char *path, sc_routes_t **out, char *err, size_t err_cap)
{
    char *buf = NULL;
    size_t len = 0;
    if (crt_file_read(path, SC_ROUTES_FILE_MAX, &buf, &len) != 0) {
        snprintf(err, err_cap, "%s: cannot read the file (missing, unreadable or over %d bytes)", path, SC_ROUTES_FILE_MAX);
        return SC_E_IO;
    }
    int rc = sc_routes_parse(path, buf, len, out, err, err_cap);
    free(buf);
    return rc == 0 ? 0 : SC_E_CONFIG;
}

int sc_outbound_init(sc_outbound_t *out, const char *listen_addr, size_t num_workers, uint64_t upstream_timeout_ms,
                     uint64_t idle_timeout_ms, uint64_t drain_timeout_ms, sc_tls_t *tls, sc_routes_t *routes, char *err,
                     size_t err_cap)
{
    socklen_t listen_len;
    char why[256];

    memset(out, 0, sizeof(*out));
    out->upstream_timeout_ms = upstream_timeout_ms;
    out->idle_timeout_ms = idle_timeout_ms;
    if (sc_resolve_addr(listen_addr, &out->listen_addr, &listen_len) != 0) {
        snprintf(err, err_cap, "--outbound %s: not a numeric IPv4/IPv6 address and port", listen_addr);
        return SC_E_ADDRESS;
    }
    h2o_config_init(&out->globalconf);
    out->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("seam-sidecar"));
    out->globalconf.max_request_entity_size = SC_MAX_REQUEST_BODY_BYTES;
    out->globalconf.http2.max_concurrent_requests_per_connection = SC_H2_MAX_CONCURRENT_STREAMS;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&out->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_outbound_req;
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));
    logger->log_access = on_log_access;
    sc_front_configure_host(hostconf);

    if ((out->workers = calloc(num_workers, sizeof(*out->workers))) == NULL) {
        snprintf(err, err_cap, "out of memory");
        return SC_E_NOMEM;
    }
    out->num_workers = num_workers;
    for (size_t i = 0; i != num_workers; ++i) {
        sc_oworker_t *w = &out->workers[i];
        w->outbound = out;
        w->metrics.direction = SC_DIRECTION_OUTBOUND;
        sc_worker_base_init(&w->base, &worker_ops, i, drain_timeout_ms);
        w->base.loop.data = w;
        h2o_context_init(&w->ctx, &w->base.loop, &out->globalconf);
        h2o_timeout_init(&w->base.loop, &w->upstream_timeout, upstream_timeout_ms);
        h2o_timeout_init(&w->base.loop, &w->idle_timeout, idle_timeout_ms);
        h2o_linklist_init_anchor(&w->upstreams);
        w->tls = tls;
        sc_tls_addref(tls);
        w->routes = routes;
        sc_routes_addref(routes);
        sc_front_init(&w->front, &w->ctx, out->globalconf.hosts, 0, 1, SC_H2_MAX_CONCURRENT_STREAMS,
                      SC_MAX_REQUEST_BODY_BYTES, out->globalconf.http2.idle_timeout);
        w->base.front = &w->front;
        sc_accesslog_init(&w->accesslog, &w->base.loop);
        if (sc_worker_base_listen(&w->base, (struct sockaddr *)&out->listen_addr, on_app_connection, why,
                                  sizeof(why)) != 0) {
            snprintf(err, err_cap, "--outbound %s: cannot listen: %s", listen_addr, why);
            return SC_E_LISTEN;
        }
    }
    return 0;
}

void sc_outbound_set_transparent(sc_outbound_t *out, int on)
{
    out->transparent = on;
}

int sc_outbound_start(sc_outbound_t *out)
{
    for (size_t i = 0; i != out->num_workers; ++i) {
        if (sc_worker_base_start(&out->workers[i].base) != 0)
            return SC_E_THREAD;
        ++out->workers_running;
    }
    return 0;
}

void sc_outbound_publish_routes(sc_outbound_t *out, sc_routes_t *routes)
{
    for (size_t i = 0; i != out->num_workers; ++i) {
        sc_oworker_t *w = &out->workers[i];
        sc_routes_addref(routes);
        pthread_mutex_lock(&w->base.mailbox_lock);
        sc_routes_t *superseded = w->mail_routes;
        w->mail_routes = routes;
        pthread_mutex_unlock(&w->base.mailbox_lock);
        if (superseded != NULL)
            sc_routes_release(superseded);
        sc_worker_base_wake(&w->base);
    }
}

void sc_outbound_publish_tls(sc_outbound_t *out, sc_tls_t *tls)
{
    for (size_t i = 0; i != out->num_workers; ++i)
        sc_worker_base_post_tls(&out->workers[i].base, tls);
}

void sc_outbound_drain(sc_outbound_t *out)
{
    for (size_t i = 0; i != out->num_workers; ++i)
        sc_worker_base_post_drain(&out->workers[i].base);
}
