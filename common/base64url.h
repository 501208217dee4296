/* Unpadded base64url and the Kubernetes service-account subject, shared by seam-ca and the sidecar. */
#ifndef SEAM_COMMON_BASE64URL_H
#define SEAM_COMMON_BASE64URL_H

#include <stddef.h>

/*
 * Decodes unpadded base64url (RFC 4648 section 5) from in[0..len) into out
 * (cap bytes). Refuses '=', characters outside the alphabet, a length of 1
 * mod 4 and non-zero unused trailing bits, so every value has one encoding.
 * Returns 0 and *out_len, or -1.
 */
int cmn_base64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));

/* Encodes in[0..len) as unpadded base64url into out (cap bytes, NUL-terminated). Returns 0 or -1 if it does not fit. */
int cmn_base64url_encode(const unsigned char *in, size_t len, char *out, size_t cap) __attribute__((warn_unused_result));

/*
 * Splits a Kubernetes subject "system:serviceaccount:NS:SA" into ns and sa
 * (each cap bytes). Returns 0 or -1.
 */
int cmn_k8s_subject_split(const char *sub, char *ns, char *sa, size_t cap) __attribute__((warn_unused_result));

#endif
