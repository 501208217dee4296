/* Tests of sidecar/policy/config.c: flags, the --config file, combination checks and addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sidecar/policy/config.h"

#define MAX_ARGS 32

/* Parses a space-separated command line (no quoting needed in these tests). */
static int parse_line(sc_config_t *cfg, const char *line, char *err, size_t cap)
{
    char buf[2048], *argv[MAX_ARGS];
    int argc = 0;
    snprintf(buf, sizeof(buf), "seam-sidecar %s", line);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok != NULL && argc < MAX_ARGS;
         tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    sc_config_defaults(cfg);
    return sc_config_parse(cfg, argc, argv, err, cap);
}

static void test_flags(void **state)
{
    (void)state;
    static sc_config_t cfg;
    char err[512];
    assert_int_equal(parse_line(&cfg, "--cert c.pem --key=k.pem --bundle b.pem --threads 4 --drain-timeout 1500ms "
                                      "--admin 127.0.0.1:9000 --admin-allow-remote --policy p.json",
                                err, sizeof(err)),
                     SC_CONFIG_OK);
    assert_string_equal(cfg.cert, "c.pem");
    assert_string_equal(cfg.key, "k.pem");
    assert_int_equal(cfg.threads, 4);
    assert_int_equal(cfg.drain_timeout_ms, 1500);
    assert_int_equal(cfg.admin_allow_remote, 1);
    assert_string_equal(cfg.inbound, SC_DEFAULT_INBOUND);
    assert_string_equal(cfg.app, SC_DEFAULT_APP);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(sc_config_check(&cfg, err, sizeof(err)), 0);

    assert_int_equal(parse_line(&cfg, "--max-connections 1000000 --handshake-timeout 2s", err, sizeof(err)), SC_CONFIG_OK);
    assert_int_equal(cfg.max_connections, 1000000);
    assert_int_equal(cfg.handshake_timeout_ms, 2000);
    assert_int_equal(cfg.idle_timeout_ms, 90000);
    assert_int_equal(parse_line(&cfg, "--idle-timeout 20m", err, sizeof(err)), SC_CONFIG_OK);
    assert_int_equal(cfg.idle_timeout_ms, 20 * 60 * 1000);
    assert_int_equal(cfg.max_request_headers_kb, SC_DEFAULT_MAX_REQUEST_HEADERS_KB);
    assert_int_equal(cfg.max_request_headers, SC_DEFAULT_MAX_REQUEST_HEADERS);
    assert_int_equal(parse_line(&cfg, "--cert c --key k --bundle b --max-request-headers-kb 1024 --max-request-headers=1",
                                err, sizeof(err)),
                     SC_CONFIG_OK);
    assert_int_equal(cfg.max_request_headers_kb, 1024);
    assert_int_equal(cfg.max_request_headers, 1);

    assert_int_equal(parse_line(&cfg, "--help", err, sizeof(err)), SC_CONFIG_HELP);
    assert_int_equal(parse_line(&cfg, "--cert x --version", err, sizeof(err)), SC_CONFIG_VERSION);
}

static void test_bad_flags(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *needle;
    } rows[] = {
        {"--bogus 1", "unknown flag --bogus"},
        {"--cert", "--cert needs a value"},
        {"cert.pem", "unexpected argument"},
        {"--threads 0", "--threads"},
        {"--threads 65", "1 to 64"},
        {"--threads 2x", "not a number"},
        {"--threads -1", "not a number"},
        {"--max-connections 0", "--max-connections: \"0\" is not a number from 1 to 1000000"},
        {"--max-connections 1000001", "1 to 1000000"},
        {"--max-connections lots", "not a number"},
        {"--max-connections", "--max-connections needs a value"},
        {"--handshake-timeout soon", "--handshake-timeout: \"soon\" is not a duration"},
        {"--max-request-headers 0", "--max-request-headers: \"0\" is not a number from 1 to 1000"},
        {"--max-request-headers 1001", "--max-request-headers: \"1001\" is not a number from 1 to 1000"},
        {"--max-request-headers 1e3", "--max-request-headers: \"1e3\""},
        {"--max-request-headers", "--max-request-headers needs a value"},
        {"--max-request-headers-kb 0", "--max-request-headers-kb: \"0\" is not a number from 1 to 1024"},
        {"--max-request-headers-kb 1025", "--max-request-headers-kb: \"1025\""},
        {"--max-request-headers-kb 60k", "--max-request-headers-kb: \"60k\""},
        {"--drain-timeout 10y", "not a duration"},
        {"--drain-timeout=", "not a duration"},
        {"--admin-allow-remote=maybe", "true or false"},
        {"--cert=", "empty value"},
        {"--config /nonexistent/seam.json", "cannot read"},
    };
    static sc_config_t cfg;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        char err[512] = "";
        if (parse_line(&cfg, rows[i].line, err, sizeof(err)) != SC_CONFIG_USAGE)
            fail_msg("row %zu accepted: %s", i, rows[i].line);
        if (strstr(err, rows[i].needle) == NULL)
            fail_msg("row %zu (%s): error \"%s\" lacks \"%s\"", i, rows[i].line, err, rows[i].needle);
    }
}

