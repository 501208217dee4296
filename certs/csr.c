/* CSR creation (sidecar side) and strict CSR checks (CA side). */
#include "certs/csr.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "certs/pem.h"

int crt_csr_create(EVP_PKEY *key, const char *spiffe_id, X509_REQ **out)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    X509_EXTENSION *ext = NULL;
    crt_spiffe_id_t id;
    int ret = CRT_E_INTERNAL;

    if (crt_spiffe_parse_workload(spiffe_id, strlen(spiffe_id), &id) != CRT_SPIFFE_OK) {
        ret = CRT_E_BAD_SPIFFE_ID;
        goto Exit;
    }
    if (req == NULL || exts == NULL || names == NULL || gn == NULL || ia5 == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    if (!ASN1_STRING_set(ia5, spiffe_id, (int)strlen(spiffe_id)))
        goto Exit;
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(names, gn))
        goto Exit;
    gn = NULL;
    if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, names)) == NULL || !sk_X509_EXTENSION_push(exts, ext))
        goto Exit;
    ext = NULL;
    if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key) || !X509_REQ_add_extensions(req, exts) ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto Exit;
    *out = req;
    req = NULL;
    ret = 0;

Exit:
    ERR_clear_error();
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
    GENERAL_NAME_free(gn);
    ASN1_IA5STRING_free(ia5);
    X509_REQ_free(req);
    return ret;
}

int crt_csr_to_pem(X509_REQ *req, char **out, size_t *out_len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    int ret = CRT_E_NOMEM;

    if (bio == NULL || !PEM_write_bio_X509_REQ(bio, req))
        goto Exit;
    long n = BIO_get_mem_data(bio, &data);
    if ((*out = malloc((size_t)n + 1)) == NULL)
        goto Exit;
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    *out_len = (size_t)n;
    ret = 0;

Exit:
    ERR_clear_error();
    BIO_free(bio);
    return ret;
}

int crt_csr_parse(const char *pem, size_t len, crt_csr_t *out)
{
    BIO *bio = NULL;
    X509_REQ *req = NULL;
    EVP_PKEY *key = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    GENERAL_NAMES *names = NULL;
    crt_spiffe_id_t id;
    int ret;

    memset(out, 0, sizeof(*out));
    if (len > CRT_CSR_PEM_MAX) {
        ret = CRT_E_TOO_LARGE;
        goto Exit;
    }
    if (memmem(pem, len, "-----BEGIN CERTIFICATE REQUEST-----", 35) == NULL &&
        memmem(pem, len, "-----BEGIN NEW CERTIFICATE REQUEST-----", 39) == NULL) {
        ret = CRT_E_NOT_PEM;
        goto Exit;
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    if ((req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL) {
        ret = CRT_E_BAD_DER;
        goto Exit;
    }
    if ((key = X509_REQ_get_pubkey(req)) == NULL) {
        ret = CRT_E_BAD_DER;
        goto Exit;
    }
    if (X509_REQ_verify(req, key) != 1) {
        ret = CRT_E_CSR_BAD_SIGNATURE;
        goto Exit;
    }
    if (!crt_key_is_p256(key)) {
        ret = CRT_E_WRONG_KEY_TYPE;
        goto Exit;
    }
    /* Exactly one SAN, and it is a URI: the CA signs identities, not host names. */
    if ((exts = X509_REQ_get_extensions(req)) == NULL ||
        (names = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL)) == NULL ||
        sk_GENERAL_NAME_num(names) != 1 || sk_GENERAL_NAME_value(names, 0)->type != GEN_URI) {
        ret = CRT_E_CSR_SANS;
        goto Exit;
    }
    const ASN1_IA5STRING *uri = sk_GENERAL_NAME_value(names, 0)->d.uniformResourceIdentifier;
    size_t uri_len = (size_t)ASN1_STRING_length(uri);
    if (uri_len > CRT_SPIFFE_ID_MAX ||
        crt_spiffe_parse_workload((const char *)ASN1_STRING_get0_data(uri), uri_len, &id) != CRT_SPIFFE_OK ||
        memchr(ASN1_STRING_get0_data(uri), '\0', uri_len) != NULL) {
        ret = CRT_E_BAD_SPIFFE_ID;
        goto Exit;
    }
    memcpy(out->spiffe_id, ASN1_STRING_get0_data(uri), uri_len);
    out->spiffe_id[uri_len] = '\0';
    out->public_key = key;
    key = NULL;
    ret = 0;

Exit:
    ERR_clear_error();
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    EVP_PKEY_free(key);
    X509_REQ_free(req);
    BIO_free(bio);
    return ret;
}

void crt_csr_clear(crt_csr_t *csr)
{
    EVP_PKEY_free(csr->public_key);
    csr->public_key = NULL;
}
