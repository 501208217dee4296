/* seam-certs subcommands: offline PKI, inspection, verification and diagnosis. */
#include "certs/commands.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/diagnose.h"
#include "certs/error.h"
#include "certs/info.h"
#include "certs/issue.h"
#include "certs/pem.h"
#include "certs/spiffe.h"
#include "certs/verify.h"
#include "common/connect.h"

#define PATH_BUF 4096

static void report(const char *path, int err, const char *detail)
{
    if (err == CRT_E_IO)
        fprintf(stderr, "seam-certs: %s: %s\n", path, strerror(errno));
    else if (detail != NULL && detail[0] != '\0')
        fprintf(stderr, "seam-certs: %s: %s (%s)\n", path, crt_error_message(err), detail);
    else
        fprintf(stderr, "seam-certs: %s: %s\n", path, crt_error_message(err));
}

/* Reads every certificate in a file; prints the one-line error itself. */
static int load_certs(const char *path, STACK_OF(X509) * *out)
{
    char *pem = NULL, detail[256] = "";
    size_t len;
    int err = crt_file_read(path, CRT_FILE_MAX, &pem, &len);
    if (err == 0)
        err = crt_pem_read_certs(pem, len, out, detail, sizeof(detail));
    if (err != 0)
        report(path, err, detail);
    free(pem);
    return err;
}

/* Reads a P-256 private key; the buffer that held it is wiped. */
static int load_key(const char *path, EVP_PKEY **out)
{
    char *pem = NULL;
    size_t len = 0;
    int err = crt_file_read(path, CRT_FILE_MAX, &pem, &len);
    if (err == 0)
        err = crt_pem_read_key(pem, len, out);
    if (err != 0)
        report(path, err, NULL);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    return err;
}

static int load_bundle(const char *path, crt_bundle_t **out)
{
    char *pem = NULL, detail[256] = "";
    size_t len;
    int err = crt_file_read(path, CRT_FILE_MAX, &pem, &len);
    if (err == 0)
        err = crt_bundle_from_pem(pem, len, out, detail, sizeof(detail));
    if (err != 0)
        report(path, err, detail);
    free(pem);
    return err;
}

static void join_path(char *buf, const char *dir, const char *name)
{
    snprintf(buf, PATH_BUF, "%s/%s", dir, name);
}

static int write_certs(const char *path, X509 *first, X509 *second)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    int err = CRT_E_NOMEM;
    if (certs != NULL && sk_X509_push(certs, first) && (second == NULL || sk_X509_push(certs, second)))
        err = crt_pem_write_certs_file(certs, path);
    sk_X509_free(certs); /* borrowed certificates: free the stack only */
    if (err != 0)
        report(path, err, NULL);
    return err;
}

static int write_key(const char *path, EVP_PKEY *key)
{
    int err = crt_pem_write_key_file(key, path);
    if (err != 0)
        report(path, err, NULL);
    return err;
}

int crt_cmd_init_root(const crt_init_root_opts_t *opts, time_t now, FILE *out)
{
    EVP_PKEY *root_key = NULL, *int_key = NULL;
    X509 *root = NULL, *intermediate = NULL;
    char path[PATH_BUF];
    int ret = CRT_EXIT_FAILURE, err;

    if ((err = crt_spiffe_check_trust_domain(opts->trust_domain, strlen(opts->trust_domain))) != 0) {
        fprintf(stderr, "seam-certs: --trust-domain %s: %s\n", opts->trust_domain, crt_spiffe_error_message(err));
        return CRT_EXIT_USAGE;
    }
    if (mkdir(opts->out_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "seam-certs: %s: %s\n", opts->out_dir, strerror(errno));
        return CRT_EXIT_FAILURE;
    }
    join_path(path, opts->out_dir, "root.key");
    if (!opts->force && access(path, F_OK) == 0) {
        fprintf(stderr, "seam-certs: %s: a CA already exists here; pass --force to replace it\n", path);
        return CRT_EXIT_FAILURE;
    }
    if (crt_key_generate(&root_key) != 0 || crt_key_generate(&int_key) != 0 ||
        crt_issue_root(root_key, opts->trust_domain, now, opts->days, &root) != 0 ||
        crt_issue_intermediate(root, root_key, int_key, opts->trust_domain, now,
                               opts->intermediate_days < opts->days ? opts->intermediate_days : opts->days,
                               &intermediate) != 0) {
        fprintf(stderr, "seam-certs: could not create the CA for %s\n", opts->trust_domain);
        goto Exit;
    }
    join_path(path, opts->out_dir, "root.key");
    if (write_key(path, root_key) != 0)
        goto Exit;
    join_path(path, opts->out_dir, "intermediate.key");
    if (write_key(path, int_key) != 0)
        goto Exit;
    join_path(path, opts->out_dir, "root.pem");
    if (write_certs(path, root, NULL) != 0)
        goto Exit;
    join_path(path, opts->out_dir, "bundle.pem");
    if (write_certs(path, root, NULL) != 0)
        goto Exit;
    join_path(path, opts->out_dir, "intermediate.pem");
    if (write_certs(path, intermediate, NULL) != 0)
        goto Exit;

    crt_cert_info_t info;
    char until[32];
    if (crt_cert_info(intermediate, &info) == 0) {
        crt_format_time(info.not_after, until, sizeof(until));
        fprintf(out, "created CA for trust domain %s in %s\n", opts->trust_domain, opts->out_dir);
        fprintf(out, "  root.pem, bundle.pem   root certificate (the trust bundle)\n");
        fprintf(out, "  root.key               root key (0600): keep it offline\n");
        fprintf(out, "  intermediate.pem/.key  signing CA for seam-ca, valid until %s, limited to spiffe://%s\n",
                until, opts->trust_domain);
    }
    ret = CRT_EXIT_OK;

Exit:
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(int_key);
    X509_free(root);
    X509_free(intermediate);
    return ret;
}