static void test_checks(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *needle; /* NULL: accepted */
    } rows[] = {
        {"--cert c --key k --bundle b", NULL},
        {"--key k --bundle b", "--cert, --key and --bundle are required"},
        {"--cert c --key k --bundle b --admin 0.0.0.0:15000", "not a loopback address"},
        {"--cert c --key k --bundle b --admin 10.0.0.1:15000 --admin-allow-remote", NULL},
        {"--cert c --key k --bundle b --admin [::1]:15000", NULL},
        {"--cert c --key k --bundle b --admin localhost:15000", NULL},
        {"--cert c --key k --bundle b --admin 127.0.0.1", "not HOST:PORT"},
        {"--cert c --key k --bundle b --inbound 127.0.0.1:99999", "not HOST:PORT"},
        {"--cert c --key k --bundle b --inbound off", NULL},
        {"--cert c --key k --bundle b --max-connections 1 --handshake-timeout 100ms", NULL},
        {"--cert c --key k --bundle b --handshake-timeout 0s", "--handshake-timeout: must be longer than 0"},
        {"--cert c --key k --bundle b --idle-timeout 0s", "--idle-timeout: must be longer than 0"},
        {"--cert c --key k --bundle b --routes r.json --transparent --detect-timeout 250ms --outbound-unknown deny", NULL},
        {"--cert c --key k --bundle b --routes r.json --outbound-unknown passthrough", NULL},
        {"--cert c --key k --bundle b --detect-timeout 0ms", "--detect-timeout: must be longer than 0"},
        {"--cert c --key k --bundle b --outbound-unknown allow", "--outbound-unknown allow: must be passthrough or deny"},
        {"--cert c --key k --bundle b --outbound 127.0.0.1:15001", "needs --routes"},
        {"--cert c --key k --bundle b --outbound 127.0.0.1:15001 --routes r.json", NULL},
        {"--cert c --key k --bundle b --routes r.json", NULL},
        {"--cert c --key k --bundle b --routes r.json --outbound off", NULL},
        {"--cert c --key k --bundle b --routes r.json --outbound 127.0.0.1", "not HOST:PORT"},
        {"--cert c --key k --bundle b --routes r.json --outbound 0.0.0.0:15001", "--outbound-allow-remote"},
        {"--cert c --key k --bundle b --routes r.json --outbound [::]:15001", "not a loopback address"},
        {"--cert c --key k --bundle b --routes r.json --outbound 10.0.0.1:15001", "--outbound: 10.0.0.1:15001"},
        {"--cert c --key k --bundle b --routes r.json --outbound 0.0.0.0:15001 --outbound-allow-remote", NULL},
        {"--cert c --key k --bundle b --routes r.json --outbound 127.0.0.2:15001", NULL},
        {"--cert c --key k --bundle b --routes r.json --outbound [::1]:15001", NULL},
        {"--cert c --key k --bundle b --outbound 0.0.0.0:15001", "needs --routes"},
        {"--cert c --key k --bundle b --routes r.json --inbound off", NULL},
        {"--cert c --key k --bundle b --routes r.json --upstream-timeout 2s --upstream-idle-timeout 500ms", NULL},
        {"--cert c --key k --bundle b --transparent", "needs --routes"},
        {"--cert c --key k --bundle b --routes r.json --transparent", NULL},
        {"--cert c --key k --bundle b --routes r.json --outbound off --transparent", "needs --routes"},
        {"--ca-url https://ca:15012 --ca-bundle b --token-file t", NULL},
        {"--ca-url https://ca --ca-bundle b --token-file t --spiffe-id spiffe://td/ns/a/sa/b", NULL},
        {"--ca-url https://ca --ca-bundle b --token-file t --trust-domain example.org", NULL},
        {"--ca-url https://ca --ca-bundle b --token-file t --spiffe-id spiffe://td/ns/a/sa/b --trust-domain td", NULL},
        {"--ca-url https://ca --ca-bundle b --token-file t --spiffe-id spiffe://td/ns/a/sa/b --trust-domain other",
         "in another trust domain"},
        {"--ca-url https://ca --ca-bundle b", "required together"},
        {"--ca-url https://ca --token-file t", "required together"},
        {"--ca-url http://ca --ca-bundle b --token-file t", "must be https://"},
        {"--ca-url https:// --ca-bundle b --token-file t", "must be https://"},
        {"--ca-url https://ca --ca-bundle b --token-file t --spiffe-id spiffe://td", "--spiffe-id spiffe://td"},
        {"--ca-url https://ca --ca-bundle b --token-file t --spiffe-id web", "--spiffe-id web"},
        {"--ca-url https://ca --ca-bundle b --token-file t --trust-domain Bad_TD", "--trust-domain Bad_TD"},
        {"--ca-url https://ca --ca-bundle b --token-file t --bundle-refresh 10ms", "--bundle-refresh"},
        {"--ca-url https://ca --ca-bundle b --token-file t --cert c --key k --bundle b", "give one of them"},
        {"--cert c --key k --bundle b --spiffe-id spiffe://td/ns/a/sa/b", "carries its own identity"},
        {"--cert c --key k --bundle b --trust-domain td", "carries its own identity"},
        {"--inbound 127.0.0.1:1", "no identity"},
        {"--cert c --key k --bundle b --app-timeout 500ms", NULL},
        {"--cert c --key k --bundle b --app-timeout 0s", "--app-timeout"},
    };
    static sc_config_t cfg;
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        char err[512] = "";
        assert_int_equal(parse_line(&cfg, rows[i].line, err, sizeof(err)), SC_CONFIG_OK);
        int rc = sc_config_check(&cfg, err, sizeof(err));
        if (rows[i].needle == NULL ? rc != 0 : (rc != SC_E_USAGE || strstr(err, rows[i].needle) == NULL))
            fail_msg("row %zu (%s): rc %d error \"%s\"", i, rows[i].line, rc, err);
    }
}

