/* Telling a real read error on an h2o TLS socket from libuv's "nothing to read yet". */
#ifndef SEAM_SIDECAR_SOCKREAD_H
#define SEAM_SIDECAR_SOCKREAD_H

#include <h2o.h>

/*
 * Returns 1 when a read callback's err is not an error, so the callback
 * should return and wait for the next read; 0 when err is real (or NULL).
 *
 * libuv reads a socket again at once when a read filled the whole buffer; if
 * that second read finds nothing (EAGAIN) it calls the read callback with
 * nread 0. h2o 2.2.5 reports that on TLS sockets as "I/O error", so a long
 * stream could lose its connection whenever the kernel's queue held exactly
 * one buffer. libuv is still reading then, and the socket is still open: a
 * peek finds data or EAGAIN, where after a real end it finds EOF or an error.
 * Costs one recv(MSG_PEEK) only on the error path. Borrows sock.
 */
int sc_sockread_spurious(h2o_socket_t *sock, const char *err);

#endif
