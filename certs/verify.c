/* Chain verification with categorised failures, and SPIFFE ID extraction. */
#include "certs/verify.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "certs/pem.h"

struct st_crt_bundle_t {
    atomic_int refcnt;
    STACK_OF(X509) * roots;
    X509_STORE *store;
};

int crt_bundle_from_certs(STACK_OF(X509) * roots, crt_bundle_t **out)
{
    crt_bundle_t *bundle = calloc(1, sizeof(*bundle));
    int ret = CRT_E_NOMEM;

    if (bundle == NULL)
        return CRT_E_NOMEM;
    atomic_init(&bundle->refcnt, 1);
    if ((bundle->roots = sk_X509_new_null()) == NULL || (bundle->store = X509_STORE_new()) == NULL)
        goto Exit;
    for (int i = 0; i < sk_X509_num(roots); ++i) {
        X509 *root = sk_X509_value(roots, i);
        if (!(X509_get_extension_flags(root) & EXFLAG_CA)) {
            ret = CRT_E_INVALID_CHAIN;
            goto Exit;
        }
        if (!X509_up_ref(root))
            goto Exit;
        if (!sk_X509_push(bundle->roots, root)) {
            X509_free(root);
            goto Exit;
        }
        if (!X509_STORE_add_cert(bundle->store, root))
            goto Exit;
    }
    if (sk_X509_num(bundle->roots) == 0) {
        ret = CRT_E_NO_CERTIFICATE;
        goto Exit;
    }
    *out = bundle;
    bundle = NULL;
    ret = 0;

Exit:
    ERR_clear_error();
    if (bundle != NULL)
        crt_bundle_release(bundle);
    return ret;
}

int crt_bundle_from_pem(const char *pem, size_t len, crt_bundle_t **out, char *detail, size_t detail_cap)
{
    STACK_OF(X509) *certs = NULL;
    int ret = crt_pem_read_certs(pem, len, &certs, detail, detail_cap);
    if (ret != 0)
        return ret;
    ret = crt_bundle_from_certs(certs, out);
    if (ret == CRT_E_INVALID_CHAIN && detail_cap)
        snprintf(detail, detail_cap, "the bundle holds a certificate that is not a CA");
    sk_X509_pop_free(certs, X509_free);
    return ret;
}

void crt_bundle_addref(crt_bundle_t *bundle)
{
    atomic_fetch_add_explicit(&bundle->refcnt, 1, memory_order_relaxed);
}

void crt_bundle_release(crt_bundle_t *bundle)
{
    if (bundle == NULL || atomic_fetch_sub_explicit(&bundle->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    sk_X509_pop_free(bundle->roots, X509_free);
    X509_STORE_free(bundle->store);
    free(bundle);
}

STACK_OF(X509) * crt_bundle_roots(const crt_bundle_t *bundle)
{
    return bundle->roots;
}

int crt_cert_spiffe_id(X509 *cert, char *buf, size_t cap)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    const ASN1_IA5STRING *uri = NULL;
    int num_uris = 0, ret;
    crt_spiffe_id_t id;

    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_URI) {
            uri = gn->d.uniformResourceIdentifier;
            ++num_uris;
        }
    }
    if (num_uris == 0) {
        ret = CRT_E_NO_URI_SAN;
        goto Exit;
    }
    if (num_uris > 1) {
        ret = CRT_E_SEVERAL_URI_SANS;
        goto Exit;
    }
    size_t len = (size_t)ASN1_STRING_length(uri);
    const char *data = (const char *)ASN1_STRING_get0_data(uri);
    if (len >= cap || memchr(data, '\0', len) != NULL || crt_spiffe_parse_workload(data, len, &id) != CRT_SPIFFE_OK) {
        ret = CRT_E_BAD_SPIFFE_ID;
        goto Exit;
    }
    memcpy(buf, data, len);
    buf[len] = '\0';
    ret = 0;

Exit:
    ERR_clear_error();
    GENERAL_NAMES_free(names);
    return ret;
}

