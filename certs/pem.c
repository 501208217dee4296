/* Files, PEM decoding and key helpers for the certs library. */
#include "certs/pem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/error.h"

int crt_file_read(const char *path, size_t max, char **out, size_t *out_len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int ret = CRT_E_IO;

    if (fd < 0)
        return CRT_E_IO;
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > max + 1)
                ncap = max + 1;
            if (len + 1 >= ncap) {
                ret = CRT_E_TOO_LARGE;
                goto Exit;
            }
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                ret = CRT_E_NOMEM;
                goto Exit;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    ret = 0;

Exit:
    if (buf != NULL) {
        int saved = errno;
        OPENSSL_cleanse(buf, cap);
        free(buf);
        errno = saved;
    }
    if (fd != STDIN_FILENO) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return ret;
}

static int has_pem_block(const char *pem, size_t len, const char *label)
{
    char marker[64];
    int n = snprintf(marker, sizeof(marker), "-----BEGIN %s", label);
    return memmem(pem, len, marker, (size_t)n) != NULL;
}

int crt_pem_read_certs(const char *pem, size_t len, STACK_OF(X509) * *out, char *detail, size_t detail_cap)
{
    STACK_OF(X509) *certs = NULL;
    BIO *bio = NULL;
    X509 *cert = NULL;
    int ret;

    if (detail_cap)
        detail[0] = '\0';
    if (!has_pem_block(pem, len, "")) {
        ret = CRT_E_NOT_PEM;
        goto Exit;
    }
    if (!has_pem_block(pem, len, "CERTIFICATE-----")) {
        ret = CRT_E_NO_CERTIFICATE;
        goto Exit;
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL || (certs = sk_X509_new_null()) == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, cert)) {
            X509_free(cert);
            ret = CRT_E_NOMEM;
            goto Exit;
        }
    }
    /* The loop ends at EOF (PEM_R_NO_START_LINE) or at a block that does not decode. */
    unsigned long last = ERR_peek_last_error();
    if (ERR_GET_REASON(last) != PEM_R_NO_START_LINE || sk_X509_num(certs) == 0) {
        if (detail_cap)
            crt_error_drain_openssl(detail, detail_cap);
        ret = sk_X509_num(certs) == 0 && ERR_GET_REASON(last) == PEM_R_NO_START_LINE ? CRT_E_NO_CERTIFICATE
                                                                                     : CRT_E_BAD_DER;
        goto Exit;
    }
    ERR_clear_error();
    *out = certs;
    certs = NULL;
    ret = 0;

Exit:
    ERR_clear_error();
    BIO_free(bio);
    sk_X509_pop_free(certs, X509_free);
    return ret;
}

int crt_key_is_p256(EVP_PKEY *key)
{
    if (EVP_PKEY_base_id(key) != EVP_PKEY_EC)
        return 0;
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
    return ec != NULL && EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_X9_62_prime256v1;
}

int crt_pem_read_key(const char *pem, size_t len, EVP_PKEY **out)
{
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    int ret;

    if (!has_pem_block(pem, len, "")) {
        ret = CRT_E_NOT_PEM;
        goto Exit;
    }
    if (!has_pem_block(pem, len, "PRIVATE KEY-----") && !has_pem_block(pem, len, "EC PRIVATE KEY-----") &&
        !has_pem_block(pem, len, "RSA PRIVATE KEY-----")) {
        ret = CRT_E_NO_KEY;
        goto Exit;
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
        ret = CRT_E_NOMEM;
        goto Exit;
    }
    if ((key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
        ret = CRT_E_BAD_DER;
        goto Exit;
    }
    if (!crt_key_is_p256(key)) {
        ret = CRT_E_WRONG_KEY_TYPE;
        goto Exit;
    }
    *out = key;
    key = NULL;
    ret = 0;

Exit:
    ERR_clear_error();
    BIO_free(bio);
    EVP_PKEY_free(key);
    return ret;
}

int crt_pem_write_cert(X509 *cert, char **buf, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    int ret = CRT_E_NOMEM;

    if (bio == NULL || !PEM_write_bio_X509(bio, cert))
        goto Exit;
    long n = BIO_get_mem_data(bio, &data);
    char *nbuf = realloc(*buf, *len + (size_t)n + 1);
    if (nbuf == NULL)
        goto Exit;
    memcpy(nbuf + *len, data, (size_t)n);
    *len += (size_t)n;
    nbuf[*len] = '\0';
    *buf = nbuf;
    ret = 0;

Exit:
    ERR_clear_error();
    BIO_free(bio);
    return ret;
}

/* Opens path for writing with the given mode, replacing a regular file. */
static FILE *open_for_write(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return NULL;
    /* An existing file keeps its old mode through O_CREAT: force ours. */
    if (fchmod(fd, mode) != 0) {
        close(fd);
        return NULL;
    }
    FILE *fp = fdopen(fd, "w");
    if (fp == NULL)
        close(fd);
    return fp;
}

int crt_pem_write_key_file(EVP_PKEY *key, const char *path)
{
    FILE *fp = open_for_write(path, 0600);
    int ret = CRT_E_IO;

    if (fp == NULL)
        return CRT_E_IO;
    if (PEM_write_PKCS8PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL))
        ret = 0;
    ERR_clear_error();
    if (fclose(fp) != 0)
        ret = CRT_E_IO;
    return ret;
}

int crt_pem_write_certs_file(STACK_OF(X509) * certs, const char *path)
{
    FILE *fp = open_for_write(path, 0644);
    int ret = 0;

    if (fp == NULL)
        return CRT_E_IO;
    for (int i = 0; i < sk_X509_num(certs); ++i)
        if (!PEM_write_X509(fp, sk_X509_value(certs, i)))
            ret = CRT_E_IO;
    ERR_clear_error();
    if (fclose(fp) != 0)
        ret = CRT_E_IO;
    return ret;
}

int crt_key_generate(EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    EVP_PKEY *key = NULL;
    int ret = CRT_E_INTERNAL;

    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) <= 0 ||
        EVP_PKEY_CTX_set_ec_param_enc(ctx, OPENSSL_EC_NAMED_CURVE) <= 0 || EVP_PKEY_keygen(ctx, &key) <= 0)
        goto Exit;
    *out = key;
    ret = 0;

Exit:
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

void crt_key_describe(EVP_PKEY *key, char *buf, size_t cap)
{
    switch (EVP_PKEY_base_id(key)) {
    case EVP_PKEY_EC: {
        const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
        int nid = ec != NULL ? EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) : NID_undef;
        const char *curve = nid == NID_X9_62_prime256v1 ? "P-256" : nid == NID_secp384r1 ? "P-384" : OBJ_nid2sn(nid);
        snprintf(buf, cap, "ECDSA %s", curve != NULL ? curve : "unknown-curve");
        break;
    }
    case EVP_PKEY_RSA:
        snprintf(buf, cap, "RSA %d", EVP_PKEY_bits(key));
        break;
    case EVP_PKEY_ED25519:
        snprintf(buf, cap, "Ed25519");
        break;
    default:
        snprintf(buf, cap, "%s", OBJ_nid2sn(EVP_PKEY_base_id(key)));
        break;
    }
}