int crt_cmd_issue(const crt_issue_opts_t *opts, time_t now, FILE *out)
{
    STACK_OF(X509) *int_certs = NULL;
    EVP_PKEY *int_key = NULL, *leaf_key = NULL;
    crt_bundle_t *bundle = NULL;
    X509 *leaf = NULL;
    unsigned char serial[CRT_SERIAL_LEN];
    char path[PATH_BUF];
    crt_spiffe_id_t id;
    int ret = CRT_EXIT_FAILURE, err;

    if ((err = crt_spiffe_parse_workload(opts->spiffe_id, strlen(opts->spiffe_id), &id)) != 0) {
        fprintf(stderr, "seam-certs: --spiffe-id %s: %s\n", opts->spiffe_id, crt_spiffe_error_message(err));
        return CRT_EXIT_USAGE;
    }
    join_path(path, opts->ca_dir, "intermediate.pem");
    if (load_certs(path, &int_certs) != 0)
        goto Exit;
    join_path(path, opts->ca_dir, "intermediate.key");
    if (load_key(path, &int_key) != 0)
        goto Exit;
    join_path(path, opts->ca_dir, "bundle.pem");
    if (load_bundle(path, &bundle) != 0)
        goto Exit;
    X509 *intermediate = sk_X509_value(int_certs, 0);
    if (!X509_check_private_key(intermediate, int_key)) {
        ERR_clear_error();
        report(path, CRT_E_KEY_MISMATCH, "intermediate.key does not belong to intermediate.pem");
        goto Exit;
    }
    if (crt_key_generate(&leaf_key) != 0 || crt_serial_random(serial) != 0) {
        fprintf(stderr, "seam-certs: could not generate a key\n");
        goto Exit;
    }
    if ((err = crt_issue_leaf(intermediate, int_key, leaf_key, opts->spiffe_id, NULL, 0, now, opts->ttl_seconds,
                              serial, &leaf)) != 0) {
        fprintf(stderr, "seam-certs: %s: %s\n", opts->ca_dir, crt_error_message(err));
        goto Exit;
    }
    /* Check what we made exactly as a peer would, name constraints included. */
    crt_verify_opts_t vopts = {.usage = CRT_USAGE_ANY, .require_spiffe = 1, .expected_id = opts->spiffe_id};
    crt_verify_result_t vres;
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL || !sk_X509_push(chain, intermediate)) {
        sk_X509_free(chain);
        goto Exit;
    }
    err = crt_verify_chain(bundle, leaf, chain, now, &vopts, &vres);
    sk_X509_free(chain);
    if (err != 0) {
        fprintf(stderr, "seam-certs: %s: the CA cannot issue %s: %s (%s)\n", opts->ca_dir, opts->spiffe_id,
                crt_error_slug(err), vres.detail);
        goto Exit;
    }
    snprintf(path, sizeof(path), "%s.key", opts->out_prefix);
    if (write_key(path, leaf_key) != 0)
        goto Exit;
    snprintf(path, sizeof(path), "%s.pem", opts->out_prefix);
    if (write_certs(path, leaf, intermediate) != 0)
        goto Exit;

    crt_cert_info_t info;
    char until[32], hex[2 * CRT_SERIAL_LEN + 1];
    if (crt_cert_info(leaf, &info) == 0) {
        crt_format_time(info.not_after, until, sizeof(until));
        crt_serial_hex(serial, hex);
        fprintf(out, "issued %s serial %s valid until %s\n  %s.pem (leaf + intermediate), %s.key (0600)\n",
                opts->spiffe_id, hex, until, opts->out_prefix, opts->out_prefix);
    }
    ret = CRT_EXIT_OK;

