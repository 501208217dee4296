/* seam-testcert: makes deliberately bad certificates for tests (never shipped). */
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/error.h"
#include "certs/issue.h"
#include "certs/pem.h"

#define MAX_NAMES 8

static const char usage_text[] =
    "usage: seam-testcert --out PREFIX [--ca-dir DIR | --self-signed] [--uri URI]... [--dns NAME]...\n"
    "       [--not-before SECONDS] [--not-after SECONDS] [--ca] [--key-usage LIST] [--eku LIST]\n"
    "       [--key-type p256|rsa] [--no-chain] [--subject-cn CN]\n"
    "Writes PREFIX.pem (leaf, then the intermediate unless --no-chain) and PREFIX.key.\n"
    "--not-before/--not-after are offsets from now in seconds (default -60 and 3600).\n"
    "--key-usage: comma list of digitalSignature,keyCertSign or none; --eku: server,client,codeSigning or none.\n";

static int load(const char *dir, const char *name, char **buf, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (crt_file_read(path, CRT_FILE_MAX, buf, len) != 0) {
        fprintf(stderr, "seam-testcert: %s: cannot read\n", path);
        return -1;
    }
    return 0;
}

static unsigned parse_bits(const char *list, const char *const *names, const unsigned *bits, size_t n)
{
    unsigned out = 0;
    if (strcmp(list, "none") == 0)
        return 0;
    for (size_t i = 0; i != n; ++i)
        if (strstr(list, names[i]) != NULL)
            out |= bits[i];
    return out;
}

static EVP_PKEY *make_rsa(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    EVP_PKEY *key = NULL;
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) <= 0 ||
        EVP_PKEY_keygen(ctx, &key) <= 0)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    return key;
}

int main(int argc, char **argv)
{
    static const char *const ku_names[] = {"digitalSignature", "keyCertSign"};
    static const unsigned ku_bits[] = {CRT_KU_DIGITAL_SIGNATURE, CRT_KU_KEY_CERT_SIGN};
    static const char *const eku_names[] = {"server", "client", "codeSigning"};
    static const unsigned eku_bits[] = {CRT_EKU_SERVER, CRT_EKU_CLIENT, CRT_EKU_CODE_SIGNING};
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},        {"ca-dir", required_argument, NULL, 'c'},
        {"self-signed", no_argument, NULL, 's'},      {"uri", required_argument, NULL, 'u'},
        {"dns", required_argument, NULL, 'd'},        {"not-before", required_argument, NULL, 'b'},
        {"not-after", required_argument, NULL, 'a'},  {"ca", no_argument, NULL, 'C'},
        {"key-usage", required_argument, NULL, 'k'},  {"eku", required_argument, NULL, 'e'},
        {"key-type", required_argument, NULL, 't'},   {"no-chain", no_argument, NULL, 'n'},
        {"subject-cn", required_argument, NULL, 'N'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out = NULL, *ca_dir = NULL, *uris[MAX_NAMES], *dns[MAX_NAMES], *key_type = "p256";
    size_t num_uris = 0, num_dns = 0;
    long not_before = -60, not_after = 3600;
    int self_signed = 0, chain = 1, c;
    time_t now = time(NULL);
    crt_cert_profile_t p = {.path_len = -1,
                            .key_usage = CRT_KU_DIGITAL_SIGNATURE,
                            .ext_key_usage = CRT_EKU_SERVER | CRT_EKU_CLIENT};

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'c': ca_dir = optarg; break;
        case 's': self_signed = 1; break;
        case 'u': if (num_uris < MAX_NAMES) uris[num_uris++] = optarg; break;
        case 'd': if (num_dns < MAX_NAMES) dns[num_dns++] = optarg; break;
        case 'b': not_before = strtol(optarg, NULL, 10); break;
        case 'a': not_after = strtol(optarg, NULL, 10); break;
        case 'C': p.is_ca = 1; break;
        case 'k': p.key_usage = parse_bits(optarg, ku_names, ku_bits, 2); break;
        case 'e': p.ext_key_usage = parse_bits(optarg, eku_names, eku_bits, 3); break;
        case 't': key_type = optarg; break;
        case 'n': chain = 0; break;
        case 'N': p.subject_cn = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (out == NULL || optind != argc || (ca_dir == NULL) == !self_signed) {
        fputs(usage_text, stderr);
        return 2;
    }
    p.uri_sans = uris, p.num_uri_sans = num_uris, p.dns_sans = dns, p.num_dns_sans = num_dns;
    p.not_before = now + not_before, p.not_after = now + not_after;
    if (crt_serial_random(p.serial) != 0)
        return 1;

    EVP_PKEY *key = NULL, *issuer_key = NULL;
    STACK_OF(X509) *issuer_certs = NULL;
    X509 *cert = NULL;
    if (strcmp(key_type, "rsa") == 0)
        key = make_rsa();
    else if (crt_key_generate(&key) != 0)
        key = NULL;
    if (key == NULL) {
        fprintf(stderr, "seam-testcert: key generation failed\n");
        return 1;
    }
    if (ca_dir != NULL) {
        char *buf;
        size_t len;
        if (load(ca_dir, "intermediate.pem", &buf, &len) != 0 || crt_pem_read_certs(buf, len, &issuer_certs, NULL, 0) != 0)
            return 1;
        free(buf);
        if (load(ca_dir, "intermediate.key", &buf, &len) != 0 || crt_pem_read_key(buf, len, &issuer_key) != 0)
            return 1;
        free(buf);
    }
    int err = crt_cert_build(&p, key, issuer_certs ? sk_X509_value(issuer_certs, 0) : NULL,
                             issuer_key ? issuer_key : key, &cert);
    if (err != 0) {
        fprintf(stderr, "seam-testcert: %s\n", crt_error_message(err));
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s.pem", out);
    FILE *fp = fopen(path, "w");
    if (fp == NULL || !PEM_write_X509(fp, cert) ||
        (chain && issuer_certs != NULL && !PEM_write_X509(fp, sk_X509_value(issuer_certs, 0)))) {
        fprintf(stderr, "seam-testcert: %s: cannot write\n", path);
        return 1;
    }
    fclose(fp);
    snprintf(path, sizeof(path), "%s.key", out);
    if (crt_pem_write_key_file(key, path) != 0) {
        fprintf(stderr, "seam-testcert: %s: cannot write\n", path);
        return 1;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(issuer_key);
    sk_X509_pop_free(issuer_certs, X509_free);
    return 0;
}
