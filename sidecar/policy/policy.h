/* The inbound allow list: a pure, immutable, reference-counted policy snapshot. */
#ifndef SEAM_SIDECAR_POLICY_POLICY_H
#define SEAM_SIDECAR_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "sidecar/policy/error.h"

#define SC_POLICY_FILE_MAX (1024 * 1024) /* largest policy file read */
#define SC_POLICY_MAX_RULES 1024         /* rules in one file */
#define SC_POLICY_MAX_ENTRIES 256        /* entries in one from/methods/paths list */
#define SC_POLICY_NAME_MAX 128           /* bytes in a rule name */
#define SC_POLICY_METHOD_MAX 32          /* bytes in a method token */
#define SC_POLICY_PATH_MAX 2048          /* bytes in a path pattern */

/* The rule name reported when no rule matched and the default applied. */
#define SC_POLICY_DEFAULT_RULE "default"

typedef enum { SC_POLICY_ENFORCE = 0, SC_POLICY_AUDIT } sc_policy_mode_t;

typedef enum {
    SC_DECISION_ALLOW = 0,  /* a rule (or an allow default) lets the request through */
    SC_DECISION_DENY,       /* enforce mode refuses it */
    SC_DECISION_AUDIT_DENY, /* audit mode lets it through but enforce would refuse it */
} sc_decision_t;

/* Why a file was refused: where, and which field. */
typedef struct st_sc_policy_error_t {
    int line;          /* JSON syntax errors: line of the error; 0 otherwise */
    int rule_index;    /* index into "rules", -1 when the error is outside a rule */
    char field[96];    /* "rules[2].from[0]", "mode", ... ("" for syntax errors) */
    char message[256]; /* what is wrong with it */
} sc_policy_error_t;

typedef struct st_sc_policy_t sc_policy_t;

typedef struct st_sc_policy_verdict_t {
    sc_decision_t decision;
    const char *rule; /* the matching rule's name, or SC_POLICY_DEFAULT_RULE; borrowed from the policy */
} sc_policy_verdict_t;

/*
 * Parses and validates a policy from JSON text[0..len). source names the
 * rule set (the file path) and is copied. Returns 0 and a new policy with one
 * reference in *out, or SC_E_POLICY (SC_E_NOMEM) with *err filled (*out
 * untouched).
 */
int sc_policy_parse(const char *text, size_t len, const char *source, sc_policy_t **out, sc_policy_error_t *err)
    __attribute__((warn_unused_result));

/* Reads path (at most SC_POLICY_FILE_MAX bytes) and parses it: SC_E_IO when it cannot be read, else as sc_policy_parse. */
int sc_policy_load_file(const char *path, sc_policy_t **out, sc_policy_error_t *err) __attribute__((warn_unused_result));

/* The policy used when no file is configured: enforce, default deny, no rules. */
int sc_policy_new_empty(const char *source, sc_policy_t **out) __attribute__((warn_unused_result));

/* Formats err as one log line "SOURCE:LINE: FIELD: MESSAGE" (parts left out when unknown). */
void sc_policy_error_format(const char *source, const sc_policy_error_t *err, char *buf, size_t cap);

/* Reference counting (atomic: snapshots are shared between threads). NULL is ignored. */
void sc_policy_addref(sc_policy_t *policy);
void sc_policy_release(sc_policy_t *policy);
/* Either, for code that holds snapshots of any kind: delta > 0 takes a reference, else drops one. */
void sc_policy_ref(void *policy, int delta);

/*
 * Decides one request. peer_id is the verified SPIFFE ID of the connection,
 * port the app port it goes to (a rule's "ports"), method and path the
 * request's (path without query). A TCP tunnel has method NULL (and no path):
 * rules that name methods or paths never match it. Pure: reads only its
 * inputs. The verdict's rule name lives as long as the policy.
 */
void sc_policy_decide(const sc_policy_t *policy, const char *peer_id, size_t peer_id_len, uint16_t port,
                      const char *method, size_t method_len, const char *path, size_t path_len,
                      sc_policy_verdict_t *verdict);

/* Facts for the admin endpoint and the log (borrowed; valid while the policy lives). */
const char *sc_policy_source(const sc_policy_t *policy);
sc_policy_mode_t sc_policy_mode(const sc_policy_t *policy);
size_t sc_policy_num_rules(const sc_policy_t *policy);
/* The policy as normalised JSON text (NUL-terminated). */
const char *sc_policy_json(const sc_policy_t *policy);

/* "allow", "deny", "audit_deny": the metric label and access-log value. */
const char *sc_decision_name(sc_decision_t decision);

#endif
