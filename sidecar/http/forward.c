/* Pure helpers of the outbound proxy: request target and hop-by-hop headers. */
#include "sidecar/http/forward.h"

#include <string.h>

static const sc_slice_t dropped[] = {
#define S(s) {s, sizeof(s) - 1}
    S("connection"),  S("keep-alive"), S("proxy-connection"),    S("te"),
    S("transfer-encoding"), S("upgrade"), S("proxy-authorization"), S("http2-settings"),
    S("host"),        S("content-length"), S("x-forwarded-client-cert"),
#undef S
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int slice_eq_nocase(sc_slice_t a, const char *b, size_t blen)
{
    if (a.len != blen)
        return 0;
    for (size_t i = 0; i != blen; ++i)
        if (lower(a.base[i]) != lower(b[i]))
            return 0;
    return 1;
}

int sc_forward_target(sc_slice_t authority, sc_slice_t path, sc_slice_t *host, sc_slice_t *out_path)
{
    static const char http[] = "http://";
    const size_t http_len = sizeof(http) - 1;

    if (path.len != 0 && path.base[0] != '/' && path.base[0] != '*') {
        /* absolute form: scheme "://" authority [path-abempty] [ "?" query ] */
        const char *colon = memchr(path.base, ':', path.len);
        if (colon == NULL)
            return SC_TARGET_BAD_URI;
        if (path.len < http_len || !slice_eq_nocase((sc_slice_t){path.base, http_len}, http, http_len))
            return colon + 2 < path.base + path.len && colon[1] == '/' && colon[2] == '/' ? SC_TARGET_NOT_HTTP
                                                                                      : SC_TARGET_BAD_URI;
        const char *p = path.base + http_len, *end = path.base + path.len, *auth_end = p;
        while (auth_end != end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
            ++auth_end;
        if (auth_end == p || memchr(p, '@', (size_t)(auth_end - p)) != NULL)
            return SC_TARGET_BAD_URI;
        *host = (sc_slice_t){p, (size_t)(auth_end - p)};
        *out_path = (sc_slice_t){auth_end, (size_t)(end - auth_end)};
        return SC_TARGET_OK;
    }
    if (authority.base == NULL || authority.len == 0)
        return SC_TARGET_NO_HOST;
    *host = authority;
    *out_path = path;
    return SC_TARGET_OK;
}

/* True when name appears as a token of a Connection header value ("close, X-Foo"). */
static int in_connection(sc_slice_t name, sc_slice_t connection)
{
    size_t i = 0;
    while (i < connection.len) {
        while (i < connection.len && (connection.base[i] == ' ' || connection.base[i] == '\t' || connection.base[i] == ','))
            ++i;
        size_t start = i;
        while (i < connection.len && connection.base[i] != ',')
            ++i;
        size_t end = i;
        while (end > start && (connection.base[end - 1] == ' ' || connection.base[end - 1] == '\t'))
            --end;
        if (end > start && slice_eq_nocase(name, connection.base + start, end - start))
            return 1;
    }
    return 0;
}

int sc_forward_drop_header(sc_slice_t name, sc_slice_t connection)
{
    for (size_t i = 0; i != sizeof(dropped) / sizeof(dropped[0]); ++i)
        if (slice_eq_nocase(name, dropped[i].base, dropped[i].len))
            return 1;
    return connection.len != 0 && in_connection(name, connection);
}
