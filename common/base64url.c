/* Unpadded base64url (RFC 4648 section 5), strict, and the Kubernetes service-account subject. */
#include "common/base64url.h"

#include <string.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int cmn_base64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len)
{
    size_t need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;

    if (len % 4 == 1 || need > cap)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, otherwise two strings would decode alike. */
    if (acc != 0)
        return -1;
    *out_len = n;
    return 0;
}

int cmn_base64url_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    size_t need = len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
    size_t n = 0;

    if (need + 1 > cap)
        return -1;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (unsigned)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[n++] = b64url_alphabet[(v >> 18) & 63];
        out[n++] = b64url_alphabet[(v >> 12) & 63];
        if (left > 1)
            out[n++] = b64url_alphabet[(v >> 6) & 63];
        if (left > 2)
            out[n++] = b64url_alphabet[v & 63];
    }
    out[n] = '\0';
    return 0;
}

int cmn_k8s_subject_split(const char *sub, char *ns, char *sa, size_t cap)
{
    static const char prefix[] = "system:serviceaccount:";
    const char *rest, *colon;
    size_t ns_len, sa_len;

    if (strncmp(sub, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    rest = sub + sizeof(prefix) - 1;
    if ((colon = strchr(rest, ':')) == NULL || strchr(colon + 1, ':') != NULL)
        return -1;
    ns_len = (size_t)(colon - rest);
    sa_len = strlen(colon + 1);
    if (ns_len == 0 || sa_len == 0 || ns_len >= cap || sa_len >= cap)
        return -1;
    memcpy(ns, rest, ns_len);
    ns[ns_len] = '\0';
    memcpy(sa, colon + 1, sa_len + 1);
    return 0;
}
