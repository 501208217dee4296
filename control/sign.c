/* Pure checks of sign requests: nothing here touches a socket, a file or the clock. */
#include "control/sign.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "control/error.h"

int ca_sign_request_parse(const char *body, size_t len, ca_sign_request_t *req)
{
    json_t *root = NULL, *csr, *ttl;
    int ret;

    memset(req, 0, sizeof(*req));
    if (len > CA_BODY_MAX)
        return CA_E_BODY_TOO_LARGE;
    if (len == 0 || (root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(root)) {
        ret = CA_E_BAD_JSON;
        goto Exit;
    }
    csr = json_object_get(root, "csr");
    if (!json_is_string(csr) || json_string_length(csr) == 0) {
        ret = CA_E_MISSING_CSR;
        goto Exit;
    }
    ttl = json_object_get(root, "ttl_seconds");
    if (ttl != NULL && !json_is_null(ttl)) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) <= 0 || json_integer_value(ttl) > 100L * 365 * 86400) {
            ret = CA_E_BAD_TTL;
            goto Exit;
        }
        req->ttl_seconds = (long)json_integer_value(ttl);
    }
    req->csr_len = json_string_length(csr);
    if ((req->csr_pem = malloc(req->csr_len + 1)) == NULL) {
        ret = CA_E_NOMEM;
        goto Exit;
    }
    memcpy(req->csr_pem, json_string_value(csr), req->csr_len + 1);
    ret = 0;

Exit:
    json_decref(root);
    return ret;
}

void ca_sign_request_clear(ca_sign_request_t *req)
{
    free(req->csr_pem);
    memset(req, 0, sizeof(*req));
}

int ca_sign_check_csr(const char *pem, size_t len, const char *trust_domain, crt_csr_t *csr)
{
    crt_spiffe_id_t id;
    int ret;

    switch (crt_csr_parse(pem, len, csr)) {
    case 0:
        break;
    case CRT_E_CSR_BAD_SIGNATURE:
        return CA_E_CSR_BAD_SIGNATURE;
    case CRT_E_WRONG_KEY_TYPE:
        return CA_E_CSR_KEY_TYPE;
    case CRT_E_CSR_SANS:
        return CA_E_CSR_SANS;
    case CRT_E_BAD_SPIFFE_ID:
        return CA_E_CSR_BAD_SPIFFE_ID;
    case CRT_E_NOMEM:
        return CA_E_NOMEM;
    default:
        return CA_E_BAD_CSR;
    }
    if (crt_spiffe_parse_workload(csr->spiffe_id, strlen(csr->spiffe_id), &id) != CRT_SPIFFE_OK) {
        ret = CA_E_CSR_BAD_SPIFFE_ID;
        goto Fail;
    }
    if (!crt_spiffe_in_trust_domain(&id, trust_domain, strlen(trust_domain))) {
        ret = CA_E_OUT_OF_TRUST_DOMAIN;
        goto Fail;
    }
    return 0;

Fail:
    crt_csr_clear(csr);
    return ret;
}

int ca_sign_check_identity(const char *csr_id, const char *proven_id)
{
    return strcmp(csr_id, proven_id) == 0 ? 0 : CA_E_IDENTITY_MISMATCH;
}

#define PREFIX_MARK "/*"

/* The length of entry without its final PREFIX_MARK, and whether it had one. */
static size_t reserved_base(const char *entry, int *is_prefix)
{
    size_t len = strlen(entry), mark = sizeof(PREFIX_MARK) - 1;
    *is_prefix = len > mark && memcmp(entry + len - mark, PREFIX_MARK, mark) == 0;
    return *is_prefix ? len - mark : len;
}

int ca_sign_reserved_entry_check(const char *entry, const char *trust_domain, char *why, size_t why_cap)
{
    crt_spiffe_id_t id;
    int is_prefix, err;
    size_t len = reserved_base(entry, &is_prefix);

    if ((err = crt_spiffe_parse_workload(entry, len, &id)) != CRT_SPIFFE_OK) {
        snprintf(why, why_cap, "%s%s", is_prefix ? "before \"/*\": " : "", crt_spiffe_error_message(err));
        return -1;
    }
    if (trust_domain != NULL && !crt_spiffe_in_trust_domain(&id, trust_domain, strlen(trust_domain))) {
        snprintf(why, why_cap, "not in trust domain %s", trust_domain);
        return -1;
    }
    return 0;
}

int ca_sign_check_reserved(const char *id, const char *const *reserved, size_t num_reserved, const char **matched)
{
    size_t id_len = strlen(id);

    for (size_t i = 0; i < num_reserved; ++i) {
        int is_prefix;
        size_t len = reserved_base(reserved[i], &is_prefix);
        int hit = is_prefix ? id_len > len && memcmp(id, reserved[i], len) == 0 && id[len] == '/'
                            : id_len == len && memcmp(id, reserved[i], len) == 0;
        if (hit) {
            if (matched != NULL)
                *matched = reserved[i];
            return CA_E_RESERVED_IDENTITY;
        }
    }
    return 0;
}

long ca_sign_ttl(long requested, long default_ttl, long max_ttl)
{
    long ttl = requested > 0 ? requested : default_ttl;
    return ttl > max_ttl ? max_ttl : ttl;
}
