/* The pure checks of a POST /v1/sign request: body, CSR, identity, lifetime. */
#ifndef SEAM_CONTROL_SIGN_H
#define SEAM_CONTROL_SIGN_H

#include <stddef.h>

#include "certs/csr.h"

#define CA_BODY_MAX (64 * 1024)   /* largest /v1/sign body; larger gets 413 */

/* What a sign request asks for; csr_pem points into a copy owned by the struct. */
typedef struct st_ca_sign_request_t {
    char *csr_pem;          /* owned; free with ca_sign_request_clear() */
    size_t csr_len;
    long ttl_seconds;       /* 0: not given */
} ca_sign_request_t;

/*
 * Parses a body {"csr": "<PEM>", "ttl_seconds": N?}; other fields are ignored.
 * Returns 0, CA_E_BODY_TOO_LARGE, CA_E_BAD_JSON, CA_E_MISSING_CSR or CA_E_BAD_TTL.
 */
int ca_sign_request_parse(const char *body, size_t len, ca_sign_request_t *req) __attribute__((warn_unused_result));

void ca_sign_request_clear(ca_sign_request_t *req);

/*
 * Parses and checks the CSR (crt_csr_parse), then its trust domain. On 0 the
 * caller owns csr (crt_csr_clear). Returns 0, CA_E_BAD_CSR,
 * CA_E_CSR_BAD_SIGNATURE, CA_E_CSR_KEY_TYPE, CA_E_CSR_SANS,
 * CA_E_CSR_BAD_SPIFFE_ID or CA_E_OUT_OF_TRUST_DOMAIN.
 */
int ca_sign_check_csr(const char *pem, size_t len, const char *trust_domain, crt_csr_t *csr)
    __attribute__((warn_unused_result));

/* 0 when the CSR's ID equals the proven identity exactly, else CA_E_IDENTITY_MISMATCH. */
int ca_sign_check_identity(const char *csr_id, const char *proven_id) __attribute__((warn_unused_result));

#define CA_RESERVED_IDS_MAX 64   /* --reserved-id entries at most */

/*
 * Checks one --reserved-id entry: a workload SPIFFE ID, or one followed by a
 * final slash-star ("PREFIX/" then '*') for every ID under it, in
 * trust_domain (NULL: any). Returns 0, or -1 with why (one line). Pure.
 */
int ca_sign_reserved_entry_check(const char *entry, const char *trust_domain, char *why, size_t why_cap)
    __attribute__((warn_unused_result));

/*
 * Whether id (a workload SPIFFE ID as ca_sign_check_csr() accepts it) may be
 * signed: CA_E_RESERVED_IDENTITY when it equals an exact entry of reserved
 * or lies under a slash-star entry (the entry for spiffe://td/ns/ops with a
 * final slash-star covers spiffe://td/ns/ops/sa/x but neither
 * spiffe://td/ns/ops nor spiffe://td/ns/opsx), else 0. Strict parsing leaves one spelling per ID,
 * so comparing bytes up to a '/' compares whole segments. *matched (may be
 * NULL) receives the entry that matched, borrowed from reserved. Pure.
 */
int ca_sign_check_reserved(const char *id, const char *const *reserved, size_t num_reserved, const char **matched)
    __attribute__((warn_unused_result));

/* The lifetime to issue: requested (0 = default_ttl), clamped to max_ttl. */
long ca_sign_ttl(long requested, long default_ttl, long max_ttl);

#endif
