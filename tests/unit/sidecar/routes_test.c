/* Tests of sidecar/policy/routes.c: lookup rules and every loader rejection, by file, index and field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "sidecar/policy/routes.h"

#define ID_B "spiffe://cluster.local/ns/default/sa/backend"
#define ID_D "spiffe://cluster.local/ns/default/sa/db"

static sc_routes_t *load(const char *json)
{
    sc_routes_t *routes = NULL;
    char err[512];
    if (sc_routes_parse("routes.json", json, strlen(json), &routes, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    return routes;
}

static void test_lookup(void **state)
{
    (void)state;
    sc_routes_t *routes = load("{\"routes\": ["
                               "{\"host\": \"backend.default.svc\", \"upstream\": \"backend.default.svc.cluster.local:15006\", \"identity\": \"" ID_B "\"},"
                               "{\"host\": \"DB.default.svc\", \"upstream\": \"10.0.0.7:15006\", \"identity\": \"" ID_D "\"},"
                               "{\"host\": \"v6.default.svc\", \"upstream\": \"[::1]:15006\", \"identity\": \"" ID_D "\"}]}");
    assert_int_equal(sc_routes_count(routes), 3);
    static const struct {
        const char *host;
        const char *want_identity; /* NULL: no route */
    } rows[] = {
        {"backend.default.svc", ID_B},
        {"Backend.Default.SVC", ID_B},
        {"backend.default.svc:8080", ID_B},
        {"backend.default.svc.", ID_B},
        {"db.default.svc", ID_D},
        {"db.default.svc:80", ID_D},
        {"backend.default", NULL},
        {"backend.default.svc.cluster.local", NULL},
        {"ackend.default.svc", NULL},
        {"", NULL},
        {"zzz", NULL},
        {"a", NULL},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        const sc_route_t *r = sc_routes_find(routes, rows[i].host, strlen(rows[i].host));
        if (rows[i].want_identity == NULL) {
            if (r != NULL)
                fail_msg("%s: want no route, got %s", rows[i].host, r->host);
        } else {
            if (r == NULL)
                fail_msg("%s: want a route", rows[i].host);
            assert_string_equal(r->identity, rows[i].want_identity);
        }
    }
    const sc_route_t *db = sc_routes_find(routes, "db.default.svc", 14);
    assert_string_equal(db->host, "db.default.svc");
    assert_string_equal(db->upstream_host, "10.0.0.7");
    assert_int_equal(db->upstream_port, 15006);
    const sc_route_t *v6 = sc_routes_find(routes, "v6.default.svc", 14);
    assert_string_equal(v6->upstream_host, "::1");
    sc_routes_addref(routes);
    sc_routes_release(routes);
    sc_routes_release(routes);
}

static void test_empty_list(void **state)
{
    (void)state;
    sc_routes_t *routes = load("{\"routes\": []}");
    assert_int_equal(sc_routes_count(routes), 0);
    assert_null(sc_routes_find(routes, "x", 1));
    sc_routes_release(routes);
}

/* A request host with NUL bytes after a route's host (found by the routes fuzz target) matches nothing. */
static void test_lookup_nul_bytes(void **state)
{
    (void)state;
    sc_routes_t *routes = load("{\"routes\": [{\"host\": \"a\", \"upstream\": \"[::1]:1\", \"identity\": \"" ID_D "\"},"
                               "{\"host\": \"b\", \"upstream\": \"b:1\", \"identity\": \"" ID_B "\"}]}");
    static const struct {
        const char *host;
        size_t len;
    } rows[] = {
        {"a\0", 2},
        {"a\0\0\0", 4},
        {"a\0:80", 4},
        {"\0", 1},
        {"b\0.", 3},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i)
        if (sc_routes_find(routes, rows[i].host, rows[i].len) != NULL)
            fail_msg("row %zu: a host with a NUL byte found a route", i);
    /* longer than any route's host array: nothing past it is read */
    char zeros[1024] = "a";
    assert_null(sc_routes_find(routes, zeros, sizeof(zeros)));
    assert_non_null(sc_routes_find(routes, "a", 1));
    assert_non_null(sc_routes_find(routes, "b:1", 3));
    sc_routes_release(routes);
}

