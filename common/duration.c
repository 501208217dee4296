/* Duration parsing and formatting shared by every Seam binary. */
#include "common/duration.h"

#include <stdio.h>
#include <string.h>

int cmn_duration_parse(const char *s, int64_t *out_ms)
{
    int64_t value = 0, unit_ms;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; ++p) {
        if (value > CMN_DURATION_MAX_MS / 10)
            return -1;
        value = value * 10 + (*p - '0');
    }
    if (strcmp(p, "ms") == 0)
        unit_ms = 1;
    else if (strcmp(p, "s") == 0 || *p == '\0')
        unit_ms = 1000;
    else if (strcmp(p, "m") == 0)
        unit_ms = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit_ms = 3600 * 1000;
    else if (strcmp(p, "d") == 0)
        unit_ms = 86400 * 1000;
    else
        return -1;
    if (value > CMN_DURATION_MAX_MS / unit_ms)
        return -1;
    *out_ms = value * unit_ms;
    return 0;
}

void cmn_duration_format(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        int64_t ms;
        const char *suffix;
    } units[] = {{86400 * 1000, "d"}, {3600 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};

    for (size_t i = 0; i != sizeof(units) / sizeof(units[0]); ++i) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%lldms", (long long)ms);
}
