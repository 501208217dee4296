/* Tests of sidecar/policy.c: every rejection path of the loader, and the matching table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sidecar/policy.h"

#define FRONTEND "spiffe://cluster.local/ns/default/sa/frontend"
#define OPS_TOOL "spiffe://cluster.local/ns/ops/sa/tool"
#define STRANGER "spiffe://cluster.local/ns/default/sa/stranger"

static sc_policy_t *parse_ok(const char *text)
{
    sc_policy_t *p = NULL;
    sc_policy_error_t err;
    if (sc_policy_parse(text, strlen(text), "test.json", &p, &err) != 0)
        fail_msg("refused: %s: %s (%s)", err.field, err.message, text);
    return p;
}

static void test_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;           /* expected error line (syntax errors), 0 otherwise */
        int rule_index;     /* expected rule index, -1 outside rules */
        const char *field;  /* expected field */
        const char *needle; /* expected part of the message */
    } rows[] = {
        {"", 1, -1, "", "invalid JSON"},
        {"{\"rules\": [", 1, -1, "", "invalid JSON"},
        {"{\n\"rules\": []\n,}", 3, -1, "", "invalid JSON"},
        {"{\"rules\": [], \"rules\": []}", 1, -1, "", "invalid JSON"},
        {"[]", 0, -1, "", "must be a JSON object"},
        {"{}", 0, -1, "rules", "is required"},
        {"{\"rules\": {}}", 0, -1, "rules", "must be an array"},
        {"{\"rules\": [], \"extra\": 1}", 0, -1, "extra", "unknown field"},
        {"{\"mode\": \"permissive\", \"rules\": []}", 0, -1, "mode", "\"enforce\" or \"audit\""},
        {"{\"mode\": 1, \"rules\": []}", 0, -1, "mode", "\"enforce\" or \"audit\""},
        {"{\"default\": \"maybe\", \"rules\": []}", 0, -1, "default", "\"deny\" or \"allow\""},
        {"{\"rules\": [1]}", 0, 0, "rules[0]", "must be an object"},
        {"{\"rules\": [{}]}", 0, 0, "rules[0].name", "is required"},
        {"{\"rules\": [{\"name\": \"\"}]}", 0, 0, "rules[0].name", "1 to 128"},
        {"{\"rules\": [{\"name\": 7}]}", 0, 0, "rules[0].name", "1 to 128"},
        {"{\"rules\": [{\"name\": \"a\\nb\"}]}", 0, 0, "rules[0].name", "control characters"},
        {"{\"rules\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", 0, 1, "rules[1].name", "already the name of rules[0]"},
        {"{\"rules\": [{\"name\": \"a\", \"form\": []}]}", 0, 0, "rules[0].form", "unknown field"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": \"*\"}]}", 0, 0, "rules[0].from", "array of strings"},
        {"{\"rules\": [{\"name\": \"a\", \"ports\": 6379}]}", 0, 0, "rules[0].ports", "array of port numbers"},
        {"{\"rules\": [{\"name\": \"a\", \"ports\": []}]}", 0, 0, "rules[0].ports", "must not be empty"},
        {"{\"rules\": [{\"name\": \"a\", \"ports\": [\"6379\"]}]}", 0, 0, "rules[0].ports[0]", "1 to 65535"},
        {"{\"rules\": [{\"name\": \"a\", \"ports\": [80, 0]}]}", 0, 0, "rules[0].ports[1]", "1 to 65535"},
        {"{\"rules\": [{\"name\": \"a\", \"ports\": [65536]}]}", 0, 0, "rules[0].ports[0]", "1 to 65535"},
        {"{\"rules\": [{\"name\": \"a\", \"ports\": [1.5]}]}", 0, 0, "rules[0].ports[0]", "1 to 65535"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": []}]}", 0, 0, "rules[0].from", "must not be empty"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [3]}]}", 0, 0, "rules[0].from[0]", "must be a string"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"frontend\"]}]}", 0, 0, "rules[0].from[0]", "not a SPIFFE ID"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"spiffe://Cluster.local/ns/a\"]}]}", 0, 0, "rules[0].from[0]",
         "not a SPIFFE ID"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"spiffe://cluster.local\"]}]}", 0, 0, "rules[0].from[0]",
         "needs a path"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"spiffe://cluster.local/ns/x/\"]}]}", 0, 0, "rules[0].from[0]",
         "not a SPIFFE ID"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"" FRONTEND "\", \"spiffe://cluster.local/ns/*/sa/x\"]}]}", 0, 0,
         "rules[0].from[1]", "only alone or as a final"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"spiffe://cluster.local/ns/a*\"]}]}", 0, 0, "rules[0].from[0]",
         "only alone or as a final"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"spiffe://bad_td:80/*\"]}]}", 0, 0, "rules[0].from[0]",
         "is not a SPIFFE ID"},
        {"{\"rules\": [{\"name\": \"a\", \"from\": [\"spiffe://cluster.local/ns/../*\"]}]}", 0, 0, "rules[0].from[0]",
         "is not a SPIFFE ID"},
        {"{\"rules\": [{\"name\": \"a\", \"methods\": [\"get\"]}]}", 0, 0, "rules[0].methods[0]", "upper-case"},
        {"{\"rules\": [{\"name\": \"a\", \"methods\": [\"\"]}]}", 0, 0, "rules[0].methods[0]", "1 to 32"},
        {"{\"rules\": [{\"name\": \"a\", \"methods\": [\"G ET\"]}]}", 0, 0, "rules[0].methods[0]", "upper-case"},
        {"{\"rules\": [{\"name\": \"a\", \"methods\": \"GET\"}]}", 0, 0, "rules[0].methods", "array of strings"},
        {"{\"rules\": [{\"name\": \"a\", \"paths\": [\"api/*\"]}]}", 0, 0, "rules[0].paths[0]", "start with '/'"},
        {"{\"rules\": [{\"name\": \"a\", \"paths\": [\"\"]}]}", 0, 0, "rules[0].paths[0]", "1 to 2048"},
        {"{\"rules\": [{\"name\": \"a\", \"paths\": [\"/a*/b\"]}]}", 0, 0, "rules[0].paths[0]", "only at the end"},
        {"{\"rules\": [{\"name\": \"a\", \"paths\": [\"/a b\"]}]}", 0, 0, "rules[0].paths[0]", "spaces"},
        {"{\"rules\": [{\"name\": \"a\", \"paths\": [\"/a?x=1\"]}]}", 0, 0, "rules[0].paths[0]", "'?'"},
        {"{\"rules\": [{\"name\": \"a\", \"paths\": []}]}", 0, 0, "rules[0].paths", "must not be empty"},
        {"{\"rules\": [{\"name\": \"ok\"}, {\"name\": \"b\", \"paths\": [\"/x\", 5]}]}", 0, 1, "rules[1].paths[1]",
         "must be a string"},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_policy_t *p = NULL;
        sc_policy_error_t err;
        int rc = sc_policy_parse(rows[i].text, strlen(rows[i].text), "test.json", &p, &err);
        if (rc == 0) {
            sc_policy_release(p);
            fail_msg("row %zu accepted: %s", i, rows[i].text);
        }
        assert_int_equal(rc, SC_E_POLICY);
        assert_null(p);
        if (err.line != rows[i].line || err.rule_index != rows[i].rule_index || strcmp(err.field, rows[i].field) != 0 ||
            strstr(err.message, rows[i].needle) == NULL)
            fail_msg("row %zu (%s): got line %d rule %d field \"%s\" message \"%s\"", i, rows[i].text, err.line,
                     err.rule_index, err.field, err.message);
    }
}

