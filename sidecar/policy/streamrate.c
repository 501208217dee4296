/* Per-connection HTTP/2 stream-rate accounting (see streamrate.h). */
#include "sidecar/policy/streamrate.h"

#include <stddef.h>

unsigned sc_stream_rate_limit(sc_stream_event_t event)
{
    return event == SC_STREAM_RESET ? SC_RESETS_PER_SECOND_MAX : SC_STREAMS_PER_SECOND_MAX;
}

int sc_stream_rate_note(sc_stream_rate_t *rate, uint64_t now_ms, sc_stream_event_t event, unsigned *count)
{
    if (now_ms < rate->window_start_ms || now_ms - rate->window_start_ms >= SC_STREAM_RATE_WINDOW_MS ||
        (rate->opened == 0 && rate->reset == 0)) {
        rate->window_start_ms = now_ms;
        rate->opened = 0;
        rate->reset = 0;
    }
    unsigned *slot = event == SC_STREAM_RESET ? &rate->reset : &rate->opened;
    if (*slot != UINT32_MAX)
        ++*slot;
    if (count != NULL)
        *count = *slot;
    return *slot == sc_stream_rate_limit(event) + 1; /* report the crossing once */
}
