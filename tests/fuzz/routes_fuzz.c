/* libFuzzer target for sidecar/policy/routes.c: any file text is refused with a message or gives sorted, findable routes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/spiffe.h"
#include "sidecar/policy/routes.h"

static sc_routes_t *fixed;

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A route found for a request host is the one whose host the request names, port and final dot aside. */
static void check_find(const sc_routes_t *routes, const char *host, size_t len)
{
    const sc_route_t *r = sc_routes_find(routes, host, len);
    if (r == NULL)
        return;
    size_t n = strlen(r->host);
    if (len < n)
        abort();
    for (size_t i = 0; i != n; ++i)
        if (lower(host[i]) != r->host[i])
            abort();
    const char *tail = host + n;
    size_t tail_len = len - n;
    if (r->host[0] == '[')
        return; /* what follows "[v6]" is not looked at */
    if (tail_len != 0 && tail[0] == '.')
        ++tail, --tail_len;
    if (tail_len != 0 && tail[0] != ':')
        abort();
}

static void make_fixed(void)
{
    static const char json[] =
        "{\"routes\":[{\"host\":\"backend.default.svc\",\"upstream\":\"10.0.0.1:15006\","
        "\"identity\":\"spiffe://cluster.local/ns/default/sa/backend\"},"
        "{\"host\":\"a\",\"upstream\":\"[::1]:1\",\"identity\":\"spiffe://cluster.local/ns/default/sa/a\"},"
        "{\"host\":\"[fe80::1]\",\"upstream\":\"[fe80::1]:443\",\"identity\":\"spiffe://cluster.local/ns/x/sa/y\"}]}";
    char err[512];
    if (sc_routes_parse("fixed", json, sizeof(json) - 1, &fixed, err, sizeof(err)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_routes_t *routes = NULL;
    char err[1024] = "";

    if (fixed == NULL)
        make_fixed();
    /* the input as a request's host */
    check_find(fixed, (const char *)data, size);

    if (sc_routes_parse("routes.json", (const char *)data, size, &routes, err, sizeof(err)) != 0) {
        if (strncmp(err, "routes.json", 11) != 0)
            abort();
        return 0;
    }
    size_t count = sc_routes_count(routes);
    if (count > SC_ROUTES_MAX || sc_routes_at(routes, count) != NULL)
        abort();
    for (size_t i = 0; i != count; ++i) {
        const sc_route_t *r = sc_routes_at(routes, i);
        /* sorted, unique, lowercase, a port, a workload identity */
        if (i != 0 && strcmp(sc_routes_at(routes, i - 1)->host, r->host) >= 0)
            abort();
        size_t n = strlen(r->host);
        if (n == 0 || n > SC_ROUTE_HOST_MAX || r->upstream_port == 0 || r->upstream_host[0] == '\0')
            abort();
        for (size_t j = 0; j != n; ++j)
            if (r->host[j] >= 'A' && r->host[j] <= 'Z')
                abort();
        crt_spiffe_id_t id;
        if (crt_spiffe_parse_workload(r->identity, strlen(r->identity), &id) != CRT_SPIFFE_OK)
            abort();
        /* each route is found by its own host, in any case, with a port or a final dot */
        char host[SC_ROUTE_HOST_MAX + 16];
        if (sc_routes_find(routes, r->host, n) != r)
            abort();
        for (size_t j = 0; j <= n; ++j)
            host[j] = r->host[j] >= 'a' && r->host[j] <= 'z' ? (char)(r->host[j] - 'a' + 'A') : r->host[j];
        if (sc_routes_find(routes, host, n) != r)
            abort();
        snprintf(host, sizeof(host), "%s:8443", r->host);
        if (sc_routes_find(routes, host, strlen(host)) != r)
            abort();
        if (r->host[0] != '[') {
            snprintf(host, sizeof(host), "%s.", r->host);
            if (sc_routes_find(routes, host, strlen(host)) != r)
                abort();
        }
        check_find(routes, (const char *)data, size);
    }
    sc_routes_release(routes);
    return 0;
}