static void test_too_many(void **state)
{
    (void)state;
    size_t cap = 64 + (SC_POLICY_MAX_RULES + 1) * 32;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "{\"rules\": [");
    for (int i = 0; i <= SC_POLICY_MAX_RULES; ++i)
        len += (size_t)snprintf(text + len, cap - len, "%s{\"name\": \"r%d\"}", i ? "," : "", i);
    len += (size_t)snprintf(text + len, cap - len, "]}");
    sc_policy_t *p = NULL;
    sc_policy_error_t err;
    assert_int_equal(sc_policy_parse(text, len, "big.json", &p, &err), SC_E_POLICY);
    assert_string_equal(err.field, "rules");
    assert_non_null(strstr(err.message, "more than"));
    free(text);

    char methods[64 + (SC_POLICY_MAX_ENTRIES + 1) * 8];
    len = (size_t)snprintf(methods, sizeof(methods), "{\"rules\": [{\"name\": \"m\", \"methods\": [");
    for (int i = 0; i <= SC_POLICY_MAX_ENTRIES; ++i)
        len += (size_t)snprintf(methods + len, sizeof(methods) - len, "%s\"GET\"", i ? "," : "");
    len += (size_t)snprintf(methods + len, sizeof(methods) - len, "]}]}");
    assert_int_equal(sc_policy_parse(methods, len, "big.json", &p, &err), SC_E_POLICY);
    assert_string_equal(err.field, "rules[0].methods");
}

