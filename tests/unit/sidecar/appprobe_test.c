/* Tests of sidecar/policy/appprobe.c: the --app-probes table, its refusals, and the judgement of the app's answer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "sidecar/policy/appprobe.h"

static void test_table(void **state)
{
    (void)state;
    static const char json[] =
        "{\"/app-health/web/readiness\": {\"httpGet\": {\"port\": 8080, \"path\": \"/healthz\", "
        "\"httpHeaders\": [{\"name\": \"X-Probe\", \"value\": \"yes\"}]}, \"timeoutSeconds\": 3},"
        " \"/app-health/web/liveness\": {\"tcpSocket\": {\"port\": 9090}}}";
    sc_app_probes_t probes;
    char err[256];
    assert_int_equal(sc_app_probes_parse(json, strlen(json), "t", &probes, err, sizeof(err)), 0);
    assert_int_equal(probes.num, 2);
    const sc_app_probe_t *r = sc_app_probes_find(&probes, "/app-health/web/readiness", 25);
    assert_non_null(r);
    assert_int_equal(r->kind, SC_APP_PROBE_HTTP_GET);
    assert_int_equal(r->port, 8080);
    assert_int_equal(r->timeout_ms, 3000);
    assert_non_null(strstr(r->request, "GET /healthz HTTP/1.1\r\n"));
    assert_non_null(strstr(r->request, "X-Probe: yes\r\n"));
    const sc_app_probe_t *l = sc_app_probes_find(&probes, "/app-health/web/liveness", 24);
    assert_non_null(l);
    assert_int_equal(l->kind, SC_APP_PROBE_TCP_SOCKET);
    assert_int_equal(l->port, 9090);
    assert_int_equal(l->timeout_ms, 1000); /* timeoutSeconds defaults to 1, as kubelet's */
    assert_null(sc_app_probes_find(&probes, "/app-health/web/startup", 23));
    assert_null(sc_app_probes_find(&probes, "/app-health/web/readines", 24));
    sc_app_probes_dispose(&probes);
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json, *needle;
    } rows[] = {
        {"[]", "must be a JSON object"},
        {"{", "invalid JSON"},
        {"{\"/healthz\": {\"tcpSocket\": {\"port\": 1}}}", "a probe path must be /app-health/"},
        {"{\"/app-health/web/ready\": {\"tcpSocket\": {\"port\": 1}}}", "a probe path must be"},
        {"{\"/app-health/web/readiness\": {\"tcpSocket\": {\"port\": 0}}}", "port"},
        {"{\"/app-health/web/readiness\": {\"tcpSocket\": {\"port\": 70000}}}", "port"},
        {"{\"/app-health/web/readiness\": {\"tcpSockt\": {\"port\": 1}}}", "tcpSockt"},
        {"{\"/app-health/web/readiness\": {\"httpGet\": {\"port\": 1, \"scheme\": \"HTTPS\"}}}", "scheme"},
        {"{\"/app-health/web/readiness\": {\"httpGet\": {\"port\": 1, \"path\": \"no-slash\"}}}", "path"},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_app_probes_t probes;
        char err[512];
        err[0] = '\0';
        if (sc_app_probes_parse(rows[i].json, strlen(rows[i].json), "probes.json", &probes, err, sizeof(err)) == 0)
            fail_msg("accepted %s", rows[i].json);
        if (strstr(err, rows[i].needle) == NULL || strncmp(err, "probes.json: ", 13) != 0)
            fail_msg("%s: error [%s] lacks [%s]", rows[i].json, err, rows[i].needle);
    }
}

/* A key or field with control bytes is refused in one line: they never reach the log as they are. */
static void test_refusal_is_one_line(void **state)
{
    (void)state;
    static const char json[] = "{\"/app-health/we\\nb/readiness\": {\"tcpSocket\": {\"port\": 1}}}";
    sc_app_probes_t probes;
    char err[512];
    assert_int_not_equal(sc_app_probes_parse(json, strlen(json), "t", &probes, err, sizeof(err)), 0);
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, "we?b"));
}

static void test_judge(void **state)
{
    (void)state;
    int status = 0;
    const char *ok = "HTTP/1.1 204 No Content\r\n\r\n";
    assert_int_equal(sc_app_probe_judge(ok, strlen(ok), &status), 1);
    assert_int_equal(status, 204);
    assert_int_equal(sc_app_probe_judge(ok, 10, &status), 0); /* more may come */
    const char *odd = "HTTP/1.1 020 O\r\n\r\n";                /* three digits, but no status */
    assert_int_equal(sc_app_probe_judge(odd, strlen(odd), &status), -1);
    const char *junk = "SSH-2.0-OpenSSH\r\n";
    assert_int_equal(sc_app_probe_judge(junk, strlen(junk), &status), -1);
    assert_true(sc_app_probe_status_ok(200));
    assert_true(sc_app_probe_status_ok(399));
    assert_false(sc_app_probe_status_ok(400));
    assert_false(sc_app_probe_status_ok(199));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusal_is_one_line),
        cmocka_unit_test(test_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
