/* The HTTP/2 client of both sides: upstreams, pooled mTLS or h2c connections, streams driven by an exchange. */
#include "sidecar/mesh/upstream.h"

#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "certs/diagnose.h"
#include "certs/error.h"
#include "certs/tlsfail.h"
#include "common/log.h"
#include "sidecar/policy/error.h"
#include "sidecar/http/forward.h"
#include "sidecar/http/sockio.h"
#include "sidecar/http/wqueue.h"

typedef struct st_sc_h2conn_t sc_h2conn_t;
typedef struct st_sc_ostream_t sc_ostream_t;

typedef struct st_sc_upstream_addr_t {
    struct sockaddr_storage sa;
    socklen_t len;
    uint64_t down_until; /* loop time before which the address is skipped */
    uint64_t backoff_ms;
} sc_upstream_addr_t;

/* An upstream name:port and the identity it must prove; per worker, created on first use. */
struct st_sc_upstream_t {
    h2o_linklist_t link; /* in env->upstreams */
    sc_upstream_env_t *env;
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

/* PREFACE: h2c only, the preface is out and the app's first frame has not come: streams wait, so that an app
   that turns out to speak only HTTP/1.1 has been sent nothing it could act on */
typedef enum { CONN_CONNECTING, CONN_HANDSHAKING, CONN_PREFACE, CONN_READY } sc_conn_state_t;

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
    sc_wqueue_t out;        /* frames for the socket */
    sc_flushq_entry_t flush_entry; /* on env->flushq while out holds frames for this turn's write */
    h2o_timeout_entry_t idle_entry;
};

/* One proxied exchange; lives in the exchange's pool (freed with it, see on_stream_dispose). */
struct st_sc_ostream_t {
    sc_exchange_t *ex;   /* NULL once the exchange let go */
    sc_upstream_env_t *env;
    sc_upstream_t *up;
    sc_h2conn_t *conn;
    h2o_linklist_t link; /* in conn->streams or up->waiting */
    int32_t stream_id;   /* 0 until submitted */
    h2o_iovec_t authority, path;
    h2o_timeout_entry_t timeout; /* before the response head: the request timeout; after it: stream idle */
    uv_timer_t *deadline;        /* a grpc-timeout shorter than the request timeout; freed in its close callback */
    size_t body_sent;  /* request body bytes handed to nghttp2 (then the stream cannot be sent again) */
    int body_deferred; /* nghttp2 waits for more of the request body */
    int response_started, head_sent, eos, closed, sending, done;
    int retried; /* sent again once after its connection went away unprocessed */
    int tunnel;  /* CONNECT: a TCP stream; each direction ends on its own, and no idle timer bounds it */
    size_t unconsumed; /* received DATA bytes not yet returned to nghttp2's windows */
    h2o_buffer_t *pending, *inflight;
};

static void conn_flush(sc_h2conn_t *conn);
static void start_session(sc_h2conn_t *conn);
static void submit_waiting(sc_h2conn_t *conn);
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

const char *sc_upstream_expected_id(SSL *ssl)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    return conn != NULL ? conn->up->identity : NULL;
}

void sc_upstream_on_verify(SSL *ssl, int rc, const crt_verify_result_t *res)
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

int sc_upstream_on_session(SSL *ssl, SSL_SESSION *session)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    h2o_cache_t *cache = h2o_socket_ssl_get_session_cache(SSL_get_SSL_CTX(ssl));
    if (conn == NULL || cache == NULL || !SSL_SESSION_is_resumable(session))
        return 0;
    h2o_iovec_t key = h2o_iovec_init(conn->up->session_key, strlen(conn->up->session_key));
    h2o_cache_set(cache, h2o_now(conn->up->env->loop), key, 0, h2o_iovec_init(session, 1));
    return 1;
}

void sc_upstream_on_info(const SSL *ssl, int where, int ret)
{
    sc_h2conn_t *conn = conn_of_ssl(ssl);
    if (conn != NULL)
        conn->ssl = (SSL *)ssl;
    if (conn != NULL && (where & SSL_CB_ALERT) != 0 && (where & SSL_CB_READ) != 0 && (ret >> 8) == 2)
        conn->alert = ret & 0xff;
}

