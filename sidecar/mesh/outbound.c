/* The outbound side: the app's HTTP/1.1 and h2c requests routed onto pooled HTTP/2 mTLS mesh connections. */
#include "sidecar/mesh/outbound.h"

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
#include "sidecar/admin/accesslog.h"
#include "sidecar/policy/config.h"
#include "sidecar/http/forward.h"
#include "sidecar/mesh/inbound.h"
#include "sidecar/http/detect.h"
#include "sidecar/http/sockio.h"
#include "sidecar/mesh/tcprelay.h"
#include "sidecar/mesh/tunnel.h"

/* An app connection; found from its h2o socket through sock->on_close.data. */
typedef struct st_sc_app_conn_t {
    uv_tcp_t tcp; /* the libuv handle; freed (with the whole record) in its close callback */
    sc_oworker_t *worker;
    int redirected; /* --transparent and the interception rules sent it here: original_dst is where it was going */
    struct sockaddr_storage original_dst;
    char original_dst_text[SC_ORIGINAL_DST_TEXT_MAX]; /* "192.0.2.2:8080" */
    /* a redirected connection's first bytes, read until they tell HTTP from TCP (then freed) */
    char *detect_buf;
    size_t detect_len;
    h2o_timeout_entry_t detect_entry; /* on worker->detect_timeout while the bytes are awaited */
    struct timeval tcp_begin_at;      /* TCP: when the connection was accepted */
} sc_app_conn_t;

static sc_oworker_t *worker_of_front(sc_front_t *front)
{
    return H2O_STRUCT_FROM_MEMBER(sc_oworker_t, front, front);
}

