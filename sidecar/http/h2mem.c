/* nghttp2's memory for one session, with its largest buffers given back to the kernel while the connection is idle. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sidecar/http/h2mem.h"

#define FRAMEBUF_MIN 16384 /* nghttp2's frame buffer holds a whole frame of the default maximum size */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* The block at p, or with p NULL a free one; NULL if there is none. */
static sc_h2mem_block_t *block_of(sc_h2mem_t *m, const void *p)
{
    for (size_t i = 0; i != SC_H2MEM_BLOCKS; ++i)
        if (m->blocks[i].p == p)
            return &m->blocks[i];
    return NULL;
}

/* nghttp2 lets go of p (frees or moves it): its pages are no longer ours to give back. */
static void forget(sc_h2mem_t *m, const void *p)
{
    sc_h2mem_block_t *b = p != NULL ? block_of(m, p) : NULL;
    if (b == NULL)
        return;
    if (b->p == m->framebuf)
        m->framebuf = NULL;
    *b = (sc_h2mem_block_t){NULL, 0};
}

/*
 * While the session is created, an allocation of a page or more gets pages
 * of its own, noted as a block; size's bytes are left as malloc leaves them
 * and the rest of the last page is zeroed (so an untouched tail counts as
 * zero). Returns NULL when it is an ordinary allocation (or no block is free).
 */
static void *alloc_block(sc_h2mem_t *m, size_t size)
{
    size_t page = page_size();
    sc_h2mem_block_t *b = block_of(m, NULL);
    void *p;
    if (!m->creating || size < page || b == NULL)
        return NULL;
    b->len = (size + page - 1) & ~(page - 1);
    if (posix_memalign(&p, page, b->len) != 0) {
        b->len = 0;
        return NULL;
    }
    memset((char *)p + size, 0, b->len - size);
    b->p = p;
    if (size >= FRAMEBUF_MIN && (m->framebuf == NULL || b->len > block_of(m, m->framebuf)->len))
        m->framebuf = p;
    return p;
}

static void *h2mem_malloc(size_t size, void *data)
{
    void *p = alloc_block(data, size);
    return p != NULL ? p : malloc(size);
}

static void h2mem_free(void *p, void *data)
{
    forget(data, p);
    free(p);
}

static void *h2mem_calloc(size_t n, size_t size, void *data)
{
    void *p;
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    if ((p = alloc_block(data, n * size)) == NULL)
        return calloc(n, size);
    memset(p, 0, n * size);
    return p;
}

/* (nghttp2 grows and first allocates its buffers with realloc) */
static void *h2mem_realloc(void *p, size_t size, void *data)
{
    sc_h2mem_t *m = data;
    if (p == NULL) {
        void *q = alloc_block(m, size);
        return q != NULL ? q : malloc(size);
    }
    /* moved or resized, a block is an ordinary allocation from now on */
    sc_h2mem_block_t *b = block_of(m, p);
    void *q = realloc(p, size);
    if (q != NULL && b != NULL) {
        if (b->p == m->framebuf)
            m->framebuf = NULL;
        *b = (sc_h2mem_block_t){NULL, 0};
    }
    return q;
}

void sc_h2mem_init(sc_h2mem_t *m)
{
    memset(m, 0, sizeof(*m));
    m->mem = (nghttp2_mem){m, h2mem_malloc, h2mem_free, h2mem_calloc, h2mem_realloc};
    m->creating = 1;
}

void sc_h2mem_created(sc_h2mem_t *m)
{
    m->creating = 0;
}

static int page_is_zero(const char *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)p, *end = (const uint64_t *)(p + len);
    for (; w != end; ++w)
        if (*w != 0)
            return 0;
    return 1;
}

/* Gives len bytes at p (whole pages) back; returns how many went. */
static size_t give_back(char *p, size_t len)
{
    return len != 0 && madvise(p, len, MADV_DONTNEED) == 0 ? len : 0;
}

size_t sc_h2mem_release(sc_h2mem_t *m)
{
    size_t page = page_size(), released = 0;
    for (size_t i = 0; i != SC_H2MEM_BLOCKS; ++i) {
        sc_h2mem_block_t *b = &m->blocks[i];
        if (b->p == NULL)
            continue;
        if (b->p == m->framebuf) {
            released += give_back(b->p, b->len);
            continue;
        }
        /* runs of all-zero pages, each in one call (a page already given back reads as zero, and costs nothing) */
        char *run = NULL, *p = b->p, *end = p + b->len;
        for (; p != end; p += page) {
            if (page_is_zero(p, page)) {
                if (run == NULL)
                    run = p;
            } else if (run != NULL) {
                released += give_back(run, (size_t)(p - run));
                run = NULL;
            }
        }
        if (run != NULL)
            released += give_back(run, (size_t)(end - run));
    }
    return released;
}
