/* The inbound allow list: parsing, validation and matching (no I/O but the file read). */
#include "sidecar/policy/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/pem.h"
#include "certs/spiffe.h"
#include "sidecar/policy/error.h"

typedef enum { FROM_ANY = 0, FROM_EXACT, FROM_PREFIX } from_kind_t;

typedef struct st_sc_from_t {
    from_kind_t kind;
    char *id; /* exact ID, or the prefix including its trailing '/' */
    size_t len;
} sc_from_t;

typedef struct st_sc_path_t {
    int is_prefix;
    char *text; /* exact path, or the prefix without its '*' */
    size_t len;
} sc_path_t;

typedef struct st_sc_rule_t {
    char *name;
    sc_from_t *from; /* NULL: any peer */
    size_t num_from;
    char **methods; /* NULL: any method */
    size_t num_methods;
    sc_path_t *paths; /* NULL: any path */
    size_t num_paths;
    uint16_t *ports; /* NULL: any app port */
    size_t num_ports;
} sc_rule_t;

struct st_sc_policy_t {
    int refcnt;
    sc_policy_mode_t mode;
    int default_allow;
    char *source;
    char *json;
    sc_rule_t *rules;
    size_t num_rules;
};

static void policy_free(sc_policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i != p->num_rules; ++i) {
        sc_rule_t *r = &p->rules[i];
        free(r->name);
        for (size_t j = 0; j != r->num_from; ++j)
            free(r->from[j].id);
        free(r->from);
        for (size_t j = 0; j != r->num_methods; ++j)
            free(r->methods[j]);
        free(r->methods);
        for (size_t j = 0; j != r->num_paths; ++j)
            free(r->paths[j].text);
        free(r->paths);
        free(r->ports);
    }
    free(p->rules);
    free(p->source);
    free(p->json);
    free(p);
}

