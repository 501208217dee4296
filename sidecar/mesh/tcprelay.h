/* Opaque TCP relayed between a client's stream and a new connection to a destination, both ways. */
#ifndef SEAM_SIDECAR_MESH_TCPRELAY_H
#define SEAM_SIDECAR_MESH_TCPRELAY_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define SC_TCPRELAY_READ 16384              /* bytes per read */
#define SC_TCPRELAY_HIGH (256 * 1024)       /* queued toward one side past this: the other side is not read */
#define SC_TCPRELAY_LOW (64 * 1024)         /* ... until the queue drains below this */

/* How a relay ended. */
typedef struct st_sc_tcprelay_result_t {
    uint64_t bytes_up;   /* from the client to the destination */
    uint64_t bytes_down; /* from the destination to the client */
    int connected;       /* the connection to the destination was made */
    int client_reset;    /* the client side failed or reset: the destination was reset too */
    int dest_reset;      /* the destination side failed or reset: reset the client (the owner closes it) */
    const char *error;   /* NULL when both directions ended with a close; else a slug: "connect-failed",
                            "connect-timeout", "client-reset", "destination-reset" */
    char detail[160];    /* the error in words, for the log */
} sc_tcprelay_result_t;

/*
 * Called once, when both directions have ended (each side's close passed on
 * as a half-close) or either failed. The relay has let go of client: the
 * owner closes it (with a reset when res->dest_reset).
 */
typedef void (*sc_tcprelay_done_cb)(void *data, const sc_tcprelay_result_t *res);

typedef struct st_sc_tcprelay_t sc_tcprelay_t;

/*
 * Connects to dst (within connect_timeout_ms), writes first (the bytes the
 * caller already read from client, copied) and relays both ways with flow
 * control: a side whose peer has SC_TCPRELAY_HIGH bytes queued is not read
 * until they drain. client must not be read by anyone else meanwhile, and the
 * owner must not close it before done runs. Returns NULL when out of memory or
 * the connect cannot even start (done does not run then).
 */
sc_tcprelay_t *sc_tcprelay_start(uv_loop_t *loop, uv_stream_t *client, const struct sockaddr *dst, const char *first,
                                 size_t first_len, uint64_t connect_timeout_ms, sc_tcprelay_done_cb done, void *data);

#endif
