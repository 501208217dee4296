/* Strict SPIFFE ID parser: the grammar of the SPIFFE ID specification. */
#include "certs/spiffe.h"

#include <stdio.h>
#include <string.h>

static const char *const spiffe_messages[] = {
#define CRT_SPIFFE_MSG(name, msg) msg,
    CRT_SPIFFE_ERROR_MAP(CRT_SPIFFE_MSG)
#undef CRT_SPIFFE_MSG
};

const char *crt_spiffe_error_message(int err)
{
    if (err == CRT_SPIFFE_OK)
        return "valid";
    if (err <= CRT__SPIFFE_FIRST || err >= CRT__SPIFFE_END)
        return "unknown error";
    return spiffe_messages[err - CRT__SPIFFE_FIRST - 1];
}

static int is_trust_domain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int is_path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
}

/* Classifies a character that is not allowed in the trust domain. */
static int trust_domain_char_error(char c)
{
    switch (c) {
    case ':':
        return CRT_SPIFFE_E_PORT;
    case '@':
        return CRT_SPIFFE_E_USERINFO;
    case '?':
        return CRT_SPIFFE_E_QUERY;
    case '#':
        return CRT_SPIFFE_E_FRAGMENT;
    default:
        return CRT_SPIFFE_E_TRUST_DOMAIN_CHAR;
    }
}

int crt_spiffe_check_trust_domain(const char *td, size_t len)
{
    if (len == 0)
        return CRT_SPIFFE_E_NO_TRUST_DOMAIN;
    if (len > CRT_SPIFFE_TRUST_DOMAIN_MAX)
        return CRT_SPIFFE_E_TRUST_DOMAIN_TOO_LONG;
    for (size_t i = 0; i != len; ++i)
        if (!is_trust_domain_char(td[i]))
            return trust_domain_char_error(td[i]);
    return CRT_SPIFFE_OK;
}

/* Checks "/seg/seg..." (possibly empty). */
static int check_path(const char *path, size_t len)
{
    size_t i = 0;
    while (i != len) {
        /* path[i] is '/', the start of a segment */
        size_t start = ++i;
        while (i != len && path[i] != '/') {
            char c = path[i];
            if (c == '?')
                return CRT_SPIFFE_E_QUERY;
            if (c == '#')
                return CRT_SPIFFE_E_FRAGMENT;
            if (!is_path_char(c))
                return CRT_SPIFFE_E_PATH_CHAR;
            ++i;
        }
        size_t seg_len = i - start;
        if (seg_len == 0)
            return CRT_SPIFFE_E_EMPTY_SEGMENT;
        if ((seg_len == 1 && path[start] == '.') || (seg_len == 2 && path[start] == '.' && path[start + 1] == '.'))
            return CRT_SPIFFE_E_DOT_SEGMENT;
    }
    return CRT_SPIFFE_OK;
}

int crt_spiffe_parse(const char *s, size_t len, crt_spiffe_id_t *out)
{
    static const size_t scheme_len = sizeof(CRT_SPIFFE_SCHEME) - 1;
    int err;

    if (len == 0)
        return CRT_SPIFFE_E_EMPTY;
    if (len > CRT_SPIFFE_ID_MAX)
        return CRT_SPIFFE_E_TOO_LONG;
    /* The scheme is case-sensitive here: the specification requires lowercase. */
    if (len < scheme_len || memcmp(s, CRT_SPIFFE_SCHEME, scheme_len) != 0)
        return CRT_SPIFFE_E_SCHEME;

    const char *td = s + scheme_len;
    const char *end = s + len;
    const char *td_end = td;
    while (td_end != end && *td_end != '/')
        ++td_end;
    if ((err = crt_spiffe_check_trust_domain(td, (size_t)(td_end - td))) != CRT_SPIFFE_OK)
        return err;
    if ((err = check_path(td_end, (size_t)(end - td_end))) != CRT_SPIFFE_OK)
        return err;

    out->trust_domain = td;
    out->trust_domain_len = (size_t)(td_end - td);
    out->path = td_end;
    out->path_len = (size_t)(end - td_end);
    return CRT_SPIFFE_OK;
}

int crt_spiffe_parse_workload(const char *s, size_t len, crt_spiffe_id_t *out)
{
    crt_spiffe_id_t id;
    int err = crt_spiffe_parse(s, len, &id);
    if (err != CRT_SPIFFE_OK)
        return err;
    if (id.path_len == 0)
        return CRT_SPIFFE_E_NO_PATH;
    *out = id;
    return CRT_SPIFFE_OK;
}

int crt_spiffe_in_trust_domain(const crt_spiffe_id_t *id, const char *td, size_t td_len)
{
    return id->trust_domain_len == td_len && memcmp(id->trust_domain, td, td_len) == 0;
}

/* Kubernetes namespace and service-account names: lowercase DNS names, so never a '/'. */
static int check_kubernetes_name(const char *name)
{
    if (*name == '\0')
        return CRT_SPIFFE_E_EMPTY_SEGMENT;
    for (const char *c = name; *c != '\0'; ++c)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
            return CRT_SPIFFE_E_PATH_CHAR;
    return CRT_SPIFFE_OK;
}

int crt_spiffe_from_service_account(const char *td, const char *ns, const char *sa, char *buf, size_t cap)
{
    crt_spiffe_id_t id;
    int err;

    if (cap)
        buf[0] = '\0';
    if ((err = check_kubernetes_name(ns)) != CRT_SPIFFE_OK || (err = check_kubernetes_name(sa)) != CRT_SPIFFE_OK)
        return err;
    int n = snprintf(buf, cap, CRT_SPIFFE_SCHEME "%s/ns/%s/sa/%s", td, ns, sa);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            buf[0] = '\0';
        return CRT_SPIFFE_E_TOO_LONG;
    }
    err = crt_spiffe_parse_workload(buf, (size_t)n, &id);
    if (err != CRT_SPIFFE_OK)
        buf[0] = '\0';
    return err;
}
