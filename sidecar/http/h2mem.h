/* nghttp2's memory for one session, with its frame buffer given back to the kernel while the connection is idle. */
#ifndef SEAM_SIDECAR_H2MEM_H
#define SEAM_SIDECAR_H2MEM_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

/*
 * An nghttp2 session allocates, at creation, a frame buffer of about 16 KiB
 * that it serialises every outgoing frame into, and keeps it for the
 * session's life: the largest part of an idle HTTP/2 connection's memory.
 * Its bytes mean nothing once nghttp2 has nothing more to send (the next
 * frame is written from its start). sc_h2mem notes which allocation it is,
 * and sc_h2mem_release hands that buffer's whole pages back to the kernel
 * (madvise MADV_DONTNEED), keeping the allocation: a page comes back, zeroed,
 * when nghttp2 next writes to it. Embed one per session; it must outlive it.
 */
typedef struct st_sc_h2mem_t {
    nghttp2_mem mem;  /* pass &mem to nghttp2_session_*_new3 */
    void *framebuf;   /* the session's largest allocation made while it was created */
    size_t framebuf_len;
    int creating;     /* between sc_h2mem_init and sc_h2mem_created */
} sc_h2mem_t;

/* Call right before creating the session. */
void sc_h2mem_init(sc_h2mem_t *m);

/* Call right after the session was created: later allocations are not frame buffers. */
void sc_h2mem_created(sc_h2mem_t *m);

/* Gives the frame buffer's pages back; only when nghttp2 has nothing to send (nghttp2_session_want_write is 0 and
 * what nghttp2_session_mem_send returned was copied out). Returns the bytes given back. */
size_t sc_h2mem_release(sc_h2mem_t *m);

#endif