Exit:
    sk_X509_pop_free(int_certs, X509_free);
    EVP_PKEY_free(int_key);
    EVP_PKEY_free(leaf_key);
    X509_free(leaf);
    crt_bundle_release(bundle);
    return ret;
}

static void print_cert(FILE *out, int index, X509 *cert, time_t now)
{
    crt_cert_info_t info;
    char from[32], until[32], left[32];

    if (crt_cert_info(cert, &info) != 0) {
        fprintf(out, "certificate %d: cannot be decoded\n", index);
        return;
    }
    crt_format_time(info.not_before, from, sizeof(from));
    crt_format_time(info.not_after, until, sizeof(until));
    crt_format_duration((long long)(info.not_after - now), left, sizeof(left));
    fprintf(out, "certificate %d%s\n", index, info.is_ca ? " (CA)" : "");
    fprintf(out, "  subject:    %s\n", info.subject[0] ? info.subject : "(empty)");
    fprintf(out, "  issuer:     %s\n", info.issuer[0] ? info.issuer : "(empty)");
    fprintf(out, "  serial:     %s\n", info.serial);
    fprintf(out, "  sans:       %s\n", info.sans[0] ? info.sans : "(none)");
    fprintf(out, "  spiffe_id:  %s\n", info.spiffe_id[0] ? info.spiffe_id : "(none)");
    fprintf(out, "  not_before: %s\n", from);
    fprintf(out, "  not_after:  %s\n", until);
    if (now < info.not_before)
        fprintf(out, "  time_left:  not valid yet\n");
    else if (now >= info.not_after)
        fprintf(out, "  time_left:  expired %s ago\n", left + 1);
    else
        fprintf(out, "  time_left:  %s\n", left);
    fprintf(out, "  key:        %s\n", info.key_type);
}

int crt_cmd_inspect(const char *path, time_t now, FILE *out)
{
    STACK_OF(X509) *certs = NULL;
    if (load_certs(path, &certs) != 0)
        return CRT_EXIT_FAILURE;
    for (int i = 0; i < sk_X509_num(certs); ++i)
        print_cert(out, i, sk_X509_value(certs, i), now);
    sk_X509_pop_free(certs, X509_free);
    return CRT_EXIT_OK;
}

int crt_cmd_verify(const crt_verify_cmd_opts_t *opts, time_t now, FILE *out)
{
    crt_bundle_t *bundle = NULL;
    STACK_OF(X509) *chain = NULL;
    int ret = CRT_EXIT_FAILURE;

    if (load_bundle(opts->bundle_path, &bundle) != 0 || load_certs(opts->chain_path, &chain) != 0)
        goto Exit;
    crt_verify_opts_t vopts = {.usage = CRT_USAGE_ANY, .require_spiffe = 1, .expected_id = opts->spiffe_id};
    crt_verify_result_t vres;
    int err = crt_verify_chain(bundle, sk_X509_value(chain, 0), chain, now, &vopts, &vres);
    if (err == 0) {
        fprintf(out, "ok: %s\n", vres.spiffe_id);
        ret = CRT_EXIT_OK;
    } else {
        fprintf(out, "%s: %s\n", crt_error_slug(err), vres.detail[0] ? vres.detail : crt_error_message(err));
    }

Exit:
    crt_bundle_release(bundle);
    sk_X509_pop_free(chain, X509_free);
    return ret;
}

