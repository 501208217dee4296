/* seam-ca: flag parsing and wiring for the CA service and its `token create` command. */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/issue.h"
#include "certs/spiffe.h"
#include "common/duration.h"
#include "common/log.h"
#include "common/version.h"
#include "control/error.h"
#include "control/ratelimit.h"
#include "control/server.h"
#include "control/sign.h"
#include "control/tokens.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define KEEP_GOING (-1) /* a start-up step found no reason to exit */

static const char usage_text[] =
    "usage: seam-ca --ca-dir DIR --trust-domain TD --journal FILE [options]\n"
    "       seam-ca token create --join-tokens FILE --spiffe-id ID [--ttl 1h] [--reserved-id ID]...\n"
    "\n"
    "The Seam control-plane CA: signs short-lived SPIFFE certificates over HTTPS.\n"
    "\n"
    "  --listen HOST:PORT      address to serve on (default " CA_DEFAULT_LISTEN ")\n"
    "  --ca-dir DIR            intermediate.pem, intermediate.key and bundle.pem (or root.pem)\n"
    "  --trust-domain TD       the trust domain this CA signs for\n"
    "  --journal FILE          append-only issuance journal (created if missing)\n"
    "  --jwks FILE             Kubernetes JWKS for service-account tokens (needs --issuer)\n"
    "  --issuer URL            required \"iss\" of service-account tokens\n"
    "  --audience AUD          required \"aud\" of service-account tokens (default " CA_DEFAULT_AUDIENCE ")\n"
    "  --join-tokens FILE      join tokens file made by `seam-ca token create`\n"
    "  --ttl DURATION          default certificate lifetime (default 1h)\n"
    "  --max-ttl DURATION      longest lifetime a request may ask for (default 24h, at most 24h)\n"
    "  --dns-name NAME         DNS name for the CA's own certificate (repeatable)\n"
    "  --serving-ttl DURATION  lifetime of the CA's own certificate, renewed at half-life (default 24h)\n"
    "  --rate-limit N          certificates per identity per minute (default 30)\n"
    "  --rate-burst N          certificates per identity back to back (default 10)\n"
    "  --bad-credential-limit N  refused credentials per client address per minute (default 60)\n"
    "  --bad-credential-burst N  refused credentials per client address back to back (default 30)\n"
    "  --reserved-id ID        never sign ID, or every ID under PREFIX with ID = PREFIX/* (repeatable);\n"
    "                          the CA's own spiffe://TD/ns/seam-system/sa/seam-ca is always reserved\n"
    "  --idle-timeout DURATION TLS handshake, request and idle timeout (default 10s)\n"
    "  --max-connections N     open connections at most (default 1024)\n"
    "  --help, --version\n";

static const char token_usage_text[] =
    "usage: seam-ca token create --join-tokens FILE --spiffe-id ID [--ttl 1h] [--reserved-id ID]...\n"
    "  --reserved-id: as the CA's flag; a token for a reserved ID (or the CA's own) is refused\n";

static int usage_error(const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg);
    cmn_log_error("%s (see --help)", msg);
    return EXIT_USAGE;
}

/* Parses a duration flag into whole seconds (> 0). */
static int parse_seconds(const char *flag, const char *value, long *out)
{
    int64_t ms;
    if (cmn_duration_parse(value, &ms) != 0 || ms < 1000 || ms % 1000 != 0 || ms / 1000 > CRT_LEAF_TTL_MAX * 365L) {
        cmn_log_error("%s %s: not a duration of whole seconds such as 30s, 1h or 24h (see --help)", flag, value);
        return -1;
    }
    *out = (long)(ms / 1000);
    return 0;
}