static sc_oworker_t *worker_of_base(sc_worker_base_t *base)
{
    return H2O_STRUCT_FROM_MEMBER(sc_oworker_t, base, base);
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

static void on_request(sc_front_t *front, sc_exchange_t *ex)
{
    sc_oworker_t *w = worker_of_front(front);
    h2o_iovec_t authority, path;
    sc_slice_t host, target;

    /* --transparent: the original destination was read once, when the connection was accepted */
    sc_app_conn_t *app = ex->conn_data;
    int redirected = w->outbound->transparent && app != NULL && app->redirected;
    if (redirected)
        ex->log.original_dst = app->original_dst_text;

    if (h2o_memis(ex->method.base, ex->method.len, H2O_STRLIT("CONNECT"))) {
        ex->log.error = "connect-refused";
        sc_exchange_reply(ex, 405, "CONNECT is not supported: send plain HTTP\n");
        return;
    }
    /* a forward-proxy request names its target in an absolute-form URI, which wins over Host */
    switch (sc_forward_target((sc_slice_t){ex->authority.base, ex->authority.len}, (sc_slice_t){ex->path.base, ex->path.len},
                              &host, &target)) {
    case SC_TARGET_OK:
        break;
    case SC_TARGET_NOT_HTTP:
        ex->log.error = "bad-target";
        sc_exchange_reply(ex, 400, "only http:// targets: the app speaks plain HTTP to its sidecar, which adds mTLS\n");
        return;
    default:
        ex->log.error = "bad-target";
        sc_exchange_reply(ex, 400, "the request names no host (Host header or absolute URI)\n");
        return;
    }
    authority = h2o_iovec_init(host.base, host.len);
    if (target.len == 0 || target.base[0] != '/')
        path = h2o_concat(&ex->pool, h2o_iovec_init(H2O_STRLIT("/")), h2o_iovec_init(target.base, target.len));
    else
        path = h2o_iovec_init(target.base, target.len);
    const sc_route_t *route;
    int by_dst = 0;
    if (redirected)
        route = sc_outbound_route_redirected(w->routes, (const struct sockaddr *)&app->original_dst, authority.base,
                                             authority.len, &by_dst);
    else
        route = authority.base != NULL ? sc_routes_find(w->routes, authority.base, authority.len) : NULL;
    if (route == NULL) {
        char detail[500];
        if (redirected)
            snprintf(detail, sizeof(detail), "no route: no route for original destination %s or host \"%.*s\"\n",
                     app->original_dst_text, (int)(authority.len > 300 ? 300 : authority.len),
                     authority.base != NULL ? authority.base : "");
        else
            snprintf(detail, sizeof(detail), "no route: no route for host \"%.*s\"\n",
                     (int)(authority.len > 300 ? 300 : authority.len), authority.base != NULL ? authority.base : "");
        ex->log.error = "no-route";
        sc_exchange_reply(ex, 404, detail);
        return;
    }
    sc_upstream_t *up = sc_upstream_get(&w->mesh, route->upstream_host, route->upstream_port, route->identity);
    if (up == NULL) {
        sc_exchange_reply(ex, 503, "out of memory\n");
        return;
    }
    /* the mesh hop is HTTP/2: say that the app spoke HTTP/1.x, so the other side speaks it to its app */
    sc_http_fields_delete_all(&ex->headers, H2O_STRLIT(SC_ORIG_PROTO_HEADER));
    if (ex->version < 0x200)
        sc_http_fields_add_ref(&ex->pool, &ex->headers, h2o_iovec_init(H2O_STRLIT(SC_ORIG_PROTO_HEADER)),
                               h2o_iovec_init(H2O_STRLIT("HTTP/1.1")));
    sc_upstream_forward(&w->mesh, up, ex, authority, path);
}

/* ---- access log ---- */

static void on_log_access(sc_front_t *front, sc_exchange_t *ex)
{
    sc_oworker_t *w = worker_of_front(front);
    struct timeval end = ex->response_end_at;

    if (end.tv_sec == 0)
        gettimeofday(&end, NULL);
    int64_t duration_us = sc_accesslog_elapsed_us(&ex->begin_at, &end);
    sc_metrics_count_request(&w->metrics, ex->status, (uint64_t)duration_us);

    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(&w->accesslog, &line, "ts", &ex->begin_at);
    sc_logline_cstr(&line, "direction", "outbound");
    sc_logline_cstr(&line, "peer_id", ex->log.upstream_peer != NULL && ex->log.upstream_peer[0] != '\0' ? ex->log.upstream_peer : NULL);
    sc_logline_str(&line, "method", ex->method.base, ex->method.len);
    sc_logline_str(&line, "authority", ex->authority.base, ex->authority.len);
    sc_logline_str(&line, "path", ex->path.base, ex->path.len);
    sc_logline_cstr(&line, "original_dst", ex->log.original_dst);
    sc_logline_cstr(&line, "protocol", ex->log.upstream_peer != NULL ? "h2" : NULL);
    sc_logline_cstr(&line, "app_protocol", ex->version >= 0x200 ? "h2c" : "http/1.1");
    sc_logline_int(&line, "status", ex->status);
    int grpc_status = sc_exchange_grpc_status(ex);
    if (grpc_status >= 0)
        sc_logline_int(&line, "grpc_status", grpc_status);
    else
        sc_logline_null(&line, "grpc_status");
    sc_logline_null(&line, "decision");
    sc_logline_null(&line, "rule");
    sc_logline_cstr(&line, "error", ex->log.error);
    sc_logline_millis(&line, "duration_ms", duration_us);
    sc_logline_cstr(&line, "tls_version", ex->log.tls_version);
    sc_logline_bool(&line, "resumed", ex->log.resumed);
    sc_accesslog_emit(&w->accesslog, &line);
}

static const sc_front_handler_t front_handler = {.on_request = on_request, .on_log = on_log_access};

/* ---- app connections and workers ---- */

static void on_app_handle_close(uv_handle_t *handle)
{
    sc_worker_base_t *base = sc_worker_base_of(handle);
    free(H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, tcp, (uv_tcp_t *)handle));
    sc_worker_base_release(base);
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

/* ---- redirected connections: HTTP or TCP ---- */

static void close_app_conn(sc_app_conn_t *conn, int reset)
{
    if (reset)
        uv_tcp_close_reset(&conn->tcp, on_app_handle_close);
    else
        uv_close((uv_handle_t *)&conn->tcp, on_app_handle_close);
}

/* One access-log line and the counters for a TCP connection; peer_id: the tunnel's peer, NULL for none. */
static void log_tcp(sc_app_conn_t *conn, sc_tcp_decision_t decision, const char *error, uint64_t sent,
                    uint64_t received, const char *peer_id)
{
    sc_oworker_t *w = conn->worker;
    struct timeval end;
    gettimeofday(&end, NULL);
    int64_t duration_us = sc_accesslog_elapsed_us(&conn->tcp_begin_at, &end);
    sc_metrics_count_tcp(&w->metrics, decision, sent + received);
    sc_logline_t line;
    sc_logline_begin(&line);
    sc_accesslog_timestamp(&w->accesslog, &line, "ts", &conn->tcp_begin_at);
    sc_logline_cstr(&line, "direction", "outbound");
    sc_logline_cstr(&line, "peer_id", peer_id);
    sc_logline_cstr(&line, "original_dst", conn->original_dst_text);
    sc_logline_cstr(&line, "protocol", "tcp");
    sc_logline_cstr(&line, "decision", sc_metrics_tcp_decision_name(decision));
    sc_logline_cstr(&line, "error", error);
    sc_logline_int(&line, "bytes_sent", (int64_t)sent);
    sc_logline_int(&line, "bytes_received", (int64_t)received);
    sc_logline_millis(&line, "duration_ms", duration_us);
    sc_accesslog_emit(&w->accesslog, &line);
}

static void on_tcp_done(void *data, const sc_tcprelay_result_t *res)
{
    sc_app_conn_t *conn = data;
    if (res->error != NULL && strcmp(res->error, "client-reset") != 0)
        cmn_log_warn("outbound TCP to %s: %s", conn->original_dst_text, res->detail);
    log_tcp(conn, SC_TCP_PASSTHROUGH, res->error, res->bytes_up, res->bytes_down, NULL);
    close_app_conn(conn, res->dest_reset);
}

static void on_tunnel_done(void *data, const sc_tunnel_result_t *res)
{
    sc_app_conn_t *conn = data;
    if (res->error != NULL && strcmp(res->error, "client-reset") != 0)
        cmn_log_warn("outbound TCP to %s: tunnel to %s ended: %s (status %d)", conn->original_dst_text,
                     res->peer_id != NULL ? res->peer_id : "the route's upstream", res->error, res->status);
    log_tcp(conn, SC_TCP_TUNNEL, res->error, res->bytes_up, res->bytes_down, res->peer_id);
    close_app_conn(conn, res->reset);
}

/* The first bytes said TCP (or nothing came in time): a route covers the destination, or it passes, or not. */
static void serve_tcp(sc_app_conn_t *conn)
{
    sc_oworker_t *w = conn->worker;
    int by_dst;
    gettimeofday(&conn->tcp_begin_at, NULL);
    const sc_route_t *route = sc_outbound_route_redirected(w->routes, (struct sockaddr *)&conn->original_dst, NULL, 0,
                                                           &by_dst);
    if (route != NULL) {
        /* a meshed destination takes only mTLS: the bytes go as a CONNECT stream on a mesh connection */
        sc_upstream_t *up = sc_upstream_get(&w->mesh, route->upstream_host, route->upstream_port, route->identity);
        if (up == NULL || sc_tunnel_open(&w->mesh, up, &w->front.zero, (uv_stream_t *)&conn->tcp,
                                         conn->original_dst_text, conn->detect_buf, conn->detect_len, on_tunnel_done,
                                         conn) != 0) {
            log_tcp(conn, SC_TCP_TUNNEL, "out-of-memory", 0, 0, NULL);
            close_app_conn(conn, 1);
        }
        return;
    }
    if (w->outbound->unknown_deny) {
        log_tcp(conn, SC_TCP_DENY, "outbound-unknown", 0, 0, NULL);
        close_app_conn(conn, 1);
        return;
    }
    if (sc_tcprelay_start(&w->base.loop, (uv_stream_t *)&conn->tcp, (struct sockaddr *)&conn->original_dst,
                          conn->detect_buf, conn->detect_len, w->outbound->upstream_timeout_ms, on_tcp_done,
                          conn) == NULL) {
        log_tcp(conn, SC_TCP_PASSTHROUGH, "connect-failed", 0, 0, NULL);
        close_app_conn(conn, 1);
    }
}

/* The HTTP way, as for a connection made to the listener: the bytes read so far are the front end's first input. */
static void serve_http(sc_app_conn_t *conn)
{
    sc_oworker_t *w = conn->worker;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_app_handle_close);
    sock->on_close.data = conn;
    if (conn->detect_len != 0) {
        h2o_iovec_t room = h2o_buffer_reserve(&sock->input, conn->detect_len);
        memcpy(room.base, conn->detect_buf, conn->detect_len);
        sock->input->size += conn->detect_len;
    }
    sc_front_serve(&w->front, sock, SC_FRONT_HTTP1);
}

