/* The credential file the sidecar bootstraps with: a join token or a Kubernetes service-account token. */
#ifndef SEAM_SIDECAR_TOKEN_H
#define SEAM_SIDECAR_TOKEN_H

#include <stddef.h>

#define SC_TOKEN_MAX (16 * 1024) /* largest token file read */

/*
 * Reads the token file at path (Kubernetes rotates projected tokens, so the
 * caller reads it on every use), trimming trailing whitespace. Returns 0 and
 * *out (free with sc_token_free), or -1 with one line in err naming the file.
 */
int sc_token_read(const char *path, char **out, char *err, size_t err_cap) __attribute__((warn_unused_result));

/* Wipes and frees a token from sc_token_read(). */
void sc_token_free(char *token);

/*
 * The SPIFFE ID a Kubernetes service-account token stands for in trust domain
 * td: sub "system:serviceaccount:NS:SA" becomes spiffe://TD/ns/NS/sa/SA. Only
 * decides what to ask for: the signature is seam-ca's to check. Returns 0, or
 * -1 with err (a join token names no identity; a JWT without that sub).
 */
int sc_token_spiffe_id(const char *token, const char *td, char *out, size_t cap, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

#endif
