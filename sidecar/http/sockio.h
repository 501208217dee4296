/* What h2o 2.2.5's libuv sockets need from their users: telling real read errors from none, and closing after one. */
#ifndef SEAM_SIDECAR_SOCKIO_H
#define SEAM_SIDECAR_SOCKIO_H

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
int sc_sockio_read_spurious(h2o_socket_t *sock, const char *err);

/*
 * Returns 1 when the peer only stopped sending (its FIN arrived, TCP
 * CLOSE_WAIT), so an answer can still go out; 0 when the connection is gone
 * (reset, timed out) or the state cannot be read. Call it after a read error:
 * h2o names EOF and reset alike. Borrows sock.
 */
int sc_sockio_peer_half_closed(h2o_socket_t *sock);

/*
 * Closes sock (it is freed; its on_close callback runs). A TLS socket sends
 * close_notify only while the peer can still take bytes: once a read failed
 * (a reset), libuv refuses every write without calling back, and h2o 2.2.5
 * would wait for the close_notify's write forever, holding the descriptor and
 * everything attached to it.
 */
void sc_sockio_close(h2o_socket_t *sock);

#endif
