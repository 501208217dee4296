/* When to renew the sidecar's certificate and when to retry: a pure schedule, the clock passed in. */
#ifndef SEAM_SIDECAR_ROTATION_H
#define SEAM_SIDECAR_ROTATION_H

#include <stdint.h>
#include <time.h>

#define SC_ROTATION_JITTER_PERCENT 10     /* renew at half-life +- 10% of the lifetime */
#define SC_ROTATION_BACKOFF_FIRST_MS 1000 /* first retry after a failure */
#define SC_ROTATION_BACKOFF_MAX_MS 60000  /* retries double up to this */
#define SC_ROTATION_EXPIRED_LOG_MS 60000  /* "expired, CA unreachable" at most once a minute */

/*
 * The moment to renew a certificate valid from not_before to not_after:
 * half-life, moved by up to +-10% of the lifetime. `random` is any 32-bit
 * value (the caller draws it once per certificate), so the result is
 * reproducible in tests. Never later than not_after, never before not_before.
 */
time_t sc_rotation_due(time_t not_before, time_t not_after, uint32_t random);

/*
 * Milliseconds to wait before retry number `attempt` (1 for the first retry
 * after a failure): 1 s doubling to 60 s. The wait never runs past the
 * certificate's expiry while that is still ahead, so the last attempt lands
 * before it; once expired, retries continue at the capped interval.
 */
int64_t sc_rotation_backoff_ms(unsigned attempt, time_t now, time_t not_after);

/* What a sidecar with a certificate valid until not_after should do at `now`. */
typedef enum {
    SC_ROTATION_WAIT = 0, /* nothing due yet */
    SC_ROTATION_RENEW,    /* renew now (due, forced, or retrying) */
} sc_rotation_action_t;

/* The scheduler's state: one per sidecar, owned by the thread that renews. */
typedef struct st_sc_rotation_t {
    time_t not_before, not_after; /* current certificate; 0/0 when none yet */
    time_t due;                   /* next planned renewal (0: as soon as possible) */
    unsigned failures;            /* consecutive failures since the last success */
    uint64_t total_failures;      /* for /certs rotation_failures */
    time_t last_rotation;         /* 0: never */
    int64_t next_attempt_ms;      /* monotonic ms of the next attempt; 0: at `due` */
} sc_rotation_t;

/* Records a new certificate (a success): resets failures and plans the next renewal. */
void sc_rotation_on_success(sc_rotation_t *r, time_t not_before, time_t not_after, time_t now, uint32_t random);

/* Records a failed attempt at monotonic time now_ms; returns the delay before the next attempt. */
int64_t sc_rotation_on_failure(sc_rotation_t *r, time_t now, int64_t now_ms);

/* True when the certificate has expired (or there is none) at `now`. */
int sc_rotation_expired(const sc_rotation_t *r, time_t now);

/*
 * Milliseconds from now until the next attempt, given wall time now and
 * monotonic now_ms: 0 when an attempt is due (no certificate yet, renewal
 * due, or a retry whose backoff has passed).
 */
int64_t sc_rotation_wait_ms(const sc_rotation_t *r, time_t now, int64_t now_ms);

#endif