/* ---- upstreams: resolution, addresses, backoff ---- */

sc_upstream_t *sc_upstream_get(sc_upstream_env_t *env, const char *host, uint16_t port, const char *identity)
{
    for (h2o_linklist_t *n = env->upstreams.next; n != &env->upstreams; n = n->next) {
        sc_upstream_t *up = H2O_STRUCT_FROM_MEMBER(sc_upstream_t, link, n);
        if (up->port == port && strcmp(up->host, host) == 0 && strcmp(up->identity, identity) == 0)
            return up;
    }
    sc_upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->env = env;
    snprintf(up->host, sizeof(up->host), "%s", host);
    up->port = port;
    snprintf(up->identity, sizeof(up->identity), "%s", identity);
    snprintf(up->session_key, sizeof(up->session_key), "%s:%u", up->host, (unsigned)up->port);
    h2o_linklist_init_anchor(&up->conns);
    h2o_linklist_init_anchor(&up->waiting);
    up->gai.data = up;
    h2o_linklist_insert(&env->upstreams, &up->link);
    return up;
}

void sc_upstream_env_init(sc_upstream_env_t *env, h2o_loop_t *loop, sc_metrics_t *metrics, sc_tls_t *const *tls,
                          int plaintext, uint64_t request_timeout_ms, uint64_t idle_timeout_ms,
                          uint64_t stream_idle_ms)
{
    memset(env, 0, sizeof(*env));
    env->loop = loop;
    env->metrics = metrics;
    env->tls = tls;
    env->plaintext = plaintext;
    env->request_timeout_ms = request_timeout_ms;
    h2o_timeout_init(loop, &env->request_timeout, request_timeout_ms);
    h2o_timeout_init(loop, &env->idle_timeout, idle_timeout_ms);
    h2o_timeout_init(loop, &env->stream_idle, stream_idle_ms);
    h2o_linklist_init_anchor(&env->upstreams);
    sc_flushq_init(&env->flushq, loop);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sc_upstream_t *up = req->data;
    up->resolving = 0;
    up->resolved_at = uv_now(up->env->loop);
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
    int rc = uv_getaddrinfo(up->env->loop, &up->gai, on_resolved, up->host, port, &hints);
    if (rc != 0) {
        up->resolving = 0;
        snprintf(up->dns_error, sizeof(up->dns_error), "%s", uv_strerror(rc));
    }
}

/* Picks the next address round robin, skipping ones in backoff (unless all are). */
static size_t pick_addr(sc_upstream_t *up)
{
    uint64_t now = uv_now(up->env->loop);
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
    a->down_until = uv_now(up->env->loop) + a->backoff_ms;
}

/* ---- mesh connection I/O ---- */

static void on_conn_write(h2o_socket_t *sock, const char *err)
{
    sc_h2conn_t *conn = sock->data;
    if (conn == NULL)
        return; /* closed by us meanwhile */
    sc_wqueue_written(&conn->out);
    if (err != NULL) {
        char detail[200];
        snprintf(detail, sizeof(detail), "the mesh connection failed while writing (%s)", err);
        conn_close(conn, 502, "upstream-closed", detail);
        return;
    }
    conn_flush(conn);
}

static void on_flush_due(sc_flushq_entry_t *entry)
{
    sc_h2conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_h2conn_t, flush_entry, entry);
    sc_wqueue_flush(&conn->out, conn->sock, on_conn_write);
}

/*
 * Moves frames from nghttp2 to the socket; one write in flight at a time, which paces DATA to the network. The write
 * is made right before the loop polls, with every stream's frames of this turn.
 */