static int fail(sc_policy_error_t *err, int rule_index, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(sc_policy_error_t *err, int rule_index, const char *field, const char *fmt, ...)
{
    va_list ap;
    err->line = 0;
    err->rule_index = rule_index;
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return SC_E_POLICY;
}

static int is_method_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* A pattern's path part: printable ASCII without whitespace, query or fragment. */
static int is_path_char(char c)
{
    return c > ' ' && c < 0x7f && c != '?' && c != '#';
}

static int parse_from(const char *s, size_t len, sc_from_t *out, int idx, const char *field, sc_policy_error_t *err)
{
    crt_spiffe_id_t id;
    int rc;

    if (len == 1 && s[0] == '*') {
        out->kind = FROM_ANY;
        return 0;
    }
    if (len >= 2 && s[len - 2] == '/' && s[len - 1] == '*') {
        /* a prefix pattern: what precedes the final slash-star must itself be a valid ID */
        if ((rc = crt_spiffe_parse(s, len - 2, &id)) != 0)
            return fail(err, idx, field, "prefix \"%.*s\" is not a SPIFFE ID: %s", (int)(len - 2), s,
                        crt_spiffe_error_message(rc));
        out->kind = FROM_PREFIX;
        out->len = len - 1; /* keep the '/' so that matches stop at a segment boundary */
    } else {
        if (memchr(s, '*', len) != NULL)
            return fail(err, idx, field, "'*' is allowed only alone or as a final \"/*\"");
        if ((rc = crt_spiffe_parse_workload(s, len, &id)) != 0)
            return fail(err, idx, field, "not a SPIFFE ID: %s", crt_spiffe_error_message(rc));
        out->kind = FROM_EXACT;
        out->len = len;
    }
    if ((out->id = strndup(s, out->len)) == NULL)
        return fail(err, idx, field, "out of memory");
    return 0;
}

static int parse_method(const char *s, size_t len, char **out, int idx, const char *field, sc_policy_error_t *err)
{
    if (len == 0 || len > SC_POLICY_METHOD_MAX)
        return fail(err, idx, field, "a method is 1 to %d characters", SC_POLICY_METHOD_MAX);
    for (size_t i = 0; i != len; ++i)
        if (!is_method_char(s[i]))
            return fail(err, idx, field, "\"%.*s\" is not an upper-case method token", (int)len, s);
    if ((*out = strndup(s, len)) == NULL)
        return fail(err, idx, field, "out of memory");
    return 0;
}

static int parse_path(const char *s, size_t len, sc_path_t *out, int idx, const char *field, sc_policy_error_t *err)
{
    if (len == 0 || len > SC_POLICY_PATH_MAX)
        return fail(err, idx, field, "a path is 1 to %d characters", SC_POLICY_PATH_MAX);
    if (s[0] != '/')
        return fail(err, idx, field, "a path must start with '/'");
    for (size_t i = 0; i != len; ++i) {
        if (!is_path_char(s[i]))
            return fail(err, idx, field, "a path may not hold spaces, controls, '?' or '#'");
        if (s[i] == '*' && i != len - 1)
            return fail(err, idx, field, "'*' is allowed only at the end of a path");
    }
    out->is_prefix = s[len - 1] == '*';
    out->len = out->is_prefix ? len - 1 : len;
    if ((out->text = strndup(s, out->len)) == NULL)
        return fail(err, idx, field, "out of memory");
    return 0;
}

/* Validates that value is a non-empty array of strings of at most SC_POLICY_MAX_ENTRIES. */
static int check_list(json_t *value, int idx, const char *field, sc_policy_error_t *err)
{
    if (!json_is_array(value))
        return fail(err, idx, field, "must be an array of strings");
    if (json_array_size(value) == 0)
        return fail(err, idx, field, "must not be empty (leave the field out to match anything)");
    if (json_array_size(value) > SC_POLICY_MAX_ENTRIES)
        return fail(err, idx, field, "more than %d entries", SC_POLICY_MAX_ENTRIES);
    for (size_t i = 0; i != json_array_size(value); ++i) {
        if (!json_is_string(json_array_get(value, i))) {
            char f[96];
            snprintf(f, sizeof(f), "%s[%zu]", field, i);
            return fail(err, idx, f, "must be a string");
        }
    }
    return 0;
}

/* "ports": a non-empty array of app port numbers (1-65535). */
static int parse_ports(json_t *value, int idx, sc_rule_t *rule, sc_policy_error_t *err)
{
    char field[96];
    snprintf(field, sizeof(field), "rules[%d].ports", idx);
    if (!json_is_array(value))
        return fail(err, idx, field, "must be an array of port numbers");
    if (json_array_size(value) == 0)
        return fail(err, idx, field, "must not be empty (leave the field out to match any port)");
    if (json_array_size(value) > SC_POLICY_MAX_ENTRIES)
        return fail(err, idx, field, "more than %d entries", SC_POLICY_MAX_ENTRIES);
    if ((rule->ports = calloc(json_array_size(value), sizeof(*rule->ports))) == NULL)
        return fail(err, idx, field, "out of memory");
    for (size_t i = 0; i != json_array_size(value); ++i) {
        json_t *n = json_array_get(value, i);
        snprintf(field, sizeof(field), "rules[%d].ports[%zu]", idx, i);
        if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 65535)
            return fail(err, idx, field, "must be a port number, 1 to 65535");
        rule->ports[i] = (uint16_t)json_integer_value(n);
        rule->num_ports = i + 1;
    }
    return 0;
}

