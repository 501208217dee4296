/* Decimal text of integers for what Seam writes per request: response heads and access-log lines (cheaper than snprintf). */
#ifndef SEAM_SIDECAR_DECIMAL_H
#define SEAM_SIDECAR_DECIMAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SC_DECIMAL_MAX 20 /* digits of the largest uint64_t */

/* Writes v's decimal digits at out (room for SC_DECIMAL_MAX bytes; no NUL); returns how many. */
static inline size_t sc_decimal(char *out, uint64_t v)
{
    char tmp[SC_DECIMAL_MAX], *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
    return n;
}

/* Writes status as three digits at out (no NUL), as "%03d" would for 0-999. */
static inline void sc_decimal_status(char *out, int status)
{
    unsigned s = status < 0 ? 0 : (unsigned)status % 1000;
    out[0] = (char)('0' + s / 100);
    out[1] = (char)('0' + s / 10 % 10);
    out[2] = (char)('0' + s % 10);
}

#endif
