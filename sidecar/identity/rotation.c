/* Certificate renewal schedule: half-life with jitter, capped exponential backoff. */
#include "sidecar/identity/rotation.h"

time_t sc_rotation_due(time_t not_before, time_t not_after, uint32_t random)
{
    if (not_after <= not_before)
        return not_before;
    int64_t lifetime = (int64_t)(not_after - not_before);
    int64_t span = lifetime * SC_ROTATION_JITTER_PERCENT / 100; /* +- span around half-life */
    /* random in [0, 2^32) maps onto [-span, +span] */
    int64_t offset = span == 0 ? 0 : (int64_t)((uint64_t)random % (uint64_t)(2 * span + 1)) - span;
    time_t due = not_before + (time_t)(lifetime / 2 + offset);
    if (due < not_before)
        due = not_before;
    if (due > not_after)
        due = not_after;
    return due;
}

int64_t sc_rotation_backoff_ms(unsigned attempt, time_t now, time_t not_after)
{
    int64_t wait = SC_ROTATION_BACKOFF_FIRST_MS;
    for (unsigned i = 1; i < attempt && wait < SC_ROTATION_BACKOFF_MAX_MS; ++i)
        wait *= 2;
    if (wait > SC_ROTATION_BACKOFF_MAX_MS)
        wait = SC_ROTATION_BACKOFF_MAX_MS;
    /* Try once more just before expiry rather than sleep past it. */
    if (not_after > now) {
        int64_t left_ms = (int64_t)(not_after - now) * 1000;
        if (left_ms > SC_ROTATION_BACKOFF_FIRST_MS && wait > left_ms - SC_ROTATION_BACKOFF_FIRST_MS)
            wait = left_ms - SC_ROTATION_BACKOFF_FIRST_MS;
    }
    return wait;
}

void sc_rotation_on_success(sc_rotation_t *r, time_t not_before, time_t not_after, time_t now, uint32_t random)
{
    r->not_before = not_before;
    r->not_after = not_after;
    r->due = sc_rotation_due(not_before, not_after, random);
    r->failures = 0;
    r->last_rotation = now;
    r->next_attempt_ms = 0;
}

int64_t sc_rotation_on_failure(sc_rotation_t *r, time_t now, int64_t now_ms)
{
    ++r->failures;
    ++r->total_failures;
    int64_t wait = sc_rotation_backoff_ms(r->failures, now, r->not_after);
    r->next_attempt_ms = now_ms + wait;
    return wait;
}

int sc_rotation_expired(const sc_rotation_t *r, time_t now)
{
    return r->not_after == 0 || now >= r->not_after;
}

int64_t sc_rotation_wait_ms(const sc_rotation_t *r, time_t now, int64_t now_ms)
{
    if (r->failures != 0)
        return r->next_attempt_ms > now_ms ? r->next_attempt_ms - now_ms : 0;
    if (r->not_after == 0 || r->due <= now)
        return 0;
    return (int64_t)(r->due - now) * 1000;
}
