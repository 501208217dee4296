/* Token buckets keyed by SPIFFE ID or client address, in a chained hash table. */
#include "control/ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_BUCKETS 4096

struct st_ca_rate_entry_t {
    struct st_ca_rate_entry_t *next;
    double tokens;
    uint64_t updated_ms;
    char identity[];
};

struct st_ca_ratelimit_t {
    struct st_ca_rate_entry_t *buckets[NUM_BUCKETS];
    double per_ms;
    double burst;
    size_t count;
    size_t max;
};

ca_ratelimit_t *ca_ratelimit_new(unsigned per_minute, unsigned burst, size_t max_identities)
{
    ca_ratelimit_t *rl;

    if (per_minute == 0 || burst == 0 || (rl = calloc(1, sizeof(*rl))) == NULL)
        return NULL;
    rl->per_ms = per_minute / 60000.0;
    rl->burst = burst;
    rl->max = max_identities;
    return rl;
}

void ca_ratelimit_free(ca_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < NUM_BUCKETS; ++i) {
        struct st_ca_rate_entry_t *e = rl->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(rl);
}

size_t ca_ratelimit_size(const ca_ratelimit_t *rl)
{
    return rl->count;
}

static size_t hash_identity(const char *s)
{
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; ++s)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h % NUM_BUCKETS;
}

static void refill(const ca_ratelimit_t *rl, struct st_ca_rate_entry_t *e, uint64_t now_ms)
{
    if (now_ms > e->updated_ms) {
        e->tokens += (double)(now_ms - e->updated_ms) * rl->per_ms;
        if (e->tokens > rl->burst)
            e->tokens = rl->burst;
        e->updated_ms = now_ms;
    }
}

/* Drops identities whose bucket has refilled: forgetting them changes nothing. */
static void sweep(ca_ratelimit_t *rl, uint64_t now_ms)
{
    for (size_t i = 0; i < NUM_BUCKETS; ++i) {
        struct st_ca_rate_entry_t **slot = &rl->buckets[i];
        while (*slot != NULL) {
            struct st_ca_rate_entry_t *e = *slot;
            refill(rl, e, now_ms);
            if (e->tokens >= rl->burst) {
                *slot = e->next;
                free(e);
                --rl->count;
            } else {
                slot = &e->next;
            }
        }
    }
}

static struct st_ca_rate_entry_t *find_entry(const ca_ratelimit_t *rl, const char *identity, size_t b)
{
    struct st_ca_rate_entry_t *e;
    for (e = rl->buckets[b]; e != NULL; e = e->next)
        if (strcmp(e->identity, identity) == 0)
            break;
    return e;
}

int ca_ratelimit_allows(ca_ratelimit_t *rl, const char *identity, uint64_t now_ms)
{
    struct st_ca_rate_entry_t *e = find_entry(rl, identity, hash_identity(identity));

    if (e == NULL)
        return 1;
    refill(rl, e, now_ms);
    return e->tokens >= 1.0;
}

int ca_ratelimit_address_key(const struct sockaddr *addr, char *buf, size_t cap)
{
    char text[INET6_ADDRSTRLEN];

    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == NULL)
            return -1;
        snprintf(buf, cap, "%s", text);
        return 0;
    }
    if (addr->sa_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            if (inet_ntop(AF_INET, &a.s6_addr[12], text, sizeof(text)) == NULL)
                return -1;
            snprintf(buf, cap, "%s", text);
            return 0;
        }
        memset(&a.s6_addr[8], 0, 8);
        if (inet_ntop(AF_INET6, &a, text, sizeof(text)) == NULL)
            return -1;
        snprintf(buf, cap, "%s/64", text);
        return 0;
    }
    return -1;
}

int ca_ratelimit_take(ca_ratelimit_t *rl, const char *identity, uint64_t now_ms)
{
    size_t b = hash_identity(identity);
    struct st_ca_rate_entry_t *e = find_entry(rl, identity, b);

    if (e == NULL) {
        if (rl->count >= rl->max)
            sweep(rl, now_ms);
        if (rl->count >= rl->max)
            return 0;
        size_t len = strlen(identity);
        if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
            return 0;
        memcpy(e->identity, identity, len + 1);
        e->tokens = rl->burst;
        e->updated_ms = now_ms;
        e->next = rl->buckets[b];
        rl->buckets[b] = e;
        ++rl->count;
    }
    refill(rl, e, now_ms);
    if (e->tokens < 1.0)
        return 0;
    e->tokens -= 1.0;
    return 1;
}
