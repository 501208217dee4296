/* Access-log lines: written as JSON by hand, gathered per worker and written once per event-loop iteration. */
#include "sidecar/admin/accesslog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/http/decimal.h"

/* ---- one line ---- */

static int reserve(sc_logline_t *line, size_t more)
{
    if (line->failed)
        return -1;
    if (line->len + more <= line->cap)
        return 0;
    size_t cap = line->cap * 2;
    while (cap < line->len + more)
        cap *= 2;
    char *p = line->p == line->inline_buf ? malloc(cap) : realloc(line->p, cap);
    if (p == NULL) {
        line->failed = 1;
        return -1;
    }
    if (line->p == line->inline_buf)
        memcpy(p, line->inline_buf, line->len);
    line->p = p;
    line->cap = cap;
    return 0;
}

static inline void put(sc_logline_t *line, const char *s, size_t len)
{
    if (line->len + len > line->cap && reserve(line, len) != 0)
        return;
    memcpy(line->p + line->len, s, len);
    line->len += len;
}

/* ,"key": in one copy (the first member has no comma) */
static void put_key(sc_logline_t *line, const char *key)
{
    size_t klen = strlen(key);
    if (reserve(line, klen + 4) != 0)
        return;
    char *o = line->p + line->len;
    if (line->len > 1)
        *o++ = ',';
    *o++ = '"';
    memcpy(o, key, klen);
    o += klen;
    *o++ = '"';
    *o++ = ':';
    line->len = (size_t)(o - line->p);
}

void sc_logline_begin(sc_logline_t *line)
{
    line->p = line->inline_buf;
    line->cap = sizeof(line->inline_buf);
    line->len = 0;
    line->failed = 0;
    put(line, "{", 1);
}

/* Length of the UTF-8 sequence at s (at most left bytes), or 0 when it is not one jansson accepts. */
static size_t utf8_length(const unsigned char *s, size_t left)
{
    size_t n;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0; /* a continuation byte, an overlong lead (c0, c1) or past U+10FFFF (f5..ff) */
    if (n > left)
        return 0;
    for (size_t i = 1; i != n; ++i) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, or a surrogate */
    return n;
}

void sc_logline_str(sc_logline_t *line, const char *key, const char *s, size_t len)
{
    static const char short_escapes[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
                                         ['"'] = '"', ['\\'] = '\\'};
    const unsigned char *u = (const unsigned char *)s;
    if (s == NULL) {
        sc_logline_null(line, key);
        return;
    }
    size_t member_at = line->len; /* where the member begins: invalid UTF-8 takes it back, and it says null */
    put_key(line, key);
    put(line, "\"", 1);
    size_t plain = 0; /* bytes since the last escape, copied in one go */
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_length(u + i, len - i);
            if (n == 0) {
                line->len = member_at;
                sc_logline_null(line, key);
                return;
            }
            i += n;
            continue;
        }
        char esc[8] = {'\\'};
        size_t esc_len = 2;
        if (c < sizeof(short_escapes) && short_escapes[c] != 0) {
            esc[1] = short_escapes[c];
        } else {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        put(line, s + plain, i - plain);
        put(line, esc, esc_len);
        plain = ++i;
    }
    put(line, s + plain, len - plain);
    put(line, "\"", 1);
}

void sc_logline_cstr(sc_logline_t *line, const char *key, const char *s)
{
    sc_logline_str(line, key, s, s != NULL ? strlen(s) : 0);
}

void sc_logline_int(sc_logline_t *line, const char *key, int64_t value)
{
    char num[1 + SC_DECIMAL_MAX];
    size_t n = 0;
    if (value < 0)
        num[n++] = '-';
    n += sc_decimal(num + n, value < 0 ? 0 - (uint64_t)value : (uint64_t)value);
    put_key(line, key);
    put(line, num, n);
}

void sc_logline_millis(sc_logline_t *line, const char *key, int64_t micros)
{
    char num[SC_DECIMAL_MAX + 4];
    uint64_t us = micros < 0 ? 0 : (uint64_t)micros;
    size_t n = sc_decimal(num, us / 1000);
    num[n++] = '.';
    num[n++] = (char)('0' + us / 100 % 10);
    num[n++] = (char)('0' + us / 10 % 10);
    num[n++] = (char)('0' + us % 10);
    put_key(line, key);
    put(line, num, n);
}

