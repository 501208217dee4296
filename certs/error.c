/* Names and messages for the certs library's error codes. */
#include "certs/error.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

static const char *const slugs[] = {
#define CRT_ERROR_SLUG(name, slug, msg) slug,
    CRT_ERROR_MAP(CRT_ERROR_SLUG)
#undef CRT_ERROR_SLUG
};

static const char *const messages[] = {
#define CRT_ERROR_MSG(name, slug, msg) msg,
    CRT_ERROR_MAP(CRT_ERROR_MSG)
#undef CRT_ERROR_MSG
};

static int error_index(int err)
{
    if (err <= CRT__ERROR_FIRST || err >= CRT__ERROR_END)
        return -1;
    return err - CRT__ERROR_FIRST - 1;
}

const char *crt_error_slug(int err)
{
    if (err == CRT_OK)
        return "ok";
    int i = error_index(err);
    return i < 0 ? "unknown" : slugs[i];
}

const char *crt_error_message(int err)
{
    if (err == CRT_OK)
        return "success";
    int i = error_index(err);
    return i < 0 ? "unknown error" : messages[i];
}

int crt_error_is_verify_category(int err)
{
    return err >= CRT_E_EXPIRED && err <= CRT_E_IDENTITY_MISMATCH;
}

char *crt_error_drain_openssl(char *buf, size_t cap)
{
    size_t used = 0;
    unsigned long code;

    if (cap == 0)
        return buf;
    buf[0] = '\0';
    while ((code = ERR_get_error()) != 0) {
        const char *reason = ERR_reason_error_string(code);
        char fallback[32];
        if (reason == NULL) {
            snprintf(fallback, sizeof(fallback), "error %lu", code);
            reason = fallback;
        }
        if (used + 1 < cap) {
            int n = snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", reason);
            if (n > 0)
                used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
        }
    }
    return buf;
}
