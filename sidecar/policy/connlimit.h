/* The data listeners' connection budgets: how many connections each holds, and the descriptors kept for the rest. */
#ifndef SEAM_SIDECAR_POLICY_CONNLIMIT_H
#define SEAM_SIDECAR_POLICY_CONNLIMIT_H

#include <stddef.h>
#include <stdint.h>

#define SC_DEFAULT_MAX_CONNECTIONS 10000 /* --max-connections: per data listener, across its workers */
#define SC_MAX_CONNECTIONS_MAX 1000000   /* ... at most */
/*
 * Descriptors no data listener may take: the admin endpoint (at most
 * SC_ADMIN_CONNS_MAX connections, sidecar.h), the loops' own descriptors, files,
 * file watches, DNS and seam-ca.
 */
#define SC_FD_RESERVE 64
#define SC_FD_ONWARD_INBOUND 128 /* per inbound worker: its connections to the app (SC_APP_CONNS_MAX) */
#define SC_FD_ONWARD_OUTBOUND 32 /* per outbound worker: mesh connections (100 streams each) it may hold */
/*
 * A data connection whose descriptor number is this close to RLIMIT_NOFILE
 * is closed at once. Descriptors are handed out lowest first, so the number
 * of a new one is a lower bound on how many are open: this catches what the
 * plan did not foresee without counting anything.
 */
#define SC_FD_HEADROOM 16

/* Why a connection was turned away; indexes seam_connections_rejected_total's reason label. */
typedef enum {
    SC_REFUSE_LIMIT = 0,       /* the listener held its budget */
    SC_REFUSE_DESCRIPTORS = 1, /* the process was within SC_FD_HEADROOM of RLIMIT_NOFILE */
} sc_refuse_reason_t;
#define SC_REFUSE_NUM_REASONS 2

/* What the plan starts from. */
typedef struct st_sc_connlimit_want_t {
    uint64_t nofile_soft; /* RLIMIT_NOFILE now (RLIM_INFINITY as UINT64_MAX) */
    uint64_t nofile_hard;
    uint64_t max_connections; /* --max-connections */
    size_t inbound_workers;   /* 0: the inbound listener is off */
    size_t outbound_workers;  /* 0: the outbound listener is off */
} sc_connlimit_want_t;

typedef struct st_sc_connlimit_plan_t {
    uint64_t nofile;       /* the soft RLIMIT_NOFILE to run with: raised (up to the hard one) when the budgets need it */
    uint64_t inbound_max;  /* connections the inbound listener holds; 0 when it is off */
    uint64_t outbound_max; /* ... the outbound listener */
    int clamped;           /* descriptors, not --max-connections, set a budget */
} sc_connlimit_plan_t;

/*
 * Plans the budgets; no I/O. The soft limit is raised towards the hard one
 * until everything fits. The descriptors above SC_FD_RESERVE are shared
 * equally by the listeners that run; each listener keeps, within its share,
 * one descriptor per onward connection its workers may open (at most half
 * the share), and the rest is its budget, capped by max_connections.
 * Returns 0, or -1 when a running listener would get no connection at all.
 */
int sc_connlimit_plan(const sc_connlimit_want_t *want, sc_connlimit_plan_t *plan) __attribute__((warn_unused_result));

/*
 * One data listener's budget, shared by its workers. Set max and fd_ceiling
 * before the workers start; open is counted with one atomic add per
 * connection (never per request) and no lock.
 */
typedef struct st_sc_connlimit_t {
    uint64_t max;
    int fd_ceiling; /* RLIMIT_NOFILE - SC_FD_HEADROOM: a connection's descriptor at or above it is refused */
    uint64_t open;  /* connections holding a slot (atomic) */
} sc_connlimit_t;

/* Sets max and the descriptor ceiling for a process running with nofile descriptors. */
void sc_connlimit_init(sc_connlimit_t *limit, uint64_t max, uint64_t nofile);

/* Takes a slot (any worker thread). Returns 1, or 0 when the listener is full (nothing taken). */
int sc_connlimit_take(sc_connlimit_t *limit) __attribute__((warn_unused_result));

/* Gives a slot back once the connection's descriptor is closed (any worker thread). */
void sc_connlimit_release(sc_connlimit_t *limit);

/* 1 when a just-accepted descriptor fd leaves the process its headroom, else 0. */
int sc_connlimit_fd_ok(const sc_connlimit_t *limit, int fd);

/* Connections holding a slot now (any thread). */
uint64_t sc_connlimit_open(const sc_connlimit_t *limit);

#endif