static int parse_rule(json_t *obj, int idx, sc_rule_t *rule, sc_policy_t *p, sc_policy_error_t *err)
{
    char field[96];
    const char *key;
    json_t *value;

    snprintf(field, sizeof(field), "rules[%d]", idx);
    if (!json_is_object(obj))
        return fail(err, idx, field, "a rule must be an object");
    json_object_foreach(obj, key, value)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "from") != 0 && strcmp(key, "methods") != 0 &&
            strcmp(key, "paths") != 0 && strcmp(key, "ports") != 0) {
            snprintf(field, sizeof(field), "rules[%d].%s", idx, key);
            return fail(err, idx, field, "unknown field (expected name, from, methods, paths, ports)");
        }
    }

    json_t *name = json_object_get(obj, "name");
    snprintf(field, sizeof(field), "rules[%d].name", idx);
    if (name == NULL)
        return fail(err, idx, field, "is required");
    if (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > SC_POLICY_NAME_MAX)
        return fail(err, idx, field, "must be a string of 1 to %d characters", SC_POLICY_NAME_MAX);
    const char *name_s = json_string_value(name);
    for (size_t i = 0; i != json_string_length(name); ++i)
        if ((unsigned char)name_s[i] < 0x20 || name_s[i] == 0x7f)
            return fail(err, idx, field, "must not hold control characters");
    for (int i = 0; i != idx; ++i)
        if (strcmp(p->rules[i].name, name_s) == 0)
            return fail(err, idx, field, "\"%s\" is already the name of rules[%d]", name_s, i);
    if ((rule->name = strdup(name_s)) == NULL)
        return fail(err, idx, field, "out of memory");

    if ((value = json_object_get(obj, "from")) != NULL) {
        snprintf(field, sizeof(field), "rules[%d].from", idx);
        if (check_list(value, idx, field, err) != 0)
            return SC_E_POLICY;
        if ((rule->from = calloc(json_array_size(value), sizeof(*rule->from))) == NULL)
            return fail(err, idx, field, "out of memory");
        for (size_t i = 0; i != json_array_size(value); ++i) {
            json_t *s = json_array_get(value, i);
            snprintf(field, sizeof(field), "rules[%d].from[%zu]", idx, i);
            if (parse_from(json_string_value(s), json_string_length(s), &rule->from[i], idx, field, err) != 0)
                return SC_E_POLICY;
            rule->num_from = i + 1;
        }
    }
    if ((value = json_object_get(obj, "methods")) != NULL) {
        snprintf(field, sizeof(field), "rules[%d].methods", idx);
        if (check_list(value, idx, field, err) != 0)
            return SC_E_POLICY;
        if ((rule->methods = calloc(json_array_size(value), sizeof(*rule->methods))) == NULL)
            return fail(err, idx, field, "out of memory");
        for (size_t i = 0; i != json_array_size(value); ++i) {
            json_t *s = json_array_get(value, i);
            snprintf(field, sizeof(field), "rules[%d].methods[%zu]", idx, i);
            if (parse_method(json_string_value(s), json_string_length(s), &rule->methods[i], idx, field, err) != 0)
                return SC_E_POLICY;
            rule->num_methods = i + 1;
        }
    }
    if ((value = json_object_get(obj, "paths")) != NULL) {
        snprintf(field, sizeof(field), "rules[%d].paths", idx);
        if (check_list(value, idx, field, err) != 0)
            return SC_E_POLICY;
        if ((rule->paths = calloc(json_array_size(value), sizeof(*rule->paths))) == NULL)
            return fail(err, idx, field, "out of memory");
        for (size_t i = 0; i != json_array_size(value); ++i) {
            json_t *s = json_array_get(value, i);
            snprintf(field, sizeof(field), "rules[%d].paths[%zu]", idx, i);
            if (parse_path(json_string_value(s), json_string_length(s), &rule->paths[i], idx, field, err) != 0)
                return SC_E_POLICY;
            rule->num_paths = i + 1;
        }
    }
    if ((value = json_object_get(obj, "ports")) != NULL)
        return parse_ports(value, idx, rule, err);
    return 0;
}

