/* The inbound side's HTTP/1.1 client to the app: pooled connections, responses streamed with backpressure. */
#ifndef SEAM_SIDECAR_MESH_APPCLIENT_H
#define SEAM_SIDECAR_MESH_APPCLIENT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "sidecar/http/exchange.h"

#define SC_APP_BUFFER_HIGH (256 * 1024) /* response bytes buffered before the app's socket stops being read */
#define SC_APP_BUFFER_LOW (64 * 1024)   /* ... and resumed below this */
#define SC_APP_HEAD_MAX (64 * 1024)     /* largest response head accepted from the app */
#define SC_APP_HEADERS_MAX 100          /* response header lines accepted from the app */
#define SC_APP_UPLOAD_CHUNK (64 * 1024) /* request body bytes per write to the app */

#define SC_APP_CONNS_MAX 128 /* app connections one worker opens at most; more requests wait for one
                                (in order, within --app-timeout), as behind Envoy's circuit breaker:
                                an app that accepts slowly is not buried under connections */

/*
 * A worker's idle connections to the app. They stay h2o sockets with reading
 * on (an idle one the app closes is noticed and dropped at once), so taking
 * one costs no system call. Worker thread only.
 */
typedef struct st_sc_app_pool_t {
    h2o_loop_t *loop;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t keepalive_ms;   /* an idle connection older than this is closed instead of reused */
    h2o_linklist_t idle;     /* most recently used first */
    size_t num_idle;
    size_t num_conns;        /* open or opening, idle or in use; at most SC_APP_CONNS_MAX */
    h2o_linklist_t waiting;  /* requests waiting for a connection, oldest first */
} sc_app_pool_t;

void sc_app_pool_init(sc_app_pool_t *pool, h2o_loop_t *loop, const struct sockaddr *addr, socklen_t addr_len,
                      uint64_t keepalive_ms);

/* Closes every idle connection (the worker is stopping). */
void sc_app_pool_dispose(sc_app_pool_t *pool);

/* What the workers share with the client: the app's connection pool and its I/O timeout. */
typedef struct st_sc_app_target_t {
    sc_app_pool_t *pool;     /* connections to the app (one pool per worker) */
    h2o_timeout_t *timeout;  /* no progress from the app for this long: 504 (or a cut response) */
    const char *name;        /* "127.0.0.1:8080", for messages */
} sc_app_target_t;

/*
 * Sends req (method, path, the headers as they stand now) to the app over
 * HTTP/1.1, then its body as the client sends it (with its
 * content-length, or chunked when the length is unknown), and streams the
 * answer back. The response is read
 * from the app only as fast as the client takes it: past SC_APP_BUFFER_HIGH
 * buffered bytes the app's socket is not read until the client caught up.
 * Errors the client sees: 503 when the app cannot be reached, 502 when it
 * answers with something that is not HTTP/1.x or closes early, 504 when it
 * stays silent past the timeout. Connections whose response was complete and
 * not marked close go back to the pool. target must outlive the request.
 */
void sc_app_forward(sc_exchange_t *req, const sc_app_target_t *target);

#endif
