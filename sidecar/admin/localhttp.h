/* A small HTTP/1.1 server on the main loop for the sidecar's own endpoints: the admin endpoint and the probe listener. */
#ifndef SEAM_SIDECAR_ADMIN_LOCALHTTP_H
#define SEAM_SIDECAR_ADMIN_LOCALHTTP_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <sys/socket.h>
#include <uv.h>

/*
 * h2o's HTTP server with one handler for every path, and a cap on open
 * connections: past it a new connection is closed at once, so a flood
 * cannot take the descriptors that keep the endpoint reachable.
 */
typedef struct st_sc_localhttp_t {
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    uv_tcp_t listener;
    int started;        /* the listener handle is initialised */
    size_t conns;       /* open connections */
    size_t max_conns;
    const int *closing; /* the owner's flag: from 2 on, connections are no longer accepted */
} sc_localhttp_t;

/*
 * Sets up s on loop with one handler of handler_size bytes (its first member
 * an h2o_handler_t whose on_req is on_req); returns the handler for the
 * owner to fill in. Binds nothing yet.
 */
h2o_handler_t *sc_localhttp_init(sc_localhttp_t *s, uv_loop_t *loop, const char *server_name, size_t handler_size,
                                 int (*on_req)(h2o_handler_t *, h2o_req_t *), size_t max_conns, const int *closing);

/* Listens on sa. Returns 0 or libuv's error code. */
int sc_localhttp_listen(sc_localhttp_t *s, const struct sockaddr *sa);

/* Stops listening (open connections finish). */
void sc_localhttp_stop(sc_localhttp_t *s);

/* Answers with a short body of content_type, never cached. */
void sc_localhttp_send(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body,
                       size_t len);

/* The same for a line of plain text. */
void sc_localhttp_send_text(h2o_req_t *req, int status, const char *reason, const char *text);

#endif
