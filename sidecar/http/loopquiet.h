/* Keeps a libuv loop from re-registering sockets with epoll when nothing about them changed. */
#ifndef SEAM_SIDECAR_LOOPQUIET_H
#define SEAM_SIDECAR_LOOPQUIET_H

#include <stdint.h>
#include <uv.h>

/*
 * libuv 1.44 queues a socket for epoll_ctl(EPOLL_CTL_MOD) every time a write
 * completes (it stops watching for POLLOUT, even when it never started) and
 * every time reading is stopped and started again, and then issues the call
 * even when the socket's event mask is what epoll already holds. On a proxy
 * that is one extra system call per request and side. This prepare handle
 * runs right before the loop polls and takes such no-op entries off the
 * queue; a socket whose mask really changed, or that epoll does not know yet,
 * stays on it. epoll is level-triggered here, so skipping an identical MOD
 * changes nothing about which events are reported.
 *
 * It reads libuv's watcher queue through the fields uv/unix.h declares; on a
 * libuv whose layout differs (1.47 and later) it is compiled out and the loop
 * behaves as libuv made it.
 */
typedef struct st_sc_loopquiet_t {
    uv_prepare_t prepare;
    uint64_t skipped; /* epoll_ctl calls saved so far */
} sc_loopquiet_t;

/* Starts the handle on loop (unreferenced: it keeps no loop alive). Close it with sc_loopquiet_close. */
void sc_loopquiet_init(sc_loopquiet_t *quiet, uv_loop_t *loop);

/* Stops and closes the handle; quiet may be freed once the loop ran its close callbacks. */
void sc_loopquiet_close(sc_loopquiet_t *quiet);

#endif
