/* seam-certs: command-line parsing for the offline PKI and diagnosis tool. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/commands.h"
#include "certs/diagnose.h"
#include "certs/issue.h"
#include "common/duration.h"
#include "common/version.h"

static const char usage_text[] =
    "usage: seam-certs COMMAND [OPTIONS]\n"
    "\n"
    "  init-root --out DIR --trust-domain TD [--days N] [--intermediate-days N] [--force]\n"
    "      make a root CA and an intermediate limited to spiffe://TD (keys 0600)\n"
    "  issue --ca-dir DIR --spiffe-id ID [--ttl 1h] --out PREFIX\n"
    "      issue a leaf: PREFIX.pem (leaf + intermediate) and PREFIX.key\n"
    "  inspect FILE|-\n"
    "      subject, issuer, SANs, SPIFFE ID, validity, time left and key of every certificate\n"
    "  verify --bundle FILE CHAIN [--spiffe-id ID]\n"
    "      verify a chain against a trust bundle; prints ok or the failure category\n"
    "  check-expiry [--warn 30d] FILE...\n"
    "      exit 0 ok, 1 expired (or unreadable), 3 expiring within --warn\n"
    "  diagnose HOST:PORT [--bundle FILE] [--cert C --key K] [--spiffe-id ID] [--timeout 5s]\n"
    "      handshake as a mesh client and name the cause of a failure and its fix\n"
    "\n"
    "  --help, --version\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "seam-certs: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'seam-certs --help'.\n");
    return CRT_EXIT_USAGE;
}

/* Parses a positive whole number of days. */
static int parse_days(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 36500)
        return -1;
    *out = v;
    return 0;
}

enum { OPT_OUT = 256, OPT_TD, OPT_DAYS, OPT_INT_DAYS, OPT_FORCE, OPT_CA_DIR, OPT_ID, OPT_TTL, OPT_BUNDLE, OPT_WARN,
       OPT_CERT, OPT_KEY, OPT_TIMEOUT, OPT_HELP };

static const struct option long_options[] = {
    {"out", required_argument, NULL, OPT_OUT},
    {"trust-domain", required_argument, NULL, OPT_TD},
    {"days", required_argument, NULL, OPT_DAYS},
    {"intermediate-days", required_argument, NULL, OPT_INT_DAYS},
    {"force", no_argument, NULL, OPT_FORCE},
    {"ca-dir", required_argument, NULL, OPT_CA_DIR},
    {"spiffe-id", required_argument, NULL, OPT_ID},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"warn", required_argument, NULL, OPT_WARN},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Every option of every command, parsed once; each command checks which it accepts. */
struct parsed {
    const char *out, *trust_domain, *ca_dir, *spiffe_id, *bundle, *cert, *key;
    long days, intermediate_days;
    int64_t ttl_ms, warn_ms, timeout_ms;
    int force, help;
    unsigned seen; /* bit per option index */
};

static int parse_options(int argc, char **argv, const char *allowed, struct parsed *p)
{
    int c;
    opterr = 0;
    optind = 2; /* argv[1] is the command */
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (c == '?' || c == ':') {
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
        const char *name = NULL;
        for (const struct option *o = long_options; o->name != NULL; ++o)
            if (o->val == c)
                name = o->name;
        if (c != OPT_HELP && strstr(allowed, name) == NULL)
            return usage_error("option --%s does not apply to this command", name);
        switch (c) {
        case OPT_OUT: p->out = optarg; break;
        case OPT_TD: p->trust_domain = optarg; break;
        case OPT_CA_DIR: p->ca_dir = optarg; break;
        case OPT_ID: p->spiffe_id = optarg; break;
        case OPT_BUNDLE: p->bundle = optarg; break;
        case OPT_CERT: p->cert = optarg; break;
        case OPT_KEY: p->key = optarg; break;
        case OPT_FORCE: p->force = 1; break;
        case OPT_HELP: p->help = 1; break;
        case OPT_DAYS:
            if (parse_days(optarg, &p->days) != 0)
                return usage_error("--days: '%s' is not a number of days from 1 to 36500", optarg);
            break;
        case OPT_INT_DAYS:
            if (parse_days(optarg, &p->intermediate_days) != 0)
                return usage_error("--intermediate-days: '%s' is not a number of days from 1 to 36500", optarg);
            break;
        case OPT_TTL:
            if (cmn_duration_parse(optarg, &p->ttl_ms) != 0 || p->ttl_ms < 1000)
                return usage_error("--ttl: '%s' is not a duration of at least 1s (e.g. 1h, 30m)", optarg);
            break;
        case OPT_WARN:
            if (cmn_duration_parse(optarg, &p->warn_ms) != 0)
                return usage_error("--warn: '%s' is not a duration (e.g. 30d, 12h)", optarg);
            break;
        case OPT_TIMEOUT:
            if (cmn_duration_parse(optarg, &p->timeout_ms) != 0 || p->timeout_ms < 100 || p->timeout_ms > 600000)
                return usage_error("--timeout: '%s' is not a duration from 100ms to 10m", optarg);
            break;
        }
    }
    return 0;
}

