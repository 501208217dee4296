/* Certificate construction with Seam's root, intermediate and leaf profiles. */
#include "certs/issue.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "certs/error.h"
#include "certs/info.h"

int crt_serial_random(unsigned char serial[CRT_SERIAL_LEN])
{
    if (RAND_bytes(serial, CRT_SERIAL_LEN) != 1) {
        ERR_clear_error();
        return CRT_E_INTERNAL;
    }
    /* Positive (top bit clear) and exactly 16 bytes long in DER (second-highest bit set). */
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
    return 0;
}

void crt_serial_hex(const unsigned char serial[CRT_SERIAL_LEN], char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i != CRT_SERIAL_LEN; ++i) {
        out[2 * i] = digits[serial[i] >> 4];
        out[2 * i + 1] = digits[serial[i] & 0xf];
    }
    out[2 * CRT_SERIAL_LEN] = '\0';
}

/* Adds one extension built from OpenSSL's config syntax. */
static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static int add_san(X509 *cert, const crt_cert_profile_t *p)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int ok = 0;

    if (names == NULL)
        return 0;
    for (size_t i = 0; i != p->num_uri_sans + p->num_dns_sans; ++i) {
        int is_uri = i < p->num_uri_sans;
        const char *value = is_uri ? p->uri_sans[i] : p->dns_sans[i - p->num_uri_sans];
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (gn == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, value, (int)strlen(value))) {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(ia5);
            goto Exit;
        }
        GENERAL_NAME_set0_value(gn, is_uri ? GEN_URI : GEN_DNS, ia5);
        if (!sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            goto Exit;
        }
    }
    /* RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical. */
    ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, names, p->subject_cn == NULL, X509V3_ADD_DEFAULT) == 1;

Exit:
    GENERAL_NAMES_free(names);
    return ok;
}

static int add_name_constraint(X509 *cert, const char *uri_domain)
{
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    GENERAL_SUBTREE *subtree = GENERAL_SUBTREE_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    int ok = 0;

    if (nc == NULL || subtree == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, uri_domain, (int)strlen(uri_domain)))
        goto Exit;
    GENERAL_NAME_set0_value(subtree->base, GEN_URI, ia5);
    ia5 = NULL;
    if ((nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL ||
        !sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, subtree))
        goto Exit;
    subtree = NULL;
    ok = X509_add1_ext_i2d(cert, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) == 1;

Exit:
    ASN1_IA5STRING_free(ia5);
    GENERAL_SUBTREE_free(subtree);
    NAME_CONSTRAINTS_free(nc);
    return ok;
}

static int set_serial(X509 *cert, const unsigned char serial[CRT_SERIAL_LEN])
{
    BIGNUM *bn = BN_bin2bn(serial, CRT_SERIAL_LEN, NULL);
    ASN1_INTEGER *ai = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = ai != NULL && X509_set_serialNumber(cert, ai);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok;
}

int crt_cert_build(const crt_cert_profile_t *p, EVP_PKEY *subject_key, X509 *issuer_cert, EVP_PKEY *issuer_key,
                   X509 **out)
{
    X509 *cert = X509_new();
    X509_NAME *subject = X509_NAME_new();
    X509V3_CTX ctx;
    char buf[64];
    int ret = CRT_E_INTERNAL;

    if (cert == NULL || subject == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    if (!X509_set_version(cert, 2) || !set_serial(cert, p->serial) ||
        ASN1_TIME_set(X509_getm_notBefore(cert), p->not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), p->not_after) == NULL)
        goto Exit;
    if (p->subject_cn != NULL &&
        (!X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, (const unsigned char *)"Seam", -1, -1, 0) ||
         !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)p->subject_cn, -1, -1, 0)))
        goto Exit;
    if (!X509_set_subject_name(cert, subject) ||
        !X509_set_issuer_name(cert, issuer_cert != NULL ? X509_get_subject_name(issuer_cert) : subject) ||
        !X509_set_pubkey(cert, subject_key))
        goto Exit;

    X509V3_set_ctx(&ctx, issuer_cert != NULL ? issuer_cert : cert, cert, NULL, NULL, 0);
    if (p->is_ca) {
        if (p->path_len >= 0)
            snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", p->path_len);
        else
            snprintf(buf, sizeof(buf), "critical,CA:TRUE");
    } else {
        snprintf(buf, sizeof(buf), "critical,CA:FALSE");
    }
    if (!add_ext(cert, &ctx, NID_basic_constraints, buf))
        goto Exit;
    if (p->key_usage != 0) {
        snprintf(buf, sizeof(buf), "critical%s%s%s", (p->key_usage & CRT_KU_DIGITAL_SIGNATURE) ? ",digitalSignature" : "",
                 (p->key_usage & CRT_KU_KEY_CERT_SIGN) ? ",keyCertSign" : "", (p->key_usage & CRT_KU_CRL_SIGN) ? ",cRLSign" : "");
        if (!add_ext(cert, &ctx, NID_key_usage, buf))
            goto Exit;
    }
    if (p->ext_key_usage != 0) {
        buf[0] = '\0';
        if (p->ext_key_usage & CRT_EKU_SERVER)
            strcat(buf, "serverAuth,");
        if (p->ext_key_usage & CRT_EKU_CLIENT)
            strcat(buf, "clientAuth,");
        if (p->ext_key_usage & CRT_EKU_CODE_SIGNING)
            strcat(buf, "codeSigning,");
        buf[strlen(buf) - 1] = '\0';
        if (!add_ext(cert, &ctx, NID_ext_key_usage, buf))
            goto Exit;
    }
    /* Key identifiers let verifiers tell two CAs with the same name apart. */
    if (!add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
        (issuer_cert != NULL && !add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always")))
        goto Exit;
    if (p->num_uri_sans + p->num_dns_sans != 0 && !add_san(cert, p))
        goto Exit;
    if (p->permitted_uri_domain != NULL && !add_name_constraint(cert, p->permitted_uri_domain))
        goto Exit;
    if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0)
        goto Exit;

    *out = cert;
    cert = NULL;
    ret = 0;

Exit:
    ERR_clear_error();
    X509_NAME_free(subject);
    X509_free(cert);
    return ret;
}