static int parse_root(json_t *root, sc_policy_t *p, sc_policy_error_t *err)
{
    const char *key;
    json_t *value;

    if (!json_is_object(root))
        return fail(err, -1, "", "the policy must be a JSON object");
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "mode") != 0 && strcmp(key, "default") != 0 && strcmp(key, "rules") != 0)
            return fail(err, -1, key, "unknown field (expected mode, default, rules)");
    }
    if ((value = json_object_get(root, "mode")) != NULL) {
        if (json_is_string(value) && strcmp(json_string_value(value), "enforce") == 0)
            p->mode = SC_POLICY_ENFORCE;
        else if (json_is_string(value) && strcmp(json_string_value(value), "audit") == 0)
            p->mode = SC_POLICY_AUDIT;
        else
            return fail(err, -1, "mode", "must be \"enforce\" or \"audit\"");
    }
    if ((value = json_object_get(root, "default")) != NULL) {
        if (json_is_string(value) && strcmp(json_string_value(value), "deny") == 0)
            p->default_allow = 0;
        else if (json_is_string(value) && strcmp(json_string_value(value), "allow") == 0)
            p->default_allow = 1;
        else
            return fail(err, -1, "default", "must be \"deny\" or \"allow\"");
    }
    value = json_object_get(root, "rules");
    if (value == NULL)
        return fail(err, -1, "rules", "is required (use [] for none)");
    if (!json_is_array(value))
        return fail(err, -1, "rules", "must be an array of rule objects");
    if (json_array_size(value) > SC_POLICY_MAX_RULES)
        return fail(err, -1, "rules", "more than %d rules", SC_POLICY_MAX_RULES);
    if (json_array_size(value) != 0 && (p->rules = calloc(json_array_size(value), sizeof(*p->rules))) == NULL)
        return fail(err, -1, "rules", "out of memory");
    for (size_t i = 0; i != json_array_size(value); ++i) {
        p->num_rules = i + 1; /* so that policy_free releases a half-parsed rule */
        if (parse_rule(json_array_get(value, i), (int)i, &p->rules[i], p, err) != 0)
            return SC_E_POLICY;
    }
    return 0;
}

int sc_policy_parse(const char *text, size_t len, const char *source, sc_policy_t **out, sc_policy_error_t *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    sc_policy_t *p = NULL;
    int ret = SC_E_POLICY;

    memset(err, 0, sizeof(*err));
    err->rule_index = -1;
    if (len > SC_POLICY_FILE_MAX) {
        fail(err, -1, "", "larger than %d bytes", SC_POLICY_FILE_MAX);
        goto Exit;
    }
    if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        fail(err, -1, "", "invalid JSON: %s", jerr.text);
        err->line = jerr.line;
        goto Exit;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || (p->source = strdup(source)) == NULL) {
        fail(err, -1, "", "out of memory");
        ret = SC_E_NOMEM;
        goto Exit;
    }
    p->refcnt = 1;
    if (parse_root(root, p, err) != 0)
        goto Exit;
    if ((p->json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
        fail(err, -1, "", "out of memory");
        goto Exit;
    }
    *out = p;
    p = NULL;
    ret = 0;
Exit:
    policy_free(p);
    json_decref(root);
    return ret;
}

