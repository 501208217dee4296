/* Reading files and PEM data: certificates, keys, bundles. */
#ifndef SEAM_CERTS_PEM_H
#define SEAM_CERTS_PEM_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#define CRT_FILE_MAX (1024 * 1024) /* largest PEM file we read */

/*
 * Reads a whole file (at most max bytes; "-" is stdin) into a new
 * NUL-terminated buffer. The caller frees *out (cleansing it first if it held
 * a key). Returns 0, CRT_E_IO (errno is kept) or CRT_E_TOO_LARGE.
 */
int crt_file_read(const char *path, size_t max, char **out, size_t *out_len) __attribute__((warn_unused_result));

/*
 * Parses every CERTIFICATE block in pem[0..len) into a new stack (caller owns
 * it: sk_X509_pop_free(..., X509_free)). Returns 0, CRT_E_NOT_PEM when there
 * is no PEM block at all, CRT_E_BAD_DER when a block does not decode, or
 * CRT_E_NO_CERTIFICATE when PEM holds no certificate. detail (may be NULL)
 * receives OpenSSL's reason.
 */
int crt_pem_read_certs(const char *pem, size_t len, STACK_OF(X509) * *out, char *detail, size_t detail_cap)
    __attribute__((warn_unused_result));

/*
 * Parses the first private key in pem[0..len); it must be ECDSA P-256.
 * Returns 0 and a new key in *out (caller frees), or CRT_E_NOT_PEM,
 * CRT_E_BAD_DER, CRT_E_NO_KEY, CRT_E_WRONG_KEY_TYPE.
 */
int crt_pem_read_key(const char *pem, size_t len, EVP_PKEY **out) __attribute__((warn_unused_result));

/* Appends the PEM form of cert to a new/extended heap string *buf (len in *len). Returns 0 or CRT_E_NOMEM. */
int crt_pem_write_cert(X509 *cert, char **buf, size_t *len) __attribute__((warn_unused_result));

/*
 * Writes key as unencrypted PKCS#8 PEM to path, created with mode 0600 (an
 * existing file is replaced only if it is a regular file we can open 0600).
 * Only the offline PKI tool calls this; daemons never write keys.
 */
int crt_pem_write_key_file(EVP_PKEY *key, const char *path) __attribute__((warn_unused_result));

/* Writes certs (leaf first) as PEM to path with mode 0644. */
int crt_pem_write_certs_file(STACK_OF(X509) * certs, const char *path) __attribute__((warn_unused_result));

/* True when key is an ECDSA key on P-256. */
int crt_key_is_p256(EVP_PKEY *key);

/* Makes a new ECDSA P-256 key in memory. Returns 0 or CRT_E_INTERNAL. */
int crt_key_generate(EVP_PKEY **out) __attribute__((warn_unused_result));

/* Describes a public key: "ECDSA P-256", "RSA 2048", ... */
void crt_key_describe(EVP_PKEY *key, char *buf, size_t cap);

#endif
