/* libFuzzer target for sidecar/policy.c: any file text is refused cleanly or gives a policy that re-parses the same. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/policy.h"

/* A request built from a rule's own first patterns: the policy must let it through. */
static void check_rule_admits(const sc_policy_t *policy, json_t *rule)
{
    char peer[4096] = "spiffe://cluster.local/ns/default/sa/fuzz", path[4096] = "/", method[64] = "GET";
    json_t *from = json_array_get(json_object_get(rule, "from"), 0);
    json_t *methods = json_array_get(json_object_get(rule, "methods"), 0);
    json_t *paths = json_array_get(json_object_get(rule, "paths"), 0);
    json_t *ports = json_array_get(json_object_get(rule, "ports"), 0);
    uint16_t port = ports != NULL ? (uint16_t)json_integer_value(ports) : 8080;
    if (from != NULL && strcmp(json_string_value(from), "*") != 0) {
        /* a prefix ending in a slash and a star admits one segment more; an exact ID admits itself */
        size_t len = json_string_length(from);
        const char *s = json_string_value(from);
        snprintf(peer, sizeof(peer), "%.*s%s", (int)(s[len - 1] == '*' ? len - 1 : len), s, s[len - 1] == '*' ? "x" : "");
    }
    if (methods != NULL)
        snprintf(method, sizeof(method), "%s", json_string_value(methods));
    if (paths != NULL) {
        size_t len = json_string_length(paths);
        const char *s = json_string_value(paths);
        snprintf(path, sizeof(path), "%.*s%s", (int)(s[len - 1] == '*' ? len - 1 : len), s, s[len - 1] == '*' ? "z" : "");
    }
    sc_policy_verdict_t verdict;
    sc_policy_decide(policy, peer, strlen(peer), port, method, strlen(method), path, strlen(path), &verdict);
    if (verdict.decision != SC_DECISION_ALLOW || verdict.rule == NULL)
        abort();
    if (methods == NULL && paths == NULL) {
        /* a rule about peers and ports alone admits a TCP tunnel too */
        sc_policy_decide(policy, peer, strlen(peer), port, NULL, 0, NULL, 0, &verdict);
        if (verdict.decision != SC_DECISION_ALLOW || verdict.rule == NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_policy_t *policy = NULL, *again = NULL;
    sc_policy_error_t err;
    char line[512];

    if (sc_policy_parse((const char *)data, size, "policy.json", &policy, &err) != 0) {
        /* refused: a message, a rule index in range, NUL-terminated fields */
        if (err.message[0] == '\0' || memchr(err.field, '\0', sizeof(err.field)) == NULL ||
            memchr(err.message, '\0', sizeof(err.message)) == NULL || err.rule_index < -1 ||
            err.rule_index >= SC_POLICY_MAX_RULES || err.line < 0)
            abort();
        sc_policy_error_format("policy.json", &err, line, sizeof(line));
        return 0;
    }
    if (sc_policy_num_rules(policy) > SC_POLICY_MAX_RULES || sc_policy_json(policy) == NULL)
        abort();

    /* the normalised text parses to the same policy, and normalises to itself */
    const char *json = sc_policy_json(policy);
    if (sc_policy_parse(json, strlen(json), "again", &again, &err) != 0)
        abort();
    if (strcmp(sc_policy_json(again), json) != 0 || sc_policy_num_rules(again) != sc_policy_num_rules(policy) ||
        sc_policy_mode(again) != sc_policy_mode(policy))
        abort();

    /* both decide alike, and each rule lets in a request made of its own patterns */
    json_t *root = json_loads(json, 0, NULL), *rules = json_object_get(root, "rules");
    if (root == NULL || json_array_size(rules) != sc_policy_num_rules(policy))
        abort();
    for (size_t i = 0; i != json_array_size(rules); ++i) {
        check_rule_admits(policy, json_array_get(rules, i));
        check_rule_admits(again, json_array_get(rules, i));
    }
    static const char *const peers[] = {"spiffe://cluster.local/ns/default/sa/frontend", "spiffe://other/x", ""};
    static const char *const paths[] = {"/", "/api/v1/items", "/admin"};
    for (size_t i = 0; i != 3; ++i) {
        sc_policy_verdict_t a, b;
        sc_policy_decide(policy, peers[i], strlen(peers[i]), 8080, "GET", 3, paths[i], strlen(paths[i]), &a);
        sc_policy_decide(again, peers[i], strlen(peers[i]), 8080, "GET", 3, paths[i], strlen(paths[i]), &b);
        if (a.decision != b.decision || strcmp(a.rule, b.rule) != 0)
            abort();
    }
    json_decref(root);
    sc_policy_release(again);
    sc_policy_release(policy);
    return 0;
}