static void test_rejections(void **state)
{
    (void)state;
#define R(host, up, id) "{\"routes\": [{\"host\": " host ", \"upstream\": " up ", \"identity\": " id "}]}"
    static const struct {
        const char *json;
        const char *want; /* substring of the error */
    } rows[] = {
        {"", "routes.json:1:"},
        {"{\"routes\": [", "routes.json:1:"},
        {"[]", "the top level must be an object"},
        {"{}", "\"routes\" must be a list"},
        {"{\"routes\": {}}", "\"routes\" must be a list"},
        {"{\"routes\": [], \"extra\": 1}", "unknown field \"extra\""},
        {"{\"routes\": [], \"routes\": []}", "routes.json:1:"},
        {"{\"routes\": [1]}", "routes[0]: must be an object"},
        {"{\"routes\": [{\"host\": \"a\", \"upstream\": \"a:1\", \"identity\": \"" ID_B "\", \"port\": 1}]}", "routes[0]: unknown field \"port\""},
        {"{\"routes\": [{\"upstream\": \"a:1\", \"identity\": \"" ID_B "\"}]}", "routes[0].host: missing"},
        {R("\"\"", "\"a:1\"", "\"" ID_B "\""), "routes[0].host: \"\" is empty"},
        {R("\"a:80\"", "\"a:1\"", "\"" ID_B "\""), "routes[0].host: \"a:80\" must not carry a port"},
        {R("\"a b\"", "\"a:1\"", "\"" ID_B "\""), "routes[0].host: \"a b\" may only hold"},
        {R("\".a\"", "\"a:1\"", "\"" ID_B "\""), "must not start or end with '.'"},
        {R("5", "\"a:1\"", "\"" ID_B "\""), "routes[0].host: must be a string"},
        {"{\"routes\": [{\"host\": \"a\", \"identity\": \"" ID_B "\"}]}", "routes[0].upstream: missing"},
        {R("\"a\"", "\"a\"", "\"" ID_B "\""), "routes[0].upstream: \"a\" must be HOST:PORT"},
        {R("\"a\"", "\"a:\"", "\"" ID_B "\""), "has no port"},
        {R("\"a\"", "\"a:0\"", "\"" ID_B "\""), "not a number from 1 to 65535"},
        {R("\"a\"", "\"a:65536\"", "\"" ID_B "\""), "not a number from 1 to 65535"},
        {R("\"a\"", "\"a:http\"", "\"" ID_B "\""), "not a number from 1 to 65535"},
        {R("\"a\"", "\":80\"", "\"" ID_B "\""), "empty or overlong host"},
        {R("\"a\"", "\"::1:80\"", "\"" ID_B "\""), "IPv6 address in brackets"},
        {R("\"a\"", "\"[::1\"", "\"" ID_B "\""), "must be [IPv6]:PORT"},
        {"{\"routes\": [{\"host\": \"a\", \"upstream\": \"a:1\"}]}", "routes[0].identity: missing"},
        {R("\"a\"", "\"a:1\"", "\"https://a\""), "routes[0].identity: \"https://a\" is not a SPIFFE ID"},
        {R("\"a\"", "\"a:1\"", "\"spiffe://cluster.local\""), "a workload ID needs a path"},
        {R("\"a\"", "\"a:1\"", "\"spiffe://Cluster/x\""), "trust domain may only hold"},
        {"{\"routes\": [{\"host\": \"a\", \"upstream\": \"a:1\", \"identity\": \"" ID_B "\"},"
         "{\"host\": \"A\", \"upstream\": \"b:1\", \"identity\": \"" ID_D "\"}]}",
         "host \"a\" appears in more than one route"},
    };
#undef R
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_routes_t *routes = NULL;
        char err[512] = "";
        int ret = sc_routes_parse("routes.json", rows[i].json, strlen(rows[i].json), &routes, err, sizeof(err));
        if (ret == 0)
            fail_msg("row %zu: accepted %s", i, rows[i].json);
        assert_null(routes);
        if (strstr(err, rows[i].want) == NULL)
            fail_msg("row %zu: error \"%s\" lacks \"%s\"", i, err, rows[i].want);
        assert_non_null(strstr(err, "routes.json"));
        assert_null(strchr(err, '\n'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_empty_list),
        cmocka_unit_test(test_lookup_nul_bytes),
        cmocka_unit_test(test_rejections),
    };
    return cmocka_run_group_tests_name("sidecar/routes", tests, NULL, NULL);
}
