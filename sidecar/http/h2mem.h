/* nghttp2's memory for one session, with its largest buffers given back to the kernel while the connection is idle. */
#ifndef SEAM_SIDECAR_H2MEM_H
#define SEAM_SIDECAR_H2MEM_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#define SC_H2MEM_BLOCKS 4 /* page-aligned allocations noted per session (nghttp2 1.52 makes two) */

/* An allocation of whole pages, made while the session was created. */
typedef struct st_sc_h2mem_block_t {
    void *p;    /* page-aligned; NULL once nghttp2 freed (or moved) it */
    size_t len; /* a multiple of the page size */
} sc_h2mem_block_t;

/*
 * An nghttp2 session allocates, at creation, two buffers of a page or more
 * that it keeps for the session's life, the largest part of an idle HTTP/2
 * connection's memory: the frame buffer of about 16 KiB, which every
 * outgoing frame is serialised into, and the 4 KiB table of its stream map,
 * all zero while no stream is known. sc_h2mem gives each such allocation
 * whole pages of its own (page-aligned, rounded up to whole pages) so that
 * none of its pages holds another allocation's bytes, and sc_h2mem_release
 * hands pages back to the kernel (madvise MADV_DONTNEED), keeping the
 * allocations: a page comes back, zeroed, when nghttp2 next touches it.
 * The frame buffer's bytes mean nothing once nghttp2 has nothing more to
 * send (the next frame is written from its start), so all of its pages go;
 * of the other allocations only the pages that are all zero go, which reads
 * the same after the release as before. Embed one per session; it must
 * outlive it.
 */
typedef struct st_sc_h2mem_t {
    nghttp2_mem mem; /* pass &mem to nghttp2_session_*_new3 */
    sc_h2mem_block_t blocks[SC_H2MEM_BLOCKS];
    void *framebuf; /* the largest block of at least a frame's size, or NULL */
    int creating;   /* between sc_h2mem_init and sc_h2mem_created */
} sc_h2mem_t;

/* Call right before creating the session. */
void sc_h2mem_init(sc_h2mem_t *m);

/* Call right after the session was created: later allocations are ordinary ones. */
void sc_h2mem_created(sc_h2mem_t *m);

/* Gives back the frame buffer's pages and the all-zero pages of the other blocks; only when nghttp2 has nothing to
 * send (nghttp2_session_want_write is 0 and what nghttp2_session_mem_send returned was copied out). Returns the bytes
 * given back. */
size_t sc_h2mem_release(sc_h2mem_t *m);

#endif