int crt_cmd_check_expiry(char *const *paths, int num_paths, int64_t warn_seconds, time_t now, FILE *out)
{
    int ret = CRT_EXIT_OK;

    for (int p = 0; p < num_paths; ++p) {
        STACK_OF(X509) *certs = NULL;
        if (load_certs(paths[p], &certs) != 0) {
            ret = CRT_EXIT_FAILURE;
            continue;
        }
        /* The file is as good as its soonest-expiring certificate. */
        time_t soonest = 0;
        int index = -1;
        for (int i = 0; i < sk_X509_num(certs); ++i) {
            crt_cert_info_t info;
            if (crt_cert_info(sk_X509_value(certs, i), &info) == 0 && (index < 0 || info.not_after < soonest)) {
                soonest = info.not_after;
                index = i;
            }
        }
        sk_X509_pop_free(certs, X509_free);
        char until[32], left[32];
        crt_format_time(soonest, until, sizeof(until));
        crt_format_duration((long long)(soonest - now), left, sizeof(left));
        if (soonest <= now) {
            fprintf(out, "%s: expired: certificate %d expired %s ago (%s)\n", paths[p], index, left + 1, until);
            ret = CRT_EXIT_FAILURE;
        } else if ((int64_t)(soonest - now) <= warn_seconds) {
            fprintf(out, "%s: warning: certificate %d expires in %s (%s)\n", paths[p], index, left, until);
            if (ret == CRT_EXIT_OK)
                ret = CRT_EXIT_WARN;
        } else {
            fprintf(out, "%s: ok: expires in %s (%s)\n", paths[p], left, until);
        }
    }
    return ret;
}

int crt_cmd_diagnose(const crt_diagnose_cmd_opts_t *opts, time_t now, FILE *out)
{
    char host[256], port[16];
    crt_bundle_t *bundle = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    crt_diag_result_t res;
    int ret = CRT_EXIT_FAILURE;

    uint16_t port_number;
    if (cmn_hostport_split(opts->target, host, sizeof(host), &port_number) != 0) {
        fprintf(stderr, "seam-certs: %s: expected HOST:PORT\n", opts->target);
        return CRT_EXIT_USAGE;
    }
    snprintf(port, sizeof(port), "%u", port_number);
    if (opts->bundle_path != NULL && load_bundle(opts->bundle_path, &bundle) != 0)
        goto Exit;
    if (opts->cert_path != NULL && (load_certs(opts->cert_path, &chain) != 0 || load_key(opts->key_path, &key) != 0))
        goto Exit;
    if (key != NULL && !X509_check_private_key(sk_X509_value(chain, 0), key)) {
        ERR_clear_error();
        report(opts->key_path, CRT_E_KEY_MISMATCH, NULL);
        goto Exit;
    }

    STACK_OF(X509) *intermediates = NULL;
    if (chain != NULL) {
        intermediates = sk_X509_dup(chain);
        if (intermediates != NULL)
            (void)sk_X509_shift(intermediates);
    }
    crt_diag_opts_t dopts = {.host = host,
                             .port = port,
                             .bundle = bundle,
                             .client_cert = chain != NULL ? sk_X509_value(chain, 0) : NULL,
                             .client_chain = intermediates,
                             .client_key = key,
                             .expected_id = opts->spiffe_id,
                             .timeout_ms = opts->timeout_ms,
                             .now = now};
    crt_diagnose(&dopts, &res);
    sk_X509_free(intermediates);

    fprintf(out, "target:  %s\n", opts->target);
    fprintf(out, "result:  %s\n", crt_diag_slug(res.diag));
    fprintf(out, "cause:   %s\n", crt_diag_cause(res.diag));
    if (res.detail[0] != '\0')
        fprintf(out, "detail:  %s\n", res.detail);
    if (res.diag != CRT_DIAG_OK)
        fprintf(out, "fix:     %s\n", crt_diag_fix(res.diag));
    if (res.tls_version[0] != '\0')
        fprintf(out, "tls:     %s %s%s%s\n", res.tls_version, res.cipher, res.alpn[0] ? ", ALPN " : "", res.alpn);
    if (res.have_leaf) {
        char until[32], left[32];
        crt_format_time(res.leaf.not_after, until, sizeof(until));
        crt_format_duration((long long)(res.leaf.not_after - now), left, sizeof(left));
        fprintf(out, "peer:    %s, serial %s, %d certificate(s) sent, not after %s (%s%s)\n",
                res.leaf.spiffe_id[0] ? res.leaf.spiffe_id : res.leaf.sans[0] ? res.leaf.sans : res.leaf.subject,
                res.leaf.serial, res.chain_len, until, res.leaf.not_after > now ? "in " : "", left);
    }
    if (res.cert_requested)
        fprintf(out, "client:  the server asked for a client certificate%s\n",
                opts->cert_path != NULL ? "" : " (none was given: pass --cert and --key)");
    ret = res.diag == CRT_DIAG_OK ? CRT_EXIT_OK : CRT_EXIT_FAILURE;

Exit:
    crt_bundle_release(bundle);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    return ret;
}
