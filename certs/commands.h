/* The seam-certs subcommands, each a function of its parsed options. */
#ifndef SEAM_CERTS_COMMANDS_H
#define SEAM_CERTS_COMMANDS_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Exit codes shared by every Seam binary (DESIGN.md section 4). */
#define CRT_EXIT_OK 0
#define CRT_EXIT_FAILURE 1
#define CRT_EXIT_USAGE 2
#define CRT_EXIT_WARN 3 /* check-expiry: within the warning window */

#define CRT_ROOT_DAYS_DEFAULT 3650
#define CRT_INTERMEDIATE_DAYS_DEFAULT 365

typedef struct st_crt_init_root_opts_t {
    const char *out_dir;
    const char *trust_domain;
    long days;              /* root lifetime */
    long intermediate_days; /* clamped to the root's */
    int force;              /* replace an existing CA directory's files */
} crt_init_root_opts_t;

typedef struct st_crt_issue_opts_t {
    const char *ca_dir;
    const char *spiffe_id;
    long ttl_seconds;
    const char *out_prefix;
} crt_issue_opts_t;

typedef struct st_crt_verify_cmd_opts_t {
    const char *bundle_path;
    const char *chain_path;
    const char *spiffe_id;
} crt_verify_cmd_opts_t;

typedef struct st_crt_diagnose_cmd_opts_t {
    const char *target; /* HOST:PORT or [v6]:PORT */
    const char *bundle_path;
    const char *cert_path;
    const char *key_path;
    const char *spiffe_id;
    int timeout_ms;
} crt_diagnose_cmd_opts_t;

/* Each returns a CRT_EXIT_* code, prints results on out and one-line errors on stderr. */
int crt_cmd_init_root(const crt_init_root_opts_t *opts, time_t now, FILE *out);
int crt_cmd_issue(const crt_issue_opts_t *opts, time_t now, FILE *out);
int crt_cmd_inspect(const char *path, time_t now, FILE *out);
int crt_cmd_verify(const crt_verify_cmd_opts_t *opts, time_t now, FILE *out);
int crt_cmd_check_expiry(char *const *paths, int num_paths, int64_t warn_seconds, time_t now, FILE *out);
int crt_cmd_diagnose(const crt_diagnose_cmd_opts_t *opts, time_t now, FILE *out);

#endif
