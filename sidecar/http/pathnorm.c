/* Request-target path normalisation (RFC 3986 section 6, merged slashes, strict refusals): a pure function. */
#include "sidecar/http/pathnorm.h"

static const struct {
    const char *name;
    const char *message;
} pathnorm_errors[] = {
#define SC_PATHNORM_ROW(name, slug, msg) {slug, msg},
    SC_PATHNORM_ERROR_MAP(SC_PATHNORM_ROW)
#undef SC_PATHNORM_ROW
};

static int error_index(int err)
{
    if (err <= SC__PATHNORM_FIRST || err >= SC__PATHNORM_END)
        return -1;
    return err - SC__PATHNORM_FIRST - 1;
}

const char *sc_pathnorm_error_name(int err)
{
    int i = error_index(err);
    return err == SC_PATHNORM_OK ? "ok" : i < 0 ? "unknown" : pathnorm_errors[i].name;
}

const char *sc_pathnorm_error_message(int err)
{
    int i = error_index(err);
    return err == SC_PATHNORM_OK ? "normalised" : i < 0 ? "unknown error" : pathnorm_errors[i].message;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static unsigned char hex_upper(unsigned char c)
{
    return c >= 'a' && c <= 'f' ? (unsigned char)(c - 'a' + 'A') : c;
}

/* RFC 3986 section 2.3: the characters whose escapes mean the same as the character. */
static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* Bytes that cannot appear raw anywhere in a request target, path or query: 0 or the error. */
static int check_target_byte(unsigned char c)
{
    if (c == '\0')
        return SC_PATHNORM_E_NUL;
    if (c < 0x20 || c == 0x7f)
        return SC_PATHNORM_E_CONTROL;
    if (c == ' ')
        return SC_PATHNORM_E_SPACE;
    if (c == '#')
        return SC_PATHNORM_E_FRAGMENT;
    return 0;
}

int sc_pathnorm_normalise(sc_slice_t target, char *out, size_t cap, sc_pathnorm_result_t *res)
{
    const unsigned char *in = (const unsigned char *)target.base;
    size_t len = target.len, i, o, path_len;
    int changed = 0, rc;

    if (len > SC_PATHNORM_TARGET_MAX)
        return SC_PATHNORM_E_TOO_LONG;
    if (len == 1 && in[0] == '*') {
        if (cap < 1)
            return SC_PATHNORM_E_OUT_TOO_SMALL;
        out[0] = '*';
        res->len = res->path_len = 1;
        res->changed = 0;
        return SC_PATHNORM_OK;
    }
    if (len == 0 || in[0] != '/')
        return SC_PATHNORM_E_NOT_ORIGIN_FORM;
    if (cap < len)
        return SC_PATHNORM_E_OUT_TOO_SMALL;

    /*
     * One pass over the path. Every byte written stands for at least one
     * byte read (o <= i throughout), and each input byte is read before the
     * output byte at the same index is written: that is what makes the
     * in-place call safe.
     */
    out[0] = '/';
    o = i = 1;
    for (;;) {
        /* a segment starts at in[i] and at out[seg]; out[seg - 1] is '/' */
        size_t seg = o;
        while (i != len && in[i] != '/' && in[i] != '?') {
            unsigned char c = in[i];
            if (c == '%') {
                int hi, lo;
                if (len - i < 3 || (hi = hex_value(in[i + 1])) < 0 || (lo = hex_value(in[i + 2])) < 0)
                    return SC_PATHNORM_E_BAD_ESCAPE;
                unsigned char decoded = (unsigned char)(hi << 4 | lo);
                if (decoded == '\0')
                    return SC_PATHNORM_E_NUL;
                if (decoded == '/')
                    return SC_PATHNORM_E_ENCODED_SLASH;
                if (decoded == '\\')
                    return SC_PATHNORM_E_ENCODED_BACKSLASH;
                if (is_unreserved(decoded)) {
                    out[o++] = (char)decoded;
                    changed = 1;
                } else {
                    unsigned char h1 = hex_upper(in[i + 1]), h2 = hex_upper(in[i + 2]);
                    changed |= h1 != in[i + 1] || h2 != in[i + 2];
                    out[o++] = '%';
                    out[o++] = (char)h1;
                    out[o++] = (char)h2;
                }
                i += 3;
                continue;
            }
            if (c == '\\')
                return SC_PATHNORM_E_BACKSLASH;
            if ((rc = check_target_byte(c)) != 0)
                return rc;
            out[o++] = (char)c;
            ++i;
        }
        /* dot segments are recognised after decoding, so "%2e%2E" is ".." too */
        size_t seg_len = o - seg;
        int more = i != len && in[i] == '/';
        if (seg_len == 1 && out[seg] == '.') {
            o = seg;
            changed = 1;
        } else if (seg_len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 1)
                return SC_PATHNORM_E_ABOVE_ROOT;
            /* drop the previous segment and keep the '/' before it */
            o = seg - 1;
            while (out[o - 1] != '/')
                --o;
            changed = 1;
        } else if (seg_len == 0 && more) {
            changed = 1; /* "//": merged */
        } else if (more) {
            out[o++] = '/';
        }
        if (!more)
            break;
        ++i;
    }
    path_len = o;

    /* the query is the app's: validated, never rewritten */
    for (; i != len; ++i) {
        if ((rc = check_target_byte(in[i])) != 0)
            return rc;
        out[o++] = (char)in[i];
    }

    res->len = o;
    res->path_len = path_len;
    res->changed = changed;
    return SC_PATHNORM_OK;
}
