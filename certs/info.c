/* Facts about a certificate for people and JSON: times, names, SANs, key type. */
#include "certs/info.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "certs/error.h"
#include "certs/pem.h"
#include "certs/verify.h"

int crt_asn1_time_to_unix(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return CRT_E_BAD_DER;
    }
    *out = timegm(&tm);
    return 0;
}

void crt_format_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%lld", (long long)t);
}

void crt_format_duration(long long seconds, char *buf, size_t cap)
{
    const char *sign = seconds < 0 ? "-" : "";
    unsigned long long s = seconds < 0 ? (unsigned long long)-seconds : (unsigned long long)seconds;
    unsigned long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
    if (d != 0)
        snprintf(buf, cap, "%s%llud%lluh", sign, d, h);
    else if (h != 0)
        snprintf(buf, cap, "%s%lluh%llum", sign, h, m);
    else
        snprintf(buf, cap, "%s%llum%llus", sign, m, sec);
}

static void format_name(X509_NAME *name, char *buf, size_t cap)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;

    buf[0] = '\0';
    if (bio == NULL)
        return;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 && (n = BIO_get_mem_data(bio, &data)) > 0) {
        size_t len = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
        memcpy(buf, data, len);
        buf[len] = '\0';
    }
    BIO_free(bio);
}

static void format_sans(X509 *cert, char *buf, size_t cap)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const char *kind = NULL;
        const ASN1_STRING *value = NULL;
        char ip[64] = "";
        switch (gn->type) {
        case GEN_URI:
            kind = "URI", value = gn->d.uniformResourceIdentifier;
            break;
        case GEN_DNS:
            kind = "DNS", value = gn->d.dNSName;
            break;
        case GEN_EMAIL:
            kind = "email", value = gn->d.rfc822Name;
            break;
        case GEN_IPADD: {
            kind = "IP";
            const unsigned char *b = ASN1_STRING_get0_data(gn->d.iPAddress);
            if (ASN1_STRING_length(gn->d.iPAddress) == 4)
                snprintf(ip, sizeof(ip), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
            else
                snprintf(ip, sizeof(ip), "(IPv6)");
            break;
        }
        default:
            kind = "other";
            break;
        }
        int n = snprintf(buf + used, cap - used, "%s%s:%.*s%s", used ? ", " : "", kind,
                         value ? ASN1_STRING_length(value) : 0, value ? (const char *)ASN1_STRING_get0_data(value) : "",
                         ip);
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
}

int crt_cert_info(X509 *cert, crt_cert_info_t *info)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    EVP_PKEY *key = X509_get0_pubkey(cert);
    int ret = CRT_E_BAD_DER;

    memset(info, 0, sizeof(*info));
    if (hex == NULL)
        goto Exit;
    /* BN_bn2hex is uppercase; serials are printed lowercase everywhere in Seam. */
    size_t i;
    for (i = 0; hex[i] != '\0' && i < sizeof(info->serial) - 1; ++i)
        info->serial[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
    info->serial[i] = '\0';
    if (crt_asn1_time_to_unix(X509_get0_notBefore(cert), &info->not_before) != 0 ||
        crt_asn1_time_to_unix(X509_get0_notAfter(cert), &info->not_after) != 0)
        goto Exit;
    format_name(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
    format_name(X509_get_issuer_name(cert), info->issuer, sizeof(info->issuer));
    format_sans(cert, info->sans, sizeof(info->sans));
    if (crt_cert_spiffe_id(cert, info->spiffe_id, sizeof(info->spiffe_id)) != 0)
        info->spiffe_id[0] = '\0';
    if (key != NULL)
        crt_key_describe(key, info->key_type, sizeof(info->key_type));
    else
        snprintf(info->key_type, sizeof(info->key_type), "unknown");
    info->is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
    ret = 0;

Exit:
    ERR_clear_error();
    OPENSSL_free(hex);
    BN_free(bn);
    return ret;
}
