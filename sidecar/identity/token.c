/* Reading the bootstrap token and the identity a Kubernetes token names. */
#include "sidecar/identity/token.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/pem.h"
#include "certs/spiffe.h"
#include "common/base64url.h"

int sc_token_read(const char *path, char **out, char *err, size_t err_cap)
{
    char *buf = NULL;
    size_t len = 0;

    if (crt_file_read(path, SC_TOKEN_MAX, &buf, &len) != 0) {
        snprintf(err, err_cap, "--token-file %s: cannot read the file (missing, unreadable or over %d bytes)", path,
                 SC_TOKEN_MAX);
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (len == 0 || strlen(buf) != len || strpbrk(buf, " \t\r\n") != NULL) {
        snprintf(err, err_cap, "--token-file %s: %s", path, len == 0 ? "the file is empty" : "not a single token");
        sc_token_free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

void sc_token_free(char *token)
{
    if (token == NULL)
        return;
    OPENSSL_cleanse(token, strlen(token));
    free(token);
}

int sc_token_spiffe_id(const char *token, const char *td, char *out, size_t cap, char *err, size_t err_cap)
{
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    unsigned char payload[SC_TOKEN_MAX];
    size_t payload_len;
    char ns[256], sa[256];
    json_t *claims = NULL, *sub;
    crt_spiffe_id_t parsed;
    int ret = -1;

    if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        snprintf(err, err_cap, "the token is not a Kubernetes service-account token (a join token names no "
                               "identity): give --spiffe-id");
        return -1;
    }
    if (cmn_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof(payload), &payload_len) != 0 ||
        (claims = json_loadb((const char *)payload, payload_len, 0, NULL)) == NULL || !json_is_object(claims)) {
        snprintf(err, err_cap, "the token's payload is not base64url JSON");
        goto Exit;
    }
    if (!json_is_string(sub = json_object_get(claims, "sub")) ||
        cmn_k8s_subject_split(json_string_value(sub), ns, sa, sizeof(ns)) != 0) {
        snprintf(err, err_cap, "the token's sub is not system:serviceaccount:NAMESPACE:NAME: give --spiffe-id");
        goto Exit;
    }
    if ((size_t)snprintf(out, cap, "spiffe://%s/ns/%s/sa/%s", td, ns, sa) >= cap ||
        crt_spiffe_parse_workload(out, strlen(out), &parsed) != 0) {
        snprintf(err, err_cap, "the token's sub (namespace %.64s, service account %.64s) makes no valid SPIFFE ID in %s",
                 ns, sa, td);
        goto Exit;
    }
    ret = 0;
Exit:
    json_decref(claims);
    OPENSSL_cleanse(payload, sizeof(payload));
    return ret;
}
