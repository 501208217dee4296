/* Per-connection HTTP/2 stream-rate accounting: a pure one-second window, no clock of its own. */
#ifndef SEAM_SIDECAR_POLICY_STREAMRATE_H
#define SEAM_SIDECAR_POLICY_STREAMRATE_H

#include <stdint.h>

#define SC_STREAMS_PER_SECOND_MAX 50000 /* requests one connection may start per second: far above what a
                                         pooled mesh connection carries (the benchmark pair moves about
                                         14,000/s in all), far below a flood */
#define SC_RESETS_PER_SECOND_MAX 100   /* streams one connection may cancel per second */
#define SC_STREAM_RATE_WINDOW_MS 1000

typedef enum { SC_STREAM_OPENED = 0, SC_STREAM_RESET } sc_stream_event_t;

/* Zero-initialise; one per connection. */
typedef struct st_sc_stream_rate_t {
    uint64_t window_start_ms;
    unsigned opened;
    unsigned reset;
} sc_stream_rate_t;

/*
 * Counts one event at now_ms (a monotonic clock the caller reads). Returns 1
 * when this event takes the connection over the event's limit within the
 * current window (the caller closes the connection), else 0. *count (may be
 * NULL) receives the events of that kind in the window so far.
 */
int sc_stream_rate_note(sc_stream_rate_t *rate, uint64_t now_ms, sc_stream_event_t event, unsigned *count);

/* The limit for an event kind. */
unsigned sc_stream_rate_limit(sc_stream_event_t event);

#endif
