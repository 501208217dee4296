/* Human- and JSON-facing facts about a certificate (inspect, admin /certs). */
#ifndef SEAM_CERTS_INFO_H
#define SEAM_CERTS_INFO_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "certs/spiffe.h"

typedef struct st_crt_cert_info_t {
    char serial[2 * 20 + 1];                 /* lowercase hex, no leading zeros stripped */
    time_t not_before;
    time_t not_after;
    char subject[256];
    char issuer[256];
    char sans[1024];                         /* "URI:spiffe://..., DNS:name" */
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1];   /* "" unless exactly one valid URI SAN */
    char key_type[32];
    int is_ca;
} crt_cert_info_t;

/* Fills info from cert (borrowed). Returns 0 or CRT_E_BAD_DER when a field does not decode. */
int crt_cert_info(X509 *cert, crt_cert_info_t *info) __attribute__((warn_unused_result));

/* Converts an ASN1_TIME to Unix time. Returns 0 or CRT_E_BAD_DER. */
int crt_asn1_time_to_unix(const ASN1_TIME *t, time_t *out) __attribute__((warn_unused_result));

/* Formats t as RFC 3339 UTC ("2026-11-27T19:24:18Z"); buf needs 21 bytes. */
void crt_format_time(time_t t, char *buf, size_t cap);

/* Formats a signed duration in seconds as "3d4h", "59m12s", "-2h0m" ("expired" framing is the caller's). */
void crt_format_duration(long long seconds, char *buf, size_t cap);

#endif
