/* Seam's HTTP message model: one request/response exchange as every hop sees it, trailers included. */
#ifndef SEAM_SIDECAR_HTTP_EXCHANGE_H
#define SEAM_SIDECAR_HTTP_EXCHANGE_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

/*
 * The server side of the HTTP layer (front.h) decodes a request into an
 * exchange and hands it to a handler (the inbound or outbound router, or
 * seam-ca). The handler reads the body as it arrives, fills in the response
 * head and answers with sc_exchange_send(); the clients on the other side
 * (the mesh client, the app clients) decode their peer's response into the
 * same fields. Nothing here knows HTTP/1.1 from HTTP/2: the front end frames
 * for its client, each client for its server.
 *
 * Memory: everything an exchange points at lives in ex->pool (h2o's request
 * pool type) or is static, and dies with the exchange.
 */

#define SC_HTTP_FIELDS_MAX 100 /* trailer lines the front end takes, and header or trailer lines the clients keep per
                                  message; request heads are bounded by the front end's limits (front.h) */

/* One header or trailer field; the name is lowercase. */
typedef struct st_sc_http_field_t {
    h2o_iovec_t name;
    h2o_iovec_t value;
} sc_http_field_t;

typedef struct st_sc_http_fields_t {
    sc_http_field_t *entries;
    size_t size;
    size_t capacity;
} sc_http_fields_t;

/* Appends a field, copying name (lowercased) and value into pool. */
void sc_http_fields_add(h2o_mem_pool_t *pool, sc_http_fields_t *fields, const char *name, size_t name_len,
                        const char *value, size_t value_len);

/* Appends a field without copying: name (lowercase) and value must outlive the exchange (static or pool). */
void sc_http_fields_add_ref(h2o_mem_pool_t *pool, sc_http_fields_t *fields, h2o_iovec_t name, h2o_iovec_t value);

/* The index of the first field named name (lowercase) after index after (-1: from the start), or -1. */
ssize_t sc_http_fields_find(const sc_http_fields_t *fields, const char *name, size_t name_len, ssize_t after);

/* Removes the field at index, keeping the order of the rest. */
void sc_http_fields_delete(sc_http_fields_t *fields, size_t index);

/* Removes every field named name; returns how many. */
size_t sc_http_fields_delete_all(sc_http_fields_t *fields, const char *name, size_t name_len);

/*
 * A request body as the client sends it. The handler reads buf, and reports
 * each byte it has passed on with sc_exchange_consume(), which lets the
 * client send more. on_change (set by the handler, may stay NULL) runs after
 * buf grew or complete/failed turned true; never from inside
 * sc_exchange_consume(). Trailers, if the client sent any, are in trailers
 * once complete is set.
 */
typedef struct st_sc_http_body_t {
    h2o_buffer_t *buf;          /* received bytes not consumed yet */
    uint64_t length;            /* the declared length (content-length), UINT64_MAX when unknown */
    uint64_t received;          /* bytes received so far */
    int expected;               /* the request has a body (it may still turn out empty) */
    int complete;               /* every byte arrived (buf may still hold the last of them) */
    int failed;                 /* it never will: the client went away, reset the stream or broke the framing */
    sc_http_fields_t trailers;  /* HTTP/1.1 chunked trailer section or HTTP/2 trailing HEADERS */
    void (*on_change)(void *data);
    void *data;
} sc_http_body_t;

typedef enum { SC_SEND_MORE = 0, SC_SEND_FINAL, SC_SEND_ERROR } sc_send_state_t;

typedef struct st_sc_exchange_t sc_exchange_t;

/* What the handler answers to; both run on the worker's thread, never from inside sc_exchange_send(). */
typedef struct st_sc_exchange_ops_t {
    /* the bytes of the last SC_SEND_MORE went out (or most of them): the handler may send the next */
    void (*on_proceed)(sc_exchange_t *ex);
    /* the client went away before the response was complete: let go of the next hop; no more sends */
    void (*on_stop)(sc_exchange_t *ex);
} sc_exchange_ops_t;

/*
 * Who serves an exchange that did not come through the front end: a TCP
 * connection carried as a CONNECT stream (tunnel.h) answers the handler's
 * sends and consumes itself. NULL: the front end (front.h) serves it.
 */
typedef struct st_sc_exchange_server_t {
    void (*send)(sc_exchange_t *ex, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state);
    void (*consume)(sc_exchange_t *ex, size_t n);
} sc_exchange_server_t;