static int is_self_signed(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

/* Certificates the peer sent besides its leaf (TLS stacks pass the leaf in the untrusted list too). */
static int count_intermediates(X509 *leaf, STACK_OF(X509) * untrusted)
{
    int n = 0;
    for (int i = 0; untrusted != NULL && i < sk_X509_num(untrusted); ++i)
        if (X509_cmp(sk_X509_value(untrusted, i), leaf) != 0)
            ++n;
    return n;
}

/* Maps OpenSSL's verification error at depth to a Seam category. */
static int categorise(int x509_err, int depth, X509 *leaf, STACK_OF(X509) * untrusted)
{
    switch (x509_err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return CRT_E_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return CRT_E_NOT_YET_VALID;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return CRT_E_UNTRUSTED_ROOT;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        /*
         * A lone leaf that is not self-signed and has no issuer in the bundle
         * most likely lost its intermediate; a chain that brought
         * intermediates but still ends outside the bundle comes from another CA.
         */
        if (depth == 0 && count_intermediates(leaf, untrusted) == 0 && !is_self_signed(leaf))
            return CRT_E_MISSING_INTERMEDIATE;
        return CRT_E_UNTRUSTED_ROOT;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return CRT_E_BAD_SIGNATURE;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
        return CRT_E_NAME_CONSTRAINT;
    case X509_V_ERR_INVALID_PURPOSE:
        return CRT_E_WRONG_KEY_USAGE;
    default:
        return CRT_E_INVALID_CHAIN;
    }
}

/* Leaf profile: not a CA, digitalSignature, the right extKeyUsage. */
static int check_leaf_profile(X509 *leaf, crt_usage_t usage, crt_verify_result_t *res)
{
    uint32_t flags = X509_get_extension_flags(leaf);

    if (flags & EXFLAG_CA) {
        snprintf(res->detail, sizeof(res->detail), "end-entity certificate has basicConstraints CA:TRUE");
        return CRT_E_NOT_A_LEAF;
    }
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
        snprintf(res->detail, sizeof(res->detail), "keyUsage lacks digitalSignature");
        return CRT_E_WRONG_KEY_USAGE;
    }
    if (flags & EXFLAG_XKUSAGE) {
        uint32_t xku = X509_get_extended_key_usage(leaf);
        if (usage == CRT_USAGE_CLIENT && !(xku & XKU_SSL_CLIENT)) {
            snprintf(res->detail, sizeof(res->detail), "extKeyUsage lacks clientAuth");
            return CRT_E_WRONG_KEY_USAGE;
        }
        if (usage == CRT_USAGE_SERVER && !(xku & XKU_SSL_SERVER)) {
            snprintf(res->detail, sizeof(res->detail), "extKeyUsage lacks serverAuth");
            return CRT_E_WRONG_KEY_USAGE;
        }
    }
    return 0;
}

int crt_verify_chain(const crt_bundle_t *bundle, X509 *leaf, STACK_OF(X509) * untrusted, time_t now,
                     const crt_verify_opts_t *opts, crt_verify_result_t *res)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ret;

    res->spiffe_id[0] = '\0';
    res->detail[0] = '\0';
    res->depth = -1;
    if (ctx == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    if (!X509_STORE_CTX_init(ctx, bundle->store, leaf, untrusted)) {
        ret = CRT_E_INTERNAL;
        goto Exit;
    }
    X509_STORE_CTX_set_time(ctx, 0, now);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        res->depth = X509_STORE_CTX_get_error_depth(ctx);
        ret = categorise(err, res->depth, leaf, untrusted);
        X509 *at = X509_STORE_CTX_get_current_cert(ctx);
        char subject[256] = "";
        if (at != NULL)
            X509_NAME_oneline(X509_get_subject_name(at), subject, sizeof(subject));
        snprintf(res->detail, sizeof(res->detail), "%s (certificate %d%s%s)", X509_verify_cert_error_string(err),
                 res->depth, subject[0] ? " " : "", subject[0] && strcmp(subject, "/") != 0 ? subject : "");
        goto Exit;
    }
    res->depth = 0;
    if ((ret = check_leaf_profile(leaf, opts->usage, res)) != 0)
        goto Exit;
    ret = crt_cert_spiffe_id(leaf, res->spiffe_id, sizeof(res->spiffe_id));
    if (ret != 0) {
        res->spiffe_id[0] = '\0';
        if (!opts->require_spiffe && opts->expected_id == NULL) {
            ret = 0;
            goto Exit;
        }
        snprintf(res->detail, sizeof(res->detail), "%s", crt_error_message(ret));
        goto Exit;
    }
    if (opts->trust_domain != NULL) {
        crt_spiffe_id_t id;
        if (crt_spiffe_parse(res->spiffe_id, strlen(res->spiffe_id), &id) != CRT_SPIFFE_OK ||
            !crt_spiffe_in_trust_domain(&id, opts->trust_domain, strlen(opts->trust_domain))) {
            snprintf(res->detail, sizeof(res->detail), "%s is not in trust domain %s", res->spiffe_id,
                     opts->trust_domain);
            ret = CRT_E_NAME_CONSTRAINT;
            goto Exit;
        }
    }
    if (opts->expected_id != NULL && strcmp(opts->expected_id, res->spiffe_id) != 0) {
        snprintf(res->detail, sizeof(res->detail), "expected %s, got %s", opts->expected_id, res->spiffe_id);
        ret = CRT_E_IDENTITY_MISMATCH;
        goto Exit;
    }
    res->depth = -1;
    ret = 0;

Exit:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return ret;
}
