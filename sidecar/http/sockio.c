/* What h2o 2.2.5's libuv sockets need from their users: telling real read errors from none, and closing after one. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "sidecar/http/sockio.h"

int sc_sockio_read_spurious(h2o_socket_t *sock, const char *err)
{
    char byte;
    int fd;
    ssize_t n;

    /* h2o passes libuv's nread 0 on as exactly this: an I/O error with no byte read, on a TLS socket */
    if (err != h2o_socket_error_io || sock->ssl == NULL || sock->bytes_read != 0)
        return 0;
    if ((fd = h2o_socket_get_fd(sock)) < 0)
        return 0;
    do
        n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return 1; /* bytes arrived since: libuv still watches the socket and reads them next */
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The kernel's TCP state of the socket, or -1. */
static int tcp_state(h2o_socket_t *sock)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    int fd = h2o_socket_get_fd(sock);
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || len < 1)
        return -1;
    return info.tcpi_state;
}

int sc_sockio_peer_half_closed(h2o_socket_t *sock)
{
    return tcp_state(sock) == TCP_CLOSE_WAIT;
}

void sc_sockio_close(h2o_socket_t *sock)
{
    h2o_socket_export_t info;
    int state;

    if (sock->ssl == NULL || h2o_socket_is_writing(sock)) {
        h2o_socket_close(sock); /* nothing to send first, or h2o drops it since a write is under way */
        return;
    }
    state = tcp_state(sock);
    if (state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT) {
        h2o_socket_close(sock);
        return;
    }
    /*
     * Without close_notify: taking the TLS state out of the socket makes h2o
     * close it at once; then the state and the descriptor's duplicate go too.
     */
    if (h2o_socket_export(sock, &info) != 0) {
        h2o_socket_close(sock); /* no descriptor left to duplicate: the old way is all there is */
        return;
    }
    h2o_socket_dispose_export(&info);
}