static int parse_count(const char *flag, const char *value, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end != '\0' || v == 0 || v > max) {
        cmn_log_error("%s %s: not a whole number from 1 to %u (see --help)", flag, value, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Adds a --reserved-id value to list after checking it (in trust_domain, unless NULL). */
static int add_reserved_id(const char *value, const char *trust_domain, const char **list, size_t *num)
{
    char why[256];

    if (*num == CA_RESERVED_IDS_MAX) {
        cmn_log_error("--reserved-id: at most %d (see --help)", CA_RESERVED_IDS_MAX);
        return -1;
    }
    if (ca_sign_reserved_entry_check(value, trust_domain, why, sizeof(why)) != 0) {
        cmn_log_error("--reserved-id %s: %s (see --help)", value, why);
        return -1;
    }
    list[(*num)++] = value;
    return 0;
}

/*
 * token create refuses what the CA would never sign: a token for the CA's own
 * identity (in the ID's trust domain) or a --reserved-id. 0 or -1 (logged).
 */
static int refuse_reserved_token(const char *spiffe_id, const crt_spiffe_id_t *id, const char *const *reserved,
                                 size_t num_reserved)
{
    char td[CRT_SPIFFE_TRUST_DOMAIN_MAX + 1], own[CRT_SPIFFE_ID_MAX + 1];
    const char *own_list[1] = {own}, *matched = NULL;

    snprintf(td, sizeof(td), "%.*s", (int)id->trust_domain_len, id->trust_domain);
    if (crt_spiffe_from_service_account(td, CA_SERVING_NAMESPACE, CA_SERVING_SERVICE_ACCOUNT, own, sizeof(own)) != 0)
        return 0; /* no CA identity can be made in this trust domain, so none to protect */
    if (ca_sign_check_reserved(spiffe_id, own_list, 1, NULL) != 0) {
        cmn_log_error("--spiffe-id %s: the CA's own identity is reserved; seam-ca never signs it", spiffe_id);
        return -1;
    }
    if (ca_sign_check_reserved(spiffe_id, reserved, num_reserved, &matched) != 0) {
        cmn_log_error("--spiffe-id %s: reserved by --reserved-id %s; seam-ca never signs it", spiffe_id, matched);
        return -1;
    }
    return 0;
}

static int run_token_create(int argc, char **argv)
{
    static const struct option opts[] = {{"join-tokens", required_argument, NULL, 'j'},
                                         {"spiffe-id", required_argument, NULL, 's'},
                                         {"ttl", required_argument, NULL, 't'},
                                         {"reserved-id", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *spiffe_id = NULL, *reserved[CA_RESERVED_IDS_MAX];
    size_t num_reserved = 0;
    long ttl = CA_TOKEN_TTL_DEFAULT;
    char token[CA_TOKEN_MAX + 1], detail[512];
    crt_spiffe_id_t id;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            path = optarg;
            break;
        case 's':
            spiffe_id = optarg;
            break;
        case 't':
            if (parse_seconds("--ttl", optarg, &ttl) != 0)
                return EXIT_USAGE;
            break;
        case 'R':
            if (add_reserved_id(optarg, NULL, reserved, &num_reserved) != 0)
                return EXIT_USAGE;
            break;
        case 'h':
            fputs(token_usage_text, stdout);
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("token create: unexpected argument %s", argv[optind]);
    if (path == NULL)
        return usage_error("token create: %s is required", "--join-tokens");
    if (spiffe_id == NULL)
        return usage_error("token create: %s is required", "--spiffe-id");
    int err = crt_spiffe_parse_workload(spiffe_id, strlen(spiffe_id), &id);
    if (err != CRT_SPIFFE_OK) {
        cmn_log_error("--spiffe-id %s: %s", spiffe_id, crt_spiffe_error_message(err));
        return EXIT_USAGE;
    }
    if (refuse_reserved_token(spiffe_id, &id, reserved, num_reserved) != 0)
        return EXIT_USAGE;
    if (ca_tokens_create(path, spiffe_id, ttl, time(NULL), token, detail, sizeof(detail)) != 0) {
        cmn_log_error("--join-tokens %s", detail);
        return EXIT_RUNTIME;
    }
    printf("%s\n", token);
    fflush(stdout);
    OPENSSL_cleanse(token, sizeof(token));
    return 0;
}

/* Opens and compacts the join tokens file; logs what compaction did. 0 or -1 (logged). */
static int open_join_tokens(const char *path, ca_token_store_t **out)
{
    ca_token_compaction_t report;
    char detail[512] = "";

    if (ca_token_store_open(path, time(NULL), out, &report, detail, sizeof(detail)) != 0) {
        cmn_log_error("--join-tokens %s", detail);
        return -1;
    }
    if (report.failed)
        cmn_log_warn("--join-tokens %s: not compacted (%s); serving from it as it is", path, detail);
    else if (report.rewritten)
        cmn_log_info("--join-tokens %s: compacted from %zu to %zu lines (dropped spent and expired tokens, %zu bad lines)",
                     path, report.lines_before, report.lines_after, report.bad_lines);
    if (report.bad_lines != 0 && !report.rewritten)
        cmn_log_warn("--join-tokens %s: %zu line(s) that are not records skipped", path, report.bad_lines);
    return 0;
}

/* `seam-ca token ...`: argv[1] is "token". Returns the exit status. */
static int run_token_command(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[2], "create") == 0)
        return run_token_create(argc - 2, argv + 2);
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "help") == 0)) {
        fputs(token_usage_text, stdout);
        return 0;
    }
    return usage_error("token: unknown subcommand %s", argc >= 3 ? argv[2] : "(none)");
}