static void test_json(void **state)
{
    (void)state;
    static sc_config_t cfg;
    char err[512];
    const char *good = "{\"cert\": \"c.pem\", \"key\": \"k.pem\", \"bundle\": \"b.pem\", \"threads\": 3, "
                       "\"drain-timeout\": \"2s\", \"admin-allow-remote\": true, \"app\": \"127.0.0.1:9090\", "
                       "\"outbound-allow-remote\": true, \"max-request-headers\": 150, \"max-request-headers-kb\": 8}";
    sc_config_defaults(&cfg);
    assert_int_equal(sc_config_apply_json(&cfg, good, strlen(good), "c.json", err, sizeof(err)), 0);
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.drain_timeout_ms, 2000);
    assert_int_equal(cfg.admin_allow_remote, 1);
    assert_string_equal(cfg.app, "127.0.0.1:9090");
    assert_int_equal(cfg.outbound_allow_remote, 1);
    assert_int_equal(cfg.max_request_headers, 150);
    assert_int_equal(cfg.max_request_headers_kb, 8);
    char *json = sc_config_to_json(&cfg);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"outbound-allow-remote\": true"));
    assert_non_null(strstr(json, "\"max-request-headers\": 150"));
    free(json);

    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"[", "c.json:1: invalid JSON"},
        {"[]", "must be a JSON object"},
        {"{\"nope\": 1}", "c.json: nope: unknown key"},
        {"{\"config\": \"x\"}", "unknown key"},
        {"{\"threads\": \"many\"}", "not a number"},
        {"{\"threads\": 0}", "1 to 64"},
        {"{\"max-connections\": 0}", "c.json: max-connections: \"0\" is not a number from 1 to 1000000"},
        {"{\"max-connections\": \"many\"}", "not a number"},
        {"{\"max-request-headers\": 0}", "c.json: max-request-headers: \"0\" is not a number from 1 to 1000"},
        {"{\"max-request-headers-kb\": \"big\"}", "c.json: max-request-headers-kb: \"big\""},
        {"{\"cert\": 5}", "must be a string"},
        {"{\"admin-allow-remote\": \"yes\"}", "true or false"},
        {"{\"drain-timeout\": \"soon\"}", "not a duration"},
        {"{\"cert\": \"a\", \"cert\": \"b\"}", "invalid JSON"},
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        sc_config_defaults(&cfg);
        err[0] = '\0';
        if (sc_config_apply_json(&cfg, bad[i].text, strlen(bad[i].text), "c.json", err, sizeof(err)) != SC_E_CONFIG)
            fail_msg("row %zu not refused as SC_E_CONFIG: %s", i, bad[i].text);
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("row %zu (%s): \"%s\" lacks \"%s\"", i, bad[i].text, err, bad[i].needle);
    }
}