static void test_error_format(void **state)
{
    (void)state;
    sc_policy_t *p = NULL;
    sc_policy_error_t err;
    char line[512];
    const char *text = "{\"rules\": [{\"name\": \"a\"}, {\"name\": \"b\", \"from\": [\"x\"]}]}";
    assert_int_equal(sc_policy_parse(text, strlen(text), "/etc/seam/policy.json", &p, &err), SC_E_POLICY);
    sc_policy_error_format("/etc/seam/policy.json", &err, line, sizeof(line));
    assert_non_null(strstr(line, "/etc/seam/policy.json: rules[1].from[0]: not a SPIFFE ID"));
    text = "{\n\n\"rules\": [\n}";
    assert_int_equal(sc_policy_parse(text, strlen(text), "p.json", &p, &err), SC_E_POLICY);
    sc_policy_error_format("p.json", &err, line, sizeof(line));
    assert_non_null(strstr(line, "p.json:4: invalid JSON"));
}

static const char design_policy[] =
    "{\"mode\": \"enforce\", \"default\": \"deny\",\n"
    " \"rules\": [{\"name\": \"frontend-reads\",\n"
    "            \"from\": [\"" FRONTEND "\", \"spiffe://cluster.local/ns/ops/*\"],\n"
    "            \"methods\": [\"GET\", \"HEAD\"], \"paths\": [\"/api/*\", \"/healthz\"]},\n"
    "           {\"name\": \"public\", \"from\": [\"*\"], \"paths\": [\"/public/*\"]},\n"
    "           {\"name\": \"ops-writes\", \"from\": [\"spiffe://cluster.local/ns/ops/*\"], \"methods\": [\"POST\"]}]}";

