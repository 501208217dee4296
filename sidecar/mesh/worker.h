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

#include "sidecar/admin/metrics.h"
#include "sidecar/policy/connlimit.h"
#include "sidecar/policy/error.h"
#include "sidecar/http/front.h"
#include "sidecar/http/loopquiet.h"
#include "sidecar/identity/tls.h"

#define SC_LISTEN_BACKLOG 1024
#define SC_REFUSAL_LOG_MS 10000 /* a worker logs turned-away connections at most this often */

typedef struct st_sc_worker_base_t sc_worker_base_t;

/* What a side does at the points where the shared scaffolding hands over; each runs on the worker's thread. */
typedef struct st_sc_worker_ops_t {
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
    sc_loopquiet_t quiet; /* no epoll_ctl per completed write */
    const sc_worker_ops_t *ops;
    sc_front_t *front;  /* the owner's HTTP front end (borrowed): a drain asks its connections to finish */
    size_t index;
    uint64_t drain_timeout_ms;
    size_t num_conns; /* counted by the owner; the drain finishes when it reaches 0 */
    sc_connlimit_t *limit; /* the listener's budget, shared by its workers (the owner's; set before the start) */
    const char *side;      /* "inbound" or "outbound", for log lines */
    sc_metrics_t *metrics; /* the owner's counters: refusals, open connections */
    uint64_t refusals;          /* connections this worker turned away */
    uint64_t refusal_logged_at; /* loop time of the last line saying so; 0: none yet */
    int draining;
    int stopped; /* set (atomically) when the worker's loop has returned */
    pthread_mutex_t mailbox_lock; /* guards drain_requested, mail_tls and the owner's mailbox */
    pthread_cond_t parked;        /* a stopped worker waits here until the process exits */
    int drain_requested;
    sc_tls_t *mail_tls; /* a new TLS snapshot for the worker to take (a reference), or NULL */
    sc_tls_t **tls;     /* the owner's current snapshot (its reference), replaced by one from mail_tls */
    /* the owner's other snapshot (inbound: the policy; outbound: the routes), swapped the same way at a wakeup */
    void **mail;        /* its mailbox slot, in the owner's record */
    void **current;     /* the one in use (the worker's reference) */
    void (*ref)(void *snapshot, int delta);
};

/* Who a worker is and what it holds, as its side tells the scaffolding (each pointer into the owner's record). */
typedef struct st_sc_worker_setup_t {
    const sc_worker_ops_t *ops; /* borrowed (static) */
    const char *side;           /* "inbound" or "outbound" */
    void *owner;                /* the owning worker: loop.data */
    sc_connlimit_t *limit;
    sc_metrics_t *metrics;
    sc_tls_t **tls;
    void **mail, **current;     /* the side's other snapshot (see sc_worker_base_t) */
    void (*ref)(void *snapshot, int delta);
} sc_worker_setup_t;

/*
 * Sets up the loop, the mailbox lock and the wakeup and drain timer handles
 * of worker index. The owner initialises its h2o context on base->loop after
 * this call, and points base->front at its front end.
 */
void sc_worker_base_init(sc_worker_base_t *base, const sc_worker_setup_t *setup, size_t index,
                         uint64_t drain_timeout_ms);

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

/*
 * Admits the connection waiting on the listener (worker thread, in the
 * listener's callback, with its status): takes a slot of the listener's
 * budget, allocates a zeroed record of size bytes that begins with its
 * uv_tcp_t, accepts into it and checks its descriptor. From then on the
 * connection counts in num_conns and the open-connections gauge until its
 * close callback calls sc_worker_base_release(). Returns the record, or NULL
 * when the connection was turned away (counted and logged) or could not be
 * accepted (then on_close, the record's close callback, runs as for any
 * connection).
 */
void *sc_worker_base_admit(sc_worker_base_t *base, uv_stream_t *listener, int status, size_t size,
                           uv_close_cb on_close);

/* The worker whose loop handle runs on (in a close callback, before the record that holds it is freed). */
sc_worker_base_t *sc_worker_base_of(uv_handle_t *handle);

/* A connection admitted by sc_worker_base_admit() closed: its slot, count and gauge go; a draining worker may stop. */
void sc_worker_base_release(sc_worker_base_t *base);

/* Starts the worker's thread, which runs the loop and then parks. Returns 0 or SC_E_THREAD. */
int sc_worker_base_start(sc_worker_base_t *base) __attribute__((warn_unused_result));

/* Wakes the worker to read its mailbox (any thread; call after filling the mailbox under mailbox_lock). */
void sc_worker_base_wake(sc_worker_base_t *base);

/*
 * Puts snapshot (a reference the caller took for this worker) in a slot of
 * the worker's mailbox (any thread; slot lives in the owner's record, under
 * mailbox_lock), drops one still waiting there unread (ref(old, -1)), and
 * wakes the worker. ref is the snapshot kind's sc_*_ref.
 */
void sc_worker_base_post(sc_worker_base_t *base, void **slot, void *snapshot, void (*ref)(void *, int));

/* The snapshot posted in slot since the last call, or NULL (worker thread, at a wakeup; the caller owns it). */
void *sc_worker_base_take(sc_worker_base_t *base, void **slot);


/*
 * Asks the worker to drain (any thread): close its listener, ask the front
 * end's connections to finish, stop within drain_timeout_ms.
 */
void sc_worker_base_post_drain(sc_worker_base_t *base);

/* After a connection closed (worker thread): stops a draining worker once none is left. */
void sc_worker_base_maybe_finish(sc_worker_base_t *base);

/* True once the worker's loop has returned (any thread). */
int sc_worker_base_stopped(sc_worker_base_t *base);

/*
 * One side's workers as its owner allocated them: num records of stride
 * bytes, each holding its sc_worker_base_t at base_offset. What the main
 * thread does to all of them goes through here (main thread only).
 */
typedef struct st_sc_worker_group_t {
    char *records;
    size_t stride;
    size_t base_offset;
    size_t num;     /* set up */
    size_t running; /* threads started */
} sc_worker_group_t;

/* Allocates num zeroed records of stride bytes, each with its base at base_offset; NULL when out of memory. */
void *sc_worker_group_alloc(sc_worker_group_t *g, size_t num, size_t stride, size_t base_offset);

/* Starts every worker's thread. Returns 0 or SC_E_THREAD (those started keep running). */
int sc_worker_group_start(sc_worker_group_t *g) __attribute__((warn_unused_result));

/* Hands every worker a new TLS snapshot (each takes its own reference). */
void sc_worker_group_post_tls(sc_worker_group_t *g, sc_tls_t *tls);

/*
 * Hands every worker a snapshot into the mailbox slot at slot_offset of its
 * record; ref (sc_policy_ref, sc_routes_ref, sc_tls_ref) takes a reference
 * for each and drops one it replaces.
 */
void sc_worker_group_post(sc_worker_group_t *g, size_t slot_offset, void *snapshot, void (*ref)(void *, int));

/* Sets every worker's request head limits (copied; before the start). */
void sc_worker_group_set_front_limits(sc_worker_group_t *g, const sc_front_limits_t *limits);

/* Asks every worker to drain: close its listener, finish in-flight requests, stop within the drain timeout. */
void sc_worker_group_drain(sc_worker_group_t *g);

/* True once every started worker's loop has returned. */
int sc_worker_group_stopped(sc_worker_group_t *g);

/* After sc_worker_group_stopped(): the connections still open when the workers stopped (cut at the deadline). */
size_t sc_worker_group_open_conns(sc_worker_group_t *g);

#endif