static int require(const char *value, const char *flag)
{
    if (value == NULL)
        return usage_error("%s is required", flag);
    return 0;
}

int main(int argc, char **argv)
{
    struct parsed p = {.days = CRT_ROOT_DAYS_DEFAULT,
                       .intermediate_days = CRT_INTERMEDIATE_DAYS_DEFAULT,
                       .ttl_ms = (int64_t)CRT_LEAF_TTL_DEFAULT * 1000,
                       .warn_ms = (int64_t)30 * 86400 * 1000,
                       .timeout_ms = CRT_DIAG_TIMEOUT_MS_DEFAULT};
    time_t now = time(NULL);
    int ret;

    if (argc < 2)
        return usage_error("%s", "a command is required");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return CRT_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("seam-certs %s\n", SEAM_VERSION);
        return CRT_EXIT_OK;
    }

    if (strcmp(cmd, "init-root") == 0) {
        if ((ret = parse_options(argc, argv, "out trust-domain days intermediate-days force", &p)) != 0)
            return ret;
        if (p.help)
            return fputs(usage_text, stdout), CRT_EXIT_OK;
        if (require(p.out, "--out") || require(p.trust_domain, "--trust-domain"))
            return CRT_EXIT_USAGE;
        if (optind != argc)
            return usage_error("unexpected argument '%s'", argv[optind]);
        crt_init_root_opts_t o = {p.out, p.trust_domain, p.days, p.intermediate_days, p.force};
        return crt_cmd_init_root(&o, now, stdout);
    }
    if (strcmp(cmd, "issue") == 0) {
        if ((ret = parse_options(argc, argv, "ca-dir spiffe-id ttl out", &p)) != 0)
            return ret;
        if (p.help)
            return fputs(usage_text, stdout), CRT_EXIT_OK;
        if (require(p.ca_dir, "--ca-dir") || require(p.spiffe_id, "--spiffe-id") || require(p.out, "--out"))
            return CRT_EXIT_USAGE;
        if (optind != argc)
            return usage_error("unexpected argument '%s'", argv[optind]);
        crt_issue_opts_t o = {p.ca_dir, p.spiffe_id, (long)(p.ttl_ms / 1000), p.out};
        return crt_cmd_issue(&o, now, stdout);
    }
    if (strcmp(cmd, "inspect") == 0) {
        if ((ret = parse_options(argc, argv, "", &p)) != 0)
            return ret;
        if (p.help)
            return fputs(usage_text, stdout), CRT_EXIT_OK;
        if (argc - optind != 1)
            return usage_error("%s", "inspect takes exactly one FILE (or - for stdin)");
        return crt_cmd_inspect(argv[optind], now, stdout);
    }
    if (strcmp(cmd, "verify") == 0) {
        if ((ret = parse_options(argc, argv, "bundle spiffe-id", &p)) != 0)
            return ret;
        if (p.help)
            return fputs(usage_text, stdout), CRT_EXIT_OK;
        if (require(p.bundle, "--bundle"))
            return CRT_EXIT_USAGE;
        if (argc - optind != 1)
            return usage_error("%s", "verify takes exactly one CHAIN file");
        crt_verify_cmd_opts_t o = {p.bundle, argv[optind], p.spiffe_id};
        return crt_cmd_verify(&o, now, stdout);
    }
    if (strcmp(cmd, "check-expiry") == 0) {
        if ((ret = parse_options(argc, argv, "warn", &p)) != 0)
            return ret;
        if (p.help)
            return fputs(usage_text, stdout), CRT_EXIT_OK;
        if (optind == argc)
            return usage_error("%s", "check-expiry needs at least one FILE");
        return crt_cmd_check_expiry(argv + optind, argc - optind, p.warn_ms / 1000, now, stdout);
    }
    if (strcmp(cmd, "diagnose") == 0) {
        if ((ret = parse_options(argc, argv, "bundle cert key spiffe-id timeout", &p)) != 0)
            return ret;
        if (p.help)
            return fputs(usage_text, stdout), CRT_EXIT_OK;
        if (argc - optind != 1)
            return usage_error("%s", "diagnose takes exactly one HOST:PORT");
        if ((p.cert == NULL) != (p.key == NULL))
            return usage_error("%s", "--cert and --key go together");
        crt_diagnose_cmd_opts_t o = {argv[optind], p.bundle, p.cert, p.key, p.spiffe_id, (int)p.timeout_ms};
        return crt_cmd_diagnose(&o, now, stdout);
    }
    return usage_error("unknown command '%s'", cmd);
}