/* Fills config from the command line. Returns KEEP_GOING, or the exit status (--help, --version, a bad flag). */
static int parse_flags(int argc, char **argv, ca_server_config_t *config)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"ca-dir", required_argument, NULL, 'c'},
                                         {"trust-domain", required_argument, NULL, 'd'},
                                         {"journal", required_argument, NULL, 'J'},
                                         {"jwks", required_argument, NULL, 'k'},
                                         {"issuer", required_argument, NULL, 'i'},
                                         {"audience", required_argument, NULL, 'a'},
                                         {"join-tokens", required_argument, NULL, 'j'},
                                         {"ttl", required_argument, NULL, 't'},
                                         {"max-ttl", required_argument, NULL, 'm'},
                                         {"dns-name", required_argument, NULL, 'n'},
                                         {"rate-limit", required_argument, NULL, 'r'},
                                         {"rate-burst", required_argument, NULL, 'b'},
                                         {"bad-credential-limit", required_argument, NULL, 'F'},
                                         {"bad-credential-burst", required_argument, NULL, 'B'},
                                         {"reserved-id", required_argument, NULL, 'R'},
                                         {"idle-timeout", required_argument, NULL, 'I'},
                                         {"max-connections", required_argument, NULL, 'C'},
                                         {"serving-ttl", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    long idle_seconds;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            config->listen = optarg;
            break;
        case 'c':
            config->ca_dir = optarg;
            break;
        case 'd':
            config->trust_domain = optarg;
            break;
        case 'J':
            config->journal_path = optarg;
            break;
        case 'k':
            config->jwks_path = optarg;
            break;
        case 'i':
            config->issuer = optarg;
            break;
        case 'a':
            config->audience = optarg;
            break;
        case 'j':
            config->join_tokens_path = optarg;
            break;
        case 't':
            if (parse_seconds("--ttl", optarg, &config->default_ttl) != 0)
                return EXIT_USAGE;
            break;
        case 'm':
            if (parse_seconds("--max-ttl", optarg, &config->max_ttl) != 0)
                return EXIT_USAGE;
            break;
        case 'n':
            if (config->num_dns_names == CA_MAX_DNS_NAMES) {
                cmn_log_error("--dns-name: at most %d names (see --help)", CA_MAX_DNS_NAMES);
                return EXIT_USAGE;
            }
            config->dns_names[config->num_dns_names++] = optarg;
            break;
        case 'r':
            if (parse_count("--rate-limit", optarg, 1000000, &config->rate_per_minute) != 0)
                return EXIT_USAGE;
            break;
        case 'b':
            if (parse_count("--rate-burst", optarg, 1000000, &config->rate_burst) != 0)
                return EXIT_USAGE;
            break;
        case 'F':
            if (parse_count("--bad-credential-limit", optarg, 1000000, &config->bad_credential_per_minute) != 0)
                return EXIT_USAGE;
            break;
        case 'B':
            if (parse_count("--bad-credential-burst", optarg, 1000000, &config->bad_credential_burst) != 0)
                return EXIT_USAGE;
            break;
        case 'R':
            /* The trust domain is checked once all flags are in. */
            if (add_reserved_id(optarg, NULL, config->reserved_ids, &config->num_reserved_ids) != 0)
                return EXIT_USAGE;
            break;
        case 'I':
            if (parse_seconds("--idle-timeout", optarg, &idle_seconds) != 0)
                return EXIT_USAGE;
            config->idle_timeout_ms = (uint64_t)idle_seconds * 1000;
            break;
        case 'C':
            if (parse_count("--max-connections", optarg, 1000000, &config->max_connections) != 0)
                return EXIT_USAGE;
            break;
        case 'S':
            if (parse_seconds("--serving-ttl", optarg, &config->serving_ttl) != 0)
                return EXIT_USAGE;
            if (config->serving_ttl < 2 || config->serving_ttl > CRT_LEAF_TTL_MAX)
                return usage_error("--serving-ttl %s: from 2s to 24h", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'v':
            printf("seam-ca %s\n", SEAM_VERSION);
            return 0;
        default:
            return usage_error("unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument %s", argv[optind]);
    return KEEP_GOING;
}

/* The checks that need every flag: required ones, and those that depend on another. KEEP_GOING or EXIT_USAGE. */
static int check_flags(const ca_server_config_t *config)
{
    if (config->ca_dir == NULL)
        return usage_error("%s is required", "--ca-dir");
    if (config->trust_domain == NULL)
        return usage_error("%s is required", "--trust-domain");
    if (config->journal_path == NULL)
        return usage_error("%s is required", "--journal");
    if (crt_spiffe_check_trust_domain(config->trust_domain, strlen(config->trust_domain)) != 0)
        return usage_error("--trust-domain %s: not a valid trust domain", config->trust_domain);
    if (config->jwks_path != NULL && config->issuer == NULL)
        return usage_error("%s is required with --jwks", "--issuer");
    if (config->max_ttl > CRT_LEAF_TTL_MAX)
        return usage_error("--max-ttl: at most %s", "24h");
    if (config->default_ttl > config->max_ttl)
        return usage_error("--ttl: longer than %s", "--max-ttl");
    for (size_t i = 0; i < config->num_dns_names; ++i)
        if (config->dns_names[i][0] == '\0' || strlen(config->dns_names[i]) > 253)
            return usage_error("--dns-name %s: not a DNS name", config->dns_names[i]);
    for (size_t i = 0; i < config->num_reserved_ids; ++i) {
        char why[256];
        if (ca_sign_reserved_entry_check(config->reserved_ids[i], config->trust_domain, why, sizeof(why)) != 0) {
            cmn_log_error("--reserved-id %s: %s (see --help)", config->reserved_ids[i], why);
            return EXIT_USAGE;
        }
    }
    return KEEP_GOING;
}

int main(int argc, char **argv)
{
    ca_server_config_t config = {.listen = CA_DEFAULT_LISTEN,
                                 .audience = CA_DEFAULT_AUDIENCE,
                                 .default_ttl = CRT_LEAF_TTL_DEFAULT,
                                 .max_ttl = CRT_LEAF_TTL_MAX,
                                 .serving_ttl = CA_SERVING_TTL_DEFAULT,
                                 .rate_per_minute = CA_RATE_PER_MINUTE_DEFAULT,
                                 .rate_burst = CA_RATE_BURST_DEFAULT,
                                 .bad_credential_per_minute = CA_BAD_CREDENTIAL_PER_MINUTE_DEFAULT,
                                 .bad_credential_burst = CA_BAD_CREDENTIAL_BURST_DEFAULT,
                                 .idle_timeout_ms = CA_DEFAULT_IDLE_TIMEOUT_MS,
                                 .max_connections = CA_MAX_CONNECTIONS_DEFAULT};
    int status;

    cmn_log_init("seam-ca");
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        return run_token_command(argc, argv);
    if ((status = parse_flags(argc, argv, &config)) != KEEP_GOING || (status = check_flags(&config)) != KEEP_GOING)
        return status;
    if (config.join_tokens_path != NULL && open_join_tokens(config.join_tokens_path, &config.join_tokens) != 0)
        return EXIT_RUNTIME;
    /* loads the CA, listens, serves until SIGTERM or SIGINT, then drains and shuts down */
    status = ca_server_run(&config) == 0 ? 0 : EXIT_RUNTIME;
    ca_token_store_free(config.join_tokens);
    return status;
}
