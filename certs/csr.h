/* Certificate signing requests: made by sidecars, checked by the CA. */
#ifndef SEAM_CERTS_CSR_H
#define SEAM_CERTS_CSR_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "certs/spiffe.h"

#define CRT_CSR_PEM_MAX (16 * 1024)

/* Makes a CSR for key (borrowed) carrying spiffe_id as its only URI SAN. *out is new. */
int crt_csr_create(EVP_PKEY *key, const char *spiffe_id, X509_REQ **out) __attribute__((warn_unused_result));

/* PEM text of a CSR in a new heap string (caller frees). Returns 0 or CRT_E_NOMEM. */
int crt_csr_to_pem(X509_REQ *req, char **out, size_t *out_len) __attribute__((warn_unused_result));

/* What the CA needs from a checked CSR. */
typedef struct st_crt_csr_t {
    EVP_PKEY *public_key;                      /* owned; free with crt_csr_clear() */
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1];
} crt_csr_t;

/*
 * Parses and checks a PEM CSR: the signature verifies, the key is ECDSA P-256,
 * there is exactly one SAN and it is a URI holding a valid workload SPIFFE ID.
 * Returns 0, or CRT_E_NOT_PEM / CRT_E_BAD_DER / CRT_E_CSR_BAD_SIGNATURE /
 * CRT_E_WRONG_KEY_TYPE / CRT_E_CSR_SANS / CRT_E_BAD_SPIFFE_ID / CRT_E_TOO_LARGE.
 */
int crt_csr_parse(const char *pem, size_t len, crt_csr_t *out) __attribute__((warn_unused_result));

/* Frees what crt_csr_parse() put into csr. */
void crt_csr_clear(crt_csr_t *csr);

#endif
