/* One-line diagnostics on stderr. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Written once before threads start; read-only afterwards. */
static const char *log_program = "seam";

void cmn_log_init(const char *program)
{
    log_program = program;
}

const char *cmn_log_program(void)
{
    return log_program;
}

static void log_line(const char *level, const char *fmt, va_list args)
{
    char line[2048];
    int n = snprintf(line, sizeof(line), "%s: %s: ", log_program, level);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, args);
    size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* Keep every message on one line, whatever the caller passed in. */
    for (size_t i = (size_t)n; i < len; ++i)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line, len);
    (void)unused;
}

#define DEFINE_LEVEL(fn, level)                                                                                        \
    void fn(const char *fmt, ...)                                                                                      \
    {                                                                                                                  \
        va_list args;                                                                                                  \
        va_start(args, fmt);                                                                                           \
        log_line(level, fmt, args);                                                                                    \
        va_end(args);                                                                                                  \
    }
DEFINE_LEVEL(cmn_log_error, "error")
DEFINE_LEVEL(cmn_log_warn, "warning")
DEFINE_LEVEL(cmn_log_info, "info")