void sc_logline_real(sc_logline_t *line, const char *key, double value)
{
    char num[40], out[40];
    size_t o = 0;
    snprintf(num, sizeof(num), "%.6g", value);
    /* as jansson: a real always shows it is one, and exponents lose "+" and leading zeros */
    for (const char *c = num; *c != '\0'; ++c) {
        out[o++] = *c;
        if (*c == 'e') {
            if (c[1] == '+')
                ++c;
            else if (c[1] == '-')
                out[o++] = *++c;
            while (c[1] == '0' && c[2] != '\0')
                ++c;
        }
    }
    out[o] = '\0';
    if (strpbrk(out, ".eni") == NULL) /* "n"/"i": nan and inf, which JSON cannot say anyway */
        memcpy(out + o, ".0", 3), o += 2;
    put_key(line, key);
    put(line, out, o);
}

void sc_logline_bool(sc_logline_t *line, const char *key, int value)
{
    put_key(line, key);
    put(line, value ? "true" : "false", value ? 4 : 5);
}

void sc_logline_null(sc_logline_t *line, const char *key)
{
    put_key(line, key);
    put(line, "null", 4);
}

const char *sc_logline_text(sc_logline_t *line, size_t *len)
{
    *len = line->len;
    return line->p;
}

static void release(sc_logline_t *line)
{
    if (line->p != line->inline_buf)
        free(line->p);
    line->p = line->inline_buf;
}

/* ---- the batch ---- */

static void write_all(const char *p, size_t len)
{
    while (len != 0) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n <= 0)
            return; /* stdout gone: the log is best effort, the request is not */
        p += n;
        len -= (size_t)n;
    }
}

void sc_accesslog_flush(sc_accesslog_t *log)
{
    if (log->len != 0)
        write_all(log->buf, log->len);
    log->len = 0;
    uv_prepare_stop(&log->flusher);
}

static void on_flush(uv_prepare_t *prepare)
{
    sc_accesslog_flush(prepare->data);
}

void sc_accesslog_timestamp(sc_accesslog_t *log, sc_logline_t *line, const char *key, const struct timeval *tv)
{
    char ts[40];
    if (log->ts_second != (int64_t)tv->tv_sec) {
        struct tm tm;
        time_t secs = tv->tv_sec;
        gmtime_r(&secs, &tm);
        strftime(log->ts_text, sizeof(log->ts_text), "%Y-%m-%dT%H:%M:%S", &tm);
        log->ts_second = (int64_t)tv->tv_sec;
    }
    size_t n = strlen(log->ts_text);
    int ms = (int)(tv->tv_usec / 1000);
    memcpy(ts, log->ts_text, n);
    ts[n++] = '.';
    ts[n++] = (char)('0' + ms / 100 % 10);
    ts[n++] = (char)('0' + ms / 10 % 10);
    ts[n++] = (char)('0' + ms % 10);
    ts[n++] = 'Z';
    sc_logline_str(line, key, ts, n);
}

void sc_accesslog_init(sc_accesslog_t *log, uv_loop_t *loop)
{
    log->len = 0;
    log->ts_second = -1;
    uv_prepare_init(loop, &log->flusher);
    log->flusher.data = log;
    uv_unref((uv_handle_t *)&log->flusher); /* never what keeps a loop alive */
}

void sc_accesslog_emit(sc_accesslog_t *log, sc_logline_t *line)
{
    put(line, "}\n", 2);
    if (line->failed) {
        release(line);
        return;
    }
    if (line->len > sizeof(log->buf)) {
        sc_accesslog_flush(log); /* a line longer than a batch goes out alone, after the others */
        write_all(line->p, line->len);
    } else {
        if (log->len + line->len > sizeof(log->buf))
            sc_accesslog_flush(log);
        memcpy(log->buf + log->len, line->p, line->len);
        log->len += line->len;
        uv_prepare_start(&log->flusher, on_flush);
    }
    release(line);
}