static void conn_flush(sc_h2conn_t *conn)
{
    if (conn->out.writing || conn->in_callback || conn->sock == NULL || conn->state < CONN_PREFACE)
        return;
    int err = sc_wqueue_pull_h2(&conn->out, conn->session);
    if (err != 0) {
        conn_close(conn, 502, crt_diag_slug(CRT_DIAG_TLS_ERROR), nghttp2_strerror(err));
        return;
    }
    if (sc_wqueue_size(&conn->out) == 0) {
        if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))
            conn_close(conn, 502, "upstream-closed", "the upstream closed the mesh connection");
        return;
    }
    sc_flushq_add(&conn->up->env->flushq, &conn->flush_entry);
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
        h2o_timeout_link(conn->up->env->loop, &conn->up->env->idle_timeout, &conn->idle_entry);
    return 0;
}

/* Takes a stream off whatever it waits on or runs on; resets it on the mesh connection if it was sent. */
static void on_deadline_closed(uv_handle_t *handle)
{
    free(handle);
}

static void stream_stop_timers(sc_ostream_t *st)
{
    if (h2o_timeout_is_linked(&st->timeout))
        h2o_timeout_unlink(&st->timeout);
    if (st->deadline != NULL) {
        uv_timer_stop(st->deadline);
        uv_close((uv_handle_t *)st->deadline, on_deadline_closed);
        st->deadline = NULL;
    }
}

/* A tunnel whose both directions ended: the peer's END_STREAM came and the client's every byte went to nghttp2. */
static int tunnel_ended(const sc_ostream_t *st)
{
    return st->tunnel && st->ex != NULL && st->eos > 0 && st->ex->body.complete && st->ex->body.buf->size == 0;
}