static void test_decisions(void **state)
{
    (void)state;
    static const struct {
        const char *peer, *method, *path;
        sc_decision_t want;
        const char *rule;
    } rows[] = {
        {FRONTEND, "GET", "/api/items", SC_DECISION_ALLOW, "frontend-reads"},
        {FRONTEND, "HEAD", "/api/", SC_DECISION_ALLOW, "frontend-reads"},
        {FRONTEND, "GET", "/healthz", SC_DECISION_ALLOW, "frontend-reads"},
        {FRONTEND, "GET", "/healthz/x", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {FRONTEND, "GET", "/api", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {FRONTEND, "POST", "/api/items", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {FRONTEND, "get", "/api/items", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {FRONTEND, "GET", "/admin", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {OPS_TOOL, "GET", "/api/x", SC_DECISION_ALLOW, "frontend-reads"},
        {"spiffe://cluster.local/ns/ops/sa/a/b", "GET", "/api/x", SC_DECISION_ALLOW, "frontend-reads"},
        {"spiffe://cluster.local/ns/opsx/sa/tool", "GET", "/api/x", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {"spiffe://cluster.local/ns/ops", "GET", "/api/x", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {"spiffe://other.domain/ns/ops/sa/tool", "GET", "/api/x", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {FRONTEND "x", "GET", "/api/x", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {STRANGER, "GET", "/api/items", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {STRANGER, "DELETE", "/public/a", SC_DECISION_ALLOW, "public"},
        {"spiffe://elsewhere.org/w", "GET", "/public/", SC_DECISION_ALLOW, "public"},
        {STRANGER, "GET", "/publicity", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {"", "GET", "/public/a", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {OPS_TOOL, "POST", "/anything", SC_DECISION_ALLOW, "ops-writes"},
        {FRONTEND, "POST", "/anything", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
    };
    sc_policy_t *p = parse_ok(design_policy);
    assert_int_equal(sc_policy_num_rules(p), 3);
    assert_int_equal(sc_policy_mode(p), SC_POLICY_ENFORCE);
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_policy_verdict_t v;
        sc_policy_decide(p, rows[i].peer, strlen(rows[i].peer), 8080, rows[i].method, strlen(rows[i].method), rows[i].path,
                         strlen(rows[i].path), &v);
        if (v.decision != rows[i].want || strcmp(v.rule, rows[i].rule) != 0)
            fail_msg("row %zu (%s %s %s): got %s by %s", i, rows[i].peer, rows[i].method, rows[i].path,
                     sc_decision_name(v.decision), v.rule);
    }
    sc_policy_release(p);
}

static void test_modes_and_defaults(void **state)
{
    (void)state;
    sc_policy_verdict_t v;
    sc_policy_t *p = parse_ok("{\"mode\": \"audit\", \"rules\": [{\"name\": \"r\", \"paths\": [\"/ok\"]}]}");
    sc_policy_decide(p, FRONTEND, strlen(FRONTEND), 8080, "GET", 3, "/no", 3, &v);
    assert_int_equal(v.decision, SC_DECISION_AUDIT_DENY);
    assert_string_equal(sc_decision_name(v.decision), "audit_deny");
    sc_policy_decide(p, FRONTEND, strlen(FRONTEND), 8080, "GET", 3, "/ok", 3, &v);
    assert_int_equal(v.decision, SC_DECISION_ALLOW);
    assert_string_equal(v.rule, "r");
    sc_policy_release(p);

    p = parse_ok("{\"default\": \"allow\", \"rules\": []}");
    sc_policy_decide(p, FRONTEND, strlen(FRONTEND), 8080, "GET", 3, "/x", 2, &v);
    assert_int_equal(v.decision, SC_DECISION_ALLOW);
    assert_string_equal(v.rule, SC_POLICY_DEFAULT_RULE);
    sc_policy_release(p);

    /* a rule with no fields matches everything; the first matching rule names the decision */
    p = parse_ok("{\"rules\": [{\"name\": \"first\", \"paths\": [\"/*\"]}, {\"name\": \"second\"}]}");
    sc_policy_decide(p, FRONTEND, strlen(FRONTEND), 8080, "PUT", 3, "/x", 2, &v);
    assert_string_equal(v.rule, "first");
    sc_policy_release(p);

    assert_int_equal(sc_policy_new_empty("none", &p), 0);
    sc_policy_decide(p, FRONTEND, strlen(FRONTEND), 8080, "GET", 3, "/", 1, &v);
    assert_int_equal(v.decision, SC_DECISION_DENY);
    assert_string_equal(sc_policy_source(p), "none");
    sc_policy_release(p);
}

/* "ports" limits a rule to app ports; a TCP tunnel (no method, no path) matches only rules about peers and ports. */
static void test_ports_and_tunnels(void **state)
{
    (void)state;
    static const char *const text =
        "{\"rules\": ["
        "{\"name\": \"cache\", \"from\": [\"" FRONTEND "\"], \"ports\": [6379, 6380]},"
        "{\"name\": \"web-reads\", \"methods\": [\"GET\"], \"ports\": [8080]},"
        "{\"name\": \"api\", \"paths\": [\"/api/*\"]},"
        "{\"name\": \"ops\", \"from\": [\"" OPS_TOOL "\"]}]}";
    static const struct {
        const char *peer;
        uint16_t port;
        const char *method; /* NULL: a TCP tunnel */
        const char *path;
        sc_decision_t want;
        const char *rule;
    } rows[] = {
        {FRONTEND, 6379, NULL, NULL, SC_DECISION_ALLOW, "cache"},
        {FRONTEND, 6380, NULL, NULL, SC_DECISION_ALLOW, "cache"},
        {FRONTEND, 5432, NULL, NULL, SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {STRANGER, 6379, NULL, NULL, SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        /* rules that name methods or paths are about HTTP: they never admit a tunnel */
        {STRANGER, 8080, NULL, NULL, SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {STRANGER, 8080, "GET", "/x", SC_DECISION_ALLOW, "web-reads"},
        {STRANGER, 8081, "GET", "/x", SC_DECISION_DENY, SC_POLICY_DEFAULT_RULE},
        {STRANGER, 9000, "POST", "/api/v1", SC_DECISION_ALLOW, "api"},
        /* a rule without ports matches any port, tunnels included */
        {OPS_TOOL, 22, NULL, NULL, SC_DECISION_ALLOW, "ops"},
        {OPS_TOOL, 8080, "DELETE", "/", SC_DECISION_ALLOW, "ops"},
    };
    sc_policy_t *p = parse_ok(text);
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        sc_policy_verdict_t v;
        sc_policy_decide(p, rows[i].peer, strlen(rows[i].peer), rows[i].port, rows[i].method,
                         rows[i].method != NULL ? strlen(rows[i].method) : 0, rows[i].path,
                         rows[i].path != NULL ? strlen(rows[i].path) : 0, &v);
        if (v.decision != rows[i].want || strcmp(v.rule, rows[i].rule) != 0)
            fail_msg("row %zu (%s port %u %s %s): got %s by %s", i, rows[i].peer, (unsigned)rows[i].port,
                     rows[i].method != NULL ? rows[i].method : "(tunnel)", rows[i].path != NULL ? rows[i].path : "",
                     sc_decision_name(v.decision), v.rule);
    }
    /* the normalised text keeps the field */
    assert_non_null(strstr(sc_policy_json(p), "\"ports\""));
    sc_policy_release(p);
}

static void test_refcount_and_json(void **state)
{
    (void)state;
    sc_policy_t *p = parse_ok(design_policy);
    sc_policy_addref(p);
    sc_policy_release(p);
    assert_non_null(strstr(sc_policy_json(p), "\"frontend-reads\""));
    assert_string_equal(sc_policy_source(p), "test.json");
    sc_policy_release(p);
    sc_policy_release(NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/seam-policy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, design_policy, sizeof(design_policy) - 1), (ssize_t)sizeof(design_policy) - 1);
    close(fd);
    sc_policy_t *p = NULL;
    sc_policy_error_t err;
    assert_int_equal(sc_policy_load_file(path, &p, &err), 0);
    assert_string_equal(sc_policy_source(p), path);
    sc_policy_release(p);
    unlink(path);
    p = NULL;
    assert_int_equal(sc_policy_load_file(path, &p, &err), SC_E_IO);
    assert_null(p);
    assert_non_null(strstr(err.message, "cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejections),  cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_error_format), cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_modes_and_defaults), cmocka_unit_test(test_ports_and_tunnels),
        cmocka_unit_test(test_refcount_and_json),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
