/* What every worker thread shares, inbound or outbound: its loop, listener, mailbox wakeup, drain and parking. */
#ifndef SEAM_SIDECAR_MESH_WORKER_H
#define SEAM_SIDECAR_MESH_WORKER_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "sidecar/policy/connlimit.h"
#include "sidecar/policy/error.h"
#include "sidecar/http/front.h"
#include "sidecar/identity/tls.h"

#define SC_LISTEN_BACKLOG 1024
#define SC_REFUSAL_LOG_MS 10000 /* a worker logs turned-away connections at most this often */

typedef struct st_sc_worker_base_t sc_worker_base_t;

/* What a side does at the points where the shared scaffolding hands over; each runs on the worker's thread. */
typedef struct st_sc_worker_ops_t {
    /* A wakeup: swap in the snapshots waiting in the owner's mailbox (taking base->mailbox_lock to read it). */
    void (*on_mail)(sc_worker_base_t *base);
    /* The drain deadline passed with base->num_conns connections open: say so (the worker stops next). */
    void (*on_drain_timeout)(sc_worker_base_t *base);
    /* The loop is about to stop: last words, such as flushing the access log and closing pools. */
    void (*on_stop)(sc_worker_base_t *base);
} sc_worker_ops_t;

/*
 * The first member of sc_worker_t and sc_oworker_t. Everything here is
 * touched only on the worker's thread, except drain_requested (under
 * mailbox_lock) and stopped (atomic).
 */
struct st_sc_worker_base_t {
    uv_loop_t loop; /* loop.data is left to the owner: it points at the owning worker */
    uv_thread_t thread;
    uv_tcp_t listener; /* listener.data is this base */
    int listener_open;
    uv_async_t wakeup;
    uv_timer_t drain_timer;
    const sc_worker_ops_t *ops;
    sc_front_t *front;  /* the owner's HTTP front end (borrowed): a drain asks its connections to finish */
    size_t index;
    uint64_t drain_timeout_ms;
    size_t num_conns; /* counted by the owner; the drain finishes when it reaches 0 */
    sc_connlimit_t *limit; /* the listener's budget, shared by its workers (the owner's; set before the start) */
    const char *side;      /* "inbound" or "outbound", for log lines */
    uint64_t refusals;          /* connections this worker turned away */
    uint64_t refusal_logged_at; /* loop time of the last line saying so; 0: none yet */
    int draining;
    int stopped; /* set (atomically) when the worker's loop has returned */
    pthread_mutex_t mailbox_lock; /* guards drain_requested, mail_tls and the owner's mailbox */
    pthread_cond_t parked;        /* a stopped worker waits here until the process exits */
    int drain_requested;
    sc_tls_t *mail_tls; /* a new TLS snapshot for the worker to take (a reference), or NULL */
};

/*
 * Sets up the loop, the mailbox lock and the wakeup and drain timer handles.
 * ops is borrowed (static). The owner initialises its h2o context on
 * base->loop after this call, and points base->front at its front end.
 */
void sc_worker_base_init(sc_worker_base_t *base, const sc_worker_ops_t *ops, size_t index, uint64_t drain_timeout_ms);

/*
 * Opens the worker's SO_REUSEPORT listener on sa; on_connection gets the
 * listener, whose data is base. Returns 0, or SC_E_LISTEN with libuv's
 * reason in err.
 */
int sc_worker_base_listen(sc_worker_base_t *base, const struct sockaddr *sa, uv_connection_cb on_connection, char *err,
                          size_t err_cap) __attribute__((warn_unused_result));

/*
 * Closes the connection waiting on the listener straight after accepting it
 * (worker thread, in the listener's callback), for want of a slot: an accept,
 * a close and a small handle freed in its close callback; no TLS, no read.
 * Accepting rather than leaving it queued keeps the listener's backlog for
 * the connections that will get a slot.
 */
void sc_worker_base_refuse_pending(sc_worker_base_t *base);

/*
 * Counts a connection turned away and logs why (worker thread): the first
 * one at once, then at most one line per SC_REFUSAL_LOG_MS with the count so
 * far, so a flood does not become a flood of log lines.
 */
void sc_worker_base_log_refusal(sc_worker_base_t *base, sc_refuse_reason_t reason);

/* Starts the worker's thread, which runs the loop and then parks. Returns 0 or SC_E_THREAD. */
int sc_worker_base_start(sc_worker_base_t *base) __attribute__((warn_unused_result));

/* Wakes the worker to read its mailbox (any thread; call after filling the mailbox under mailbox_lock). */
void sc_worker_base_wake(sc_worker_base_t *base);

/* Hands the worker a new TLS snapshot (any thread; the mailbox takes its own reference) and wakes it. */
void sc_worker_base_post_tls(sc_worker_base_t *base, sc_tls_t *tls);

/* The snapshot posted since the last call, or NULL (worker thread, in on_mail; the caller owns the reference). */
sc_tls_t *sc_worker_base_take_tls(sc_worker_base_t *base);

/*
 * Asks the worker to drain (any thread): close its listener, ask the front
 * end's connections to finish, stop within drain_timeout_ms.
 */
void sc_worker_base_post_drain(sc_worker_base_t *base);

/* After a connection closed (worker thread): stops a draining worker once none is left. */
void sc_worker_base_maybe_finish(sc_worker_base_t *base);

/* True once the worker's loop has returned (any thread). */
int sc_worker_base_stopped(sc_worker_base_t *base);

#endif
