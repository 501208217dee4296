/* The admin endpoint's and the probe listener's server: h2o on the main loop, one handler, a connection cap. */
#include "sidecar/admin/localhttp.h"

#include <stdlib.h>
#include <string.h>

/* A connection: its handle, and the server whose count it is in. */
typedef struct st_sc_localhttp_conn_t {
    uv_tcp_t tcp; /* freed with the record in its close callback */
    sc_localhttp_t *server;
} sc_localhttp_conn_t;

static void on_handle_close(uv_handle_t *handle)
{
    sc_localhttp_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sc_localhttp_conn_t, tcp, (uv_tcp_t *)handle);
    --conn->server->conns;
    free(conn);
}

static void on_connection(uv_stream_t *listener, int status)
{
    sc_localhttp_t *s = listener->data;
    sc_localhttp_conn_t *conn;

    if (status != 0 || *s->closing == 2 || (conn = malloc(sizeof(*conn))) == NULL)
        return;
    conn->server = s;
    ++s->conns;
    uv_tcp_init(listener->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || s->conns > s->max_conns) {
        uv_close((uv_handle_t *)&conn->tcp, on_handle_close);
        return;
    }
    h2o_accept(&s->accept, h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_handle_close));
}

h2o_handler_t *sc_localhttp_init(sc_localhttp_t *s, uv_loop_t *loop, const char *server_name, size_t handler_size,
                                 int (*on_req)(h2o_handler_t *, h2o_req_t *), size_t max_conns, const int *closing)
{
    s->max_conns = max_conns;
    s->closing = closing;
    s->conns = 0;
    h2o_config_init(&s->conf);
    s->conf.server_name = h2o_iovec_init(server_name, strlen(server_name));
    h2o_hostconf_t *hostconf = h2o_config_register_host(&s->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, handler_size);
    handler->on_req = on_req;
    h2o_context_init(&s->ctx, loop, &s->conf);
    s->accept.ctx = &s->ctx;
    s->accept.hosts = s->conf.hosts;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->started = 1;
    return handler;
}

int sc_localhttp_listen(sc_localhttp_t *s, const struct sockaddr *sa)
{
    int rc;
    if ((rc = uv_tcp_bind(&s->listener, sa, 0)) != 0 || (rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection)) != 0)
        return rc;
    return 0;
}

void sc_localhttp_stop(sc_localhttp_t *s)
{
    if (s->started && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
}

void sc_localhttp_send(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body,
                       size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
}

void sc_localhttp_send_text(h2o_req_t *req, int status, const char *reason, const char *text)
{
    sc_localhttp_send(req, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}