/* Stops reading for detection and its timer; the bytes read stay in detect_buf for whoever serves the connection. */
static void detect_stop(sc_app_conn_t *conn)
{
    uv_read_stop((uv_stream_t *)&conn->tcp);
    if (h2o_timeout_is_linked(&conn->detect_entry))
        h2o_timeout_unlink(&conn->detect_entry);
}

static void detect_done(sc_app_conn_t *conn, sc_detect_t verdict)
{
    detect_stop(conn);
    if (verdict == SC_DETECT_HTTP1 || verdict == SC_DETECT_HTTP2)
        serve_http(conn);
    else
        serve_tcp(conn);
    free(conn->detect_buf);
    conn->detect_buf = NULL;
}

static void on_detect_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sc_app_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, tcp, (uv_tcp_t *)handle);
    (void)suggested;
    *buf = uv_buf_init(conn->detect_buf + conn->detect_len, (unsigned)(SC_DETECT_MAX - conn->detect_len));
}

static void on_detect_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sc_app_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, tcp, (uv_tcp_t *)stream);
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (conn->detect_len != 0 && nread == UV_EOF) {
            detect_done(conn, SC_DETECT_TCP); /* sent a little and half-closed: TCP, with the close passed on */
            return;
        }
        detect_stop(conn); /* left before saying anything: nothing to carry */
        free(conn->detect_buf);
        conn->detect_buf = NULL;
        close_app_conn(conn, 0);
        return;
    }
    conn->detect_len += (size_t)nread;
    sc_detect_t verdict = sc_detect_protocol(conn->detect_buf, conn->detect_len);
    if (verdict != SC_DETECT_MORE)
        detect_done(conn, verdict);
}