int sc_policy_load_file(const char *path, sc_policy_t **out, sc_policy_error_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    memset(err, 0, sizeof(*err));
    err->rule_index = -1;
    errno = 0;
    if ((rc = crt_file_read(path, SC_POLICY_FILE_MAX, &buf, &len)) != 0) {
        if (errno != 0)
            fail(err, -1, "", "cannot read: %s", strerror(errno));
        else
            fail(err, -1, "", "cannot read (larger than %d bytes?)", SC_POLICY_FILE_MAX);
        return SC_E_IO;
    }
    rc = sc_policy_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

int sc_policy_new_empty(const char *source, sc_policy_t **out)
{
    static const char text[] = "{\"mode\":\"enforce\",\"default\":\"deny\",\"rules\":[]}";
    sc_policy_error_t err;
    return sc_policy_parse(text, sizeof(text) - 1, source, out, &err);
}

void sc_policy_error_format(const char *source, const sc_policy_error_t *err, char *buf, size_t cap)
{
    char line[32] = "";
    if (err->line > 0)
        snprintf(line, sizeof(line), ":%d", err->line);
    snprintf(buf, cap, "%s%s: %s%s%s", source, line, err->field, err->field[0] != '\0' ? ": " : "", err->message);
}

void sc_policy_addref(sc_policy_t *policy)
{
    if (policy != NULL)
        __atomic_add_fetch(&policy->refcnt, 1, __ATOMIC_RELAXED);
}

void sc_policy_release(sc_policy_t *policy)
{
    if (policy != NULL && __atomic_sub_fetch(&policy->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        policy_free(policy);
}

void sc_policy_ref(void *policy, int delta)
{
    (delta > 0 ? sc_policy_addref : sc_policy_release)(policy);
}

static int from_matches(const sc_from_t *f, const char *peer, size_t len)
{
    switch (f->kind) {
    case FROM_ANY:
        return len != 0;
    case FROM_EXACT:
        return len == f->len && memcmp(peer, f->id, len) == 0;
    case FROM_PREFIX:
        /* f->id ends with '/', and IDs never end with '/': at least one more segment follows */
        return len > f->len && memcmp(peer, f->id, f->len) == 0;
    }
    return 0;
}

static int rule_matches(const sc_rule_t *r, const char *peer, size_t peer_len, uint16_t port, const char *method,
                        size_t method_len, const char *path, size_t path_len)
{
    size_t i;

    /* a TCP tunnel has neither method nor path: a rule that names either is about HTTP only */
    if (method == NULL && (r->methods != NULL || r->paths != NULL))
        return 0;
    if (r->ports != NULL) {
        for (i = 0; i != r->num_ports; ++i)
            if (r->ports[i] == port)
                break;
        if (i == r->num_ports)
            return 0;
    }
    if (r->from != NULL) {
        for (i = 0; i != r->num_from; ++i)
            if (from_matches(&r->from[i], peer, peer_len))
                break;
        if (i == r->num_from)
            return 0;
    }
    if (r->methods != NULL) {
        for (i = 0; i != r->num_methods; ++i)
            if (strlen(r->methods[i]) == method_len && memcmp(r->methods[i], method, method_len) == 0)
                break;
        if (i == r->num_methods)
            return 0;
    }
    if (r->paths != NULL) {
        for (i = 0; i != r->num_paths; ++i) {
            const sc_path_t *p = &r->paths[i];
            if (p->is_prefix ? (path_len >= p->len && memcmp(path, p->text, p->len) == 0)
                             : (path_len == p->len && memcmp(path, p->text, p->len) == 0))
                break;
        }
        if (i == r->num_paths)
            return 0;
    }
    return 1;
}

void sc_policy_decide(const sc_policy_t *policy, const char *peer_id, size_t peer_id_len, uint16_t port,
                      const char *method, size_t method_len, const char *path, size_t path_len,
                      sc_policy_verdict_t *verdict)
{
    int allowed = policy->default_allow;

    verdict->rule = SC_POLICY_DEFAULT_RULE;
    for (size_t i = 0; i != policy->num_rules; ++i) {
        if (rule_matches(&policy->rules[i], peer_id, peer_id_len, port, method, method_len, path, path_len)) {
            allowed = 1;
            verdict->rule = policy->rules[i].name;
            break;
        }
    }
    if (allowed)
        verdict->decision = SC_DECISION_ALLOW;
    else
        verdict->decision = policy->mode == SC_POLICY_AUDIT ? SC_DECISION_AUDIT_DENY : SC_DECISION_DENY;
}

const char *sc_policy_source(const sc_policy_t *policy)
{
    return policy->source;
}

sc_policy_mode_t sc_policy_mode(const sc_policy_t *policy)
{
    return policy->mode;
}

size_t sc_policy_num_rules(const sc_policy_t *policy)
{
    return policy->num_rules;
}

const char *sc_policy_json(const sc_policy_t *policy)
{
    return policy->json;
}

const char *sc_decision_name(sc_decision_t decision)
{
    switch (decision) {
    case SC_DECISION_ALLOW:
        return "allow";
    case SC_DECISION_DENY:
        return "deny";
    case SC_DECISION_AUDIT_DENY:
        return "audit_deny";
    }
    return "unknown";
}
