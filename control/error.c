/* seam-ca's error vocabulary, expanded from CA_ERROR_MAP. */
#include "control/error.h"

#include <stddef.h>

struct st_ca_error_row_t {
    int status;
    const char *slug;
    const char *message;
};

static const struct st_ca_error_row_t error_rows[] = {
#define CA_ERROR_ROW(name, status, slug, msg) {status, slug, msg},
    CA_ERROR_MAP(CA_ERROR_ROW)
#undef CA_ERROR_ROW
};

int ca_error_index(int err)
{
    if (err <= CA__ERROR_FIRST || err >= CA__ERROR_END)
        return -1;
    return err - CA__ERROR_FIRST - 1;
}

const char *ca_error_slug(int err)
{
    if (err == CA_OK)
        return "ok";
    int i = ca_error_index(err);
    return i < 0 ? "internal" : error_rows[i].slug;
}

const char *ca_error_message(int err)
{
    if (err == CA_OK)
        return "success";
    int i = ca_error_index(err);
    return i < 0 ? "internal error" : error_rows[i].message;
}

int ca_error_status(int err)
{
    if (err == CA_OK)
        return 200;
    int i = ca_error_index(err);
    return i < 0 ? 500 : error_rows[i].status;
}