static void on_detect_timeout(h2o_timeout_entry_t *entry)
{
    sc_app_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_app_conn_t, detect_entry, entry);
    detect_done(conn, SC_DETECT_TCP); /* silence (a server-first protocol) or an unfinished line: TCP */
}

/* A redirected connection: its first bytes, or --detect-timeout of silence, decide how it is served. */
static void detect_begin(sc_app_conn_t *conn)
{
    sc_oworker_t *w = conn->worker;
    if ((conn->detect_buf = malloc(SC_DETECT_MAX)) == NULL ||
        uv_read_start((uv_stream_t *)&conn->tcp, on_detect_alloc, on_detect_read) != 0) {
        free(conn->detect_buf);
        conn->detect_buf = NULL;
        close_app_conn(conn, 1);
        return;
    }
    conn->detect_entry.cb = on_detect_timeout;
    h2o_timeout_link(&w->base.loop, &w->detect_timeout, &conn->detect_entry);
}

static void on_app_connection(uv_stream_t *listener, int status)
{
    sc_oworker_t *w = worker_of_base(listener->data);
    sc_app_conn_t *conn = sc_worker_base_admit(&w->base, listener, status, sizeof(*conn), on_app_handle_close);

    if (conn == NULL)
        return;
    conn->worker = w;
    if (w->outbound->transparent)
        read_original_dst(conn);
    if (conn->redirected) {
        detect_begin(conn);
        return;
    }
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_app_handle_close);
    sock->on_close.data = conn;
    sc_front_serve(&w->front, sock, SC_FRONT_HTTP1);
}

static void on_worker_stop(sc_worker_base_t *base)
{
    sc_accesslog_flush(&worker_of_base(base)->accesslog);
}

static const sc_worker_ops_t worker_ops = {
    .on_stop = on_worker_stop};

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
                     uint64_t idle_timeout_ms, uint64_t stream_idle_ms, uint64_t drain_timeout_ms, sc_tls_t *tls,
                     sc_routes_t *routes, char *err, size_t err_cap)
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
    out->workers = sc_worker_group_alloc(&out->group, num_workers, sizeof(*out->workers), offsetof(sc_oworker_t, base));
    if (out->workers == NULL) {
        snprintf(err, err_cap, "out of memory");
        return SC_E_NOMEM;
    }
    out->num_workers = num_workers;
    for (size_t i = 0; i != num_workers; ++i) {
        sc_oworker_t *w = &out->workers[i];
        w->outbound = out;
        w->metrics.direction = SC_DIRECTION_OUTBOUND;
        const sc_worker_setup_t setup = {&worker_ops, "outbound", w, &out->limit, &w->metrics, &w->tls,
                                         (void **)&w->mail_routes, (void **)&w->routes, sc_routes_ref};
        sc_worker_base_init(&w->base, &setup, i, drain_timeout_ms);
        sc_upstream_env_init(&w->mesh, &w->base.loop, &w->metrics, &w->tls, 0, upstream_timeout_ms, idle_timeout_ms,
                             stream_idle_ms);
        w->tls = tls;
        sc_tls_addref(tls);
        w->routes = routes;
        sc_routes_addref(routes);
        sc_front_init(&w->front, &w->base.loop, &front_handler, w, 0, 1, SC_H2_MAX_CONCURRENT_STREAMS,
                      SC_MAX_REQUEST_BODY_BYTES, SC_OUTBOUND_H2_IDLE_MS, "seam-sidecar");
        w->base.front = &w->front;
        sc_accesslog_init(&w->accesslog, &w->base.loop);
        h2o_timeout_init(&w->base.loop, &w->detect_timeout, SC_DEFAULT_DETECT_TIMEOUT_MS);
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

void sc_outbound_set_tcp(sc_outbound_t *out, uint64_t detect_timeout_ms, int unknown_deny)
{
    out->unknown_deny = unknown_deny;
    for (size_t i = 0; i != out->num_workers; ++i)
        out->workers[i].detect_timeout.timeout = detect_timeout_ms; /* h2o reads it at each link */
}

void sc_outbound_publish_routes(sc_outbound_t *out, sc_routes_t *routes)
{
    sc_worker_group_post(&out->group, offsetof(sc_oworker_t, mail_routes), routes, sc_routes_ref);
}

