/* Token-bucket rate limits: issuance per identity, refused credentials per client address. Pure: the clock is passed in. */
#ifndef SEAM_CONTROL_RATELIMIT_H
#define SEAM_CONTROL_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CA_RATE_PER_MINUTE_DEFAULT 30   /* sustained certificates per identity per minute */
#define CA_RATE_BURST_DEFAULT 10        /* back-to-back certificates per identity */
#define CA_RATE_MAX_IDENTITIES 100000   /* identities tracked; idle full buckets are dropped first */
#define CA_BAD_CREDENTIAL_PER_MINUTE_DEFAULT 60 /* refused credentials per client address per minute (sustained) */
#define CA_BAD_CREDENTIAL_BURST_DEFAULT 30      /* refused credentials per client address back to back */
#define CA_RATE_MAX_ADDRESSES 100000    /* client addresses tracked for refused credentials */
#define CA_RATE_ADDRESS_KEY_MAX 64      /* longest key ca_ratelimit_address_key() writes, with its NUL */

typedef struct st_ca_ratelimit_t ca_ratelimit_t;

/* A new limiter; per_minute and burst must be > 0. Returns NULL on allocation failure. */
ca_ratelimit_t *ca_ratelimit_new(unsigned per_minute, unsigned burst, size_t max_identities);

void ca_ratelimit_free(ca_ratelimit_t *rl);

/*
 * Takes one token from identity's bucket at now_ms. Returns 1 when allowed,
 * 0 when limited (also when the table is full of active identities: fail closed).
 */
int ca_ratelimit_take(ca_ratelimit_t *rl, const char *identity, uint64_t now_ms);

/*
 * Whether identity's bucket holds a whole token at now_ms, without taking
 * it: 1 or 0. An identity not tracked has a full bucket, so a table full of
 * other identities never refuses it. Pure.
 */
int ca_ratelimit_allows(ca_ratelimit_t *rl, const char *identity, uint64_t now_ms);

/*
 * The key a client address is limited under, into buf (CA_RATE_ADDRESS_KEY_MAX
 * bytes): an IPv4 address as itself ("192.0.2.7", also when IPv4-mapped in
 * IPv6); an IPv6 address as its /64 ("2001:db8:1:2::/64"), since one host
 * can have a whole /64 to itself. Returns 0, or -1 for another family. Pure.
 */
int ca_ratelimit_address_key(const struct sockaddr *addr, char *buf, size_t cap);

/* Identities currently tracked. */
size_t ca_ratelimit_size(const ca_ratelimit_t *rl);

#endif
