/*
 * Protocol detection on the first bytes of a redirected connection. An
 * HTTP/1.x request line is recognised whole (method token, target, version),
 * as Linkerd does, so a text protocol whose commands look like a method
 * ("GET key" in Redis' inline form) stays TCP: without " HTTP/1." before the
 * line ends it is not HTTP.
 */
#include "sidecar/http/detect.h"

#include <string.h>

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A request line's verdict: SC_DETECT_HTTP1 when whole and valid, MORE while a valid prefix, TCP otherwise. */
static sc_detect_t request_line(const unsigned char *b, size_t len)
{
    static const char version[] = "HTTP/1.";
    size_t i = 0, start;

    for (start = i; i < len && is_tchar(b[i]); ++i)
        if (i - start == SC_DETECT_METHOD_MAX)
            return SC_DETECT_TCP;
    if (i == len)
        return SC_DETECT_MORE;
    if (i == start || b[i] != ' ')
        return SC_DETECT_TCP;
    for (start = ++i; i < len && b[i] > 0x20 && b[i] < 0x7f; ++i)
        ;
    if (i == len)
        return SC_DETECT_MORE;
    if (i == start || b[i] != ' ')
        return SC_DETECT_TCP;
    ++i;
    for (size_t v = 0; v != sizeof(version) - 1; ++v, ++i) {
        if (i == len)
            return SC_DETECT_MORE;
        if (b[i] != (unsigned char)version[v])
            return SC_DETECT_TCP;
    }
    if (i == len)
        return SC_DETECT_MORE;
    if (b[i] < '0' || b[i] > '9')
        return SC_DETECT_TCP;
    if (++i == len)
        return SC_DETECT_MORE;
    if (b[i] == '\n')
        return SC_DETECT_HTTP1;
    if (b[i] != '\r')
        return SC_DETECT_TCP;
    if (++i == len)
        return SC_DETECT_MORE;
    return b[i] == '\n' ? SC_DETECT_HTTP1 : SC_DETECT_TCP;
}

sc_detect_t sc_detect_protocol(const char *bytes, size_t len)
{
    const unsigned char *b = (const unsigned char *)bytes;
    if (len == 0)
        return SC_DETECT_MORE;
    size_t n = len < sizeof(h2_preface) - 1 ? len : sizeof(h2_preface) - 1;
    if (memcmp(b, h2_preface, n) == 0)
        return n == sizeof(h2_preface) - 1 ? SC_DETECT_HTTP2 : SC_DETECT_MORE;
    sc_detect_t v = request_line(b, len < SC_DETECT_MAX ? len : SC_DETECT_MAX);
    if (v == SC_DETECT_MORE && len >= SC_DETECT_MAX)
        return SC_DETECT_HTTP1; /* a request line this long is still one: the front end answers it */
    return v;
}
