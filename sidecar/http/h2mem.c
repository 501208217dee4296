/* nghttp2's memory for one session, with its frame buffer given back to the kernel while the connection is idle. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sidecar/http/h2mem.h"

#define FRAMEBUF_MIN 16384 /* nghttp2's frame buffer holds a whole frame of the default maximum size */

/* Notes p when it is the frame buffer: the largest allocation of at least FRAMEBUF_MIN while the session is created. */
static void note(sc_h2mem_t *m, void *p, size_t size)
{
    if (p != NULL && m->creating && size >= FRAMEBUF_MIN && size > m->framebuf_len)
        m->framebuf = p, m->framebuf_len = size;
}

static void *h2mem_malloc(size_t size, void *data)
{
    void *p = malloc(size);
    note(data, p, size);
    return p;
}

static void h2mem_free(void *p, void *data)
{
    sc_h2mem_t *m = data;
    if (p != NULL && p == m->framebuf)
        m->framebuf = NULL, m->framebuf_len = 0;
    free(p);
}

static void *h2mem_calloc(size_t n, size_t size, void *data)
{
    (void)data;
    return calloc(n, size);
}

/* (nghttp2 grows and first allocates its buffers with realloc) */
static void *h2mem_realloc(void *p, size_t size, void *data)
{
    sc_h2mem_t *m = data;
    void *q = realloc(p, size);
    if (q != NULL && p != NULL && p == m->framebuf)
        m->framebuf = NULL, m->framebuf_len = 0; /* moved or resized: no longer the one noted */
    note(m, q, size);
    return q;
}

void sc_h2mem_init(sc_h2mem_t *m)
{
    m->mem = (nghttp2_mem){m, h2mem_malloc, h2mem_free, h2mem_calloc, h2mem_realloc};
    m->framebuf = NULL;
    m->framebuf_len = 0;
    m->creating = 1;
}

void sc_h2mem_created(sc_h2mem_t *m)
{
    m->creating = 0;
}

size_t sc_h2mem_release(sc_h2mem_t *m)
{
    if (m->framebuf == NULL)
        return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)m->framebuf + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)m->framebuf + m->framebuf_len) & ~(page - 1);
    if (end <= start)
        return 0;
    /* whole pages inside the allocation only: the allocator's own bytes around it stay */
    if (madvise((void *)start, end - start, MADV_DONTNEED) != 0)
        return 0;
    return end - start;
}
