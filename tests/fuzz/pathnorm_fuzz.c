/* libFuzzer target for sidecar/http/pathnorm.c: no input crashes it, and every accepted output is normal and stays so. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/http/pathnorm.h"

static int contains(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle)) != NULL;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_slice_t in = {(const char *)data, size};
    sc_pathnorm_result_t res, again_res, in_place_res;
    char *out = malloc(size + 1), *again = malloc(size + 1), *in_place = malloc(size + 1);
    int rc;

    if (out == NULL || again == NULL || in_place == NULL)
        abort();
    /* cap == size: the output is never longer than the input */
    rc = sc_pathnorm_normalise(in, out, size, &res);
    memcpy(in_place, data, size);
    sc_slice_t in_place_in = {in_place, size};
    if (sc_pathnorm_normalise(in_place_in, in_place, size, &in_place_res) != rc)
        abort();
    if (rc != SC_PATHNORM_OK) {
        if (rc <= SC__PATHNORM_FIRST || rc >= SC__PATHNORM_END || strcmp(sc_pathnorm_error_name(rc), "unknown") == 0)
            abort();
        goto Exit;
    }
    if (res.len > size || res.path_len > res.len)
        abort();
    if (in_place_res.len != res.len || in_place_res.path_len != res.path_len ||
        in_place_res.changed != res.changed || memcmp(in_place, out, res.len) != 0)
        abort();
    /* changed says exactly whether the bytes differ */
    if (res.changed != (res.len != size || memcmp(out, data, size) != 0))
        abort();
    if (memchr(out, '\0', res.len) != NULL)
        abort();

    if (res.len == 1 && out[0] == '*') {
        if (size != 1)
            abort();
    } else {
        /* the path: rooted, no empty or dot segment, no encoded '/', '\' or '#' hidden in it */
        const char *path = out;
        size_t plen = res.path_len;
        if (plen == 0 || path[0] != '/' || memchr(path, '?', plen) != NULL || memchr(path, '\\', plen) != NULL)
            abort();
        if (contains(path, plen, "//") || contains(path, plen, "/./") || contains(path, plen, "/../") ||
            ends_with(path, plen, "/.") || ends_with(path, plen, "/.."))
            abort();
        if (contains(path, plen, "%2F") || contains(path, plen, "%2f") || contains(path, plen, "%5C") ||
            contains(path, plen, "%5c") || contains(path, plen, "%2e") || contains(path, plen, "%2E") ||
            contains(path, plen, "%00"))
            abort();
        /* the query is the input's tail, byte for byte */
        size_t qlen = res.len - res.path_len;
        if (qlen != 0 && (out[res.path_len] != '?' || memcmp(out + res.path_len, data + size - qlen, qlen) != 0))
            abort();
    }

    /* idempotent: normalising the output changes nothing */
    sc_slice_t normal = {out, res.len};
    if (sc_pathnorm_normalise(normal, again, res.len, &again_res) != SC_PATHNORM_OK || again_res.changed ||
        again_res.len != res.len || again_res.path_len != res.path_len || memcmp(again, out, res.len) != 0)
        abort();
Exit:
    free(out);
    free(again);
    free(in_place);
    return 0;
}
