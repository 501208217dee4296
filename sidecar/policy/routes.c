/* Routes file parsing (strict, with file/index/field errors) and host lookup. */
#include "sidecar/policy/routes.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_sc_routes_t {
    atomic_int refcnt;
    size_t count;
    sc_route_t *routes; /* sorted by host for binary search */
};

static int is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Strips ":port" (or "[v6]:port" brackets) from a request host; returns the host length. */
static size_t host_without_port(const char *host, size_t len)
{
    if (len != 0 && host[0] == '[') {
        const char *close = memchr(host, ']', len);
        return close != NULL ? (size_t)(close - host) + 1 : len;
    }
    const char *colon = memchr(host, ':', len);
    return colon != NULL ? (size_t)(colon - host) : len;
}

/* Validates and lowercases a route's host ([A-Za-z0-9._-], an IP literal, or "[v6]"). */
static const char *normalise_host(const char *in, char *out)
{
    size_t len = strlen(in);
    if (len == 0)
        return "is empty";
    if (len > SC_ROUTE_HOST_MAX)
        return "is longer than 253 bytes";
    if (in[0] == '[') {
        if (in[len - 1] != ']' || len < 3)
            return "has an unclosed '['";
        for (size_t i = 1; i + 1 < len; ++i)
            if (!((in[i] >= '0' && in[i] <= '9') || (lower(in[i]) >= 'a' && lower(in[i]) <= 'f') || in[i] == ':' || in[i] == '.'))
                return "is not an IPv6 address";
    } else {
        for (size_t i = 0; i != len; ++i)
            if (!is_host_char(lower(in[i])))
                return in[i] == ':' ? "must not carry a port" : "may only hold letters, digits, '.', '-' and '_'";
        if (in[0] == '.' || in[len - 1] == '.')
            return "must not start or end with '.'";
    }
    for (size_t i = 0; i <= len; ++i)
        out[i] = lower(in[i]);
    return NULL;
}