int crt_issue_root(EVP_PKEY *key, const char *td, time_t now, long days, X509 **out)
{
    char cn[320];
    crt_cert_profile_t p = {.not_before = now - CRT_LEAF_BACKDATE_SECONDS,
                            .not_after = now + (time_t)days * 86400,
                            .subject_cn = cn,
                            .is_ca = 1,
                            .path_len = 1,
                            .key_usage = CRT_KU_KEY_CERT_SIGN | CRT_KU_CRL_SIGN};
    int ret;

    if (days <= 0)
        return CRT_E_BAD_TTL;
    if ((ret = crt_serial_random(p.serial)) != 0)
        return ret;
    snprintf(cn, sizeof(cn), "Seam root CA %s", td);
    return crt_cert_build(&p, key, NULL, key, out);
}

int crt_issue_intermediate(X509 *root, EVP_PKEY *root_key, EVP_PKEY *key, const char *td, time_t now, long days,
                           X509 **out)
{
    char cn[320];
    crt_cert_profile_t p = {.not_before = now - CRT_LEAF_BACKDATE_SECONDS,
                            .not_after = now + (time_t)days * 86400,
                            .subject_cn = cn,
                            .is_ca = 1,
                            .path_len = 0,
                            .key_usage = CRT_KU_KEY_CERT_SIGN | CRT_KU_CRL_SIGN,
                            .permitted_uri_domain = td};
    time_t root_not_after;
    int ret;

    if (days <= 0)
        return CRT_E_BAD_TTL;
    if ((ret = crt_asn1_time_to_unix(X509_get0_notAfter(root), &root_not_after)) != 0)
        return ret;
    if (p.not_after > root_not_after)
        p.not_after = root_not_after;
    if ((ret = crt_serial_random(p.serial)) != 0)
        return ret;
    snprintf(cn, sizeof(cn), "Seam intermediate CA %s", td);
    return crt_cert_build(&p, key, root, root_key, out);
}

int crt_issue_leaf(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *leaf_key, const char *spiffe_id,
                   const char *const *dns_sans, size_t num_dns_sans, time_t now, long ttl_seconds,
                   const unsigned char serial[CRT_SERIAL_LEN], X509 **out)
{
    const char *uris[1] = {spiffe_id};
    crt_cert_profile_t p = {.not_before = now - CRT_LEAF_BACKDATE_SECONDS,
                            .not_after = now + ttl_seconds,
                            .uri_sans = uris,
                            .num_uri_sans = 1,
                            .dns_sans = dns_sans,
                            .num_dns_sans = num_dns_sans,
                            .path_len = -1,
                            .key_usage = CRT_KU_DIGITAL_SIGNATURE,
                            .ext_key_usage = CRT_EKU_SERVER | CRT_EKU_CLIENT};
    crt_spiffe_id_t id;
    time_t issuer_not_after;
    int ret;

    if (crt_spiffe_parse_workload(spiffe_id, strlen(spiffe_id), &id) != CRT_SPIFFE_OK)
        return CRT_E_BAD_SPIFFE_ID;
    if (ttl_seconds <= 0)
        return CRT_E_BAD_TTL;
    if ((ret = crt_asn1_time_to_unix(X509_get0_notAfter(issuer), &issuer_not_after)) != 0)
        return ret;
    if (issuer_not_after <= now)
        return CRT_E_BAD_TTL;
    if (p.not_after > issuer_not_after)
        p.not_after = issuer_not_after;
    memcpy(p.serial, serial, CRT_SERIAL_LEN);
    return crt_cert_build(&p, leaf_key, issuer, issuer_key, out);
}
