/* libFuzzer target for certs/spiffe.c: no input crashes the parser, and an accepted ID obeys the grammar. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certs/spiffe.h"

static int allowed_in_path(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_' || c == '/';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    crt_spiffe_id_t id;

    if (crt_spiffe_parse(s, size, &id) != CRT_SPIFFE_OK)
        return 0;
    /* Accepted: the slices lie inside the input and recompose it exactly. */
    if (size > CRT_SPIFFE_ID_MAX || size < 10 || memcmp(s, "spiffe://", 9) != 0)
        abort();
    if (id.trust_domain != s + 9 || id.path != id.trust_domain + id.trust_domain_len ||
        id.path + id.path_len != s + size || id.trust_domain_len == 0 ||
        id.trust_domain_len > CRT_SPIFFE_TRUST_DOMAIN_MAX)
        abort();
    for (size_t i = 0; i != id.trust_domain_len; ++i) {
        char c = id.trust_domain[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
            abort();
    }
    for (size_t i = 0; i != id.path_len; ++i)
        if (!allowed_in_path(id.path[i]))
            abort();
    if (id.path_len != 0 && (id.path[0] != '/' || id.path[id.path_len - 1] == '/'))
        abort();
    if (id.path_len != 0 && memmem(id.path, id.path_len, "//", 2) != NULL)
        abort();
    return 0;
}
