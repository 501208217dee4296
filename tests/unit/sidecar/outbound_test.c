/* Tests of sidecar/mesh/outbound.c's pure parts: routing a redirected connection by its original destination. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "sidecar/mesh/outbound.h"

#define ID "spiffe://pod.test/ns/default/sa/"

static sc_routes_t *load(const char *json)
{
    sc_routes_t *routes = NULL;
    char err[512];
    if (sc_routes_parse("routes.json", json, strlen(json), &routes, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    return routes;
}

/* An IPv4 or IPv6 socket address from its text ("192.0.2.2", "2001:db8::2", "::ffff:192.0.2.2"). */
static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (void *)&ss;
    struct sockaddr_in6 *in6 = (void *)&ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
    } else {
        fail_msg("bad test address %s", ip);
    }
    return ss;
}

static void test_route_redirected(void **state)
{
    (void)state;
    sc_routes_t *routes = load("{\"routes\": ["
                               "{\"host\": \"192.0.2.2\", \"upstream\": \"192.0.2.2:15006\", \"identity\": \"" ID "b\"},"
                               "{\"host\": \"[2001:DB8:0:0::2]\", \"upstream\": \"[2001:db8::2]:15006\", \"identity\": \"" ID "v6\"},"
                               "{\"host\": \"backend.svc\", \"upstream\": \"192.0.2.3:15006\", \"identity\": \"" ID "backend\"},"
                               "{\"host\": \"v6up.svc\", \"upstream\": \"[2001:db8::3]:443\", \"identity\": \"" ID "v6up\"},"
                               "{\"host\": \"web.svc\", \"upstream\": \"web.internal:15006\", \"identity\": \"" ID "web\"}]}");
    static const struct {
        const char *ip;
        uint16_t port;
        const char *host; /* the request's Host, NULL when it has none */
        const char *want; /* the chosen route's identity suffix, NULL: no route */
        int by_dst;
    } rows[] = {
        {"192.0.2.2", 8080, NULL, "b", 1},              /* the route named by the destination's address */
        {"192.0.2.2", 1, "web.svc", "b", 1},            /* the destination wins over Host */
        {"::ffff:192.0.2.2", 8080, NULL, "b", 1},       /* IPv4-mapped is IPv4 */
        {"2001:db8::2", 80, NULL, "v6", 1},             /* IPv6 literals compare as addresses */
        {"2001:db8:0::2", 80, "web.svc", "v6", 1},
        {"192.0.2.3", 15006, NULL, "backend", 1},       /* else the route whose upstream is that address:port */
        {"2001:db8::3", 443, NULL, "v6up", 1},
        {"192.0.2.3", 8080, NULL, NULL, 0},             /* an upstream on another port is not the destination */
        {"192.0.2.3", 8080, "web.svc:8080", "web", 0},  /* else the request's Host */
        {"192.0.2.99", 80, "Web.SVC", "web", 0},
        {"192.0.2.99", 80, "nothing.svc", NULL, 0},     /* else nothing: never a passthrough */
        {"192.0.2.99", 80, NULL, NULL, 0},
        {"192.0.2.99", 80, "", NULL, 0},
        {"2001:db8::99", 15006, NULL, NULL, 0},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        struct sockaddr_storage dst = addr(rows[i].ip, rows[i].port);
        int by_dst = -1;
        const sc_route_t *r = sc_outbound_route_redirected(routes, (struct sockaddr *)&dst, rows[i].host,
                                                           rows[i].host != NULL ? strlen(rows[i].host) : 0, &by_dst);
        if (rows[i].want == NULL) {
            if (r != NULL)
                fail_msg("row %zu (%s:%u): want no route, got %s", i, rows[i].ip, rows[i].port, r->host);
        } else {
            if (r == NULL)
                fail_msg("row %zu (%s:%u): want the route of %s", i, rows[i].ip, rows[i].port, rows[i].want);
            if (strncmp(r->identity, ID, strlen(ID)) != 0 || strcmp(r->identity + strlen(ID), rows[i].want) != 0)
                fail_msg("row %zu (%s:%u): want %s, got %s", i, rows[i].ip, rows[i].port, rows[i].want, r->identity);
        }
        if (by_dst != rows[i].by_dst)
            fail_msg("row %zu (%s:%u): by_dst %d, want %d", i, rows[i].ip, rows[i].port, by_dst, rows[i].by_dst);
    }
    sc_routes_release(routes);
}

static void test_no_routes(void **state)
{
    (void)state;
    sc_routes_t *routes = load("{\"routes\": []}");
    struct sockaddr_storage dst = addr("192.0.2.2", 8080);
    int by_dst = -1;
    assert_null(sc_outbound_route_redirected(routes, (struct sockaddr *)&dst, "x", 1, &by_dst));
    assert_int_equal(by_dst, 0);
    sc_routes_release(routes);
}

static void test_format_addr(void **state)
{
    (void)state;
    static const struct {
        const char *ip;
        uint16_t port;
        const char *want;
    } rows[] = {
        {"192.0.2.2", 8080, "192.0.2.2:8080"},
        {"::ffff:192.0.2.2", 80, "192.0.2.2:80"},
        {"2001:0db8:0000::0002", 443, "[2001:db8::2]:443"},
        {"::1", 15001, "[::1]:15001"},
    };
    char buf[SC_ORIGINAL_DST_TEXT_MAX];
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        struct sockaddr_storage sa = addr(rows[i].ip, rows[i].port);
        assert_int_equal(sc_outbound_format_addr((struct sockaddr *)&sa, buf, sizeof(buf)), 0);
        assert_string_equal(buf, rows[i].want);
    }
    /* too small a buffer, another family: -1 and an empty string */
    struct sockaddr_storage sa = addr("192.0.2.2", 8080);
    assert_int_equal(sc_outbound_format_addr((struct sockaddr *)&sa, buf, 8), -1);
    assert_string_equal(buf, "");
    sa.ss_family = AF_UNIX;
    assert_int_equal(sc_outbound_format_addr((struct sockaddr *)&sa, buf, sizeof(buf)), -1);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_redirected),
        cmocka_unit_test(test_no_routes),
        cmocka_unit_test(test_format_addr),
    };
    return cmocka_run_group_tests_name("sidecar/outbound", tests, NULL, NULL);
}