static void stream_detach(sc_ostream_t *st)
{
    stream_stop_timers(st);
    if (h2o_linklist_is_linked(&st->link))
        h2o_linklist_unlink(&st->link);
    sc_h2conn_t *conn = st->conn;
    if (conn == NULL)
        return;
    st->conn = NULL;
    if (st->stream_id > 0 && conn->session != NULL) {
        if (!st->closed) {
            nghttp2_session_set_stream_user_data(conn->session, st->stream_id, NULL);
            if (tunnel_ended(st))
                nghttp2_session_resume_data(conn->session, st->stream_id); /* with no stream, the body ends: END_STREAM */
            else
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

/* Answers the client with an error (before any response was started), or aborts a started response. */
static void stream_fail(sc_ostream_t *st, int status, const char *category, const char *detail)
{
    sc_exchange_t *ex = st->ex;
    if (st->done || ex == NULL)
        return;
    stream_detach(st);
    st->done = 1;
    ex->log.error = h2o_strdup(&ex->pool, category, SIZE_MAX).base;
    if (st->response_started) {
        cmn_log_warn("%s %.*s%.*s via %s: response aborted: %s: %s", st->env->plaintext ? "app" : "outbound",
                     (int)st->authority.len, st->authority.base, (int)st->path.len, st->path.base,
                     st->up != NULL ? st->up->session_key : "-", category, detail);
        if (!st->sending)
            sc_exchange_send(ex, NULL, 0, SC_SEND_ERROR);
        else
            st->eos = -1; /* the error goes out when the front end asks for more */
        return;
    }
    if (status == 502 && st->env->plaintext && st->env->on_h2c_refused != NULL && st->stream_id == 0 &&
        st->body_sent == 0 && strcmp(category, "h2c-refused") == 0) {
        st->ex = NULL; /* the exchange goes to the HTTP/1.1 client, untouched */
        ex->ops = NULL, ex->data = NULL;
        ex->body.on_change = NULL;
        st->env->on_h2c_refused(st->env, ex);
        return;
    }
    char body[1200];
    if (st->env->plaintext) {
        snprintf(body, sizeof(body), "%s: the app at %s: %s: %s\n",
                 status == 504 ? "gateway timeout" : status == 503 ? "service unavailable" : "bad gateway",
                 st->up != NULL ? st->up->session_key : "-", category, detail);
    } else {
        snprintf(body, sizeof(body), "%s: %s: %s (upstream %s, identity %s)\n",
                 status == 502 ? "upstream TLS failure" : status == 504 ? "upstream timeout" : "upstream unavailable",
                 category, detail, st->up != NULL ? st->up->session_key : "-", st->up != NULL ? st->up->identity : "-");
    }
    cmn_log_warn("%s %.*s%.*s: %d %s", st->env->plaintext ? "app" : "outbound", (int)st->authority.len,
                 st->authority.base, (int)st->path.len, st->path.base, status, body);
    sc_exchange_reply(ex, status, body);
}

static void on_stream_timeout(h2o_timeout_entry_t *entry)
{
    sc_ostream_t *st = H2O_STRUCT_FROM_MEMBER(sc_ostream_t, timeout, entry);
    char detail[128];
    if (st->response_started) {
        snprintf(detail, sizeof(detail), "no byte either way for %llu ms",
                 (unsigned long long)st->env->stream_idle.timeout);
        stream_fail(st, 504, "stream-idle-timeout", detail);
        return;
    }
    snprintf(detail, sizeof(detail), "no response within %llu ms", (unsigned long long)st->env->request_timeout_ms);
    if (st->conn != NULL && st->conn->state != CONN_READY && !st->env->plaintext)
        sc_metrics_count_handshake_error(st->env->metrics, SC_REASON_TIMEOUT);
    stream_fail(st, 504, crt_diag_slug(CRT_DIAG_TIMEOUT), detail);
}

static void on_deadline(uv_timer_t *timer)
{
    sc_ostream_t *st = timer->data;
    stream_fail(st, 504, "deadline-exceeded", "the request's grpc-timeout passed");
}

/* Something moved on a stream whose response started: the idle clock starts again. */
static void stream_touch(sc_ostream_t *st)
{
    if (!st->response_started || st->done || st->tunnel)
        return;
    if (h2o_timeout_is_linked(&st->timeout))
        h2o_timeout_unlink(&st->timeout);
    h2o_timeout_link(st->env->loop, &st->env->stream_idle, &st->timeout);
}

/* Hands buffered response bytes to the front end; one send in flight, the rest waits for on_proceed. */
static void stream_send(sc_ostream_t *st)
{
    if (st->sending || !st->response_started || st->done || st->ex == NULL)
        return;
    if (st->pending->size == 0 && !st->eos && st->head_sent)
        return;
    h2o_buffer_t *tmp = st->inflight;
    st->inflight = st->pending;
    st->pending = tmp;
    h2o_iovec_t buf = h2o_iovec_init(st->inflight->bytes, st->inflight->size);
    sc_send_state_t state = st->eos > 0 ? SC_SEND_FINAL : st->eos < 0 ? SC_SEND_ERROR : SC_SEND_MORE;
    st->sending = 1;
    st->head_sent = 1;
    if (state != SC_SEND_MORE) {
        st->done = 1;
        if (state == SC_SEND_FINAL && st->tunnel && !st->closed)
            stream_stop_timers(st); /* the client's direction goes on: the stream closes when that ends too */
        else
            stream_detach(st); /* a finished stream holds no timer */
    }
    sc_exchange_send(st->ex, &buf, buf.len != 0 ? 1 : 0, state);
}

static void on_exchange_proceed(sc_exchange_t *ex)
{
    sc_ostream_t *st = ex->data;
    size_t sent = st->inflight->size;
    st->sending = 0;
    h2o_buffer_consume(&st->inflight, sent);
    if (st->conn != NULL && st->conn->session != NULL && sent != 0 && st->unconsumed >= sent) {
        /* the client took the bytes: only now may the upstream send more */
        if (st->closed)
            nghttp2_session_consume_connection(st->conn->session, sent);
        else
            nghttp2_session_consume(st->conn->session, st->stream_id, sent);
        st->unconsumed -= sent;
        conn_flush(st->conn);
    }
    if (st->eos < 0 && st->pending->size == 0) {
        st->done = 1;
        sc_exchange_send(st->ex, NULL, 0, SC_SEND_ERROR);
        return;
    }
    stream_touch(st);
    stream_send(st);
}

static void on_exchange_stop(sc_exchange_t *ex)
{
    sc_ostream_t *st = ex->data;
    st->done = 1;
    stream_detach(st);
}

static const sc_exchange_ops_t stream_ops = {.on_proceed = on_exchange_proceed, .on_stop = on_exchange_stop};

/* The exchange's pool is going away: nothing may point at the stream after this. */
static void on_stream_dispose(void *p)
{
    sc_ostream_t *st = p;
    stream_detach(st);
    st->ex = NULL;
    h2o_buffer_dispose(&st->pending);
    h2o_buffer_dispose(&st->inflight);
}

/* ---- nghttp2 callbacks ---- */

static sc_ostream_t *stream_of(nghttp2_session *session, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(session, id) : NULL;
}

/* Sends trailers (fields minus those that stop at a hop) as the HEADERS that end the stream; nghttp2 copies them. */
static void submit_trailers(nghttp2_session *session, int32_t stream_id, const sc_http_fields_t *fields)
{
    nghttp2_nv nva[SC_HTTP_FIELDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i != fields->size && n != SC_HTTP_FIELDS_MAX; ++i) {
        const sc_http_field_t *f = &fields->entries[i];
        if (sc_forward_drop_header((sc_slice_t){f->name.base, f->name.len}, (sc_slice_t){NULL, 0}))
            continue;
        nva[n++] = (nghttp2_nv){(uint8_t *)f->name.base, (uint8_t *)f->value.base, f->name.len, f->value.len,
                                NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_submit_trailer(session, stream_id, nva, n);
}

static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    sc_ostream_t *st = stream_of(session, stream_id);
    (void)source, (void)user_data;
    if (st == NULL || st->ex == NULL) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    /* the client's body streams through: what it sent so far, and it may send more once that left */
    sc_http_body_t *body = &st->ex->body;
    size_t n = body->buf->size < length ? body->buf->size : length;
    if (n != 0) {
        memcpy(buf, body->buf->bytes, n);
        sc_exchange_consume(st->ex, n);
        st->body_sent += n;
        stream_touch(st);
    }
    if (body->buf->size == 0) {
        if (body->complete) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            if (body->trailers.size != 0) {
                /* the trailing HEADERS end the stream instead of this DATA frame */
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                submit_trailers(session, stream_id, &body->trailers);
            }
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
    if (st == NULL || st->ex == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    sc_exchange_t *ex = st->ex;
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && st->response_started) {
        /* trailers: passed on after the body */
        if (namelen != 0 && name[0] != ':' && ex->res_trailers.size < SC_HTTP_FIELDS_MAX)
            sc_http_fields_add(&ex->pool, &ex->res_trailers, (const char *)name, namelen, (const char *)value, valuelen);
        return 0;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_RESPONSE && frame->headers.cat != NGHTTP2_HCAT_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int status = 0;
        for (size_t i = 0; i != valuelen && i < 3; ++i)
            status = status * 10 + (value[i] - '0');
        ex->status = status;
        return 0;
    }
    if (name[0] == ':' || ex->status < 200)
        return 0; /* informational responses' fields stop here */
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        size_t len = h2o_strtosize((const char *)value, valuelen);
        if (len != SIZE_MAX)
            ex->res_content_length = len;
        return 0;
    }
    if (sc_forward_drop_header((sc_slice_t){(const char *)name, namelen}, (sc_slice_t){NULL, 0}) ||
        ex->res_headers.size >= SC_HTTP_FIELDS_MAX)
        return 0;
    sc_http_fields_add(&ex->pool, &ex->res_headers, (const char *)name, namelen, (const char *)value, valuelen);
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_ostream_t *st = stream_of(session, frame->hd.stream_id);
    (void)user_data;
    if (st != NULL && st->ex != NULL && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        st->ex->status = 0;
        st->ex->res_content_length = UINT64_MAX;
        st->ex->res_headers.size = 0;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    sc_h2conn_t *conn = user_data;
    if (!conn->got_frame) {
        /* the server's first frame: it accepted our certificate (or, h2c, it speaks HTTP/2) */
        conn->got_frame = 1;
        if (!conn->up->env->plaintext)
            sc_metrics_count_handshake(conn->up->env->metrics, conn->resumed);
        if (conn->state == CONN_PREFACE) {
            conn->state = CONN_READY; /* the app speaks HTTP/2: the streams go now */
            submit_waiting(conn);
        }
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        conn->goaway = 1;
        conn->goaway_last_id = frame->goaway.last_stream_id;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
            cmn_log_warn("connection to %s: the upstream sent GOAWAY %s (last stream %d): %.*s",
                         conn->up->session_key, nghttp2_http2_strerror(frame->goaway.error_code),
                         (int)frame->goaway.last_stream_id, (int)(frame->goaway.opaque_data_len > 200 ? 200 : frame->goaway.opaque_data_len),
                         (const char *)frame->goaway.opaque_data);
        return 0;
    }
    sc_ostream_t *st = stream_of(session, frame->hd.stream_id);
    if (st == NULL || st->done || st->ex == NULL)
        return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->response_started) {
        if (st->ex->status < 200) {
            st->ex->status = 0; /* 1xx: wait for the final response */
            return 0;
        }
        if (h2o_timeout_is_linked(&st->timeout))
            h2o_timeout_unlink(&st->timeout);
        if (st->deadline != NULL)
            uv_timer_stop(st->deadline); /* the deadline bounds the wait for an answer, as the request timeout does */
        st->response_started = 1;
        st->eos = end;
        stream_touch(st);
        stream_send(st); /* the head goes out now: a streaming answer's first message may be far off */
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
    if (st == NULL || st->done || st->ex == NULL) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    stream_touch(st);
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
            crt_tlsfail_facts_t facts = {.observer = CRT_TLSFAIL_CLIENT,
                                         .alert_seen = CRT_TLSFAIL_ALERT_AFTER_FINISHED,
                                         .alert = conn->alert,
                                         .cert_sent = 1};
            const char *category = crt_tlsfail_slug(crt_tlsfail_classify(&facts));
            snprintf(detail, sizeof(detail), "the upstream sent TLS alert %d (%s) after our certificate", conn->alert,
                     SSL_alert_desc_string_long(conn->alert));
            sc_metrics_count_handshake_error(conn->up->env->metrics, category);
            conn_close(conn, 502, category, detail);
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

/* Names a failed handshake (crt_tlsfail_classify) and words the detail for the 502 and the log. */
static const char *handshake_category(sc_h2conn_t *conn, const char *err, char *detail, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    crt_tlsfail_facts_t facts = {.observer = CRT_TLSFAIL_CLIENT,
                                 .verify_err = conn->verify_rc != 1 ? conn->verify_rc : 0,
                                 .alert_seen = conn->alert >= 0 ? CRT_TLSFAIL_ALERT_RECEIVED : CRT_TLSFAIL_NO_ALERT,
                                 .alert = conn->alert,
                                 .ssl_reason = e != 0 ? ERR_GET_REASON(e) : 0,
                                 .cert_sent = 1};
    crt_tlsfail_t fail = crt_tlsfail_classify(&facts);

    if (facts.verify_err != 0) {
        snprintf(detail, cap, "%s", conn->verify_detail);
        return crt_tlsfail_slug(fail);
    }
    if (fail == CRT_TLSFAIL_PLAIN_HTTP)
        snprintf(detail, cap, "the upstream does not speak TLS");
    else if (fail == CRT_TLSFAIL_NO_SHARED_CIPHER)
        snprintf(detail, cap, "the upstream sent TLS alert %d", conn->alert);
    else
        snprintf(detail, cap, "%s", err);
    ERR_clear_error();
    return crt_tlsfail_slug(fail);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    sc_h2conn_t *conn = sock->data;
    if (conn == NULL)
        return;
    char detail[700];
    sc_metrics_t *metrics = conn->up->env->metrics;

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
    start_session(conn);
}

/* Sends what waited for the connection to be ready. */
static void submit_waiting(sc_h2conn_t *conn)
{
    for (h2o_linklist_t *n = conn->streams.next; n != &conn->streams;) {
        sc_ostream_t *st = H2O_STRUCT_FROM_MEMBER(sc_ostream_t, link, n);
        n = n->next;
        stream_submit(st);
    }
}

/* The connection (TLS done, or plain TCP for h2c) starts speaking HTTP/2: SETTINGS, then the waiting streams. */
static void start_session(sc_h2conn_t *conn)
{
    h2o_socket_t *sock = conn->sock;
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SC_UPSTREAM_STREAM_WINDOW}};
    nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
    nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, SC_UPSTREAM_CONN_WINDOW);
    if (conn->state == CONN_READY)
        submit_waiting(conn);
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
    if (conn->up->env->plaintext) {
        conn->state = CONN_PREFACE;
        start_session(conn);
        return;
    }
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
    h2o_iovec_t m = st->ex->method;
    if (st->ex == NULL || st->retried || st->response_started || st->done || st->body_sent != 0)
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
    if (conn->state == CONN_PREFACE && status == 502) {
        /* the app answered the preface with something else, or closed: it does not speak h2c */
        sc_upstream_env_t *env = conn->up->env;
        if (env->h2c_refused_until <= h2o_now(env->loop))
            cmn_log_warn("the app at %s does not speak HTTP/2 (%s: %s); HTTP/1.1 for the next %d s", conn->up->session_key,
                         category, detail, SC_UPSTREAM_H2C_REFUSED_MS / 1000);
        env->h2c_refused_until = h2o_now(env->loop) + SC_UPSTREAM_H2C_REFUSED_MS;
        category = "h2c-refused";
        detail = "the app does not speak HTTP/2 (h2c)";
    }
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
    sc_metrics_upstream_connection_delta(conn->up->env->metrics, -1);
    sc_flushq_remove(&conn->flush_entry);
    sc_wqueue_dispose(&conn->out);
    if (conn->tls != NULL)
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
    sc_upstream_env_t *env = up->env;
    sc_h2conn_t *conn = calloc(1, sizeof(*conn));
    nghttp2_option *opt = NULL;
    if (conn == NULL)
        return NULL;
    conn->up = up;
    conn->alert = -1;
    conn->verify_rc = 1;
    conn->tls = env->tls != NULL ? *env->tls : NULL;
    if (conn->tls != NULL)
        sc_tls_addref(conn->tls);
    h2o_linklist_init_anchor(&conn->streams);
    sc_wqueue_init(&conn->out);
    sc_flushq_entry_init(&conn->flush_entry, on_flush_due);
    conn->idle_entry.cb = on_idle_timeout;
    h2o_linklist_insert(&up->conns, &conn->link);
    sc_metrics_upstream_connection_delta(env->metrics, 1);
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
    if ((conn->sock = h2o_socket_connect(env->loop, (struct sockaddr *)&a->sa, a->len, on_connect)) == NULL) {
        mark_down(up, conn->addr_index);
        goto Fail;
    }
    conn->sock->data = conn;
    return conn;
Fail:
    conn_close(conn, 503, "", "");
    return NULL;
}

/* ---- requests ---- */

/* True when a request header goes on to the next hop. */
static int forward_header(sc_upstream_env_t *env, const sc_http_field_t *f, sc_slice_t connection)
{
    sc_slice_t name = {f->name.base, f->name.len};
    if (h2o_memis(f->name.base, f->name.len, H2O_STRLIT("te")))
        return h2o_lcstris(f->value.base, f->value.len, H2O_STRLIT("trailers")); /* the one te HTTP/2 allows */
    if (env->plaintext && h2o_memis(f->name.base, f->name.len, H2O_STRLIT("x-forwarded-client-cert")))
        return 1; /* to the app: the one this sidecar wrote */
    return !sc_forward_drop_header(name, connection);
}

/* Sends (or queues) a stream on a connection of its upstream with room for it. */
static void stream_submit(sc_ostream_t *st)
{
    sc_upstream_t *up = st->up;
    sc_h2conn_t *conn = st->conn;
    sc_exchange_t *ex = st->ex;

    if (ex == NULL)
        return;
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
        return; /* on_handshake (or, h2c, the app's first frame) submits it */

    if (!up->env->plaintext) {
        ex->log.upstream_peer = h2o_strdup(&ex->pool, conn->peer_id, SIZE_MAX).base;
        ex->log.tls_version = h2o_socket_get_ssl_protocol_version(conn->sock);
        ex->log.resumed = conn->resumed;
    }

    size_t max = ex->headers.size + 5, n = 0;
    nghttp2_nv *nva = h2o_mem_alloc_pool(&ex->pool, sizeof(*nva) * max);
#define NV(nm, nmlen, val, vallen)                                                                                    \
    nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), (nmlen), (vallen), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    NV(":method", 7, ex->method.base, ex->method.len);
    if (!st->tunnel) /* CONNECT names only its destination (RFC 9113 8.5) */
        NV(":scheme", 7, up->env->plaintext ? "http" : "https", up->env->plaintext ? 4 : 5);
    NV(":authority", 10, st->authority.base, st->authority.len);
    if (!st->tunnel)
        NV(":path", 5, st->path.base, st->path.len);
    ssize_t ci = sc_http_fields_find(&ex->headers, H2O_STRLIT("connection"), -1);
    sc_slice_t connection = ci != -1 ? (sc_slice_t){ex->headers.entries[ci].value.base, ex->headers.entries[ci].value.len}
                                     : (sc_slice_t){NULL, 0};
    for (size_t i = 0; i != ex->headers.size; ++i) {
        const sc_http_field_t *f = &ex->headers.entries[i];
        if (forward_header(up->env, f, connection))
            NV(f->name.base, f->name.len, f->value.base, f->value.len);
    }
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = on_read_body};
    sc_http_body_t *body = &ex->body;
    if (body->expected && body->length != UINT64_MAX) {
        char *clen = h2o_mem_alloc_pool(&ex->pool, sizeof(H2O_UINT64_LONGEST_STR));
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
    if (st->tunnel)
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, id, SC_UPSTREAM_TUNNEL_WINDOW);
    conn_flush(conn);
}

void sc_upstream_forward(sc_upstream_env_t *env, sc_upstream_t *up, sc_exchange_t *ex, h2o_iovec_t authority,
                         h2o_iovec_t path)
{
    sc_ostream_t *st = h2o_mem_alloc_shared(&ex->pool, sizeof(*st), on_stream_dispose);
    memset(st, 0, sizeof(*st));
    st->ex = ex;
    st->env = env;
    st->up = up;
    st->authority = authority;
    st->path = path;
    st->tunnel = h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("CONNECT"));
    st->timeout.cb = on_stream_timeout;
    h2o_buffer_init(&st->pending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&st->inflight, &h2o_socket_buffer_prototype);
    ex->ops = &stream_ops;
    ex->data = st;
    ex->body.on_change = on_body_change;
    ex->body.data = st;

    h2o_timeout_link(env->loop, &env->request_timeout, &st->timeout);
    ssize_t ti = sc_http_fields_find(&ex->headers, H2O_STRLIT("grpc-timeout"), -1);
    uint64_t deadline_ms;
    if (ti != -1 &&
        sc_http_parse_grpc_timeout(ex->headers.entries[ti].value.base, ex->headers.entries[ti].value.len, &deadline_ms) == 0 &&
        deadline_ms < env->request_timeout_ms && (st->deadline = malloc(sizeof(*st->deadline))) != NULL) {
        uv_timer_init(env->loop, st->deadline);
        st->deadline->data = st;
        uv_timer_start(st->deadline, on_deadline, deadline_ms, 0);
    }
    if (up->num_addrs == 0 || h2o_now(env->loop) - up->resolved_at > SC_UPSTREAM_RESOLVE_MS)
        start_resolve(up);
    if (up->num_addrs == 0) {
        if (up->resolving) {
            h2o_linklist_insert(&up->waiting, &st->link);
        } else {
            char detail[300];
            snprintf(detail, sizeof(detail), "cannot resolve %s: %s", up->host, up->dns_error);
            stream_fail(st, 503, crt_diag_slug(CRT_DIAG_DNS_FAILURE), detail);
        }
        return;
    }
    stream_submit(st);
}
