/* Per-identity token-bucket rate limit on issuance. Pure: the clock is passed in. */
#ifndef SEAM_CONTROL_RATELIMIT_H
#define SEAM_CONTROL_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define CA_RATE_PER_MINUTE_DEFAULT 30   /* sustained certificates per identity per minute */
#define CA_RATE_BURST_DEFAULT 10        /* back-to-back certificates per identity */
#define CA_RATE_MAX_IDENTITIES 100000   /* identities tracked; idle full buckets are dropped first */

typedef struct st_ca_ratelimit_t ca_ratelimit_t;

/* A new limiter; per_minute and burst must be > 0. Returns NULL on allocation failure. */
ca_ratelimit_t *ca_ratelimit_new(unsigned per_minute, unsigned burst, size_t max_identities);

void ca_ratelimit_free(ca_ratelimit_t *rl);

/*
 * Takes one token from identity's bucket at now_ms. Returns 1 when allowed,
 * 0 when limited (also when the table is full of active identities: fail closed).
 */
int ca_ratelimit_take(ca_ratelimit_t *rl, const char *identity, uint64_t now_ms);

/* Identities currently tracked. */
size_t ca_ratelimit_size(const ca_ratelimit_t *rl);

#endif