static const char *parse_upstream(const char *in, sc_route_t *route)
{
    size_t len = strlen(in);
    const char *colon;
    char host[SC_ROUTE_HOST_MAX + 3];

    if (len == 0)
        return "is empty";
    if (len > SC_ROUTE_UPSTREAM_MAX)
        return "is too long";
    if (in[0] == '[') {
        const char *close = strchr(in, ']');
        if (close == NULL || close[1] != ':')
            return "must be [IPv6]:PORT";
        colon = close + 1;
    } else if ((colon = strrchr(in, ':')) == NULL) {
        return "must be HOST:PORT";
    }
    size_t host_len = (size_t)(colon - in);
    if (host_len == 0 || host_len > SC_ROUTE_HOST_MAX + 2)
        return "has an empty or overlong host";
    memcpy(host, in, host_len);
    host[host_len] = '\0';
    if (in[0] != '[' && strchr(host, ':') != NULL)
        return "must put an IPv6 address in brackets";
    const char *why = normalise_host(host, host);
    if (why != NULL)
        return why;
    long port = 0;
    const char *p = colon + 1;
    if (*p == '\0')
        return "has no port";
    for (; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9' || port > 65535)
            return "has a port that is not a number from 1 to 65535";
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return "has a port that is not a number from 1 to 65535";
    /* Connect to the bare address: drop IPv6 brackets. */
    if (host[0] == '[') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    snprintf(route->upstream_host, sizeof(route->upstream_host), "%s", host);
    route->upstream_port = (unsigned short)port;
    return NULL;
}

static int compare_routes(const void *a, const void *b)
{
    return strcmp(((const sc_route_t *)a)->host, ((const sc_route_t *)b)->host);
}

int sc_routes_parse(const char *name, const char *json, size_t len, sc_routes_t **out, char *err, size_t err_cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    sc_routes_t *routes = NULL;
    const char *key;
    json_t *value;
    int ret = -1;

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(err, err_cap, __VA_ARGS__);                                                                           \
        goto Exit;                                                                                                     \
    } while (0)

    if (root == NULL)
        FAIL("%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root))
        FAIL("%s: the top level must be an object with a \"routes\" list", name);
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "routes") != 0)
            FAIL("%s: unknown field \"%s\" (expected only \"routes\")", name, key);
    }
    json_t *list = json_object_get(root, "routes");
    if (!json_is_array(list))
        FAIL("%s: \"routes\" must be a list", name);
    if (json_array_size(list) > SC_ROUTES_MAX)
        FAIL("%s: more than %d routes", name, SC_ROUTES_MAX);
    if ((routes = calloc(1, sizeof(*routes))) == NULL ||
        (json_array_size(list) != 0 && (routes->routes = calloc(json_array_size(list), sizeof(sc_route_t))) == NULL))
        FAIL("%s: out of memory", name);
    atomic_init(&routes->refcnt, 1);

    for (size_t i = 0; i != json_array_size(list); ++i) {
        json_t *item = json_array_get(list, i);
        sc_route_t *route = &routes->routes[i];
        const char *why;
        if (!json_is_object(item))
            FAIL("%s: routes[%zu]: must be an object", name, i);
        json_object_foreach(item, key, value)
        {
            if (strcmp(key, "host") != 0 && strcmp(key, "upstream") != 0 && strcmp(key, "identity") != 0)
                FAIL("%s: routes[%zu]: unknown field \"%s\"", name, i, key);
            if (!json_is_string(value))
                FAIL("%s: routes[%zu].%s: must be a string", name, i, key);
        }
        const char *host = json_string_value(json_object_get(item, "host"));
        const char *upstream = json_string_value(json_object_get(item, "upstream"));
        const char *identity = json_string_value(json_object_get(item, "identity"));
        if (host == NULL)
            FAIL("%s: routes[%zu].host: missing", name, i);
        if ((why = normalise_host(host, route->host)) != NULL)
            FAIL("%s: routes[%zu].host: \"%s\" %s", name, i, host, why);
        if (upstream == NULL)
            FAIL("%s: routes[%zu].upstream: missing", name, i);
        if ((why = parse_upstream(upstream, route)) != NULL)
            FAIL("%s: routes[%zu].upstream: \"%s\" %s", name, i, upstream, why);
        if (identity == NULL)
            FAIL("%s: routes[%zu].identity: missing (the SPIFFE ID the upstream must present)", name, i);
        crt_spiffe_id_t id;
        int serr = crt_spiffe_parse_workload(identity, strlen(identity), &id);
        if (serr != CRT_SPIFFE_OK)
            FAIL("%s: routes[%zu].identity: \"%s\" is not a SPIFFE ID: %s", name, i, identity,
                 crt_spiffe_error_message(serr));
        snprintf(route->identity, sizeof(route->identity), "%s", identity);
        routes->count++;
    }
    if (routes->count > 1) /* qsort wants a non-NULL base even for zero items */
        qsort(routes->routes, routes->count, sizeof(sc_route_t), compare_routes);
    for (size_t i = 1; i < routes->count; ++i)
        if (strcmp(routes->routes[i - 1].host, routes->routes[i].host) == 0)
            FAIL("%s: host \"%s\" appears in more than one route", name, routes->routes[i].host);

    *out = routes;
    routes = NULL;
    ret = 0;
#undef FAIL

Exit:
    json_decref(root);
    if (routes != NULL)
        sc_routes_release(routes);
    return ret;
}

void sc_routes_addref(sc_routes_t *routes)
{
    atomic_fetch_add_explicit(&routes->refcnt, 1, memory_order_relaxed);
}

void sc_routes_release(sc_routes_t *routes)
{
    if (routes == NULL || atomic_fetch_sub_explicit(&routes->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    free(routes->routes);
    free(routes);
}

void sc_routes_ref(void *routes, int delta)
{
    (delta > 0 ? sc_routes_addref : sc_routes_release)(routes);
}

size_t sc_routes_count(const sc_routes_t *routes)
{
    return routes->count;
}

const sc_route_t *sc_routes_at(const sc_routes_t *routes, size_t i)
{
    return i < routes->count ? &routes->routes[i] : NULL;
}

/*
 * strcmp of route host against a request host slice, case-folding the
 * request. The slice may hold NUL bytes: the route's own NUL ends the
 * comparison (the route is the shorter), so "a\0\0" never matches "a" and
 * nothing past the route's host is read.
 */
static int compare_host(const char *route_host, const char *host, size_t len)
{
    for (size_t i = 0; i != len; ++i) {
        unsigned char a = (unsigned char)route_host[i], b = (unsigned char)lower(host[i]);
        if (a == '\0')
            return -1;
        if (a != b)
            return a < b ? -1 : 1;
    }
    return route_host[len] == '\0' ? 0 : 1;
}

const sc_route_t *sc_routes_find(const sc_routes_t *routes, const char *host, size_t len)
{
    len = host_without_port(host, len);
    /* A fully qualified name may end with '.'. */
    if (len > 1 && host[len - 1] == '.')
        --len;
    size_t lo = 0, hi = routes->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_host(routes->routes[mid].host, host, len);
        if (c == 0)
            return &routes->routes[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
