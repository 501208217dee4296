/* Durations on command lines and in config files: "500ms", "30s", "5m", "1h", "30d". */
#ifndef SEAM_COMMON_DURATION_H
#define SEAM_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define CMN_DURATION_MAX_MS ((int64_t)100 * 365 * 86400 * 1000) /* 100 years */

/*
 * Parses a non-negative duration: digits followed by one of ms, s, m, h, d
 * (a bare number means seconds). Returns 0 and milliseconds in *out_ms, or -1
 * for anything else (empty, sign, fraction, unknown suffix, overflow).
 */
int cmn_duration_parse(const char *s, int64_t *out_ms) __attribute__((warn_unused_result));

/* Formats ms as the shortest exact form ("90s", "1h", "250ms"). */
void cmn_duration_format(int64_t ms, char *buf, size_t cap);

#endif
