/* The access log: one JSON object per request on stdout, gathered per worker into few writes. */
#ifndef SEAM_SIDECAR_ADMIN_ACCESSLOG_H
#define SEAM_SIDECAR_ADMIN_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <uv.h>

/*
 * Lines gathered before one write(2). At most PIPE_BUF, so a batch written
 * to a pipe arrives whole even while other workers write theirs: lines
 * never interleave.
 */
#define SC_ACCESSLOG_BATCH 4096
#define SC_LOGLINE_INLINE 2048 /* a line this long needs no allocation */

/* A worker's log buffer; worker thread only. */
typedef struct st_sc_accesslog_t {
    uv_prepare_t flusher; /* active while lines wait: right before the loop next polls, one write takes
                             everything this turn of the loop logged */
    size_t len;
    char buf[SC_ACCESSLOG_BATCH];
    int64_t ts_second;   /* the second ts_text spells, -1 before the first line */
    char ts_text[24];    /* "2026-11-28T01:22:21" */
} sc_accesslog_t;

/*
 * One line being written: a JSON object whose members are appended in order
 * (the log is hot: this costs a fraction of building a jansson object and
 * dumping it). Keys are literals the caller vouches for; values are escaped.
 * Lives on the caller's stack; longer lines move to the heap.
 */
typedef struct st_sc_logline_t {
    char *p;
    size_t len, cap;
    int failed; /* out of memory: the line is dropped */
    char inline_buf[SC_LOGLINE_INLINE];
} sc_logline_t;

void sc_logline_begin(sc_logline_t *line);

/* "key": "value", JSON-escaped; null when s is NULL or not valid UTF-8 (as jansson decides). */
void sc_logline_str(sc_logline_t *line, const char *key, const char *s, size_t len);

/* The same for a NUL-terminated string (NULL: null). */
void sc_logline_cstr(sc_logline_t *line, const char *key, const char *s);

void sc_logline_int(sc_logline_t *line, const char *key, int64_t value);

/* A real with 6 significant digits, written as jansson writes one ("1.578", "2.0", "1e-6"). */
void sc_logline_real(sc_logline_t *line, const char *key, double value);

/* Microseconds as milliseconds with three decimals ("0.482", "1500.000"); below 0 counts as 0. */
void sc_logline_millis(sc_logline_t *line, const char *key, int64_t micros);

void sc_logline_bool(sc_logline_t *line, const char *key, int value);

void sc_logline_null(sc_logline_t *line, const char *key);

/* The line's text so far (no closing brace), for tests. */
const char *sc_logline_text(sc_logline_t *line, size_t *len);

/* "key": "2026-11-28T01:22:21.137Z" (UTC, milliseconds); the date part is formatted once per second. */
void sc_accesslog_timestamp(sc_accesslog_t *log, sc_logline_t *line, const char *key, const struct timeval *tv);

/* Microseconds from from to to; 0 when to is earlier (the clock stepped back). */
static inline int64_t sc_accesslog_elapsed_us(const struct timeval *from, const struct timeval *to)
{
    int64_t us = (int64_t)(to->tv_sec - from->tv_sec) * 1000000 + (to->tv_usec - from->tv_usec);
    return us < 0 ? 0 : us;
}

void sc_accesslog_init(sc_accesslog_t *log, uv_loop_t *loop);

/* Closes the line, appends it (with its newline) to the batch and releases the line. */
void sc_accesslog_emit(sc_accesslog_t *log, sc_logline_t *line);

/* Writes what is gathered now (before the worker stops). */
void sc_accesslog_flush(sc_accesslog_t *log);

#endif