static void test_config_file_then_flags(void **state)
{
    (void)state;
    static sc_config_t cfg;
    char path[] = "/tmp/seam-config-XXXXXX", line[256], err[512];
    const char *text = "{\"cert\": \"file.pem\", \"threads\": 2, \"policy\": \"file-policy.json\"}";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(line, sizeof(line), "--threads 5 --config %s", path);
    assert_int_equal(parse_line(&cfg, line, err, sizeof(err)), SC_CONFIG_OK);
    assert_string_equal(cfg.cert, "file.pem");
    assert_string_equal(cfg.policy, "file-policy.json");
    assert_int_equal(cfg.threads, 5); /* the flag wins, wherever it stands */
    char *json = sc_config_to_json(&cfg);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"threads\": 5"));
    assert_non_null(strstr(json, "\"drain-timeout\": \"10s\""));
    free(json);
    unlink(path);
}

static void test_error_vocabulary(void **state)
{
    (void)state;
    assert_string_equal(sc_error_slug(SC_OK), "ok");
    assert_string_equal(sc_error_slug(SC_E_POLICY), "policy");
    assert_string_equal(sc_error_slug(SC_E_NOMEM), "nomem");
    assert_string_equal(sc_error_slug(-1), "unknown");
    assert_string_equal(sc_error_slug(SC__ERROR_END), "unknown");
    assert_string_equal(sc_error_message(SC_E_LISTEN), "cannot listen on the address");
    for (int e = SC__ERROR_FIRST + 1; e != SC__ERROR_END; ++e) {
        assert_string_not_equal(sc_error_slug(e), "unknown");
        assert_true(e < 0);
    }
    assert_int_equal(SC_CONFIG_USAGE, SC_E_USAGE);
}

static void test_addresses(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(sc_addr_split("127.0.0.1:15006", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 15006);
    assert_int_equal(sc_addr_split("[::1]:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(sc_addr_split(":80", host, sizeof(host), &port), SC_E_ADDRESS);
    assert_int_equal(sc_addr_split("h:0", host, sizeof(host), &port), SC_E_ADDRESS);
    assert_int_equal(sc_addr_split("h:65536", host, sizeof(host), &port), SC_E_ADDRESS);
    assert_int_equal(sc_addr_split("h:8x", host, sizeof(host), &port), SC_E_ADDRESS);
    assert_int_equal(sc_addr_split("[::1]80", host, sizeof(host), &port), SC_E_ADDRESS);
    assert_int_equal(sc_addr_split("h", host, sizeof(host), &port), SC_E_ADDRESS);
    assert_true(sc_addr_is_loopback("127.0.0.1:1"));
    assert_true(sc_addr_is_loopback("127.9.9.9:1"));
    assert_true(sc_addr_is_loopback("[::1]:1"));
    assert_true(sc_addr_is_loopback("localhost:1"));
    assert_false(sc_addr_is_loopback("0.0.0.0:1"));
    assert_false(sc_addr_is_loopback("[::]:1"));
    assert_false(sc_addr_is_loopback("10.1.2.3:1"));
    assert_false(sc_addr_is_loopback("example.org:1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags), cmocka_unit_test(test_bad_flags), cmocka_unit_test(test_checks),
        cmocka_unit_test(test_json),  cmocka_unit_test(test_config_file_then_flags), cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_error_vocabulary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
