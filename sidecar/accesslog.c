/* Access-log lines gathered per worker and written once per event-loop iteration. */
#include "sidecar/accesslog.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))

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
    uv_idle_stop(&log->flusher);
}

static void on_flush(uv_idle_t *idle)
{
    sc_accesslog_flush(idle->data);
}

void sc_accesslog_init(sc_accesslog_t *log, uv_loop_t *loop)
{
    log->len = 0;
    uv_idle_init(loop, &log->flusher);
    log->flusher.data = log;
    uv_unref((uv_handle_t *)&log->flusher); /* never what keeps a loop alive */
}

void sc_accesslog_emit(sc_accesslog_t *log, json_t *obj)
{
    if (log->len + 1 >= sizeof(log->buf))
        sc_accesslog_flush(log);
    size_t room = sizeof(log->buf) - log->len - 1; /* keep one byte for the newline */
    size_t n = json_dumpb(obj, log->buf + log->len, room, DUMP_FLAGS);
    if (n != 0 && n > room) {
        sc_accesslog_flush(log); /* does not fit behind the others: send them first */
        room = sizeof(log->buf) - 1;
        n = json_dumpb(obj, log->buf, room, DUMP_FLAGS);
    }
    if (n != 0 && n <= room) {
        log->len += n;
        log->buf[log->len++] = '\n';
        uv_idle_start(&log->flusher, on_flush);
    } else if (n != 0) {
        char *text = json_dumps(obj, DUMP_FLAGS); /* a line longer than a batch goes out alone */
        if (text != NULL) {
            size_t len = strlen(text);
            text[len] = '\n';
            write_all(text, len + 1);
            free(text);
        }
    }
    json_decref(obj);
}
