/* Which admin requests may change state: refuses cross-origin and rebound-Host requests, a pure check. */
#include "sidecar/admin/adminguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "sidecar/policy/config.h"

static const struct {
    const char *name;
    const char *message;
} guard_errors[] = {
#define SC_ADMIN_GUARD_ROW(name, slug, msg) {slug, msg},
    SC_ADMIN_GUARD_MAP(SC_ADMIN_GUARD_ROW)
#undef SC_ADMIN_GUARD_ROW
};

static int guard_index(int verdict)
{
    if (verdict <= SC__ADMIN_GUARD_FIRST || verdict >= SC__ADMIN_GUARD_END)
        return -1;
    return verdict - SC__ADMIN_GUARD_FIRST - 1;
}

const char *sc_admin_guard_name(int verdict)
{
    int i = guard_index(verdict);
    return verdict == SC_ADMIN_GUARD_ALLOW ? "allow" : i < 0 ? "unknown" : guard_errors[i].name;
}

const char *sc_admin_guard_message(int verdict)
{
    int i = guard_index(verdict);
    return verdict == SC_ADMIN_GUARD_ALLOW ? "allowed" : i < 0 ? "unknown verdict" : guard_errors[i].message;
}

/* An address literal: family AF_INET or AF_INET6 and its bytes; family 0 for a name. */
typedef struct st_host_addr_t {
    int family;
    unsigned char bytes[16];
} host_addr_t;

static void parse_addr(const char *host, int bracketed, host_addr_t *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (bracketed ? inet_pton(AF_INET6, host, addr->bytes) == 1 : inet_pton(AF_INET, host, addr->bytes) == 1)
        addr->family = bracketed ? AF_INET6 : AF_INET;
}

/*
 * Takes the host out of a Host value ("name", "name:port", "[v6]",
 * "[v6]:port"; the port may be empty, as RFC 3986 allows) into buf,
 * NUL-terminated and without brackets. Returns 0, or -1 when the value is
 * malformed or longer than SC_ADMIN_HOST_MAX.
 */
static int split_host(sc_slice_t value, char *buf, size_t cap, int *bracketed)
{
    const char *p = value.base, *end = value.base + value.len, *h, *h_end;
    unsigned long port = 0;

    if (value.len == 0 || value.len > SC_ADMIN_HOST_MAX)
        return -1;
    if ((*bracketed = *p == '[')) {
        const char *close = memchr(p, ']', value.len);
        if (close == NULL)
            return -1;
        h = p + 1;
        h_end = close;
        p = close + 1;
    } else {
        const char *colon = memchr(p, ':', value.len);
        h = p;
        h_end = colon != NULL ? colon : end;
        p = h_end;
    }
    if (p != end) {
        if (*p++ != ':' || end - p > 5)
            return -1;
        for (; p != end; ++p)
            if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
                return -1;
    }
    size_t n = (size_t)(h_end - h);
    if (n == 0 || n >= cap || memchr(h, '\0', n) != NULL)
        return -1;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return 0;
}

static int is_loopback(const host_addr_t *a)
{
    if (a->family == AF_INET)
        return a->bytes[0] == 127;
    return a->family == AF_INET6 && memcmp(a->bytes, &in6addr_loopback, 16) == 0;
}

static int is_wildcard(const host_addr_t *a)
{
    static const unsigned char zero[16];
    return a->family != 0 && memcmp(a->bytes, zero, a->family == AF_INET ? 4 : 16) == 0;
}

int sc_admin_guard_host_ok(sc_slice_t host, const char *listen)
{
    char name[SC_ADMIN_HOST_MAX + 1], listen_name[SC_ADDR_MAX];
    uint16_t listen_port;
    int bracketed;
    host_addr_t addr, listen_addr;

    if (split_host(host, name, sizeof(name), &bracketed) != 0)
        return 0;
    parse_addr(name, bracketed, &addr);
    if (bracketed && addr.family == 0)
        return 0; /* brackets hold an IPv6 address or nothing */
    if ((addr.family == 0 && strcasecmp(name, "localhost") == 0) || is_loopback(&addr))
        return 1;
    if (sc_addr_split(listen, listen_name, sizeof(listen_name), &listen_port) != 0)
        return 0;
    /* sc_addr_split drops the brackets: an IPv6 listen address is the one with a ':' */
    parse_addr(listen_name, strchr(listen_name, ':') != NULL, &listen_addr);
    if (is_wildcard(&listen_addr))
        return addr.family != 0;
    if (listen_addr.family != 0)
        return addr.family == listen_addr.family && memcmp(addr.bytes, listen_addr.bytes, sizeof(addr.bytes)) == 0;
    return addr.family == 0 && strcasecmp(name, listen_name) == 0;
}

sc_admin_guard_t sc_admin_guard_check(sc_slice_t method, int has_origin, sc_slice_t host, const char *listen)
{
    if ((method.len == 3 && memcmp(method.base, "GET", 3) == 0) ||
        (method.len == 4 && memcmp(method.base, "HEAD", 4) == 0))
        return SC_ADMIN_GUARD_ALLOW;
    if (has_origin)
        return SC_ADMIN_GUARD_E_ORIGIN;
    if (!sc_admin_guard_host_ok(host, listen))
        return SC_ADMIN_GUARD_E_HOST;
    return SC_ADMIN_GUARD_ALLOW;
}
