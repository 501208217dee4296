/* The access log: one JSON object per request on stdout, gathered per worker into few writes. */
#ifndef SEAM_SIDECAR_ACCESSLOG_H
#define SEAM_SIDECAR_ACCESSLOG_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

/*
 * Lines gathered before one write(2). At most PIPE_BUF, so a batch written
 * to a pipe arrives whole even while other workers write theirs: lines
 * never interleave.
 */
#define SC_ACCESSLOG_BATCH 4096

/* A worker's log buffer; worker thread only. */
typedef struct st_sc_accesslog_t {
    uv_idle_t flusher; /* active while lines wait: the loop does not block in poll, and the next
                          iteration writes them (one write for everything logged meanwhile) */
    size_t len;
    char buf[SC_ACCESSLOG_BATCH];
} sc_accesslog_t;

void sc_accesslog_init(sc_accesslog_t *log, uv_loop_t *loop);

/* Appends obj as one compact JSON line and drops the reference. */
void sc_accesslog_emit(sc_accesslog_t *log, json_t *obj);

/* Writes what is gathered now (before the worker stops). */
void sc_accesslog_flush(sc_accesslog_t *log);

#endif
