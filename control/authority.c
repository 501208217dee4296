/* Loading and checking the intermediate the CA signs with. */
#include "control/authority.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/error.h"
#include "certs/info.h"
#include "certs/pem.h"
#include "control/error.h"

static int read_file(const char *dir, const char *name, char **out, size_t *len, char *detail, size_t detail_cap)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (crt_file_read(path, CRT_FILE_MAX, out, len) != 0) {
        snprintf(detail, detail_cap, "%s: %s", path, errno != 0 ? strerror(errno) : "cannot be read");
        return CA_E_IO;
    }
    return 0;
}

static int pem_of(X509 *cert, char **out)
{
    size_t len = 0;
    *out = NULL;
    return crt_pem_write_cert(cert, out, &len) == 0 ? 0 : CA_E_NOMEM;
}

/* Verifies the intermediate against the roots at now; on success *top is the root reached. */
static int chain_intermediate(const ca_authority_t *ca, time_t now, X509 **top, char *why, size_t why_cap)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ret = CA_E_CA_NOT_READY;

    if (ctx == NULL || !X509_STORE_CTX_init(ctx, ca->store, ca->intermediate, NULL)) {
        snprintf(why, why_cap, "out of memory");
        goto Exit;
    }
    X509_STORE_CTX_set_time(ctx, 0, now);
    if (X509_verify_cert(ctx) != 1) {
        snprintf(why, why_cap, "intermediate does not chain to a root of the bundle: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto Exit;
    }
    if (top != NULL) {
        STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
        *top = sk_X509_value(chain, sk_X509_num(chain) - 1);
        X509_up_ref(*top);
    }
    ret = 0;

Exit:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return ret;
}

