/* TCP between mesh peers as HTTP/2 CONNECT streams (RFC 9113 8.5): the calling side and the answering side. */
#ifndef SEAM_SIDECAR_MESH_TUNNEL_H
#define SEAM_SIDECAR_MESH_TUNNEL_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "sidecar/http/exchange.h"
#include "sidecar/mesh/upstream.h"

#define SC_TUNNEL_READ 16384           /* bytes per read of the app on the calling side (into the stream's buffer) */
#define SC_TUNNEL_PIECE (128 * 1024)   /* bytes per read of the app on the answering side: one send to the peer */
#define SC_TUNNEL_HIGH (256 * 1024)    /* the app's bytes the mesh stream has not taken: the app is not read ... */
#define SC_TUNNEL_LOW (64 * 1024)      /* ... until they drain below this */

/* How a tunnel ended; strings are valid while done runs. */
typedef struct st_sc_tunnel_result_t {
    uint64_t bytes_up;   /* from the app to the peer */
    uint64_t bytes_down; /* from the peer to the app */
    int status;          /* the peer's answer to the CONNECT: 200 carried, 403 its policy refused; 0 none */
    const char *error;   /* NULL when both directions ended with a close; else a slug */
    const char *peer_id; /* the SPIFFE ID the peer proved; NULL when no connection was made */
    int reset;           /* the app's connection ends with a reset */
} sc_tunnel_result_t;

typedef void (*sc_tunnel_done_cb)(void *data, const sc_tunnel_result_t *res);

/*
 * The calling side: carries client (an accepted app connection nobody else
 * reads) to authority ("IP:port", where the app meant to connect) as one
 * CONNECT stream to up, on its pooled mTLS connections; first (the bytes
 * already read from client, copied) goes first. Each side's close is passed on
 * (END_STREAM, or a shutdown of the app's socket), a reset as a reset. zero is
 * a timeout of 0 ms on the same loop. done runs once, when both directions
 * ended or either failed; the tunnel then lets go of client and the owner
 * closes it (with a reset when res->reset). Returns -1 when out of memory
 * (done does not run).
 */
int sc_tunnel_open(sc_upstream_env_t *env, sc_upstream_t *up, h2o_timeout_t *zero, uv_stream_t *client,
                   const char *authority, const char *first, size_t first_len, sc_tunnel_done_cb done, void *data)
    __attribute__((warn_unused_result));

/*
 * The answering side: serves an authorized CONNECT exchange by connecting to
 * dst (within connect_timeout_ms) and relaying both ways: 200 once connected,
 * then the app's bytes as the response body and the peer's as the request
 * body. A failed connect is answered 502, a slow one 504. ex->log.tunnel_sent
 * counts the app's bytes sent to the peer.
 */
void sc_tunnel_serve(sc_exchange_t *ex, uv_loop_t *loop, const struct sockaddr *dst, uint64_t connect_timeout_ms);

/* The port of a CONNECT authority ("host:port", "[v6]:port"); 0 when there is none or it is not 1-65535. */
uint16_t sc_tunnel_authority_port(const char *authority, size_t len);

#endif