/* What the access log reports beyond the request itself; handlers fill it in (static or pool strings). */
typedef struct st_sc_exchange_log_t {
    const char *decision;      /* inbound: allow, deny, audit_deny */
    const char *rule;          /* inbound: the rule that decided */
    const char *error;         /* a failure category (no-route, upstream-reset, timeout, ...) */
    const char *upstream_peer; /* outbound: the SPIFFE ID the upstream proved */
    const char *tls_version;   /* outbound: of the mesh connection */
    int resumed;               /* outbound: the mesh connection resumed a TLS session */
    const char *original_dst;  /* outbound, --transparent: where the app meant to connect */
    const char *app_protocol;  /* inbound: how the app was spoken to (http/1.1, h2c) */
    int grpc_status;           /* a reply the sidecar made itself to a gRPC request; -1 none */
    uint64_t tunnel_sent;      /* inbound CONNECT: bytes of the app's sent to the peer */
} sc_exchange_log_t;

struct st_sc_exchange_t {
    h2o_mem_pool_t pool;
    /* the request */
    int version;              /* 0x100, 0x101, 0x200 */
    h2o_iovec_t method;
    h2o_iovec_t authority;    /* Host or :authority; base NULL when absent */
    h2o_iovec_t path;         /* as the client sent it (origin or absolute form) */
    sc_http_fields_t headers; /* minus framing (content-length, transfer-encoding) and Host */
    sc_http_body_t body;
    /* the response: the handler fills these in before its first sc_exchange_send() */
    int status;
    h2o_iovec_t reason;              /* HTTP/1.1 reason phrase to pass on; base NULL: the standard one */
    sc_http_fields_t res_headers;    /* without framing: the front end states content-length itself */
    uint64_t res_content_length;     /* UINT64_MAX: unknown */
    sc_http_fields_t res_trailers;   /* sent after the body by the final sc_exchange_send() */
    /* the handler */
    const sc_exchange_ops_t *ops;
    void *data;
    /* the connection it came on */
    const sc_exchange_server_t *server; /* NULL: the front end */
    h2o_socket_t *sock;       /* borrowed; NULL once the connection closed */
    void *conn_data;          /* the listener's per-connection record (sock->on_close.data at accept) */
    /* for the access log */
    struct timeval begin_at, response_start_at, response_end_at;
    sc_exchange_log_t log;
};

/*
 * Sends bufs as the next piece of the response; the first call sends the
 * head (status, res_headers) too. SC_SEND_FINAL ends the response (with
 * res_trailers, where the client's protocol can carry them: HTTP/2, or a
 * chunked HTTP/1.1 body); SC_SEND_ERROR cuts it so the client cannot take it
 * for complete. After SC_SEND_MORE the handler waits for ops->on_proceed.
 * The bytes are copied. After the exchange stopped this does nothing.
 */
void sc_exchange_send(sc_exchange_t *ex, h2o_iovec_t *bufs, size_t bufcnt, sc_send_state_t state);

/* The bytes in bufs. */
static inline size_t sc_exchange_bytes(const h2o_iovec_t *bufs, size_t bufcnt)
{
    size_t n = 0;
    for (size_t i = 0; i != bufcnt; ++i)
        n += bufs[i].len;
    return n;
}

/*
 * Answers with a reply the sidecar makes itself (an error page): status and
 * body (a line of text). When the request is gRPC (content-type
 * application/grpc*), the reply is a trailers-only gRPC response instead:
 * HTTP 200, content-type application/grpc, grpc-status mapped from status
 * (sc_http_grpc_status_of) and grpc-message carrying body's words. Sets
 * ex->log.grpc_status accordingly.
 */
void sc_exchange_reply(sc_exchange_t *ex, int status, const char *body);

/* The request body's bytes [0, n) went on: they leave body.buf and the client may send more. */
void sc_exchange_consume(sc_exchange_t *ex, size_t n);

/* The peer's address into sa (cap bytes); returns its length, 0 when unknown. */
socklen_t sc_exchange_peername(sc_exchange_t *ex, struct sockaddr *sa, socklen_t cap);

/* True when the request is gRPC: its content-type is application/grpc or application/grpc+... */
int sc_exchange_is_grpc(const sc_exchange_t *ex);

/* The standard reason phrase of status ("Not Found"), "Unknown" for one without. */
const char *sc_http_reason_phrase(int status);

/* gRPC's code for an HTTP status the sidecar answers with (403 -> 7, 404 -> 12, 502/503 -> 14, 504 -> 4, 413/431 -> 8; other 4xx/5xx -> 2 UNKNOWN or 13). */
int sc_http_grpc_status_of(int status);

/* The grpc-status the response carries (trailers, else headers), or -1; for the access log. */
int sc_exchange_grpc_status(const sc_exchange_t *ex);

/*
 * Percent-encodes text for grpc-message (gRPC: bytes outside 0x20-0x7e and
 * '%' become %XX) into pool.
 */
h2o_iovec_t sc_http_grpc_message(h2o_mem_pool_t *pool, const char *text, size_t len);

/*
 * Parses a grpc-timeout value ("1..8 digits" + H/M/S/m/u/n) into
 * milliseconds, rounded up. Returns 0, or -1 when malformed.
 */
int sc_http_parse_grpc_timeout(const char *value, size_t len, uint64_t *ms) __attribute__((warn_unused_result));

#endif