int ca_authority_load(const char *dir, const char *trust_domain, time_t now, ca_authority_t *ca, char *detail,
                      size_t detail_cap)
{
    char *cert_pem = NULL, *key_pem = NULL, *bundle_pem = NULL, why[256], path[4096];
    size_t cert_len = 0, key_len = 0, bundle_len = 0;
    STACK_OF(X509) *certs = NULL, *roots = NULL;
    const char *bundle_name = "bundle.pem";
    X509 *top = NULL;
    int ret;

    memset(ca, 0, sizeof(*ca));
    snprintf(ca->trust_domain, sizeof(ca->trust_domain), "%s", trust_domain);
    if ((ret = read_file(dir, "intermediate.pem", &cert_pem, &cert_len, detail, detail_cap)) != 0 ||
        (ret = read_file(dir, "intermediate.key", &key_pem, &key_len, detail, detail_cap)) != 0)
        goto Exit;
    snprintf(path, sizeof(path), "%s/bundle.pem", dir);
    if (access(path, F_OK) != 0)
        bundle_name = "root.pem";
    if ((ret = read_file(dir, bundle_name, &bundle_pem, &bundle_len, detail, detail_cap)) != 0)
        goto Exit;
    ret = CA_E_CONFIG;
    if (crt_pem_read_certs(cert_pem, cert_len, &certs, why, sizeof(why)) != 0) {
        snprintf(detail, detail_cap, "%s/intermediate.pem: %s", dir, why);
        goto Exit;
    }
    ca->intermediate = sk_X509_shift(certs);
    if (!(X509_get_extension_flags(ca->intermediate) & EXFLAG_CA)) {
        snprintf(detail, detail_cap, "%s/intermediate.pem: the first certificate is not a CA", dir);
        goto Exit;
    }
    int kerr = crt_pem_read_key(key_pem, key_len, &ca->key);
    if (kerr != 0) {
        snprintf(detail, detail_cap, "%s/intermediate.key: %s", dir, crt_error_message(kerr));
        goto Exit;
    }
    if (X509_check_private_key(ca->intermediate, ca->key) != 1) {
        snprintf(detail, detail_cap, "%s/intermediate.key: does not match intermediate.pem", dir);
        goto Exit;
    }
    if (crt_pem_read_certs(bundle_pem, bundle_len, &roots, why, sizeof(why)) != 0) {
        snprintf(detail, detail_cap, "%s/%s: %s", dir, bundle_name, why);
        goto Exit;
    }
    if (sk_X509_num(roots) > CA_MAX_ROOTS) {
        snprintf(detail, detail_cap, "%s/%s: more than %d roots", dir, bundle_name, CA_MAX_ROOTS);
        goto Exit;
    }
    if (crt_bundle_from_certs(roots, &ca->bundle) != 0) {
        snprintf(detail, detail_cap, "%s/%s: every certificate must be a CA", dir, bundle_name);
        goto Exit;
    }
    if ((ca->store = X509_STORE_new()) == NULL) {
        ret = CA_E_NOMEM;
        goto Exit;
    }
    ca->root_not_after = 0;
    for (int i = 0; i < sk_X509_num(roots); ++i) {
        X509 *root = sk_X509_value(roots, i);
        time_t na;
        if (!X509_STORE_add_cert(ca->store, root) || pem_of(root, &ca->root_pems[ca->num_roots]) != 0) {
            ret = CA_E_NOMEM;
            goto Exit;
        }
        ++ca->num_roots;
        if (crt_asn1_time_to_unix(X509_get0_notAfter(root), &na) == 0 && (ca->root_not_after == 0 || na < ca->root_not_after))
            ca->root_not_after = na;
    }
    if (pem_of(ca->intermediate, &ca->intermediate_pem) != 0) {
        ret = CA_E_NOMEM;
        goto Exit;
    }
    if (crt_asn1_time_to_unix(X509_get0_notAfter(ca->intermediate), &ca->intermediate_not_after) != 0) {
        snprintf(detail, detail_cap, "%s/intermediate.pem: notAfter does not decode", dir);
        goto Exit;
    }
    /* Not chaining now is reported by /healthz, not fatal: the operator may be rotating roots. */
    if (chain_intermediate(ca, now, &top, why, sizeof(why)) == 0) {
        time_t na;
        if (crt_asn1_time_to_unix(X509_get0_notAfter(top), &na) == 0)
            ca->root_not_after = na;
    }
    ret = 0;

Exit:
    ERR_clear_error();
    X509_free(top);
    if (key_pem != NULL) {
        OPENSSL_cleanse(key_pem, key_len);
        free(key_pem);
    }
    free(cert_pem);
    free(bundle_pem);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(roots, X509_free);
    if (ret != 0)
        ca_authority_dispose(ca);
    return ret;
}

int ca_authority_check(const ca_authority_t *ca, time_t now, char *why, size_t why_cap)
{
    char when[32];

    if (now >= ca->intermediate_not_after) {
        crt_format_time(ca->intermediate_not_after, when, sizeof(when));
        snprintf(why, why_cap, "the intermediate expired at %s", when);
        return CA_E_CA_NOT_READY;
    }
    return chain_intermediate(ca, now, NULL, why, why_cap);
}

int ca_authority_issue(const ca_authority_t *ca, EVP_PKEY *public_key, const char *spiffe_id,
                       const char *const *dns_names, size_t num_dns_names, time_t now, long ttl_seconds,
                       const unsigned char serial[CRT_SERIAL_LEN], X509 **out)
{
    int err = crt_issue_leaf(ca->intermediate, ca->key, public_key, spiffe_id, dns_names, num_dns_names, now,
                             ttl_seconds, serial, out);
    if (err == 0)
        return 0;
    return err == CRT_E_BAD_TTL ? CA_E_CA_NOT_READY : CA_E_INTERNAL;
}

void ca_authority_dispose(ca_authority_t *ca)
{
    X509_free(ca->intermediate);
    EVP_PKEY_free(ca->key);
    crt_bundle_release(ca->bundle);
    X509_STORE_free(ca->store);
    free(ca->intermediate_pem);
    for (size_t i = 0; i < ca->num_roots; ++i)
        free(ca->root_pems[i]);
    memset(ca, 0, sizeof(*ca));
}
