/* The sidecar's error vocabulary, defined once from SC_ERROR_MAP. */
#include "sidecar/policy/error.h"

#include <stddef.h>

static const struct {
    const char *slug;
    const char *message;
} errors[] = {
#define SC_ERROR_ROW(name, slug, msg) {slug, msg},
    SC_ERROR_MAP(SC_ERROR_ROW)
#undef SC_ERROR_ROW
};

static int index_of(int err)
{
    if (err <= SC__ERROR_FIRST || err >= SC__ERROR_END)
        return -1;
    return err - SC__ERROR_FIRST - 1;
}

const char *sc_error_slug(int err)
{
    int i = index_of(err);
    return err == SC_OK ? "ok" : i < 0 ? "unknown" : errors[i].slug;
}

const char *sc_error_message(int err)
{
    int i = index_of(err);
    return err == SC_OK ? "success" : i < 0 ? "unknown error" : errors[i].message;
}
