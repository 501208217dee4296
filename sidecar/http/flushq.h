/* Socket writes held to the end of a loop turn, so that a connection many exchanges answer on in one turn writes once. */
#ifndef SEAM_SIDECAR_FLUSHQ_H
#define SEAM_SIDECAR_FLUSHQ_H

#include <h2o/linklist.h>
#include <uv.h>

/*
 * A multiplexed connection (HTTP/2 between sidecars) gets frames from many
 * sockets in one turn of the loop: responses from the app's connections on
 * the inbound side, requests from the app's on the outbound side. Written at
 * once, the first goes out alone and the rest wait for its completion, which
 * makes two writes, two TLS records and two wakeups of the peer per turn.
 * Here the connection asks for a write instead, and the queue's prepare
 * handle makes it right before the loop polls: one write per connection and
 * turn, holding every frame of that turn.
 *
 * Nothing waits on a poll that could block: an entry added anywhere before
 * the prepare phase (timers, pending callbacks, the previous turn's poll and
 * check) is written in this turn's prepare phase. The handle is active, and
 * keeps the loop running, only while entries are queued.
 */
typedef struct st_sc_flushq_entry_t sc_flushq_entry_t;
struct st_sc_flushq_entry_t {
    h2o_linklist_t link;
    /* hands the connection's queued bytes to its socket; it may add entries (they run in the same turn) */
    void (*cb)(sc_flushq_entry_t *entry);
};

typedef struct st_sc_flushq_t {
    uv_prepare_t prepare;
    h2o_linklist_t pending; /* entries whose cb runs before the next poll */
    uint64_t flushes;       /* entries run so far */
} sc_flushq_t;

/* Sets up q on loop; its handle is active only while entries wait. Close it with sc_flushq_close. */
void sc_flushq_init(sc_flushq_t *q, uv_loop_t *loop);

/* Stops and closes the handle (every entry must be gone); q may be freed once the loop ran its close callbacks. */
void sc_flushq_close(sc_flushq_t *q);

/* Sets entry up, unqueued, with its callback (the owner's, for the connection that embeds it). */
void sc_flushq_entry_init(sc_flushq_entry_t *entry, void (*cb)(sc_flushq_entry_t *entry));

/* Queues entry for this turn's prepare phase; an entry already queued stays where it is. */
void sc_flushq_add(sc_flushq_t *q, sc_flushq_entry_t *entry);

/* Takes entry off its queue, if it is on one: its connection is closing. */
void sc_flushq_remove(sc_flushq_entry_t *entry);

#endif
