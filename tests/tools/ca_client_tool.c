/* seam-test-ca-client: drives the sidecar's CA client against a real seam-ca, for tests (never shipped). */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/csr.h"
#include "certs/info.h"
#include "certs/pem.h"
#include "certs/spiffe.h"
#include "sidecar/identity/ca_client.h"

static const char usage[] =
    "usage: seam-test-ca-client --ca-url URL --ca-bundle FILE --spiffe-id ID [--token-file FILE]\n"
    "       [--ca-id ID] [--renewals N] [--ttl SECONDS] [--bundle-only]\n"
    "Gets a certificate (token), then renews it N times over mTLS; prints one line per step.\n";

static char *read_text(const char *path, size_t *len)
{
    char *buf = NULL;
    if (crt_file_read(path, CRT_FILE_MAX, &buf, len) != 0) {
        fprintf(stderr, "seam-test-ca-client: %s: cannot read\n", path);
        exit(1);
    }
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"ca-url", required_argument, NULL, 'u'},   {"ca-bundle", required_argument, NULL, 'b'},
                                         {"spiffe-id", required_argument, NULL, 'i'}, {"token-file", required_argument, NULL, 't'},
                                         {"ca-id", required_argument, NULL, 'c'},     {"renewals", required_argument, NULL, 'n'},
                                         {"ttl", required_argument, NULL, 'l'},       {"bundle-only", no_argument, NULL, 'B'},
                                         {NULL, 0, NULL, 0}};
    const char *url = NULL, *bundle_path = NULL, *id = NULL, *token_path = NULL, *ca_id = NULL;
    int renewals = 0, bundle_only = 0, c;
    long ttl = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 'b': bundle_path = optarg; break;
        case 'i': id = optarg; break;
        case 't': token_path = optarg; break;
        case 'c': ca_id = optarg; break;
        case 'n': renewals = atoi(optarg); break;
        case 'l': ttl = atol(optarg); break;
        case 'B': bundle_only = 1; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (url == NULL || bundle_path == NULL || id == NULL) {
        fputs(usage, stderr);
        return 2;
    }
    crt_spiffe_id_t parsed;
    if (crt_spiffe_parse_workload(id, strlen(id), &parsed) != 0) {
        fprintf(stderr, "seam-test-ca-client: --spiffe-id: not a SPIFFE ID\n");
        return 2;
    }
    char derived[CRT_SPIFFE_ID_MAX + 1];
    sc_ca_identity_for(parsed.trust_domain, parsed.trust_domain_len, derived, sizeof(derived));

    size_t len;
    char *pem = read_text(bundle_path, &len), detail[256];
    crt_bundle_t *trust = NULL;
    if (crt_bundle_from_pem(pem, len, &trust, detail, sizeof(detail)) != 0) {
        fprintf(stderr, "seam-test-ca-client: %s: not a bundle\n", bundle_path);
        return 1;
    }
    free(pem);
    char *token = NULL;
    if (token_path != NULL) {
        token = read_text(token_path, &len);
        while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
            token[--len] = '\0';
    }
    sc_ca_endpoint_t ep = {.url = url, .trust = trust, .ca_id = ca_id != NULL ? ca_id : derived, .bearer = token, .now = time(NULL)};
    sc_ca_result_t res;

    if (bundle_only) {
        sc_ca_failure_t f = sc_ca_get_bundle(&ep, &res);
        if (f != SC_CA_OK) {
            printf("failed %s: %s\n", sc_ca_failure_name(f), res.detail);
            return 1;
        }
        printf("bundle %d root(s)\n", sk_X509_num(res.roots));
        sc_ca_result_clear(&res);
        crt_bundle_release(trust);
        return 0;
    }

    EVP_PKEY *key = NULL;
    STACK_OF(X509) *held = NULL; /* the chain we currently hold */
    int status = 0;
    for (int step = 0; step <= renewals; ++step) {
        EVP_PKEY *next_key = NULL;
        X509_REQ *req = NULL;
        char *csr = NULL, err[512];
        size_t csr_len;
        if (crt_key_generate(&next_key) != 0 || crt_csr_create(next_key, id, &req) != 0 || crt_csr_to_pem(req, &csr, &csr_len) != 0)
            return 1;
        X509_REQ_free(req);
        if (step > 0) { /* renewal: the current certificate is the credential, no token */
            ep.cert = sk_X509_value(held, 0);
            ep.chain = held;
            ep.key = key;
            ep.bearer = NULL;
        }
        ep.now = time(NULL);
        sc_ca_failure_t f = sc_ca_sign(&ep, csr, ttl, &res);
        free(csr);
        if (f != SC_CA_OK) {
            printf("failed %s: %s\n", sc_ca_failure_name(f), res.detail);
            EVP_PKEY_free(next_key);
            status = 1;
            break;
        }
        if (sc_ca_check_issued(&res, id, next_key, ep.now, err, sizeof(err)) != 0) {
            printf("failed check: %s\n", err);
            sc_ca_result_clear(&res);
            EVP_PKEY_free(next_key);
            status = 1;
            break;
        }
        crt_cert_info_t info;
        if (crt_cert_info(sk_X509_value(res.chain, 0), &info) != 0)
            return 1;
        printf("%s %s %s %lld\n", step == 0 ? "issued" : "renewed", info.serial, info.spiffe_id,
               (long long)(info.not_after - info.not_before));
        sk_X509_pop_free(held, X509_free);
        held = res.chain;
        res.chain = NULL;
        sc_ca_result_clear(&res);
        EVP_PKEY_free(key);
        key = next_key;
    }
    sk_X509_pop_free(held, X509_free);
    EVP_PKEY_free(key);
    if (token != NULL) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    crt_bundle_release(trust);
    return status;
}
